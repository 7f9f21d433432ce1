r"""Box LIF layers: LIF without a synaptic current, in the four module forms.

Equations: :mod:`norse.torch.functional.lif_box`.
"""

from norse.torch.functional.lif_box import (
    LIFBoxFeedForwardState,
    LIFBoxParameters,
    LIFBoxState,
    lif_box_feed_forward_step,
    lif_box_step,
)
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell


class LIFBoxCell(SNNCell):
    """One Euler step of a feed-forward box LIF layer; input, spikes, state ``(batch, ...)``.

    Parameters:
        p (LIFBoxParameters): parameters (``reset_method`` picks value or subtract reset)
        dt (float): time step (s), default 0.001
    """

    state_type = LIFBoxFeedForwardState
    initial_values = {"v": "v_leak"}

    def __init__(self, p: LIFBoxParameters = LIFBoxParameters(), **kwargs):
        super().__init__(
            activation=lif_box_feed_forward_step, state_fallback=None, p=p, **kwargs
        )


class LIFBox(SNN):
    """A feed-forward box LIF layer *with* time: input ``(T, batch, ...)``.

    Parameters:
        p (LIFBoxParameters): parameters
        dt (float): time step (s), default 0.001
        record_states (bool): return the states of all time steps
    """

    state_type = LIFBoxFeedForwardState
    initial_values = {"v": "v_leak"}

    def __init__(self, p: LIFBoxParameters = LIFBoxParameters(), **kwargs):
        super().__init__(
            activation=lif_box_feed_forward_step, state_fallback=None, p=p, **kwargs
        )


class LIFBoxRecurrentCell(SNNRecurrentCell):
    """One step of a recurrent box LIF layer: input ``(batch, input_size)``.

    Parameters: ``input_size``, ``hidden_size``, ``p`` and the options of
    :class:`.SNNRecurrentCell`.
    """

    state_type = LIFBoxState
    initial_values = {"v": "v_leak"}

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFBoxParameters = LIFBoxParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=lif_box_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )


class LIFBoxRecurrent(SNNRecurrent):
    """A recurrent box LIF layer *with* time: input ``(T, batch, input_size)``."""

    state_type = LIFBoxState
    initial_values = {"v": "v_leak"}

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFBoxParameters = LIFBoxParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=lif_box_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )
