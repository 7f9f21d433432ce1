import math

import numpy as np
import pytest
import torch

from norse.torch.functional.lif_adex import (
    LIFAdExFeedForwardState,
    LIFAdExParameters,
    LIFAdExState,
)
from norse.torch.functional.lif_adex_refrac import (
    LIFAdExRefracFeedForwardState,
    LIFAdExRefracParameters,
    LIFAdExRefracState,
    lif_adex_refrac_feed_forward_step,
    lif_adex_refrac_step,
)

F64 = torch.float64
P = LIFAdExRefracParameters(
    LIFAdExParameters(tau_ada_inv=torch.tensor(50.0), v_leak=torch.tensor(-0.1))
)
T_END, RATE = 0.02, 100.0
Y0 = (0.5, 0.5, 0.2)  # v, i, a


def _rhs(t, y, p=P.lif_adex):
    v, i, a = y
    exp_term = float(p.delta_T) * math.exp((v - float(p.v_th)) / float(p.delta_T))
    return [
        float(p.tau_mem_inv) * (float(p.v_leak) - v + exp_term + i - a),
        -float(p.tau_syn_inv) * i + RATE,
        float(p.tau_ada_inv)
        * (float(p.adaptation_current) * (v - float(p.v_leak)) - a),
    ]


def _run_feed_forward(dt):
    adex = LIFAdExFeedForwardState(*(torch.tensor([y], dtype=F64) for y in Y0))
    state = LIFAdExRefracFeedForwardState(adex, torch.zeros(1, dtype=F64))
    for _ in range(round(T_END / dt)):
        z, state = lif_adex_refrac_feed_forward_step(
            torch.full((1,), RATE * dt, dtype=F64), state, P, dt
        )
        assert z.item() == 0
    return np.array(
        [state.lif_adex.v.item(), state.lif_adex.i.item(), state.lif_adex.a.item()]
    )


def _run_recurrent(dt):
    adex = LIFAdExState(
        torch.zeros(1, 1, dtype=F64), *(torch.tensor([[y]], dtype=F64) for y in Y0)
    )
    state = LIFAdExRefracState(adex, torch.zeros(1, 1, dtype=F64))
    w = torch.ones(1, 1, dtype=F64)
    for _ in range(round(T_END / dt)):
        z, state = lif_adex_refrac_step(
            torch.full((1, 1), RATE * dt, dtype=F64), state, w, w, P, dt
        )
        assert z.item() == 0
    return np.array(
        [state.lif_adex.v.item(), state.lif_adex.i.item(), state.lif_adex.a.item()]
    )


@pytest.mark.parametrize("simulate", [_run_feed_forward, _run_recurrent])
def test_subthreshold_dynamics_converge_to_adex_ode_at_first_order(simulate, ode):
    ode.assert_first_order(simulate, ode.reference(_rhs, Y0, T_END))


def test_no_spikes_while_refractory():
    p = LIFAdExRefracParameters()
    state = LIFAdExRefracFeedForwardState(
        LIFAdExFeedForwardState(torch.zeros(1), torch.zeros(1), torch.zeros(1)),
        torch.zeros(1),
    )
    spikes, rhos, voltages = [], [], []
    for _ in range(40):
        z, state = lif_adex_refrac_feed_forward_step(torch.full((1,), 3.0), state, p)
        spikes.append(int(z.item()))
        rhos.append(state.rho.item())
        voltages.append(state.lif_adex.v.item())
    times = [t for t, s in enumerate(spikes) if s]
    assert len(times) >= 3
    for t in times[:-1]:
        assert rhos[t : t + 6] == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
        assert spikes[t + 1 : t + 6] == [0] * 5
        assert voltages[t : t + 6] == [0.0] * 6


def test_suppressed_spike_does_not_adapt():
    p = LIFAdExRefracParameters()
    adex = LIFAdExFeedForwardState(
        torch.full((2,), 5.0), torch.full((2,), 10.0), torch.zeros(2)
    )
    state = LIFAdExRefracFeedForwardState(adex, torch.tensor([0.0, 2.0]))
    z, new = lif_adex_refrac_feed_forward_step(torch.zeros(2), state, p)
    torch.testing.assert_close(z, torch.tensor([1.0, 0.0]))
    a_decayed = 0.001 * 2.0 * 4.0 * 5.0  # dt * tau_ada_inv * adaptation_current * v
    torch.testing.assert_close(
        new.lif_adex.a, torch.tensor([a_decayed + 0.02, a_decayed])
    )
    torch.testing.assert_close(new.lif_adex.v, torch.tensor([0.0, 5.0]))


def test_recurrent_state_holds_masked_spikes():
    p = LIFAdExRefracParameters()
    adex = LIFAdExState(
        torch.zeros(1, 2), torch.full((1, 2), 5.0), torch.zeros(1, 2), torch.zeros(1, 2)
    )
    state = LIFAdExRefracState(adex, torch.tensor([[0.0, 2.0]]))
    z, new = lif_adex_refrac_step(
        torch.ones(1, 2), state, torch.eye(2), torch.zeros(2, 2), p
    )
    torch.testing.assert_close(z, torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(new.lif_adex.z, z)
    torch.testing.assert_close(new.rho, torch.tensor([[5.0, 1.0]]))


def test_gradcheck_feed_forward_and_recurrent():
    torch.manual_seed(0)
    p = LIFAdExRefracParameters(
        LIFAdExParameters(method="heaviside"), rho_reset=torch.tensor(2.0)
    )
    x = (torch.rand(8, 2, 3, dtype=F64) * 3).requires_grad_()
    v0 = (torch.rand(2, 3, dtype=F64) * 0.5).requires_grad_()
    w_in = torch.randn(3, 3, dtype=F64).requires_grad_()

    def feed_forward(x, v0):
        zeros = torch.zeros_like(v0)
        state = LIFAdExRefracFeedForwardState(
            LIFAdExFeedForwardState(v0, zeros, zeros), zeros
        )
        for xt in x:
            _, state = lif_adex_refrac_feed_forward_step(xt, state, p)
        return state.lif_adex.v, state.lif_adex.a

    def recurrent(x, v0, w_in):
        zeros = torch.zeros_like(v0)
        state = LIFAdExRefracState(LIFAdExState(zeros, v0, zeros, zeros), zeros)
        for xt in x:
            _, state = lif_adex_refrac_step(
                xt, state, w_in, torch.zeros(3, 3, dtype=F64), p
            )
        return state.lif_adex.v, state.lif_adex.i

    assert torch.autograd.gradcheck(feed_forward, (x, v0))
    assert torch.autograd.gradcheck(recurrent, (x, v0, w_in))
