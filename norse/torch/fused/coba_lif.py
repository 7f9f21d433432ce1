"""The recurrent conductance-based LIF sequence with its weights rectified once.

:func:`~norse.torch.functional.coba_lif.coba_lif_step` splits each weight matrix into
an excitatory part ``relu(W)`` and an inhibitory part ``relu(-W)`` in every step, and
backpropagates through both splits in every step: four weight-sized elementwise
operations forward and four backward per step, more than the step's matrix products
for a 512 x 512 layer. Here the splits are computed once per sequence (autograd
passes the weight gradients, summed over the steps, through them once), and the
sequence runs :func:`_rectified_step`, the same step with the four rectified matrices as
its weights, through the generated stepped driver (:mod:`.generate.recurrent`, weights
of the kinds ``_KINDS``): per step PyTorch's four products (the reference's, so the
forward is bit for bit the same) and one generated kernel for
:func:`~norse.torch.functional.coba_lif.coba_lif_dynamics`; backward one adjoint kernel
per step, the weight gradients one product each after the loop, on the CPU (Numba) and
on CUDA (Triton). Where the driver does not run (a tracer, half precision on the CPU, no
kernel backend), the same step runs step by step with autograd.
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

#: The weights of :func:`_rectified_step`, by kind (see
#: :data:`norse.torch.fused.generate.trace.RECURRENT`).
_KINDS = ("input", "input", "recurrent", "recurrent")


def _rectified_step(
    input_tensor: Tensor,
    state: CobaLIFState,
    input_exc: Tensor,
    input_inh: Tensor,
    recurrent_exc: Tensor,
    recurrent_inh: Tensor,
    p: Any,
    dt: float,
) -> Tuple[Tensor, CobaLIFState]:
    """:func:`~norse.torch.functional.coba_lif.coba_lif_step` with its weights
    rectified already: the same products in the same order."""
    linear = torch.nn.functional.linear
    g_e = state.g_e + linear(input_tensor, input_exc) + linear(state.z, recurrent_exc)
    g_i = state.g_i + linear(input_tensor, input_inh) + linear(state.z, recurrent_inh)
    z, v, g_e, g_i = coba_lif_dynamics(state.v, g_e, g_i, p, dt)
    return z, CobaLIFState(z, v, g_e, g_i)


def _loop(
    input_tensor: Tensor,
    state: CobaLIFState,
    p: Any,
    dt: float,
    record_states: bool,
    weights: Tuple[Tensor, ...],
) -> Tuple[Tensor, CobaLIFState]:
    """The sequence step by step with autograd (where the generated driver does not
    run: a tracer, half precision on the CPU, no kernel backend)."""
    outputs, states = [], []
    for x in input_tensor.unbind(0):
        z, state = _rectified_step(x, state, *weights, p, dt)
        outputs.append(z)
        if record_states:
            states.append(state)
    if record_states:
        state = CobaLIFState(*(torch.stack(field) for field in zip(*states)))
    return torch.stack(outputs), state


def _run(
    input_tensor: Tensor,
    state: CobaLIFState,
    p: Any,
    dt: float,
    record_states: bool,
    input_weights: Tensor,
    recurrent_weights: Tensor,
) -> Tuple[Tensor, CobaLIFState]:
    relu = torch.nn.functional.relu
    weights = (
        relu(input_weights),
        relu(-input_weights),
        relu(recurrent_weights),
        relu(-recurrent_weights),
    )
    # imported here: the generated kernels load on the first fused call
    from norse.torch.fused.generate import recurrent

    kernel = recurrent.kernel_for(
        _rectified_step, p, input_tensor, state, record_states, weights, dt, _KINDS
    )
    if kernel is None:
        return _loop(input_tensor, state, p, dt, record_states, weights)
    return kernel(input_tensor, state, p, dt, record_states, *weights)


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
