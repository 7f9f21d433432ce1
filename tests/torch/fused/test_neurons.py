"""The fused kernels of the LIF family's feed-forward time modules against the reference
loop (on the CPU the kernels generated from the step functions, :mod:`norse.torch.fused.generate`;
with the Triton kernels routed to the CPU, :mod:`norse.torch.fused.neurons`, see test_cuda.py).

Forward results (spikes, voltages, final or recorded states) must be bit-identical to the
per-step reference; gradients (input, initial state, trainable parameters) must equal
autograd through the reference loop to float64 rounding, for every surrogate method.
"""

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import norse.torch as norse
from norse.torch.functional.iaf import IAFParameters, iaf_feed_forward_step
from norse.torch.functional.leaky_integrator import LIParameters, li_feed_forward_step
from norse.torch.functional.leaky_integrator_box import (
    LIBoxParameters,
    li_box_feed_forward_step,
)
from norse.torch.functional.lif import LIFParameters, lif_feed_forward_step
from norse.torch.functional.lif_box import (
    LIFBoxParameters,
    lif_box_feed_forward_step,
)
from norse.torch.functional.lsnn import LSNNParameters, lsnn_feed_forward_step
from norse.torch.functional.reset import reset_subtract
from norse.torch.functional.threshold import STOCHASTIC_METHODS
from norse.torch.fused import generate, reference_only, registry
from norse.torch.fused.spec import SURROGATE_CODES

# (module, parameter type, step function, spiking)
MODELS = {
    "lif": (norse.LIF, LIFParameters, lif_feed_forward_step, True),
    "li": (norse.LI, LIParameters, li_feed_forward_step, False),
    "lif_box": (norse.LIFBox, LIFBoxParameters, lif_box_feed_forward_step, True),
    "li_box": (norse.LIBox, LIBoxParameters, li_box_feed_forward_step, False),
    "iaf": (norse.IAF, IAFParameters, iaf_feed_forward_step, True),
    "lsnn": (norse.LSNN, LSNNParameters, lsnn_feed_forward_step, True),
}
SPIKING = [name for name, model in MODELS.items() if model[3]]
METHODS = list(SURROGATE_CODES)  # every deterministic surrogate, heaviside included
ALPHAS = {"super": 20.0, "triangle": 0.7, "tanh": 2.0, "circ": 0.5, "heavi_erfc": 3.0}


def _parameters(name, dtype=torch.float64, neurons=None, method="super", **kwargs):
    """Parameters with every field trainable, per neuron where ``neurons`` is given."""
    _, parameter_type, _, spiking = MODELS[name]
    generator = torch.Generator().manual_seed(len(name) + (neurons or 0))
    values = {}
    for field, default in zip(parameter_type._fields, parameter_type()):
        if not isinstance(default, torch.Tensor) or field == "alpha":
            continue
        base = default.to(dtype)
        if neurons is not None:
            jitter = 1 + 0.2 * torch.rand(neurons, generator=generator, dtype=dtype)
            base = (base if field.startswith("tau") else base + 0.1) * jitter
        values[field] = torch.nn.Parameter(base.clone())
    if spiking:
        values["method"] = method
        values["alpha"] = torch.as_tensor(ALPHAS.get(method, 10.0))
    values.update(kwargs)
    return parameter_type(**values)


def _input(name, shape, dtype=torch.float64, seed=0, scale=4.0):
    generator = torch.Generator().manual_seed(seed)
    drive = {"iaf": 0.5, "lsnn": 3.0}.get(name, 1.5)
    x = scale * torch.randn(shape, generator=generator, dtype=dtype) + drive
    if name == "iaf":
        x = x * 0.3
    return x


def _run(module, x, state, fused):
    """Outputs, states and gradients of a weighted loss, fused or reference."""
    x = x.detach().clone().requires_grad_()
    if state is not None:
        state = type(state)(*(s.detach().clone().requires_grad_() for s in state))
    if fused:
        resolved = state if state is not None else module.initial_state(x)
        kernel = registry.find(
            module.activation, module.p, x, resolved, module.record_states, dt=module.dt
        )
        assert kernel is not None
        out, new_state = module(x, state)
    else:
        with reference_only():
            out, new_state = module(x, state)
    generator = torch.Generator().manual_seed(1)
    loss = (out * torch.randn(out.shape, generator=generator, dtype=out.dtype)).sum()
    for value in new_state:
        weights = torch.randn(value.shape, generator=generator, dtype=value.dtype)
        loss = loss + (value * weights).sum()
    inputs = [x] + (list(state) if state is not None else [])
    inputs += [t for t in module.p if isinstance(t, torch.nn.Parameter)]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    grads = [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs)]
    return out.detach(), [s.detach() for s in new_state], grads


