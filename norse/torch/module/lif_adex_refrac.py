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
from norse.torch.module.nested import NestedNeuronModule
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell


class _LIFAdExRefracChecks(NestedNeuronModule):
    initial_values = {"lif_adex.v": "lif_adex.v_leak"}
    positive_parameters = ("lif_adex.delta_T",)
    nonnegative_parameters = ("rho_reset",)


class LIFAdExRefracCell(_LIFAdExRefracChecks, SNNCell):
    """One Euler step of a feed-forward refractory AdEx layer (*without* time).

    Parameters:
        p (LIFAdExRefracParameters): neuron parameters
        dt (float): time step (s), default 0.001

    Shapes: input, spikes and state tensors ``(batch, ...)``.
    """

    state_type = LIFAdExRefracFeedForwardState

    def __init__(
        self, p: LIFAdExRefracParameters = LIFAdExRefracParameters(), **kwargs
    ):
        super().__init__(
            activation=lif_adex_refrac_feed_forward_step,
            state_fallback=None,
            p=p,
            **kwargs,
        )


class LIFAdExRefrac(_LIFAdExRefracChecks, SNN):
    """A feed-forward refractory AdEx layer *with* time: input ``(T, batch, ...)``.

    Parameters: as :class:`LIFAdExRefracCell`, plus ``record_states`` (return every state).
    """

    state_type = LIFAdExRefracFeedForwardState

    def __init__(
        self, p: LIFAdExRefracParameters = LIFAdExRefracParameters(), **kwargs
    ):
        super().__init__(
            activation=lif_adex_refrac_feed_forward_step,
            state_fallback=None,
            p=p,
            **kwargs,
        )


class LIFAdExRefracRecurrentCell(_LIFAdExRefracChecks, SNNRecurrentCell):
    """One Euler step of a recurrently connected refractory AdEx layer (*without* time).

    Parameters:
        input_size (int): number of input features
        hidden_size (int): number of neurons
        p (LIFAdExRefracParameters): neuron parameters
        input_weights, recurrent_weights, autapses, dt: see :class:`.SNNRecurrentCell`

    Shapes: input ``(batch, input_size)``; spikes and state ``(batch, hidden_size)``.
    """

    state_type = LIFAdExRefracState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFAdExRefracParameters = LIFAdExRefracParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=lif_adex_refrac_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )


class LIFAdExRefracRecurrent(_LIFAdExRefracChecks, SNNRecurrent):
    """A recurrently connected refractory AdEx layer *with* time: input
    ``(T, batch, input_size)``.

    Parameters: as :class:`LIFAdExRefracRecurrentCell`, plus ``record_states``.
    """

    state_type = LIFAdExRefracState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFAdExRefracParameters = LIFAdExRefracParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=lif_adex_refrac_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )
