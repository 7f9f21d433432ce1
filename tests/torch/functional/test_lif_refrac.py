import numpy as np
import pytest
import torch

from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters, LIFState
from norse.torch.functional.lif_refrac import (
    LIFRefracFeedForwardState,
    LIFRefracParameters,
    LIFRefracState,
    compute_refractory_update,
    lif_refrac_feed_forward_step,
    lif_refrac_step,
)

F64 = torch.float64
P = LIFRefracParameters(LIFParameters(v_leak=torch.tensor(-0.1)))
T_END, RATE = 0.02, 30.0
Y0 = (0.2, 1.5)


def _rhs(t, y, p=P.lif):
    v, i = y
    return [
        float(p.tau_mem_inv) * (float(p.v_leak) - v + i),
        -float(p.tau_syn_inv) * i + RATE,
    ]


def _run_feed_forward(dt):
    v, i = (torch.tensor([y], dtype=F64) for y in Y0)
    state = LIFRefracFeedForwardState(
        LIFFeedForwardState(v, i), torch.zeros(1, dtype=F64)
    )
    for _ in range(round(T_END / dt)):
        z, state = lif_refrac_feed_forward_step(
            torch.full((1,), RATE * dt, dtype=F64), state, P, dt
        )
        assert z.item() == 0 and state.rho.item() == 0
    return np.array([state.lif.v.item(), state.lif.i.item()])


def _run_recurrent(dt):
    v, i = (torch.tensor([[y]], dtype=F64) for y in Y0)
    state = LIFRefracState(
        LIFState(torch.zeros(1, 1, dtype=F64), v, i), torch.zeros(1, 1, dtype=F64)
    )
    w = torch.ones(1, 1, dtype=F64)
    for _ in range(round(T_END / dt)):
        z, state = lif_refrac_step(
            torch.full((1, 1), RATE * dt, dtype=F64), state, w, w, P, dt
        )
        assert z.item() == 0 and state.rho.item() == 0
    return np.array([state.lif.v.item(), state.lif.i.item()])


@pytest.mark.parametrize("simulate", [_run_feed_forward, _run_recurrent])
def test_subthreshold_dynamics_converge_to_lif_ode_at_first_order(simulate, ode):
    ode.assert_first_order(simulate, ode.reference(_rhs, Y0, T_END))


def test_no_spikes_while_refractory_and_voltage_is_held():
    p = LIFRefracParameters()  # rho_reset = 5 steps
    state = LIFRefracFeedForwardState(
        LIFFeedForwardState(torch.zeros(1), torch.zeros(1)), torch.zeros(1)
    )
    spikes, rhos, voltages, currents = [], [], [], []
    for _ in range(40):
        z, state = lif_refrac_feed_forward_step(torch.full((1,), 3.0), state, p)
        spikes.append(int(z.item()))
        rhos.append(state.rho.item())
        voltages.append(state.lif.v.item())
        currents.append(state.lif.i.item())
    times = [t for t, s in enumerate(spikes) if s]
    assert len(times) >= 3
    for t in times[:-1]:
        # rho = 5, 4, 3, 2, 1, 0 after the spike: 5 silent steps, voltage frozen at reset
        assert rhos[t : t + 6] == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
        assert spikes[t + 1 : t + 6] == [0] * 5
        assert voltages[t : t + 6] == [0.0] * 6
        # the synaptic current keeps integrating meanwhile
        assert currents[t + 5] > currents[t]
    assert all(b - a >= 6 for a, b in zip(times, times[1:]))


