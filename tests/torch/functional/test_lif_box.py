import math

import pytest
import torch

from norse.torch.functional.lif_box import (
    LIFBoxFeedForwardState,
    LIFBoxParameters,
    LIFBoxState,
    lif_box_feed_forward_step,
    lif_box_step,
)
from norse.torch.functional.reset import reset_subtract, reset_value


def _run(p, current, steps):
    s = LIFBoxFeedForwardState(torch.zeros(1))
    out = []
    for _ in range(steps):
        z, s = lif_box_feed_forward_step(torch.tensor([current]), s, p)
        out.append((z.item(), s.v.item()))
    return out


def test_spike_time_matches_closed_form():
    # v_n = I (1 - 0.9^n) first exceeds 1 at n = ceil(log(1 - 1/I) / log 0.9)
    current = 1.5
    n_expected = math.ceil(math.log(1 - 1 / current) / math.log(0.9))
    trace = _run(LIFBoxParameters(), current, n_expected + 1)
    spikes = [z for z, _ in trace]
    assert spikes.index(1.0) == n_expected - 1
    assert trace[n_expected - 1][1] == 0.0  # value reset


def test_subtract_reset_keeps_the_overshoot():
    p = LIFBoxParameters(reset_method=reset_subtract)
    s = LIFBoxFeedForwardState(torch.tensor([0.95]))
    z, s = lif_box_feed_forward_step(torch.tensor([2.0]), s, p)
    # v_dec = 0.95 + 0.1 * (2 - 0.95) = 1.055 -> 0.055
    assert z.item() == 1.0
    assert s.v.item() == pytest.approx(0.055, abs=1e-6)
    assert (
        reset_value(
            torch.tensor(1.0), torch.tensor(1.3), torch.tensor(-0.5), torch.tensor(1.0)
        ).item()
        == -0.5
    )


def test_recurrent_step_uses_both_weights():
    state = LIFBoxState(z=torch.tensor([[1.0, 0.0]]), v=torch.zeros(1, 2))
    z, s = lif_box_step(
        torch.tensor([[1.0]]),
        state,
        torch.tensor([[1.0], [2.0]]),
        torch.tensor([[0.0, 0.0], [5.0, 0.0]]),
    )
    torch.testing.assert_close(s.v, torch.tensor([[0.1, 0.7]]))
    assert z.sum() == 0
