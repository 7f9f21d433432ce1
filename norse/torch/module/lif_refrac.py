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
from norse.torch.module._adjoint import AdjointSelection
from norse.torch.module.nested import NestedNeuronModule
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell


class _LIFRefracChecks(AdjointSelection, NestedNeuronModule):
    initial_values = {"lif.v": "lif.v_leak"}
    nonnegative_parameters = ("rho_reset",)
    method_path = ("lif", "method")
    adjoint_activation = staticmethod(lif_refrac_feed_forward_adjoint_step)


class _LIFRefracRecurrentChecks(_LIFRefracChecks):
    adjoint_activation = staticmethod(lif_refrac_adjoint_step)
    adjoint_activation_sparse = staticmethod(lif_refrac_adjoint_step_sparse)


class LIFRefracCell(_LIFRefracChecks, SNNCell):
    """One Euler step of a feed-forward refractory LIF layer (*without* time).

    Parameters:
        p (LIFRefracParameters): neuron parameters (``p.lif.method="adjoint"``: adjoint
            gradients)
        dt (float): time step (s), default 0.001

    Shapes: input, spikes and state tensors ``(batch, ...)``.
    """

    state_type = LIFRefracFeedForwardState

    def __init__(self, p: LIFRefracParameters = LIFRefracParameters(), **kwargs):
        super().__init__(
            activation=lif_refrac_feed_forward_step, state_fallback=None, p=p, **kwargs
        )


class LIFRefrac(_LIFRefracChecks, SNN):
    """A feed-forward refractory LIF layer *with* time: input ``(T, batch, ...)``.

    Parameters: as :class:`LIFRefracCell`, plus ``record_states`` (return every state).
    """

    state_type = LIFRefracFeedForwardState

    def __init__(self, p: LIFRefracParameters = LIFRefracParameters(), **kwargs):
        super().__init__(
            activation=lif_refrac_feed_forward_step, state_fallback=None, p=p, **kwargs
        )


class LIFRefracRecurrentCell(_LIFRefracRecurrentChecks, SNNRecurrentCell):
    """One Euler step of a recurrently connected refractory LIF layer (*without* time).

    Parameters:
        input_size (int): number of input features
        hidden_size (int): number of neurons
        p (LIFRefracParameters): neuron parameters (``p.lif.method="adjoint"``: adjoint
            gradients)
        input_weights, recurrent_weights, autapses, dt: see :class:`.SNNRecurrentCell`

    Shapes: input ``(batch, input_size)``; spikes and state ``(batch, hidden_size)``.
    """

    state_type = LIFRefracState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFRefracParameters = LIFRefracParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=lif_refrac_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )


class LIFRefracRecurrent(_LIFRefracRecurrentChecks, SNNRecurrent):
    """A recurrently connected refractory LIF layer *with* time: input
    ``(T, batch, input_size)``.

    Parameters: as :class:`LIFRefracRecurrentCell`, plus ``record_states``.
    """

    state_type = LIFRefracState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFRefracParameters = LIFRefracParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=lif_refrac_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )
