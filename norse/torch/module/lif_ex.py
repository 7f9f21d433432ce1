"""Exponential LIF (LIFEx) layers in the four module forms.

Equations and update order: :mod:`norse.torch.functional.lif_ex`. The first state has
``v = v_leak`` and ``i = 0``.
"""

from norse.torch.functional.lif_ex import (
    LIFExFeedForwardState,
    LIFExParameters,
    LIFExState,
    lif_ex_feed_forward_step,
    lif_ex_step,
)
from norse.torch.module.binding import NeuronModel, Step

_lif_ex = NeuronModel(
    LIFExParameters(),
    feed_forward=Step(lif_ex_feed_forward_step, LIFExFeedForwardState),
    recurrent=Step(lif_ex_step, LIFExState),
    initial_values={"v": "v_leak"},
    positive_parameters=("delta_T",),
)


class LIFExCell(_lif_ex.Cell):
    """One Euler step of a feed-forward exponential LIF layer (*without* time)."""


class LIFEx(_lif_ex.SNN):
    """A feed-forward exponential LIF layer *with* time: input ``(T, batch, ...)``."""


class LIFExRecurrentCell(_lif_ex.RecurrentCell):
    """One Euler step of a recurrently connected exponential LIF layer (*without*
    time)."""


class LIFExRecurrent(_lif_ex.Recurrent):
    """A recurrently connected exponential LIF layer *with* time: input ``(T, batch,
    input_size)``."""
