"""Refractory LIF layers in the four module forms.

Equations and update order: :mod:`norse.torch.functional.lif_refrac`. Parameters and
states nest the LIF ones (``p.lif.v_th``, ``state.lif.v``, ``state.rho``); the first
state has ``lif.v = p.lif.v_leak`` and zero current, spikes and ``rho``.

Norse 1.1 had no time module ``LIFRefrac``; it is added here. ``p.lif.method = "adjoint"``
selects adjoint (EventProp) gradients in all four forms, see
:mod:`norse.torch.functional.adjoint.lif_refrac_adjoint`.
"""

from norse.torch.functional.adjoint.lif_refrac_adjoint import (
    lif_refrac_adjoint_step,
    lif_refrac_adjoint_step_sparse,
    lif_refrac_feed_forward_adjoint_step,
)
from norse.torch.functional.lif_refrac import (
    LIFRefracFeedForwardState,
    LIFRefracParameters,
    LIFRefracState,
    lif_refrac_feed_forward_step,
    lif_refrac_step,
)
from norse.torch.module.binding import NeuronModel, Step

_lif_refrac = NeuronModel(
    LIFRefracParameters(),
    feed_forward=Step(
        lif_refrac_feed_forward_step,
        LIFRefracFeedForwardState,
        adjoint=lif_refrac_feed_forward_adjoint_step,
    ),
    recurrent=Step(
        lif_refrac_step,
        LIFRefracState,
        adjoint=lif_refrac_adjoint_step,
        adjoint_sparse=lif_refrac_adjoint_step_sparse,
    ),
    initial_values={"lif.v": "lif.v_leak"},
    nonnegative_parameters=("rho_reset",),
    method_path=("lif", "method"),
)


class LIFRefracCell(_lif_refrac.Cell):
    """One Euler step of a feed-forward refractory LIF layer (*without* time)."""


class LIFRefrac(_lif_refrac.SNN):
    """A feed-forward refractory LIF layer *with* time: input ``(T, batch, ...)``."""


class LIFRefracRecurrentCell(_lif_refrac.RecurrentCell):
    """One Euler step of a recurrently connected refractory LIF layer (*without*
    time)."""


class LIFRefracRecurrent(_lif_refrac.Recurrent):
    """A recurrently connected refractory LIF layer *with* time: input ``(T, batch,
    input_size)``."""
