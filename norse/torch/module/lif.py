r"""Leaky integrate-and-fire (LIF) layers in the four module forms.

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
from norse.torch.module._adjoint import AdjointSelection
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell


class _FeedForwardAdjoint(AdjointSelection):
    adjoint_activation = staticmethod(lif_feed_forward_adjoint_step)
    adjoint_activation_sparse = staticmethod(lif_feed_forward_adjoint_step_sparse)


class _RecurrentAdjoint(AdjointSelection):
    adjoint_activation = staticmethod(lif_adjoint_step)
    adjoint_activation_sparse = staticmethod(lif_adjoint_step_sparse)


class LIFCell(_FeedForwardAdjoint, SNNCell):
    """One Euler step of a feed-forward LIF layer (*without* time, *without* recurrence).

    Parameters:
        p (LIFParameters): neuron parameters (``method="adjoint"``: adjoint gradients)
        dt (float): time step (s), default 0.001

    Shapes: input, spikes and state ``(batch, ...)``; the first state has ``v = v_leak``
    and ``i = 0``.
    """

    state_type = LIFFeedForwardState
    initial_values = {"v": "v_leak"}

    def __init__(self, p: LIFParameters = LIFParameters(), **kwargs):
        super().__init__(
            activation=lif_feed_forward_step,
            activation_sparse=lif_feed_forward_step_sparse,
            state_fallback=None,
            p=p,
            **kwargs,
        )


class LIF(_FeedForwardAdjoint, SNN):
    """A feed-forward LIF layer *with* time: input ``(T, batch, ...)``.

    Returns spikes ``(T, batch, ...)`` and the final state (or every state with
    ``record_states=True``).

    Parameters:
        p (LIFParameters): neuron parameters (``method="adjoint"``: adjoint gradients)
        dt (float): time step (s), default 0.001
        record_states (bool): return the states of all time steps
    """

    state_type = LIFFeedForwardState
    initial_values = {"v": "v_leak"}

    def __init__(self, p: LIFParameters = LIFParameters(), **kwargs):
        super().__init__(
            activation=lif_feed_forward_step,
            activation_sparse=lif_feed_forward_step_sparse,
            state_fallback=None,
            p=p,
            **kwargs,
        )


class LIFRecurrentCell(_RecurrentAdjoint, SNNRecurrentCell):
    """One Euler step of a recurrently connected LIF layer (*without* time).

    Parameters:
        input_size (int): number of input features
        hidden_size (int): number of neurons
        p (LIFParameters): neuron parameters (``method="adjoint"``: adjoint gradients)
        input_weights, recurrent_weights, autapses, dt: see :class:`.SNNRecurrentCell`

    Shapes: input ``(batch, input_size)``; spikes and state ``(batch, hidden_size)``.
    """

    state_type = LIFState
    initial_values = {"v": "v_leak"}

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFParameters = LIFParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=lif_step,
            activation_sparse=lif_step_sparse,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )


class LIFRecurrent(_RecurrentAdjoint, SNNRecurrent):
    """A recurrently connected LIF layer *with* time: input ``(T, batch, input_size)``.

    Parameters: as :class:`LIFRecurrentCell`, plus ``record_states``.
    """

    state_type = LIFState
    initial_values = {"v": "v_leak"}

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFParameters = LIFParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=lif_step,
            activation_sparse=lif_step_sparse,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )
