"""Refractory adaptive exponential LIF (AdEx) layers in the four module forms.

Equations and update order: :mod:`norse.torch.functional.lif_adex_refrac`. Parameters and
states nest the AdEx ones (``p.lif_adex.v_th``, ``state.lif_adex.v``, ``state.rho``); the first
state has ``lif_adex.v = p.lif_adex.v_leak`` and zero current, adaptation, spikes and ``rho``.

Norse 1.1 had no time module ``LIFAdExRefrac``; it is added here.
"""

from norse.torch.functional.lif_adex_refrac import (
    LIFAdExRefracFeedForwardState,
    LIFAdExRefracParameters,
    LIFAdExRefracState,
    lif_adex_refrac_feed_forward_step,
    lif_adex_refrac_step,
)
from norse.torch.module.binding import NeuronModel, Step

_lif_adex_refrac = NeuronModel(
    LIFAdExRefracParameters(),
    feed_forward=Step(
        lif_adex_refrac_feed_forward_step,
        LIFAdExRefracFeedForwardState,
    ),
    recurrent=Step(lif_adex_refrac_step, LIFAdExRefracState),
    initial_values={"lif_adex.v": "lif_adex.v_leak"},
    positive_parameters=("lif_adex.delta_T",),
    nonnegative_parameters=("rho_reset",),
)


class LIFAdExRefracCell(_lif_adex_refrac.Cell):
    """One Euler step of a feed-forward refractory AdEx layer (*without* time)."""


class LIFAdExRefrac(_lif_adex_refrac.SNN):
    """A feed-forward refractory AdEx layer *with* time: input ``(T, batch, ...)``."""


class LIFAdExRefracRecurrentCell(_lif_adex_refrac.RecurrentCell):
    """One Euler step of a recurrently connected refractory AdEx layer (*without*
    time)."""


class LIFAdExRefracRecurrent(_lif_adex_refrac.Recurrent):
    """A recurrently connected refractory AdEx layer *with* time: input ``(T, batch,
    input_size)``."""
