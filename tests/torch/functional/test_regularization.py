"""Regularisation accumulators: spike counts and voltage sums."""

import pytest
import torch

from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    lif_feed_forward_step,
)
from norse.torch.functional.regularization import (
    regularize_step,
    spike_accumulator,
    voltage_accumulator,
)


def _step(state=None):
    state = state or LIFFeedForwardState(torch.ones(10), torch.ones(10))
    return lif_feed_forward_step(torch.ones(5, 10), state, LIFParameters())


def test_spike_count():
    z, s = _step()  # every neuron fires: v_dec > 1
    zr, count = regularize_step(z, s)
    assert zr is z and count == 50
    z, s = _step(s)  # all were reset
    _, count = regularize_step(z, s, state=count)
    assert count == 50


def test_voltage_sum():
    z, s = _step()
    zr, total = regularize_step(z, s, accumulator=voltage_accumulator)
    assert zr is z
    torch.testing.assert_close(total, s.v)
    assert total is not s.v  # later in-place changes of the state leave the sum alone
    _, total = regularize_step(z, s, voltage_accumulator, state=torch.ones(5, 10))
    torch.testing.assert_close(total, s.v + 1)


def test_spike_count_is_differentiable_through_the_surrogate():
    x = (torch.ones(3, 4) * 1.5).requires_grad_()
    state = LIFFeedForwardState(torch.ones(3, 4), torch.zeros(3, 4))
    z, s = lif_feed_forward_step(x, state, LIFParameters())
    _, count = regularize_step(z, s)
    count.backward()
    assert x.grad.abs().sum() > 0


def test_errors():
    z, s = _step()
    with pytest.raises(TypeError, match="accumulator must be callable"):
        regularize_step(z, s, accumulator=None)
    with pytest.raises(TypeError, match="voltage tensor `v`"):
        voltage_accumulator(z, (torch.zeros(1),))
    with pytest.raises(TypeError, match="z must be a torch.Tensor"):
        spike_accumulator([1, 0], s)
