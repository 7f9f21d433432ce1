"""Hand-written fused kernels of the LIF family on CUDA, registered with :mod:`.registry`.

Each supported step function gets a *factory*: given the parameters, the input
``(T, ...)``, the initial state and ``record_states`` it returns a kernel that runs the
whole sequence with :func:`.autograd.scan` (one pass over time, a hand-written
backward), or ``None`` when the configuration is not supported, in which case the
registry asks the kernel generator (:mod:`.generate`), then the time module runs its
reference loop. On the CPU the generated kernels serve these models (they are as fast
or faster: ``benchmarks/RESULTS.md``); the hand-written Triton kernels of
:mod:`.cuda` serve CUDA until the generated ones have been timed against them.
Supported:

* dense, contiguous-or-not floating input with at least one time step, on CUDA with
  Triton installed (float32, float16, bfloat16), or on a device whose kernel module
  :data:`.autograd.BACKENDS` names (the tests route CPU tensors through the Triton
  kernels in interpreter mode);
* state tensors of the dtype and device of the input, of the state shape or scalars;
* parameters that are numbers or tensors broadcastable to the state shape (shared or
  per neuron) without enlarging it; a per-neuron parameter has the dtype of the input;
* the feed-forward LIF, LI, box LIF, box LI, IAF and LSNN steps;
* deterministic surrogates (every ``method`` in :data:`.spec.SURROGATE_CODES`; the
  stochastic ``logistic`` and ``circ_dist`` run the reference loop) with a scalar
  ``alpha``; for box LIF, ``reset_value`` or ``reset_subtract``.

Importing this module does not import Triton; it loads on the first call.
"""

import functools
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import torch

from norse.torch.functional.iaf import IAFFeedForwardState, iaf_feed_forward_step
from norse.torch.functional.leaky_integrator import LIState, li_feed_forward_step
from norse.torch.functional.leaky_integrator_box import (
    LIBoxState,
    li_box_feed_forward_step,
)
from norse.torch.functional.lif import LIFFeedForwardState, lif_feed_forward_step
from norse.torch.functional.lif_box import (
    LIFBoxFeedForwardState,
    lif_box_feed_forward_step,
)
from norse.torch.functional.lsnn import LSNNFeedForwardState, lsnn_feed_forward_step
from norse.torch.functional.reset import reset_subtract, reset_value
from norse.torch.fused import autograd, registry
from norse.torch.fused.spec import (
    ADAPT,
    BOX,
    LEAK,
    PARAMETER_ROWS,
    SPIKE,
    STATE_FIELDS,
    SUBTRACT,
    SURROGATE_CODES,
    SYN,
)

#: Dtypes the kernels integrate in (half-precision inputs are integrated in float32).
_FULL_DTYPES = (torch.float32, torch.float64)
_CUDA_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


class _Model(NamedTuple):
    """How a step function maps onto the fused scan."""

    flags: int
    state_type: type
    #: Parameter fields feeding :data:`.spec.PARAMETER_ROWS` (``a_* = dt * tau_*_inv``);
    #: ``None``: unused.
    fields: Tuple[Optional[str], ...]


def _supported_input(x: Any) -> bool:
    if not isinstance(x, torch.Tensor) or x.layout != torch.strided:
        return False
    if x.dim() < 1 or x.numel() == 0:
        return False
    if x.device.type == "cuda":
        return x.dtype in _CUDA_DTYPES and registry.backend_available("cuda")
    # a device the tests route to the Triton kernels (autograd.BACKENDS)
    return x.device.type in autograd.BACKENDS and x.dtype in _FULL_DTYPES


