"""Adjoint (EventProp) gradients of LIF neurons.

* Without spikes the adjoint gradients equal backpropagation through time (BPTT) through
  the reference step (:func:`lif_feed_forward_step`, Heaviside threshold) exactly, and
  pass ``gradcheck``.
* With spikes they converge, as dt -> 0, to the gradient of the continuous-time dynamics
  (spike times included), computed from the closed-form solution; BPTT through the
  Heaviside reset misses it.
* They agree with Norse 1.1's adjoint where Norse 1.1 is right, and point in the
  direction of surrogate-gradient BPTT.
"""

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from norse.torch.functional import lif
from norse.torch.functional.adjoint.lif_adjoint import (
    LIFFeedForwardAdjointFunction,
    lif_adjoint_step,
    lif_adjoint_step_sparse,
    lif_feed_forward_adjoint_step,
    lif_feed_forward_adjoint_step_sparse,
)

F64 = torch.float64
TAU_MEM_INV, TAU_SYN_INV = 100.0, 50.0
#: tau_syn != tau_mem, so that a wrong coupling of the adjoint current shows.
P = lif.LIFParameters(
    tau_syn_inv=torch.tensor(TAU_SYN_INV, dtype=F64),
    tau_mem_inv=torch.tensor(TAU_MEM_INV, dtype=F64),
    method="heaviside",
)


def _free_voltage(t, v0, i0):
    """Closed-form LIF voltage without spikes (v_leak = 0, tau_mem != tau_syn)."""
    a, s = TAU_MEM_INV, TAU_SYN_INV
    return v0 * np.exp(-a * t) + i0 * a / (a - s) * (np.exp(-s * t) - np.exp(-a * t))


def _spike_time(v0, i0, t_end):
    """The first crossing of v_th = 1 before ``t_end`` (exact)."""
    grid = np.linspace(0.0, t_end, 4001)
    above = np.nonzero(_free_voltage(grid, v0, i0) > 1.0)[0]
    assert above.size, "no spike"
    k = above[0]
    return brentq(
        lambda t: _free_voltage(t, v0, i0) - 1.0, grid[k - 1], grid[k], xtol=1e-15
    )


def _voltage_after_one_spike(v0, i0, t_end):
    """v(t_end) of a neuron that spikes once (reset to 0) and stays below threshold."""
    t_k = _spike_time(v0, i0, t_end)
    i_k = i0 * np.exp(-TAU_SYN_INV * t_k)
    after = np.linspace(0.0, t_end - t_k, 2001)
    assert (_free_voltage(after, 0.0, i_k) < 1.0).all(), "second spike"
    return _free_voltage(t_end - t_k, 0.0, i_k)


def _no_spike_inputs(seed=0, steps=25, batch=3, features=4):
    torch.manual_seed(seed)
    x = torch.rand(steps, batch, 5, dtype=F64)
    weights = (torch.rand(features, 5, dtype=F64) * 0.02).requires_grad_()
    v0 = (torch.rand(batch, features, dtype=F64) * 0.3).requires_grad_()
    i0 = (torch.rand(batch, features, dtype=F64) * 0.3).requires_grad_()
    c = torch.randn(steps, batch, features, dtype=F64)
    return x, weights, v0, i0, c


def test_gradcheck_without_spikes():
    torch.manual_seed(0)
    inputs = [torch.rand(3, 4, dtype=F64, requires_grad=True) * 0.3 for _ in range(3)]
    inputs = [x.detach().requires_grad_() for x in inputs]

    def step(x, v, i):
        return LIFFeedForwardAdjointFunction.apply(x, v, i, P, 1e-3)

    assert step(*inputs)[0].sum() == 0
    assert torch.autograd.gradcheck(step, inputs)


