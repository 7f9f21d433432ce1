"""Long short-term memory spiking neuron (LSNN) layers in the four module forms.

Equations and update order: :mod:`norse.torch.functional.lsnn`. The first state has
``v = v_leak``, ``i = 0`` and the threshold ``b = v_th``.

Example:
    >>> import torch, norse.torch as norse
    >>> layer = norse.LSNNRecurrent(2, 4)
    >>> spikes, state = layer(torch.ones(10, 1, 2))   # (T, batch, input_size)
    >>> spikes.shape, state.b.shape
    (torch.Size([10, 1, 4]), torch.Size([1, 4]))
"""

from norse.torch.functional.adjoint.lsnn_adjoint import (
    lsnn_adjoint_step,
    lsnn_feed_forward_adjoint_step,
)
from norse.torch.functional.lsnn import (
    LSNNFeedForwardState,
    LSNNParameters,
    LSNNState,
    lsnn_feed_forward_step,
    lsnn_step,
)
from norse.torch.module.binding import NeuronModel, Step

_lsnn = NeuronModel(
    LSNNParameters(),
    feed_forward=Step(
        lsnn_feed_forward_step,
        LSNNFeedForwardState,
        adjoint=lsnn_feed_forward_adjoint_step,
    ),
    recurrent=Step(lsnn_step, LSNNState, adjoint=lsnn_adjoint_step),
    initial_values={"v": "v_leak", "b": "v_th"},
    adjoint_argument=True,
)


class LSNNCell(_lsnn.Cell):
    """One Euler step of a feed-forward LSNN layer (*without* time, *without*
    recurrence)."""


class LSNN(_lsnn.SNN):
    """A feed-forward LSNN layer *with* time: input ``(T, batch, ...)``."""


class LSNNRecurrentCell(_lsnn.RecurrentCell):
    """One Euler step of a recurrently connected LSNN layer (*without* time)."""


class LSNNRecurrent(_lsnn.Recurrent):
    """A recurrently connected LSNN layer *with* time: input ``(T, batch,
    input_size)``."""
