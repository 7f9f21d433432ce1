import numpy as np
import pytest
import torch

from norse.torch.functional import lsnn

F64 = torch.float64
P = lsnn.LSNNParameters(tau_adapt_inv=torch.tensor(50.0), v_leak=torch.tensor(-0.1))
T_END, RATE = 0.02, 30.0  # input current arrives at RATE per second
Y0 = (0.2, 1.5, 1.6)  # v, i, b


def _lsnn_rhs(t, y, p=P):
    v, i, b = y
    return [
        float(p.tau_mem_inv) * (float(p.v_leak) - v + i),
        -float(p.tau_syn_inv) * i + RATE,
        float(p.tau_adapt_inv) * (float(p.v_th) - b),
    ]


def _run_feed_forward(dt):
    state = lsnn.LSNNFeedForwardState(*(torch.tensor([y], dtype=F64) for y in Y0))
    for _ in range(round(T_END / dt)):
        z, state = lsnn.lsnn_feed_forward_step(
            torch.full((1,), RATE * dt, dtype=F64), state, P, dt
        )
        assert z.item() == 0  # stays sub-threshold: v < b
    return np.array([state.v.item(), state.i.item(), state.b.item()])


def _run_recurrent(dt):
    state = lsnn.LSNNState(
        torch.zeros(1, 1, dtype=F64), *(torch.tensor([[y]], dtype=F64) for y in Y0)
    )
    w_in, w_rec = torch.ones(1, 1, dtype=F64), torch.ones(1, 1, dtype=F64)
    for _ in range(round(T_END / dt)):
        z, state = lsnn.lsnn_step(
            torch.full((1, 1), RATE * dt, dtype=F64), state, w_in, w_rec, P, dt
        )
        assert z.item() == 0
    return np.array([state.v.item(), state.i.item(), state.b.item()])


@pytest.mark.parametrize("simulate", [_run_feed_forward, _run_recurrent])
def test_subthreshold_dynamics_converge_to_ode_at_first_order(simulate, ode):
    ode.assert_first_order(simulate, ode.reference(_lsnn_rhs, Y0, T_END))


def test_threshold_relaxes_to_v_th_with_tau_adapt():
    p = lsnn.LSNNParameters(tau_adapt_inv=torch.tensor(20.0))
    dt = 1e-3
    state = lsnn.LSNNFeedForwardState(
        torch.zeros(1), torch.zeros(1), torch.tensor([3.0])
    )
    for n in range(1, 51):
        _, state = lsnn.lsnn_feed_forward_step(torch.zeros(1), state, p, dt)
        # exact Euler geometry, and close to exp(-t / tau_adapt)
        assert state.b.item() == pytest.approx(1 + 2 * (1 - 20 * dt) ** n, rel=1e-5)
    assert state.b.item() - 1 == pytest.approx(2 * np.exp(-20 * 0.05), rel=0.03)


