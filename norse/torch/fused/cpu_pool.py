r"""CPU kernels (Numba) of non-overlapping 2-D max pooling, forward and backward.

For windows of ``(kh, kw)`` with stride equal to the window (``torch.nn.MaxPool2d(k)``
with its defaults: no padding, dilation 1, floor mode), on ``(..., H, W)``:

.. math::
    y_{ij} = \max_{a < k_h,\, b < k_w} x_{i k_h + a,\; j k_w + b}, \qquad
    \frac{\partial L}{\partial x_{i k_h + a,\, j k_w + b}} =
    [\,(a, b) = \operatorname{argmax}_{ij}\,] \frac{\partial L}{\partial y_{ij}}

with PyTorch's CPU rule for the argmax: the first maximum in row-major window order,
and a NaN always taken (the last NaN), so values and gradients equal
:func:`torch.nn.functional.max_pool2d`'s bit for bit. Between forward and backward
only the position of the maximum in its window is kept (one byte per output, where
PyTorch keeps an int64 index). Rows and columns that no window covers get a zero
gradient.

The kernels are compiled per window size (the loops over the window unroll) and dtype
(float32, float64); the planes (batch x channels) are split over PyTorch's threads. Measured on a 2-core AMD EPYC (Zen 4), 1 thread, 2 x 2 windows on
``(640, 16, 24, 24)`` float32 (the first pooling layer of the conv benchmark: T=20 x
batch 32): forward 1.6 ms, backward 2.8 ms, against 19.8 and 24.5 ms for PyTorch 2.13's
``max_pool2d`` (about 2 ms is the time of copying the input).
"""

import functools
from typing import Callable, Tuple

import torch
from numba import njit

from norse.torch.fused.cpu import _run, _threads

#: Input dtypes the kernels take.
DTYPES = (torch.float32, torch.float64)

#: Largest window (its positions are stored in one byte).
MAX_WINDOW = 255


def _compile(function: Callable) -> Callable:
    return njit(nogil=True, cache=True, error_model="numpy")(function)


@functools.lru_cache(maxsize=None)
def _forward_kernel(kh: int, kw: int) -> Callable:
    """``(x (N, H, W), out (N, OH, OW), where (N, OH, OW) uint8, start, stop)``: the
    planes ``start:stop``."""

    def forward(x, out, where, start, stop):
        for c in range(start, stop):
            for i in range(out.shape[1]):
                o = out[c, i]
                w = where[c, i]
                for j in range(out.shape[2]):
                    best = x[c, i * kh, j * kw]
                    at = 0
                    for a in range(kh):
                        row = x[c, i * kh + a]
                        for b in range(kw):
                            v = row[j * kw + b]
                            if v > best or v != v:  # PyTorch's rule: NaN wins
                                best = v
                                at = a * kw + b
                    o[j] = best
                    w[j] = at

    return _compile(forward)


@functools.lru_cache(maxsize=None)
def _backward_kernel(kh: int, kw: int) -> Callable:
    """``(grad_out (N, OH, OW), where (N, OH, OW), grad_x (N, H, W), start, stop)``:
    writes every element of the planes ``start:stop`` of ``grad_x``."""

    def backward(grad_out, where, grad_x, start, stop):
        rows, cols = grad_x.shape[1], grad_x.shape[2]
        covered_rows = grad_out.shape[1] * kh
        covered_cols = grad_out.shape[2] * kw
        zero = grad_x.dtype.type(0)
        for c in range(start, stop):
            for i in range(grad_out.shape[1]):
                g = grad_out[c, i]
                w = where[c, i]
                for a in range(kh):
                    row = grad_x[c, i * kh + a]
                    for j in range(grad_out.shape[2]):
                        for b in range(kw):
                            row[j * kw + b] = g[j] if w[j] == a * kw + b else zero
                    for q in range(covered_cols, cols):
                        row[q] = zero
            for r in range(covered_rows, rows):
                for q in range(cols):
                    grad_x[c, r, q] = zero

    return _compile(backward)


def _pooled_shape(x: torch.Tensor, kh: int, kw: int) -> Tuple[int, int]:
    return x.shape[-2] // kh, x.shape[-1] // kw


def _forward(x: torch.Tensor, kh: int, kw: int) -> Tuple[torch.Tensor, torch.Tensor]:
    rows, cols = _pooled_shape(x, kh, kw)
    flat = x.detach().contiguous().reshape(-1, x.shape[-2], x.shape[-1])
    out = x.new_empty(flat.shape[0], rows, cols)
    where = torch.empty(flat.shape[0], rows, cols, dtype=torch.uint8)
    args = (flat.numpy(), out.numpy(), where.numpy())
    plane = x.shape[-2] * x.shape[-1]
    _run(_forward_kernel(kh, kw), args, plane, flat.shape[0], _threads(), 1)
    return out.reshape(*x.shape[:-2], rows, cols), where


def _scatter(grad_out, where, shape, kh: int, kw: int) -> torch.Tensor:
    """The gradient of the input with differentiable PyTorch operations (for double
    backward): ``grad_out`` put at the maxima, zeros elsewhere."""
    rows, cols = grad_out.shape[-2], grad_out.shape[-1]
    height, width = shape[-2], shape[-1]
    where = where.long()
    i = torch.arange(rows).view(rows, 1)
    j = torch.arange(cols).view(1, cols)
    index = (i * kh + where // kw) * width + (j * kw + where % kw)
    flat = grad_out.reshape(-1, rows * cols)
    grad_x = flat.new_zeros(flat.shape[0], height * width)
    grad_x = grad_x.scatter(1, index.reshape(flat.shape[0], -1), flat)
    return grad_x.reshape(shape)


class _MaxPool2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kh, kw):
        out, where = _forward(x, kh, kw)
        ctx.save_for_backward(where)
        ctx.shape = x.shape
        ctx.window = (kh, kw)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (where,) = ctx.saved_tensors
        kh, kw = ctx.window
        if torch.is_grad_enabled():  # create_graph: keep the gradient differentiable
            return _scatter(grad_out, where, ctx.shape, kh, kw), None, None
        flat = grad_out.contiguous().reshape(where.shape)
        grad_x = grad_out.new_empty(where.shape[0], *ctx.shape[-2:])
        args = (flat.numpy(), where.numpy(), grad_x.numpy())
        planes, size = grad_x.shape[0], ctx.shape[-2] * ctx.shape[-1]
        _run(_backward_kernel(kh, kw), args, size, planes, _threads(), 1)
        return grad_x.reshape(ctx.shape), None, None


def max_pool2d(x: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """``torch.nn.functional.max_pool2d(x, (kh, kw))`` for a CPU tensor ``x``
    ``(..., H, W)`` (float32 or float64, ``H >= kh``, ``W >= kw``, ``kh * kw <=``
    :data:`MAX_WINDOW`): the same values and gradients."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _MaxPool2d.apply(x, kh, kw)
    return _forward(x, kh, kw)[0]