def _initial_state(module, x, seed=2):
    generator = torch.Generator().manual_seed(seed)
    state = module.initial_state(x)
    return type(state)(
        *(
            s + 0.3 * torch.rand(s.shape, generator=generator, dtype=s.dtype)
            for s in state
        )
    )


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("record_states", [False, True])
def test_forward_and_gradients_match_reference(name, record_states, assert_same):
    module = MODELS[name][0](_parameters(name, neurons=5), record_states=record_states)
    x = _input(name, (30, 3, 5))
    state = _initial_state(module, x)
    assert_same(_run(module, x, state, True), _run(module, x, state, False), 1e-9)


@pytest.mark.parametrize("name", SPIKING)
@pytest.mark.parametrize("method", METHODS)
def test_every_surrogate_matches_reference(name, method, assert_same):
    module = MODELS[name][0](_parameters(name, neurons=4, method=method))
    x = _input(name, (40, 2, 4), seed=3)
    state = _initial_state(module, x)
    fused = _run(module, x, state, True)
    assert fused[0].sum() > 0  # the test exercises the reset
    assert_same(fused, _run(module, x, state, False), 1e-9)


@pytest.mark.parametrize(
    "name, dtype",
    [(name, torch.float64) for name in MODELS] + [("lif", torch.float32)],
)
def test_default_module_bitwise(name, dtype, assert_same):
    module = MODELS[name][0]()
    x = _input(name, (25, 4, 3), dtype=dtype)
    fused = _run(module, x, None, True)
    reference = _run(module, x, None, False)
    assert_same(fused, reference, 1e-5 if dtype == torch.float32 else 1e-9)


@pytest.mark.parametrize("steps", [1, 3, 4, 9, 26])  # whole tiles of 4 steps or not
@pytest.mark.parametrize("name", sorted(MODELS))
def test_inference_path_equals_the_operator_and_the_reference(
    name, steps, recorded_ops
):
    """Under no_grad the fused forward runs without the dispatcher (and four steps per
    pass when no state is recorded): bit for bit the reference, while a dispatch mode
    still sees the operator."""
    module = MODELS[name][0]()
    x = _input(name, (steps, 3, 70), dtype=torch.float32)
    with torch.no_grad():
        fast = module(x)
        with reference_only():
            reference = module(x)
        with recorded_ops() as ops:
            seen = module(x)
    assert any("norse.generated_scan" in op for op in ops.names)
    for got in (fast, seen):
        assert torch.equal(got[0], reference[0])
        for a, b in zip(got[1], reference[1]):
            assert torch.equal(a, b)


INFERENCE_CASES = [
    "default",  # float32 buffers
    "trainable_per_neuron",  # nn.Parameter fields of shape (neurons,), under no_grad
    "half_parameter",  # a 0-dim float16 field: rounds through PyTorch, not NumPy
    "scalar_state_noncontiguous",
    "record_states",
    "dt",
]


@pytest.fixture
def direct_runs(monkeypatch):
    """The calls that run a generated kernel on NumPy views directly (nothing to
    differentiate, plain eager mode), without the operator."""
    runs = []
    plain = generate._plain

    def recorded(*args):
        direct = plain(*args)
        if direct:
            runs.append(args)
        return direct

    monkeypatch.setattr(generate, "_plain", recorded)
    return runs


