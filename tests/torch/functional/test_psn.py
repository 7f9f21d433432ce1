"""Parallel spiking neurons against sequential references written here, with gradients."""

import pytest
import torch

from norse.torch.functional.psn import (
    PSNParameters,
    SlidingPSNState,
    masked_psn_mask,
    psn_feed_forward,
    psn_membrane,
    sliding_psn_feed_forward,
    sliding_psn_initial_state,
    sliding_psn_step,
)
from norse.torch.functional.threshold import threshold

F64 = torch.float64
P = PSNParameters(method="super", alpha=torch.tensor(5.0))


def _psn_reference(x, weight, bias, p):
    """Step by step: H_t = sum_s W[t, s] X_s + b_t, then the threshold."""
    steps = x.shape[0]
    spikes = []
    for t in range(steps):
        h = bias[t] + sum(weight[t, s] * x[s] for s in range(steps))
        spikes.append(threshold(h, p.method, p.alpha))
    return torch.stack(spikes)


def _sliding_reference(x, weight, bias, p, history=()):
    """SpikingJelly's queue: the last k inputs, weighed by the last weights."""
    order = weight.shape[0]
    queue = list(history)
    spikes = []
    for x_t in x:
        queue.append(x_t)
        if len(queue) > order:
            queue.pop(0)
        tail = weight[order - len(queue) :]
        h = bias + sum(w * q for w, q in zip(tail, queue))
        spikes.append(threshold(h, p.method, p.alpha))
    return torch.stack(spikes)


def _tensors(steps, order=None, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, 2, 3, dtype=F64, generator=generator).requires_grad_()
    size = (steps, steps) if order is None else (order,)
    weight = torch.randn(size, dtype=F64, generator=generator).requires_grad_()
    if order is None:
        bias = torch.randn(steps, dtype=F64, generator=generator) * 0.3 - 0.5
    else:
        bias = torch.tensor(-0.3, dtype=F64)
    return x, weight, bias.requires_grad_()


def _assert_same_with_gradients(out, ref, leaves):
    assert torch.equal(out, ref)
    assert 0 < out.sum() < out.numel()
    weights = torch.randn(
        out.shape, dtype=F64, generator=torch.Generator().manual_seed(1)
    )
    grads = torch.autograd.grad((out * weights).sum(), leaves, retain_graph=True)
    grads_ref = torch.autograd.grad((ref * weights).sum(), leaves)
    for grad, grad_ref in zip(grads, grads_ref):
        assert grad_ref.abs().max() > 0
        torch.testing.assert_close(grad, grad_ref, rtol=1e-12, atol=1e-12)


def test_psn_equals_the_sequential_sum():
    x, weight, bias = _tensors(7)
    out = psn_feed_forward(x, weight, bias, P)
    _assert_same_with_gradients(
        out, _psn_reference(x, weight, bias, P), (x, weight, bias)
    )


def test_psn_membrane_gradcheck():
    x, weight, bias = _tensors(5)
    assert torch.autograd.gradcheck(psn_membrane, (x, weight, bias))


@pytest.mark.parametrize("order", [1, 2, 4])
def test_masked_psn_mask_band(order):
    steps = 6
    mask = masked_psn_mask(steps, order)
    for t in range(steps):
        for s in range(steps):
            assert mask[t, s] == (1.0 if s <= t <= s + order - 1 else 0.0)
    blended = masked_psn_mask(steps, order, 0.25)
    torch.testing.assert_close(blended, 0.25 * mask + 0.75)


def test_masked_psn_is_causal_with_order_k():
    steps, order = 8, 3
    x, weight, bias = _tensors(steps)
    masked = weight * masked_psn_mask(steps, order, dtype=F64)
    out = psn_feed_forward(x, masked, bias, P)
    _assert_same_with_gradients(
        out, _psn_reference(x, masked, bias, P), (x, weight, bias)
    )
    # changing an input outside the window of step t changes nothing at t
    h = psn_membrane(x.detach(), masked.detach(), bias.detach())
    later = x.detach().clone()
    later[5] += 10.0
    h_later = psn_membrane(later, masked.detach(), bias.detach())
    torch.testing.assert_close(h[:5], h_later[:5])
    assert not torch.allclose(h[5:8], h_later[5:8])
    earlier = x.detach().clone()
    earlier[0] += 10.0  # outside the window of steps >= 3
    torch.testing.assert_close(
        psn_membrane(earlier, masked.detach(), bias.detach())[3:], h[3:]
    )


@pytest.mark.parametrize("order", [1, 2, 5])
def test_sliding_psn_equals_the_queue_reference(order):
    x, weight, bias = _tensors(9, order=order)
    state = sliding_psn_initial_state(x[0], order)
    out, final = sliding_psn_feed_forward(x, state, weight, bias, P)
    ref = _sliding_reference(x, weight, bias, P)
    _assert_same_with_gradients(out, ref, (x, weight, bias))
    assert final.history.shape == (order - 1, 2, 3)
    torch.testing.assert_close(final.history, x[9 - (order - 1) :].detach())


def test_sliding_psn_equals_spikingjelly_gemm_form():
    # SpikingJelly's gemm backend: row t of a (T, T) matrix holds the last weights
    steps, order = 7, 3
    x, weight, bias = _tensors(steps, order=order)
    matrix = torch.zeros(steps, steps, dtype=F64)
    for t in range(steps):
        start = max(0, t + 1 - order)
        matrix[t, start : t + 1] = weight.detach()[order - (t + 1 - start) :]
    out, _ = sliding_psn_feed_forward(
        x, sliding_psn_initial_state(x[0], order), weight, bias, P
    )
    bias_row = bias.detach().expand(steps)
    torch.testing.assert_close(
        out, psn_feed_forward(x.detach(), matrix, bias_row, P), rtol=0, atol=0
    )


def test_sliding_psn_steps_and_pieces_equal_the_whole_sequence():
    order = 4
    x, weight, bias = _tensors(10, order=order)
    whole, _ = sliding_psn_feed_forward(
        x, sliding_psn_initial_state(x[0], order), weight, bias, P
    )
    state = sliding_psn_initial_state(x[0], order)
    first, state = sliding_psn_feed_forward(x[:3], state, weight, bias, P)
    second, state = sliding_psn_feed_forward(x[3:], state, weight, bias, P)
    assert torch.equal(torch.cat((first, second)), whole)
    state, steps = sliding_psn_initial_state(x[0], order), []
    for x_t in x:
        z, state = sliding_psn_step(x_t, state, weight, bias, P)
        steps.append(z)
    assert torch.equal(torch.stack(steps), whole)


def test_errors_name_the_argument():
    x = torch.ones(4, 2)
    with pytest.raises(ValueError, match=r"weight must have shape \(T, T\) = \(4, 4\)"):
        psn_feed_forward(x, torch.ones(3, 3), torch.ones(4))
    with pytest.raises(ValueError, match=r"bias must have shape \(T,\) = \(4,\)"):
        psn_feed_forward(x, torch.ones(4, 4), torch.ones(3))
    with pytest.raises(ValueError, match="order must be a positive int"):
        masked_psn_mask(4, 0)
    with pytest.raises(ValueError, match=r"state.history must have shape"):
        sliding_psn_feed_forward(
            x, SlidingPSNState(torch.zeros(1, 2)), torch.ones(3), torch.tensor(0.0)
        )
    with pytest.raises(ValueError, match=r"weight must have shape \(k,\)"):
        sliding_psn_feed_forward(
            x, SlidingPSNState(torch.zeros(1, 2)), torch.ones(2, 2), torch.tensor(0.0)
        )
