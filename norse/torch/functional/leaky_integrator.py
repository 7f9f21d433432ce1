r"""Leaky integrators (LI): a LIF membrane that never spikes; its voltage is the output.

.. math::
    \begin{align*}
        \dot{v} &= \tau_{\text{mem}}^{-1} (v_{\text{leak}} - v + i) \\
        \dot{i} &= -\tau_{\text{syn}}^{-1} i
    \end{align*}

One Euler step: ``i_jump = i + input``; ``v_new = v + dt * tau_mem_inv * ((v_leak - v) + i_jump)``;
``i_new = i_jump - dt * tau_syn_inv * i_jump``. Used as the read-out layer of spiking networks.
"""

from typing import NamedTuple, Tuple

import torch

from norse.torch.functional.conventions import documented_fields, step_arguments
from norse.torch.functional.sparse import spike_linear_unchecked


@documented_fields()
class LIState(NamedTuple):
    """State of a leaky integrator."""

    v: torch.Tensor
    i: torch.Tensor


@documented_fields()
class LIParameters(NamedTuple):
    """Parameters of a leaky integrator."""

    tau_syn_inv: torch.Tensor = torch.as_tensor(1.0 / 5e-3)
    tau_mem_inv: torch.Tensor = torch.as_tensor(1.0 / 1e-2)
    v_leak: torch.Tensor = torch.as_tensor(0.0)


def _li_dynamics(
    i_jump: torch.Tensor, state: LIState, p: LIParameters, dt: float
) -> Tuple[torch.Tensor, LIState]:
    v_new = state.v + dt * p.tau_mem_inv * ((p.v_leak - state.v) + i_jump)
    i_decayed = i_jump - dt * p.tau_syn_inv * i_jump
    return v_new, LIState(v_new, i_decayed)


@step_arguments(output="The new voltage")
def li_feed_forward_step(
    input_tensor: torch.Tensor,
    state: LIState,
    p: LIParameters = LIParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIState]:
    """One Euler step of a leaky integrator driven by an input current."""
    return _li_dynamics(state.i + input_tensor, state, p, dt)


@step_arguments(output="The new voltage")
def li_step(
    input_tensor: torch.Tensor,
    state: LIState,
    input_weights: torch.Tensor,
    p: LIParameters = LIParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIState]:
    """One Euler step of a leaky integrator behind a linear synapse.

    The weight product is :func:`~norse.torch.functional.sparse.spike_linear` with
    ``method="auto"``: the dense ``torch.nn.functional.linear`` unless the input is
    binary, sparse and large enough for the event-driven path to be faster (same result
    up to rounding).
    """
    i_jump = state.i + spike_linear_unchecked(input_tensor, input_weights)
    return _li_dynamics(i_jump, state, p, dt)