@pytest.mark.parametrize("case", INFERENCE_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_numpy_inference_path_equals_the_reference(name, dtype, case, direct_runs):
    """CPU inference skips the operator and runs the kernels on NumPy views: bit for
    bit the reference, for every form of parameter and state the kernels take (a
    float16 parameter, which the reference computes in float16 on the CPU, runs the
    reference loop)."""
    module_type, parameter_type = MODELS[name][:2]
    x = _input(name, (9, 2, 5), dtype=dtype)
    state, kwargs = None, {}
    if case == "trainable_per_neuron":
        kwargs["p"] = _parameters(name, dtype=dtype, neurons=5)
    elif case == "half_parameter":
        field = parameter_type._fields[0]
        default = getattr(parameter_type(), field)
        kwargs["p"] = parameter_type(**{field: default.to(torch.float16) * 1.1})
    elif case == "record_states":
        kwargs["record_states"] = True
    elif case == "dt":
        kwargs["dt"] = 7.7e-4
    module = module_type(**kwargs)
    if case == "half_parameter":  # the module keeps the tensor as given
        assert module.p[0].dtype == torch.float16
    if case == "scalar_state_noncontiguous":
        if name == "lsnn":
            pytest.skip(
                "LSNN's reference spikes from the state alone: a 0-dim first step"
            )
        x = _input(name, (9, 10, 2), dtype=dtype).transpose(1, 2)[:, :, ::2]
        fields = type(module.initial_state(x))._fields
        state = type(module.initial_state(x))(
            *(torch.tensor(0.3 * (k + 1), dtype=dtype) for k in range(len(fields)))
        )
    with torch.no_grad():
        fast = module(x, state)
    assert len(direct_runs) == (0 if case == "half_parameter" else 1)
    with torch.no_grad(), reference_only():
        reference = module(x, state)
    assert fast[0].any() and torch.equal(fast[0], reference[0])
    assert type(fast[1]) is type(reference[1])
    for got, expected in zip(fast[1], reference[1]):
        assert got.shape == expected.shape and torch.equal(got, expected)


def test_numpy_inference_path_needs_nothing_to_differentiate(direct_runs):
    """Outside no_grad the path is taken only when nothing requires grad: never from
    rest, whose voltage requires grad as in Norse 1.1."""
    calls = direct_runs
    x = _input("lif", (5, 2, 3), dtype=torch.float32)
    with torch.no_grad():
        state = norse.LIF().initial_state(x)
    norse.LIF()(x, state)
    assert len(calls) == 1
    norse.LIF()(x)
    norse.LIF()(x.requires_grad_())
    norse.LIF(_parameters("lif", dtype=torch.float32))(x.detach())
    assert len(calls) == 1
    # Under no_grad, tensors that require grad are read all the same.
    module = norse.LIF(_parameters("lif", dtype=torch.float32))
    state = type(module.initial_state(x))(
        *(value.requires_grad_() for value in module.initial_state(x))
    )
    with torch.no_grad():
        fast = module(x, state)
        with reference_only():
            reference = module(x, state)
    assert len(calls) == 2 and torch.equal(fast[0], reference[0])
    assert all(torch.equal(a, b) for a, b in zip(fast[1], reference[1]))


@pytest.mark.parametrize("grad", [False, True])
def test_from_rest_the_kernels_build_no_state(grad, counted_calls, assert_same):
    """A module starting from its own rest state under no_grad hands the kernels a
    ``registry.Rest`` (no state tensors); with gradients on, the state is built (its
    voltage requires grad, as in Norse 1.1). The same results as the reference from
    ``initial_state`` either way, per-neuron starting values included."""
    finds = counted_calls(registry, "find")
    p = _parameters("lif", dtype=torch.float64, neurons=5)
    v_leak = torch.linspace(-0.2, 0.2, 5, dtype=torch.float64)
    module = norse.LIF(p._replace(v_leak=v_leak))
    x = _input("lif", (9, 2, 5))
    if grad:
        assert_same(_run(module, x, None, True), _run(module, x, None, False), 1e-9)
    else:
        with torch.no_grad():
            fast = module(x)
            with reference_only():
                reference = module(x)
        assert torch.equal(fast[0], reference[0])
        assert all(torch.equal(a, b) for a, b in zip(fast[1], reference[1]))
    rests = [isinstance(call[3], registry.Rest) for call in finds]
    assert rests and (not any(rests) if grad else all(rests))


def test_rest_is_not_used_for_own_fallbacks_or_overrides(counted_calls):
    """A ``state_fallback`` or an overridden ``initial_state`` builds the state."""
    finds = counted_calls(registry, "find")
    x = _input("lif", (4, 2, 3), dtype=torch.float32)

    class Charged(norse.LIF):
        def initial_state(self, input_tensor):
            state = super().initial_state(input_tensor)
            return state._replace(v=state.v + 0.9)

    with torch.no_grad():
        charged = Charged()(x)
        with reference_only():
            reference = Charged()(x)
        resting = norse.LIF()(x)
    assert torch.equal(charged[0], reference[0])
    assert not torch.equal(charged[0], resting[0])
    fallback = norse.LIF()
    fallback.state_fallback = lambda input_tensor: Charged().initial_state(input_tensor)
    with torch.no_grad():
        assert torch.equal(fallback(x)[0], reference[0])
    # Charged twice (fused, reference), the plain LIF from rest, the fallback.
    assert [isinstance(call[3], registry.Rest) for call in finds] == [0, 0, 1, 0]


def test_lif_box_reset_subtract(assert_same):
    p = _parameters("lif_box", neurons=3, reset_method=reset_subtract)
    module = norse.LIFBox(p)
    x = _input("lif_box", (30, 2, 3))
    assert_same(_run(module, x, None, True), _run(module, x, None, False), 1e-9)


def test_scalar_state_and_noncontiguous_input(assert_same):
    module = norse.LIF(_parameters("lif"))
    x = _input("lif", (6, 20, 3)).transpose(1, 2)[:, :, ::2]
    state = norse.LIFFeedForwardState(
        v=torch.tensor(0.2, dtype=torch.float64),
        i=torch.tensor(0.1, dtype=torch.float64),
    )
    assert_same(_run(module, x, state, True), _run(module, x, state, False), 1e-9)


def test_single_time_step_and_unbatched_input(assert_same):
    for shape in [(1, 4), (7,)]:
        module = norse.LIF(_parameters("lif"), record_states=True)
        x = _input("lif", shape)
        assert_same(_run(module, x, None, True), _run(module, x, None, False), 1e-9)


def test_lif_gradient_flows_through_the_reset():
    """The reference resets without detaching z: d v'/d z = v_reset - v_d reaches the
    input through the surrogate even when only the final voltage is used."""
    module = norse.LIF(_parameters("lif", method="super"))
    x = _input("lif", (10, 1, 4)).requires_grad_()
    _, state = module(x)
    (grad,) = torch.autograd.grad(state.v.sum(), x)
    with reference_only():
        _, state_ref = module(x)
    (grad_ref,) = torch.autograd.grad(state_ref.v.sum(), x)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduce", [torch.sum, torch.mean])
def test_broadcast_output_gradient(reduce):
    """``out.sum()`` passes one broadcast value as the gradient of the outputs."""
    module = norse.LIF(_parameters("lif", neurons=4))
    x = _input("lif", (12, 3, 4)).requires_grad_()
    (grad,) = torch.autograd.grad(reduce(module(x)[0]), x)
    with reference_only():
        (grad_ref,) = torch.autograd.grad(reduce(module(x)[0]), x)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-10, atol=1e-12)


