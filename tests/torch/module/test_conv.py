"""LConv2d: a 2d convolution per time step, stored as Norse 1.1's Conv3d."""

import pytest
import torch
import torch.nn.functional as F

from norse.torch.module.conv import LConv2d
from norse.torch.module.lift import Lift


def _conv3d_reference(conv, x):
    """Norse 1.1's formulation: a 3d convolution with kernel depth 1 along time."""
    return F.conv3d(
        x.permute(1, 2, 3, 4, 0),
        conv.weight,
        None,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
    ).permute(4, 0, 1, 2, 3)


def test_shape_and_parameters_as_norse():
    m = LConv2d(16, 33, (3, 5))
    assert m(torch.randn(6, 2, 16, 10, 50)).shape == (6, 2, 33, 8, 46)
    assert m.weight.shape == (33, 16, 3, 5, 1) and m.bias is None
    assert set(m.state_dict()) == {"weight"}
    assert isinstance(m, torch.nn.Conv3d)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3),
        dict(kernel_size=(3, 2), stride=2, padding=1),
        dict(kernel_size=3, stride=(1, 2), padding=(2, 0), dilation=(1, 2)),
        dict(kernel_size=3, groups=2),
    ],
)
def test_equals_conv3d_formulation(kwargs):
    torch.manual_seed(0)
    m = LConv2d(4, 6, dtype=torch.float64, **kwargs)
    x = torch.randn(5, 3, 4, 9, 8, dtype=torch.float64)
    torch.testing.assert_close(m(x), _conv3d_reference(m, x), rtol=1e-12, atol=1e-12)


def test_equals_lifted_conv2d_and_same_padding():
    torch.manual_seed(0)
    m = LConv2d(2, 3, 3, padding="same", dtype=torch.float64)
    conv = torch.nn.Conv2d(2, 3, 3, padding="same", bias=False, dtype=torch.float64)
    conv.weight.data.copy_(m.weight.squeeze(-1))
    x = torch.randn(4, 2, 2, 5, 5, dtype=torch.float64)
    out = m(x)
    assert out.shape == (4, 2, 3, 5, 5)
    torch.testing.assert_close(out, Lift(conv)(x))


def test_gradients():
    torch.manual_seed(0)
    m = LConv2d(2, 2, 3, dtype=torch.float64)
    x = torch.randn(2, 2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(m, (x,))
    m(x).sum().backward()
    assert m.weight.grad.shape == (2, 2, 3, 3, 1)


def test_errors():
    m = LConv2d(2, 3, 3)
    with pytest.raises(ValueError, match=r"\(T, batch, in_channels, H, W\)"):
        m(torch.zeros(2, 2, 5, 5))
    with pytest.raises(ValueError, match="in_channels=2"):
        m(torch.zeros(2, 1, 3, 5, 5))