def test_refractory_neuron_cannot_spike_even_far_above_threshold():
    p = LIFRefracParameters()
    state = LIFRefracFeedForwardState(
        LIFFeedForwardState(torch.full((3,), 5.0), torch.full((3,), 10.0)),
        torch.tensor([0.0, 1.0, 3.0]),
    )
    z, new = lif_refrac_feed_forward_step(torch.full((3,), 10.0), state, p)
    torch.testing.assert_close(z, torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(new.rho, torch.tensor([5.0, 0.0, 2.0]))
    torch.testing.assert_close(new.lif.v, torch.tensor([0.0, 5.0, 5.0]))


def test_compute_refractory_update_matches_norse_signature():
    state = LIFRefracFeedForwardState(
        LIFFeedForwardState(torch.tensor([0.3, 0.4]), torch.zeros(2)),
        torch.tensor([2.0, 0.0]),
    )
    v, z, rho = compute_refractory_update(
        state, torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0]), LIFRefracParameters()
    )
    torch.testing.assert_close(v, torch.tensor([0.3, 0.0]))
    torch.testing.assert_close(z, torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(rho, torch.tensor([1.0, 5.0]))


def test_recurrent_state_holds_masked_spikes():
    p = LIFRefracParameters()
    state = LIFRefracState(
        LIFState(torch.zeros(1, 2), torch.full((1, 2), 5.0), torch.zeros(1, 2)),
        torch.tensor([[0.0, 2.0]]),
    )
    z, new = lif_refrac_step(
        torch.ones(1, 2), state, torch.eye(2), torch.zeros(2, 2), p
    )
    torch.testing.assert_close(z, torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(new.lif.z, z)


def test_gradcheck_feed_forward_and_recurrent():
    torch.manual_seed(0)
    p = LIFRefracParameters(
        LIFParameters(method="heaviside"), rho_reset=torch.tensor(2.0)
    )
    x = (torch.rand(8, 2, 3, dtype=F64) * 3).requires_grad_()
    v0 = torch.rand(2, 3, dtype=F64).requires_grad_()
    w_in = torch.randn(3, 3, dtype=F64).requires_grad_()

    def feed_forward(x, v0):
        state = LIFRefracFeedForwardState(
            LIFFeedForwardState(v0, torch.zeros_like(v0)), torch.zeros_like(v0)
        )
        for xt in x:
            _, state = lif_refrac_feed_forward_step(xt, state, p)
        return state.lif.v, state.lif.i

    def recurrent(x, v0, w_in):
        zeros = torch.zeros_like(v0)
        state = LIFRefracState(LIFState(zeros, v0, zeros), zeros)
        for xt in x:
            _, state = lif_refrac_step(xt, state, w_in, torch.zeros(3, 3, dtype=F64), p)
        return state.lif.v, state.lif.i

    spikes = []
    state = LIFRefracFeedForwardState(
        LIFFeedForwardState(v0.detach(), torch.zeros_like(v0)), torch.zeros_like(v0)
    )
    for xt in x.detach():
        z, state = lif_refrac_feed_forward_step(xt, state, p)
        spikes.append(z)
    assert torch.stack(spikes).sum() > 0  # refractory periods inside the checked run
    assert torch.autograd.gradcheck(feed_forward, (x, v0))
    assert torch.autograd.gradcheck(recurrent, (x, v0, w_in))


def test_sparse_step_equals_the_dense_step_with_sparse_spikes():
    """Norse 1.1's name (whose version fails): the dense step's dynamics, sparse spikes."""
    from norse.torch.functional.adjoint import lif_refrac_adjoint
    from norse.torch.functional.lif import LIFState
    from norse.torch.functional.lif_refrac import (
        LIFRefracState,
        lif_refrac_step,
        lif_refrac_step_sparse,
    )

    assert lif_refrac_adjoint.lif_refrac_step_sparse is lif_refrac_step_sparse
    torch.manual_seed(0)
    state = LIFRefracState(
        LIFState(torch.zeros(2, 3), torch.full((2, 3), 0.99), torch.full((2, 3), 3.0)),
        torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]]),
    )
    spikes = (torch.rand(2, 4) > 0.5).float()
    weights = torch.rand(3, 4), torch.rand(3, 3)
    z, s = lif_refrac_step(spikes, state, *weights)
    z_sparse, s_sparse = lif_refrac_step_sparse(spikes.to_sparse(), state, *weights)
    assert z_sparse.is_sparse and s_sparse.lif.z.is_sparse and z.sum() > 0
    assert torch.equal(z_sparse.to_dense(), z)
    torch.testing.assert_close(s_sparse.lif.v, s.lif.v)
    torch.testing.assert_close(s_sparse.lif.i, s.lif.i)
    assert torch.equal(s_sparse.rho, s.rho)
