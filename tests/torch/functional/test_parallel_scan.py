"""Parallel scans: equal to the sequential recurrences and step functions, with gradients."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from norse.torch.functional.leaky_integrator import (
    LIParameters,
    LIState,
    li_feed_forward_step,
)
from norse.torch.functional.leaky_integrator_box import (
    LIBoxParameters,
    LIBoxState,
    li_box_feed_forward_step,
)
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    lif_feed_forward_step,
)
from norse.torch.functional.parallel_scan import (
    li_box_feed_forward_scan,
    li_feed_forward_scan,
    lif_feed_forward_scan,
    linear_scan,
    linear_scan_varying,
)

F64 = torch.float64


def _sequential(decay, drive, initial):
    h, out = initial, []
    for t in range(drive.shape[0]):
        a = decay[t] if decay.dim() == drive.dim() else decay
        h = a * h + drive[t]
        out.append(h)
    return torch.stack(out)


def _run_steps(step, x, state, *args):
    outs, states = [], []
    for x_t in x:
        out, state = step(x_t, state, *args)
        outs.append(out)
        states.append(state)
    return torch.stack(outs), state, states


@given(
    steps=st.integers(1, 70),
    seed=st.integers(0, 2**16),
    per_neuron=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_linear_scan_equals_the_recurrence(steps, seed, per_neuron):
    generator = torch.Generator().manual_seed(seed)
    drive = torch.randn(steps, 3, 2, dtype=F64, generator=generator)
    decay = (
        torch.rand(2, dtype=F64, generator=generator) * 2 - 1
        if per_neuron
        else torch.tensor(0.93, dtype=F64)
    )
    initial = torch.randn(3, 2, dtype=F64, generator=generator)
    torch.testing.assert_close(
        linear_scan(decay, drive, initial),
        _sequential(decay, drive, initial),
        rtol=1e-12,
        atol=1e-12,
    )


@given(steps=st.integers(1, 70), seed=st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_linear_scan_varying_equals_the_recurrence(steps, seed):
    generator = torch.Generator().manual_seed(seed)
    drive = torch.randn(steps, 4, dtype=F64, generator=generator)
    decay = torch.rand(steps, 4, dtype=F64, generator=generator) * 2 - 1
    initial = torch.randn(4, dtype=F64, generator=generator)
    torch.testing.assert_close(
        linear_scan_varying(decay, drive, initial),
        _sequential(decay, drive, initial),
        rtol=1e-12,
        atol=1e-12,
    )


def test_linear_scan_closed_form_long_sequence():
    # h_t = a h_{t-1} + 1 from 0: (1 - a^{t+1}) / (1 - a)
    steps, a = 10_000, 0.999
    h = linear_scan(a, torch.ones(steps, 1, dtype=F64))[:, 0]
    t = torch.arange(steps, dtype=F64)
    torch.testing.assert_close(h, (1 - a ** (t + 1)) / (1 - a), rtol=1e-12, atol=0)


def test_linear_scan_float32_within_rounding():
    generator = torch.Generator().manual_seed(1)
    drive = torch.randn(1000, 64, generator=generator)
    exact = _sequential(torch.tensor(0.95, dtype=F64), drive.double(), 0.0)
    error = (linear_scan(0.95, drive).double() - exact).abs().max()
    sequential_error = (_sequential(torch.tensor(0.95), drive, 0.0) - exact).abs().max()
    # a few ulps of values of size ~5, as the float32 loop itself
    assert error < 1e-5 and error < 10 * sequential_error + 1e-6


def test_linear_scan_gradcheck():
    decay = torch.tensor([0.9, -0.5], dtype=F64, requires_grad=True)
    drive = torch.randn(11, 2, dtype=F64, requires_grad=True)
    initial = torch.randn(2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(linear_scan, (decay, drive, initial))
    decays = torch.rand(9, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        linear_scan_varying, (decays, drive[:9].detach().requires_grad_(), initial)
    )


def test_linear_scan_second_derivatives():
    # the backward is itself a scan, so gradients of gradients work too
    decay = torch.tensor(0.8, dtype=F64, requires_grad=True)
    drive = torch.randn(6, 2, dtype=F64, requires_grad=True)
    initial = torch.randn(2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradgradcheck(linear_scan, (decay, drive, initial))
    decays = torch.rand(5, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradgradcheck(
        linear_scan_varying, (decays, drive[:5].detach().requires_grad_(), initial)
    )


def test_linear_scan_under_vmap():
    drive = torch.randn(4, 7, 3, dtype=F64)
    batched = torch.func.vmap(lambda b: linear_scan(0.7, b))(drive)
    torch.testing.assert_close(
        batched, linear_scan(0.7, drive.transpose(0, 1)).transpose(0, 1)
    )


def test_linear_scan_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"drive must have shape \(T, \.\.\.\)"):
        linear_scan(0.5, torch.zeros(0, 3))
    with pytest.raises(ValueError, match="decay of shape"):
        linear_scan(torch.ones(4), torch.zeros(5, 3))
    with pytest.raises(TypeError, match="drive must be a floating-point"):
        linear_scan(0.5, torch.zeros(5, 3, dtype=torch.long))
    with pytest.raises(
        ValueError, match=r"decay must have shape \(T, \.\.\.\) of drive = \(5, 3\)"
    ):
        linear_scan_varying(torch.ones(4, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="initial of shape"):
        linear_scan(0.5, torch.zeros(5, 3), torch.zeros(2, 3))


def _li_case(steps, dtype=F64, per_neuron=False):
    generator = torch.Generator().manual_seed(steps)
    x = torch.randn(steps, 2, 5, dtype=dtype, generator=generator)
    state = LIState(
        torch.randn(2, 5, dtype=dtype, generator=generator),
        torch.randn(2, 5, dtype=dtype, generator=generator),
    )
    p = LIParameters()
    if per_neuron:
        p = LIParameters(
            tau_syn_inv=torch.linspace(100, 300, 5, dtype=dtype),
            tau_mem_inv=torch.linspace(50, 150, 5, dtype=dtype),
            v_leak=torch.tensor(0.2, dtype=dtype),
        )
    return x, state, p


@pytest.mark.parametrize("steps", [1, 2, 7, 64, 1000])
@pytest.mark.parametrize("per_neuron", [False, True])
def test_li_scan_equals_the_step_function(steps, per_neuron):
    x, state, p = _li_case(steps, per_neuron=per_neuron)
    v, final = li_feed_forward_scan(x, state, p)
    v_ref, final_ref, states = _run_steps(li_feed_forward_step, x, state, p, 0.001)
    torch.testing.assert_close(v, v_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final.v, final_ref.v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final.i, final_ref.i, rtol=1e-12, atol=1e-12)
    _, recorded = li_feed_forward_scan(x, state, p, record_states=True)
    torch.testing.assert_close(
        recorded.i, torch.stack([s.i for s in states]), rtol=1e-12, atol=1e-12
    )


def test_li_scan_float32_within_rounding():
    x, state, p = _li_case(1000, dtype=torch.float32)
    v, _ = li_feed_forward_scan(x, state, p)
    v_ref, _, _ = _run_steps(li_feed_forward_step, x, state, p, 0.001)
    torch.testing.assert_close(v, v_ref, rtol=1e-5, atol=1e-5)


def test_li_scan_analytic_solution():
    # no input, i0 and v0 given: the Euler solution in closed form
    steps, dt = 300, 1e-4
    a, b = dt * 100.0, dt * 200.0  # tau_mem_inv, tau_syn_inv
    p = LIParameters(
        tau_syn_inv=torch.tensor(200.0, dtype=F64),
        tau_mem_inv=torch.tensor(100.0, dtype=F64),
    )
    v, _ = li_feed_forward_scan(
        torch.zeros(steps, 1, dtype=F64),
        LIState(torch.tensor([0.5], dtype=F64), torch.tensor([2.0], dtype=F64)),
        p,
        dt,
    )
    t = torch.arange(1, steps + 1, dtype=F64)
    alpha, beta = 1 - a, 1 - b
    # v_t = alpha^t v0 + a i0 sum_{s<t} alpha^{t-1-s} beta^s
    expected = alpha**t * 0.5 + a * 2.0 * (alpha**t - beta**t) / (alpha - beta)
    torch.testing.assert_close(v[:, 0], expected, rtol=1e-12, atol=1e-14)
    assert math.isclose(v[-1, 0].item(), expected[-1].item(), rel_tol=1e-12)


def test_li_scan_gradcheck():
    x = torch.randn(9, 3, dtype=F64, requires_grad=True)
    v0 = torch.randn(3, dtype=F64, requires_grad=True)
    i0 = torch.randn(3, dtype=F64, requires_grad=True)
    tau = torch.tensor([80.0, 100.0, 120.0], dtype=F64, requires_grad=True)

    def run(x, v0, i0, tau):
        p = LIParameters(tau_mem_inv=tau, tau_syn_inv=torch.tensor(200.0, dtype=F64))
        v, state = li_feed_forward_scan(x, LIState(v0, i0), p)
        return v, state.i

    assert torch.autograd.gradcheck(run, (x, v0, i0, tau))


@pytest.mark.parametrize("steps", [1, 5, 333])
def test_li_box_scan_equals_the_step_function(steps):
    generator = torch.Generator().manual_seed(steps)
    x = torch.randn(steps, 4, dtype=F64, generator=generator)
    state = LIBoxState(torch.randn(4, dtype=F64, generator=generator))
    p = LIBoxParameters(tau_mem_inv=torch.tensor([50.0, 80.0, 120.0, 300.0], dtype=F64))
    v, final = li_box_feed_forward_scan(x, state, p)
    v_ref, final_ref, _ = _run_steps(li_box_feed_forward_step, x, state, p, 0.001)
    torch.testing.assert_close(v, v_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final.v, final_ref.v, rtol=1e-12, atol=1e-12)
    x.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: li_box_feed_forward_scan(x, state, p)[0], (x[:6],)
    )


def _lif_case(steps, scale=1.5):
    generator = torch.Generator().manual_seed(steps)
    x = (
        torch.rand(steps, 3, 8, dtype=F64, generator=generator) * scale
    ).requires_grad_()
    state = LIFFeedForwardState(
        torch.rand(3, 8, dtype=F64, generator=generator),
        torch.rand(3, 8, dtype=F64, generator=generator),
    )
    p = LIFParameters(
        tau_mem_inv=torch.tensor(120.0, dtype=F64),
        v_th=torch.tensor(0.7, dtype=F64),
        alpha=torch.tensor(20.0, dtype=F64),
    )
    return x, state, p


@pytest.mark.parametrize("steps", [1, 40, 257])
def test_lif_current_scan_equals_the_step_function(steps):
    x, state, p = _lif_case(steps)
    z, final = lif_feed_forward_scan(x, state, p)
    z_ref, final_ref, _ = _run_steps(lif_feed_forward_step, x, state, p, 0.001)
    assert torch.equal(z, z_ref) and z.sum() > 0
    torch.testing.assert_close(final.v, final_ref.v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final.i, final_ref.i, rtol=1e-12, atol=1e-12)
    weights = torch.randn_like(z)
    grad = torch.autograd.grad((z * weights).sum() + final.v.sum(), x)[0]
    grad_ref = torch.autograd.grad((z_ref * weights).sum() + final_ref.v.sum(), x)[0]
    torch.testing.assert_close(grad, grad_ref, rtol=1e-10, atol=1e-12)
