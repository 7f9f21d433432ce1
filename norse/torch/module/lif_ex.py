"""Exponential LIF (LIFEx) layers in the four module forms.

Equations and update order: :mod:`norse.torch.functional.lif_ex`. The first state has
``v = v_leak`` and ``i = 0``.
"""

from norse.torch.functional.lif_ex import (
    LIFExFeedForwardState,
    LIFExParameters,
    LIFExState,
    lif_ex_feed_forward_step,
    lif_ex_step,
)
from norse.torch.module.nested import NestedNeuronModule
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell


class _LIFExChecks(NestedNeuronModule):
    initial_values = {"v": "v_leak"}
    positive_parameters = ("delta_T",)


class LIFExCell(_LIFExChecks, SNNCell):
    """One Euler step of a feed-forward exponential LIF layer (*without* time).

    Parameters:
        p (LIFExParameters): neuron parameters
        dt (float): time step (s), default 0.001

    Shapes: input, spikes and state ``(batch, ...)``.
    """

    state_type = LIFExFeedForwardState

    def __init__(self, p: LIFExParameters = LIFExParameters(), **kwargs):
        super().__init__(
            activation=lif_ex_feed_forward_step, state_fallback=None, p=p, **kwargs
        )


class LIFEx(_LIFExChecks, SNN):
    """A feed-forward exponential LIF layer *with* time: input ``(T, batch, ...)``.

    Parameters: as :class:`LIFExCell`, plus ``record_states`` (return every state).
    """

    state_type = LIFExFeedForwardState

    def __init__(self, p: LIFExParameters = LIFExParameters(), **kwargs):
        super().__init__(
            activation=lif_ex_feed_forward_step, state_fallback=None, p=p, **kwargs
        )


class LIFExRecurrentCell(_LIFExChecks, SNNRecurrentCell):
    """One Euler step of a recurrently connected exponential LIF layer (*without* time).

    Parameters:
        input_size (int): number of input features
        hidden_size (int): number of neurons
        p (LIFExParameters): neuron parameters
        input_weights, recurrent_weights, autapses, dt: see :class:`.SNNRecurrentCell`

    Shapes: input ``(batch, input_size)``; spikes and state ``(batch, hidden_size)``.
    """

    state_type = LIFExState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFExParameters = LIFExParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=lif_ex_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )


class LIFExRecurrent(_LIFExChecks, SNNRecurrent):
    """A recurrently connected exponential LIF layer *with* time: input
    ``(T, batch, input_size)``.

    Parameters: as :class:`LIFExRecurrentCell`, plus ``record_states``.
    """

    state_type = LIFExState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFExParameters = LIFExParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=lif_ex_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )
