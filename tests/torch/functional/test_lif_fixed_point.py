"""Fixed-point parallel LIF: the sequential model's spikes, states and gradients."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    lif_feed_forward_step,
)
from norse.torch.functional.lif_fixed_point import (
    FixedPointInfo,
    lif_feed_forward_fixed_point,
)

F64 = torch.float64


def _sequential(x, state, p, dt=0.001):
    spikes, states = [], []
    for x_t in x:
        z, state = lif_feed_forward_step(x_t, state, p, dt)
        spikes.append(z)
        states.append(state)
    return torch.stack(spikes), state, states


def _case(steps, scale, seed=0, neurons=6, per_neuron=False, grad=True):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(steps, 2, neurons, dtype=F64, generator=generator) * scale
    v0 = torch.rand(2, neurons, dtype=F64, generator=generator) * 0.5
    i0 = torch.rand(2, neurons, dtype=F64, generator=generator)
    tau = torch.tensor(150.0, dtype=F64)
    v_th = (
        torch.linspace(0.5, 1.0, neurons, dtype=F64)
        if per_neuron
        else torch.tensor(0.8, dtype=F64)
    )
    for tensor in (x, v0, i0, tau, v_th) if grad else ():
        tensor.requires_grad_()
    p = LIFParameters(
        tau_mem_inv=tau,
        v_th=v_th,
        v_reset=torch.tensor(-0.1, dtype=F64),
        v_leak=torch.tensor(0.05, dtype=F64),
        alpha=torch.tensor(15.0, dtype=F64),
    )
    return x, LIFFeedForwardState(v0, i0), p, (x, v0, i0, tau, v_th)


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("per_neuron", [False, True])
def test_converges_to_the_sequential_spikes_and_states(scale, per_neuron):
    x, state, p, _ = _case(120, scale, per_neuron=per_neuron)
    z, final, info = lif_feed_forward_fixed_point(x, state, p)
    z_ref, final_ref, _ = _sequential(x, state, p)
    assert info.converged and 1 <= info.iterations <= 120
    assert torch.equal(z, z_ref)
    torch.testing.assert_close(final.v, final_ref.v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final.i, final_ref.i, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scale", [0.5, 1.5, 6.0])
def test_iterations_follow_the_spikes_of_the_busiest_neuron(scale):
    steps = 150
    x, state, p, _ = _case(steps, scale, seed=5, grad=False)
    z, _, info = lif_feed_forward_fixed_point(x, state, p)
    most = int(z.sum(0).max())
    # one spike per neuron and iteration at most; a window without a spike moves on by
    # at least 32 steps
    assert most > 0 and info.converged
    assert most <= info.iterations <= most + math.ceil(steps / 32)


def test_without_spikes_iterations_grow_with_log_t():
    x, state, p, _ = _case(30, 0.0, grad=False)
    z, _, info = lif_feed_forward_fixed_point(x, state, p)
    assert info == FixedPointInfo(1, True) and z.sum() == 0
    # windows of 32, 64, 128, ... steps: 6 cover 1000
    x, state, p, _ = _case(1000, 0.0, grad=False)
    z, _, info = lif_feed_forward_fixed_point(x, state, p)
    assert info == FixedPointInfo(6, True) and z.sum() == 0


@pytest.mark.parametrize("per_neuron", [False, True])
def test_gradient_equals_bptt_through_the_step_function(per_neuron):
    x, state, p, leaves = _case(90, 1.2, seed=3, per_neuron=per_neuron)
    z, final, info = lif_feed_forward_fixed_point(x, state, p)
    z_ref, final_ref, _ = _sequential(x, state, p)
    assert info.converged and z.sum() > 20
    weights = torch.randn(
        z.shape, dtype=F64, generator=torch.Generator().manual_seed(9)
    )

    def loss(z, final):
        return (z * weights).sum() + (final.v**2).sum() + final.i.sum()

    grads = torch.autograd.grad(loss(z, final), leaves)
    grads_ref = torch.autograd.grad(loss(z_ref, final_ref), leaves)
    for name, grad, ref in zip(
        ("x", "v0", "i0", "tau_mem_inv", "v_th"), grads, grads_ref
    ):
        assert ref.abs().max() > 0, name
        torch.testing.assert_close(grad, ref, rtol=1e-9, atol=1e-12, msg=name)


def test_record_states_equal_every_sequential_state():
    x, state, p, _ = _case(60, 1.5, grad=False)
    z, recorded, info = lif_feed_forward_fixed_point(x, state, p, record_states=True)
    _, _, states = _sequential(x, state, p)
    torch.testing.assert_close(recorded.v, torch.stack([s.v for s in states]))
    torch.testing.assert_close(recorded.i, torch.stack([s.i for s in states]))


@given(
    steps=st.integers(1, 40),
    scale=st.floats(0.0, 5.0),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=30, deadline=None)
def test_property_fixed_point_is_the_sequential_model(steps, scale, seed):
    x, state, p, _ = _case(steps, scale, seed=seed, neurons=3, grad=False)
    z, final, info = lif_feed_forward_fixed_point(x, state, p)
    z_ref, final_ref, _ = _sequential(x, state, p)
    # the iteration bound: T always suffices
    assert info.converged and info.iterations <= steps
    assert torch.equal(z, z_ref)
    torch.testing.assert_close(final.v, final_ref.v, rtol=1e-10, atol=1e-10)


def test_iteration_limit_reports_no_convergence():
    x, state, p, _ = _case(100, 2.0, grad=False)
    _, _, full = lif_feed_forward_fixed_point(x, state, p)
    assert full.iterations > 2
    z, _, limited = lif_feed_forward_fixed_point(x, state, p, max_iterations=2)
    assert limited == FixedPointInfo(2, False)
    # the last iterate is right up to its first spike at least
    z_ref, _, _ = _sequential(x, state, p)
    first = z_ref.flatten(1).argmax(0)
    for neuron, t in enumerate(first.tolist()):
        assert torch.equal(
            z.flatten(1)[: t + 1, neuron], z_ref.flatten(1)[: t + 1, neuron]
        )


def test_float32_equals_the_sequential_model():
    x, state, p, _ = _case(200, 1.5, grad=False)
    x = x.float()
    state = LIFFeedForwardState(state.v.float(), state.i.float())
    p = LIFParameters(v_th=torch.tensor(0.8))
    z, final, info = lif_feed_forward_fixed_point(x, state, p)
    z_ref, final_ref, _ = _sequential(x, state, p)
    assert info.converged and torch.equal(z, z_ref)
    torch.testing.assert_close(final.v, final_ref.v)


def test_errors_name_the_argument():
    x = torch.ones(5, 2)
    state = LIFFeedForwardState(torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="p.method must be a deterministic"):
        lif_feed_forward_fixed_point(x, state, LIFParameters(method="logistic"))
    with pytest.raises(ValueError, match="max_iterations must be a positive int"):
        lif_feed_forward_fixed_point(x, state, max_iterations=0)
    with pytest.raises(ValueError, match=r"input_tensor must have shape \(T, \.\.\.\)"):
        lif_feed_forward_fixed_point(torch.ones(0, 2), state)
