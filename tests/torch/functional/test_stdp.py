"""STDP: the exponential learning window, weight dependences, bounds, conv2d = linear."""

import math

import numpy as np
import pytest
import torch

from norse.torch.functional.stdp import (
    STDP_ALGORITHMS,
    STDPParameters,
    STDPState,
    stdp_step_conv2d,
    stdp_step_linear,
)


def pair_protocol(delays_ms, p, dt):
    """One synapse per delay: pre neuron i spikes once at t0, post neuron i at t0 + delay.

    Returns the change of the diagonal weights w[i, i] (each only sees its own pair).
    """
    delays = np.asarray(delays_ms)
    n = len(delays)
    t0 = int(round(abs(delays).max() / (dt * 1e3))) + 2
    steps = 2 * t0 + 2
    z_pre = torch.zeros(steps, 1, n, dtype=torch.float64)
    z_post = torch.zeros(steps, 1, n, dtype=torch.float64)
    for i, delay in enumerate(delays):
        z_pre[t0, 0, i] = 1
        z_post[t0 + int(round(delay / (dt * 1e3))), 0, i] = 1
    w0 = torch.full((n, n), 0.5, dtype=torch.float64)
    w = w0
    state = STDPState(
        torch.zeros(1, n, dtype=torch.float64), torch.zeros(1, n, dtype=torch.float64)
    )
    for t in range(steps):
        w, state = stdp_step_linear(z_pre[t], z_post[t], w, state, p, dt)
    return torch.diagonal(w - w0).numpy()


def test_pair_window_is_exact_discrete_exponential_with_its_own_time_constants():
    dt = 1e-3
    p = STDPParameters(
        tau_pre_inv=1 / 20e-3,
        tau_post_inv=1 / 40e-3,
        a_pre=torch.tensor(1.5),
        a_post=torch.tensor(0.5),
        eta_plus=0.02,
        eta_minus=0.03,
        hardbound=False,
    )
    delays = np.arange(-30, 31, 5)
    dw = pair_protocol(delays, p, dt)
    d_pre, d_post = dt / 20e-3, dt / 40e-3
    for delay, change in zip(delays, dw):
        n = abs(delay)
        ltp = 0.02 * 1.5 * d_pre * (1 - d_pre) ** n
        ltd = 0.03 * 0.5 * d_post * (1 - d_post) ** n
        expected = ltp if delay > 0 else -ltd if delay < 0 else ltp - ltd
        assert change == pytest.approx(expected, rel=1e-9)


def test_pair_window_recovers_the_exponential_time_constants_and_signs():
    # Small dt: the Euler window converges to A exp(-|dt| / tau).
    dt = 1e-4
    tau_pre, tau_post = 17e-3, 34e-3
    p = STDPParameters(
        tau_pre_inv=1 / tau_pre,
        tau_post_inv=1 / tau_post,
        eta_plus=0.01,
        eta_minus=0.01,
        hardbound=False,
    )
    delays = np.array([-40, -30, -20, -10, -5, 5, 10, 20, 30, 40])
    dw = pair_protocol(delays, p, dt)
    assert np.all(dw[delays > 0] > 0)  # pre before post: potentiation
    assert np.all(dw[delays < 0] < 0)  # post before pre: depression
    slope_ltp, log_a_ltp = np.polyfit(
        delays[delays > 0] * 1e-3, np.log(dw[delays > 0]), 1
    )
    slope_ltd, log_a_ltd = np.polyfit(
        -delays[delays < 0] * 1e-3, np.log(-dw[delays < 0]), 1
    )
    assert -1 / slope_ltp == pytest.approx(tau_pre, rel=5e-3)
    assert -1 / slope_ltd == pytest.approx(tau_post, rel=5e-3)
    # amplitude: eta * a * dt / tau
    assert math.exp(log_a_ltp) == pytest.approx(0.01 * dt / tau_pre, rel=5e-3)
    assert math.exp(log_a_ltd) == pytest.approx(0.01 * dt / tau_post, rel=5e-3)


def _one_pairing(w, p):
    """Weight after a presynaptic spike followed by a postsynaptic one 1 step later
    (potentiation only) and the same for the reverse order (depression only)."""
    z1, z0 = torch.ones(1, 1), torch.zeros(1, 1)
    state = STDPState(torch.zeros(1, 1), torch.zeros(1, 1))
    w_ltp, s = stdp_step_linear(z1, z0, w, state, p)
    w_ltp, _ = stdp_step_linear(z0, z1, w_ltp, s, p)
    state = STDPState(torch.zeros(1, 1), torch.zeros(1, 1))
    w_ltd, s = stdp_step_linear(z0, z1, w, state, p)
    w_ltd, _ = stdp_step_linear(z1, z0, w_ltd, s, p)
    trace = 0.02 * (1 - 0.02)  # dt * tau_inv = 0.02 (defaults), one step of decay
    return w_ltp, w_ltd, trace


