"""Adjoint (EventProp) gradients of LSNN (adaptive-threshold) neurons.

* Without spikes the adjoint gradients equal BPTT through :func:`lsnn_feed_forward_step`
  and :func:`lsnn_step` (Heaviside threshold) and pass gradcheck.
* With a spike (a crossing of v - b), the gradient of the later distance to threshold
  v - b with respect to (v0, i0, b0) converges to the continuous-time gradient.
* The recurrent step with identity input weights equals the feed-forward step.
"""

import numpy as np
import torch
from scipy.optimize import brentq

from norse.torch.functional import lsnn
from norse.torch.functional.adjoint.lsnn_adjoint import (
    LSNNFeedForwardAdjointFunction,
    lsnn_adjoint_step,
    lsnn_feed_forward_adjoint_step,
)

F64 = torch.float64
TAU_MEM_INV, TAU_SYN_INV, TAU_ADAPT_INV, BETA = 100.0, 50.0, 50.0, 0.5
P = lsnn.LSNNParameters(
    tau_syn_inv=torch.tensor(TAU_SYN_INV, dtype=F64),
    tau_mem_inv=torch.tensor(TAU_MEM_INV, dtype=F64),
    tau_adapt_inv=torch.tensor(TAU_ADAPT_INV, dtype=F64),
    beta=torch.tensor(BETA, dtype=F64),
    method="heaviside",
)


def _free_voltage(t, v0, i0):
    a, s = TAU_MEM_INV, TAU_SYN_INV
    return v0 * np.exp(-a * t) + i0 * a / (a - s) * (np.exp(-s * t) - np.exp(-a * t))


def _threshold(t, b0):
    return 1.0 + (b0 - 1.0) * np.exp(-TAU_ADAPT_INV * t)


def _after_one_spike(v0, i0, b0, t_end):
    """v(t_end) - b(t_end) of a neuron that spikes once (v - b crosses 0) before t_end."""
    grid = np.linspace(0.0, t_end, 4001)
    gap = _free_voltage(grid, v0, i0) - _threshold(grid, b0)
    k = np.nonzero(gap > 0)[0][0]
    t_k = brentq(
        lambda t: _free_voltage(t, v0, i0) - _threshold(t, b0),
        grid[k - 1],
        grid[k],
        xtol=1e-15,
    )
    i_k, b_k = i0 * np.exp(-TAU_SYN_INV * t_k), _threshold(t_k, b0) + BETA
    after = np.linspace(0.0, t_end - t_k, 2001)
    assert (_free_voltage(after, 0.0, i_k) < _threshold(after, b_k)).all()
    return _free_voltage(t_end - t_k, 0.0, i_k) - _threshold(t_end - t_k, b_k)


def _random_state(seed):
    torch.manual_seed(seed)
    v0 = (torch.rand(3, 4, dtype=F64) * 0.3).requires_grad_()
    i0 = (torch.rand(3, 4, dtype=F64) * 0.3).requires_grad_()
    b0 = (1.0 + torch.rand(3, 4, dtype=F64)).requires_grad_()
    return v0, i0, b0


def test_gradcheck_without_spikes():
    x = torch.rand(3, 4, dtype=F64) * 0.3
    inputs = [x.requires_grad_(), *_random_state(0)]

    def step(x, v, i, b):
        return LSNNFeedForwardAdjointFunction.apply(x, v, i, b, P, 1e-3)

    assert step(*inputs)[0].sum() == 0
    assert torch.autograd.gradcheck(step, inputs)


