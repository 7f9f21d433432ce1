r"""Integrate-and-fire (IAF) neurons: a perfect (non-leaky) integrator with a threshold.

``v_new = v + input``; ``z = threshold(v_new - v_th)``; ``v_new = (1 - z) v_new + z v_reset``.
The step does not depend on ``dt``: the input is the charge delivered in one step.
"""

from typing import NamedTuple, Tuple

import torch

from norse.torch.functional.conventions import documented_fields, step_arguments
from norse.torch.functional.synapse import recurrent_jump
from norse.torch.functional.threshold import threshold

_UNUSED_DT = (
    "unused (the input is the charge of one step); kept for a uniform signature"
)


@documented_fields()
class IAFParameters(NamedTuple):
    """Parameters of an integrate-and-fire neuron."""

    v_th: torch.Tensor = torch.as_tensor(1.0)
    v_reset: torch.Tensor = torch.as_tensor(0.0)
    method: str = "super"
    alpha: float = torch.as_tensor(100.0)


@documented_fields()
class IAFState(NamedTuple):
    """State of a recurrent IAF neuron."""

    z: torch.Tensor
    v: torch.Tensor


@documented_fields()
class IAFFeedForwardState(NamedTuple):
    """State of a feed-forward IAF neuron."""

    v: torch.Tensor


def _iaf_dynamics(
    v: torch.Tensor, p: IAFParameters
) -> Tuple[torch.Tensor, torch.Tensor]:
    z = threshold(v - p.v_th, p.method, p.alpha)
    return z, (1 - z) * v + z * p.v_reset


@step_arguments(dt=_UNUSED_DT)
def iaf_feed_forward_step(
    input_tensor: torch.Tensor,
    state: IAFFeedForwardState,
    p: IAFParameters = IAFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, IAFFeedForwardState]:
    """One step of an IAF neuron driven by an input charge."""
    z, v_new = _iaf_dynamics(state.v + input_tensor, p)
    return z, IAFFeedForwardState(v=v_new)


@step_arguments(dt=_UNUSED_DT)
def iaf_step(
    input_tensor: torch.Tensor,
    state: IAFState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: IAFParameters = IAFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, IAFState]:
    """One step of a recurrent IAF neuron with linear input and recurrent synapses."""
    v = recurrent_jump(state.v, input_tensor, state.z, input_weights, recurrent_weights)
    z, v_new = _iaf_dynamics(v, p)
    return z, IAFState(z=z, v=v_new)
