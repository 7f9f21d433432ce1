import numpy as np
import pytest
import torch

from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters, LIFState
from norse.torch.functional.lif_mc import lif_mc_feed_forward_step, lif_mc_step

F64 = torch.float64
P = LIFParameters(v_leak=torch.tensor(-0.1))
# diffusive coupling between three compartments in a chain (1/s)
G = 50.0 * np.array([[-1.0, 1.0, 0.0], [1.0, -2.0, 1.0], [0.0, 1.0, -1.0]])
T_END = 0.02
RATE = np.array([30.0, 0.0, 10.0])
V0, I0 = np.array([0.6, 0.1, -0.2]), np.array([1.0, 0.0, 0.5])


def _rhs(t, y, p=P):
    v, i = y[:3], y[3:]
    dv = float(p.tau_mem_inv) * (float(p.v_leak) - v + i) + G @ v
    return np.concatenate([dv, -float(p.tau_syn_inv) * i + RATE])


def _run(dt, recurrent):
    v, i = torch.tensor(V0[None]), torch.tensor(I0[None])
    g, rate = torch.tensor(G), torch.tensor(RATE[None])
    state = (
        LIFState(torch.zeros_like(v), v, i) if recurrent else LIFFeedForwardState(v, i)
    )
    for _ in range(round(T_END / dt)):
        if recurrent:
            eye, zeros = torch.eye(3, dtype=F64), torch.zeros(3, 3, dtype=F64)
            z, state = lif_mc_step(rate * dt, state, eye, zeros, g, P, dt)
        else:
            z, state = lif_mc_feed_forward_step(rate * dt, state, g, P, dt)
        assert z.sum() == 0
    return np.concatenate([state.v[0].numpy(), state.i[0].numpy()])


@pytest.mark.parametrize("recurrent", [False, True])
def test_subthreshold_dynamics_converge_to_ode_at_first_order(recurrent, ode):
    y0 = np.concatenate([V0, I0])
    reference = ode.reference(_rhs, y0, T_END)
    uncoupled = ode.reference(
        lambda t, y: _rhs(t, y) - np.concatenate([G @ y[:3], np.zeros(3)]), y0, T_END
    )
    assert np.abs(reference - uncoupled).max() > 0.05  # the coupling matters
    ode.assert_first_order(lambda dt: _run(dt, recurrent), reference)


def test_zero_coupling_is_plain_lif():
    from norse.torch.functional.lif import lif_feed_forward_step

    x = torch.rand(10, 2, 3) * 2
    state_mc = state_lif = LIFFeedForwardState(torch.zeros(2, 3), torch.zeros(2, 3))
    for xt in x:
        z_mc, state_mc = lif_mc_feed_forward_step(xt, state_mc, torch.zeros(3, 3))
        z_lif, state_lif = lif_feed_forward_step(xt, state_lif)
        torch.testing.assert_close(z_mc, z_lif)
    torch.testing.assert_close(state_mc.v, state_lif.v)


def test_gradcheck_through_coupling():
    torch.manual_seed(0)
    p = LIFParameters(method="heaviside")
    x = (torch.rand(5, 2, 3, dtype=F64) * 2).requires_grad_()
    g = (torch.randn(3, 3, dtype=F64) * 10).requires_grad_()
    w_in = torch.randn(3, 3, dtype=F64).requires_grad_()

    def feed_forward(x, g):
        state = LIFFeedForwardState(
            torch.zeros(2, 3, dtype=F64), torch.zeros(2, 3, dtype=F64)
        )
        for xt in x:
            _, state = lif_mc_feed_forward_step(xt, state, g, p)
        return state.v

    def recurrent(x, g, w_in):
        zeros = torch.zeros(2, 3, dtype=F64)
        state = LIFState(zeros, zeros, zeros)
        for xt in x:
            _, state = lif_mc_step(xt, state, w_in, torch.zeros(3, 3, dtype=F64), g, p)
        return state.v

    assert torch.autograd.gradcheck(feed_forward, (x, g))
    assert torch.autograd.gradcheck(recurrent, (x, g, w_in))
