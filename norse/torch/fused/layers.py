"""Faster equivalents of stateless PyTorch layers, for :class:`~norse.torch.Lift` and
:class:`~norse.torch.SequentialState`.

:func:`apply_layer` is what both call for a stateless layer: ``module(input)``, except
for

* a ``torch.nn.Linear``: :func:`.spike_linear.spike_linear` with ``method="auto"``,
  event-driven for a binary spike input with low activity
  (``NORSE_SPIKE_LINEAR=0`` turns this off);
* a ``torch.nn.MaxPool2d`` with non-overlapping windows (stride equal to the window, no
  padding, dilation 1, floor mode, no indices returned) on a float32/float64 CPU tensor:
  the Numba kernels of :mod:`.cpu_pool` (off inside :func:`~.registry.reference_only`
  or with ``NORSE_FUSED=0``, and without Numba).

Both give the layer's values and gradients (``spike_linear`` up to rounding, the pooling
bit for bit). Only the exact classes are replaced (a subclass may override
``forward``; parametrized modules are subclasses), and only when nothing could tell the
difference: no module or global hooks, no tracing or scripting, no CPU autocast, no
:func:`torch.compile`, ``torch.func`` transform or dispatch mode.
"""

import os

import torch
from torch.nn.modules import module as nn_module

from norse.torch.fused import registry
from norse.torch.fused.spike_linear import spike_linear_unchecked


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # PyTorch < 2.4
        return torch.is_autocast_cpu_enabled()


def _replaceable(module: torch.nn.Module, input) -> bool:
    """Whether calling ``module`` on ``input`` runs nothing but its own ``forward``
    (no hooks) in plain eager mode."""
    return (
        isinstance(input, torch.Tensor)
        and not (
            module._forward_hooks
            or module._forward_pre_hooks
            or module._backward_hooks
            or module._backward_pre_hooks
            or nn_module._global_forward_hooks
            or nn_module._global_forward_pre_hooks
            or nn_module._global_backward_hooks
            or nn_module._global_backward_pre_hooks
        )
        and registry.plain_eager()
        and not _cpu_autocast()
    )


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _pool_kernels():
    """:mod:`.cpu_pool`, or ``None`` without Numba."""
    return registry.cpu_kernel_module("cpu_pool")


def _pool_window(module: torch.nn.MaxPool2d, input: torch.Tensor):
    """``(kh, kw)`` when the kernels of :mod:`.cpu_pool` compute this pooling, else
    ``None``."""
    if (
        input.device.type != "cpu"
        or input.dim() not in (3, 4)
        or module.return_indices
        or module.ceil_mode
        or not registry.enabled()
    ):
        return None
    window = _pair(module.kernel_size)
    if (
        _pair(module.stride) != window
        or _pair(module.padding) != (0, 0)
        or _pair(module.dilation) != (1, 1)
        or input.shape[-2] < window[0]
        or input.shape[-1] < window[1]
        or input.shape[-3] == 0  # PyTorch allows an empty batch only: its error
    ):
        return None
    kernels = _pool_kernels()
    if (
        kernels is None
        or input.dtype not in kernels.DTYPES
        or window[0] * window[1] > kernels.MAX_WINDOW
        or min(window) < 1
    ):
        return None
    return window


def apply_layer(module: torch.nn.Module, input: torch.Tensor) -> torch.Tensor:
    """``module(input)`` for a stateless layer, through a faster equivalent where there
    is one (see the module doc)."""
    kind = type(module)
    if kind is torch.nn.Linear:
        if (
            os.environ.get("NORSE_SPIKE_LINEAR", "1") != "0"
            and _replaceable(module, input)
            and input.dtype == module.weight.dtype  # (spike_linear also takes bool)
        ):
            return spike_linear_unchecked(input, module.weight, module.bias, "auto")
    elif kind is torch.nn.MaxPool2d and _replaceable(module, input):
        window = _pool_window(module, input)
        if window is not None:
            return _pool_kernels().max_pool2d(input, *window)
    return module(input)
