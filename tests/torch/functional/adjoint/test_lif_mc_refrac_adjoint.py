"""Adjoint (EventProp) gradients of refractory multi-compartment LIF neurons.

* The forward pass is :func:`lif_mc_refrac_step` (Heaviside threshold), bit for bit.
* Without spikes the gradients equal BPTT through :func:`lif_mc_refrac_step` and pass
  gradcheck.
* With spikes, refractory periods, coupling and recurrent kicks, the gradients of later
  voltages converge to those of the continuous-time dynamics (computed with exact event
  times); an initial ``rho`` gets the release-time derivative.
* Without coupling and input the gradients are those of the refractory LIF adjoint.
"""

import numpy as np
import pytest
import torch
from scipy.linalg import expm
from scipy.optimize import brentq

from norse.torch.functional.adjoint.lif_mc_refrac_adjoint import (
    LIFMCRefracAdjointFunction,
    lif_mc_refrac_adjoint,
)
from norse.torch.functional.adjoint.lif_refrac_adjoint import (
    lif_refrac_feed_forward_adjoint_step,
)
from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters, LIFState
from norse.torch.functional.lif_mc_refrac import lif_mc_refrac_step
from norse.torch.functional.lif_refrac import (
    LIFRefracFeedForwardState,
    LIFRefracParameters,
    LIFRefracState,
)

F64 = torch.float64
TAU_MEM_INV, TAU_SYN_INV = 100.0, 50.0


def _p(rho_reset: float) -> LIFRefracParameters:
    lif = LIFParameters(
        tau_syn_inv=torch.tensor(TAU_SYN_INV, dtype=F64),
        tau_mem_inv=torch.tensor(TAU_MEM_INV, dtype=F64),
        v_leak=torch.tensor(0.0, dtype=F64),
        method="heaviside",
    )
    return LIFRefracParameters(lif, torch.tensor(float(rho_reset), dtype=F64))


def _state(z, v, i, rho) -> LIFRefracState:
    return LIFRefracState(LIFState(z, v, i), rho)


def test_forward_equals_the_refractory_multi_compartment_step():
    """Several steps from random states (some refractory) with random weights and
    coupling, default and custom parameters: spikes and states equal bit for bit."""
    torch.manual_seed(0)
    for p, dtype in (
        (LIFRefracParameters(), torch.float32),
        (LIFRefracParameters(LIFParameters(v_leak=torch.tensor(0.1)), 2.0), F64),
    ):
        w_in = torch.rand(5, 3, dtype=dtype) * 4
        w_rec = torch.randn(5, 5, dtype=dtype)
        g = torch.randn(5, 5, dtype=dtype) * 30
        start = _state(
            (torch.rand(2, 5) < 0.4).to(dtype),
            torch.rand(2, 5, dtype=dtype),
            torch.rand(2, 5, dtype=dtype) * 3,
            torch.randint(0, 4, (2, 5)).to(dtype),
        )
        ours = reference = start
        spikes = refractory = 0
        for _ in range(40):
            x = torch.rand(2, 3, dtype=dtype)
            z, ours = lif_mc_refrac_adjoint(x, ours, w_in, w_rec, g, p)
            z_ref, reference = lif_mc_refrac_step(x, reference, w_in, w_rec, g, p)
            assert torch.equal(z, z_ref)
            for got, want in zip(
                (ours.lif.z, ours.lif.v, ours.lif.i, ours.rho),
                (reference.lif.z, reference.lif.v, reference.lif.i, reference.rho),
            ):
                assert torch.equal(got, want) and got.dtype == dtype
            spikes += int(z.sum())
            refractory += int((ours.rho > 0).sum())
        assert spikes > 10 and refractory > 20


def _subthreshold_case(seed=0, steps=30):
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return torch.rand(*shape, generator=generator, dtype=F64) * scale

    leaves = {
        "x": rand(steps, 3, 5, scale=0.05),
        "w_in": rand(4, 5, scale=0.3),
        "w_rec": rand(4, 4, scale=0.1),
        "g": (rand(4, 4) - 0.5) * 10,
        "v0": rand(3, 4, scale=0.3),
        "i0": rand(3, 4, scale=0.3),
    }
    leaves = {name: value.requires_grad_() for name, value in leaves.items()}
    z0 = torch.tensor([[1.0, 0.0, 1.0, 0.0]] * 3, dtype=F64)
    rho0 = torch.randint(0, 8, (3, 4), generator=generator).to(F64)
    return leaves, z0, rho0, torch.randn(steps, 3, 4, generator=generator, dtype=F64)


