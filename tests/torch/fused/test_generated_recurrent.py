"""Generated kernels for recurrent steps (fused/generate/recurrent.py) against the
reference loop: forward equal, gradients to 1e-10 in float64, the fallback."""

import pytest
import torch
from torch.utils._pytree import tree_leaves

import norse.torch as norse
from norse.torch.fused import generate, reference_only, registry
from norse.torch.fused.generate import recurrent as generated_recurrent

F64 = torch.float64
#: The recurrent catalogue models without a hand-written kernel
MODELS = {
    "LIFEx": (norse.LIFExRecurrent, norse.LIFExRecurrentCell, False),
    "LIFAdEx": (norse.LIFAdExRecurrent, norse.LIFAdExRecurrentCell, False),
    "LIFRefrac": (norse.LIFRefracRecurrent, norse.LIFRefracRecurrentCell, True),
    "LIFAdExRefrac": (
        norse.LIFAdExRefracRecurrent,
        norse.LIFAdExRefracRecurrentCell,
        False,
    ),
    "LIFBox": (norse.LIFBoxRecurrent, norse.LIFBoxRecurrentCell, True),
    "IAF": (norse.IAFRecurrent, norse.IAFRecurrentCell, True),
}


def _spy(monkeypatch):
    calls = []
    original = generated_recurrent.kernel_for

    def spy(*args, **kwargs):
        kernel = original(*args, **kwargs)
        calls.append(kernel is not None)
        return kernel

    monkeypatch.setattr(generated_recurrent, "kernel_for", spy)
    return calls


def _loss(spikes, state):
    return spikes.sum() + sum(
        (0.5 + k) * v.sum() for k, v in enumerate(tree_leaves(state))
    )


@pytest.mark.skipif(not registry.backend_available("cpu"), reason="no Numba")
@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("record", [False, True])
def test_equals_the_reference_loop(name, record, monkeypatch):
    module, _, exact = MODELS[name]
    torch.manual_seed(0)
    layer = module(6, 10, record_states=record).to(F64)
    x = (3 * torch.rand(25, 3, 6, dtype=F64)).requires_grad_()
    calls = _spy(monkeypatch)
    spikes, state = layer(x)
    assert calls == [True]
    _loss(spikes, state).backward()
    grads = [x.grad, layer.input_weights.grad, layer.recurrent_weights.grad]
    grads = [g.clone() for g in grads]
    x.grad = None
    layer.zero_grad()
    with reference_only():
        spikes_ref, state_ref = layer(x)
        _loss(spikes_ref, state_ref).backward()
    assert spikes.sum() > 0
    if exact:
        assert torch.equal(spikes, spikes_ref)
        for a, b in zip(tree_leaves(state), tree_leaves(state_ref)):
            assert torch.equal(a, b)
    else:  # exp models: exp itself within 1 ulp of torch.exp
        torch.testing.assert_close(spikes, spikes_ref, rtol=0, atol=0)
        for a, b in zip(tree_leaves(state), tree_leaves(state_ref)):
            torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)
    reference = [x.grad, layer.input_weights.grad, layer.recurrent_weights.grad]
    for a, b in zip(grads, reference):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(not registry.backend_available("cpu"), reason="no Numba")
def test_gradients_reach_the_initial_state_and_per_neuron_parameters():
    torch.manual_seed(1)
    tau = torch.full((10,), 100.0, dtype=F64, requires_grad=True)
    p = norse.LIFExParameters(tau_mem_inv=tau)
    layer = norse.LIFExRecurrent(4, 10, p=p).to(F64)
    x = 3 * torch.rand(20, 2, 4, dtype=F64)
    start = norse.LIFExState(
        z=torch.zeros(2, 10, dtype=F64),
        v=torch.rand(2, 10, dtype=F64, requires_grad=True),
        i=torch.rand(2, 10, dtype=F64, requires_grad=True),
    )

    def gradients():
        spikes, state = layer(x, start)
        return torch.autograd.grad(_loss(spikes, state), (tau, start.v, start.i))

    fused = gradients()
    with reference_only():
        expected = gradients()
    for a, b in zip(fused, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(not registry.backend_available("cpu"), reason="no Numba")
def test_lift_of_the_recurrent_cell_takes_the_same_path(monkeypatch):
    torch.manual_seed(2)
    cell = norse.LIFAdExRecurrentCell(5, 7).to(F64)
    x = 3 * torch.rand(15, 2, 5, dtype=F64)
    calls = _spy(monkeypatch)
    spikes, state = norse.Lift(cell)(x)
    assert calls == [True]
    with reference_only():
        expected, _ = norse.Lift(cell)(x)
    torch.testing.assert_close(spikes, expected, rtol=0, atol=0)


def test_a_step_that_uses_its_input_elementwise_falls_back():
    def step(x, state, w_in, w_rec, p, dt):
        current = torch.nn.functional.linear(x, w_in) + torch.nn.functional.linear(
            state.z, w_rec
        )
        v = state.v + dt * (current - state.v) + x.sum()  # not a per-neuron operation
        z = (v > 1).to(v.dtype)
        return z, norse.LIFBoxState(z=z, v=v * (1 - z))

    state = norse.LIFBoxState(z=torch.zeros(2, 3), v=torch.zeros(2, 3))
    kernel = generated_recurrent.kernel_for(
        step,
        norse.LIFBoxParameters(),
        torch.rand(4, 2, 5),
        state,
        False,
        (torch.rand(3, 5), torch.rand(3, 3)),
        0.001,
    )
    assert kernel is None
    assert generate.runtime.why_not(
        step, torch.float32, state, norse.LIFBoxParameters(), 0.001, recurrent=True
    )
