"""Fused kernels generated from the step functions themselves.

Any feed-forward step ``step(input, state, p, dt) -> (output, state)`` whose arithmetic
is elementwise (the neuron models of :mod:`norse.torch.functional`, or a user's own) is
traced once per configuration into a graph of scalar operations (:mod:`.trace`), its
backpropagation through time derived from the same graph (:mod:`.derive`, with the
threshold's surrogate gradient), and emitted as a Numba loop for the CPU
(:mod:`.numba_source`) and a Triton kernel for CUDA (:mod:`.triton_source`), which scan
over time with the state in registers. See ``docs/fused.md``.

:func:`kernel_for` is what the time modules reach through
:func:`norse.torch.fused.registry.find` when no hand-written kernel fits; it returns
``None`` (the reference loop runs) for steps it cannot compile; :func:`why_not` says why
and ``NORSE_FUSED_DEBUG=1`` warns each time a configuration falls back.
"""

from typing import Any, Callable, List, Optional, Tuple

import torch
from torch import Tensor

from norse.torch.fused import registry
from norse.torch.fused.generate import runtime
from norse.torch.fused.generate.trace import (
    TIME_STEP,
    Untraceable,
    flatten,
    is_named_tuple,
    rebuild,
    structure,
)

__all__ = ["kernel_for", "why_not", "Untraceable"]


#: The input dtypes each backend generates kernels for.
_DTYPES = {"cpu": runtime._CPU_DTYPES, "cuda": runtime._CUDA_DTYPES}
_LIBRARIES = {"cpu": "Numba", "cuda": "Triton"}


def _supported_input(x: Any) -> Optional[str]:
    if not isinstance(x, Tensor) or x.layout != torch.strided:
        return "the input is not a dense tensor"
    if x.dim() < 1 or x.numel() == 0:
        return "the input is empty"
    backend = runtime.BACKENDS.get(x.device.type)
    if backend is None:
        return f"input on {x.device.type}"
    if x.dtype not in _DTYPES[backend]:
        names = " and ".join(str(d)[6:] for d in _DTYPES[backend])
        return f"{x.dtype} input on {x.device.type} ({names} are generated)"
    if not registry.backend_available(backend):
        return f"{_LIBRARIES[backend]} is not available"
    return None


def _field_ok(value: Any, x: Tensor, shape: Tuple[int, ...]) -> bool:
    return (
        isinstance(value, Tensor)
        and value.layout == torch.strided
        and value.is_floating_point()
        and value.device == x.device
        and (value.dim() == 0 or tuple(value.shape) == shape)
    )


def _parameter_ok(value: Any, x: Tensor, shape: Tuple[int, ...]) -> bool:
    if not isinstance(value, Tensor):
        return True  # numbers, methods, names: part of the specification
    if value.layout != torch.strided or value.is_complex():
        return False
    if value.dim() == 0:
        return value.device == x.device or value.device.type == "cpu"
    if value.device != x.device:
        return False
    try:
        return torch.broadcast_shapes(value.shape, shape) == shape
    except RuntimeError:
        return False


def _dtypes_supported(p: Any, state: Any, x: Tensor) -> Optional[str]:
    """The CPU kernels compute in float32 and float64 only (NumPy has no bfloat16,
    and a float16 parameter would be computed in float16 by the reference)."""
    if runtime.BACKENDS.get(x.device.type) != "cpu":
        return None
    for kind, tree in (("state field", state), ("parameter", p)):
        for field, value in flatten(tree):
            if isinstance(value, Tensor) and value.dtype not in runtime._CPU_DTYPES:
                return f"{kind} {field!r} is {value.dtype} on the CPU"
    return None


def _check(step, p, x, state, shape) -> Optional[str]:
    reason = _supported_input(x)
    if reason is not None:
        return reason
    if not is_named_tuple(state):
        return "the state is no NamedTuple"
    for field, value in flatten(state):
        if not _field_ok(value, x, shape):
            return f"state field {field!r} is not a float tensor of the neuron shape"
    if not is_named_tuple(p):
        return "the parameters are no NamedTuple"
    for field, value in flatten(p):
        if not _parameter_ok(value, x, shape):
            return f"parameter {field!r} does not broadcast to the neuron shape"
    return _dtypes_supported(p, state, x)


def _program_inputs(program, p, state, shape, device, dt=None):
    """State fields as ``(M,)`` and parameters as ``(M,)`` (per neuron) or ``(1,)``
    (0-dim), by autograd-tracked views, so that gradients reach the user's tensors; the
    time step ``dt`` as ``(1,)`` float64 where the program takes it at run time."""
    state_values = dict(flatten(state))
    states = [
        state_values[field].expand(shape).reshape(-1).contiguous()
        for field in program.state_fields
    ]
    param_values = dict(flatten(p))
    params = []
    for field in program.params:
        if field == TIME_STEP:
            params.append(torch.full((1,), dt, dtype=torch.float64, device=device))
            continue
        value = param_values[field]
        if value.dim() == 0:
            params.append(value.reshape(1).to(device))
        else:
            params.append(value.expand(shape).reshape(-1).contiguous())
    return states, params


def _plain(x: Tensor, states: List[Tensor], params: List[Tensor]) -> bool:
    if torch.is_grad_enabled() and (
        x.requires_grad
        or any(t.requires_grad for t in states)
        or any(t.requires_grad for t in params)
    ):
        return False
    return type(x) is Tensor and registry.plain_eager()