def test_feed_forward_equals_bptt_without_spikes():
    x, weights, v0, i0, c = _no_spike_inputs()

    def loss(step):
        state = lif.LIFFeedForwardState(v0, i0)
        total = 0.0
        for t in range(x.shape[0]):
            z, state = step(x[t] @ weights.t(), state, P, 1e-3)
            assert z.sum() == 0
            total = total + (c[t] * state.v).sum() + (state.i**2).sum() + z.sum()
        return total

    reference = torch.autograd.grad(loss(lif.lif_feed_forward_step), (weights, v0, i0))
    ours = torch.autograd.grad(loss(lif_feed_forward_adjoint_step), (weights, v0, i0))
    for expected, actual in zip(reference, ours):
        assert expected.abs().sum() > 0
        torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_recurrent_equals_bptt_without_spikes():
    x, w_in, v0, i0, c = _no_spike_inputs(seed=1)
    w_rec = (torch.rand(4, 4, dtype=F64) * 0.1).requires_grad_()
    z0 = torch.tensor([[1.0, 0.0, 1.0, 0.0]] * 3, dtype=F64, requires_grad=True)

    def loss(step):
        state = lif.LIFState(z0, v0, i0)
        total = 0.0
        for t in range(x.shape[0]):
            z, state = step(x[t], state, w_in, w_rec, P, 1e-3)
            assert z.sum() == 0
            total = total + (c[t] * state.v).sum() + (state.i**2).sum()
        return total

    # (z0 receives the gradient of its spike times instead; see the next tests)
    wrt = (w_in, w_rec, v0, i0)
    reference = torch.autograd.grad(loss(lif.lif_step), wrt)
    ours = torch.autograd.grad(loss(lif_adjoint_step), wrt)
    for expected, actual in zip(reference, ours):
        assert expected.abs().sum() > 0
        torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


V0, I0, T_END = [0.0, 0.3, 0.5], [2.5, 2.2, 2.0], 0.02


def _discrete_gradient(step, dt):
    """d v(T_END) / d(v0, i0) of the discretised neurons, shape (3, 2)."""
    v0 = torch.tensor(V0, dtype=F64, requires_grad=True)
    i0 = torch.tensor(I0, dtype=F64, requires_grad=True)
    state, count = lif.LIFFeedForwardState(v0, i0), 0
    for _ in range(round(T_END / dt)):
        z, state = step(torch.zeros(3, dtype=F64), state, P, dt)
        count = count + z.detach()
    assert count.tolist() == [1.0, 1.0, 1.0]
    return torch.stack(torch.autograd.grad(state.v.sum(), (v0, i0)), 1).numpy()


def test_spike_time_gradient_converges_to_continuous_time(adjoint):
    exact = np.array(
        [
            adjoint.central_difference(
                lambda y: _voltage_after_one_spike(y[0], y[1], T_END), [v0, i0]
            )
            for v0, i0 in zip(V0, I0)
        ]
    )
    adjoint.assert_first_order(
        lambda dt: _discrete_gradient(lif_feed_forward_adjoint_step, dt), exact
    )
    # BPTT through the Heaviside reset loses the spike-time dependence entirely
    bptt = _discrete_gradient(lif.lif_feed_forward_step, adjoint.DTS[-1])
    assert np.all(np.abs(bptt - exact) / np.abs(exact) > 0.3)


def test_recurrent_spike_gradient_converges_to_continuous_time(adjoint):
    """Neuron A (initial current i_A) spikes once at t_A and kicks neuron B's current by
    w; L = v_B(T). The gradient with respect to i_A flows only through A's spike time
    (EventProp's recurrent term); dL/dw = v_B(T) / w."""
    w, i_a, t_end = 1.0, [2.5, 2.2], 0.012

    def v_b(i_a0):
        t_a = _spike_time(0.0, i_a0, t_end)
        _voltage_after_one_spike(0.0, i_a0, t_end)  # asserts A spikes only once
        return _free_voltage(t_end - t_a, 0.0, w)

    exact_i = np.array(
        [adjoint.central_difference(lambda y: v_b(y[0]), [i]) for i in i_a]
    )
    exact = np.concatenate([exact_i[:, 0], [sum(v_b(i) for i in i_a) / w]])

    def gradient(dt):
        i0 = torch.tensor([[i, 0.0] for i in i_a], dtype=F64, requires_grad=True)
        w_rec = torch.tensor([[0.0, 0.0], [w, 0.0]], dtype=F64, requires_grad=True)
        w_in = torch.zeros(2, 1, dtype=F64)
        state = lif.LIFState(
            torch.zeros(2, 2, dtype=F64), torch.zeros(2, 2, dtype=F64), i0
        )
        spikes, state = adjoint.unroll(
            lif_adjoint_step,
            state,
            torch.zeros(round(t_end / dt), 2, 1, dtype=F64),
            w_in,
            w_rec,
            P,
            dt,
        )
        assert spikes.sum(0).tolist() == [[1.0, 0.0], [1.0, 0.0]]
        grad_i, grad_w = torch.autograd.grad(state.v[:, 1].sum(), (i0, w_rec))
        return np.concatenate([grad_i[:, 0].numpy(), [grad_w[1, 0].item()]])

    adjoint.assert_first_order(gradient, exact, constant=500.0)


