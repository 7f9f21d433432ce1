import math

import pytest
import torch

from norse.torch.functional import lif


def test_hand_computed_trajectory_from_rest():
    # i jumps by 1 each step, decays by dt*tau_syn_inv = 0.2; v moves by 0.1*(i - v)
    state = lif.LIFFeedForwardState(v=torch.zeros(1), i=torch.zeros(1))
    voltages, spikes = [], []
    for _ in range(6):
        z, state = lif.lif_feed_forward_step(torch.ones(1), state, lif.LIFParameters())
        voltages.append(state.v.item())
        spikes.append(z.item())
    assert voltages[:5] == pytest.approx([0.1, 0.27, 0.487, 0.7335, 0.99631], abs=1e-6)
    # i before step 6: 1.8*0.8+1 = 2.44 -> 2.952; v = 0.9963 + 0.1*(3.9520 - 0.9963) > 1
    assert spikes == [0, 0, 0, 0, 0, 1]
    assert voltages[5] == 0.0  # reset to v_reset


def _exact_subthreshold(v0, i0, t, p):
    a, b = float(p.tau_mem_inv), float(p.tau_syn_inv)
    v_leak = float(p.v_leak)
    return (
        v_leak
        + (v0 - v_leak) * math.exp(-a * t)
        + a * i0 * (math.exp(-b * t) - math.exp(-a * t)) / (a - b)
    )


@pytest.mark.parametrize("v_leak", [0.0, -0.3])
def test_subthreshold_converges_to_ode_at_first_order(v_leak):
    p = lif.LIFParameters(v_leak=torch.tensor(v_leak), v_th=torch.tensor(100.0))
    t_end, v0, i0 = 0.02, 0.2, 1.5
    errors = []
    for dt in (1e-4, 5e-5, 2.5e-5, 1.25e-5):
        state = lif.LIFFeedForwardState(
            v=torch.tensor([v0], dtype=torch.float64),
            i=torch.tensor([i0], dtype=torch.float64),
        )
        for _ in range(round(t_end / dt)):
            _, state = lif.lif_feed_forward_step(
                torch.zeros(1, dtype=torch.float64), state, p, dt
            )
        errors.append(abs(state.v.item() - _exact_subthreshold(v0, i0, t_end, p)))
    assert errors[-1] < 1e-3
    ratios = [errors[k] / errors[k + 1] for k in range(len(errors) - 1)]
    assert all(1.8 < r < 2.2 for r in ratios), ratios


def test_current_decays_exactly_geometrically():
    state = lif.LIFFeedForwardState(v=torch.zeros(3), i=torch.ones(3))
    for n in range(1, 5):
        _, state = lif.lif_feed_forward_step(torch.zeros(3), state, lif.LIFParameters())
        torch.testing.assert_close(state.i, torch.full((3,), 0.8**n))


def test_gradcheck_feed_forward_with_spikes():
    # method="heaviside": no surrogate, so finite differences see the true derivative
    # as long as no neuron sits on its threshold.
    torch.manual_seed(1)
    p = lif.LIFParameters(method="heaviside")
    x = (torch.rand(12, 2, 4, dtype=torch.float64) * 3).requires_grad_()
    v0 = torch.rand(2, 4, dtype=torch.float64).requires_grad_()
    i0 = torch.rand(2, 4, dtype=torch.float64).requires_grad_()

    def run(x, v0, i0):
        z, s = lif.lif_feed_forward_integral(x, lif.LIFFeedForwardState(v0, i0), p)
        return s.v, s.i

    spikes, _ = lif.lif_feed_forward_integral(
        x.detach(), lif.LIFFeedForwardState(v0, i0), p
    )
    assert spikes.sum() > 0  # resets happen inside the checked trajectory
    assert torch.autograd.gradcheck(run, (x, v0, i0))


