"""The fused recurrent path (``LSNNRecurrent``, ``LIFRecurrent``) against the reference loop.

The reference loop over :func:`lsnn_step` / :func:`lif_step` is the specification:
spikes and final states must equal it bit for bit (float32 and float64), gradients with
respect to the input, both weight matrices and the initial state must equal autograd
through it up to rounding, for every deterministic surrogate. Configurations the kernels
do not support must run the reference loop.
"""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.func import functional_call

import norse.torch as norse
from norse.torch.functional.lif import LIFParameters, LIFState, lif_step
from norse.torch.functional.lsnn import LSNNParameters, LSNNState, lsnn_step
from norse.torch.fused import recurrent, reference_only, registry
from norse.torch.fused.spec import SURROGATE_CODES

# (module, parameter type, step function, state type)
MODELS = {
    "lsnn": (norse.LSNNRecurrent, LSNNParameters, lsnn_step, LSNNState),
    "lif": (norse.LIFRecurrent, LIFParameters, lif_step, LIFState),
}
ALPHAS = {"super": 20.0, "triangle": 0.7, "tanh": 2.0, "circ": 0.5, "heavi_erfc": 3.0}


def _layer(name, inputs=3, hidden=4, dtype=torch.float64, seed=0, **kwargs):
    module, parameter_type, _, _ = MODELS[name]
    method = kwargs.pop("method", "super")
    p = parameter_type(method=method, alpha=torch.tensor(ALPHAS.get(method, 10.0)))
    torch.manual_seed(seed)
    layer = module(inputs, hidden, p=p, **kwargs).to(dtype)
    # The weights train (nn.Parameter); strengthen them so that spikes feed back.
    with torch.no_grad():
        layer.input_weights.mul_(4.0)
        layer.recurrent_weights.mul_(2.0)
    return layer


def _input(shape, dtype=torch.float64, seed=1, scale=2.0):
    generator = torch.Generator().manual_seed(seed)
    return scale * torch.rand(shape, generator=generator, dtype=dtype)


def _random_state(layer, x, seed=2):
    """A perturbed initial state with binary ``z`` (scaled otherwise)."""
    generator = torch.Generator().manual_seed(seed)
    start = layer.initial_state(x)
    values = {}
    for field, value in zip(start._fields, start):
        noise = torch.rand(value.shape, generator=generator, dtype=value.dtype)
        values[field] = (noise > 0.5).to(value.dtype) if field == "z" else value + noise
    return type(start)(**values)


def _run(layer, x, state, fused):
    """Spikes, final state and the gradients of a weighted loss of both with respect to
    the input, the weights and the initial state (if given)."""
    x = x.detach().clone().requires_grad_()
    if state is not None:
        state = type(state)(*(s.detach().clone().requires_grad_() for s in state))
    weights = [layer.input_weights, layer.recurrent_weights]
    if fused:
        resolved = state if state is not None else layer.initial_state(x)
        effective = (layer.input_weights, layer._effective_recurrent_weights())
        kernel = registry.find(
            layer.activation, layer.p, x, resolved, layer.record_states, effective
        )
        assert kernel is not None
        out, final = layer(x, state)
    else:
        with reference_only():
            out, final = layer(x, state)
    generator = torch.Generator().manual_seed(3)
    loss = (out * torch.randn(out.shape, generator=generator, dtype=out.dtype)).sum()
    for value in final:
        noise = torch.randn(value.shape, generator=generator, dtype=value.dtype)
        loss = loss + (value * noise).sum()
    inputs = [x, *weights] + (list(state) if state is not None else [])
    grads = torch.autograd.grad(loss, inputs)
    return out.detach(), [value.detach() for value in final], grads


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("autapses", [False, True])
def test_forward_and_gradients_match_reference(name, autapses, assert_same):
    layer = _layer(name, autapses=autapses)
    x = _input((30, 3, 3))
    state = _random_state(layer, x)
    fused = _run(layer, x, state, True)
    assert 0 < fused[0].mean() < 0.5  # spikes, reset and recurrence take part
    assert_same(fused, _run(layer, x, state, False), 1e-10)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("method", list(SURROGATE_CODES))
def test_every_surrogate_matches_reference(name, method, assert_same):
    layer = _layer(name, method=method, seed=4)
    x = _input((25, 2, 3), seed=5)
    state = _random_state(layer, x, seed=6)
    fused = _run(layer, x, state, True)
    assert fused[0].sum() > 0
    assert_same(fused, _run(layer, x, state, False), 1e-10)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("scale", [1.0, 20.0])