@pytest.mark.parametrize("algorithm", STDP_ALGORITHMS)
def test_weight_dependences(algorithm):
    mu = 0.5 if algorithm == "multiplicative_pow" else 0.0
    p = STDPParameters(
        eta_plus=0.4,
        eta_minus=0.2,
        w_min=-1.0,
        w_max=2.0,
        stdp_algorithm=algorithm,
        mu=mu,
        hardbound=False,
    )
    for w_value in (-1.5, -1.0, -0.2, 0.5, 1.9, 2.0, 2.5):
        w = torch.full((1, 1), w_value)
        w_ltp, w_ltd, trace = _one_pairing(w, p)
        plus = {
            "additive": 0.4,
            "additive_step": 0.4 * (w_value < 2.0),
            "multiplicative_pow": 0.4 * max(2.0 - w_value, 0) ** 0.5,
            "multiplicative_relu": 0.4 * max(2.0 - w_value, 0.0),
        }[algorithm]
        minus = {
            "additive": 0.2,
            "additive_step": 0.2 * (w_value > -1.0),
            "multiplicative_pow": 0.2 * max(w_value + 1.0, 0) ** 0.5,
            "multiplicative_relu": 0.2 * max(w_value + 1.0, 0.0),
        }[algorithm]
        assert w_ltp.item() == pytest.approx(w_value + plus * trace, abs=1e-6)
        assert w_ltd.item() == pytest.approx(w_value - minus * trace, abs=1e-6)
    assert p.mu.item() == {"multiplicative_pow": 0.5, "multiplicative_relu": 1.0}.get(
        algorithm, 0.0
    )


@pytest.mark.parametrize("algorithm", STDP_ALGORITHMS)
def test_hard_bounds_clip_and_can_be_disabled(algorithm):
    # Huge learning rates drive the weights past both bounds in one pairing.
    kwargs = dict(
        eta_plus=1e3, eta_minus=1e3, w_min=0.0, w_max=1.0, stdp_algorithm=algorithm
    )
    if algorithm == "multiplicative_pow":
        kwargs["mu"] = 0.5
    w = torch.full((1, 1), 0.5)
    w_ltp, w_ltd, _ = _one_pairing(w, STDPParameters(hardbound=True, **kwargs))
    assert w_ltp.item() == 1.0 and w_ltd.item() == 0.0
    w_ltp, w_ltd, _ = _one_pairing(w, STDPParameters(hardbound=False, **kwargs))
    assert w_ltp.item() > 1.0 and w_ltd.item() < 0.0


def test_multiplicative_rule_approaches_the_bound_softly():
    p = STDPParameters(
        eta_plus=5.0, stdp_algorithm="multiplicative_relu", hardbound=False
    )
    w = torch.full((1, 1), 0.1, dtype=torch.float64)
    values = []
    for _ in range(300):
        w = _one_pairing(w, p)[0]
        values.append(w.item())
    # w_max - w shrinks by (1 - eta * trace) per pairing: never reaches or passes 1
    assert np.all(np.diff(values) > 0) and max(values) < 1.0
    assert values[-1] == pytest.approx(1.0, abs=1e-3)


def _unfold(x, kernel, p):
    return torch.nn.functional.unfold(
        x, kernel, dilation=p.dilation, padding=p.padding, stride=p.stride
    )


@pytest.mark.parametrize("algorithm", STDP_ALGORITHMS)
@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2)])
def test_conv2d_equals_linear_rule_on_the_unfolded_problem(
    algorithm, stride, padding, dilation
):
    torch.manual_seed(0)
    p = STDPParameters(
        eta_plus=0.05,
        eta_minus=0.04,
        stdp_algorithm=algorithm,
        mu=0.7,
        stride=stride,
        padding=padding,
        dilation=dilation,
        convolutional=True,
    )
    batch, c_in, c_out, size, k = 2, 3, 4, 8, 3
    w_conv = torch.rand(c_out, c_in, k, k, dtype=torch.float64) * 0.8 + 0.1
    out_size = torch.nn.functional.conv2d(
        torch.zeros(1, c_in, size, size, dtype=torch.float64),
        w_conv,
        stride=stride,
        padding=padding,
        dilation=dilation,
    ).shape[-1]
    steps = 6
    z_pre = (torch.rand(steps, batch, c_in, size, size) < 0.3).double()
    z_post = (torch.rand(steps, batch, c_out, out_size, out_size) < 0.3).double()
    s_conv = STDPState(torch.zeros_like(z_pre[0]), torch.zeros_like(z_post[0]))

    def as_rows(x):  # (batch, features, positions) -> (batch * positions, features)
        return x.transpose(1, 2).reshape(-1, x.shape[1])

    w_lin = w_conv.reshape(c_out, -1)
    s_lin = STDPState(
        as_rows(_unfold(s_conv.t_pre, (k, k), p)),
        as_rows(s_conv.t_post.reshape(batch, c_out, -1)),
    )
    for t in range(steps):
        w_conv, s_conv = stdp_step_conv2d(z_pre[t], z_post[t], w_conv, s_conv, p)
        w_lin, s_lin = stdp_step_linear(
            as_rows(_unfold(z_pre[t], (k, k), p)),
            as_rows(z_post[t].reshape(batch, c_out, -1)),
            w_lin,
            s_lin,
            p,
        )
        torch.testing.assert_close(w_conv.reshape(c_out, -1), w_lin)
        torch.testing.assert_close(
            as_rows(_unfold(s_conv.t_pre, (k, k), p)), s_lin.t_pre
        )
    assert not torch.allclose(w_conv, w_conv.new_full(w_conv.shape, 0.5))