def run(
    program: "runtime.Program",
    input_tensor: Tensor,
    state: Any,
    p: Any,
    record_states: bool,
    dt: Optional[float] = None,
) -> Tuple[Tensor, Any]:
    """Runs ``program`` over the whole sequence ``input_tensor`` ``(T, ...)`` (``dt``:
    the time step, for a program that takes it at run time)."""
    steps = input_tensor.shape[0]
    shape = tuple(input_tensor.shape[1:])
    x = input_tensor.reshape(steps, -1)
    if not x.is_contiguous():
        x = x.contiguous()
    states, params = _program_inputs(program, p, state, shape, x.device, dt)
    if _plain(x, states, params):
        outputs = runtime._forward(program.key, [x], states, params, record_states)
    else:
        outputs = torch.ops.norse.generated_scan(
            program.key, [x], states, params, record_states
        )
    return results(program, outputs, state, steps, shape, record_states)


def results(
    program: "runtime.Program",
    outputs: List[Tensor],
    state: Any,
    steps: int,
    shape: Tuple[int, ...],
    record_states: bool,
) -> Tuple[Tensor, Any]:
    """A program's flat ``outputs`` (``[output (T, M), state fields...]``) as the
    reference returns them: the output ``(T, *shape)`` and a state of ``state``'s type,
    its fields ``shape`` (``(T, *shape)`` with ``record_states``)."""
    out = outputs[0].reshape(steps, *shape)
    state_shape = (steps, *shape) if record_states else shape
    values = {
        field: value.reshape(state_shape)
        for field, value in zip(program.state_fields, outputs[1:])
    }
    return out, rebuild(structure(state), values)


def kernel_for(
    step: Callable,
    p: Any,
    input_tensor: Tensor,
    state: Any,
    record_states: bool,
    dt: float,
) -> Optional[Callable]:
    """A kernel ``(input, state, p, dt, record_states) -> (outputs, state)`` generated
    from ``step`` for this configuration, or ``None``."""
    return _kernel_or_reason(step, p, input_tensor, state, record_states, dt)[0]


def _kernel_or_reason(step, p, input_tensor, state, record_states, dt):
    if isinstance(state, registry.Rest):
        state = state.build(input_tensor)
        rest_built = state
    else:
        rest_built = None
    shape = tuple(input_tensor.shape[1:])
    reason = _check(step, p, input_tensor, state, shape)
    if reason is not None:
        return None, reason
    if torch.compiler.is_compiling():
        program = _compiled_program(step, p, input_tensor, state)
        if program is None:
            return None, "under torch.compile the compiler fuses the reference loop"
    else:
        program = runtime.program_for(step, input_tensor.dtype, state, p, dt)
        if program is None:
            return None, runtime.why_not(step, input_tensor.dtype, state, p, dt)
    if [value.dtype for _, value in flatten(state)] != program.state_dtypes:
        # e.g. a float64 threshold makes a float32 voltage float64 after one step: the
        # kernels keep the state in one dtype
        return None, "the step changes the dtype of its state"
    run_program = run
    if isinstance(program, runtime.SteppedProgram):
        run_program, reason = _stepped(step, p, input_tensor, state, dt)
        if run_program is None:
            return None, reason

    def kernel(x, given_state, p, dt, record_states):
        if isinstance(given_state, registry.Rest):
            given_state = rest_built if rest_built is not None else given_state.build(x)
        return run_program(program, x, given_state, p, record_states, dt)

    return kernel, None


def _compiled_program(step, p, x, state) -> Optional["runtime.Program"]:
    """The program inside a graph that :func:`torch.compile` traces, built eagerly
    while the compiler traces (:func:`.runtime.compiled_program_key`); ``None`` where
    the compiler gets the reference loop: a step with matrix products (its driver runs
    per step outside any operator), one whose program needs ``dt`` as a constant, one
    that cannot be generated."""
    key = runtime.compiled_program_key(
        step,
        x.dtype,
        structure(state),
        runtime.describe_state(state),
        structure(p),
        runtime.describe_parameters(p),
    )
    return runtime._PROGRAMS.get(key)


def _stepped(step, p, x, state, dt):
    """How a feed-forward step with matrix products runs (the driver of
    :mod:`.recurrent` with the matrices the step multiplies now), or why it cannot."""
    from norse.torch.fused.generate import recurrent

    if not registry.plain_eager():
        return None, "a step with matrix products runs in plain eager mode only"
    shape = tuple(x.shape[1:])
    if not shape:
        return None, "a step with matrix products needs a neuron dimension"
    program, found, reason = recurrent.prepare(step, x, state, p, dt, shape[-1])
    if program is None:
        return None, reason

    def run_stepped(_, x, state, p, record_states, dt):
        return recurrent.run(program, x, state, p, record_states, found, shape)

    return run_stepped, None


def why_not(
    step: Callable,
    p: Any,
    input_tensor: Tensor,
    state: Any,
    dt: float = 0.001,
) -> Optional[str]:
    """Why ``step`` gets no generated kernel for this input, state and parameters
    (``None`` when it gets one)."""
    return _kernel_or_reason(step, p, input_tensor, state, False, dt)[1]
