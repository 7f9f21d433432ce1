r"""LIF neurons with an absolute refractory period.

A :mod:`.lif` neuron plus a refractory counter :math:`\rho` (in *time steps*). A spike
sets :math:`\rho = \rho_{\text{reset}}`; while :math:`\rho > 0` the neuron cannot spike
and its voltage is held, and :math:`\rho` counts down by one per step. With the default
``rho_reset = 5`` a neuron is silent for the 5 steps after each spike. The synaptic
current keeps integrating during the refractory period.

One step (the update order of Norse 1.1):

1. the plain LIF step gives ``z_lif`` and ``v_lif`` (see :func:`.lif_feed_forward_step`);
2. ``r = threshold(rho, method, alpha)`` (1 while refractory);
3. ``v_new = (1 - r) * v_lif + r * v_old``, ``z = (1 - r) * z_lif``;
4. ``rho_new = (1 - z) * relu(rho - r) + z * rho_reset``.

The parameters and states nest the LIF ones: ``p.lif.v_th``, ``state.lif.v``,
``state.rho``.
"""

from typing import NamedTuple, Tuple, Union

import torch

from norse.torch.functional.conventions import documented_fields, step_arguments
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    LIFState,
    lif_feed_forward_step,
    lif_step,
    lif_step_sparse,
)
from norse.torch.functional.threshold import Alpha, threshold


@documented_fields(lif="parameters of the underlying LIF neuron")
class LIFRefracParameters(NamedTuple):
    """Parameters of a refractory LIF neuron."""

    lif: LIFParameters = LIFParameters()
    rho_reset: torch.Tensor = torch.as_tensor(5.0)


@documented_fields(lif="state of the underlying LIF neuron")
class LIFRefracState(NamedTuple):
    """State of a recurrent refractory LIF neuron."""

    lif: LIFState
    rho: torch.Tensor


@documented_fields(lif="state of the underlying LIF neuron")
class LIFRefracFeedForwardState(NamedTuple):
    """State of a feed-forward refractory LIF neuron."""

    lif: LIFFeedForwardState
    rho: torch.Tensor


def refractory_update(
    v_old: torch.Tensor,
    rho: torch.Tensor,
    z_new: torch.Tensor,
    v_new: torch.Tensor,
    rho_reset: torch.Tensor,
    method: str,
    alpha: Alpha,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Applies the refractory period to one neuron step (steps 2-4 of the module
    docstring); shared by every refractory model.

    Returns:
        ``(v, z, rho)`` after the refractory update.
    """
    refractory = threshold(rho, method, alpha)
    v = (1 - refractory) * v_new + refractory * v_old
    z = (1 - refractory) * z_new
    rho_new = (1 - z) * torch.nn.functional.relu(rho - refractory) + z * rho_reset
    return v, z, rho_new


def compute_refractory_update(
    state: Union[LIFRefracState, LIFRefracFeedForwardState],
    z_new: torch.Tensor,
    v_new: torch.Tensor,
    p: LIFRefracParameters = LIFRefracParameters(),
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The refractory update of Norse 1.1's API: ``(v, z, rho)`` given the state before
    the step and the spikes and voltage of the plain LIF step."""
    return refractory_update(
        state.lif.v, state.rho, z_new, v_new, p.rho_reset, p.lif.method, p.lif.alpha
    )


@step_arguments()
def lif_refrac_feed_forward_step(
    input_tensor: torch.Tensor,
    state: LIFRefracFeedForwardState,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFRefracFeedForwardState]:
    """One Euler step of a feed-forward refractory LIF neuron."""
    z_lif, lif_state = lif_feed_forward_step(input_tensor, state.lif, p.lif, dt)
    v, z, rho = compute_refractory_update(state, z_lif, lif_state.v, p)
    return z, LIFRefracFeedForwardState(LIFFeedForwardState(v, lif_state.i), rho)


@step_arguments(
    returns="Spikes of shape ``(batch, hidden_size)`` and the new "
    ":class:`LIFRefracState` (its ``lif.z`` holds the spikes after the refractory mask)."
)
def lif_refrac_step(
    input_tensor: torch.Tensor,
    state: LIFRefracState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFRefracState]:
    """One Euler step of a recurrently connected refractory LIF neuron."""
    z_lif, lif_state = lif_step(
        input_tensor, state.lif, input_weights, recurrent_weights, p.lif, dt
    )
    v, z, rho = compute_refractory_update(state, z_lif, lif_state.v, p)
    return z, LIFRefracState(LIFState(z, v, lif_state.i), rho)


@step_arguments()
def lif_refrac_step_sparse(
    input_tensor: torch.Tensor,
    state: LIFRefracState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFRefracState]:
    """:func:`lif_refrac_step` for sparse input spikes (see
    :func:`~norse.torch.functional.lif.lif_step_sparse`): the same dynamics, the spikes
    (returned and in ``state.lif.z``) sparse. Norse 1.1 has this name, but its version
    fails (it subtracts the sparse spikes from a number).
    """
    z_lif, lif_state = lif_step_sparse(
        input_tensor, state.lif, input_weights, recurrent_weights, p.lif, dt
    )
    dense = z_lif.to_dense() if z_lif.is_sparse else z_lif
    v, z, rho = compute_refractory_update(state, dense, lif_state.v, p)
    z = z.to_sparse()
    return z, LIFRefracState(LIFState(z, v, lif_state.i), rho)
