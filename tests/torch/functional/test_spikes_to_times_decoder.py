import pytest
import torch

from norse.torch.functional.spikes_to_times_decoder import ToSpikeTimes

inf = float("inf")


def test_no_spikes_read_inf():
    assert torch.equal(
        ToSpikeTimes.apply(torch.zeros(10, 1, 1), 10), torch.full((10, 1, 1), inf)
    )


def test_all_spikes_give_all_indices():
    assert torch.equal(
        ToSpikeTimes.apply(torch.ones(10, 1, 1), torch.as_tensor(10)),
        torch.arange(10.0)[:, None, None],
    )


def test_first_spikes_in_ascending_order_per_element():
    spikes = torch.zeros(6, 3)
    spikes[[1, 4], 0] = 1.0
    spikes[[0, 2, 3, 5], 1] = 1.0
    times = ToSpikeTimes.apply(spikes, 3)
    expected = torch.tensor([[1.0, 0.0, inf], [4.0, 2.0, inf], [inf, 3.0, inf]])
    assert torch.equal(times, expected)


@pytest.mark.parametrize("shape", [(7,), (7, 4), (7, 2, 3, 2)])
def test_any_shape_after_time(shape):
    spikes = (
        torch.rand(shape, generator=torch.Generator().manual_seed(0)) < 0.4
    ).float()
    times = ToSpikeTimes.apply(spikes, 2)
    assert times.shape == (2, *shape[1:])
    flat_spikes = spikes.reshape(7, -1)
    flat_times = times.reshape(2, -1)
    for column in range(flat_spikes.shape[1]):
        fired = torch.nonzero(flat_spikes[:, column]).flatten().tolist()[:2]
        fired += [inf] * (2 - len(fired))
        assert flat_times[:, column].tolist() == fired


def test_spike_count_is_capped_at_time_steps_and_may_be_zero():
    spikes = torch.ones(4, 2)
    assert ToSpikeTimes.apply(spikes, 9).shape == (4, 2)
    assert ToSpikeTimes.apply(spikes, 0).shape == (0, 2)


def test_dtypes():
    spikes = torch.zeros(3, 2, dtype=torch.float64)
    spikes[1] = 1.0
    assert ToSpikeTimes.apply(spikes, 1).dtype == torch.float64
    integer = ToSpikeTimes.apply(spikes.long(), 1)
    assert integer.dtype == torch.get_default_dtype()
    assert torch.equal(integer, torch.ones(1, 2))


def test_backward_minus_one_at_returned_spikes():
    spikes = torch.zeros(10, 2, 3)
    spikes[1] = 1.0
    spikes[6, 0, 0] = 1.0  # a second spike, not returned for spike_count = 1
    spikes.requires_grad_(True)
    ToSpikeTimes.apply(spikes, 1).sum().backward()
    expected = torch.zeros(10, 2, 3)
    expected[1] = -1.0
    assert torch.equal(spikes.grad, expected)


def test_backward_weights_each_returned_spike_by_its_output_gradient():
    spikes = torch.zeros(5, 2)
    spikes[[0, 3], 0] = 1.0
    spikes[2, 1] = 1.0
    spikes.requires_grad_(True)
    times = ToSpikeTimes.apply(spikes, 2)  # [[0, 2], [3, inf]]
    weights = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    (times.nan_to_num(posinf=0.0) * weights).sum().backward()
    expected = torch.zeros(5, 2)
    expected[0, 0], expected[3, 0], expected[2, 1] = -1.0, -3.0, -2.0
    assert torch.equal(spikes.grad, expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="spike_count"):
        ToSpikeTimes.apply(torch.ones(3, 1), -1)
    with pytest.raises(TypeError, match="spike_count"):
        ToSpikeTimes.apply(torch.ones(3, 1), 1.5)
    with pytest.raises(ValueError, match="time dimension"):
        ToSpikeTimes.apply(torch.tensor(1.0), 1)
