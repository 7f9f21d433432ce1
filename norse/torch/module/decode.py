"""Decoders as ``torch.nn.Module`` s, to end a ``torch.nn.Sequential``.

Thin wrappers of :func:`~norse.torch.functional.decode.sum_decode` and
:func:`~norse.torch.functional.decode.max_decode` (Norse 1.1 has these functions but no
modules for them). Both reduce dimension ``dim`` (default 0, time).

Example (the readout of Norse's MNIST task: the peak voltage of each class over time):
    >>> import torch
    >>> voltages = torch.randn(40, 8, 10)   # (T, batch, classes), e.g. from norse.LI()
    >>> MaxDecoder()(voltages).shape         # logits for log_softmax
    torch.Size([8, 10])
"""

import torch

from norse.torch.functional.decode import max_decode, sum_decode


class _Decoder(torch.nn.Module):
    def __init__(self, dim: int = 0):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"dim must be an int, got {dim!r}")
        self.dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class SumDecoder(_Decoder):
    """Sums over dimension ``dim`` (default 0, time): spike counts.

    Parameters:
        dim (int): the dimension to reduce, default 0

    Shapes: input ``(T, ...)``; output ``(...)`` (for ``dim=0``).
    """

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        return sum_decode(input_tensor, self.dim)


class MaxDecoder(_Decoder):
    """Maximum over dimension ``dim`` (default 0, time), the values only
    (``torch.max(x, dim).values``): the max-over-time readout of Norse's MNIST task.

    Parameters:
        dim (int): the dimension to reduce, default 0

    Shapes: input ``(T, ...)``; output ``(...)`` (for ``dim=0``).
    """

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        return max_decode(input_tensor, self.dim)