@pytest.mark.parametrize("sparse_fraction", [-1.0, 2.0])
def test_float32_default_layer(name, scale, sparse_fraction, monkeypatch, assert_same):
    """Norse's default layer in float32 from its resting state, weakly driven (the
    recurrent current of at most two spikes per row is their summed weights) and
    strongly (more dense products); the weight gradient always as a dense product (-1)
    or always summed over the spikes (2)."""
    monkeypatch.setattr(recurrent, "SPARSE_FRACTION", sparse_fraction)
    from norse.torch.fused import cpu_recurrent

    calls = []
    spike_current = cpu_recurrent.spike_current
    monkeypatch.setattr(
        cpu_recurrent,
        "spike_current",
        lambda *args: calls.append(1) or spike_current(*args),
    )
    module = MODELS[name][0]
    torch.manual_seed(7)
    layer = module(6, 10)
    x = _input((40, 4, 6), dtype=torch.float32, seed=8, scale=scale)
    fused = _run(layer, x, None, True)
    assert fused[0].sum() > 0
    if scale < 2:
        assert calls  # the sum over at most two spikes per row took place
    assert_same(fused, _run(layer, x, None, False), 1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_leading_dimensions_scalar_states_and_per_neuron_parameters(name, assert_same):
    """Input ``(T, 2, 3, I)`` and ``(T, I)``; ``i`` (and ``b``) as scalars; per-neuron
    thresholds and time constants."""
    module, parameter_type, _, state_type = MODELS[name]
    p = parameter_type(
        v_th=torch.linspace(0.6, 1.0, 4, dtype=torch.float64),
        tau_mem_inv=torch.linspace(80.0, 120.0, 4, dtype=torch.float64),
    )
    torch.manual_seed(9)
    layer = module(3, 4, p=p).double()
    for shape in [(12, 2, 3, 3), (12, 3)]:
        x = _input(shape, seed=10, scale=3.0)
        state_shape = (*shape[1:-1], 4)
        values = {
            field: torch.tensor(0.2, dtype=torch.float64)
            for field in state_type._fields
        }
        # (The reference's first spikes of the LSNN take the shape of v, i and b.)
        values["z"] = torch.zeros(state_shape, dtype=torch.float64)
        values["v"] = torch.full(state_shape, 0.2, dtype=torch.float64)
        state = state_type(**values)
        fused = _run(layer, x, state, True)
        assert fused[0].shape == (12, *state_shape)
        assert fused[1][1].shape == state_shape
        assert_same(fused, _run(layer, x, state, False), 1e-10)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("use", ["spikes", "state", "v"])
def test_partial_losses(name, use):
    """Gradients when only the spikes (broadcast ``sum``), only the final state, or only
    its voltage reach the loss."""
    layer = _layer(name, seed=11)
    x = _input((20, 2, 3), seed=12)
    results = []
    for fused in (True, False):
        xi = x.detach().clone().requires_grad_()
        with reference_only() if not fused else torch.enable_grad():
            out, final = layer(xi)
        if use == "spikes":
            loss = out.sum()
        elif use == "state":
            loss = sum((value * (k + 1)).sum() for k, value in enumerate(final))
        else:
            loss = final.v.sum()
        results.append(
            torch.autograd.grad(
                loss, [xi, layer.input_weights, layer.recurrent_weights]
            )
        )
    for grad, expected in zip(*results):
        torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_gradcheck_with_heaviside(name):
    """Finite differences of the fused path (Heaviside: the spikes carry no gradient, the
    dynamics, the resets and the recurrent currents of the spikes do)."""
    layer = _layer(name, inputs=2, hidden=3, method="heaviside", seed=13)
    x = _input((8, 2, 2), seed=14, scale=3.0)
    start = _random_state(layer, x, seed=15)
    assert layer(x, start)[0].sum() > 0
    state_type = MODELS[name][3]
    differentiable = [field for field in state_type._fields if field != "z"]

    def run(x, w_in, w_rec, *values):
        state = start._replace(**dict(zip(differentiable, values)))
        weights = {"input_weights": w_in, "recurrent_weights": w_rec}
        out, final = functional_call(layer, weights, (x, state))
        return (out, *final)

    tensors = [layer.input_weights, layer.recurrent_weights]
    tensors += [getattr(start, field) for field in differentiable]
    tensors = [t.detach().clone().requires_grad_() for t in tensors]
    effective = (tensors[0], tensors[1] * layer.autapse_mask)
    kernel = registry.find(layer.activation, layer.p, x, start, False, effective)
    assert kernel is not None
    assert torch.autograd.gradcheck(run, (x.requires_grad_(), *tensors))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(MODELS)),
    steps=st.integers(1, 50),
    batch=st.integers(1, 4),
    inputs=st.integers(1, 5),
    hidden=st.integers(1, 6),
    autapses=st.booleans(),
    given_state=st.booleans(),
    method=st.sampled_from(list(SURROGATE_CODES)),
    seed=st.integers(0, 2**16),
)
def test_random_configurations_match_reference(
    name, steps, batch, inputs, hidden, autapses, given_state, method, seed, assert_same
):
    layer = _layer(name, inputs, hidden, seed=seed, autapses=autapses, method=method)
    x = _input((steps, batch, inputs), seed=seed + 1)
    state = _random_state(layer, x, seed=seed + 2) if given_state else None
    assert_same(_run(layer, x, state, True), _run(layer, x, state, False), 1e-10)


