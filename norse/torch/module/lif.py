"""Leaky integrate-and-fire (LIF) layers in the four module forms.

Equations and update order: :mod:`norse.torch.functional.lif`.

Example:
    >>> import torch, norse.torch as norse
    >>> cell = norse.LIFCell()
    >>> spikes, state = cell(torch.ones(1))         # first call: no state
    >>> spikes, state = cell(torch.ones(1), state)  # later calls: the returned state

``p.method = "adjoint"`` selects adjoint (EventProp) gradients in all four forms (Norse 1.1
raised an error): a Heaviside forward pass and gradients through the spike times, see
:mod:`norse.torch.functional.adjoint.lif_adjoint`.
"""

from norse.torch.functional.adjoint.lif_adjoint import (
    lif_adjoint_step,
    lif_adjoint_step_sparse,
    lif_feed_forward_adjoint_step,
    lif_feed_forward_adjoint_step_sparse,
)
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    LIFState,
    lif_feed_forward_step,
    lif_feed_forward_step_sparse,
    lif_step,
    lif_step_sparse,
)
from norse.torch.module.binding import NeuronModel, Step

_lif = NeuronModel(
    LIFParameters(),
    feed_forward=Step(
        lif_feed_forward_step,
        LIFFeedForwardState,
        sparse=lif_feed_forward_step_sparse,
        adjoint=lif_feed_forward_adjoint_step,
        adjoint_sparse=lif_feed_forward_adjoint_step_sparse,
    ),
    recurrent=Step(
        lif_step,
        LIFState,
        sparse=lif_step_sparse,
        adjoint=lif_adjoint_step,
        adjoint_sparse=lif_adjoint_step_sparse,
    ),
    initial_values={"v": "v_leak"},
)


class LIFCell(_lif.Cell):
    """One Euler step of a feed-forward LIF layer (*without* time, *without*
    recurrence)."""


class LIF(_lif.SNN):
    """A feed-forward LIF layer *with* time: input ``(T, batch, ...)``.

    Returns spikes ``(T, batch, ...)`` and the final state (or every state with
    ``record_states=True``).
    """


class LIFRecurrentCell(_lif.RecurrentCell):
    """One Euler step of a recurrently connected LIF layer (*without* time)."""


class LIFRecurrent(_lif.Recurrent):
    """A recurrently connected LIF layer *with* time: input ``(T, batch,
    input_size)``."""
