"""Tsodyks-Markram synapses: depression and facilitation against the steady state."""

import math

import pytest
import torch

from norse.torch.functional.tsodyks_makram import (
    TsodyksMakramParameters,
    TsodyksMakramState,
    stp_step,
)

# Tsodyks & Markram: depression-dominated (Norse's defaults) and facilitation-dominated
DEPRESSING = TsodyksMakramParameters(tau_f_inv=1 / 50e-3, tau_d_inv=1 / 750e-3, U=0.45)
FACILITATING = TsodyksMakramParameters(
    tau_f_inv=1 / 750e-3, tau_d_inv=1 / 50e-3, U=0.15
)


def run(p, z, s, dt):
    """Runs spikes ``z`` (steps, columns); returns the released efficacies and the state."""
    released = []
    for step in z:
        out, s = stp_step(step, s, p, dt)
        released.append(out)
    return torch.stack(released), s


def efficacies(p, rates, n_spikes, dt):
    """Released efficacy at each spike of periodic trains from rest (one list per rate)."""
    intervals = [round(1.0 / (rate * dt)) for rate in rates]
    steps = torch.arange(max(intervals) * n_spikes)[:, None]
    z = (steps % torch.tensor(intervals) == 0).double()
    s = TsodyksMakramState(
        u=torch.zeros(len(rates), dtype=torch.float64),
        x=torch.ones(len(rates), dtype=torch.float64),
    )
    released, _ = run(p, z, s, dt)
    return [
        released[::k, column][:n_spikes].tolist() for column, k in enumerate(intervals)
    ]


def continuous_steady_state(p, rate):
    """(u+, x-) just at a spike of an infinite periodic train, continuous time."""
    interval = 1.0 / rate
    e_f = math.exp(-interval * p.tau_f_inv)
    e_d = math.exp(-interval * p.tau_d_inv)
    u = p.U / (1 - (1 - p.U) * e_f)
    x = (1 - e_d) / (1 - (1 - u) * e_d)
    return u, x


def discrete_steady_state(p, rate, dt):
    """Fixed point (u-, u+, x-) of the Euler map over one interval: the spike step,
    then n - 1 silent steps."""
    n = round(1.0 / (rate * dt))
    f, d = 1 - dt * p.tau_f_inv, 1 - dt * p.tau_d_inv
    # spike step u+ = (f - U) u- + U; silent steps u -> f u, so u- = f^(n-1) u+
    u_plus = p.U / (1 - (f - p.U) * f ** (n - 1))
    u_minus = f ** (n - 1) * u_plus
    # spike step x+ = (d - u+) x- + (1 - d); silent steps 1 - x -> d (1 - x)
    big_d = d ** (n - 1)
    x_minus = (1 - big_d * d) / (1 - big_d * (d - u_plus))
    return u_minus, u_plus, x_minus


RATES = [10.0, 20.0, 50.0]
SETS = pytest.mark.parametrize(
    "p", [DEPRESSING, FACILITATING], ids=["depressing", "facilitating"]
)


@SETS
def test_one_interval_maps_the_discrete_steady_state_onto_itself(p):
    dt = 1e-3
    for rate in RATES:
        u_minus, u_plus, x_minus = discrete_steady_state(p, rate, dt)
        n = round(1.0 / (rate * dt))
        z = torch.zeros(n, 1, dtype=torch.float64)
        z[0] = 1.0
        s0 = TsodyksMakramState(
            u=torch.tensor([u_minus], dtype=torch.float64),
            x=torch.tensor([x_minus], dtype=torch.float64),
        )
        released, s = run(p, z, s0, dt)
        assert released[0].item() == pytest.approx(u_plus * x_minus, rel=1e-12)
        assert s.u.item() == pytest.approx(u_minus, rel=1e-12)
        assert s.x.item() == pytest.approx(x_minus, rel=1e-12)


