r"""Adaptive exponential leaky integrate-and-fire (LIFAdEx) neurons.

After R. Brette and W. Gerstner, "Adaptive exponential integrate-and-fire model as an
effective description of neuronal activity" (2005): the exponential LIF of
:mod:`.lif_ex` plus an adaptation current :math:`a`, driven by the voltage
(sub-threshold adaptation) and by every spike (spike-triggered adaptation).

Dynamics (time in seconds, ``tau_*_inv`` in 1/s):

.. math::
    \begin{align*}
        \dot{v} &= \tau_{\text{mem}}^{-1} \left(v_{\text{leak}} - v + i - a
                   + \Delta_T \exp\left(\frac{v - v_{\text{th}}}{\Delta_T}\right)\right) \\
        \dot{i} &= -\tau_{\text{syn}}^{-1} i \\
        \dot{a} &= \tau_{\text{ada}}^{-1} \left(a_{\text{current}} (v - v_{\text{leak}}) - a\right)
    \end{align*}

with :math:`z = \Theta(v - v_{\text{th}})` and the transitions :math:`v \leftarrow (1 - z)
v + z v_{\text{reset}}`, :math:`a \leftarrow a + a_{\text{spike}} z` and :math:`i
\leftarrow i + i_{\text{in}}` (:math:`a_{\text{current}}` is ``adaptation_current``,
:math:`a_{\text{spike}}` is ``adaptation_spike``).

One explicit Euler step (the update order of Norse 1.1): the current jumps first
(``i_jump = i + input``); ``v`` (using ``i_jump``), ``i`` and ``a`` then take one Euler
step from the old ``v`` and ``a``; finally spike, reset and spike-triggered adaptation.
"""

from typing import NamedTuple, Tuple

import torch

from norse.torch.functional.conventions import documented_fields, step_arguments
from norse.torch.functional.lif_ex import exponential_voltage_drive
from norse.torch.functional.synapse import recurrent_jump
from norse.torch.functional.threshold import threshold


@documented_fields(
    adaptation_current="coupling of the voltage to the adaptation current "
    "(sub-threshold adaptation); default 4",
    adaptation_spike="jump of the adaptation current per spike; default 0.02",
    tau_ada_inv="inverse adaptation time constant (1/s); default 2",
)
class LIFAdExParameters(NamedTuple):
    """Parameters of an adaptive exponential LIF neuron."""

    adaptation_current: torch.Tensor = torch.as_tensor(4.0)
    adaptation_spike: torch.Tensor = torch.as_tensor(0.02)
    delta_T: torch.Tensor = torch.as_tensor(0.5)
    tau_ada_inv: torch.Tensor = torch.as_tensor(2.0)
    tau_syn_inv: torch.Tensor = torch.as_tensor(1.0 / 5e-3)
    tau_mem_inv: torch.Tensor = torch.as_tensor(1.0 / 1e-2)
    v_leak: torch.Tensor = torch.as_tensor(0.0)
    v_th: torch.Tensor = torch.as_tensor(1.0)
    v_reset: torch.Tensor = torch.as_tensor(0.0)
    method: str = "super"
    alpha: float = torch.as_tensor(100.0)


@documented_fields()
class LIFAdExState(NamedTuple):
    """State of a recurrent adaptive exponential LIF neuron."""

    z: torch.Tensor
    v: torch.Tensor
    i: torch.Tensor
    a: torch.Tensor


@documented_fields()
class LIFAdExFeedForwardState(NamedTuple):
    """State of a feed-forward adaptive exponential LIF neuron."""

    v: torch.Tensor
    i: torch.Tensor
    a: torch.Tensor


def _lif_adex_dynamics(
    i_jump: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor,
    p: LIFAdExParameters,
    dt: float,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Euler update after the current jump: returns (spikes, new v, decayed i, new a)."""
    v_decayed = v + dt * p.tau_mem_inv * (exponential_voltage_drive(v, p) + i_jump - a)
    i_decayed = i_jump - dt * p.tau_syn_inv * i_jump
    a_decayed = a + dt * p.tau_ada_inv * (p.adaptation_current * (v - p.v_leak) - a)
    z = threshold(v_decayed - p.v_th, p.method, p.alpha)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    a_new = a_decayed + z * p.adaptation_spike
    return z, v_new, i_decayed, a_new


@step_arguments()
def lif_adex_feed_forward_step(
    input_tensor: torch.Tensor,
    state: LIFAdExFeedForwardState,
    p: LIFAdExParameters = LIFAdExParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFAdExFeedForwardState]:
    """One Euler step of a feed-forward adaptive exponential LIF neuron."""
    z, v_new, i_decayed, a_new = _lif_adex_dynamics(
        state.i + input_tensor, state.v, state.a, p, dt
    )
    return z, LIFAdExFeedForwardState(v_new, i_decayed, a_new)


@step_arguments()
def lif_adex_step(
    input_tensor: torch.Tensor,
    state: LIFAdExState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFAdExParameters = LIFAdExParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFAdExState]:
    """One Euler step of a recurrently connected adaptive exponential LIF neuron.

    The current jumps by ``input @ input_weights.T + state.z @ recurrent_weights.T``.
    """
    i_jump = recurrent_jump(
        state.i, input_tensor, state.z, input_weights, recurrent_weights
    )
    z, v_new, i_decayed, a_new = _lif_adex_dynamics(i_jump, state.v, state.a, p, dt)
    return z, LIFAdExState(z, v_new, i_decayed, a_new)


def lif_adex_current_encoder(
    input_current: torch.Tensor,
    voltage: torch.Tensor,
    adaptation: torch.Tensor,
    p: LIFAdExParameters = LIFAdExParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Euler step of an adaptive exponential LIF membrane driven directly by
    ``input_current`` (no synapse); the reset is ``v - z * (v - v_reset)``.

    Unlike Norse 1.1 (which returned ``tau_ada_inv * (...)``, the rate of change without
    ``dt`` and without the old value), the returned adaptation is the Euler-updated
    current ``a + dt * tau_ada_inv * (adaptation_current * (v - v_leak) - a) +
    adaptation_spike * z``, computed from the voltage before the step.

    Returns:
        ``(spikes, voltage, adaptation)`` of the shape of ``input_current``.
    """
    v_decayed = voltage + dt * p.tau_mem_inv * (
        exponential_voltage_drive(voltage, p) + input_current - adaptation
    )
    z = threshold(v_decayed - p.v_th, p.method, p.alpha)
    adaptation = (
        adaptation
        + dt
        * p.tau_ada_inv
        * (p.adaptation_current * (voltage - p.v_leak) - adaptation)
        + z * p.adaptation_spike
    )
    v_new = v_decayed - z * (v_decayed - p.v_reset)
    return z, v_new, adaptation
