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
from norse.torch.module._adjoint import AdjointSelection
from norse.torch.module.nested import NestedNeuronModule
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell

_INITIAL_VALUES = {"v": "v_leak", "b": "v_th"}


class _FeedForwardAdjoint(AdjointSelection):
    adjoint_activation = staticmethod(lsnn_feed_forward_adjoint_step)


class _RecurrentAdjoint(AdjointSelection):
    adjoint_activation = staticmethod(lsnn_adjoint_step)


class LSNNCell(_FeedForwardAdjoint, NestedNeuronModule, SNNCell):
    """One Euler step of a feed-forward LSNN layer (*without* time, *without* recurrence).

    Parameters:
        p (LSNNParameters): neuron parameters
        adjoint (bool): use adjoint (EventProp) gradients, as ``p.method="adjoint"``
            does (see :mod:`norse.torch.functional.adjoint.lsnn_adjoint`)
        dt (float): time step (s), default 0.001

    Shapes: input, spikes and state ``(batch, ...)``.
    """

    state_type = LSNNFeedForwardState
    initial_values = _INITIAL_VALUES

    def __init__(
        self, p: LSNNParameters = LSNNParameters(), adjoint: bool = False, **kwargs
    ):
        super().__init__(
            activation=lsnn_feed_forward_step, state_fallback=None, p=p, **kwargs
        )
        self.adjoint = bool(adjoint)


class LSNN(_FeedForwardAdjoint, NestedNeuronModule, SNN):
    """A feed-forward LSNN layer *with* time: input ``(T, batch, ...)``.

    Parameters: as :class:`LSNNCell`, plus ``record_states`` (return every state).
    """

    state_type = LSNNFeedForwardState
    initial_values = _INITIAL_VALUES

    def __init__(
        self, p: LSNNParameters = LSNNParameters(), adjoint: bool = False, **kwargs
    ):
        super().__init__(
            activation=lsnn_feed_forward_step, state_fallback=None, p=p, **kwargs
        )
        self.adjoint = bool(adjoint)


class LSNNRecurrentCell(_RecurrentAdjoint, NestedNeuronModule, SNNRecurrentCell):
    """One Euler step of a recurrently connected LSNN layer (*without* time).

    Parameters:
        input_size (int): number of input features
        hidden_size (int): number of neurons
        p (LSNNParameters): neuron parameters
        adjoint (bool): use adjoint (EventProp) gradients, as ``p.method="adjoint"``
            does
        input_weights, recurrent_weights, autapses, dt: see :class:`.SNNRecurrentCell`

    Shapes: input ``(batch, input_size)``; spikes and state ``(batch, hidden_size)``.
    """

    state_type = LSNNState
    initial_values = _INITIAL_VALUES

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LSNNParameters = LSNNParameters(),
        adjoint: bool = False,
        **kwargs,
    ):
        super().__init__(
            activation=lsnn_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )
        self.adjoint = bool(adjoint)


class LSNNRecurrent(_RecurrentAdjoint, NestedNeuronModule, SNNRecurrent):
    """A recurrently connected LSNN layer *with* time: input ``(T, batch, input_size)``.

    Parameters: as :class:`LSNNRecurrentCell`, plus ``record_states``.
    """

    state_type = LSNNState
    initial_values = _INITIAL_VALUES

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LSNNParameters = LSNNParameters(),
        adjoint: bool = False,
        **kwargs,
    ):
        super().__init__(
            activation=lsnn_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )
        self.adjoint = bool(adjoint)
