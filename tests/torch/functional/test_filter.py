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


def test_integer_values_with_a_number_factor_give_a_float_result():
    """As in Norse 1.1 (its step takes a float factor): integer tensors give floats."""
    result = exp_filter_step(torch.tensor([3]), torch.tensor([1]), 2)
    assert result.dtype == torch.float32 and result.tolist() == [7.0]
