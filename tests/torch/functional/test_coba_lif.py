import numpy as np
import pytest
import torch

from norse.torch.functional.coba_lif import (
    CobaLIFFeedForwardState,
    CobaLIFParameters,
    CobaLIFState,
    coba_lif_feed_forward_step,
    coba_lif_step,
)

F64 = torch.float64
# SI-like scales: tau_mem = 1 / (c_m_inv * g_l) = 10 ms, tau_e = 5 ms, tau_i = 10 ms (mV)
P = CobaLIFParameters(
    tau_syn_exc_inv=torch.tensor(200.0),
    tau_syn_inh_inv=torch.tensor(100.0),
    c_m_inv=torch.tensor(5.0),
    g_l=torch.tensor(20.0),
    e_rev_E=torch.tensor(0.0),
    e_rev_I=torch.tensor(-80.0),
    v_rest=torch.tensor(-65.0),
    v_reset=torch.tensor(-65.0),
    v_thresh=torch.tensor(-50.0),
)
T_END = 0.02
Y0 = (-60.0, 5.0, 4.0)  # v, g_e, g_i


def _rhs(rate_e, rate_i, p=P):
    def rhs(t, y):
        v, g_e, g_i = y
        dv = float(p.c_m_inv) * (
            float(p.g_l) * (float(p.v_rest) - v)
            + g_e * (float(p.e_rev_E) - v)
            + g_i * (float(p.e_rev_I) - v)
        )
        return [
            dv,
            -float(p.tau_syn_exc_inv) * g_e + rate_e,
            -float(p.tau_syn_inh_inv) * g_i + rate_i,
        ]

    return rhs


def _run_recurrent(dt, rate_e=400.0, rate_i=300.0):
    v, g_e, g_i = (torch.tensor([[y]], dtype=F64) for y in Y0)
    state = CobaLIFState(torch.zeros_like(v), v, g_e, g_i)
    # one excitatory and one inhibitory input line (weight sign = synapse type)
    w_in = torch.tensor([[rate_e, -rate_i]], dtype=F64)
    x = torch.full((1, 2), dt, dtype=F64)
    for _ in range(round(T_END / dt)):
        z, state = coba_lif_step(x, state, w_in, torch.ones(1, 1, dtype=F64), P, dt)
        assert z.item() == 0
    return np.array([state.v.item(), state.g_e.item(), state.g_i.item()])


def _run_feed_forward(dt):
    state = CobaLIFFeedForwardState(*(torch.tensor([y], dtype=F64) for y in Y0))
    for _ in range(round(T_END / dt)):
        z, state = coba_lif_feed_forward_step(torch.zeros(1, dtype=F64), state, P, dt)
        assert z.item() == 0
    return np.array([state.v.item(), state.g_e.item(), state.g_i.item()])


def test_recurrent_subthreshold_dynamics_converge_to_ode_at_first_order(ode):
    reference = ode.reference(_rhs(400.0, 300.0), Y0, T_END)
    ode.assert_first_order(_run_recurrent, reference)


def test_feed_forward_subthreshold_dynamics_converge_to_ode_at_first_order(ode):
    reference = ode.reference(_rhs(0.0, 0.0), Y0, T_END)
    ode.assert_first_order(_run_feed_forward, reference)


def test_input_and_recurrent_conductances_add_up():
    # Norse 1.1 overwrote the input conductance with the recurrent one; here both count
    dt = 1e-3
    w_in = torch.tensor([[2.0, -1.0]])
    w_rec = torch.tensor([[3.0, -4.0]])
    # padded to a 2-neuron layer: neuron 0 gets the weights above, neuron 1 nothing
    w_in = torch.cat([w_in, torch.zeros(1, 2)])
    w_rec = torch.cat([w_rec, torch.zeros(1, 2)])
    state = CobaLIFState(
        z=torch.tensor([[1.0, 1.0]]),
        v=torch.full((1, 2), -20.0),
        g_e=torch.full((1, 2), 0.5),
        g_i=torch.full((1, 2), 0.25),
    )
    _, new = coba_lif_step(
        torch.ones(1, 2), state, w_in, w_rec, CobaLIFParameters(), dt
    )
    decay_e = 1 - dt * 0.2
    decay_i = 1 - dt * 0.2
    # g_e: 0.5 + 2 (input) + 3 (recurrent); g_i: 0.25 + 1 (input) + 4 (recurrent)
    torch.testing.assert_close(new.g_e, torch.tensor([[5.5 * decay_e, 0.5 * decay_e]]))
    torch.testing.assert_close(
        new.g_i, torch.tensor([[5.25 * decay_i, 0.25 * decay_i]])
    )


def test_only_input_reaches_a_silent_layer():
    w_in = torch.tensor([[2.0]])
    state = CobaLIFState(
        torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1)
    )
    _, new = coba_lif_step(
        torch.ones(1, 1), state, w_in, torch.ones(1, 1), CobaLIFParameters(), 1e-3
    )
    assert new.g_e.item() == pytest.approx(2.0 * (1 - 1e-3 * 0.2))


def test_feed_forward_input_sign_selects_the_conductance():
    state = CobaLIFFeedForwardState(
        torch.full((2,), -20.0), torch.zeros(2), torch.zeros(2)
    )
    _, new = coba_lif_feed_forward_step(
        torch.tensor([3.0, -2.0]), state, CobaLIFParameters(), 1e-3
    )
    decay = 1 - 1e-3 * 0.2
    torch.testing.assert_close(new.g_e, torch.tensor([3.0 * decay, 0.0]))
    torch.testing.assert_close(new.g_i, torch.tensor([0.0, 2.0 * decay]))


def test_excitation_spikes_and_resets_inhibition_pulls_towards_e_rev_I():
    p = CobaLIFParameters()
    state = CobaLIFFeedForwardState(
        torch.full((2,), -20.0), torch.zeros(2), torch.zeros(2)
    )
    z, new = coba_lif_feed_forward_step(torch.tensor([50.0, -50.0]), state, p, 1e-3)
    assert z.tolist() == [1.0, 0.0]
    assert new.v[0].item() == -70.0  # v_reset
    assert -100.0 < new.v[1].item() < -20.0


def test_gradcheck_feed_forward_and_recurrent():
    torch.manual_seed(0)
    p = P._replace(method="heaviside")
    x = (torch.rand(6, 2, 3, dtype=F64) * 20 - 10).requires_grad_()
    v0 = (-65 + torch.rand(2, 3, dtype=F64) * 5).requires_grad_()
    w_in = (torch.randn(3, 3, dtype=F64) * 5).requires_grad_()

    def feed_forward(x, v0):
        state = CobaLIFFeedForwardState(v0, torch.zeros_like(v0), torch.zeros_like(v0))
        for xt in x:
            _, state = coba_lif_feed_forward_step(xt, state, p)
        return state.v, state.g_e, state.g_i

    def recurrent(x, v0, w_in):
        zeros = torch.zeros_like(v0)
        state = CobaLIFState(zeros, v0, zeros, zeros)
        for xt in x:
            _, state = coba_lif_step(
                xt.abs(), state, w_in, torch.zeros(3, 3, dtype=F64), p
            )
        return state.v, state.g_e

    assert torch.autograd.gradcheck(feed_forward, (x, v0))
    assert torch.autograd.gradcheck(recurrent, (x, v0, w_in))
