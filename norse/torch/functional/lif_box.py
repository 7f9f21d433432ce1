r"""Box LIF neurons: LIF without a synaptic current, so input moves the voltage at once.

.. math::
    \dot{v} = \tau_{\text{mem}}^{-1} (v_{\text{leak}} - v + i_{\text{in}}), \qquad
    z = \Theta(v - v_{\text{th}})

One Euler step: ``v_dec = v + dt * tau_mem_inv * (input + v_leak - v)``,
``z = threshold(v_dec - v_th)``, ``v_new = reset_method(z, v_dec, v_reset, v_th)``
(:func:`.reset_value` by default, or :func:`.reset_subtract`).
"""

from typing import NamedTuple, Tuple

import torch

from norse.torch.functional.conventions import documented_fields, step_arguments
from norse.torch.functional.reset import ResetMethod, reset_value
from norse.torch.functional.state_tuple import (
    MultipleInheritanceNamedTupleMeta,
    StateTuple,
)
from norse.torch.functional.synapse import recurrent_input
from norse.torch.functional.threshold import threshold


@documented_fields(
    reset_method="``(z, v, v_reset, v_th) -> v``: :func:`.reset_value` or "
    ":func:`.reset_subtract`"
)
class LIFBoxParameters(StateTuple, metaclass=MultipleInheritanceNamedTupleMeta):
    """Parameters of a box LIF neuron."""

    tau_mem_inv: torch.Tensor = torch.as_tensor(1.0 / 1e-2)
    v_leak: torch.Tensor = torch.as_tensor(0.0)
    v_th: torch.Tensor = torch.as_tensor(1.0)
    v_reset: torch.Tensor = torch.as_tensor(0.0)
    method: str = "super"
    alpha: float = torch.as_tensor(100.0)
    reset_method: ResetMethod = reset_value


@documented_fields()
class LIFBoxState(NamedTuple):
    """State of a recurrent box LIF neuron."""

    z: torch.Tensor
    v: torch.Tensor


@documented_fields()
class LIFBoxFeedForwardState(NamedTuple):
    """State of a feed-forward box LIF neuron."""

    v: torch.Tensor


def _lif_box_dynamics(
    input_tensor: torch.Tensor, v: torch.Tensor, p: LIFBoxParameters, dt: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    v_decayed = v + dt * p.tau_mem_inv * (input_tensor + p.v_leak - v)
    z = threshold(v_decayed - p.v_th, p.method, p.alpha)
    return z, p.reset_method(z, v_decayed, p.v_reset, p.v_th)


@step_arguments()
def lif_box_feed_forward_step(
    input_tensor: torch.Tensor,
    state: LIFBoxFeedForwardState,
    p: LIFBoxParameters = LIFBoxParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFBoxFeedForwardState]:
    """One Euler step of a box LIF neuron driven by an input current."""
    z, v_new = _lif_box_dynamics(input_tensor, state.v, p, dt)
    return z, LIFBoxFeedForwardState(v=v_new)


@step_arguments()
def lif_box_step(
    input_tensor: torch.Tensor,
    state: LIFBoxState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFBoxParameters = LIFBoxParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFBoxState]:
    """One Euler step of a recurrent box LIF neuron; the input is
    ``input @ input_weights.T + state.z @ recurrent_weights.T``.
    """
    current = recurrent_input(input_tensor, state.z, input_weights, recurrent_weights)
    z, v_new = _lif_box_dynamics(current, state.v, p, dt)
    return z, LIFBoxState(z=z, v=v_new)