def test_equals_bptt_without_spikes():
    """No spike in the window (releases from random initial refractory periods are):
    the gradients with respect to the input, weights, coupling and initial v, i equal
    autograd's through lif_mc_refrac_step. (s.z gets the gradient of its spike times and
    rho that of its release times instead; see the tests with spikes.)"""
    leaves, z0, rho0, c = _subthreshold_case()
    assert (rho0 > 0).any() and (rho0 < 30).any()

    def loss(step):
        state, total = _state(z0, leaves["v0"], leaves["i0"], rho0), 0.0
        for t, x in enumerate(leaves["x"]):
            z, state = step(
                x, state, leaves["w_in"], leaves["w_rec"], leaves["g"], _p(5), 1e-3
            )
            assert z.sum() == 0
            total = total + (c[t] * state.lif.v).sum() + (state.lif.i**2).sum()
        return total

    wrt = tuple(leaves.values())
    reference = torch.autograd.grad(loss(lif_mc_refrac_step), wrt)
    ours = torch.autograd.grad(loss(lif_mc_refrac_adjoint), wrt)
    for name, expected, actual in zip(leaves, reference, ours):
        assert expected.abs().sum() > 0, name
        torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)


def test_gradcheck_without_spikes():
    leaves, z0, rho0, _ = _subthreshold_case(seed=1, steps=1)
    x, w_in, w_rec, g, v0, i0 = (t.detach().requires_grad_() for t in leaves.values())

    def step(x, v, i, w_in, w_rec, g):
        return LIFMCRefracAdjointFunction.apply(
            x, z0, v, i, rho0, w_in, w_rec, g, _p(5), 1e-3
        )

    assert step(x[0], v0, i0, w_in, w_rec, g)[0].sum() == 0
    assert torch.autograd.gradcheck(step, (x[0], v0, i0, w_in, w_rec, g))


def _continuous(v0, i0, g, w_rec, release, t_end, t_refrac):
    """Voltages at ``t_end`` and spikes ``(compartment, time)`` of one neuron of the
    continuous-time model (v_leak = v_reset = 0, v_th = 1): linear between events, so
    propagated with matrix exponentials and the threshold crossings found to machine
    precision. ``release``: end of each compartment's refractory period (s); a spike of
    compartment k resets it, adds ``w_rec[:, k]`` to the currents at once and makes it
    refractory for ``t_refrac``. While refractory only the coupling moves v."""
    n = len(v0)
    x = np.concatenate([v0, i0]).astype(float)
    release = np.array(release, dtype=float)
    t, spikes = 0.0, []
    while t < t_end:
        free = (release <= t).astype(float)
        t_next = min([t_end, *release[release > t]])
        rates = np.zeros((2 * n, 2 * n))
        rates[:n, :n] = g - TAU_MEM_INV * np.diag(free)
        rates[:n, n:] = TAU_MEM_INV * np.diag(free)
        rates[n:, n:] = -TAU_SYN_INV * np.eye(n)
        grid = np.linspace(0.0, t_next - t, 801)
        one_step, states = expm(rates * grid[1]), [x]
        for _ in grid[1:]:
            states.append(one_step @ states[-1])
        above = (np.array(states)[:, :n] > 1.0) & (free > 0)
        assert not above[0].any(), "above threshold without a crossing"
        crossings = {}
        for k in np.nonzero(above.any(0))[0]:
            j = np.nonzero(above[:, k])[0][0]
            crossings[k] = brentq(
                lambda tau: (expm(rates * tau) @ x)[k] - 1.0,
                grid[j - 1],
                grid[j],
                xtol=1e-16,
            )
        if crossings:
            k = min(crossings, key=crossings.get)
            x = expm(rates * crossings[k]) @ x
            t += crossings[k]
            x[k] = 0.0
            x[n:] += w_rec[:, k]
            release[k] = t + t_refrac
            spikes.append((int(k), t))
        else:
            x = expm(rates * (t_next - t)) @ x
            t = t_next
    return x[:n], spikes


