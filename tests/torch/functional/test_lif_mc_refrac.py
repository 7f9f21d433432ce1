import numpy as np
import pytest
import torch

from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters, LIFState
from norse.torch.functional.lif_mc_refrac import (
    lif_mc_refrac_feed_forward_step,
    lif_mc_refrac_step,
)
from norse.torch.functional.lif_refrac import (
    LIFRefracFeedForwardState,
    LIFRefracParameters,
    LIFRefracState,
)

F64 = torch.float64
P = LIFRefracParameters(LIFParameters(v_leak=torch.tensor(-0.1)))
G = 50.0 * np.array([[-1.0, 1.0, 0.0], [1.0, -2.0, 1.0], [0.0, 1.0, -1.0]])
T_END = 0.02
RATE = np.array([30.0, 0.0, 10.0])
V0, I0 = np.array([0.6, 0.1, -0.2]), np.array([1.0, 0.0, 0.5])


def _rhs(t, y, refractory, p=P.lif):
    v, i = y[:3], y[3:]
    # while refractory only the coupling moves the voltage
    dv = (1 - refractory) * float(p.tau_mem_inv) * (float(p.v_leak) - v + i) + G @ v
    return np.concatenate([dv, -float(p.tau_syn_inv) * i + RATE])


def _run(dt, recurrent, rho0):
    v, i = torch.tensor(V0[None]), torch.tensor(I0[None])
    g, rate = torch.tensor(G), torch.tensor(RATE[None])
    rho = torch.full_like(v, rho0)
    if recurrent:
        state = LIFRefracState(LIFState(torch.zeros_like(v), v, i), rho)
    else:
        state = LIFRefracFeedForwardState(LIFFeedForwardState(v, i), rho)
    for _ in range(round(T_END / dt)):
        if recurrent:
            eye, zeros = torch.eye(3, dtype=F64), torch.zeros(3, 3, dtype=F64)
            z, state = lif_mc_refrac_step(rate * dt, state, eye, zeros, g, P, dt)
        else:
            z, state = lif_mc_refrac_feed_forward_step(rate * dt, state, g, P, dt)
        assert z.sum() == 0
    return np.concatenate([state.lif.v[0].numpy(), state.lif.i[0].numpy()])


@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("refractory", [0, 1])
def test_dynamics_converge_to_ode_at_first_order(recurrent, refractory, ode):
    # refractory=1: rho starts so high that it never runs out; the coupling term must
    # scale with dt (Norse 1.1 omitted dt there, which this test would catch)
    y0 = np.concatenate([V0, I0])
    reference = ode.reference(lambda t, y: _rhs(t, y, refractory), y0, T_END)
    rho0 = 1e7 * refractory
    ode.assert_first_order(lambda dt: _run(dt, recurrent, rho0), reference)


def test_refractory_compartment_cannot_spike():
    p = LIFRefracParameters()
    g = torch.zeros(2, 2)
    state = LIFRefracFeedForwardState(
        LIFFeedForwardState(torch.full((2,), 5.0), torch.full((2,), 5.0)),
        torch.tensor([0.0, 3.0]),
    )
    z, new = lif_mc_refrac_feed_forward_step(torch.zeros(2), state, g, p)
    torch.testing.assert_close(z, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(new.rho, torch.tensor([5.0, 2.0]))
    assert new.lif.v[0].item() == 0.0 and new.lif.v[1].item() == 5.0


def test_spike_then_five_silent_steps():
    p = LIFRefracParameters()
    zeros = torch.zeros(1, 1)
    state = LIFRefracState(LIFState(zeros, zeros, zeros), zeros)
    spikes = []
    for _ in range(30):
        z, state = lif_mc_refrac_step(
            torch.full((1, 1), 3.0),
            state,
            torch.ones(1, 1),
            torch.zeros(1, 1),
            torch.zeros(1, 1),
            p,
        )
        spikes.append(int(z.item()))
    times = [t for t, s in enumerate(spikes) if s]
    assert len(times) >= 2 and all(b - a >= 6 for a, b in zip(times, times[1:]))


def test_gradcheck_feed_forward_and_recurrent():
    torch.manual_seed(0)
    p = LIFRefracParameters(
        LIFParameters(method="heaviside"), rho_reset=torch.tensor(2.0)
    )
    x = (torch.rand(6, 2, 3, dtype=F64) * 2).requires_grad_()
    g = (torch.randn(3, 3, dtype=F64) * 10).requires_grad_()
    w_in = torch.randn(3, 3, dtype=F64).requires_grad_()

    def feed_forward(x, g):
        zeros = torch.zeros(2, 3, dtype=F64)
        state = LIFRefracFeedForwardState(LIFFeedForwardState(zeros, zeros), zeros)
        for xt in x:
            _, state = lif_mc_refrac_feed_forward_step(xt, state, g, p)
        return state.lif.v, state.lif.i

    def recurrent(x, g, w_in):
        zeros = torch.zeros(2, 3, dtype=F64)
        state = LIFRefracState(LIFState(zeros, zeros, zeros), zeros)
        for xt in x:
            _, state = lif_mc_refrac_step(
                xt, state, w_in, torch.zeros(3, 3, dtype=F64), g, p
            )
        return state.lif.v, state.lif.i

    assert torch.autograd.gradcheck(feed_forward, (x, g))
    assert torch.autograd.gradcheck(recurrent, (x, g, w_in))
