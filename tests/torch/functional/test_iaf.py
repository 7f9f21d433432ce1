import torch

from norse.torch.functional.iaf import (
    IAFFeedForwardState,
    IAFParameters,
    IAFState,
    iaf_feed_forward_step,
    iaf_step,
)


def test_perfect_integration_and_reset():
    s = IAFFeedForwardState(torch.zeros(1))
    spikes = []
    for _ in range(8):
        z, s = iaf_feed_forward_step(torch.tensor([0.3]), s, IAFParameters())
        spikes.append(z.item())
    # 0.3, 0.6, 0.9, 1.2 -> spike, reset, again after 4 steps
    assert spikes == [0, 0, 0, 1, 0, 0, 0, 1]


def test_recurrent_iaf():
    s = IAFState(z=torch.tensor([[1.0, 0.0]]), v=torch.zeros(1, 2))
    z, s = iaf_step(
        torch.tensor([[0.5]]),
        s,
        torch.ones(2, 1),
        torch.tensor([[0.0, 0.0], [0.7, 0.0]]),
    )
    assert z.tolist() == [[0.0, 1.0]]
    assert s.v.tolist() == [[0.5, 0.0]]
