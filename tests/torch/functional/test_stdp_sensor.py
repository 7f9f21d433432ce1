import pytest
import torch

from norse.torch.functional.stdp_sensor import (
    STDPSensorParameters,
    STDPSensorState,
    stdp_sensor_step,
)


def test_defaults():
    p = STDPSensorParameters()
    assert float(p.eta_p) == 1.0 and float(p.eta_m) == 1.0
    assert float(p.tau_c_inv) == pytest.approx(10.0)
    assert float(p.tau_ac_inv) == pytest.approx(10.0)


def test_traces_jump_then_decay_exponentially_with_their_own_time_constants():
    p = STDPSensorParameters(
        eta_p=torch.tensor(0.5),
        eta_m=torch.tensor(2.0),
        tau_c_inv=torch.tensor(1 / 20e-3, dtype=torch.float64),
        tau_ac_inv=torch.tensor(1 / 40e-3, dtype=torch.float64),
    )
    s = STDPSensorState(
        torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    )
    s = stdp_sensor_step(torch.ones(1), torch.ones(1), s, p)
    assert s.a_pre.item() == 0.5 and s.a_post.item() == 2.0
    dt, n = 1e-3, 30
    for _ in range(n):
        s = stdp_sensor_step(torch.zeros(1), torch.zeros(1), s, p, dt)
    assert s.a_pre.item() == pytest.approx(0.5 * (1 - dt / 20e-3) ** n, rel=1e-12)
    assert s.a_post.item() == pytest.approx(2.0 * (1 - dt / 40e-3) ** n, rel=1e-12)


def test_converges_to_continuous_exponential_at_small_dt():
    p = STDPSensorParameters(tau_c_inv=torch.tensor(1 / 25e-3))
    s = STDPSensorState(
        torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    )
    dt, t_end = 1e-5, 50e-3
    for _ in range(round(t_end / dt)):
        s = stdp_sensor_step(torch.zeros(1), torch.zeros(1), s, p, dt)
    assert s.a_pre.item() == pytest.approx(
        torch.exp(torch.tensor(-2.0)).item(), rel=1e-3
    )


def test_shapes_broadcast_as_in_norse():
    s = STDPSensorState(a_post=torch.zeros(10, 5), a_pre=torch.zeros(5, 10))
    s = stdp_sensor_step(torch.ones(10), torch.ones(5), s)
    assert s.a_post.shape == (10, 5) and s.a_pre.shape == (5, 10)
    assert torch.all(s.a_pre == 1) and torch.all(s.a_post == 1)