@SETS
def test_train_from_rest_converges_to_the_steady_state(p):
    dt = 1e-3
    rates = [20.0, 50.0]
    for rate, train in zip(rates, efficacies(p, rates, n_spikes=150, dt=dt)):
        _, u_plus, x_minus = discrete_steady_state(p, rate, dt)
        assert train[-1] == pytest.approx(u_plus * x_minus, rel=1e-6)


@SETS
def test_steady_state_converges_to_the_analytic_continuous_value(p):
    # The discrete fixed point approaches the continuous one at first order in dt ...
    for rate in RATES:
        u_c, x_c = continuous_steady_state(p, rate)
        errors = []
        for dt in (4e-4, 2e-4, 1e-4):
            _, u_plus, x_minus = discrete_steady_state(p, rate, dt)
            errors.append(abs(u_plus * x_minus / (u_c * x_c) - 1))
        assert errors[-1] < 0.01
        assert all(1.8 < a / b < 2.2 for a, b in zip(errors[:-1], errors[1:]))
    # ... and a simulation started at the continuous steady state stays within 1 %.
    dt, rate = 1e-4, 20.0
    u_c, x_c = continuous_steady_state(p, rate)
    e_f = math.exp(-p.tau_f_inv / rate)  # u- = u+ e^(-interval / tau_f)
    n = round(1.0 / (rate * dt))
    z = (torch.arange(3 * n)[:, None] % n == 0).double()
    s0 = TsodyksMakramState(
        u=torch.tensor([u_c * e_f], dtype=torch.float64),
        x=torch.tensor([x_c], dtype=torch.float64),
    )
    released, _ = run(p, z, s0, dt)
    for value in released[::n, 0]:
        assert value.item() == pytest.approx(u_c * x_c, rel=0.01)


def test_depression_regime():
    rates = [5.0, 20.0, 50.0]
    trains = efficacies(DEPRESSING, rates, n_spikes=30, dt=1e-3)
    for train in trains:
        assert train[0] == pytest.approx(DEPRESSING.U)  # first spike: u+ = U, x = 1
        assert train[-1] < train[0]
        assert all(b <= a + 1e-12 for a, b in zip(train[:5], train[1:5]))
    steady = [train[-1] for train in trains]
    assert steady[0] > steady[1] > steady[2]  # stronger depression at higher rates


def test_facilitation_regime():
    trains = efficacies(FACILITATING, [20.0], n_spikes=30, dt=1e-3)
    train = trains[0]
    assert train[0] == pytest.approx(FACILITATING.U)
    assert train[1] > train[0] and train[2] > train[1]  # facilitation
    assert train[-1] > 1.5 * train[0]


def test_norse_example_protocol():
    # Norse 1.1's check: spikes every 100 ms, the current jumps by U at the first one.
    for p, facilitating in ((DEPRESSING, False), (FACILITATING, True)):
        z = torch.zeros(1000)
        z[::100] = 1.0
        z[0:10] = 0.0
        s = TsodyksMakramState(x=1.0, u=0.0)
        i, current = 0.0, []
        for ts in range(1000):
            x, s = stp_step(z[ts], s, p)
            i = i + 0.001 * -p.tau_s_inv * i + x
            current.append(i)
        current = torch.stack(current)
        assert torch.allclose(current[100], torch.as_tensor(p.U))
        later, earlier = current[500:].max(), current[:500].max()
        assert (later > earlier) if facilitating else (later < earlier)


def test_defaults_and_shapes():
    p = TsodyksMakramParameters()
    assert p.tau_f_inv == pytest.approx(20.0) and p.tau_d_inv == pytest.approx(1 / 0.75)
    assert p.tau_s_inv == pytest.approx(50.0) and p.U == 0.45
    s = TsodyksMakramState(u=torch.zeros(3, 4), x=torch.ones(3, 4))
    out, s = stp_step(torch.ones(3, 4), s, p)
    assert out.shape == (3, 4) and s.u.shape == (3, 4)
    torch.testing.assert_close(out, torch.full((3, 4), 0.45))