def _parameter_supported(value: Any, x: torch.Tensor, shape: Tuple[int, ...]) -> bool:
    """Numbers, scalar tensors, and tensors of the input's dtype and device that
    broadcast to the state shape without enlarging it (as the reference would)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if not isinstance(value, torch.Tensor) or value.layout != torch.strided:
        return False
    if value.dim() == 0:
        # A 0-dim tensor takes part in type promotion only by its kind (float/int).
        return not value.is_complex()
    if value.device != x.device or value.dtype != x.dtype:
        return False
    try:
        return torch.broadcast_shapes(value.shape, shape) == shape
    except RuntimeError:
        return False


def _state_supported(value: Any, x: torch.Tensor, shape: Tuple[int, ...]) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and value.layout == torch.strided
        and value.dtype == x.dtype
        and value.device == x.device
        and (value.dim() == 0 or tuple(value.shape) == shape)
    )


def _as_lanes(
    value: Any, scale: Optional[float], x: torch.Tensor, shape: Tuple[int, ...], dtype
) -> torch.Tensor:
    """A parameter as a ``(1,)`` (shared) or ``(M,)`` (per neuron) tensor of ``dtype``.

    ``dt * tau_inv`` is rounded in the parameter's own dtype first, as in the reference.
    """
    if not isinstance(value, torch.Tensor):
        value = float(value) * scale if scale is not None else float(value)
        return torch.tensor([value], dtype=dtype, device=x.device)
    if scale is not None:
        value = scale * value
    if value.numel() == 1:
        return value.reshape(1).to(device=x.device, dtype=dtype)
    return value.to(dtype).expand(shape).reshape(-1)


def _rest_supported(
    rest: registry.Rest, model: _Model, p: Any, x: torch.Tensor, shape: Tuple[int, ...]
) -> bool:
    """The module's rest state is one of this model's states, each field zero or a
    supported parameter of ``p``."""
    return rest.state_type is model.state_type and all(
        field in model.state_type._fields
        and _parameter_supported(getattr(p, source, None), x, shape)
        for field, source in rest.initial_values.items()
    )


def _make_factory(model: _Model) -> Callable:
    """The registry factory of one model."""
    spike = (model.flags & SPIKE) != 0

    def factory(
        p: Any, input_tensor: torch.Tensor, state: Any, record_states: bool
    ) -> Optional[Callable]:
        if not _supported_input(input_tensor):
            return None
        shape = tuple(input_tensor.shape[1:])
        for field in model.fields:
            if field is not None and not _parameter_supported(
                getattr(p, field, None), input_tensor, shape
            ):
                return None
        if isinstance(state, registry.Rest):
            if not _rest_supported(state, model, p, input_tensor, shape):
                return None
        elif not isinstance(state, model.state_type) or not all(
            _state_supported(getattr(state, field), input_tensor, shape)
            for field in model.state_type._fields
        ):
            return None
        flags = model.flags
        method = 0
        if spike:
            method = SURROGATE_CODES.get(getattr(p, "method", None), -1)
            alpha = getattr(p, "alpha", None)
            if isinstance(alpha, torch.Tensor):
                if alpha.numel() != 1 or alpha.is_complex():
                    return None
            elif isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
                return None
            reset = getattr(p, "reset_method", reset_value)
            if reset is reset_subtract:
                flags |= SUBTRACT
            elif reset is not reset_value or method < 0:
                return None
        return functools.partial(_run, model, flags, method)

    return factory


def _run(
    model: _Model,
    flags: int,
    method: int,
    input_tensor: torch.Tensor,
    state: Any,
    p: Any,
    dt: float,
    record_states: bool,
) -> Tuple[torch.Tensor, Any]:
    """Runs the whole sequence with :func:`.autograd.scan` (a configuration that the
    factory accepted)."""
    x = input_tensor
    if isinstance(state, registry.Rest):
        state = state.build(x)
    steps = x.shape[0]
    shape = tuple(x.shape[1:])
    # On CUDA, half-precision inputs are integrated in float32.
    dtype = x.dtype if x.dtype in _FULL_DTYPES else torch.float32
    params = [
        torch.zeros(1, dtype=dtype, device=x.device)
        if field is None
        else _as_lanes(getattr(p, field), scale, x, shape, dtype)
        for field, scale in zip(
            model.fields, [dt if scaled else None for scaled in _SCALED_BY_DT]
        )
    ]
    fields = model.state_type._fields
    states = [
        getattr(state, field).to(dtype).expand(shape).reshape(-1)
        if field in fields
        else x.new_empty(0, dtype=dtype)
        for field in STATE_FIELDS
    ]
    if (flags & SPIKE) != 0 and isinstance(p.alpha, torch.Tensor):
        alpha = p.alpha.detach().reshape(1).to(device=x.device, dtype=dtype)
    else:
        alpha = torch.tensor(
            [float(p.alpha) if (flags & SPIKE) != 0 else 1.0],
            dtype=dtype,
            device=x.device,
        )
    out, *state_out = autograd.scan(
        x.reshape(steps, -1).contiguous(),
        states,
        params,
        alpha,
        method,
        flags,
        record_states,
    )
    state_shape = (steps, *shape) if record_states else shape
    values = {
        field: value.reshape(state_shape).to(x.dtype)
        for field, value in zip(STATE_FIELDS, state_out)
        if field in fields
    }
    return out.reshape(x.shape), model.state_type(**values)


#: Which parameters are inverse time constants, multiplied by ``dt`` (``PARAMETER_ROWS``).
_SCALED_BY_DT = tuple(name.startswith("a_") for name in PARAMETER_ROWS)

_MODELS: Dict[Callable, _Model] = {
    lif_feed_forward_step: _Model(
        SYN | LEAK | SPIKE,
        LIFFeedForwardState,
        ("tau_mem_inv", "tau_syn_inv", "v_leak", "v_th", "v_reset", None, None),
    ),
    li_feed_forward_step: _Model(
        SYN | LEAK,
        LIState,
        ("tau_mem_inv", "tau_syn_inv", "v_leak", None, None, None, None),
    ),
    lif_box_feed_forward_step: _Model(
        LEAK | SPIKE | BOX,
        LIFBoxFeedForwardState,
        ("tau_mem_inv", None, "v_leak", "v_th", "v_reset", None, None),
    ),
    li_box_feed_forward_step: _Model(
        LEAK, LIBoxState, ("tau_mem_inv", None, "v_leak", None, None, None, None)
    ),
    iaf_feed_forward_step: _Model(
        SPIKE, IAFFeedForwardState, (None, None, None, "v_th", "v_reset", None, None)
    ),
    lsnn_feed_forward_step: _Model(
        SYN | LEAK | SPIKE | ADAPT,
        LSNNFeedForwardState,
        (
            "tau_mem_inv",
            "tau_syn_inv",
            "v_leak",
            "v_th",
            "v_reset",
            "tau_adapt_inv",
            "beta",
        ),
    ),
}

for _step, _model in _MODELS.items():
    registry.register(_step, _make_factory(_model))
