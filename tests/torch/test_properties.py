"""Properties of every neuron model, on random shapes, dtypes and parameters (hypothesis).

The models come from the catalogue in ``tests/torch/conftest.py`` (every neuron module
exported by ``norse.torch``), so a new model is checked without editing this file:

* spikes are exactly 0 or 1, outputs and states keep the input's dtype and the state
  shape (also with ``record_states``);
* after a spike the voltage is at the reset value (``v_reset``; ``c`` for Izhikevich), or
  lowered by the threshold with ``reset_subtract``;
* stepping the cell through a sequence equals the time module, bit for bit;
* the fast path (fused kernels, :mod:`norse.torch.fused`) equals the reference loop
  (:func:`norse.torch.fused.reference_only`) in outputs, states and gradients.
"""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from norse.torch.functional.reset import reset_subtract
from norse.torch.fused import reference_only, registry
from norse.torch.fused.generate import runtime
from norse.torch.fused.generate.numba_source import _dependencies
from norse.torch.fused.spec import SURROGATE_CODES

PROPERTY = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DTYPES = st.sampled_from([torch.float32, torch.float64])
#: Deterministic surrogates (the stochastic ones sample their spikes).
METHODS = list(SURROGATE_CODES)
#: Recurrent multi-compartment LIF couples the compartments after the reset (Norse 1.1's
#: update order), so its voltage after a spike is v_reset plus the coupling term.
COUPLED_AFTER_RESET = ("LIFMCRecurrent", "LIFMCRecurrentCell")
#: Steps within which the driven neuron of :func:`_input` fires in every model.
FIRES_WITHIN = 8


@st.composite
def configurations(draw, cls, neurons):
    """A random layer configuration for ``cls``: shapes, dtype, parameters (scaled time
    constants and thresholds, shared or per neuron), surrogate method and input."""
    recurrent = neurons.is_recurrent(cls)
    features = draw(st.integers(1, 4))
    hidden = draw(st.integers(1, 4))
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=1 if recurrent else 2)))
    shape = neurons.state_shape(cls, batch, features, hidden)
    p = neurons.default_parameters(cls)
    for path in neurons.numeric_fields(p):
        name = path.rsplit(".", 1)[-1]
        if name.startswith("tau_") and name.endswith("_inv"):
            low, high = 0.5, 2.0
        elif name in ("v_th", "v_thresh"):
            low, high = 0.8, 1.25
        else:
            continue
        value = torch.as_tensor(neurons.lookup(p, path), dtype=torch.float64)
        if draw(st.booleans()):  # per neuron
            factor = torch.tensor(
                draw(
                    st.lists(
                        st.floats(low, high), min_size=shape[-1], max_size=shape[-1]
                    )
                )
            )
        else:
            factor = torch.tensor(draw(st.floats(low, high)))
        p = neurons.replace(p, path, (value * factor).float())
    method = draw(st.sampled_from(METHODS))
    for path in neurons.numeric_fields(p) + ["method", "lif.method", "lif_adex.method"]:
        if path.endswith("method"):
            try:
                neurons.lookup(p, path)
            except AttributeError:
                continue
            p = neurons.replace(p, path, method)
    return dict(
        features=features,
        hidden=hidden,
        batch=batch,
        shape=shape,
        p=p,
        dtype=draw(DTYPES),
        steps=draw(st.integers(1, 10)),
        seed=draw(st.integers(0, 2**16)),
        scale=draw(st.floats(0.2, 1.5)),
    )


def _layer(cls, config, neurons, **kwargs):
    return neurons.build(
        cls,
        config["features"],
        config["hidden"],
        p=config["p"],
        dtype=config["dtype"],
        positive_weights=True,
        **kwargs,
    )


def _input(cls, config, neurons, steps=None):
    """Mostly positive input at the model's drive; one neuron gets the full drive at
    every step, so that spikes (and resets) happen in most examples."""
    generator = torch.Generator().manual_seed(config["seed"])
    width = config["features"]
    shape = (steps or config["steps"], *config["batch"], width)
    x = torch.rand(shape, generator=generator, dtype=torch.float64) - 0.2
    x = x * config["scale"] * neurons.drive(cls)
    x[(slice(None),) + (0,) * (len(shape) - 1)] = neurons.drive(cls)
    return x.to(config["dtype"])