def test_gradcheck_recurrent_step_and_weights():
    torch.manual_seed(2)
    p = lif.LIFParameters(method="heaviside")
    x = torch.rand(3, 5, dtype=torch.float64, requires_grad=True)
    w_in = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    w_rec = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    state = lif.LIFState(
        z=torch.tensor([[1.0, 0, 0, 1]] * 3, dtype=torch.float64),
        v=torch.rand(3, 4, dtype=torch.float64),
        i=torch.rand(3, 4, dtype=torch.float64),
    )

    def run(x, w_in, w_rec):
        _, s = lif.lif_step(x, state, w_in, w_rec, p)
        return s.v, s.i

    assert torch.autograd.gradcheck(run, (x, w_in, w_rec))


def test_recurrent_step_adds_input_and_recurrent_currents():
    w_in = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    w_rec = torch.tensor([[0.0, 0.5], [0.25, 0.0]])
    state = lif.LIFState(
        z=torch.tensor([[1.0, 1.0]]), v=torch.zeros(1, 2), i=torch.zeros(1, 2)
    )
    _, s = lif.lif_step(
        torch.tensor([[1.0, 1.0]]), state, w_in, w_rec, lif.LIFParameters()
    )
    # i_jump = [2.5, 3.25]; v = 0.1 * i_jump; i = 0.8 * i_jump
    torch.testing.assert_close(s.v, torch.tensor([[0.25, 0.325]]))
    torch.testing.assert_close(s.i, torch.tensor([[2.0, 2.6]]))


def test_recurrent_equals_feed_forward_with_identity_weights_and_no_feedback():
    x = torch.rand(20, 3, 4) * 2
    ff_state = lif.LIFFeedForwardState(torch.zeros(3, 4), torch.zeros(3, 4))
    rec_state = lif.LIFState(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, 4))
    z_ff, s_ff = lif.lif_feed_forward_integral(x, ff_state, lif.LIFParameters())
    z_rec, s_rec = lif.lif_step_integral(x, rec_state, torch.eye(4), torch.zeros(4, 4))
    torch.testing.assert_close(z_ff, z_rec)
    torch.testing.assert_close(s_ff.v, s_rec.v)


def test_per_neuron_parameters_broadcast():
    p = lif.LIFParameters(tau_mem_inv=torch.tensor([100.0, 200.0]))
    state = lif.LIFFeedForwardState(torch.zeros(2), torch.zeros(2))
    _, s = lif.lif_feed_forward_step(torch.ones(2), state, p)
    torch.testing.assert_close(s.v, torch.tensor([0.1, 0.2]))


def test_current_encoder_matches_closed_form():
    p = lif.LIFParameters()
    v = torch.zeros(1)
    trace = []
    for _ in range(12):
        z, v = lif.lif_current_encoder(torch.tensor([2.0]), v, p)
        trace.append((z.item(), v.item()))
    # v_n = 2 * (1 - 0.9^n) until it crosses 1 at n = 7 (2*(1-0.9^7) = 1.0434)
    for n, (z, v) in enumerate(trace[:6], start=1):
        assert z == 0 and v == pytest.approx(2 * (1 - 0.9**n), rel=1e-5)
    assert trace[6] == (1.0, 0.0)


def test_lif_and_lif_box_parameters_are_state_tuples_as_in_norse():
    """Norse 1.1's LIFParameters/LIFBoxParameters carry StateTuple's methods."""
    from norse.torch.functional.lif_box import LIFBoxParameters
    from norse.torch.utils.pytree import StateTuple

    for parameters in (lif.LIFParameters(), LIFBoxParameters()):
        assert isinstance(parameters, StateTuple) and isinstance(parameters, tuple)
        wide = parameters.to(torch.float64)
        assert type(wide) is type(parameters) and wide.v_th.dtype == torch.float64
        assert wide.method == parameters.method
        assert parameters.broadcast(torch.zeros(2, 3)).v_th.shape == (2, 3)
        assert parameters._replace(method="tanh").method == "tanh"