def _fallback(layer, x, monkeypatch):
    """The layer runs the reference loop (a fused run would raise) and gives the result
    of ``reference_only()``."""

    def fail(*args, **kwargs):
        raise AssertionError("the fused recurrent kernel ran")

    with monkeypatch.context() as patch:
        patch.setattr(recurrent, "_run", fail)
        torch.manual_seed(0)
        out, final = layer(x)
    with reference_only():
        torch.manual_seed(0)
        out_ref, final_ref = layer(x)
    assert torch.equal(out, out_ref)
    for value, expected in zip(final, final_ref):
        assert torch.equal(value, expected)


@pytest.mark.parametrize("name", MODELS)
def test_unsupported_configurations_fall_back(name, monkeypatch):
    module, parameter_type, _, _ = MODELS[name]
    x = _input((5, 2, 3), dtype=torch.float32)
    # (the spy works: the default layer runs fused)
    with pytest.raises(AssertionError, match="fused recurrent kernel ran"):
        _fallback(module(3, 4), x, monkeypatch)
    _fallback(module(3, 4, record_states=True), x, monkeypatch)
    trainable = parameter_type(tau_mem_inv=torch.nn.Parameter(torch.tensor(100.0)))
    _fallback(module(3, 4, p=trainable), x, monkeypatch)
    for method in ("logistic", "circ_dist", "adjoint"):
        _fallback(module(3, 4, p=parameter_type(method=method)), x, monkeypatch)
    if name == "lsnn":
        _fallback(module(3, 4, adjoint=True), x, monkeypatch)
    _fallback(module(3, 4, p=parameter_type(alpha=torch.ones(4))), x, monkeypatch)
    bfloat = module(3, 4).to(torch.bfloat16)
    _fallback(bfloat, x.to(torch.bfloat16), monkeypatch)
    with reference_only():
        _fallback(module(3, 4), x, monkeypatch)
    monkeypatch.setenv("NORSE_FUSED", "0")
    _fallback(module(3, 4), x, monkeypatch)


def test_trainable_parameters_without_grad_run_fused():
    trainable = LSNNParameters(tau_mem_inv=torch.nn.Parameter(torch.tensor(100.0)))
    layer = norse.LSNNRecurrent(3, 4, p=trainable)
    x = _input((5, 2, 3), dtype=torch.float32)
    effective = (layer.input_weights, layer._effective_recurrent_weights())
    with torch.no_grad():
        assert registry.find(
            lsnn_step, layer.p, x, layer.initial_state(x), False, effective
        )


@pytest.mark.parametrize("name", MODELS)
def test_factory_rejects_unexpected_weights(name):
    module, parameter_type, step, _ = MODELS[name]
    layer = module(3, 4)
    x = _input((5, 2, 3), dtype=torch.float32)
    state = layer.initial_state(x)
    p = layer.p
    w_in, w_rec = layer.input_weights, layer.recurrent_weights
    assert registry.find(step, p, x, state, False, (w_in, w_rec)) is not None
    assert registry.find(step, p, x, state, False) is None  # no weights given
    for weights in [
        (w_in.t(), w_rec),
        (w_in, w_rec[:, :3]),
        (w_in.double(), w_rec),
        (w_in, w_rec.to_sparse()),
        (w_in[None], w_rec),
    ]:
        assert registry.find(step, p, x, state, False, weights) is None
    meta = x.to("meta")
    meta_state = type(state)(*(s.to("meta") for s in state))
    weights = (w_in.to("meta"), w_rec.to("meta"))
    assert registry.find(step, p, meta, meta_state, False, weights) is None


def test_reference_switches(monkeypatch):
    layer = norse.LSNNRecurrent(3, 4)
    x = _input((5, 2, 3), dtype=torch.float32)
    args = (lsnn_step, layer.p, x, layer.initial_state(x), False)
    weights = (layer.input_weights, layer.recurrent_weights)
    assert registry.find(*args, weights) is not None
    with reference_only():
        assert registry.find(*args, weights) is None
    monkeypatch.setenv("NORSE_FUSED", "0")
    assert registry.find(*args, weights) is None


def test_operator_registration():
    """Schema, fake (meta) implementation and autograd registration of the custom op."""
    layer = _layer("lsnn", inputs=2, hidden=3)
    x = _input((4, 2, 2))
    state = _random_state(layer, x)
    p = layer.p
    params = torch.zeros(7, 6, dtype=torch.float64)
    params[0], params[1], params[3] = 0.1, 0.2, 1.0
    args = (
        x.requires_grad_(),
        layer.input_weights.detach().requires_grad_(),
        layer.recurrent_weights.detach().requires_grad_(),
        [s.detach() for s in state],
        params,
        torch.tensor([float(p.alpha)], dtype=torch.float64),
        SURROGATE_CODES["super"],
        0,
        True,
    )
    torch.library.opcheck(
        torch.ops.norse.recurrent_scan.default,
        args,
        test_utils=("test_schema", "test_autograd_registration", "test_faketensor"),
    )
