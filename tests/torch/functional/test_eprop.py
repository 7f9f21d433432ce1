"""e-prop's eligibility equations: the neuron steps are this package's steps, and where
e-prop is exact (no path through other neurons) the traces give BPTT's gradient."""

import pytest
import torch

from norse.torch.functional import eprop
from norse.torch.functional.leaky_integrator import (
    LIParameters,
    LIState,
    li_feed_forward_step,
)
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    LIFState,
    lif_feed_forward_step,
    lif_step,
)
from norse.torch.functional.lsnn import (
    LSNNFeedForwardState,
    LSNNParameters,
    LSNNState,
    lsnn_feed_forward_step,
    lsnn_step,
)
from norse.torch.functional.threshold import METHODS, threshold

F64 = torch.float64
DT = 1e-3
B, N_IN, H, T = 3, 4, 5, 50
LIF_P = LIFParameters(v_th=torch.tensor(0.3), alpha=torch.tensor(5.0))
LSNN_P = LSNNParameters(
    v_th=torch.tensor(0.3),
    beta=torch.tensor(0.2),
    tau_adapt_inv=torch.tensor(1 / 0.05),
    alpha=torch.tensor(5.0),
)


def _inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, B, N_IN, generator=generator) < 0.3).to(F64)
    w_in = torch.randn(H, N_IN, generator=generator, dtype=F64) * 3
    w_rec = torch.randn(H, H, generator=generator, dtype=F64)
    return x, w_in, w_rec


def _run_eprop(model, x, w_in, w_rec, detach_reset):
    """Spikes, states and eligibility traces of every step (for checking only)."""
    step, zeros = (
        (eprop.lif_eprop_step, eprop.lif_eligibility_zeros)
        if model == "lif"
        else (eprop.lsnn_eprop_step, eprop.lsnn_eligibility_zeros)
    )
    p = LIF_P if model == "lif" else LSNN_P
    rest = torch.zeros(B, H, dtype=F64)
    state = (
        LIFFeedForwardState(rest, rest)
        if model == "lif"
        else LSNNFeedForwardState(rest, rest, p.v_th.to(F64).expand(B, H))
    )
    traces = zeros(B, H, N_IN + H, dtype=F64)
    z = torch.zeros(B, H, dtype=F64)
    spikes, states, eligibility = [], [], []
    for x_t in x:
        presynaptic = torch.cat((x_t, z), 1)
        current = x_t @ w_in.T + z @ w_rec.T
        z, state, traces, e = step(
            current, presynaptic, state, traces, p, DT, detach_reset
        )
        spikes.append(z)
        states.append(state)
        eligibility.append(e)
    return spikes, states, eligibility


@pytest.mark.parametrize("model", ["lif", "lsnn"])
def test_the_neurons_step_as_the_recurrent_steps(model):
    x, w_in, w_rec = _inputs()
    spikes, states, _ = _run_eprop(model, x, w_in, w_rec, detach_reset=True)
    rest = torch.zeros(B, H, dtype=F64)
    if model == "lif":
        state = LIFState(rest, rest, rest)
    else:
        state = LSNNState(rest, rest, rest, LSNN_P.v_th.to(F64).expand(B, H))
    count = 0
    for x_t, z_e, state_e in zip(x, spikes, states):
        if model == "lif":
            z, state = lif_step(x_t, state, w_in, w_rec, LIF_P, DT)
        else:
            z, state = lsnn_step(x_t, state, w_in, w_rec, LSNN_P, DT)
        torch.testing.assert_close(z_e, z, rtol=0, atol=0)
        for field in state_e._fields:
            torch.testing.assert_close(getattr(state_e, field), getattr(state, field))
        count += int(z.sum())
    assert count > 10  # the traces below see spikes and resets


