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


def _event_driven_calls(monkeypatch):
    """Counts of the event-driven forward products and weight gradients."""
    from norse.torch.fused import cpu_linear

    counts = {"forward": 0, "weight_gradient": 0}
    gather_sum, weight_grad = cpu_linear.gather_sum, cpu_linear.binary_weight_grad

    def counted_gather_sum(*args, **kwargs):
        counts["forward"] += 1
        return gather_sum(*args, **kwargs)

    def counted_weight_grad(*args, **kwargs):
        counts["weight_gradient"] += 1
        return weight_grad(*args, **kwargs)

    monkeypatch.setattr(cpu_linear, "gather_sum", counted_gather_sum)
    monkeypatch.setattr(cpu_linear, "binary_weight_grad", counted_weight_grad)
    return counts


@pytest.mark.skipif(not registry.backend_available("cpu"), reason="no Numba")
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("name, gain", [("LIFEx", 3.0), ("LIFBox", 10.0)])
def test_sparse_spikes_take_the_event_driven_products(name, gain, dtype, monkeypatch):
    """Few recurrent spikes: the steps with at most two spikes per row sum weight rows
    instead of the dense product, and the recurrent weights' gradient is summed per
    spike; the outputs equal the reference's bit for bit (LIFEx: exp to 1e-14 in
    float64), the gradients agree to 1e-10 in float64."""
    module = MODELS[name][0]
    torch.manual_seed(1)
    layer = module(40, 30).to(dtype)
    with torch.no_grad():
        layer.recurrent_weights.mul_(2)
    x = (torch.rand(40, 4, 40) < 0.02).to(dtype).mul(gain).requires_grad_()
    counts = _event_driven_calls(monkeypatch)
    spikes, state = layer(x)
    assert 0 < counts["forward"] < 40
    _loss(spikes, state).backward()
    assert counts["weight_gradient"] == 1
    grads = [t.grad.clone() for t in (x, layer.input_weights, layer.recurrent_weights)]
    x.grad = None
    layer.zero_grad()
    with reference_only():
        spikes_ref, state_ref = layer(x)
        _loss(spikes_ref, state_ref).backward()
    assert spikes_ref[1:].sum(-1).max() > 2  # steps of both kinds
    assert torch.equal(spikes, spikes_ref)
    tolerance = 1e-14 if name == "LIFEx" and dtype == F64 else 0.0
    for a, b in zip(tree_leaves(state), tree_leaves(state_ref)):
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)
    if dtype == F64:
        reference = [x.grad, layer.input_weights.grad, layer.recurrent_weights.grad]
        for a, b in zip(grads, reference):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(not registry.backend_available("cpu"), reason="no Numba")
def test_non_finite_recurrent_weights_keep_the_dense_product(monkeypatch):
    """An infinite recurrent weight: the dense product makes NaN of 0 * inf, as the
    reference's does, so the event-driven sum (which would skip it) is not taken."""
    torch.manual_seed(1)
    layer = norse.LIFBoxRecurrent(8, 6)
    with torch.no_grad():
        layer.recurrent_weights[0, 1] = float("inf")
    x = (torch.rand(10, 2, 8) < 0.2).float().mul(3)
    counts = _event_driven_calls(monkeypatch)
    with torch.no_grad():
        spikes, state = layer(x)
        with reference_only():
            spikes_ref, state_ref = layer(x)
    assert counts["forward"] == 0
    assert torch.equal(spikes, spikes_ref)
    for a, b in zip(tree_leaves(state), tree_leaves(state_ref)):
        torch.testing.assert_close(a, b, equal_nan=True, rtol=0, atol=0)
    assert state_ref.v.isnan().any()


@pytest.mark.skipif(not registry.backend_available("cpu"), reason="no Numba")
def test_generated_only_skips_the_hand_written_kernels(monkeypatch):
    """Inside ``generated_only()`` the recurrent LIF layer, which has hand-written
    kernels, runs the generated driver, with the reference's results; outside it the
    hand-written kernels run again."""
    from norse.torch.fused import generated_only

    torch.manual_seed(0)
    layer = norse.LIFRecurrent(6, 10)
    x = 3 * torch.rand(20, 3, 6)
    calls = _spy(monkeypatch)
    with torch.no_grad():
        with generated_only():
            spikes, state = layer(x)
        assert calls == [True]
        layer(x)
        assert calls == [True]  # the hand-written kernel found first
        with reference_only():
            spikes_ref, state_ref = layer(x)
    assert spikes.sum() > 0 and torch.equal(spikes, spikes_ref)
    for a, b in zip(tree_leaves(state), tree_leaves(state_ref)):
        assert torch.equal(a, b)


@pytest.mark.skipif(not registry.backend_available("cpu"), reason="no Numba")
def test_a_lean_sequence_keeps_the_records_and_the_fed_back_spikes(monkeypatch):
    """A recurrent step of one stage keeps, per step, only the values its adjoint
    reads (the forward step's records) and the spikes it feeds back (the recurrent
    weights' gradient reads them): the saved tensors grow by that per step, not by
    the whole state and the products; the outputs stay the caller's to modify."""
    torch.manual_seed(0)
    layer = norse.LIFExRecurrent(6, 10)
    programs = []
    run = generated_recurrent.run

    def spy(program, *args):
        programs.append(program)
        return run(program, *args)

    monkeypatch.setattr(generated_recurrent, "run", spy)

    def saved_elements(steps):
        sizes = []

        def pack(tensor):
            sizes.append(tensor.numel())
            return tensor

        x = (3 * torch.rand(steps, 3, 6)).requires_grad_()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            spikes, state = layer(x)
        spikes.mul_(2)  # the output is not kept for the backward pass
        _loss(spikes, state).backward()
        return sum(sizes)

    growth = saved_elements(40) - saved_elements(20)
    program = programs[-1]
    records = len(program.stages[0].records["states"])
    lanes = 3 * 10
    # per step: the input row, the spikes and the records
    assert growth == 20 * (3 * 6 + lanes * (1 + records))