def test_feed_forward_and_recurrent_equal_bptt_without_spikes():
    v0, i0, b0 = _random_state(1)
    x = (torch.rand(20, 3, 4, dtype=F64) * 0.1).requires_grad_()
    w_in = (torch.rand(4, 4, dtype=F64) * 0.1).requires_grad_()
    w_rec = (torch.rand(4, 4, dtype=F64) * 0.1).requires_grad_()
    z0 = torch.tensor([[1.0, 0.0, 0.0, 1.0]] * 3, dtype=F64)
    c = torch.randn(20, 3, 4, dtype=F64)

    def loss(step, recurrent):
        if recurrent:
            state, args = lsnn.LSNNState(z0, v0, i0, b0), (w_in, w_rec, P, 1e-3)
        else:
            state, args = lsnn.LSNNFeedForwardState(v0, i0, b0), (P, 1e-3)
        total = 0.0
        for t in range(20):
            z, state = step(x[t], state, *args)
            assert z.sum() == 0
            total = total + (c[t] * (state.v + state.b**2)).sum() + state.i.sum()
        return total

    for plain, ours, recurrent in (
        (lsnn.lsnn_feed_forward_step, lsnn_feed_forward_adjoint_step, False),
        (lsnn.lsnn_step, lsnn_adjoint_step, True),
    ):
        wrt = (x, v0, i0, b0, w_in, w_rec) if recurrent else (x, v0, i0, b0)
        expected = torch.autograd.grad(loss(plain, recurrent), wrt)
        actual = torch.autograd.grad(loss(ours, recurrent), wrt)
        for e, a in zip(expected, actual):
            assert e.abs().sum() > 0
            torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)


V0, I0, B0, T_END = [0.0, 0.3], [2.5, 2.4], [1.0, 1.15], 0.012


def test_spike_time_gradient_converges_to_continuous_time(adjoint):
    exact = np.array(
        [
            adjoint.central_difference(
                lambda y: _after_one_spike(y[0], y[1], y[2], T_END), [v0, i0, b0]
            )
            for v0, i0, b0 in zip(V0, I0, B0)
        ]
    )

    def gradient(dt):
        v0, i0, b0 = (
            torch.tensor(x, dtype=F64, requires_grad=True) for x in (V0, I0, B0)
        )
        spikes, state = adjoint.unroll(
            lsnn_feed_forward_adjoint_step,
            lsnn.LSNNFeedForwardState(v0, i0, b0),
            torch.zeros(round(T_END / dt), 2, dtype=F64),
            P,
            dt,
        )
        assert spikes.sum(0).tolist() == [1.0, 1.0]
        grads = torch.autograd.grad((state.v - state.b).sum(), (v0, i0, b0))
        return torch.stack(grads, 1).numpy()

    adjoint.assert_first_order(gradient, exact)


def test_recurrent_equals_feed_forward_with_identity_weights():
    torch.manual_seed(0)
    x = (torch.rand(60, 2, 3, dtype=F64) < 0.4).to(F64) * 2.0
    v0 = torch.zeros(2, 3, dtype=F64, requires_grad=True)
    i0 = torch.zeros(2, 3, dtype=F64, requires_grad=True)
    b0 = torch.ones(2, 3, dtype=F64, requires_grad=True)
    weights = torch.arange(60, dtype=F64)[:, None, None]
    results = []
    for recurrent in (False, True):
        if recurrent:
            state = lsnn.LSNNState(torch.zeros(2, 3, dtype=F64), v0, i0, b0)
            args = (torch.eye(3, dtype=F64), torch.zeros(3, 3, dtype=F64), P, 1e-3)
            step = lsnn_adjoint_step
        else:
            state, args = lsnn.LSNNFeedForwardState(v0, i0, b0), (P, 1e-3)
            step = lsnn_feed_forward_adjoint_step
        outputs = []
        for x_t in x:
            z, state = step(x_t, state, *args)
            outputs.append(z)
        spikes = torch.stack(outputs)
        loss = (spikes * weights).sum() + (state.v + state.b).sum()
        results.append((spikes, *torch.autograd.grad(loss, (v0, i0, b0))))
    assert results[0][0].sum() > 5
    for expected, actual in zip(*results):
        torch.testing.assert_close(actual, expected)