def _bptt_gradients(model, x, w_in, w_rec, coefficients, feed_forward):
    """Autograd through the package's steps; loss sum_t c_t * z_t on the spikes."""
    w_in = w_in.clone().requires_grad_()
    w_rec = w_rec.clone().requires_grad_()
    rest = torch.zeros(B, H, dtype=F64)
    p = LIF_P if model == "lif" else LSNN_P
    threshold_start = LSNN_P.v_th.to(F64).expand(B, H)
    if feed_forward:
        state = (
            LIFFeedForwardState(rest, rest)
            if model == "lif"
            else LSNNFeedForwardState(rest, rest, threshold_start)
        )
    else:
        state = (
            LIFState(rest, rest, rest)
            if model == "lif"
            else LSNNState(rest, rest, rest, threshold_start)
        )
    z = rest
    loss = 0
    for x_t, c_t in zip(x, coefficients):
        if feed_forward:
            current = x_t @ w_in.T + z @ w_rec.T
            step = lif_feed_forward_step if model == "lif" else lsnn_feed_forward_step
            z, state = step(current, state, p, DT)
        else:
            step = lif_step if model == "lif" else lsnn_step
            z, state = step(x_t, state, w_in, w_rec, p, DT)
        loss = loss + (c_t * z).sum()
    loss.backward()
    return torch.cat((w_in.grad, w_rec.grad), 1)


@pytest.mark.parametrize("model", ["lif", "lsnn"])
@pytest.mark.parametrize("detach_reset", [True, False])
def test_without_recurrent_weights_eprop_is_bptt(model, detach_reset):
    # The recurrent weights are zero, so no gradient path leaves a neuron: the
    # eligibility traces hold the whole gradient, also that of the recurrent weights.
    x, w_in, _ = _inputs(1)
    w_rec = torch.zeros(H, H, dtype=F64)
    coefficients = torch.randn(T, B, H, dtype=F64)
    expected = _bptt_gradients(
        model, x, w_in, w_rec, coefficients, feed_forward=not detach_reset
    )
    _, _, eligibility = _run_eprop(model, x, w_in, w_rec, detach_reset)
    gradient = sum(
        eprop.eprop_gradient(c, e) for c, e in zip(coefficients, eligibility)
    )
    torch.testing.assert_close(gradient, expected, rtol=1e-10, atol=1e-10)
    assert (
        gradient[:, N_IN:].abs().max() > 0
    )  # the recurrent part is not trivially zero


@pytest.mark.parametrize("model", ["lif", "lsnn"])
def test_with_recurrent_weights_eprop_drops_the_paths_through_other_neurons(model):
    x, w_in, w_rec = _inputs(2)
    coefficients = torch.randn(T, B, H, dtype=F64)
    expected = _bptt_gradients(model, x, w_in, w_rec, coefficients, True)
    _, _, eligibility = _run_eprop(model, x, w_in, w_rec, detach_reset=False)
    gradient = sum(
        eprop.eprop_gradient(c, e) for c, e in zip(coefficients, eligibility)
    )
    assert not torch.allclose(gradient, expected, rtol=1e-3, atol=1e-3)
    # ... but points the same way
    cosine = torch.nn.functional.cosine_similarity(
        gradient.flatten(), expected.flatten(), dim=0
    )
    assert cosine > 0


def test_the_adaptive_eligibility_vector_carries_the_threshold_jump():
    x, w_in, _ = _inputs(3)
    state = LSNNFeedForwardState(
        *(torch.zeros(B, H, dtype=F64),) * 2, LSNN_P.v_th.to(F64).expand(B, H)
    )
    detached = eprop.lsnn_eligibility_zeros(B, H, N_IN + H, dtype=F64)
    passed = detached
    z = torch.zeros(B, H, dtype=F64)
    for x_t in x:
        presynaptic = torch.cat((x_t, z), 1)
        current = x_t @ w_in.T
        _, _, detached, _ = eprop.lsnn_eprop_step(
            current, presynaptic, state, detached, LSNN_P, DT, True
        )
        z, state, passed, _ = eprop.lsnn_eprop_step(
            current, presynaptic, state, passed, LSNN_P, DT, False
        )
    assert detached.b.abs().max() == 0  # lsnn_step: the jump has no gradient
    assert passed.b.abs().max() > 0


