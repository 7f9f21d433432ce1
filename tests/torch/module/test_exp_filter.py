import math

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

import norse.torch as norse
from norse.torch.module.exp_filter import ExpFilter


def test_exported():
    assert norse.ExpFilter is ExpFilter


def test_impulse_response_is_exponential_in_time():
    layer = ExpFilter(
        1, 1, tau_filter_inv=20.0, input_weights=torch.ones(1, 1), bias=False
    )
    x = torch.zeros(50, 1, 1)
    x[0] = 1.0
    y = layer(x)
    alpha = math.exp(-0.001 * 20.0)
    assert layer.parameter == pytest.approx(alpha)
    expected = torch.tensor([alpha**k for k in range(50)]).reshape(50, 1, 1)
    torch.testing.assert_close(y, expected)


def test_equals_a_first_order_iir_filter_after_the_linear_layer():
    torch.manual_seed(0)
    layer = ExpFilter(3, 2, tau_filter_inv=100.0, dt=0.002).double()
    x = torch.randn(40, 4, 3, dtype=torch.float64)
    y = layer(x)
    projected = layer.linear(x).detach().numpy()
    alpha = math.exp(-0.002 * 100.0)
    expected = lfilter([1.0], [1.0, -alpha], projected, axis=0)
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-12)
    assert y.shape == (40, 4, 2) and y.dtype == torch.float64


def test_zero_inverse_time_constant_sums_and_bias_accumulates():
    layer = ExpFilter(1, 1, tau_filter_inv=0, input_weights=torch.ones(1, 1), bias=True)
    bias = layer.linear.bias.item()
    y = layer(torch.tensor([1.0, 0, 0, 0]).reshape(4, 1, 1))
    expected = torch.tensor([1 + bias * (k + 1) for k in range(4)]).reshape(4, 1, 1)
    torch.testing.assert_close(y, expected)


def test_backward_reaches_weights_and_input():
    layer = ExpFilter(3, 2)
    x = torch.randn(10, 2, 3, requires_grad=True)
    layer(x).sum().backward()
    assert layer.linear.weight.grad.abs().sum() > 0 and x.grad.abs().sum() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_weights"):
        ExpFilter(3, 2, input_weights=torch.ones(3, 2))
    with pytest.raises(ValueError, match="tau_filter_inv"):
        ExpFilter(3, 2, tau_filter_inv=-1.0)
    with pytest.raises(ValueError, match="input_size"):
        ExpFilter(0, 2)
    with pytest.raises(ValueError, match="input_size=3"):
        ExpFilter(3, 2)(torch.ones(5, 1, 4))
    with pytest.raises(TypeError, match="floating-point"):
        ExpFilter(3, 2)(torch.ones(5, 1, 3, dtype=torch.long))
