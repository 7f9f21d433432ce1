"""Kernels generated from the step functions (norse.torch.fused.generate) against the
reference step loop: every feed-forward model of the catalogue and a user's own model.

Forward results are compared bit for bit, gradients (input, initial state, per-neuron
parameters) to 1e-10 in float64.
"""

import warnings
from typing import Any, NamedTuple

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import norse.torch as norse
from norse.torch.functional.threshold import threshold
from norse.torch.fused import generate, reference_only, registry
from norse.torch.fused.generate import runtime
from norse.torch.fused.generate.trace import flatten, rebuild, structure
from norse.torch.module.snn import SNN

pytest.importorskip("numba")

TRANSCENDENTAL = ("exp", "log", "tanh", "sigmoid", "pow")
SURROGATES = ("super", "triangle", "tanh", "circ", "heavi_erfc", "heaviside")


class QIFParameters(NamedTuple):
    """A quadratic integrate-and-fire neuron, defined here as a user would."""

    tau_mem_inv: torch.Tensor = torch.as_tensor(100.0)
    v_rest: torch.Tensor = torch.as_tensor(0.0)
    v_crit: torch.Tensor = torch.as_tensor(0.5)
    v_th: torch.Tensor = torch.as_tensor(1.0)
    v_reset: torch.Tensor = torch.as_tensor(0.0)
    method: str = "super"
    alpha: float = 100.0


class QIFState(NamedTuple):
    v: torch.Tensor


def qif_step(input_current, state, p, dt=0.001):
    dv = (state.v - p.v_rest) * (state.v - p.v_crit) + input_current
    v = state.v + dt * p.tau_mem_inv * dv
    z = threshold(v - p.v_th, p.method, p.alpha)
    return z, QIFState((1 - z) * v + z * p.v_reset)


class QIF(SNN):
    state_type = QIFState
    initial_values = {"v": "v_rest"}

    def __init__(self, p: QIFParameters = QIFParameters(), **kwargs):
        super().__init__(activation=qif_step, state_fallback=None, p=p, **kwargs)


def _time_modules():
    return {
        "LIF": norse.LIF,
        "LI": norse.LI,
        "LIFBox": norse.LIFBox,
        "LIBox": norse.LIBox,
        "IAF": norse.IAF,
        "LSNN": norse.LSNN,
        "LIFEx": norse.LIFEx,
        "LIFAdEx": norse.LIFAdEx,
        "LIFRefrac": norse.LIFRefrac,
        "LIFAdExRefrac": norse.LIFAdExRefrac,
        "Izhikevich": lambda: norse.Izhikevich(norse.tonic_spiking),
        "QIF": QIF,
    }


MODELS = sorted(_time_modules())


def _with_method(p: Any, method: str) -> Any:
    values = {
        path: (method if path.split(".")[-1] == "method" else value)
        for path, value in flatten(p)
    }
    return rebuild(structure(p), values)


def _per_neuron(p: Any, neurons: int, dtype, generator, grad: bool) -> Any:
    """Every float tensor parameter as a per-neuron tensor, each within 10% of its
    value (signs kept), optionally requiring grad."""
    values = {}
    for path, value in flatten(p):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            scale = 1 + 0.1 * torch.rand(neurons, generator=generator, dtype=dtype)
            value = (value.to(dtype) * scale).requires_grad_(grad)
        values[path] = value
    return rebuild(structure(p), values)


def _setup(name, steps, batch, neurons, dtype, seed, method, grad=False):
    generator = torch.Generator().manual_seed(seed)
    module = _time_modules()[name]()
    p = _with_method(module.p, method)
    p = _per_neuron(p, neurons, dtype, generator, grad)
    scale = 80.0 if name == "Izhikevich" else 3.0
    x = scale * torch.randn(steps, batch, neurons, generator=generator, dtype=dtype)
    with torch.no_grad():
        rest = module.double()(x)[1] if dtype == torch.float64 else module(x)[1]
    state = rebuild(
        structure(rest),
        {
            path: value.detach()
            + 0.1 * torch.randn(value.shape, generator=generator, dtype=dtype)
            for path, value in flatten(rest)
        },
    )
    return module.activation, x, state, p


