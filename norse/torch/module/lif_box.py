"""Box LIF layers: LIF without a synaptic current, in the four module forms.

Equations: :mod:`norse.torch.functional.lif_box`.
"""

from norse.torch.functional.lif_box import (
    LIFBoxFeedForwardState,
    LIFBoxParameters,
    LIFBoxState,
    lif_box_feed_forward_step,
    lif_box_step,
)
from norse.torch.module.binding import NeuronModel, Step

_lif_box = NeuronModel(
    LIFBoxParameters(),
    feed_forward=Step(lif_box_feed_forward_step, LIFBoxFeedForwardState),
    recurrent=Step(lif_box_step, LIFBoxState),
    initial_values={"v": "v_leak"},
)


class LIFBoxCell(_lif_box.Cell):
    """One Euler step of a feed-forward box LIF layer; input, spikes, state
    ``(batch, ...)``."""


class LIFBox(_lif_box.SNN):
    """A feed-forward box LIF layer *with* time: input ``(T, batch, ...)``."""


class LIFBoxRecurrentCell(_lif_box.RecurrentCell):
    """One step of a recurrent box LIF layer: input ``(batch, input_size)``."""


class LIFBoxRecurrent(_lif_box.Recurrent):
    """A recurrent box LIF layer *with* time: input ``(T, batch, input_size)``."""
