r"""Exponential leaky integrate-and-fire (LIFEx) neurons.

After N. Fourcaud-Trocmé, D. Hansel, C. van Vreeswijk and N. Brunel, "How spike
generation mechanisms determine the neuronal response to fluctuating inputs" (2003).
An exponential term makes the voltage run away once it approaches the threshold, a
smooth model of spike initiation.

Dynamics (time in seconds, ``tau_*_inv`` in 1/s):

.. math::
    \begin{align*}
        \dot{v} &= \tau_{\text{mem}}^{-1} \left(v_{\text{leak}} - v + i
                   + \Delta_T \exp\left(\frac{v - v_{\text{th}}}{\Delta_T}\right)\right) \\
        \dot{i} &= -\tau_{\text{syn}}^{-1} i
    \end{align*}

with :math:`z = \Theta(v - v_{\text{th}})`, :math:`v \leftarrow (1 - z) v + z
v_{\text{reset}}` and :math:`i \leftarrow i + i_{\text{in}}`. :math:`\Delta_T` (the
sharpness of spike initiation) must be positive.

One explicit Euler step (the update order of Norse 1.1, as in :mod:`.lif`):

1. input jump:  ``i_jump = i + input``
2. voltage:     ``v_dec = v + dt * tau_mem_inv * (v_leak - v + delta_T * exp((v - v_th) / delta_T) + i_jump)``
3. current:     ``i_dec = i_jump - dt * tau_syn_inv * i_jump``
4. spike/reset: ``z = threshold(v_dec - v_th)``, ``v_new = (1 - z) * v_dec + z * v_reset``
"""

from typing import NamedTuple, Tuple

import torch

from norse.torch.functional.conventions import documented_fields, step_arguments
from norse.torch.functional.synapse import recurrent_jump
from norse.torch.functional.threshold import threshold


@documented_fields()
class LIFExParameters(NamedTuple):
    """Parameters of an exponential LIF neuron."""

    delta_T: torch.Tensor = torch.as_tensor(0.5)
    tau_syn_inv: torch.Tensor = torch.as_tensor(1.0 / 5e-3)
    tau_mem_inv: torch.Tensor = torch.as_tensor(1.0 / 1e-2)
    v_leak: torch.Tensor = torch.as_tensor(0.0)
    v_th: torch.Tensor = torch.as_tensor(1.0)
    v_reset: torch.Tensor = torch.as_tensor(0.0)
    method: str = "super"
    alpha: float = torch.as_tensor(100.0)


@documented_fields()
class LIFExState(NamedTuple):
    """State of a recurrent exponential LIF neuron."""

    z: torch.Tensor
    v: torch.Tensor
    i: torch.Tensor


@documented_fields()
class LIFExFeedForwardState(NamedTuple):
    """State of a feed-forward exponential LIF neuron."""

    v: torch.Tensor
    i: torch.Tensor


def exponential_voltage_drive(v: torch.Tensor, p: NamedTuple) -> torch.Tensor:
    r"""The membrane drive without input and adaptation:
    :math:`v_{\text{leak}} - v + \Delta_T \exp((v - v_{\text{th}}) / \Delta_T)`.

    ``p`` needs ``v_leak``, ``v_th`` and ``delta_T`` (:class:`LIFExParameters` or
    :class:`.LIFAdExParameters`).
    """
    return p.v_leak - v + p.delta_T * torch.exp((v - p.v_th) / p.delta_T)


def _lif_ex_dynamics(
    i_jump: torch.Tensor, v: torch.Tensor, p: LIFExParameters, dt: float
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Euler update after the current jump: returns (spikes, new v, decayed i)."""
    v_decayed = v + dt * p.tau_mem_inv * (exponential_voltage_drive(v, p) + i_jump)
    i_decayed = i_jump - dt * p.tau_syn_inv * i_jump
    z = threshold(v_decayed - p.v_th, p.method, p.alpha)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    return z, v_new, i_decayed


@step_arguments()
def lif_ex_feed_forward_step(
    input_tensor: torch.Tensor,
    state: LIFExFeedForwardState,
    p: LIFExParameters = LIFExParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFExFeedForwardState]:
    """One Euler step of a feed-forward exponential LIF neuron."""
    z, v_new, i_decayed = _lif_ex_dynamics(state.i + input_tensor, state.v, p, dt)
    return z, LIFExFeedForwardState(v_new, i_decayed)


@step_arguments()
def lif_ex_step(
    input_tensor: torch.Tensor,
    state: LIFExState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFExParameters = LIFExParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFExState]:
    """One Euler step of a recurrently connected exponential LIF neuron.

    The current jumps by ``input @ input_weights.T + state.z @ recurrent_weights.T``.
    """
    i_jump = recurrent_jump(
        state.i, input_tensor, state.z, input_weights, recurrent_weights
    )
    z, v_new, i_decayed = _lif_ex_dynamics(i_jump, state.v, p, dt)
    return z, LIFExState(z, v_new, i_decayed)


def lif_ex_current_encoder(
    input_current: torch.Tensor,
    voltage: torch.Tensor,
    p: LIFExParameters = LIFExParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """One Euler step of an exponential LIF membrane driven directly by
    ``input_current`` (no synapse); the reset is ``v - z * (v - v_reset)``.

    Returns:
        ``(spikes, voltage)`` of the shape of ``input_current``.
    """
    voltage = voltage + dt * p.tau_mem_inv * (
        exponential_voltage_drive(voltage, p) + input_current
    )
    z = threshold(voltage - p.v_th, p.method, p.alpha)
    voltage = voltage - z * (voltage - p.v_reset)
    return z, voltage
