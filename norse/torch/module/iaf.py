"""Integrate-and-fire (IAF) layers in the four module forms.

Equations: :mod:`norse.torch.functional.iaf`. The first state has ``v = v_reset``; the
feed-forward forms start from ``p.v_reset`` itself, so a trainable ``v_reset`` also gets
the gradient of the start (as in Norse 1.1).
"""

from norse.torch.functional.iaf import (
    IAFFeedForwardState,
    IAFParameters,
    IAFState,
    iaf_feed_forward_step,
    iaf_step,
)
from norse.torch.module.binding import NeuronModel, Step

_iaf = NeuronModel(
    IAFParameters(),
    feed_forward=Step(iaf_feed_forward_step, IAFFeedForwardState),
    recurrent=Step(iaf_step, IAFState),
    initial_values={"v": "v_reset"},
)


class IAFCell(_iaf.Cell):
    """One step of a feed-forward IAF layer; input, spikes and state ``(batch,
    ...)``."""

    # Norse 1.1 starts the feed-forward forms from p.v_reset itself
    differentiable_initial_values = True


class IAF(_iaf.SNN):
    """A feed-forward IAF layer *with* time: input ``(T, batch, ...)``."""

    # Norse 1.1 starts the feed-forward forms from p.v_reset itself
    differentiable_initial_values = True


class IAFRecurrentCell(_iaf.RecurrentCell):
    """One step of a recurrent IAF layer: input ``(batch, input_size)``."""


class IAFRecurrent(_iaf.Recurrent):
    """A recurrent IAF layer *with* time: input ``(T, batch, input_size)``."""
