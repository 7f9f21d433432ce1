r"""Adjoint (EventProp) gradients of multi-compartment LIF neurons.

The step of :func:`norse.torch.functional.lif_mc.lif_mc_step` is the LIF step followed by
a linear coupling of the compartments' voltages,

.. math::
    z, (z, v', i') = \text{LIF}(x, s), \qquad
    v'' = v' + \Delta t\, v' G^T,

so its adjoint is that of the LIF step (:func:`.lif_adjoint_step`, with EventProp's jump
condition at the threshold crossing) composed with the transpose of the coupling,
:math:`\partial L/\partial v' = \lambda_{v''} (I + \Delta t\, G)` (and
:math:`\partial L/\partial G = \Delta t\, \lambda_{v''}^T v'`): the coupling acts after the
spike and reset, so it does not move the crossing. Norse 1.1 has this function, but its
backward pass fails (it calls ``torch.linear``, which does not exist).
"""

from typing import Tuple

import torch

from norse.torch.functional.adjoint.lif_adjoint import lif_adjoint_step
from norse.torch.functional.conventions import step_arguments
from norse.torch.functional.lif import LIFParameters, LIFState
from norse.torch.functional.lif_mc import (
    coupled_output,
    lif_mc_step,  # noqa: F401 (as in Norse 1.1)
)


@step_arguments()
def lif_mc_adjoint_step(
    input_tensor: torch.Tensor,
    s: LIFState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    g_coupling: torch.Tensor,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFState]:
    """One step of recurrently connected multi-compartment LIF neurons with adjoint
    gradients; the forward pass equals :func:`.lif_mc_step` with a Heaviside threshold.
    """
    output = lif_adjoint_step(input_tensor, s, input_weights, recurrent_weights, p, dt)
    return coupled_output(output, g_coupling, dt)
