import math

import numpy as np
import pytest
import torch

from norse.torch.functional import lif_ex

F64 = torch.float64
P = lif_ex.LIFExParameters(v_leak=torch.tensor(-0.1))
T_END, RATE = 0.02, 100.0
Y0 = (0.5, 0.5)  # v, i: v stays within 1 delta_T of v_th, where the exp term matters


def _rhs(t, y, p=P, exponential=True):
    v, i = y
    exp_term = float(p.delta_T) * math.exp((v - float(p.v_th)) / float(p.delta_T))
    exp_term *= exponential
    return [
        float(p.tau_mem_inv) * (float(p.v_leak) - v + exp_term + i),
        -float(p.tau_syn_inv) * i + RATE,
    ]


def _run_feed_forward(dt):
    state = lif_ex.LIFExFeedForwardState(*(torch.tensor([y], dtype=F64) for y in Y0))
    for _ in range(round(T_END / dt)):
        z, state = lif_ex.lif_ex_feed_forward_step(
            torch.full((1,), RATE * dt, dtype=F64), state, P, dt
        )
        assert z.item() == 0
    return np.array([state.v.item(), state.i.item()])


def _run_recurrent(dt):
    state = lif_ex.LIFExState(
        torch.zeros(1, 1, dtype=F64), *(torch.tensor([[y]], dtype=F64) for y in Y0)
    )
    w = torch.ones(1, 1, dtype=F64)
    for _ in range(round(T_END / dt)):
        z, state = lif_ex.lif_ex_step(
            torch.full((1, 1), RATE * dt, dtype=F64), state, w, w, P, dt
        )
        assert z.item() == 0
    return np.array([state.v.item(), state.i.item()])


@pytest.mark.parametrize("simulate", [_run_feed_forward, _run_recurrent])
def test_subthreshold_dynamics_converge_to_ode_at_first_order(simulate, ode):
    reference = ode.reference(_rhs, Y0, T_END)
    # the exponential term is not negligible over this run
    linear = ode.reference(lambda t, y: _rhs(t, y, exponential=False), Y0, T_END)
    assert abs(reference[0] - linear[0]) > 0.05
    ode.assert_first_order(simulate, reference)


def test_exponential_runaway_spikes_without_input():
    # with delta_T = 1 and v_leak = 0.2, v_leak - v + exp(v - 1) > 0 for every v: the
    # exponential term alone drives v from 0.5 to threshold (a plain LIF would decay)
    p = lif_ex.LIFExParameters(delta_T=torch.tensor(1.0), v_leak=torch.tensor(0.2))
    state = lif_ex.LIFExFeedForwardState(torch.tensor([0.5]), torch.zeros(1))
    voltages, spikes = [], []
    for _ in range(200):
        z, state = lif_ex.lif_ex_feed_forward_step(torch.zeros(1), state, p)
        voltages.append(state.v.item())
        spikes.append(z.item())
    first = spikes.index(1.0)
    assert first > 5 and voltages[first] == 0.0  # reset after the spike
    assert all(b > a for a, b in zip(voltages[: first - 1], voltages[1:first]))


def test_recurrent_equals_feed_forward_with_identity_weights():
    x = torch.rand(15, 2, 3) * 0.6
    ff = lif_ex.LIFExFeedForwardState(torch.zeros(2, 3), torch.zeros(2, 3))
    rec = lif_ex.LIFExState(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3))
    for xt in x:
        z_ff, ff = lif_ex.lif_ex_feed_forward_step(xt, ff)
        z_rec, rec = lif_ex.lif_ex_step(xt, rec, torch.eye(3), torch.zeros(3, 3))
        torch.testing.assert_close(z_ff, z_rec)
    torch.testing.assert_close(ff.v, rec.v)


def test_gradcheck_feed_forward_and_recurrent():
    torch.manual_seed(0)
    p = lif_ex.LIFExParameters(method="heaviside")
    x = (torch.rand(6, 2, 3, dtype=F64) * 0.8).requires_grad_()
    v0 = (torch.rand(2, 3, dtype=F64) * 0.5).requires_grad_()
    w_in = torch.randn(3, 3, dtype=F64).requires_grad_()

    def feed_forward(x, v0):
        state = lif_ex.LIFExFeedForwardState(v0, torch.zeros_like(v0))
        for xt in x:
            _, state = lif_ex.lif_ex_feed_forward_step(xt, state, p)
        return state.v, state.i

    def recurrent(x, v0, w_in):
        state = lif_ex.LIFExState(torch.zeros_like(v0), v0, torch.zeros_like(v0))
        for xt in x:
            _, state = lif_ex.lif_ex_step(xt, state, w_in, torch.eye(3, dtype=F64), p)
        return state.v, state.i

    assert torch.autograd.gradcheck(feed_forward, (x, v0))
    assert torch.autograd.gradcheck(recurrent, (x, v0, w_in))


def test_current_encoder_step_and_reset():
    p = lif_ex.LIFExParameters()
    z, v = lif_ex.lif_ex_current_encoder(torch.tensor([0.5]), torch.tensor([0.0]), p)
    expected = 0.1 * (0.5 + 0.5 * math.exp(-2.0))
    assert z.item() == 0 and v.item() == pytest.approx(expected, rel=1e-6)
    z, v = lif_ex.lif_ex_current_encoder(torch.tensor([20.0]), torch.tensor([0.5]), p)
    assert z.item() == 1 and v.item() == 0.0
