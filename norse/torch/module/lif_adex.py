"""Adaptive exponential LIF (LIFAdEx) layers in the four module forms.

Equations and update order: :mod:`norse.torch.functional.lif_adex`. The first state has
``v = v_leak`` and ``i = a = 0``.
"""

from norse.torch.functional.lif_adex import (
    LIFAdExFeedForwardState,
    LIFAdExParameters,
    LIFAdExState,
    lif_adex_feed_forward_step,
    lif_adex_step,
)
from norse.torch.module.binding import NeuronModel, Step

_lif_adex = NeuronModel(
    LIFAdExParameters(),
    feed_forward=Step(lif_adex_feed_forward_step, LIFAdExFeedForwardState),
    recurrent=Step(lif_adex_step, LIFAdExState),
    initial_values={"v": "v_leak"},
    positive_parameters=("delta_T",),
)


class LIFAdExCell(_lif_adex.Cell):
    """One Euler step of a feed-forward adaptive exponential LIF layer (*without*
    time)."""


class LIFAdEx(_lif_adex.SNN):
    """A feed-forward adaptive exponential LIF layer *with* time: input ``(T, batch,
    ...)``."""


class LIFAdExRecurrentCell(_lif_adex.RecurrentCell):
    """One Euler step of a recurrently connected adaptive exponential LIF layer
    (*without* time)."""


class LIFAdExRecurrent(_lif_adex.Recurrent):
    """A recurrently connected adaptive exponential LIF layer *with* time: input
    ``(T, batch, input_size)``."""
