r"""Adaptive exponential LIF neurons with an absolute refractory period.

The :mod:`.lif_adex` neuron with the refractory counter of :mod:`.lif_refrac`: after a
spike, ``rho = rho_reset`` steps in which the neuron cannot spike and its voltage is held
(current and adaptation keep evolving). The parameters and states nest the AdEx ones:
``p.lif_adex.v_th``, ``state.lif_adex.v``, ``state.rho``.

Unlike Norse 1.1, a spike suppressed by the refractory period does not increase the
adaptation current either (Norse 1.1 added ``adaptation_spike`` for it).
"""

from typing import NamedTuple, Tuple, Union

import torch

from norse.torch.functional.conventions import documented_fields, step_arguments
from norse.torch.functional.lif_adex import (
    LIFAdExFeedForwardState,
    LIFAdExParameters,
    LIFAdExState,
    lif_adex_feed_forward_step,
    lif_adex_step,
)
from norse.torch.functional.lif_refrac import refractory_update


@documented_fields(lif_adex="parameters of the underlying AdEx neuron")
class LIFAdExRefracParameters(NamedTuple):
    """Parameters of a refractory adaptive exponential LIF neuron."""

    lif_adex: LIFAdExParameters = LIFAdExParameters()
    rho_reset: torch.Tensor = torch.as_tensor(5.0)


@documented_fields(lif_adex="state of the underlying AdEx neuron")
class LIFAdExRefracState(NamedTuple):
    """State of a recurrent refractory AdEx neuron."""

    lif_adex: LIFAdExState
    rho: torch.Tensor


@documented_fields(lif_adex="state of the underlying AdEx neuron")
class LIFAdExRefracFeedForwardState(NamedTuple):
    """State of a feed-forward refractory AdEx neuron."""

    lif_adex: LIFAdExFeedForwardState
    rho: torch.Tensor


def compute_refractory_update(
    state: Union[LIFAdExRefracState, LIFAdExRefracFeedForwardState],
    z_new: torch.Tensor,
    v_new: torch.Tensor,
    p: LIFAdExRefracParameters = LIFAdExRefracParameters(),
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The refractory update (Norse 1.1's API): ``(v, z, rho)`` given the state before
    the step and the spikes and voltage of the plain AdEx step."""
    return refractory_update(
        state.lif_adex.v,
        state.rho,
        z_new,
        v_new,
        p.rho_reset,
        p.lif_adex.method,
        p.lif_adex.alpha,
    )


def _refractory_adaptation(
    a: torch.Tensor, z_adex: torch.Tensor, z: torch.Tensor, p: LIFAdExRefracParameters
) -> torch.Tensor:
    """Takes back the spike-triggered adaptation of spikes the refractory mask removed."""
    return a - (z_adex - z) * p.lif_adex.adaptation_spike


@step_arguments()
def lif_adex_refrac_feed_forward_step(
    input_tensor: torch.Tensor,
    state: LIFAdExRefracFeedForwardState,
    p: LIFAdExRefracParameters = LIFAdExRefracParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFAdExRefracFeedForwardState]:
    """One Euler step of a feed-forward refractory AdEx neuron."""
    z_adex, adex = lif_adex_feed_forward_step(
        input_tensor, state.lif_adex, p.lif_adex, dt
    )
    v, z, rho = compute_refractory_update(state, z_adex, adex.v, p)
    a = _refractory_adaptation(adex.a, z_adex, z, p)
    return z, LIFAdExRefracFeedForwardState(LIFAdExFeedForwardState(v, adex.i, a), rho)


@step_arguments()
def lif_adex_refrac_step(
    input_tensor: torch.Tensor,
    state: LIFAdExRefracState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFAdExRefracParameters = LIFAdExRefracParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFAdExRefracState]:
    """One Euler step of a recurrently connected refractory AdEx neuron."""
    z_adex, adex = lif_adex_step(
        input_tensor, state.lif_adex, input_weights, recurrent_weights, p.lif_adex, dt
    )
    v, z, rho = compute_refractory_update(state, z_adex, adex.v, p)
    a = _refractory_adaptation(adex.a, z_adex, z, p)
    return z, LIFAdExRefracState(LIFAdExState(z, v, adex.i, a), rho)
