r"""Multi-compartment LIF neurons: LIF compartments coupled by a conductance matrix.

The ``hidden_size`` (last-dimension) units are compartments whose voltages couple
linearly through ``g_coupling`` (shape ``(n, n)``, in 1/s):

.. math::
    \begin{align*}
        \dot{v} &= \tau_{\text{mem}}^{-1} (v_{\text{leak}} - v + i) + G v \\
        \dot{i} &= -\tau_{\text{syn}}^{-1} i
    \end{align*}

(:math:`(G v)_k = \sum_j g_{kj} v_j`), with the LIF jump conditions of :mod:`.lif`.
Update order of Norse 1.1: the recurrent step takes the LIF step (:func:`.lif_step`) and
then adds ``dt * G v`` to the new voltage; the feed-forward step first adds
``dt * G v`` and then takes the LIF step. Both are first-order consistent with the ODE.
"""

from typing import Tuple

import torch

from norse.torch.functional.conventions import step_arguments
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    LIFState,
    lif_feed_forward_step,
    lif_step,
)


def couple_compartments(
    v: torch.Tensor, g_coupling: torch.Tensor, dt: float
) -> torch.Tensor:
    """One Euler step of the compartment coupling alone: ``v + dt * v @ g_coupling.T``."""
    return v + dt * torch.nn.functional.linear(v, g_coupling)


def coupled_output(
    output: Tuple[torch.Tensor, LIFState], g_coupling: torch.Tensor, dt: float
) -> Tuple[torch.Tensor, LIFState]:
    """The output ``(z, state)`` of a recurrent LIF step with the new voltage coupled
    (:func:`couple_compartments`): the update order of :func:`lif_mc_step`."""
    z, state = output
    return z, state._replace(v=couple_compartments(state.v, g_coupling, dt))


@step_arguments()
def lif_mc_step(
    input_tensor: torch.Tensor,
    state: LIFState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    g_coupling: torch.Tensor,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFState]:
    """One Euler step of recurrently connected multi-compartment LIF neurons."""
    output = lif_step(input_tensor, state, input_weights, recurrent_weights, p, dt)
    return coupled_output(output, g_coupling, dt)


@step_arguments(shape="(..., n)")
def lif_mc_feed_forward_step(
    input_tensor: torch.Tensor,
    state: LIFFeedForwardState,
    g_coupling: torch.Tensor,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFFeedForwardState]:
    """One Euler step of feed-forward multi-compartment LIF neurons."""
    v_coupled = couple_compartments(state.v, g_coupling, dt)
    return lif_feed_forward_step(
        input_tensor, LIFFeedForwardState(v_coupled, state.i), p, dt
    )
