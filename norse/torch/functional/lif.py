r"""Leaky integrate-and-fire (LIF) neurons with current-based synapses.

Dynamics (time in seconds, ``tau_*_inv`` in 1/s):

.. math::
    \begin{align*}
        \dot{v} &= \tau_{\text{mem}}^{-1} (v_{\text{leak}} - v + i) \\
        \dot{i} &= -\tau_{\text{syn}}^{-1} i
    \end{align*}

with the jump condition :math:`z = \Theta(v - v_{\text{th}})` and the transitions
:math:`v \leftarrow (1 - z) v + z v_{\text{reset}}` and :math:`i \leftarrow i + i_{\text{in}}`.

One explicit Euler step of length ``dt`` (the update order of Norse 1.1):

1. input jump:       ``i_jump = i + input``
2. voltage:          ``v_dec = v + dt * tau_mem_inv * ((v_leak - v) + i_jump)``
3. current decay:    ``i_dec = i_jump - dt * tau_syn_inv * i_jump``
4. spike:            ``z = threshold(v_dec - v_th, method, alpha)``
5. reset:            ``v_new = (1 - z) * v_dec + z * v_reset``

From rest with a constant input of 1.0 the voltage runs 0.1, 0.27, 0.487, 0.7335,
0.9963 and spikes at the sixth step.
"""

from typing import NamedTuple, Tuple

import torch

from norse.torch.functional.conventions import (
    documented_fields,
    integrate,
    step_arguments,
)
from norse.torch.functional.state_tuple import (
    MultipleInheritanceNamedTupleMeta,
    StateTuple,
)
from norse.torch.functional.synapse import recurrent_jump
from norse.torch.functional.threshold import threshold


@documented_fields(
    method='surrogate gradient method, see :mod:`.threshold` (``"adjoint"`` '
    "selects adjoint gradients in the modules that support it)"
)
class LIFParameters(StateTuple, metaclass=MultipleInheritanceNamedTupleMeta):
    """Parameters of a LIF neuron."""

    tau_syn_inv: torch.Tensor = torch.as_tensor(1.0 / 5e-3)
    tau_mem_inv: torch.Tensor = torch.as_tensor(1.0 / 1e-2)
    v_leak: torch.Tensor = torch.as_tensor(0.0)
    v_th: torch.Tensor = torch.as_tensor(1.0)
    v_reset: torch.Tensor = torch.as_tensor(0.0)
    method: str = "super"
    alpha: float = torch.as_tensor(100.0)


#: Biologically scaled parameters (mV, time constants in 1/ms as in Norse 1.1).
default_bio_parameters = LIFParameters(
    tau_syn_inv=torch.as_tensor(1 / 0.5),
    tau_mem_inv=torch.as_tensor(1 / 20.0),
    v_leak=torch.as_tensor(-65.0),
    v_th=torch.as_tensor(-50.0),
    v_reset=torch.as_tensor(-65.0),
)


@documented_fields()
class LIFState(NamedTuple):
    """State of a recurrent LIF neuron."""

    z: torch.Tensor
    v: torch.Tensor
    i: torch.Tensor


default_bio_initial_state = LIFState(
    z=torch.as_tensor(0.0), v=torch.as_tensor(-65.0), i=torch.as_tensor(0.0)
)


@documented_fields()
class LIFFeedForwardState(NamedTuple):
    """State of a feed-forward LIF neuron."""

    v: torch.Tensor
    i: torch.Tensor


def _lif_dynamics(
    i_jump: torch.Tensor, v: torch.Tensor, p: LIFParameters, dt: float
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Euler update after the current jump: returns (spikes, decayed v, decayed i)."""
    v_decayed = v + dt * p.tau_mem_inv * ((p.v_leak - v) + i_jump)
    i_decayed = i_jump - dt * p.tau_syn_inv * i_jump
    z = threshold(v_decayed - p.v_th, p.method, p.alpha)
    return z, v_decayed, i_decayed


@step_arguments()
def lif_feed_forward_step(
    input_spikes: torch.Tensor,
    state: LIFFeedForwardState,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFFeedForwardState]:
    """One Euler step of a LIF neuron driven by an input current.

    ``input_spikes`` is the synaptic input of this step (e.g. the output of a
    ``Linear`` or ``Conv2d``), of the shape of the state.
    """
    i_jump = state.i + input_spikes
    z, v_decayed, i_decayed = _lif_dynamics(i_jump, state.v, p, dt)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    return z, LIFFeedForwardState(v=v_new, i=i_decayed)


@step_arguments()
def lif_step(
    input_spikes: torch.Tensor,
    state: LIFState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFState]:
    """One Euler step of a recurrently connected LIF neuron.

    The current jumps by ``input_spikes @ input_weights.T + state.z @ recurrent_weights.T``.
    The reset uses detached spikes (as in Norse 1.1), so gradients reach the voltage
    only through the threshold's surrogate.
    """
    i_jump = recurrent_jump(
        state.i, input_spikes, state.z, input_weights, recurrent_weights
    )
    z, v_decayed, i_decayed = _lif_dynamics(i_jump, state.v, p, dt)
    z_reset = z.detach()
    v_new = (1 - z_reset) * v_decayed + z_reset * p.v_reset
    return z, LIFState(z, v_new, i_decayed)


@step_arguments()
def lif_step_sparse(
    input_spikes: torch.Tensor,
    state: LIFState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFState]:
    """:func:`lif_step` for sparse (COO) input spikes; returns sparse spikes."""
    i_jump = (
        state.i
        + torch.sparse.mm(input_spikes, input_weights.t())
        + torch.sparse.mm(state.z, recurrent_weights.t())
    )
    z, v_decayed, i_decayed = _lif_dynamics(i_jump, state.v, p, dt)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    z_sparse = z.to_sparse()
    return z_sparse, LIFState(z_sparse, v_new, i_decayed)


@step_arguments()
def lif_feed_forward_step_sparse(
    input_tensor: torch.Tensor,
    state: LIFFeedForwardState,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFFeedForwardState]:
    """:func:`lif_feed_forward_step` returning sparse (COO) spikes."""
    z, state = lif_feed_forward_step(input_tensor.to_dense(), state, p, dt)
    return z.to_sparse(), state


@step_arguments()
def lif_feed_forward_integral(
    input_tensor: torch.Tensor,
    state: LIFFeedForwardState,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFFeedForwardState]:
    """Runs :func:`lif_feed_forward_step` over the first (time) dimension."""
    return integrate(lif_feed_forward_step, input_tensor, state, p, dt)


@step_arguments()
def lif_step_integral(
    input_tensor: torch.Tensor,
    state: LIFState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFState]:
    """Runs :func:`lif_step` over the first (time) dimension."""
    return integrate(
        lif_step, input_tensor, state, input_weights, recurrent_weights, p, dt
    )


def lif_current_encoder(
    input_current: torch.Tensor,
    voltage: torch.Tensor,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """One Euler step of a LIF membrane driven directly by ``input_current`` (no synapse).

    .. math::
        v \\leftarrow v + dt\\,\\tau_{mem}^{-1}(v_{leak} - v + I), \\quad
        z = \\Theta(v - v_{th}), \\quad v \\leftarrow v - z (v - v_{reset})

    Returns:
        ``(spikes, voltage)`` of the shape of ``input_current``.
    """
    voltage = voltage + dt * p.tau_mem_inv * ((p.v_leak - voltage) + input_current)
    z = threshold(voltage - p.v_th, p.method, p.alpha)
    voltage = voltage - z * (voltage - p.v_reset)
    return z, voltage
