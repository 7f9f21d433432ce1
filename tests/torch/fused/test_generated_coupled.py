"""Generated kernels for steps with a product by a matrix of their own (the
multi-compartment models' coupling ``g_coupling``; fused/generate/stages.py and
recurrent.py) against the reference loop: forward equal bit for bit, gradients to 1e-10
in float64, the generated path taken, the fallback."""

import warnings

import pytest
import torch
from torch.utils._pytree import tree_leaves

import norse.torch as norse
from norse.torch.fused import generate, reference_only, registry
from norse.torch.fused.generate import runtime, stages, trace

F64 = torch.float64
N = 5  # compartments
needs_numba = pytest.mark.skipif(
    not registry.backend_available("cpu"), reason="no Numba"
)

FEED_FORWARD = {"LIFMC": (norse.LIFMC, norse.LIFMCCell)}
FEED_FORWARD["LIFMCRefrac"] = (norse.LIFMCRefrac, norse.LIFMCRefracCell)
RECURRENT = {"LIFMC": (norse.LIFMCRecurrent, norse.LIFMCRecurrentCell)}
RECURRENT["LIFMCRefrac"] = (norse.LIFMCRefracRecurrent, norse.LIFMCRefracRecurrentCell)


def _leaf_state(state):
    """``state`` with every field a leaf that requires grad."""
    if isinstance(state, tuple):
        return type(state)(*(_leaf_state(v) for v in state))
    return state.detach().requires_grad_()


def _coupling(dtype):
    g = torch.randn(N, N, dtype=dtype) * 40
    return torch.nn.Parameter(g)


def _parameters(module, dtype):
    """Per-neuron ``tau_mem_inv`` (and ``v_th``) that require grad."""
    p = module.p
    lif = p.lif if hasattr(p, "lif") else p
    tau = torch.full((N,), 100.0, dtype=dtype, requires_grad=True)
    v_th = torch.linspace(0.8, 1.2, N, dtype=dtype).requires_grad_()
    lif = lif._replace(tau_mem_inv=tau, v_th=v_th)
    return (p._replace(lif=lif) if hasattr(p, "lif") else lif), [tau, v_th]


@needs_numba
@pytest.mark.parametrize("name", sorted(FEED_FORWARD))
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("record", [False, True])
def test_equals_the_reference_loop(
    name, recurrent, dtype, record, stepped_runs, compare_with_reference
):
    """Outputs and (recorded) states; gradients to the input, the weights, the
    coupling, per-neuron parameters and (feed-forward) the initial state."""
    torch.manual_seed(0)
    if recurrent:
        layer = RECURRENT[name][0](4, N, record_states=record).to(dtype)
        with torch.no_grad():
            layer.g_coupling.mul_(40)
        x = (3 * torch.rand(20, 3, 4, dtype=dtype)).requires_grad_()
        tensors = [x, layer.input_weights, layer.recurrent_weights]
    else:
        g = _coupling(dtype)
        layer = FEED_FORWARD[name][0](g_coupling=g, record_states=record).to(dtype)
        x = (3 * torch.rand(20, 3, N, dtype=dtype)).requires_grad_()
        tensors = [x]
    layer.p, per_neuron = _parameters(layer, dtype)
    start = None
    if not (record or recurrent):  # else from rest
        start = _leaf_state(layer(x[:2])[1])
        tensors += tree_leaves(start)
        stepped_runs.clear()
    tensors += [layer.g_coupling] + per_neuron
    compare_with_reference(lambda: layer(x, start), tensors, dtype)
    assert stepped_runs == [True]


@needs_numba
@pytest.mark.parametrize("name", sorted(RECURRENT))
def test_recurrent_gradients_reach_the_initial_state(name, compare_with_reference):
    module, _ = RECURRENT[name]
    torch.manual_seed(2)
    layer = module(4, N).to(F64)
    x = 3 * torch.rand(15, 2, 4, dtype=F64)
    start = _leaf_state(layer(x[:3])[1])
    tensors = tree_leaves(start) + [layer.g_coupling]
    compare_with_reference(lambda: layer(x, start), tensors, F64)


@needs_numba
@pytest.mark.parametrize("name", sorted(FEED_FORWARD))
@pytest.mark.parametrize("recurrent", [False, True])
def test_lift_of_the_cell_takes_the_same_path(
    name, recurrent, stepped_runs, compare_with_reference
):
    torch.manual_seed(3)
    if recurrent:
        cell = RECURRENT[name][1](4, N).to(F64)
        x = 3 * torch.rand(15, 2, 4, dtype=F64)
    else:
        cell = FEED_FORWARD[name][1](g_coupling=_coupling(F64))
        x = 3 * torch.rand(15, 2, N, dtype=F64)
    x.requires_grad_()
    compare_with_reference(lambda: norse.Lift(cell)(x), [x, cell.g_coupling], F64)
    assert stepped_runs == [True]


@needs_numba
def test_the_plans_of_the_models():
    """LIFMCRecurrent couples the voltage after the LIF step: two stages (the coupling
    product multiplies a value of the first); the others have one."""
    layers = {
        "ff": norse.LIFMC(g_coupling=torch.randn(N, N)),
        "rec": norse.LIFMCRecurrent(4, N),
        "refrac rec": norse.LIFMCRefracRecurrent(4, N),
    }
    x = {"ff": torch.rand(3, 2, N), "rec": torch.rand(3, 2, 4)}
    x["refrac rec"] = x["rec"]
    rounds = {}
    for name, layer in layers.items():
        layer(x[name])
        recurrent = name != "ff"
        state = layer(x[name][:1])[1]
        program = runtime.program_for(
            layer.activation, torch.float32, state, layer.p, layer.dt, recurrent
        )
        assert isinstance(program, runtime.SteppedProgram), stages.describe
        rounds[name] = [stage.round for stage in program.plan.stages]
        assert program.found_matrices == 1
    assert rounds == {"ff": [1], "rec": [1, 2], "refrac rec": [1]}


@needs_numba
def test_the_recurrent_models_without_coupling_keep_one_stage():
    state = norse.LIFAdExState(*(torch.zeros(2, 3) for _ in range(4)))
    program = runtime.program_for(
        norse.LIFAdExRecurrentCell(2, 3).activation,
        torch.float32,
        state,
        norse.LIFAdExParameters(),
        0.001,
        True,
    )
    assert [stage.round for stage in program.plan.stages] == [1]
    assert [p.operand.kind for p in program.plan.products] == ["input", "state"]


def test_a_new_coupling_matrix_is_used():
    """The program is traced once; the matrix is found again at every call."""
    torch.manual_seed(4)
    layer = norse.LIFMC(g_coupling=torch.randn(N, N) * 40)
    x = 3 * torch.rand(10, 2, N)
    layer(x)
    layer.g_coupling = torch.randn(N, N) * 40
    spikes, state = layer(x)
    with reference_only():
        expected, expected_state = layer(x)
    assert torch.equal(spikes, expected)
    assert torch.equal(state.v, expected_state.v)
    with torch.no_grad():  # from rest without state tensors
        assert torch.equal(layer(x)[0], expected)


def _mixing_step(input_tensor, state, p, dt=0.001):
    mixed = torch.nn.functional.linear(state.v, _MIXING, _BIAS)
    v = state.v + dt * (mixed + input_tensor)
    return v, norse.LIFBoxFeedForwardState(v)


_MIXING = torch.randn(N, N)
_BIAS = torch.ones(N)


def test_a_product_with_a_bias_falls_back_with_the_reason():
    state = norse.LIFBoxFeedForwardState(torch.zeros(2, N))
    x = torch.rand(4, 2, N)
    reason = generate.why_not(_mixing_step, norse.LIFBoxParameters(), x, state)
    assert "a matrix product with a bias" in reason
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (
            generate.kernel_for(
                _mixing_step, norse.LIFBoxParameters(), x, state, False, 0.001
            )
            is None
        )


def test_a_product_with_a_matrix_the_step_computes_falls_back():
    def step(input_tensor, state, p, dt=0.001):
        mixed = torch.nn.functional.linear(state.v, 2 * _MIXING)
        return mixed, norse.LIFBoxFeedForwardState(state.v + dt * mixed)

    state = norse.LIFBoxFeedForwardState(torch.zeros(2, N))
    reason = generate.why_not(
        step, norse.LIFBoxParameters(), torch.rand(4, 2, N), state
    )
    assert reason is not None


def test_find_matrices_numbers_them_as_the_trace():
    a, b = torch.randn(N, N), torch.randn(N, N)

    def step(x, state, p, dt=0.001):
        u = torch.nn.functional.linear(state.v, a)
        w = torch.nn.functional.linear(u + x, b) + torch.nn.functional.linear(x, a)
        return w, norse.LIFBoxFeedForwardState(w)

    state = norse.LIFBoxFeedForwardState(torch.zeros(2))
    p = norse.LIFBoxParameters()
    graph = trace.trace(step, torch.zeros(2), state, p, 0.001)
    assert graph.matrices == 2
    assert [graph.nodes[i].args[1] for i in graph.products] == [0, 1, 0]
    found = trace.find_matrices(step, torch.float32, state, p, 0.001, 2, False)
    assert found[0] is a and found[1] is b and len(found) == 2


@needs_numba
def test_a_step_with_two_rounds_of_products_and_an_input_product(stepped_runs, loss):
    """The general case: a product of a computed value, products of the input, the
    same matrix twice."""
    torch.manual_seed(5)
    a = torch.nn.Parameter(torch.randn(N, N, dtype=F64))
    b = torch.nn.Parameter(torch.randn(N, N, dtype=F64))

    def step(x, state, p, dt=0.001):
        u = torch.tanh(torch.nn.functional.linear(state.v, a) + x)
        w = torch.nn.functional.linear(u * state.v, b) + torch.nn.functional.linear(
            x, a
        )
        v = state.v + dt * p.tau_mem_inv * (w - state.v)
        return u * v, norse.LIFBoxFeedForwardState(v)

    layer = norse.SNN(step, None, norse.LIFBoxParameters())
    x = torch.rand(12, 3, N, dtype=F64, requires_grad=True)
    start = norse.LIFBoxFeedForwardState(
        torch.rand(3, N, dtype=F64, requires_grad=True)
    )
    spikes, state = layer(x, start)
    assert stepped_runs == [True]
    grads = torch.autograd.grad(loss(spikes, state), (x, a, b, start.v))
    with reference_only():
        spikes_ref, state_ref = layer(x, start)
        expected = torch.autograd.grad(loss(spikes_ref, state_ref), (x, a, b, start.v))
    torch.testing.assert_close(spikes, spikes_ref, rtol=1e-14, atol=1e-14)
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-10)
