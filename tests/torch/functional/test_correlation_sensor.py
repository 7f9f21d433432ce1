import pytest
import torch

from norse.torch.functional.correlation_sensor import (
    CorrelationSensorParameters,
    CorrelationSensorState,
    correlation_based_update,
    correlation_sensor_step,
    post_mask,
    pre_mask,
)


def empty(batch, n_pre, n_post, dtype=torch.float64):
    return CorrelationSensorState(
        *(torch.zeros(batch, n_pre, n_post, dtype=dtype) for _ in range(3))
    )


def test_defaults():
    p = CorrelationSensorParameters()
    assert float(p.eta_p) == 1.0 and float(p.eta_m) == 1.0
    assert float(p.tau_c_inv) == pytest.approx(10.0)
    assert float(p.tau_ac_inv) == pytest.approx(10.0)


def test_masks_spread_spikes_over_the_synapse_array():
    z_pre, z_post = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0, 1.0]])
    array = torch.zeros(1, 2, 3)
    assert pre_mask(array, z_pre).tolist() == [[[1, 1, 1], [0, 0, 0]]]
    assert post_mask(array, z_post).tolist() == [[[0, 1, 1], [0, 1, 1]]]


def test_pre_then_post_pairing_by_hand():
    p = CorrelationSensorParameters(
        eta_p=torch.tensor(0.5),
        eta_m=torch.tensor(2.0),
        tau_c_inv=torch.tensor(50.0, dtype=torch.float64),
        tau_ac_inv=torch.tensor(20.0, dtype=torch.float64),
    )
    dt = 1e-3
    s = empty(1, 2, 1)
    # pre neuron 0 spikes: its correlation trace jumps, the flag stays 0
    s = correlation_sensor_step(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 1), s, p, dt)
    assert s.correlation_trace[0, :, 0].tolist() == [0.5, 0.0]
    assert s.post_pre.sum() == 0
    for _ in range(4):  # waits for a post spike: decays with tau_c
        s = correlation_sensor_step(torch.zeros(1, 2), torch.zeros(1, 1), s, p, dt)
    c = 0.5 * (1 - dt * 50) ** 4
    assert s.correlation_trace[0, 0, 0].item() == pytest.approx(c, rel=1e-12)
    # post spike: the flag flips on every synapse of that post neuron
    s = correlation_sensor_step(torch.zeros(1, 2), torch.ones(1, 1), s, p, dt)
    c *= 1 - dt * 50  # decayed once more before the flag flipped
    assert s.post_pre[0, :, 0].tolist() == [1.0, 1.0]
    assert s.anti_correlation_trace[0, :, 0].tolist() == [2.0, 2.0]
    for _ in range(3):  # now c is frozen, a decays with tau_ac
        s = correlation_sensor_step(torch.zeros(1, 2), torch.zeros(1, 1), s, p, dt)
    assert s.correlation_trace[0, 0, 0].item() == pytest.approx(c, rel=1e-12)
    a = 2.0 * (1 - dt * 20) ** 3
    assert s.anti_correlation_trace[0, 0, 0].item() == pytest.approx(a, rel=1e-12)
    # a presynaptic spike clears the flag of its synapses only
    s = correlation_sensor_step(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 1), s, p, dt)
    assert s.post_pre[0, :, 0].tolist() == [1.0, 0.0]


def test_any_batch_size_equals_independent_batches():
    torch.manual_seed(0)
    steps, batch, n_pre, n_post = 25, 3, 4, 5
    z_pre = (torch.rand(steps, batch, n_pre) < 0.3).double()
    z_post = (torch.rand(steps, batch, n_post) < 0.3).double()
    s = empty(batch, n_pre, n_post)
    singles = [empty(1, n_pre, n_post) for _ in range(batch)]
    for t in range(steps):
        s = correlation_sensor_step(z_pre[t], z_post[t], s)
        singles = [
            correlation_sensor_step(z_pre[t, b : b + 1], z_post[t, b : b + 1], single)
            for b, single in enumerate(singles)
        ]
    for field in range(3):
        torch.testing.assert_close(s[field], torch.cat([x[field] for x in singles]))


def test_correlation_based_update_every_n_steps_and_clears_traces():
    torch.manual_seed(0)
    s = CorrelationSensorState(
        torch.zeros(1, 3, 2), torch.rand(1, 3, 2), torch.rand(1, 3, 2)
    )
    linear = torch.nn.Linear(2 * 3 * 2, 2 * 3)
    w = torch.zeros(2, 3)
    same = correlation_based_update(3, linear, w, s, 0.1, ts_frequency=5)
    assert same is w and s.correlation_trace.sum() > 0
    traces = torch.cat(
        (s.correlation_trace.flatten(), s.anti_correlation_trace.flatten())
    )
    expected = 0.1 * linear(traces).detach().reshape(2, 3)
    updated = correlation_based_update(10, linear, w, s, 0.1, ts_frequency=5)
    torch.testing.assert_close(updated, expected)
    assert s.correlation_trace.sum() == 0 and s.anti_correlation_trace.sum() == 0
