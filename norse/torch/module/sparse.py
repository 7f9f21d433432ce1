r"""Linear layers for binary spike input with an event-driven (sparse) path.

:class:`SpikeLinear` is a :class:`torch.nn.Linear` (same parameters, initialisation and
``state_dict``) whose product ``y = x W^T + b`` runs through
:func:`norse.torch.fused.spike_linear.spike_linear` (the CPU kernels where they apply,
else the reference :func:`norse.torch.functional.sparse.spike_linear`): for a binary
input with few active entries it adds the weight columns of the active inputs instead
of multiplying the whole matrix. Equations, thresholds and measurements:
:mod:`norse.torch.functional.sparse`.
"""

from typing import Optional

import torch

from norse.torch.functional.sparse import METHODS, column_major
from norse.torch.fused.spike_linear import spike_linear


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
