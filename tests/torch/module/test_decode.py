import pytest
import torch

from norse.torch.module.decode import MaxDecoder, SumDecoder


def test_sum_decoder():
    spikes = torch.zeros(8, 2, 3)
    spikes[::2, 1, 0] = 1.0
    counts = SumDecoder()(spikes)
    assert counts.shape == (2, 3) and counts[1, 0] == 4 and counts.sum() == 4
    assert torch.equal(SumDecoder(dim=1)(spikes), spikes.sum(1))


def test_max_decoder_is_the_max_over_time_readout():
    voltages = torch.randn(12, 4, 10, generator=torch.Generator().manual_seed(0))
    peak = MaxDecoder()(voltages)
    assert torch.equal(peak, torch.max(voltages, 0)[0])
    assert torch.equal(MaxDecoder(dim=-1)(voltages), voltages.amax(-1))


def test_decoders_in_a_sequential_with_gradients():
    x = torch.randn(5, 3, requires_grad=True)
    model = torch.nn.Sequential(torch.nn.Identity(), MaxDecoder())
    model(x).sum().backward()
    assert torch.equal(x.grad.sum(0), torch.ones(3))


@pytest.mark.parametrize("decoder", [SumDecoder, MaxDecoder])
def test_decoder_arguments(decoder):
    assert decoder().dim == 0
    assert "dim=2" in repr(decoder(dim=2))
    with pytest.raises(TypeError, match="dim"):
        decoder(dim=0.5)
    with pytest.raises(ValueError, match="dimension 3"):
        decoder(dim=3)(torch.ones(2, 2))
