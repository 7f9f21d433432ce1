"""Refractory multi-compartment LIF layers: the compartments of :mod:`.lif_mc` with the
refractory period of :mod:`.lif_refrac`.

Equations and update order: :mod:`norse.torch.functional.lif_mc_refrac`; ``g_coupling``
as in :mod:`.lif_mc`; parameters :class:`.LIFRefracParameters` (default
``LIFRefracParameters()``), states :class:`.LIFRefracState` and
:class:`.LIFRefracFeedForwardState`. Norse 1.1 had only
:class:`LIFMCRefracRecurrentCell`; the other three forms are added here.
"""

from norse.torch.functional.lif_mc_refrac import (
    lif_mc_refrac_feed_forward_step,
    lif_mc_refrac_step,
)
from norse.torch.functional.lif_refrac import (
    LIFRefracFeedForwardState,
    LIFRefracParameters,
    LIFRefracState,
)
from norse.torch.module.lif_mc import _FeedForwardCompartments, _RecurrentCompartments
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell


class _Refractory:
    initial_values = {"lif.v": "lif.v_leak"}
    nonnegative_parameters = ("rho_reset",)
    recurrent_step = staticmethod(lif_mc_refrac_step)
    feed_forward_step = staticmethod(lif_mc_refrac_feed_forward_step)
    default_parameters = LIFRefracParameters()


class LIFMCRefracCell(_Refractory, _FeedForwardCompartments, SNNCell):
    """One Euler step of feed-forward refractory multi-compartment neurons: as
    :class:`.LIFMCCell`; input, spikes and state ``(batch, ..., n)``."""

    state_type = LIFRefracFeedForwardState


class LIFMCRefrac(_Refractory, _FeedForwardCompartments, SNN):
    """Feed-forward refractory multi-compartment neurons *with* time: as
    :class:`.LIFMC`; input ``(T, batch, ..., n)``."""

    state_type = LIFRefracFeedForwardState


class LIFMCRefracRecurrentCell(_Refractory, _RecurrentCompartments, SNNRecurrentCell):
    """One Euler step of recurrently connected refractory multi-compartment neurons:
    ``LIFMCRefracRecurrentCell(input_size, hidden_size, p=LIFRefracParameters(),
    g_coupling=None, ...)`` as :class:`.LIFMCRecurrentCell`."""

    state_type = LIFRefracState


class LIFMCRefracRecurrent(_Refractory, _RecurrentCompartments, SNNRecurrent):
    """Recurrently connected refractory multi-compartment neurons *with* time: as
    :class:`.LIFMCRecurrent`; input ``(T, batch, input_size)``."""

    state_type = LIFRefracState