def test_norse_stepper_scenario_linear():
    # Norse 1.1's own check: pre spikes, then post, then pre.
    for algorithm, mu in [
        ("additive", 0.0),
        ("additive_step", 0.0),
        ("multiplicative_pow", 0.75),
        ("multiplicative_relu", 1.0),
    ]:
        p = STDPParameters(eta_minus=0.1, eta_plus=0.3, stdp_algorithm=algorithm, mu=mu)
        w = 0.5 * torch.ones(3, 2)
        z_pre = torch.tensor([[[1.0, 1.0]], [[0.0, 0.0]], [[1.0, 1.0]]])
        z_post = torch.tensor([[[0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0]], [[0.0, 0.0, 0.0]]])
        state = STDPState(torch.zeros(1, 2), torch.zeros(1, 3))
        t_pre = t_post = 0.0
        for t in range(3):
            w0 = w
            w, state = stdp_step_linear(z_pre[t], z_post[t], w, state, p)
            t_pre += 0.001 * 20 * (-t_pre + z_pre[t][0][0])
            t_post += 0.001 * 20 * (-t_post + z_post[t][0][0])
            if t == 1:
                expected = 0.3 * t_pre * torch.pow(1.0 - w0, mu)
                torch.testing.assert_close(w - w0, expected)
            if t == 2:
                expected = -0.1 * t_post * torch.pow(w0, mu)
                torch.testing.assert_close(w - w0, expected)
        assert state.t_pre.shape == (1, 2) and state.t_post.shape == (1, 3)


def test_step_returns_new_state_and_decay_method_mutates():
    state = STDPState(torch.zeros(1, 2), torch.zeros(1, 3))
    w, new = stdp_step_linear(
        torch.ones(1, 2), torch.ones(1, 3), torch.rand(3, 2), state
    )
    assert torch.all(state.t_pre == 0) and torch.all(new.t_pre > 0)
    t_pre, t_post = new  # unpacks like a tuple
    state.decay(torch.ones(1, 2), torch.ones(1, 3), 20.0, 20.0, 1.0, 1.0)
    torch.testing.assert_close(state.t_pre, t_pre)
    torch.testing.assert_close(state.t_post, t_post)


def test_parameters_are_picklable_and_copyable():
    import copy
    import pickle

    p = STDPParameters(stdp_algorithm="multiplicative_pow", mu=0.3)
    q = pickle.loads(pickle.dumps(p))
    w = torch.rand(3, 3)
    torch.testing.assert_close(q.A_plus(w), p.A_plus(w))
    assert copy.deepcopy(p).stdp_algorithm == "multiplicative_pow"
    assert "multiplicative_pow" in repr(p)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="stdp_algorithm"):
        STDPParameters(stdp_algorithm="hebbian")
    with pytest.raises(ValueError, match="w_min"):
        STDPParameters(w_min=1.0, w_max=0.5)
    with pytest.raises(ValueError, match="eta_plus"):
        STDPParameters(eta_plus=-0.1)
    with pytest.raises(ValueError, match="tau_pre_inv"):
        STDPParameters(tau_pre_inv=0.0)
    with pytest.raises(ValueError, match="mu"):
        STDPParameters(stdp_algorithm="multiplicative_pow", mu=-1.0)
    state = STDPState(torch.zeros(1, 2), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="w must have shape"):
        stdp_step_linear(torch.ones(1, 2), torch.ones(1, 3), torch.rand(2, 3), state)
    with pytest.raises(ValueError, match="t_post"):
        stdp_step_linear(
            torch.ones(1, 2),
            torch.ones(1, 3),
            torch.rand(3, 2),
            STDPState(torch.zeros(1, 2), torch.zeros(2, 3)),
        )
    with pytest.raises(ValueError, match="batch"):
        stdp_step_linear(torch.ones(2), torch.ones(3), torch.rand(3, 2), state)
    conv_state = STDPState(torch.zeros(1, 1, 5, 5), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="positions"):
        stdp_step_conv2d(
            torch.ones(1, 1, 5, 5),
            torch.ones(1, 2, 4, 4),
            torch.rand(2, 1, 3, 3),
            conv_state,
        )
    with pytest.raises(ValueError, match="channels"):
        stdp_step_conv2d(
            torch.ones(1, 1, 5, 5),
            torch.ones(1, 2, 3, 3),
            torch.rand(3, 1, 3, 3),
            STDPState(torch.zeros(1, 1, 5, 5), torch.zeros(1, 2, 3, 3)),
        )
