r"""Integrate-and-fire (IAF) layers in the four module forms.

Equations: :mod:`norse.torch.functional.iaf`. The first state has ``v = v_reset``; the
feed-forward forms start from ``p.v_reset`` itself, so a trainable ``v_reset`` also gets
the gradient of the start (as in Norse 1.1).
"""

from norse.torch.functional.iaf import (
    IAFFeedForwardState,
    IAFParameters,
    IAFState,
    iaf_feed_forward_step,
    iaf_step,
)
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell


class IAFCell(SNNCell):
    """One step of a feed-forward IAF layer; input, spikes and state ``(batch, ...)``.

    Parameters:
        p (IAFParameters): parameters
        dt (float): time step (s), default 0.001 (IAF dynamics do not depend on it)
    """

    state_type = IAFFeedForwardState
    initial_values = {"v": "v_reset"}
    differentiable_initial_values = True  # Norse 1.1 starts from p.v_reset itself

    def __init__(self, p: IAFParameters = IAFParameters(), **kwargs):
        super().__init__(
            activation=iaf_feed_forward_step, state_fallback=None, p=p, **kwargs
        )


class IAF(SNN):
    """A feed-forward IAF layer *with* time: input ``(T, batch, ...)``."""

    state_type = IAFFeedForwardState
    initial_values = {"v": "v_reset"}
    differentiable_initial_values = True  # Norse 1.1 starts from p.v_reset itself

    def __init__(self, p: IAFParameters = IAFParameters(), **kwargs):
        super().__init__(
            activation=iaf_feed_forward_step, state_fallback=None, p=p, **kwargs
        )


class IAFRecurrentCell(SNNRecurrentCell):
    """One step of a recurrent IAF layer: input ``(batch, input_size)``."""

    state_type = IAFState
    initial_values = {"v": "v_reset"}

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: IAFParameters = IAFParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=iaf_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )


class IAFRecurrent(SNNRecurrent):
    """A recurrent IAF layer *with* time: input ``(T, batch, input_size)``."""

    state_type = IAFState
    initial_values = {"v": "v_reset"}

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: IAFParameters = IAFParameters(),
        **kwargs,
    ):
        super().__init__(
            activation=iaf_step,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=p,
            **kwargs,
        )