def _reference(step, x, state, p, dt=0.001):
    outputs = []
    for x_t in x.unbind(0):
        out, state = step(x_t, state, p, dt)
        outputs.append(out)
    return torch.stack(outputs), state


def _generated(step, x, state, p, dt=0.001, record=False):
    kernel = generate.kernel_for(step, p, x, state, record, dt)
    assert kernel is not None, generate.why_not(step, p, x, state, dt)
    return kernel(x, state, p, dt, record)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(MODELS),
    steps=st.integers(1, 7),
    batch=st.integers(1, 3),
    neurons=st.integers(1, 9),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    method=st.sampled_from(SURROGATES),
    seed=st.integers(0, 2**16),
)
def test_generated_forward_is_the_reference_bit_for_bit(
    name, steps, batch, neurons, dtype, method, seed
):
    step, x, state, p = _setup(name, steps, batch, neurons, dtype, seed, method)
    out, final = _generated(step, x, state, p)
    reference, reference_final = _reference(step, x, state, p)
    assert torch.equal(out, reference)
    # Arithmetic is reproduced bit for bit; exp and the other transcendental
    # functions come from Numba's math library, not PyTorch's: within 2 ulps, or 4
    # ulps of the field's largest value where a difference cancels (LIFAdEx's a).
    graph = runtime.program_for(step, dtype, state, p, 0.001).graph
    exact = not any(node.op in TRANSCENDENTAL for node in graph.nodes)
    for (path, value), (_, expected) in zip(flatten(final), flatten(reference_final)):
        if exact:
            assert torch.equal(value, expected), path
        else:
            eps = torch.finfo(dtype).eps
            scale = 4 * eps * expected.abs().max().item()
            torch.testing.assert_close(
                value, expected, rtol=2 * eps, atol=scale, msg=path
            )


# Every model with the final state; the per-step state records with three models
# (each configuration compiles its own kernels).
GRADIENT_CASES = [(name, False) for name in MODELS] + [
    (name, True) for name in ("LIF", "LIFRefrac", "QIF")
]


def _assert_gradients_equal(grads, expected):
    for k, (a, b) in enumerate(zip(grads, expected)):
        if b is None:
            assert a is None or torch.count_nonzero(a) == 0, k
            continue
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=f"leaf {k}")


@pytest.mark.parametrize("name,record", GRADIENT_CASES)
def test_generated_gradients_equal_autograd_through_the_reference(name, record):
    dtype = torch.float64
    step, x, state, p = _setup(name, 12, 2, 5, dtype, 7, "super", grad=True)
    x.requires_grad_(True)
    state = rebuild(
        structure(state),
        {path: v.clone().requires_grad_(True) for path, v in flatten(state)},
    )
    leaves = [x, *(v for _, v in flatten(state))]
    leaves += [
        v for _, v in flatten(p) if isinstance(v, torch.Tensor) and v.requires_grad
    ]
    generator = torch.Generator().manual_seed(3)

    def loss(out, final):
        values = [out, *(v for _, v in flatten(final))]
        return sum(
            (v * torch.randn(v.shape, generator=generator, dtype=dtype)).sum()
            for v in values
        )

    out, final = _generated(step, x, state, p, record=record)
    generator.manual_seed(3)
    grads = torch.autograd.grad(loss(out, final), leaves, allow_unused=True)
    if record:
        outputs, states = [], []
        current = state
        for x_t in x.unbind(0):
            o, current = step(x_t, current, p, 0.001)
            outputs.append(o)
            states.append(current)
        reference = (
            torch.stack(outputs),
            rebuild(
                structure(state),
                {
                    path: torch.stack([dict(flatten(s))[path] for s in states])
                    for path, _ in flatten(state)
                },
            ),
        )
    else:
        reference = _reference(step, x, state, p)
    generator.manual_seed(3)
    expected = torch.autograd.grad(loss(*reference), leaves, allow_unused=True)
    _assert_gradients_equal(grads, expected)


