"""A module that collects a regularisation term while a spiking layer runs."""

from typing import Any, Tuple

import torch

from norse.torch.functional.regularization import (
    Accumulator,
    regularize_step,
    spike_accumulator,
)


class RegularizationCell(torch.nn.Module):
    """Accumulates a regularisation term (by default the spike count) step by step.

    Call it after a layer with that layer's spikes and state; it returns the spikes
    unchanged and the accumulated term, which it also keeps in :attr:`state` for the
    next call. Add the term to the loss, and call :meth:`reset` (or set ``state = None``)
    before the next batch, or it keeps growing (and keeps the old graph alive).

    Parameters:
        accumulator (Accumulator): ``(z, s, state) -> state``; default
            :func:`.spike_accumulator` (use :func:`.voltage_accumulator` for voltages)
        state (Any): the initial regularisation state; ``None`` (default) lets the
            accumulator start from zero

    Example:
        >>> import torch
        >>> from norse.torch.module.lif import LIFCell
        >>> cell, r = LIFCell(), RegularizationCell()
        >>> z, s = cell(torch.full((5, 2), 11.0))
        >>> z, spike_count = r(z, s)
        >>> float(spike_count)
        10.0
    """

    def __init__(self, accumulator: Accumulator = spike_accumulator, state: Any = None):
        super().__init__()
        if not callable(accumulator):
            raise TypeError(
                f"accumulator must be callable (z, s, state) -> state, got {type(accumulator).__name__}"
            )
        self.accumulator = accumulator
        self.state = state

    def reset(self) -> None:
        """Forgets the accumulated term (the next call starts from zero)."""
        self.state = None

    def forward(self, z: torch.Tensor, s: Any) -> Tuple[torch.Tensor, Any]:
        _, self.state = regularize_step(z, s, self.accumulator, self.state)
        return z, self.state
