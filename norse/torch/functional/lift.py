"""Lifting step functions (and per-sample functions) over the time dimension.

:func:`lift` turns a step function ``(input, state, ...) -> (output, state)`` into one
that takes a whole sequence ``(T, batch, ...)`` and returns ``(outputs, final state)``
with ``outputs`` of shape ``(T, batch, ...)``: the reference loop over time. The module
form is :class:`.Lift`, which also takes the fused multi-step kernels
(:mod:`norse.torch.fused`) for neuron cells.

:func:`apply_folded` applies a per-sample function (a convolution, a pooling...) to all
time steps at once. Both check their ``(T, ...)`` input with
:func:`~norse.torch.functional.validation.check_sequence` (importable from here too).
"""

from typing import Any, Callable, Optional, Tuple

import torch

from norse.torch.functional.validation import check_sequence


def apply_folded(
    function: Callable[[torch.Tensor], torch.Tensor], input_tensor: torch.Tensor
) -> torch.Tensor:
    """Applies a per-sample ``function`` to all time steps at once.

    ``(T, B, ...)`` is reshaped to ``(T * B, ...)``, passed through ``function`` and the
    result reshaped back to ``(T, B, ...)``. This equals applying ``function`` to every
    ``input_tensor[t]`` and stacking, provided ``function`` treats the first dimension as
    independent samples (a convolution, a pooling, a linear layer...).
    """
    steps, batch = input_tensor.shape[0], input_tensor.shape[1]
    output = function(input_tensor.flatten(0, 1))
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"a time-folded function must return a torch.Tensor, got {type(output).__name__}"
        )
    if output.dim() == 0 or output.shape[0] != steps * batch:
        raise ValueError(
            f"a time-folded function must keep the folded batch dimension "
            f"T * batch = {steps * batch}, but it returned shape {tuple(output.shape)}"
        )
    return output.unflatten(0, (steps, batch))


class _Lifted:
    """The callable returned by :func:`lift`.

    A plain class (not a closure) so that it pickles, e.g. for multi-process training.
    """

    def __init__(self, activation: Callable[..., Tuple[torch.Tensor, Any]], p=None):
        if not callable(activation):
            raise TypeError(
                f"activation must be a callable step function, got {type(activation).__name__}"
            )
        self.activation = activation
        self.p = p

    def __call__(
        self, input_tensor: torch.Tensor, **kwargs: Any
    ) -> Tuple[torch.Tensor, Any]:
        check_sequence(input_tensor)
        if self.p is not None and "p" not in kwargs:
            kwargs["p"] = self.p
        state = kwargs.pop("state", None)
        outputs = []
        for step in input_tensor:
            if state is None:
                output, state = self.activation(step, **kwargs)
            else:
                output, state = self.activation(step, state=state, **kwargs)
            outputs.append(output)
        return torch.stack(outputs), state

    def __repr__(self) -> str:
        name = getattr(self.activation, "__name__", repr(self.activation))
        return f"lift({name})"


def lift(
    activation: Callable[..., Tuple[torch.Tensor, Any]], p: Optional[Any] = None
) -> Callable[..., Tuple[torch.Tensor, Any]]:
    """Lifts a step function over time.

    The returned callable takes ``input_tensor`` of shape ``(T, ...)`` and keyword
    arguments for the step function (``state=``, ``p=``, ``dt=``, weights...), applies
    the step function once per time step, threading the state, and returns
    ``(outputs, state)`` with ``outputs`` of shape ``(T, ...)`` and the final state.

    Without ``state=`` the first step is called without a state (the step function must
    then make its own, otherwise it raises ``TypeError``); later steps get the state the
    previous step returned.

    This is the reference loop, whatever the step function: the fused multi-step
    kernels (:mod:`norse.torch.fused`) run in the module forms, e.g.
    ``norse.torch.Lift(norse.torch.LIFCell(p))`` or ``norse.torch.LIF(p)``, which give
    the same results.

    Parameters:
        activation (Callable): step function ``(input, state, ..., p, dt) -> (output, state)``
        p (Any): parameters handed to ``activation`` when the call gives no ``p=``

    Example:
        >>> import torch
        >>> from norse.torch.functional.lif import (
        ...     LIFFeedForwardState, LIFParameters, lif_feed_forward_step)
        >>> lifted = lift(lif_feed_forward_step)
        >>> x = torch.ones(10, 2, 3)                       # (T, batch, neurons)
        >>> s = LIFFeedForwardState(torch.zeros(2, 3), torch.zeros(2, 3))
        >>> z, s = lifted(x, state=s, p=LIFParameters())
        >>> z.shape
        torch.Size([10, 2, 3])
    """
    return _Lifted(activation, p)
