r"""Linear layers for binary spike input with an event-driven (sparse) path.

:class:`SpikeLinear` is a :class:`torch.nn.Linear` (same parameters, initialisation and
``state_dict``) whose product ``y = x W^T + b`` runs through
:func:`norse.torch.functional.sparse.spike_linear`: for a binary input with few active
entries it adds the weight columns of the active inputs instead of multiplying the whole
matrix. Equations, thresholds and measurements: :mod:`norse.torch.functional.sparse`.
"""

import os
from typing import Optional

import torch

from norse.torch.functional.sparse import (
    METHODS,
    _spike_linear,
    column_major,
    spike_linear,
)


def _plain_linear(module: torch.nn.Module) -> bool:
    """Whether calling ``module`` is exactly ``F.linear(x, weight, bias)``: a
    ``torch.nn.Linear`` (not a subclass, which may override ``forward``; parametrized
    modules are subclasses) without module or global hooks, outside tracing and
    autocast (both must see ``F.linear``)."""
    from torch.nn.modules import module as nn_module

    return (
        type(module) is torch.nn.Linear
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
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not _cpu_autocast()
    )


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # PyTorch < 2.4
        return torch.is_autocast_cpu_enabled()


def apply_layer(module: torch.nn.Module, input: torch.Tensor) -> torch.Tensor:
    """``module(input)`` for a stateless layer of :class:`.SequentialState` or
    :class:`.Lift`; a plain ``torch.nn.Linear`` goes through
    :func:`~norse.torch.functional.sparse.spike_linear` (``method="auto"``), so that a
    binary spike input with low activity takes the event-driven path, as
    :class:`SpikeLinear` does. Same result up to rounding, same gradients;
    ``NORSE_SPIKE_LINEAR=0`` in the environment calls the module as it is."""
    if (
        isinstance(input, torch.Tensor)
        and _plain_linear(module)
        and os.environ.get("NORSE_SPIKE_LINEAR", "1") != "0"
    ):
        return _spike_linear(input, module.weight, module.bias, "auto")
    return module(input)


def _check_method(method: str) -> str:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


class SpikeLinear(torch.nn.Linear):
    r"""A linear layer for spike input: ``y = x W^T + b``, event-driven when sparse.

    Parameters:
        in_features (int): size of each input sample
        out_features (int): size of each output sample
        bias (bool): learn an additive bias (default ``True``)
        method (str): ``"auto"`` (default: event-driven for binary input with low
            activity on the CPU, dense otherwise), ``"dense"`` or ``"sparse"``; see
            :func:`~norse.torch.functional.sparse.spike_linear`
        device, dtype: as for :class:`torch.nn.Linear`

    Shapes: input ``(..., in_features)`` with values 0 or 1 (or ``torch.bool``); output
    ``(..., out_features)``. Any number of leading dimensions, e.g. ``(T, batch, N)``:
    all time steps in one call.

    The weight is stored column-major (``weight.t()`` contiguous, same shape and values
    as :class:`torch.nn.Linear`'s), so the sparse path reads the columns of the active
    inputs as contiguous rows; moving, copying, loading a ``state_dict`` and optimizer
    steps keep that layout. A weight replaced by a row-major tensor still gives correct
    results: ``"auto"`` then stays dense and ``"sparse"`` transposes on each call.

    Example:
        >>> layer = SpikeLinear(4096, 4096)
        >>> spikes = (torch.rand(32, 4096) < 0.02).float()
        >>> with torch.no_grad():
        ...     currents = layer(spikes)  # several times faster than torch.nn.Linear
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        method: str = "auto",
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ):
        method = _check_method(method)
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.method = method
        # Same values as torch.nn.Linear's initialisation, stored column-major.
        self.weight = torch.nn.Parameter(column_major(self.weight.detach()))

    @classmethod
    def from_linear(
        cls, linear: torch.nn.Linear, method: str = "auto"
    ) -> "SpikeLinear":
        """A :class:`SpikeLinear` with a copy of the weight and bias of ``linear``."""
        if not isinstance(linear, torch.nn.Linear):
            raise TypeError(
                f"linear must be a torch.nn.Linear, got {type(linear).__name__}"
            )
        weight = linear.weight
        layer = cls(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            method=method,
            device=weight.device,
            dtype=weight.dtype,
        )
        layer.load_state_dict(linear.state_dict())
        return layer

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return spike_linear(input, self.weight, self.bias, self.method)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, method={self.method!r}"
