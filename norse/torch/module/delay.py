r"""Synaptic delays as modules: fixed or learnable, per neuron or per synapse.

:class:`Delay` shifts a spike train ``(T, batch, *features)`` by a number of time steps;
:class:`DelayCell` does the same one step at a time with a ring-buffer state, and both
agree step for step (a state returned by one continues the other).

The delays (in steps; multiply by ``dt`` for seconds) are a tensor that broadcasts
against the input features: shape ``features`` for one delay per neuron, ``(n_post,
n_pre)`` for one delay per synapse (output ``(T, batch, n_post, n_pre)``, to be weighted
and summed over the last dimension).

**Fixed delays** (``learnable=False``, the default) must be non-negative integers and
are exact shifts. **Learnable delays** (``learnable=True``) are a float
``nn.Parameter``; a delay :math:`d = k + f` outputs the linear interpolation
:math:`(1 - f)\, x_{t-k} + f\, x_{t-k-1}` of the two neighbouring integer shifts, whose
exact gradient with respect to :math:`d` is :math:`x_{t-k-1} - x_{t-k}` (see
:mod:`norse.torch.functional.delay`). Learned delays are clamped to ``[0, max_delay]``.

Example:
    >>> import torch, norse.torch as norse
    >>> spikes = torch.zeros(10, 1, 3); spikes[0] = 1
    >>> out, state = norse.Delay(torch.tensor([0, 2, 5]))(spikes)
    >>> out[:, 0].nonzero().tolist()          # (time, neuron)
    [[0, 0], [2, 1], [5, 2]]
    >>> per_synapse = norse.Delay(torch.tensor([[1.5, 3.0]]), learnable=True, max_delay=8)
    >>> out, _ = per_synapse(torch.ones(10, 4, 2))  # (10, 4, 1, 2)
"""

import math
from typing import Optional, Tuple

import torch

from norse.torch.functional.delay import (
    DelayState,
    buffer_length,
    delay_initial_state,
    delay_sequence,
    delay_step,
    output_shape,
)
from norse.torch.functional.validation import check_input, check_sequence


class _DelayModule(torch.nn.Module):
    """Stores and validates the delays; subclasses choose the sequence or step form."""

    def __init__(
        self,
        delays: torch.Tensor,
        learnable: bool = False,
        max_delay: Optional[int] = None,
    ):
        super().__init__()
        try:
            delays = torch.as_tensor(delays)
        except (RuntimeError, TypeError):
            raise TypeError(
                f"delays must be a tensor (or sequence) of numbers of steps, got "
                f"{type(delays).__name__} {delays!r}"
            ) from None
        if delays.numel() == 0:
            raise ValueError("delays must not be empty")
        if delays.is_complex() or delays.dtype == torch.bool:
            raise TypeError(
                f"delays must be integer or float, got dtype {delays.dtype}"
            )
        values = delays.detach().double()
        if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
            raise ValueError(
                f"delays must be finite and >= 0 (steps), got minimum {values.min().item():g}"
            )
        if max_delay is None:
            if learnable:
                raise ValueError(
                    "learnable delays need max_delay, the longest delay (steps) they may "
                    "learn (it sizes the history kept by the step form)"
                )
            max_delay = int(math.ceil(values.max().item()))
        if (
            isinstance(max_delay, bool)
            or not isinstance(max_delay, int)
            or max_delay < 0
        ):
            raise ValueError(f"max_delay must be a non-negative int, got {max_delay!r}")
        if learnable:
            if values.max().item() > max_delay:
                raise ValueError(
                    f"delays ({values.max().item():g} steps) exceed max_delay={max_delay}"
                )
            dtype = delays.dtype if delays.is_floating_point() else None
            self.delays = torch.nn.Parameter(
                delays.detach().to(dtype or torch.get_default_dtype()).clone()
            )
        else:
            if bool((values != values.round()).any()):
                raise ValueError(
                    "fixed delays must be whole numbers of steps; use learnable=True for "
                    "fractional (interpolated) delays"
                )
            self.register_buffer("delays", delays.detach().round().long().clone())
        self.learnable = learnable
        self.max_delay = max_delay

    def extra_repr(self) -> str:
        return (
            f"shape={tuple(self.delays.shape)}, learnable={self.learnable}, "
            f"max_delay={self.max_delay}"
        )

    def initial_state(self, input_tensor: torch.Tensor) -> DelayState:
        """An all-zero history for a step input ``(batch, *features)``."""
        return delay_initial_state(input_tensor, self.max_delay)

    def _check(
        self, input_tensor: torch.Tensor, state: Optional[DelayState], time: bool
    ):
        check_input(input_tensor, "input_tensor", 1 + time)
        step_shape = input_tensor.shape[1:] if time else input_tensor.shape
        output_shape(step_shape[1:], self.delays)
        if state is None:
            return
        if not isinstance(state, DelayState):
            raise TypeError(
                f"state must be a DelayState (or None), got {type(state).__name__}"
            )
        expected = (buffer_length(self.max_delay), *step_shape)
        if tuple(state.buffer.shape) != expected:
            raise ValueError(
                f"state.buffer has shape {tuple(state.buffer.shape)} but this input and "
                f"max_delay={self.max_delay} need {expected}"
            )
        if state.buffer.dtype != input_tensor.dtype:
            raise TypeError(
                f"state.buffer has dtype {state.buffer.dtype} but the input has "
                f"{input_tensor.dtype}"
            )
        if state.buffer.device != input_tensor.device:
            raise ValueError(
                f"state.buffer is on {state.buffer.device} but the input is on "
                f"{input_tensor.device}"
            )


class Delay(_DelayModule):
    """Delays spike trains ``(T, batch, *features)`` by a fixed or learnable number of
    steps per neuron or per synapse.

    Parameters:
        delays (torch.Tensor): delays in steps, broadcasting against the features
        learnable (bool): train the delays (interpolated; needs ``max_delay``)
        max_delay (int): the longest delay (default: the largest fixed delay)

    Returns ``(output, state)``: output ``(T, batch, *broadcast(features, delays))``;
    pass the state to the next call to continue the sequence.
    """

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[DelayState] = None
    ) -> Tuple[torch.Tensor, DelayState]:
        self._check(input_tensor, state, time=True)
        check_sequence(input_tensor)
        return delay_sequence(input_tensor, self.delays, self.max_delay, state)


class DelayCell(_DelayModule):
    """One step of :class:`Delay`: input ``(batch, *features)``, a ring-buffer state.

    Parameters: as :class:`Delay`.
    """

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[DelayState] = None
    ) -> Tuple[torch.Tensor, DelayState]:
        self._check(input_tensor, state, time=False)
        if state is None:
            state = self.initial_state(input_tensor)
        return delay_step(input_tensor, state, self.delays, self.max_delay)