@pytest.mark.parametrize("method", [m for m in METHODS if m != "heaviside"])
def test_pseudo_derivative_is_the_thresholds_surrogate(method):
    x = torch.linspace(-2, 2, 41, dtype=F64, requires_grad=True)
    threshold(x, method, 3.0).sum().backward()
    torch.testing.assert_close(eprop.pseudo_derivative(x.detach(), method, 3.0), x.grad)


def test_pseudo_derivative_of_heaviside_is_zero_and_unknown_methods_fail():
    assert eprop.pseudo_derivative(torch.ones(3), "heaviside", 1.0).abs().sum() == 0
    with pytest.raises(ValueError, match="p.method must be one of"):
        eprop.pseudo_derivative(torch.ones(3), "nope", 1.0)


def test_li_trace_step_is_the_readouts_derivative():
    # y = LI(w * u): dy_t/dw = LI-filter of u (the leak potential drops out)
    p = LIParameters(v_leak=torch.tensor(0.7))
    u = torch.randn(30, 2, dtype=F64)
    w = torch.tensor(1.3, dtype=F64, requires_grad=True)
    state = LIState(torch.full((2,), 0.7, dtype=F64), torch.zeros(2, dtype=F64))
    filtered = LIState(torch.zeros(2, dtype=F64), torch.zeros(2, dtype=F64))
    for u_t in u:
        y, state = li_feed_forward_step(w * u_t, state, p, DT)
        (expected,) = torch.autograd.grad(y.sum(), w, retain_graph=True)
        trace, filtered = eprop.li_trace_step(u_t, filtered, p, DT)
        torch.testing.assert_close(trace.sum(), expected)


def test_learning_signal_and_gradient():
    error = torch.tensor([[1.0, 2.0]])
    feedback = torch.tensor([[1.0, 0.0, -1.0], [0.5, 1.0, 0.0]])
    signal = eprop.learning_signal(error, feedback)
    torch.testing.assert_close(signal, torch.tensor([[2.0, 2.0, -1.0]]))
    trace = torch.arange(6.0).reshape(1, 3, 2)
    torch.testing.assert_close(
        eprop.eprop_gradient(signal, trace), signal[0, :, None] * trace[0]
    )


def test_bad_shapes_and_parameters_are_named():
    state = LIFFeedForwardState(torch.zeros(2, 3), torch.zeros(2, 3))
    traces = eprop.lif_eligibility_zeros(2, 3, 4)
    with pytest.raises(
        ValueError, match=r"traces.v must have shape \(batch, hidden, N\) = \(2, 3, 5\)"
    ):
        eprop.lif_eprop_step(torch.zeros(2, 3), torch.zeros(2, 5), state, traces)
    with pytest.raises(ValueError, match="input_current and presynaptic must be"):
        eprop.lif_eprop_step(torch.zeros(3), torch.zeros(2, 4), state, traces)
    per_neuron = LIFParameters(tau_syn_inv=torch.full((3,), 200.0))
    with pytest.raises(ValueError, match="p.tau_syn_inv must be a scalar"):
        eprop.lif_eprop_step(
            torch.zeros(2, 3), torch.zeros(2, 4), state, traces, per_neuron
        )
    with pytest.raises(ValueError, match=r"error and feedback must be"):
        eprop.learning_signal(torch.zeros(2, 3), torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"signal and trace must be"):
        eprop.eprop_gradient(torch.zeros(2, 3), torch.zeros(2, 4, 5))


def test_per_neuron_membrane_constants_broadcast():
    p = LIFParameters(tau_mem_inv=torch.tensor([50.0, 100.0, 200.0]))
    state = LIFFeedForwardState(torch.zeros(2, 3), torch.zeros(2, 3))
    traces = eprop.LIFEligibility(torch.zeros(2, 4), torch.zeros(2, 3, 4))
    presynaptic = torch.ones(2, 4)
    _, _, traces, e = eprop.lif_eprop_step(
        torch.ones(2, 3), presynaptic, state, traces, p
    )
    # dv/dW_ji after one step from rest: a_j * x_i with a_j = dt / tau_mem_j
    torch.testing.assert_close(traces.v[0, :, 0], torch.tensor([0.05, 0.1, 0.2]))
