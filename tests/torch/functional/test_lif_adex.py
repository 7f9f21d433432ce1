import math

import numpy as np
import pytest
import torch

from norse.torch.functional import lif_adex

F64 = torch.float64
# adaptation fast enough (tau_ada = 20 ms) to matter within the 20 ms run
P = lif_adex.LIFAdExParameters(
    tau_ada_inv=torch.tensor(50.0), v_leak=torch.tensor(-0.1)
)
T_END, RATE = 0.02, 100.0
Y0 = (0.5, 0.5, 0.2)  # v, i, a


def _rhs(t, y, p=P):
    v, i, a = y
    exp_term = float(p.delta_T) * math.exp((v - float(p.v_th)) / float(p.delta_T))
    return [
        float(p.tau_mem_inv) * (float(p.v_leak) - v + exp_term + i - a),
        -float(p.tau_syn_inv) * i + RATE,
        float(p.tau_ada_inv)
        * (float(p.adaptation_current) * (v - float(p.v_leak)) - a),
    ]


def _run_feed_forward(dt):
    state = lif_adex.LIFAdExFeedForwardState(
        *(torch.tensor([y], dtype=F64) for y in Y0)
    )
    for _ in range(round(T_END / dt)):
        z, state = lif_adex.lif_adex_feed_forward_step(
            torch.full((1,), RATE * dt, dtype=F64), state, P, dt
        )
        assert z.item() == 0
    return np.array([state.v.item(), state.i.item(), state.a.item()])


def _run_recurrent(dt):
    state = lif_adex.LIFAdExState(
        torch.zeros(1, 1, dtype=F64), *(torch.tensor([[y]], dtype=F64) for y in Y0)
    )
    w = torch.ones(1, 1, dtype=F64)
    for _ in range(round(T_END / dt)):
        z, state = lif_adex.lif_adex_step(
            torch.full((1, 1), RATE * dt, dtype=F64), state, w, w, P, dt
        )
        assert z.item() == 0
    return np.array([state.v.item(), state.i.item(), state.a.item()])


@pytest.mark.parametrize("simulate", [_run_feed_forward, _run_recurrent])
def test_subthreshold_dynamics_converge_to_ode_at_first_order(simulate, ode):
    reference = ode.reference(_rhs, Y0, T_END)
    assert abs(reference[2] - Y0[2]) > 0.3  # the adaptation current really moves
    ode.assert_first_order(simulate, reference)


def test_spike_triggered_adaptation_and_reset():
    p = lif_adex.LIFAdExParameters()
    dt = 1e-3
    state = lif_adex.LIFAdExFeedForwardState(
        torch.tensor([2.0, 0.0]), torch.zeros(2), torch.full((2,), 0.1)
    )
    z, new = lif_adex.lif_adex_feed_forward_step(torch.zeros(2), state, p, dt)
    torch.testing.assert_close(z, torch.tensor([1.0, 0.0]))
    a_decayed = 0.1 + dt * 2.0 * (4.0 * torch.tensor([2.0, 0.0]) - 0.1)
    torch.testing.assert_close(new.a, a_decayed + torch.tensor([0.02, 0.0]))
    assert new.v[0].item() == 0.0


def _spike_times(p, steps=400):
    state = lif_adex.LIFAdExFeedForwardState(
        torch.zeros(1), torch.zeros(1), torch.zeros(1)
    )
    times = []
    for step in range(steps):
        z, state = lif_adex.lif_adex_feed_forward_step(torch.full((1,), 0.5), state, p)
        if z.item():
            times.append(step)
    return times


def test_spike_frequency_adaptation():
    regular = _spike_times(
        lif_adex.LIFAdExParameters(
            adaptation_current=torch.tensor(0.0), adaptation_spike=torch.tensor(0.0)
        )
    )
    adapting = _spike_times(
        lif_adex.LIFAdExParameters(
            adaptation_current=torch.tensor(1.0),
            adaptation_spike=torch.tensor(0.5),
            tau_ada_inv=torch.tensor(20.0),
        )
    )
    assert len(set(map(int, torch.tensor(regular).diff()))) == 1  # constant intervals
    intervals = torch.tensor(adapting).diff()
    assert (intervals[:5].diff() > 0).all()  # the intervals grow
    assert 0 < len(adapting) < len(regular) / 2


def test_gradcheck_feed_forward_and_recurrent():
    torch.manual_seed(0)
    p = lif_adex.LIFAdExParameters(method="heaviside", tau_ada_inv=torch.tensor(50.0))
    x = (torch.rand(6, 2, 3, dtype=F64) * 0.8).requires_grad_()
    v0 = (torch.rand(2, 3, dtype=F64) * 0.5).requires_grad_()
    a0 = torch.rand(2, 3, dtype=F64).requires_grad_()
    w_in = torch.randn(3, 3, dtype=F64).requires_grad_()

    def feed_forward(x, v0, a0):
        state = lif_adex.LIFAdExFeedForwardState(v0, torch.zeros_like(v0), a0)
        for xt in x:
            _, state = lif_adex.lif_adex_feed_forward_step(xt, state, p)
        return state.v, state.i, state.a

    def recurrent(x, v0, w_in):
        state = lif_adex.LIFAdExState(
            torch.zeros_like(v0), v0, torch.zeros_like(v0), torch.zeros_like(v0)
        )
        for xt in x:
            _, state = lif_adex.lif_adex_step(
                xt, state, w_in, torch.eye(3, dtype=F64), p
            )
        return state.v, state.a

    assert torch.autograd.gradcheck(feed_forward, (x, v0, a0))
    assert torch.autograd.gradcheck(recurrent, (x, v0, w_in))


def test_current_encoder_returns_euler_updated_adaptation():
    p = lif_adex.LIFAdExParameters()
    dt = 1e-3
    v, a = torch.tensor([0.2]), torch.tensor([0.1])
    z, v_new, a_new = lif_adex.lif_adex_current_encoder(
        torch.tensor([0.5]), v, a, p, dt
    )
    v_expected = 0.2 + 0.1 * (-0.2 + 0.5 * math.exp(-1.6) + 0.5 - 0.1)
    assert z.item() == 0 and v_new.item() == pytest.approx(v_expected, rel=1e-6)
    assert a_new.item() == pytest.approx(0.1 + dt * 2.0 * (4.0 * 0.2 - 0.1), rel=1e-6)
    z, v_new, a_new = lif_adex.lif_adex_current_encoder(
        torch.tensor([30.0]), v, a, p, dt
    )
    assert z.item() == 1 and v_new.item() == 0.0
    assert a_new.item() == pytest.approx(
        0.1 + dt * 2.0 * (4.0 * 0.2 - 0.1) + 0.02, rel=1e-6
    )