G0 = np.array([[-10.0, -20.0], [40.0, -10.0]])
W0 = np.array([[0.3, 0.0], [0.8, 0.0]])
V0, I0 = np.array([[0.0, 0.2], [0.3, 0.1]]), np.array([[2.5, 0.3], [2.4, 0.2]])
LOSS = np.array([1.0, 2.0])
T_END, T_REFRAC = 0.016, 0.002


def test_spike_times_through_coupling_refractory_period_and_recurrence(adjoint):
    """Two neurons of two compartments: A spikes once, which resets it (moving B's
    coupling term), makes it refractory for T_REFRAC, kicks B's current and, while A is
    refractory, A's own. L = sum over neurons of v_A(T) + 2 v_B(T). Its gradient with
    respect to v0, i0, G and the two recurrent weights converges at first order to the
    continuous-time one, spike times included."""

    def continuous_loss(theta):
        v0, i0 = theta[:4].reshape(2, 2), theta[4:8].reshape(2, 2)
        g = theta[8:12].reshape(2, 2)
        w_rec = np.array([[theta[12], 0.0], [theta[13], 0.0]])
        total = 0.0
        for b in range(2):
            v, spikes = _continuous(v0[b], i0[b], g, w_rec, [0, 0], T_END, T_REFRAC)
            assert [k for k, _ in spikes] == [0]
            total += LOSS @ v
        return total

    theta = np.concatenate([V0.ravel(), I0.ravel(), G0.ravel(), W0[:, 0]])
    exact = adjoint.central_difference(continuous_loss, theta)

    def gradient(dt):
        v0, i0, g, w_rec = (
            torch.tensor(a, dtype=F64, requires_grad=True) for a in (V0, I0, G0, W0)
        )
        zeros = torch.zeros(2, 2, dtype=F64)
        spikes, state = adjoint.unroll(
            lif_mc_refrac_adjoint,
            _state(zeros, v0, i0, zeros),
            torch.zeros(round(T_END / dt), 2, 1, dtype=F64),
            torch.zeros(2, 1, dtype=F64),
            w_rec,
            g,
            _p(round(T_REFRAC / dt)),
            dt,
        )
        assert spikes.sum(0).tolist() == [[1.0, 0.0], [1.0, 0.0]]
        loss = (state.lif.v * torch.tensor(LOSS, dtype=F64)).sum()
        grads = torch.autograd.grad(loss, (v0, i0, g, w_rec))
        return torch.cat([grad.flatten() for grad in grads[:3]] + [grads[3][:, 0]])

    adjoint.assert_first_order(lambda dt: gradient(dt).numpy(), exact)


def test_initial_rho_gets_the_release_time_gradient(adjoint):
    """Compartment A starts refractory (driven only by the coupling) and is released at
    t_release = rho0 * dt: the gradient of rho0 is dt times dL/dt_release."""
    v0, i0, t_release = np.array([0.2, 0.1]), np.array([1.5, 0.3]), 0.003
    no_kicks = np.zeros((2, 2))

    def continuous_loss(y):
        v, spikes = _continuous(v0, i0, G0, no_kicks, [y[0], 0], 0.01, T_REFRAC)
        assert not spikes
        return LOSS @ v

    exact = adjoint.central_difference(continuous_loss, [t_release])

    def gradient(dt):
        rho0 = torch.tensor(
            [[float(round(t_release / dt)), 0.0]], dtype=F64, requires_grad=True
        )
        zeros = torch.zeros(1, 2, dtype=F64)
        start = _state(
            zeros,
            torch.tensor(v0[None], dtype=F64),
            torch.tensor(i0[None], dtype=F64),
            rho0,
        )
        spikes, state = adjoint.unroll(
            lif_mc_refrac_adjoint,
            start,
            torch.zeros(round(0.01 / dt), 1, 1, dtype=F64),
            torch.zeros(2, 1, dtype=F64),
            torch.zeros(2, 2, dtype=F64),
            torch.tensor(G0, dtype=F64),
            _p(5),
            dt,
        )
        assert spikes.sum() == 0
        loss = (state.lif.v * torch.tensor(LOSS, dtype=F64)).sum()
        return torch.autograd.grad(loss, rho0)[0][0, :1].numpy() / dt

    adjoint.assert_first_order(gradient, exact)


@pytest.mark.parametrize("rho_reset", [0, 3])
def test_without_coupling_equals_the_refractory_lif_adjoint(rho_reset):
    """G = 0 and no input: the same spikes, states and gradients (v0, i0, rho0) as
    lif_refrac_feed_forward_adjoint_step, whose jump and release conditions this one
    extends (with spikes, refractory periods and releases)."""
    torch.manual_seed(0)
    v0 = (torch.rand(3, 4, dtype=F64) * 0.8).requires_grad_()
    i0 = (torch.rand(3, 4, dtype=F64) * 20).requires_grad_()
    rho0 = torch.randint(0, 4, (3, 4)).to(F64).requires_grad_()
    weights = torch.randn(60, 3, 4, dtype=F64)
    zero, no_input = torch.zeros(4, 4, dtype=F64), torch.zeros(3, 4, dtype=F64)

    def run(multi_compartment):
        if multi_compartment:
            state = _state(no_input, v0, i0, rho0)
            args = (zero, zero, zero, _p(rho_reset), 1e-3)
        else:
            state = LIFRefracFeedForwardState(LIFFeedForwardState(v0, i0), rho0)
            args = (_p(rho_reset), 1e-3)
        step = (
            lif_mc_refrac_adjoint
            if multi_compartment
            else lif_refrac_feed_forward_adjoint_step
        )
        total, count = 0.0, 0.0
        for w in weights:
            z, state = step(no_input, state, *args)
            total = total + (w * (z + state.lif.v + state.lif.i)).sum()
            total = total + state.rho.sum()
            count = count + z.detach()
        return count, torch.autograd.grad(total, (v0, i0, rho0))

    count, ours = run(True)
    reference_count, reference = run(False)
    assert torch.equal(count, reference_count) and count.sum() > 30
    for actual, expected in zip(ours, reference):
        assert expected.abs().sum() > 0
        torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_spike_without_crossing_has_finite_gradient():
    """A compartment above threshold at the start of a step (as one driven there by the
    coupling while refractory) spikes without a crossing time: its adjoint is cut."""
    v0 = torch.tensor([[1.5, 0.5]], dtype=F64, requires_grad=True)
    zeros = torch.zeros(1, 2, dtype=F64)
    z, state = lif_mc_refrac_adjoint(
        torch.zeros(1, 1, dtype=F64),
        _state(zeros, v0, zeros, zeros),
        torch.zeros(2, 1, dtype=F64),
        torch.zeros(2, 2, dtype=F64),
        torch.zeros(2, 2, dtype=F64),
        _p(3),
    )
    assert z.tolist() == [[1.0, 0.0]]
    (grad_v,) = torch.autograd.grad(z.sum() + state.lif.v.sum(), v0)
    assert torch.isfinite(grad_v).all()
    assert grad_v[0, 0] == 0 and grad_v[0, 1] > 0


def _good_arguments():
    state = _state(*(torch.zeros(2, 4) for _ in range(4)))
    return [torch.zeros(2, 3), state, torch.zeros(4, 3), torch.zeros(4, 4)] + [
        torch.zeros(4, 4),
        LIFRefracParameters(),
        0.001,
    ]


@pytest.mark.parametrize(
    "position, value, error, message",
    [
        (1, LIFState(*(torch.zeros(2, 4) for _ in range(3))), TypeError, "s must be"),
        (5, LIFParameters(), TypeError, "p must be"),
        (2, torch.zeros(3, 4), ValueError, r"input_weights must have shape \(4, 3\)"),
        (3, torch.zeros(4, 3), ValueError, r"recurrent_weights must have shape"),
        (4, torch.zeros(3, 3), ValueError, r"g_coupling must have shape \(4, 4\)"),
        (4, [[0.0] * 4] * 4, TypeError, "g_coupling must be a torch.Tensor"),
        (6, 0.0, ValueError, "dt must be a positive"),
        (6, "0.001", TypeError, "dt must be a positive float"),
    ],
)
def test_bad_arguments_are_named(position, value, error, message):
    arguments = _good_arguments()
    lif_mc_refrac_adjoint(*arguments)
    arguments[position] = value
    with pytest.raises(error, match=message):
        lif_mc_refrac_adjoint(*arguments)