def test_spike_raises_threshold_by_beta_and_resets_v():
    p = lsnn.LSNNParameters()
    dt = 1e-3
    state = lsnn.LSNNFeedForwardState(
        v=torch.tensor([1.5, 0.5]), i=torch.zeros(2), b=torch.tensor([1.2, 1.2])
    )
    z, new = lsnn.lsnn_feed_forward_step(torch.zeros(2), state, p, dt)
    b_decayed = 1.2 + dt * float(p.tau_adapt_inv) * (1.0 - 1.2)
    torch.testing.assert_close(z, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(new.b, torch.tensor([b_decayed + 1.8, b_decayed]))
    assert new.v[0].item() == 0.0  # reset
    # the raised threshold blocks a second spike the same voltage would have caused
    z2, _ = lsnn.lsnn_feed_forward_step(
        torch.zeros(2), new._replace(v=torch.tensor([1.5, 0.5])), p, dt
    )
    assert z2[0].item() == 0.0


def test_spike_threshold_is_b_not_v_th():
    p = lsnn.LSNNParameters()
    state = lsnn.LSNNFeedForwardState(
        torch.tensor([0.8]), torch.zeros(1), torch.tensor([0.5])
    )
    z, _ = lsnn.lsnn_feed_forward_step(torch.zeros(1), state, p)
    assert z.item() == 1.0  # v < v_th = 1 but v > b


def test_input_reaches_the_voltage_one_step_later():
    # Norse 1.1 order: decay, spike, then i += input
    state = lsnn.LSNNFeedForwardState(torch.zeros(1), torch.zeros(1), torch.ones(1))
    _, s1 = lsnn.lsnn_feed_forward_step(torch.ones(1), state)
    assert s1.v.item() == 0.0 and s1.i.item() == 1.0
    _, s2 = lsnn.lsnn_feed_forward_step(torch.zeros(1), s1)
    assert s2.v.item() == pytest.approx(0.1)


def test_recurrent_step_adds_input_and_recurrent_currents():
    w_in = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    w_rec = torch.tensor([[0.0, 0.5], [0.25, 0.0]])
    state = lsnn.LSNNState(
        torch.ones(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2)
    )
    _, s = lsnn.lsnn_step(torch.ones(1, 2), state, w_in, w_rec)
    torch.testing.assert_close(s.i, torch.tensor([[2.5, 3.25]]))


def test_gradcheck_feed_forward_and_recurrent():
    torch.manual_seed(0)
    p = lsnn.LSNNParameters(method="heaviside", tau_adapt_inv=torch.tensor(30.0))
    x = (torch.rand(6, 2, 3, dtype=F64) * 2).requires_grad_()
    v0 = torch.rand(2, 3, dtype=F64).requires_grad_()
    b0 = (1 + torch.rand(2, 3, dtype=F64)).requires_grad_()
    w_rec = torch.randn(3, 3, dtype=F64).requires_grad_()

    def feed_forward(x, v0, b0):
        state = lsnn.LSNNFeedForwardState(v0, torch.zeros_like(v0), b0)
        for xt in x:
            _, state = lsnn.lsnn_feed_forward_step(xt, state, p)
        return state.v, state.i, state.b

    def recurrent(x, v0, w_rec):
        state = lsnn.LSNNState(
            torch.zeros_like(v0), v0, torch.zeros_like(v0), torch.ones_like(v0)
        )
        for xt in x:
            _, state = lsnn.lsnn_step(xt, state, torch.eye(3, dtype=F64), w_rec, p)
        return state.v, state.i

    assert torch.autograd.gradcheck(feed_forward, (x, v0, b0))
    assert torch.autograd.gradcheck(recurrent, (x, v0, w_rec))


def _ada_rhs(t, y, p=P):
    v, i, b = y
    return [
        float(p.tau_mem_inv) * (float(p.v_leak) - v + i - b),
        -float(p.tau_syn_inv) * i,
        -float(p.tau_adapt_inv) * b,
    ]


def test_ada_lif_converges_to_its_ode_and_adapts_on_spikes(ode):
    y0 = (0.2, 1.5, 0.3)

    def simulate(dt):
        state = lsnn.LSNNState(
            torch.zeros(1, 1, dtype=F64), *(torch.tensor([[y]], dtype=F64) for y in y0)
        )
        for _ in range(round(T_END / dt)):
            z, state = lsnn.ada_lif_step(
                torch.zeros(1, 1, dtype=F64),
                state,
                torch.ones(1, 1, dtype=F64),
                torch.zeros(1, 1, dtype=F64),
                P,
                dt,
            )
            assert z.item() == 0
        return np.array([state.v.item(), state.i.item(), state.b.item()])

    ode.assert_first_order(simulate, ode.reference(_ada_rhs, y0, T_END))
    spiking = lsnn.LSNNState(
        torch.zeros(1, 1), torch.full((1, 1), 1.5), torch.zeros(1, 1), torch.zeros(1, 1)
    )
    z, s = lsnn.ada_lif_step(
        torch.zeros(1, 1), spiking, torch.ones(1, 1), torch.zeros(1, 1)
    )
    assert z.item() == 1.0
    assert s.b.item() == pytest.approx(1.8)  # jumps by beta
    assert s.v.item() == pytest.approx(1.5 + 0.1 * (0 - 1.5) - 1.0)  # subtractive reset
