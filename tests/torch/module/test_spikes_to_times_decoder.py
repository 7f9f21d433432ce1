import pytest
import torch

from norse.torch.module.spikes_to_times_decoder import SpikesToTimesDecoder

inf = float("inf")


def test_defaults_return_first_spike_times():
    decoder = SpikesToTimesDecoder()
    assert int(decoder.spike_count) == 1 and decoder.convert_to_time
    assert decoder.dt == 1e-3
    spikes = torch.zeros(10, 2, 3)
    spikes[2] = 1.0
    spikes[7, 0, 0] = 1.0
    assert torch.allclose(decoder(spikes), torch.full((1, 2, 3), 2e-3))


def test_indices_and_times():
    spikes = torch.ones(10, 1, 1)
    indices = SpikesToTimesDecoder(10, convert_indices_to_times=False)(spikes)
    times = SpikesToTimesDecoder(10, dt=1e-4)(spikes)
    assert torch.equal(indices, torch.arange(10.0)[:, None, None])
    assert torch.allclose(times, 1e-4 * torch.arange(10.0)[:, None, None])
    silent = SpikesToTimesDecoder(3)(torch.zeros(5, 2))
    assert torch.equal(silent, torch.full((3, 2), inf))


def test_backward_scales_with_dt():
    spikes = torch.zeros(6, 2)
    spikes[1] = 1.0
    spikes.requires_grad_(True)
    SpikesToTimesDecoder(dt=0.5)(spikes).sum().backward()
    expected = torch.zeros(6, 2)
    expected[1] = -0.5
    assert torch.equal(spikes.grad, expected)


def test_backward_for_several_spike_counts():
    for spike_count in range(5):
        spikes = torch.ones(5, 3, 2, requires_grad=True)
        decoder = SpikesToTimesDecoder(spike_count, convert_indices_to_times=False)
        times = decoder(spikes)
        scale = torch.arange(float(times.numel())).reshape(times.shape)
        (times * scale).sum().backward()
        expected = torch.zeros(5, 3, 2)
        expected[:spike_count] = -scale
        assert torch.equal(spikes.grad, expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="spike_count"):
        SpikesToTimesDecoder(-1)
    with pytest.raises(ValueError, match="dt"):
        SpikesToTimesDecoder(dt=0.0)
    with pytest.raises(TypeError, match="dt"):
        SpikesToTimesDecoder(dt="1ms")