@pytest.mark.parametrize("name", MODELS)
def test_broadcast_output_gradient_without_parameter_gradients(name):
    # out.sum() hands the backward one value broadcast to (T, M): the kernels read it
    # as one value; fixed parameters take the kernels without parameter gradients.
    dtype = torch.float64
    step, x, state, p = _setup(name, 9, 2, 5, dtype, 11, "super")
    x.requires_grad_(True)
    state = rebuild(
        structure(state),
        {path: v.clone().requires_grad_(True) for path, v in flatten(state)},
    )
    leaves = [x, *(v for _, v in flatten(state))]

    def loss(out, final):
        return out.sum() + sum(v.sum() for _, v in flatten(final))

    grads = torch.autograd.grad(
        loss(*_generated(step, x, state, p)), leaves, allow_unused=True
    )
    expected = torch.autograd.grad(
        loss(*_reference(step, x, state, p)), leaves, allow_unused=True
    )
    _assert_gradients_equal(grads, expected)


@pytest.mark.parametrize("name", MODELS)
def test_time_modules_and_lifted_cells_take_the_fused_path(name):
    module = _time_modules()[name]()
    x = torch.randn(6, 2, 4)
    found = registry.find(
        module.activation, module.p, x, module.initial_state(x), False, dt=module.dt
    )
    assert found is not None
    out, _ = module(x)
    with reference_only():
        expected, _ = module(x)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("dynamic", [None, True])
@pytest.mark.parametrize("name", ["LIFEx", "LIFRefrac", "Izhikevich", "QIF", "LIF"])
def test_compiled_graph_runs_the_generated_operator(name, dynamic):
    # torch.compile builds the program eagerly while it traces (its key is a constant
    # of the graph) and runs norse::generated_scan inside the graph, without breaks;
    # dt reaches the kernels at run time, so a symbolic dt (dynamic=True) works too.
    module = _time_modules()[name]()
    scale = 80.0 if name == "Izhikevich" else 3.0
    generator = torch.Generator().manual_seed(2)
    x = scale * torch.rand(7, 2, 5, generator=generator)
    targets = []

    def backend(graph_module, example_inputs):
        targets.extend(str(node.target) for node in graph_module.graph.nodes)
        return torch._dynamo.lookup_backend("aot_eager")(graph_module, example_inputs)

    torch._dynamo.reset()
    compiled = torch.compile(module, backend=backend, dynamic=dynamic, fullgraph=True)
    xc = x.clone().requires_grad_()
    out, state = compiled(xc)
    out.sum().backward()
    xr = x.clone().requires_grad_()
    with reference_only():
        expected, expected_state = module(xr)
    expected.sum().backward()
    torch._dynamo.reset()
    assert any("generated_scan" in target for target in targets), targets
    assert torch.equal(out, expected)
    torch.testing.assert_close(xc.grad, xr.grad, rtol=1e-5, atol=1e-6)


def test_the_time_step_is_a_run_time_argument():
    # One kernel source for every dt: the step uses dt only as an operand.
    step, x, state, p = _setup("LIFEx", 5, 2, 3, torch.float32, 3, "super")
    sources = {
        runtime.program_for(step, x.dtype, state, p, dt).source("cpu")
        for dt in (1e-3, 5e-4)
    }
    assert len(sources) == 1
    assert runtime.program_for(step, x.dtype, state, p, 5e-4).time_step_free
    for dt in (1e-3, 5e-4, 1.0):
        out, final = _generated(step, x, state, p, dt)
        expected, expected_final = _reference(step, x, state, p, dt)
        assert torch.equal(out, expected), dt

    def python_arithmetic_on_dt(input_tensor, state, p, dt=0.001):
        return qif_step(input_tensor, state, p, dt * 0.5)

    qx, qstate = torch.randn(4, 2, 3), QIFState(torch.zeros(2, 3))
    program = runtime.program_for(
        python_arithmetic_on_dt, qx.dtype, qstate, QIFParameters(), 1e-3
    )
    assert not program.time_step_free  # dt * 0.5 is computed in Python: a constant
    out, _ = _generated(python_arithmetic_on_dt, qx, qstate, QIFParameters(), 2e-3)
    expected, _ = _reference(python_arithmetic_on_dt, qx, qstate, QIFParameters(), 2e-3)
    assert torch.equal(out, expected)


