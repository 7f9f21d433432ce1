"""Adjoint (EventProp) gradients of refractory LIF neurons.

* Without spikes (some neurons refractory at the start) the adjoint gradients equal BPTT
  through :func:`lif_refrac_feed_forward_step` (Heaviside threshold) and pass gradcheck.
* With a spike and a refractory period of fixed duration, the gradient of a later voltage
  converges to the continuous-time gradient, whose spike time moves the release; the
  gradient of an initial ``rho`` converges to the release-time derivative.
* ``rho_reset = 0`` reduces to the LIF adjoint; the recurrent and sparse forms agree with
  the feed-forward one.
"""

import numpy as np
import torch
from scipy.optimize import brentq

from norse.torch.functional import lif_refrac
from norse.torch.functional.adjoint.lif_adjoint import lif_feed_forward_adjoint_step
from norse.torch.functional.adjoint.lif_refrac_adjoint import (
    LIFAdjointRefracFeedForwardFunction,
    lif_refrac_adjoint_step,
    lif_refrac_adjoint_step_sparse,
    lif_refrac_feed_forward_adjoint_step,
)
from norse.torch.functional.heaviside import heaviside
from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters, LIFState

F64 = torch.float64
TAU_MEM_INV, TAU_SYN_INV = 100.0, 50.0
LIF_P = LIFParameters(
    tau_syn_inv=torch.tensor(TAU_SYN_INV, dtype=F64),
    tau_mem_inv=torch.tensor(TAU_MEM_INV, dtype=F64),
    method="heaviside",
)


def _p(rho_reset: float) -> lif_refrac.LIFRefracParameters:
    return lif_refrac.LIFRefracParameters(
        LIF_P, torch.tensor(float(rho_reset), dtype=F64)
    )


def _state(v, i, rho) -> lif_refrac.LIFRefracFeedForwardState:
    return lif_refrac.LIFRefracFeedForwardState(LIFFeedForwardState(v, i), rho)


def _free_voltage(t, v0, i0):
    a, s = TAU_MEM_INV, TAU_SYN_INV
    return v0 * np.exp(-a * t) + i0 * a / (a - s) * (np.exp(-s * t) - np.exp(-a * t))


def _spike_time(v0, i0, t_end):
    grid = np.linspace(0.0, t_end, 4001)
    k = np.nonzero(_free_voltage(grid, v0, i0) > 1.0)[0][0]
    return brentq(
        lambda t: _free_voltage(t, v0, i0) - 1.0, grid[k - 1], grid[k], xtol=1e-15
    )


def _released_voltage(v_held, i0, t_release, t_end):
    """v(t_end) of a neuron held at ``v_held`` until ``t_release`` (current decaying
    from ``i0`` at t = 0), then free and below threshold."""
    i_release = i0 * np.exp(-TAU_SYN_INV * t_release)
    after = np.linspace(0.0, t_end - t_release, 2001)
    assert (_free_voltage(after, v_held, i_release) < 1.0).all(), "second spike"
    return _free_voltage(t_end - t_release, v_held, i_release)


def test_gradcheck_without_spikes():
    torch.manual_seed(0)
    x, v, i = (torch.rand(2, 4, dtype=F64) * 0.3 for _ in range(3))
    rho = torch.tensor([[0.0, 1.0, 3.0, 0.0]] * 2, dtype=F64)
    inputs = [t.requires_grad_() for t in (x, v, i)]

    def step(x, v, i):
        return LIFAdjointRefracFeedForwardFunction.apply(x, v, i, rho, _p(5), 1e-3)

    assert step(*inputs)[0].sum() == 0
    assert torch.autograd.gradcheck(step, inputs)