def _voltage_and_reset(state, p, neurons):
    """The voltage leaf of a (recorded) state and the value a spike resets it to."""
    voltage = next(leaf for name, leaf in neurons.leaves(state) if name.endswith(".v"))
    fields = neurons.numeric_fields(p)
    path = next((f for f in fields if f.endswith("v_reset")), None) or "c"
    return voltage, torch.as_tensor(neurons.lookup(p, path))


@PROPERTY
@given(data=st.data())
def test_spikes_are_binary_and_states_keep_shape_and_dtype(time_class, neurons, data):
    config = data.draw(configurations(time_class, neurons))
    x = _input(time_class, config, neurons)
    layer = _layer(time_class, config, neurons)
    out, state = layer(x)
    layer.record_states = True
    recorded_out, recorded = layer(x)
    torch.testing.assert_close(recorded_out, out, rtol=0, atol=0)
    expected = (config["steps"], *config["shape"])
    assert out.shape == expected and out.dtype == config["dtype"]
    if neurons.is_spiking(time_class):
        assert ((out == 0) | (out == 1)).all()
        if config["steps"] >= FIRES_WITHIN:
            assert out.sum() > 0  # the driven neuron fires: the example tests something
    for (name, leaf), (_, history) in zip(
        neurons.leaves(state), neurons.leaves(recorded)
    ):
        assert leaf.shape == config["shape"] and leaf.dtype == config["dtype"], name
        assert history.shape == expected and history.dtype == config["dtype"], name
        torch.testing.assert_close(history[-1], leaf, rtol=0, atol=0)


@PROPERTY
@given(data=st.data())
def test_voltage_is_reset_after_a_spike(time_class, neurons, data):
    if not neurons.is_spiking(time_class):
        pytest.skip("no spikes: a leaky integrator")
    if time_class.__name__ in COUPLED_AFTER_RESET:
        pytest.skip("compartments are coupled after the reset (Norse 1.1 order)")
    config = data.draw(configurations(time_class, neurons))
    layer = _layer(time_class, config, neurons, record_states=True)
    z, states = layer(_input(time_class, config, neurons))
    voltage, reset = _voltage_and_reset(states, layer.p, neurons)
    reset = reset.to(voltage.dtype).expand_as(voltage)
    spiked = z == 1
    if config["steps"] >= FIRES_WITHIN:
        assert spiked.any()
    assert torch.equal(voltage[spiked], reset[spiked])


@PROPERTY
@given(data=st.data())
def test_reset_subtract_lowers_the_voltage_by_the_threshold(neurons, data):
    """Box LIF with ``reset_subtract``: after a spike ``v = v_before_reset - v_th``
    (``v_before_reset`` from the same step with an unreachable threshold)."""
    cls = data.draw(
        st.sampled_from([c for c in neurons.classes() if "LIFBox" in c.__name__])
    )
    config = data.draw(configurations(cls, neurons))
    config["p"] = config["p"]._replace(reset_method=reset_subtract)
    layer = _layer(cls, config, neurons)
    unreachable = config["p"]._replace(v_th=torch.tensor(1e30))
    free = _layer(cls, dict(config, p=unreachable), neurons)
    free.load_state_dict(
        {k: v for k, v in layer.state_dict().items() if "v_th" not in k}
    )
    x = _input(cls, config, neurons)
    state, fired = None, 0
    for step in x:
        step_input = step.unsqueeze(0) if neurons.has_time(cls) else step
        _, before = free(step_input, state)
        z, state = layer(step_input, state)
        spiked = z.reshape(state.v.shape) == 1
        threshold = torch.as_tensor(layer.p.v_th).to(state.v.dtype).expand_as(state.v)
        assert torch.equal(state.v[spiked], before.v[spiked] - threshold[spiked])
        assert torch.equal(state.v[~spiked], before.v[~spiked])
        fired += int(spiked.sum())
    if config["steps"] >= FIRES_WITHIN:
        assert fired > 0


