"""Fuzzing of the public API (hypothesis): random shapes, dtypes, NaN/Inf, empty tensors,
wrong types and broken states or parameters, fed to

* every neuron module of ``norse.torch`` (found by introspection, see ``conftest.py``),
  as input, as state, and as parameters and ``dt`` at construction;
* the encoders, decoders and other modules (plasticity, filters, delays, composition);
* the functional encoders and decoders, which validate their arguments.

Accepted outcomes: a result, or a ``ValueError``/``TypeError`` with a message. Any other
exception fails the test. A finite input of moderate size, given to a module with valid
parameters, must give a finite output and state (no silent NaN). The functional *step*
functions are not fuzzed directly: they do not validate (see
:mod:`norse.torch.functional.validation`); the modules above are their checked boundary.

The number of inputs tried is printed in the summary at the end of the run.
"""

import collections
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import norse.torch as norse

FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TRIED = collections.Counter()
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
DTYPES = FLOATS + (torch.int64, torch.uint8, torch.bool, torch.complex64)
SPECIALS = (float("nan"), float("inf"), float("-inf"), 1e30, -1e30)
JUNK = (None, [1.0, 2.0], "spikes", 3, 2.5, {"v": 1.0}, np.ones((2, 3)), (1.0,))


@pytest.fixture(autouse=True)
def count_inputs(request):
    """Records the inputs each test tried; ``conftest.py`` prints the total."""
    before = sum(TRIED.values())
    yield
    request.node.user_properties.append(("fuzz_inputs", sum(TRIED.values()) - before))


def _call(kind, function, *args, **kwargs):
    """Runs ``function``; returns its result, or ``None`` for a ``ValueError`` or
    ``TypeError`` with a message. Any other exception propagates (and fails the test)."""
    TRIED[kind] += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the unstable-dt RuntimeWarning
        try:
            return function(*args, **kwargs)
        except (TypeError, ValueError) as error:
            assert str(error), f"{type(error).__name__} without a message"
            return None


@st.composite
def tensors(draw, min_dims=0, max_dims=4, last=None, scale=None):
    """Tensors of random shape (sizes 0-4, or ``last`` as the last size), dtype and
    content, sometimes with NaN, Inf or huge values."""
    dims = draw(st.integers(min_dims, max_dims))
    shape = [draw(st.integers(0, 4)) for _ in range(dims)]
    if last is not None and dims and draw(st.integers(0, 4)):  # mostly the right size
        shape[-1] = last
    dtype = draw(st.sampled_from(DTYPES))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    size = draw(st.sampled_from([1.0, 10.0])) if scale is None else scale
    values = size * (2 * torch.rand(shape, generator=generator) - 0.2)
    if values.numel() and draw(st.integers(0, 3)) == 0:
        index = draw(st.integers(0, values.numel() - 1))
        values.view(-1)[index] = draw(st.sampled_from(SPECIALS))
    if dtype.is_floating_point or dtype.is_complex:
        return values.to(dtype)
    return values.nan_to_num(0.0, 1.0, -1.0).clamp(-100, 100).to(dtype)


def inputs(**kwargs):
    return st.one_of(tensors(**kwargs), tensors(**kwargs), st.sampled_from(JUNK))


def _finite(value):
    return all(
        bool(torch.isfinite(tensor).all())
        for _, tensor in norse.utils.anomaly.named_tensors(value)
        if tensor.is_floating_point()
    )


def _is_sane(x):
    """A finite floating input of moderate size, on which a valid layer stays finite."""
    return (
        isinstance(x, torch.Tensor)
        and x.dtype in (torch.float32, torch.float64)
        and bool(torch.isfinite(x).all())
        and (x.numel() == 0 or float(x.abs().max()) <= 20)
    )


def _corrupt_state(draw, state):
    """The state with one tensor replaced by a wrong-shaped, wrong-typed or junk value."""
    leaves = list(norse.utils.anomaly.named_tensors(state))
    name, _ = leaves[draw(st.integers(0, len(leaves) - 1))]
    path = name.split(".")[1:]
    replacement = draw(st.one_of(tensors(max_dims=3), st.sampled_from(JUNK)))

    def replace(value, path):
        if not path:
            return replacement
        index = value._fields.index(path[0])
        return value._replace(**{path[0]: replace(value[index], path[1:])})

    return replace(state, path)


