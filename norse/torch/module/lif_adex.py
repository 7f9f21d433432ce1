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
from norse.torch.module.nested import NestedNeuronModule
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell


class _LIFAdExChecks(NestedNeuronModule):
    initial_values = {"v": "v_leak"}
    positive_parameters = ("delta_T",)


class LIFAdExCell(_LIFAdExChecks, SNNCell):
    """One Euler step of a feed-forward adaptive exponential LIF layer (*without* time).

    Parameters:
        p (LIFAdExParameters): neuron parameters
        dt (float): time step (s), default 0.001

    Shapes: input, spikes and state ``(batch, ...)``.
    """

    state_type = LIFAdExFeedForwardState

    def __init__(self, p: LIFAdExParameters = LIFAdExParameters(), **kwargs):
        super().__init__(
            activation=lif_adex_feed_forward_step, state_fallback=None, p=p, **kwargs
        )


class LIFAdEx(_LIFAdExChecks, SNN):
    """A feed-forward adaptive exponential LIF layer *with* time: input ``(T, batch, ...)``.

    Parameters: as :class:`LIFAdExCell`, plus ``record_states`` (return every state).
    """

    state_type = LIFAdExFeedForwardState

    def __init__(self, p: LIFAdExParameters = LIFAdExParameters(), **kwargs):
        super().__init__(
            activation=lif_adex_feed_forward_step, state_fallback=None, p=p, **kwargs
        )


class LIFAdExRecurrentCell(_LIFAdExChecks, SNNRecurrentCell):
    """One Euler step of a recurrently connected adaptive exponential LIF layer (*without* time).

    Parameters:
        input_size (int): number of input features
        hidden_size (int): number of neurons
        p (LIFAdExParameters): neuron parameters
        input_weights, recurrent_weights, autapses, dt: see :class:`.SNNRecurrentCell`

    Shapes: input ``(batch, input_size)``; spikes and state ``(batch, hidden_size)``.
    """

    state_type = LIFAdExState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFAdExParameters = LIFAdExParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=lif_adex_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )


class LIFAdExRecurrent(_LIFAdExChecks, SNNRecurrent):
    """A recurrently connected adaptive exponential LIF layer *with* time: input
    ``(T, batch, input_size)``.

    Parameters: as :class:`LIFAdExRecurrentCell`, plus ``record_states``.
    """

    state_type = LIFAdExState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFAdExParameters = LIFAdExParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=lif_adex_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )
