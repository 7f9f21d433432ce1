import pytest
import torch

from norse.torch.functional.filter import exp_filter_step


def test_exp_filter_step():
    actual = exp_filter_step(torch.tensor([1.0]), torch.tensor([0.0]), 0.1)
    torch.testing.assert_close(actual, torch.tensor([0.1]))
    actual = exp_filter_step(torch.tensor([1.0]), torch.tensor([2.0]), 1)
    torch.testing.assert_close(actual, torch.tensor([3.0]))


def test_repeated_steps_give_the_geometric_impulse_response():
    alpha, value, values = 0.9, torch.tensor(1.0, dtype=torch.float64), []
    for _ in range(5):
        value = exp_filter_step(value, torch.tensor(0.0, dtype=torch.float64), alpha)
        values.append(value.item())
    assert values == pytest.approx([alpha ** (k + 1) for k in range(5)], rel=1e-15)