@FUZZ
@given(data=st.data())
def test_neuron_modules_forward(neuron_class, neurons, data):
    """Random input and state for every neuron module."""
    features = data.draw(st.integers(1, 4))
    hidden = data.draw(st.integers(1, 4))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    layer = neurons.build(neuron_class, features, hidden, dtype=dtype)
    time = neurons.has_time(neuron_class)
    x = data.draw(inputs(min_dims=0, max_dims=4, last=features))
    result = _call("neuron forward", layer, x)
    if result is not None and _is_sane(x) and x.dtype == dtype:
        assert _finite(result), (
            f"{neuron_class.__name__} made NaN/Inf from finite input"
        )
    # a state: valid for another input, corrupted, or junk
    reference = torch.rand(((3,) if time else ()) + (2, features), dtype=dtype)
    _, state = layer(reference)
    choice = data.draw(st.integers(0, 2))
    if choice == 1:
        state = _corrupt_state(data.draw, state)
    elif choice == 2:
        state = data.draw(st.sampled_from(JUNK))
    result = _call("neuron forward with state", layer, reference, state)
    if choice == 0:
        assert result is not None and _finite(result)


def _parameter_values():
    return st.one_of(
        st.sampled_from(JUNK),
        st.sampled_from([0.0, -1.0, float("nan"), float("inf"), 1e6, True]),
        tensors(max_dims=2, scale=100.0),
    )


@FUZZ
@given(data=st.data())
def test_neuron_modules_construction(neuron_class, neurons, data):
    """Random parameter fields and ``dt``: a clear error at construction or at the first
    call, or a layer that runs."""
    p = neurons.default_parameters(neuron_class)
    fields = neurons.numeric_fields(p) + ["method"]
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from(fields))
        try:
            neurons.lookup(p, path)
        except AttributeError:
            continue
        value = data.draw(
            st.one_of(_parameter_values(), st.sampled_from(["super", "superspike", 1]))
        )
        p = neurons.replace(p, path, value)
    dt = data.draw(
        st.one_of(
            st.just(0.001),
            st.sampled_from([0.0, -0.001, float("nan"), float("inf"), 1.0, "0.001"]),
            st.sampled_from([None, torch.tensor(0.0005)]),
        )
    )
    layer = _call("neuron construction", neurons.build, neuron_class, p=p, dt=dt)
    if layer is not None:
        x = torch.rand(((2,) if neurons.has_time(neuron_class) else ()) + (2, 3))
        _call("neuron first call", layer, x)


ENCODERS = {
    "PoissonEncoder": lambda: norse.PoissonEncoder(4),
    "PoissonEncoderStep": lambda: norse.PoissonEncoderStep(),
    "SignedPoissonEncoder": lambda: norse.SignedPoissonEncoder(4),
    "SignedPoissonEncoderStep": lambda: norse.SignedPoissonEncoderStep(),
    "ConstantCurrentLIFEncoder": lambda: norse.ConstantCurrentLIFEncoder(4),
    "SpikeLatencyEncoder": lambda: norse.SpikeLatencyEncoder(),
    "SpikeLatencyLIFEncoder": lambda: norse.SpikeLatencyLIFEncoder(4),
    "PopulationEncoder": lambda: norse.PopulationEncoder(3),
    "MaxDecoder": lambda: norse.MaxDecoder(),
    "SumDecoder": lambda: norse.SumDecoder(),
    "SpikesToTimesDecoder": lambda: norse.SpikesToTimesDecoder(),
    "ExpFilter": lambda: norse.ExpFilter(3, 2),
    "LIFCorrelation": lambda: norse.LIFCorrelation(3, 2),
    "Delay": lambda: norse.Delay(torch.tensor([1, 2, 0])),
    "DelayCell": lambda: norse.DelayCell(torch.tensor([1, 2, 0])),
    "LILinearCell": lambda: norse.LILinearCell(3, 2),
    "RegularizationCell": lambda: norse.RegularizationCell(),
    "TemporalReceptiveField": lambda: norse.TemporalReceptiveField((3,)),
    "Lift(LIFCell)": lambda: norse.Lift(norse.LIFCell()),
    "SequentialState(LIF, LI)": lambda: norse.SequentialState(norse.LIF(), norse.LI()),
}


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_other_modules_forward(name, data):
    """Encoders, decoders, plasticity, filters, delays and composition modules."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TemporalReceptiveField: dt * tau_inv = 1
        module = ENCODERS[name]()
    x = data.draw(inputs(max_dims=4, last=3))
    result = _call("other modules", module, x)
    if result is not None and _is_sane(x) and not name.startswith("Spike"):
        assert _finite(result), f"{name} made NaN/Inf from finite input"


FUNCTIONS = {
    "poisson_encode": lambda x, n: norse.poisson_encode(x, n),
    "signed_poisson_encode": lambda x, n: norse.signed_poisson_encode(x, n),
    "constant_current_lif_encode": lambda x, n: norse.constant_current_lif_encode(x, n),
    "spike_latency_lif_encode": lambda x, n: norse.spike_latency_lif_encode(x, n),
    "spike_latency_encode": lambda x, n: norse.spike_latency_encode(x),
    "population_encode": lambda x, n: norse.population_encode(x, n),
    "poisson_encode_step": lambda x, n: norse.poisson_encode_step(x, n),
    "sum_decode": lambda x, n: norse.sum_decode(x, n),
    "max_decode": lambda x, n: norse.max_decode(x, n),
}


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_functional_encoders_and_decoders(name, data):
    """The functional encoders and decoders, with a random second argument (length,
    rate or dimension) as well."""
    x = data.draw(inputs(max_dims=3))
    n = data.draw(st.one_of(st.integers(-2, 5), st.sampled_from(JUNK), st.just(1e3)))
    _call("functional encoders/decoders", FUNCTIONS[name], x, n)


#: Constructors with the number of leading arguments to fuzz.
CONSTRUCTORS = {
    "PoissonEncoder": (norse.PoissonEncoder, 3),
    "PoissonEncoderStep": (norse.PoissonEncoderStep, 2),
    "SignedPoissonEncoder": (norse.SignedPoissonEncoder, 3),
    "ConstantCurrentLIFEncoder": (norse.ConstantCurrentLIFEncoder, 1),
    "SpikeLatencyLIFEncoder": (norse.SpikeLatencyLIFEncoder, 1),
    "PopulationEncoder": (norse.PopulationEncoder, 2),
    "SpikesToTimesDecoder": (norse.SpikesToTimesDecoder, 1),
    "MaxDecoder": (norse.MaxDecoder, 1),
    "SumDecoder": (norse.SumDecoder, 1),
    "ExpFilter": (norse.ExpFilter, 4),
    "LIFCorrelation": (norse.LIFCorrelation, 2),
    "Delay": (norse.Delay, 1),
    "LILinearCell": (norse.LILinearCell, 2),
    "LIFRecurrent": (norse.LIFRecurrent, 2),
    "LSNNRecurrentCell": (norse.LSNNRecurrentCell, 2),
}


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_constructors(name, data):
    """Random sizes, lengths, rates, time constants and dimensions at construction."""
    constructor, count = CONSTRUCTORS[name]
    values = st.one_of(
        st.integers(-2, 5),
        st.sampled_from([0.0, -1.0, 0.5, float("nan"), float("inf"), True]),
        st.sampled_from(JUNK),
        tensors(max_dims=1, scale=4.0),
    )
    arguments = [data.draw(values) for _ in range(count)]
    module = _call("constructors", constructor, *arguments)
    if module is not None:
        x = data.draw(tensors(min_dims=1, max_dims=3, last=3))
        _call("constructors", module, x)


@FUZZ
@given(data=st.data())
def test_stdp_linear(data):
    """STDP on a linear layer: random spikes, weights and traces (often mismatched)."""
    batch, n_pre, n_post = (data.draw(st.integers(1, 3)) for _ in range(3))
    shapes = {
        "z_pre": (batch, n_pre),
        "z_post": (batch, n_post),
        "w": (n_post, n_pre),
        "t_pre": (batch, n_pre),
        "t_post": (batch, n_post),
    }
    values = {}
    for name, shape in shapes.items():
        if data.draw(st.integers(0, 3)):  # mostly the right shape and a float dtype
            values[name] = torch.rand(shape)
        else:
            values[name] = data.draw(inputs(max_dims=3))
    algorithm = data.draw(
        st.sampled_from(["additive", "multiplicative_pow", "hebbian", 3])
    )
    p = _call("stdp", norse.STDPParameters, stdp_algorithm=algorithm)
    if p is None:
        return
    state = norse.STDPState(values["t_pre"], values["t_post"])
    arguments = (values["z_pre"], values["z_post"], values["w"], state, p)
    _call("stdp", norse.stdp_step_linear, *arguments)