def test_lifted_cell_equals_the_step_loop_and_uses_a_generated_program():
    cell = norse.LIFRefracCell()
    x = torch.randn(8, 3, 5) * 3
    before = set(runtime._PROGRAMS)
    out, state = norse.Lift(cell)(x)
    outputs, current = [], None
    for x_t in x:
        o, current = cell(x_t, current)
        outputs.append(o)
    assert torch.equal(out, torch.stack(outputs))
    assert torch.equal(state.lif.v, current.lif.v)
    assert set(runtime._PROGRAMS) >= before


def test_user_model_gets_a_kernel_file_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NORSE_KERNEL_CACHE", str(tmp_path))

    def shifted_qif(input_current, state, p, dt=0.001):  # a new program: a new file
        z, new = qif_step(input_current + 0.25, state, p, dt)
        return z, new

    x = torch.randn(5, 2, 3)
    state = QIFState(torch.zeros(2, 3))
    out, _ = _generated(shifted_qif, x, state, QIFParameters())
    assert torch.equal(out, _reference(shifted_qif, x, state, QIFParameters())[0])
    assert list(tmp_path.glob("norse_generated_cpu_*.py"))


def _linear_step(input_tensor, state, p, dt=0.001):
    weight = torch.eye(input_tensor.shape[-1], dtype=input_tensor.dtype)
    v = state.v + torch.nn.functional.linear(input_tensor, weight)
    return v, QIFState(v)


def _branching_step(input_tensor, state, p, dt=0.001):
    if (state.v > 0).any():
        return input_tensor, state
    return input_tensor, QIFState(state.v + input_tensor)


def test_untraceable_steps_fall_back_with_a_reason(monkeypatch):
    x = torch.randn(3, 2, 4)
    state = QIFState(torch.zeros(2, 4))
    reason = generate.why_not(_linear_step, QIFParameters(), x, state)
    assert "linear" in reason
    reason = generate.why_not(_branching_step, QIFParameters(), x, state)
    assert "data-dependent control flow" in reason
    monkeypatch.setenv("NORSE_FUSED_DEBUG", "1")
    with pytest.warns(RuntimeWarning, match="no generated kernel"):
        generate.kernel_for(_branching_step, QIFParameters(), x, state, False, 0.002)
    layer = SNN(
        _branching_step, lambda x: QIFState(torch.zeros_like(x[0])), QIFParameters()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, _ = layer(x)
    assert torch.equal(out, x)  # the reference loop ran


def test_a_step_that_changes_its_state_dtype_falls_back():
    # A float64 threshold makes a float32 voltage float64 after the first step; the
    # kernels keep each state field in one dtype.
    x = 3 * torch.rand(4, 2, 3)
    p = norse.LIFParameters(v_th=torch.ones(3, dtype=torch.float64))
    state = norse.LIFFeedForwardState(torch.zeros(2, 3), torch.zeros(2, 3))
    step = norse.functional.lif_feed_forward_step
    reason = generate.why_not(step, p, x, state)
    assert "changes the dtype of its state" in reason
    out, final = norse.LIF(p)(x, state)
    expected, expected_final = _reference(step, x, state, p)
    assert torch.equal(out, expected) and torch.equal(final.v, expected_final.v)


def test_stochastic_surrogates_fall_back():
    x = torch.randn(3, 2, 4)
    state = QIFState(torch.zeros(2, 4))
    reason = generate.why_not(qif_step, QIFParameters(method="logistic"), x, state)
    assert "stochastic" in reason
