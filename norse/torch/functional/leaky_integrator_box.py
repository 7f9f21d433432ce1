r"""Box leaky integrators: a leaky membrane without a synaptic current.

.. math::
    \dot{v} = \tau_{\text{mem}}^{-1} (v_{\text{leak}} - v + i_{\text{in}})

The input acts on the voltage at once ("box" shaped current pulses).
"""

from typing import NamedTuple, Tuple

import torch

from norse.torch.functional.conventions import documented_fields, step_arguments


@documented_fields()
class LIBoxState(NamedTuple):
    """State of a box leaky integrator."""

    v: torch.Tensor


@documented_fields()
class LIBoxParameters(NamedTuple):
    """Parameters of a box leaky integrator."""

    tau_mem_inv: torch.Tensor = torch.as_tensor(1.0 / 1e-2)
    v_leak: torch.Tensor = torch.as_tensor(0.0)


@step_arguments(output="The new voltage")
def li_box_feed_forward_step(
    input_tensor: torch.Tensor,
    state: LIBoxState,
    p: LIBoxParameters = LIBoxParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIBoxState]:
    """One Euler step of a box leaky integrator:
    ``v_new = v + dt * tau_mem_inv * ((v_leak - v) + input)``.
    """
    v_new = state.v + dt * p.tau_mem_inv * ((p.v_leak - state.v) + input_tensor)
    return v_new, LIBoxState(v_new)


@step_arguments(output="The new voltage")
def li_box_step(
    input_tensor: torch.Tensor,
    state: LIBoxState,
    input_weights: torch.Tensor,
    p: LIBoxParameters = LIBoxParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIBoxState]:
    """:func:`li_box_feed_forward_step` behind a linear synapse."""
    return li_box_feed_forward_step(
        torch.nn.functional.linear(input_tensor, input_weights), state, p, dt
    )