def test_gradcheck_below_threshold():
    """Finite differences agree where no neuron crosses the threshold (with Heaviside,
    so that no surrogate replaces the true derivative of the reset term)."""
    p = _parameters("lif", neurons=3, method="heaviside")
    module = norse.LIF(p)

    def run(x, v, i):
        out, state = module(x, norse.LIFFeedForwardState(v, i))
        return state.v, state.i

    x = 0.1 * torch.rand(8, 2, 3, dtype=torch.float64, requires_grad=True)
    v = (0.1 * torch.rand(2, 3, dtype=torch.float64)).requires_grad_()
    i = (0.1 * torch.rand(2, 3, dtype=torch.float64)).requires_grad_()
    assert module(x)[0].sum() == 0
    assert torch.autograd.gradcheck(run, (x, v, i))


def test_gradcheck_parameters():
    """Gradients of (per-neuron and shared) parameters through the fused kernel."""
    x = 0.5 * torch.ones(6, 2, 3, dtype=torch.float64)
    state = norse.LIFFeedForwardState(
        v=torch.zeros(2, 3, dtype=torch.float64),
        i=torch.zeros(2, 3, dtype=torch.float64),
    )

    def run(tau_mem_inv, v_leak, tau_syn_inv):
        p = LIFParameters(
            tau_mem_inv=tau_mem_inv,
            tau_syn_inv=tau_syn_inv,
            v_leak=v_leak,
            v_th=torch.tensor(10.0),
            method="heaviside",
        )
        kernel = registry.find(lif_feed_forward_step, p, x, state, False, dt=0.001)
        assert kernel is not None
        _, final = kernel(x, state, p, 0.001, False)
        return final.v, final.i

    tau = torch.full((3,), 90.0, dtype=torch.float64, requires_grad=True)
    leak = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    tau_syn = torch.tensor(150.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(run, (tau, leak, tau_syn))


@pytest.mark.parametrize("method", STOCHASTIC_METHODS)
def test_stochastic_methods_use_reference(method):
    module = norse.LIF(LIFParameters(method=method))
    x = torch.ones(3, 2)
    state = module.initial_state(x)
    assert (
        registry.find(module.activation, module.p, x, state, False, dt=module.dt)
        is None
    )


def _find(p=LIFParameters(), x=None, state=None):
    x = torch.ones(3, 2, 4) if x is None else x
    if state is None:
        state = norse.LIF(p).initial_state(x)
    return registry.find(lif_feed_forward_step, p, x, state, False, dt=0.001)


def test_unsupported_configurations_fall_back():
    assert _find() is not None
    assert _find(x=torch.ones(3, 2, 4, dtype=torch.float16)) is None
    assert _find(x=torch.ones(0, 2, 4)) is None
    assert _find(x=torch.ones(3, 2, 4).to_sparse()) is None
    # A parameter that would enlarge the state shape, or of half precision on the CPU.
    assert _find(LIFParameters(v_th=torch.ones(5, 2, 4))) is None
    assert _find(LIFParameters(v_th=torch.ones(4, dtype=torch.float16))) is None
    # A float64 threshold makes the float32 voltage float64 after the first step.
    assert _find(LIFParameters(v_th=torch.ones(4, dtype=torch.float64))) is None


def test_configurations_the_generated_kernels_take_equal_the_reference():
    """Per-neuron sharpness, a parameter or a state field of another dtype than the
    input (PyTorch's promotion decides the dtype, as in the reference), a reset method
    of the user's: the generated kernels trace what the reference computes."""
    x = _input("lif", (6, 2, 4), dtype=torch.float32)
    mixed = norse.LIFFeedForwardState(
        v=torch.zeros(2, 4, dtype=torch.float64), i=torch.zeros(2, 4)
    )
    cases = [
        (lif_feed_forward_step, LIFParameters(alpha=torch.full((4,), 50.0)), None),
        (
            lif_feed_forward_step,
            LIFParameters(tau_mem_inv=torch.full((4,), 100.0, dtype=torch.float64)),
            mixed,
        ),
        (lif_feed_forward_step, LIFParameters(), mixed),
        (
            lif_box_feed_forward_step,
            LIFBoxParameters(reset_method=lambda z, v, r, th: v - 0.5 * z),
            None,
        ),
    ]
    for step, p, state in cases:
        module = (norse.LIFBox if step is lif_box_feed_forward_step else norse.LIF)(p)
        state = module.initial_state(x) if state is None else state
        kernel = registry.find(step, p, x, state, False, dt=0.001)
        assert kernel is not None
        out, final = kernel(x, state, p, 0.001, False)
        with reference_only():
            expected, expected_final = module(x, state)
        assert torch.equal(out, expected)
        for a, b in zip(final, expected_final):
            assert a.dtype == b.dtype and torch.equal(a, b)


def test_reference_switches(monkeypatch):
    with reference_only():
        assert _find() is None
    monkeypatch.setenv("NORSE_FUSED", "0")
    assert _find() is None


def test_import_does_not_load_numba_or_triton():
    code = "import sys, norse.torch; print('numba' in sys.modules, 'triton' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_torch_compile_sees_no_graph_break():
    module = norse.LIF(_parameters("lif", dtype=torch.float32, neurons=3))
    x = _input("lif", (5, 2, 3), dtype=torch.float32)
    targets = []

    def backend(graph_module, example_inputs):
        targets.extend(str(node.target) for node in graph_module.graph.nodes)
        return torch._dynamo.lookup_backend("aot_eager")(graph_module, example_inputs)

    compiled = torch.compile(module, backend=backend, fullgraph=True)
    xc = x.clone().requires_grad_()
    out, state = compiled(xc)
    (out.sum() + state.v.sum()).backward()
    xr = x.clone().requires_grad_()
    with reference_only():
        out_ref, state_ref = module(xr)
    (out_ref.sum() + state_ref.v.sum()).backward()
    assert any("generated_scan" in target for target in targets), targets
    assert torch.equal(out, out_ref) and torch.equal(state.v, state_ref.v)
    torch.testing.assert_close(xc.grad, xr.grad, rtol=1e-5, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(MODELS)),
    steps=st.integers(1, 500),
    batch=st.integers(1, 3),
    neurons=st.integers(1, 6),
    per_neuron=st.booleans(),
    method=st.sampled_from(METHODS),
    record_states=st.booleans(),
    scale=st.floats(0.1, 8.0),
    seed=st.integers(0, 2**16),
)
def test_property_matches_reference(
    name,
    steps,
    batch,
    neurons,
    per_neuron,
    method,
    record_states,
    scale,
    seed,
    assert_same,
):
    p = _parameters(name, neurons=neurons if per_neuron else None, method=method)
    module = MODELS[name][0](p, record_states=record_states)
    x = _input(name, (steps, batch, neurons), seed=seed, scale=scale)
    state = _initial_state(module, x, seed=seed + 1)
    assert_same(_run(module, x, state, True), _run(module, x, state, False), 1e-8)
