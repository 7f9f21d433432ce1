"""Convolutions over sequences of images."""

from typing import Union

import torch
import torch.nn.functional as F
from torch.nn.common_types import _size_2_t
from torch.nn.modules.utils import _pair

from norse.torch.functional.lift import apply_folded


class LConv2d(torch.nn.Conv3d):
    r"""A 2d convolution applied to every time step of a sequence (no bias).

    Maps :math:`(T, N, C_{\text{in}}, H, W)` to
    :math:`(T, N, C_{\text{out}}, H_{\text{out}}, W_{\text{out}})`: the same 2d
    convolution (see ``torch.nn.Conv2d`` for the arguments and output sizes) at every
    time step. As in Norse 1.1 the module is a ``torch.nn.Conv3d`` whose kernel has
    depth 1 along time, so its ``weight`` has shape
    ``(out_channels, in_channels / groups, kH, kW, 1)`` and checkpoints carry over.
    It runs as one 2d convolution with time folded into the batch, which gives the same
    result as the 3d convolution without the permutations.

    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are an ``int`` (height and
    width alike) or a pair ``(height, width)``; ``padding`` may also be ``"valid"`` or
    ``"same"``.

    Parameters:
        in_channels (int): channels of the input images
        out_channels (int): channels produced by the convolution
        kernel_size (int or tuple): size of the kernel
        stride (int or tuple): stride, default 1
        padding (int, tuple or str): zero padding of height and width, default 0
        dilation (int or tuple): spacing of kernel elements, default 1
        groups (int): blocked connections from input to output channels, default 1

    Example:
        >>> conv = LConv2d(16, 33, (3, 5))
        >>> conv(torch.randn(10, 4, 16, 10, 50)).shape
        torch.Size([10, 4, 33, 8, 46])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _size_2_t,
        stride: _size_2_t = 1,
        padding: Union[_size_2_t, str] = 0,
        dilation: _size_2_t = 1,
        groups: int = 1,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_channels,
            out_channels,
            (*_pair(kernel_size), 1),
            (*_pair(stride), 1),
            padding if isinstance(padding, str) else (*_pair(padding), 0),
            (*_pair(dilation), 1),
            groups,
            bias=False,
            padding_mode="zeros",
            device=device,
            dtype=dtype,
        )

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(input_tensor, torch.Tensor) or input_tensor.dim() != 5:
            shape = (
                tuple(input_tensor.shape)
                if isinstance(input_tensor, torch.Tensor)
                else type(input_tensor).__name__
            )
            raise ValueError(
                f"LConv2d expects input_tensor of shape (T, batch, in_channels, H, W), got {shape}"
            )
        if input_tensor.shape[2] != self.in_channels:
            raise ValueError(
                f"LConv2d expects in_channels={self.in_channels} in dimension 2 of "
                f"(T, batch, C, H, W), got shape {tuple(input_tensor.shape)}"
            )
        padding = self.padding if isinstance(self.padding, str) else self.padding[:2]
        weight = self.weight.squeeze(-1)
        return apply_folded(
            lambda images: F.conv2d(
                images,
                weight,
                None,
                self.stride[:2],
                padding,
                self.dilation[:2],
                self.groups,
            ),
            input_tensor,
        )
