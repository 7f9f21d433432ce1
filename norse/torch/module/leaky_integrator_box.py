r"""Box leaky integrator layers: voltage driven directly by the input (no current state).

Equations: :mod:`norse.torch.functional.leaky_integrator_box`.
"""

from norse.torch.functional.leaky_integrator_box import (
    LIBoxParameters,
    LIBoxState,
    li_box_feed_forward_step,
)
from norse.torch.module.snn import SNN, SNNCell


class LIBoxCell(SNNCell):
    """One Euler step of a box leaky integrator; input and voltage ``(batch, ...)``.

    Parameters:
        p (LIBoxParameters): parameters
        dt (float): time step (s), default 0.001
    """

    state_type = LIBoxState
    initial_values = {"v": "v_leak"}

    def __init__(self, p: LIBoxParameters = LIBoxParameters(), **kwargs):
        super().__init__(
            activation=li_box_feed_forward_step, state_fallback=None, p=p, **kwargs
        )


class LIBox(SNN):
    """A box leaky integrator layer *with* time: input ``(T, batch, ...)``.

    Parameters:
        p (LIBoxParameters): parameters
        dt (float): time step (s), default 0.001
        record_states (bool): return the states of all time steps
    """

    state_type = LIBoxState
    initial_values = {"v": "v_leak"}

    def __init__(self, p: LIBoxParameters = LIBoxParameters(), **kwargs):
        super().__init__(
            activation=li_box_feed_forward_step, state_fallback=None, p=p, **kwargs
        )