# Norse 1.1's gradients for the scenarios of _norse_scenario, recorded with Norse 1.1
# (in a venv with norse==1.1.0) by running _norse_scenario with Norse 1.1's
# ``norse.torch.functional.adjoint.lif_adjoint.lif_feed_forward_adjoint_step`` as ``step``
# and printing ``[g.tolist() for g in ...]`` at full precision. tau_syn = tau_mem and no
# input while spiking: the settings in which Norse 1.1's adjoint is consistent.
NORSE_1_1_SUBTHRESHOLD = (
    [27.237880781999998, 27.237880781999998],
    [19.496242791100002, 19.496242791100002],
    [19.496242791100002, 18.299790659000003, 16.72022271, 14.8106299, 12.640631]
    + [10.29939, 7.899100000000001, 5.579000000000001, 3.5100000000000002, 1.9],
)
NORSE_1_1_SPIKING = {
    1e-4: (
        [1.0389717992065972, 0.23861568666179203, 0.5783578894614471],
        [1.0043900056567514, 0.3013169627667017, 0.5060903251865774],
    ),
    2.5e-5: (
        [1.046016097681516, 0.24232597566199132, 0.5968131752689503],
        [1.0050797966946055, 0.3026807385083802, 0.5151147770279759],
    ),
}
P_EQUAL_TAUS = lif.LIFParameters(
    tau_syn_inv=torch.tensor(100.0, dtype=F64),
    tau_mem_inv=torch.tensor(100.0, dtype=F64),
)


def _norse_scenario(step, spiking, dt=1e-3):
    if not spiking:
        x = torch.tensor(
            [[0.1 * (t + 1) * (n + 1) / 10 for n in range(2)] for t in range(10)],
            dtype=F64,
            requires_grad=True,
        )
        v0 = torch.tensor([0.1, -0.2], dtype=F64, requires_grad=True)
        i0 = torch.tensor([0.3, 0.0], dtype=F64, requires_grad=True)
        state, loss = lif.LIFFeedForwardState(v0, i0), 0.0
        for t in range(10):
            z, state = step(x[t], state, P_EQUAL_TAUS, dt)
            loss = loss + (t + 1) * state.v.sum() + 0.5 * z.sum()
        return torch.autograd.grad(loss + state.i.sum(), (v0, i0, x))
    v0 = torch.tensor([0.0, 0.3, 0.5], dtype=F64, requires_grad=True)
    i0 = torch.tensor([4.0, 3.5, 5.0], dtype=F64, requires_grad=True)
    state, loss, count = lif.LIFFeedForwardState(v0, i0), 0.0, 0.0
    for _ in range(round(0.02 / dt)):
        z, state = step(torch.zeros(3, dtype=F64), state, P_EQUAL_TAUS, dt)
        loss = loss + 5.0 * z.sum()
        count = count + z.detach()
    assert count.tolist() == [2.0, 1.0, 3.0]
    return torch.autograd.grad(loss + state.v.sum(), (v0, i0))


def test_equals_norse_1_1_without_spikes():
    grad_v, grad_i, grad_x = _norse_scenario(lif_feed_forward_adjoint_step, False)
    expected_v, expected_i, expected_x = NORSE_1_1_SUBTHRESHOLD
    torch.testing.assert_close(grad_v, torch.tensor(expected_v, dtype=F64))
    torch.testing.assert_close(grad_i, torch.tensor(expected_i, dtype=F64))
    torch.testing.assert_close(
        grad_x, torch.tensor(expected_x, dtype=F64)[:, None].expand(10, 2)
    )


def test_approaches_norse_1_1_with_spikes():
    """With spikes the two differ at O(dt) (Norse 1.1 adds the output term after the
    decay and couples with the pre-jump adjoint): the difference shrinks with dt."""
    differences = []
    for dt, expected in NORSE_1_1_SPIKING.items():
        ours = _norse_scenario(lif_feed_forward_adjoint_step, True, dt)
        expected = [torch.tensor(e, dtype=F64) for e in expected]
        differences.append(
            max(float(((o - e) / e).abs().max()) for o, e in zip(ours, expected))
        )
    assert differences[0] < 0.015 and differences[1] < 0.005, differences
    assert differences[1] < differences[0] / 3, differences


