"""The recurrent conductance-based LIF sequence with its weights rectified once.

:func:`~norse.torch.functional.coba_lif.coba_lif_step` splits each weight matrix into
an excitatory part ``relu(W)`` and an inhibitory part ``relu(-W)`` in every step, and
backpropagates through both splits in every step: four weight-sized elementwise
operations forward and four backward per step, more than the step's matrix products
for a 512 x 512 layer. Here the splits are computed once per sequence; per step only the
products (the reference's, row for row, so the forward is bit for bit the same) and
:func:`~norse.torch.functional.coba_lif.coba_lif_dynamics` run. The weight gradients are
the same sums over steps, passed through the rectifiers once.
"""

from typing import Any, Callable, Optional, Tuple

import torch
from torch import Tensor

from norse.torch.functional.coba_lif import (
    CobaLIFState,
    coba_lif_dynamics,
    coba_lif_step,
)
from norse.torch.fused import registry


def _run(
    input_tensor: Tensor,
    state: CobaLIFState,
    p: Any,
    dt: float,
    record_states: bool,
    input_weights: Tensor,
    recurrent_weights: Tensor,
) -> Tuple[Tensor, CobaLIFState]:
    relu, linear = torch.nn.functional.relu, torch.nn.functional.linear
    input_exc, input_inh = relu(input_weights), relu(-input_weights)
    recurrent_exc, recurrent_inh = relu(recurrent_weights), relu(-recurrent_weights)
    outputs, states = [], []
    for x in input_tensor.unbind(0):
        g_e = state.g_e + linear(x, input_exc) + linear(state.z, recurrent_exc)
        g_i = state.g_i + linear(x, input_inh) + linear(state.z, recurrent_inh)
        z, v, g_e, g_i = coba_lif_dynamics(state.v, g_e, g_i, p, dt)
        state = CobaLIFState(z, v, g_e, g_i)
        outputs.append(z)
        if record_states:
            states.append(state)
    if record_states:
        state = CobaLIFState(*(torch.stack(field) for field in zip(*states)))
    return torch.stack(outputs), state


def _factory(
    p: Any,
    input_tensor: Tensor,
    state: Any,
    record_states: bool,
    input_weights: Any = None,
    recurrent_weights: Any = None,
) -> Optional[Callable]:
    dense = (input_tensor, input_weights, recurrent_weights)
    if not all(isinstance(t, Tensor) and t.layout == torch.strided for t in dense):
        return None
    if not isinstance(state, CobaLIFState) or input_tensor.dim() < 2:
        return None
    return _run


registry.register(coba_lif_step, _factory)
