"""Regularisation terms collected while a spiking layer runs.

A regulariser accumulates something from every step of a layer (by default the number
of spikes) into a regularisation state; the user adds that state to the loss, e.g.
``loss = task_loss + 1e-3 * spike_count``, to keep activity low or voltages bounded.

An *accumulator* is ``(spikes, neuron_state, regularization_state) -> new
regularization_state``; the regularisation state is ``None`` before the first step.
"""

from typing import Any, Callable, NewType, Optional, Tuple

import torch

#: ``(z, s, state) -> state``: adds one step of a layer (spikes ``z``, neuron state ``s``)
#: to the regularisation ``state`` (``None`` at first).
Accumulator = NewType("Accumulator", Callable[[torch.Tensor, Any, Optional[Any]], Any])


def spike_accumulator(
    z: torch.Tensor, _: Any, state: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Adds the number of spikes in ``z`` (summed over all neurons and the batch).

    Parameters:
        z (torch.Tensor): spikes of one step
        _ (Any): the neuron state (unused)
        state (Optional[torch.Tensor]): the count so far; ``None`` counts from 0

    Returns:
        The new count, a 0-dimensional tensor (differentiable through the surrogate).
    """
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"z must be a torch.Tensor of spikes, got {type(z).__name__}")
    total = z.sum()
    return total if state is None else state + total


def voltage_accumulator(
    z: torch.Tensor, s: Any, state: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Adds the membrane voltages ``s.v`` element-wise.

    Parameters:
        z (torch.Tensor): spikes of one step (unused)
        s (Any): the neuron state; it must have a voltage field ``v``
        state (Optional[torch.Tensor]): the sum so far, shaped like ``s.v``; ``None``
            starts from zeros

    Returns:
        The new sum of voltages, shaped like ``s.v``.
    """
    voltage = getattr(s, "v", None)
    if not isinstance(voltage, torch.Tensor):
        raise TypeError(
            "voltage_accumulator needs a neuron state with a voltage tensor `v`, "
            f"got {type(s).__name__}"
        )
    # A copy, so that later in-place changes of the neuron state leave the sum alone.
    return voltage.clone() if state is None else state + voltage


def regularize_step(
    z: torch.Tensor,
    s: Any,
    accumulator: Accumulator = spike_accumulator,
    state: Optional[Any] = None,
) -> Tuple[torch.Tensor, Any]:
    """Adds one step of a layer to a regularisation state.

    Parameters:
        z (torch.Tensor): spikes of one step
        s (Any): neuron state of that step
        accumulator (Accumulator): what to collect; default :func:`spike_accumulator`
        state (Optional[Any]): the regularisation state so far (``None`` at first)

    Returns:
        ``(z, new_state)``: the spikes unchanged and the updated regularisation state.

    Example:
        >>> import torch
        >>> from norse.torch.functional.lif import (
        ...     LIFFeedForwardState, LIFParameters, lif_feed_forward_step)
        >>> s = LIFFeedForwardState(torch.ones(3), torch.ones(3))
        >>> z, s = lif_feed_forward_step(torch.ones(3), s, LIFParameters())
        >>> z, count = regularize_step(z, s)
        >>> float(count)
        3.0
    """
    if not callable(accumulator):
        raise TypeError(
            f"accumulator must be callable (z, s, state) -> state, got {type(accumulator).__name__}"
        )
    return z, accumulator(z, s, state)