def test_direction_agrees_with_surrogate_bptt():
    """Training spike counts towards a target: the adjoint gradient of the input weights
    points where SuperSpike BPTT's does (cosine > 0.8, same sign on the larger half)."""
    torch.manual_seed(0)
    x = (torch.rand(50, 8, 10) < 0.2).to(F64)
    weights = (torch.randn(16, 10, dtype=F64) * 2).requires_grad_()
    gradients = []
    for step, method in (
        (lif_feed_forward_adjoint_step, "heaviside"),
        (lif.lif_feed_forward_step, "super"),
    ):
        state = lif.LIFFeedForwardState(
            torch.zeros(8, 16, dtype=F64), torch.zeros(8, 16, dtype=F64)
        )
        spikes, _ = _unroll_current(
            step, state, x, weights, lif.LIFParameters(method=method)
        )
        loss = ((spikes.sum(0) - 3.0) ** 2).sum()
        gradients.append(torch.autograd.grad(loss, weights)[0])
    ours, surrogate = gradients
    cosine = (ours * surrogate).sum() / ours.norm() / surrogate.norm()
    assert cosine > 0.8
    larger = surrogate.abs() > surrogate.abs().median()
    agree = (torch.sign(ours) == torch.sign(surrogate))[larger].to(F64).mean()
    assert agree > 0.95


def _unroll_current(step, state, x, weights, p):
    outputs = []
    for x_t in x:
        z, state = step(x_t @ weights.t(), state, p, 1e-3)
        outputs.append(z)
    return torch.stack(outputs), state


def test_sparse_forms_equal_dense(adjoint):
    torch.manual_seed(0)
    x = (torch.rand(12, 3, 5) < 0.5).to(F64)
    w_in = (torch.randn(4, 5, dtype=F64) * 6).requires_grad_()
    w_rec = (torch.randn(4, 4, dtype=F64)).requires_grad_()
    v0 = torch.zeros(3, 4, dtype=F64, requires_grad=True)
    results = []
    for step, sparse in ((lif_adjoint_step, False), (lif_adjoint_step_sparse, True)):
        z0 = torch.zeros(3, 4, dtype=F64)
        state = lif.LIFState(
            z0.to_sparse() if sparse else z0, v0, torch.zeros(3, 4, dtype=F64)
        )
        inputs = [x_t.to_sparse() if sparse else x_t for x_t in x]
        outputs = []
        for x_t in inputs:
            z, state = step(x_t, state, w_in, w_rec, P, 1e-3)
            assert z.is_sparse == sparse
            outputs.append(z.to_dense() if sparse else z)
        spikes = torch.stack(outputs)
        loss = (
            spikes * torch.arange(12, dtype=F64)[:, None, None]
        ).sum() + state.v.sum()
        results.append((spikes, *torch.autograd.grad(loss, (w_in, w_rec, v0))))
    assert results[0][0].sum() > 5
    for dense, sparse in zip(*results):
        torch.testing.assert_close(sparse, dense)

    current = x @ w_in.detach().t()
    state = lif.LIFFeedForwardState(v0, torch.zeros(3, 4, dtype=F64))
    dense_out = adjoint.unroll(lif_feed_forward_adjoint_step, state, current, P, 1e-3)
    sparse_out = adjoint.unroll(
        lif_feed_forward_adjoint_step_sparse, state, current.to_sparse(), P, 1e-3
    )
    torch.testing.assert_close(sparse_out[0], dense_out[0])
    torch.testing.assert_close(
        torch.autograd.grad(sparse_out[1].v.sum(), v0)[0],
        torch.autograd.grad(dense_out[1].v.sum(), v0)[0],
    )


def test_spike_without_crossing_has_finite_gradient():
    """A neuron above threshold at the start of a step spikes without a crossing time:
    its adjoint is cut like BPTT through the reset, never infinite."""
    v0 = torch.tensor([1.5, 1.0], dtype=F64, requires_grad=True)
    i0 = torch.tensor([0.0, 0.0], dtype=F64, requires_grad=True)
    z, state = lif_feed_forward_adjoint_step(
        torch.zeros(2, dtype=F64), lif.LIFFeedForwardState(v0, i0), P
    )
    assert z.tolist() == [1.0, 0.0]
    grad_v, grad_i = torch.autograd.grad(z.sum() + state.v.sum(), (v0, i0))
    assert torch.isfinite(grad_v).all() and torch.isfinite(grad_i).all()
    assert grad_v[0] == 0 and grad_v[1] > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_dtypes_and_default_parameters(dtype):
    x = torch.rand(2, 3, 4, dtype=dtype) * 5
    state = lif.LIFFeedForwardState(
        torch.zeros(2, 3, 4, dtype=dtype), torch.zeros(2, 3, 4, dtype=dtype)
    )
    z, new = lif_feed_forward_adjoint_step(x, state)
    expected, reference = lif.lif_feed_forward_step(
        x, state, lif.LIFParameters(method="heaviside")
    )
    torch.testing.assert_close(z, expected)
    torch.testing.assert_close(new.v, reference.v)
    assert z.dtype == new.v.dtype == new.i.dtype == dtype
