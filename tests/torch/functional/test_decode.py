import pytest
import torch

from norse.torch.functional.decode import max_decode, sum_decode


def test_sum_decode_counts_spikes_over_time():
    spikes = torch.zeros(10, 2, 3)
    spikes[::2, 0, 1] = 1.0
    spikes[:, 1, 2] = 1.0
    counts = sum_decode(spikes)
    expected = torch.zeros(2, 3)
    expected[0, 1], expected[1, 2] = 5.0, 10.0
    assert torch.equal(counts, expected)
    assert torch.equal(sum_decode(torch.ones(10, 3)), torch.full((3,), 10.0))


def test_sum_decode_other_dimension():
    x = torch.arange(6.0).reshape(2, 3)
    assert torch.equal(sum_decode(x, 1), torch.tensor([3.0, 12.0]))
    assert torch.equal(sum_decode(x, -1), torch.tensor([3.0, 12.0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_max_decode_returns_values_over_time(dtype):
    voltages = torch.tensor(
        [
            [[0.1, -2.0], [0.5, 0.0]],
            [[0.7, -3.0], [0.2, -1.0]],
            [[0.3, -1.5], [0.4, 0.2]],
        ],
        dtype=dtype,
    )
    peak = max_decode(voltages)
    assert peak.dtype == dtype
    assert torch.equal(peak, torch.tensor([[0.7, -1.5], [0.5, 0.2]], dtype=dtype))
    # the MNIST readout of Norse: torch.max(voltages, 0) values
    assert torch.equal(peak, torch.max(voltages, 0)[0])
    assert torch.equal(max_decode(voltages, 2), voltages.amax(2))


def test_max_decode_gradient_goes_to_the_peak_step():
    x = torch.tensor([[0.0, 3.0], [2.0, 1.0], [1.0, -1.0]], requires_grad=True)
    max_decode(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]))


@pytest.mark.parametrize("decode", [sum_decode, max_decode])
def test_decode_bad_arguments(decode):
    with pytest.raises(ValueError, match="dimension 2"):
        decode(torch.ones(3, 4), 2)
    with pytest.raises(ValueError, match="dimension"):
        decode(torch.tensor(1.0))
    with pytest.raises(TypeError, match="torch.Tensor"):
        decode([1.0, 2.0])
    with pytest.raises(TypeError, match="dimension"):
        decode(torch.ones(3), 0.0)


def test_max_decode_empty_time():
    with pytest.raises(ValueError, match="empty"):
        max_decode(torch.ones(0, 3))