@PROPERTY
@given(data=st.data())
def test_cell_stepping_equals_the_time_module(neuron_pair, neurons, data):
    cell_class, time_class = neuron_pair
    config = data.draw(configurations(cell_class, neurons))
    cell = _layer(cell_class, config, neurons)
    layer = _layer(time_class, config, neurons)
    layer.load_state_dict(cell.state_dict())
    x = _input(cell_class, config, neurons)
    state, outputs = None, []
    for step in x:
        out, state = cell(step, state)
        outputs.append(out)
    expected_out, expected_state = layer(x)
    assert torch.equal(torch.stack(outputs), expected_out)
    for (name, leaf), (_, expected) in zip(
        neurons.leaves(state), neurons.leaves(expected_state)
    ):
        if "Ex" in cell_class.__name__ and leaf.is_floating_point():
            # exp: the fused kernels' own (vectorised, <= 1 ulp from torch.exp), so
            # states agree to a few ulps, not to the bit
            eps = torch.finfo(leaf.dtype).eps
            scale = float(expected.abs().max()) if expected.numel() else 0.0
            torch.testing.assert_close(
                leaf, expected, rtol=16 * eps, atol=16 * eps * scale, msg=name
            )
        else:
            assert torch.equal(leaf, expected), name


def _fused_classes():
    """Time modules with a fused kernel for float64 CPU input whose forward results are
    the reference's bit for bit (no exp, log, tanh, sigmoid or pow, which the kernels
    compute within an ulp or two)."""
    import importlib.util
    import pathlib

    spec = importlib.util.spec_from_file_location(
        "_catalogue", pathlib.Path(__file__).with_name("conftest.py")
    )
    catalogue = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(catalogue)
    found = []
    for cls in catalogue.neuron_classes():
        if not catalogue.has_time(cls) or catalogue.is_recurrent(cls):
            continue
        layer = catalogue.build(cls, dtype=torch.float64)
        x = torch.ones(2, 1, 3, dtype=torch.float64)
        state = layer.initial_state(x)
        kernel = registry.find(layer.activation, layer.p, x, state, False, dt=layer.dt)
        program = runtime.program_for(
            layer.activation, x.dtype, state, layer.p, layer.dt
        )
        # flat states (the loss below sums their fields) and one graph (the stepped
        # programs of the coupled models are tested in test_generated_coupled.py)
        graph = getattr(program, "graph", None)
        flat = all(isinstance(value, torch.Tensor) for value in state)
        if kernel is not None and flat and graph is not None:
            if not _transcendental(graph):
                found.append(cls)
    return found


def _transcendental(graph) -> bool:
    """Whether the forward step (the output and the new state) uses a transcendental
    function (the derivative's nodes, e.g. SuperSpike's power, do not count)."""
    forward = _dependencies(graph, [graph.output, *graph.new_states.values()])
    return any(graph.nodes[index].op in _TRANSCENDENTAL for index in forward)


_TRANSCENDENTAL = ("exp", "log", "tanh", "sigmoid", "pow")


FUSED = _fused_classes()


def test_the_fast_path_is_registered_for_the_core_models():
    assert {cls.__name__ for cls in FUSED} >= {"LIF", "LI", "LIFBox", "LIBox", "IAF"}


def _run(layer, x, state):
    x = x.detach().clone().requires_grad_()
    out, final = layer(x, state)
    generator = torch.Generator().manual_seed(7)
    loss = (out * torch.randn(out.shape, generator=generator, dtype=out.dtype)).sum()
    for value in final:
        loss = (
            loss
            + (
                value * torch.rand(value.shape, generator=generator, dtype=value.dtype)
            ).sum()
        )
    (grad,) = torch.autograd.grad(loss, x)
    return out.detach(), [value.detach() for value in final], grad


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_path_equals_the_reference(neurons, data):
    cls = data.draw(st.sampled_from(FUSED))
    config = data.draw(configurations(cls, neurons))
    record_states = data.draw(st.booleans())
    layer = _layer(cls, config, neurons, record_states=record_states)
    x = _input(cls, config, neurons)
    state = None
    if data.draw(st.booleans()):  # a random initial state
        start = layer.initial_state(x)
        generator = torch.Generator().manual_seed(config["seed"] + 1)
        state = type(start)(
            *(
                s + torch.rand(s.shape, generator=generator, dtype=s.dtype)
                for s in start
            )
        )
    kernel = registry.find(
        layer.activation,
        layer.p,
        x,
        state or layer.initial_state(x),
        record_states,
        dt=layer.dt,
    )
    assert kernel is not None  # the configuration takes the fast path
    fused = _run(layer, x, state)
    with reference_only():
        reference = _run(layer, x, state)
    assert torch.equal(fused[0], reference[0])
    for value, expected in zip(fused[1], reference[1]):
        assert torch.equal(value, expected)
    tolerance = 1e-9 if config["dtype"] == torch.float64 else 1e-4
    scale = 1.0 + reference[2].abs().max().item()
    assert (fused[2] - reference[2]).abs().max().item() <= tolerance * scale