def test_equals_bptt_without_spikes():
    torch.manual_seed(1)
    x = (torch.rand(20, 3, 4, dtype=F64) * 0.1).requires_grad_()
    v0 = (torch.rand(3, 4, dtype=F64) * 0.3).requires_grad_()
    i0 = (torch.rand(3, 4, dtype=F64) * 0.3).requires_grad_()
    rho0 = torch.randint(0, 8, (3, 4)).to(F64)
    c = torch.randn(20, 3, 4, dtype=F64)

    def loss(step):
        state, total = _state(v0, i0, rho0), 0.0
        for t in range(20):
            z, state = step(x[t], state, _p(5), 1e-3)
            assert z.sum() == 0
            total = total + (c[t] * state.lif.v).sum() + (state.lif.i**2).sum()
        return total

    reference = torch.autograd.grad(
        loss(lif_refrac.lif_refrac_feed_forward_step), (x, v0, i0)
    )
    ours = torch.autograd.grad(loss(lif_refrac_feed_forward_adjoint_step), (x, v0, i0))
    for expected, actual in zip(reference, ours):
        assert expected.abs().sum() > 0
        torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


V0, I0, T_END, T_REFRAC = [0.0, 0.3], [2.5, 2.2], 0.016, 0.002


def test_spike_time_moves_the_release(adjoint):
    """v(T) after a spike and a refractory period of T_REFRAC seconds: its gradient with
    respect to (v0, i0) converges to the continuous-time one (spike time included)."""

    def v_end(v0, i0):
        t_release = _spike_time(v0, i0, T_END) + T_REFRAC
        return _released_voltage(0.0, i0, t_release, T_END)

    exact = np.array(
        [
            adjoint.central_difference(lambda y: v_end(y[0], y[1]), [v0, i0])
            for v0, i0 in zip(V0, I0)
        ]
    )

    def gradient(dt):
        v0 = torch.tensor(V0, dtype=F64, requires_grad=True)
        i0 = torch.tensor(I0, dtype=F64, requires_grad=True)
        spikes, state = adjoint.unroll(
            lif_refrac_feed_forward_adjoint_step,
            _state(v0, i0, torch.zeros(2, dtype=F64)),
            torch.zeros(round(T_END / dt), 2, dtype=F64),
            _p(round(T_REFRAC / dt)),
            dt,
        )
        assert spikes.sum(0).tolist() == [1.0, 1.0]
        grads = torch.autograd.grad(state.lif.v.sum(), (v0, i0))
        return torch.stack(grads, 1).numpy()

    adjoint.assert_first_order(gradient, exact)


def test_initial_rho_gets_the_release_time_gradient(adjoint):
    """A neuron held at v0 for rho0 steps: the gradient of rho0 is dt times the
    derivative of v(T) with respect to the release time."""
    v_held, i0, t_release, t_end = 0.2, 1.5, 0.003, 0.01
    exact = adjoint.central_difference(
        lambda y: _released_voltage(v_held, i0, y[0], t_end), [t_release]
    )

    def gradient(dt):
        rho0 = torch.tensor([t_release / dt], dtype=F64, requires_grad=True)
        state = _state(
            torch.tensor([v_held], dtype=F64), torch.tensor([i0], dtype=F64), rho0
        )
        spikes, state = adjoint.unroll(
            lif_refrac_feed_forward_adjoint_step,
            state,
            torch.zeros(round(t_end / dt), 1, dtype=F64),
            _p(5),
            dt,
        )
        assert spikes.sum() == 0
        return torch.autograd.grad(state.lif.v.sum(), rho0)[0].numpy() / dt

    adjoint.assert_first_order(gradient, exact)


