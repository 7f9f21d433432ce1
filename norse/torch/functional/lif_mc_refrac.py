r"""Multi-compartment LIF neurons with an absolute refractory period.

The compartments of :mod:`.lif_mc` with the refractory counter ``rho`` of
:mod:`.lif_refrac` (parameters :class:`.LIFRefracParameters`, states
:class:`.LIFRefracState` / :class:`.LIFRefracFeedForwardState`). While a compartment is
refractory (``rho > 0``) its leak and synaptic drive are switched off (the coupling to the
other compartments stays on) and it cannot spike.

One step (the update order of Norse 1.1, the input reaches ``i`` at the end):

1. ``r = threshold(rho)``;
   ``v_dec = v + (1 - r) * dt * tau_mem_inv * (v_leak - v + i) + dt * G v``;
   ``i_dec = i - dt * tau_syn_inv * i``
2. ``z = (1 - r) * threshold(v_dec - v_th)``; ``v_new = (1 - z) * v_dec + z * v_reset``
3. ``i_new = i_dec + input``; ``rho_new = (1 - z) * relu(rho - r) + z * rho_reset``

Two fixes over Norse 1.1: the coupling term is multiplied by ``dt`` (Norse 1.1 added
``G v`` without ``dt`` here, unlike in :mod:`.lif_mc`, so it grew with 1/dt), and
refractory compartments cannot spike (Norse 1.1 only switched their leak off).
"""

from typing import Tuple, Union

import torch

from norse.torch.functional.conventions import step_arguments
from norse.torch.functional.lif import LIFFeedForwardState, LIFState
from norse.torch.functional.lif_refrac import (
    LIFRefracFeedForwardState,
    LIFRefracParameters,
    LIFRefracState,
)
from norse.torch.functional.synapse import recurrent_jump
from norse.torch.functional.threshold import threshold


def _lif_mc_refrac_dynamics(
    state: Union[LIFRefracState, LIFRefracFeedForwardState],
    g_coupling: torch.Tensor,
    p: LIFRefracParameters,
    dt: float,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Steps 1-2 and the ``rho`` update: returns (spikes, new v, decayed i, new rho)."""
    lif = p.lif
    v, i, rho = state.lif.v, state.lif.i, state.rho
    refractory = threshold(rho, lif.method, lif.alpha)
    v_decayed = (
        v
        + (1 - refractory) * dt * lif.tau_mem_inv * (lif.v_leak - v + i)
        + dt * torch.nn.functional.linear(v, g_coupling)
    )
    i_decayed = i - dt * lif.tau_syn_inv * i
    z = (1 - refractory) * threshold(v_decayed - lif.v_th, lif.method, lif.alpha)
    v_new = (1 - z) * v_decayed + z * lif.v_reset
    rho_new = (1 - z) * torch.nn.functional.relu(rho - refractory) + z * p.rho_reset
    return z, v_new, i_decayed, rho_new


@step_arguments()
def lif_mc_refrac_step(
    input_tensor: torch.Tensor,
    state: LIFRefracState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    g_coupling: torch.Tensor,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFRefracState]:
    """One Euler step of recurrently connected refractory multi-compartment neurons."""
    z, v_new, i_decayed, rho_new = _lif_mc_refrac_dynamics(state, g_coupling, p, dt)
    i_new = recurrent_jump(
        i_decayed, input_tensor, state.lif.z, input_weights, recurrent_weights
    )
    return z, LIFRefracState(LIFState(z, v_new, i_new), rho_new)


@step_arguments(shape="(..., n)")
def lif_mc_refrac_feed_forward_step(
    input_tensor: torch.Tensor,
    state: LIFRefracFeedForwardState,
    g_coupling: torch.Tensor,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFRefracFeedForwardState]:
    """One Euler step of feed-forward refractory multi-compartment neurons."""
    z, v_new, i_decayed, rho_new = _lif_mc_refrac_dynamics(state, g_coupling, p, dt)
    return z, LIFRefracFeedForwardState(
        LIFFeedForwardState(v_new, i_decayed + input_tensor), rho_new
    )