def test_without_refractory_period_equals_lif():
    v0 = torch.tensor([0.0, 0.3], dtype=F64, requires_grad=True)
    i0 = torch.tensor([4.0, 3.0], dtype=F64, requires_grad=True)
    x = torch.rand(200, 2, dtype=F64)
    lif_state = LIFFeedForwardState(v0, i0)
    refrac_state = _state(v0, i0, torch.zeros(2, dtype=F64))
    losses = []
    for t in range(200):
        z_lif, lif_state = lif_feed_forward_adjoint_step(x[t], lif_state, LIF_P, 1e-4)
        z_ref, refrac_state = lif_refrac_feed_forward_adjoint_step(
            x[t], refrac_state, _p(0), 1e-4
        )
        torch.testing.assert_close(z_ref, z_lif)
        losses.append((t * z_lif.sum(), t * z_ref.sum()))
    assert sum(loss for loss, _ in losses) > 0
    lif_loss = sum(loss for loss, _ in losses) + lif_state.v.sum()
    refrac_loss = sum(loss for _, loss in losses) + refrac_state.lif.v.sum()
    for expected, actual in zip(
        torch.autograd.grad(lif_loss, (v0, i0)),
        torch.autograd.grad(refrac_loss, (v0, i0)),
    ):
        torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_recurrent_and_sparse_forms_equal_feed_forward():
    """With identity input weights and no recurrent weights the recurrent step is the
    feed-forward step; its sparse form gives the same spikes and gradients."""
    torch.manual_seed(0)
    x = (torch.rand(40, 2, 3, dtype=F64) < 0.5).to(F64) * 3.0
    v0 = torch.zeros(2, 3, dtype=F64, requires_grad=True)
    i0 = torch.zeros(2, 3, dtype=F64, requires_grad=True)
    w_in = torch.eye(3, dtype=F64, requires_grad=True)
    w_rec = torch.zeros(3, 3, dtype=F64, requires_grad=True)
    zero = torch.zeros(2, 3, dtype=F64)
    weights = torch.arange(40, dtype=F64)[:, None, None]

    def run(step, sparse):
        if step is lif_refrac_feed_forward_adjoint_step:
            state = _state(v0, i0, zero)
            args = (_p(3), 1e-3)
        else:
            z0 = zero.to_sparse() if sparse else zero
            state = lif_refrac.LIFRefracState(LIFState(z0, v0, i0), zero)
            args = (w_in, w_rec, _p(3), 1e-3)
        outputs = []
        for x_t in x:
            z, state = step(x_t.to_sparse() if sparse else x_t, state, *args)
            outputs.append(z.to_dense() if sparse else z)
        spikes = torch.stack(outputs)
        loss = (spikes * weights).sum() + state.lif.v.sum() + state.lif.i.sum()
        return spikes, *torch.autograd.grad(loss, (v0, i0))

    reference = run(lif_refrac_feed_forward_adjoint_step, False)
    assert reference[0].sum() > 5
    for step, sparse in (
        (lif_refrac_adjoint_step, False),
        (lif_refrac_adjoint_step_sparse, True),
    ):
        for expected, actual in zip(reference, run(step, sparse)):
            torch.testing.assert_close(actual, expected)


def test_norse_names_and_forward_equal_the_plain_recurrent_step():
    """Norse 1.1 exposes the plain steps in the adjoint modules; the adjoint recurrent
    step runs the same forward pass as :func:`lif_refrac_step` with a Heaviside
    threshold (Norse's own comparison of the two is not collected by its suite)."""
    import norse.torch.functional.adjoint.lif_adjoint as lif_adjoint
    import norse.torch.functional.adjoint.lif_refrac_adjoint as refrac_adjoint
    import norse.torch.functional.adjoint.lsnn_adjoint as lsnn_adjoint
    import norse.torch.functional.lif as lif
    import norse.torch.functional.lsnn as lsnn

    assert refrac_adjoint.lif_refrac_step is lif_refrac.lif_refrac_step
    assert refrac_adjoint.heaviside is heaviside
    for name in ("lif_step", "lif_step_sparse", "lif_feed_forward_step_sparse"):
        assert getattr(lif_adjoint, name) is getattr(lif, name)
    assert lsnn_adjoint.lsnn_step is lsnn.lsnn_step

    torch.manual_seed(1)
    p = lif_refrac.LIFRefracParameters(
        LIFParameters(method="heaviside"), torch.tensor(5.0)
    )
    w_in, w_rec = torch.randn(10, 10), torch.randn(10, 10)
    start = lif_refrac.LIFRefracState(
        LIFState(z=torch.zeros(10), v=torch.zeros(10), i=torch.zeros(10)),
        rho=5 * torch.ones(10),
    )
    s0 = s1 = start
    count = 0
    for _ in range(100):
        z0, s0 = lif_refrac_adjoint_step(torch.ones(1, 10), s0, w_in, w_rec, p)
        z1, s1 = refrac_adjoint.lif_refrac_step(torch.ones(1, 10), s1, w_in, w_rec, p)
        torch.testing.assert_close(z0, z1)
        torch.testing.assert_close(s0.lif.v, s1.lif.v)
        torch.testing.assert_close(s0.lif.i, s1.lif.i)
        torch.testing.assert_close(s0.rho, s1.rho)
        count += z0.sum()
    assert count > 0
