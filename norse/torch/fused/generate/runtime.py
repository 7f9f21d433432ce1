"""Generated kernels at run time: build, cache, run and differentiate them.

A :class:`Program` is one traced step (:mod:`.trace`) with its derivative
(:mod:`.derive`) for one *specification*: the step function, the state type, the
dtypes, which parameters are tensors and which of them are per neuron, the values of the
other parameter fields and ``dt``. Its kernels are emitted as Python source
(:mod:`.numba_source`, :mod:`.triton_source`), written to a file in the kernel cache
(``$NORSE_KERNEL_CACHE``, default ``~/.cache/norse/kernels``; Numba and Triton compile
from files and cache the machine code next to them) and imported.

``torch.ops.norse.generated_scan`` runs a program over time; its backward is
``torch.ops.norse.generated_scan_backward``. Both are custom operators with fake
implementations, so :func:`torch.compile` traces through them.
"""

import hashlib
import importlib.util
import os
import sys
import threading
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from norse.torch.fused.generate import numba_source, stages
from norse.torch.fused.generate.derive import Adjoint, derive
from norse.torch.fused.generate.trace import (
    TIME_STEP,
    Graph,
    Untraceable,
    find_matrices,
    flatten,
    rebuild,
    structure,
    time_step_leaf,
    trace,
    trace_recurrent,
    weight_kinds,
)

_PROBE = 2
#: The time step of the second trace that tells whether a step uses ``dt`` only as an
#: operand (:func:`.trace.time_step_leaf`): a value no step is likely to hold.
PROBE_TIME_STEP = 0.000123456789
#: The kernel backend of each device type: ``"cpu"`` (Numba) or ``"cuda"`` (Triton).
#: The tests route CPU tensors through the Triton kernels in interpreter mode
#: (``TRITON_INTERPRET=1``) by changing it.
BACKENDS = {"cpu": "cpu", "cuda": "cuda"}
_CPU_DTYPES = (torch.float32, torch.float64)
_CUDA_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def cache_directory() -> str:
    """Where generated kernel sources (and their compiled code) are kept."""
    root = os.environ.get("NORSE_KERNEL_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache"
        )
        root = os.path.join(base, "norse", "kernels")
    return root


class Program:
    """One specification's graph, derivative, parameter layout and kernels."""

    def __init__(
        self,
        key: str,
        graph: Graph,
        adjoint: Adjoint,
        params: List[str],
        stepped: bool = False,
    ):
        self.key = key
        #: A stage of a :class:`SteppedProgram`: its kernels take one step at a time.
        self.stepped = stepped
        self.graph = graph
        self.adjoint = adjoint
        #: Tensor parameter fields the kernels read, in argument order.
        self.params = params
        self.layout = numba_source.Layout(graph, params)
        #: Parameters with a gradient (the threshold's ``alpha`` has none, nor the
        #: time step).
        self.differentiable = [
            f for f in params if f != TIME_STEP and adjoint.params.get(f) is not None
        ]
        #: Whether the kernels take the time step at run time (parameter
        #: :data:`.trace.TIME_STEP`, or no time step at all): one program then serves
        #: every ``dt``, also inside :func:`torch.compile`.
        self.time_step_free = False
        self.state_fields = list(graph.states)
        self.output_dtype = graph.nodes[graph.output].dtype
        self.state_dtypes = [
            graph.nodes[graph.new_states[f]].dtype for f in self.state_fields
        ]
        self._modules: Dict[str, Any] = {}
        self._lock = threading.Lock()
        #: A stage's records on the CPU, by backward kind (``"all"``: with the
        #: parameter gradients, ``"states"``: without): the values its forward step
        #: records for its adjoint (:func:`.numba_source.step_record`), or ``None``.
        self.records: Dict[str, Optional[List[int]]] = {}
        if stepped and self.layout.states:
            for kind, wanted in self._backward_kinds():
                self.records[kind] = numba_source.step_record(
                    graph, adjoint, self.layout, wanted
                )

    def _backward_kinds(self) -> List[Tuple[str, List[str]]]:
        return [("all", self.differentiable), ("states", [])]

    def record_dtypes(self, kind: str) -> Optional[List[torch.dtype]]:
        """The dtypes of the values :attr:`records` ``[kind]``, or ``None``."""
        recorded = self.records.get(kind)
        if recorded is None:
            return None
        return [self.graph.nodes[index].dtype for index in recorded]

    def source(self, backend: str) -> str:
        if backend == "cpu" and self.stepped:
            functions = [numba_source.step_source(self.graph, self.layout)]
            for kind, wanted in self._backward_kinds():
                recorded = self.records.get(kind)
                # the adjoint of the inputs and the state, and (where the step
                # records what it reads) the forward step recording it and the
                # adjoint of the records
                variants = [(f"backward_step_{kind}", None)]
                if recorded is not None:
                    functions.append(
                        numba_source.step_source(
                            self.graph, self.layout, recorded, f"forward_step_{kind}"
                        )
                    )
                    variants.append((f"backward_step_{kind}_recorded", recorded))
                functions += [
                    numba_source.step_backward_source(
                        self.graph, self.adjoint, self.layout, wanted, name, record
                    )
                    for name, record in variants
                ]
            return numba_source.module_source(functions)
        if backend == "cpu":
            functions = []
            for record in (False, True):
                functions.append(
                    numba_source.forward_source(self.graph, self.layout, record)
                )
                suffix = "record" if record else "final"
                for wanted, kind in ((self.differentiable, "all"), ([], "states")):
                    functions.append(
                        numba_source.backward_source(
                            self.graph,
                            self.adjoint,
                            self.layout,
                            wanted,
                            record,
                            f"backward_{kind}_{suffix}",
                        )
                    )
            return numba_source.module_source(functions)
        from norse.torch.fused.generate import triton_source

        if self.stepped:
            return triton_source.step_module_source(
                self.graph, self.adjoint, self.layout, self.differentiable
            )
        return triton_source.module_source(
            self.graph, self.adjoint, self.layout, self.differentiable
        )

    def module(self, backend: str):
        """The imported kernel module of ``backend`` (``"cpu"``, ``"cuda"``)."""
        module = self._modules.get(backend)
        if module is None:
            with self._lock:
                module = self._modules.get(backend)
                if module is None:
                    module = _import_source(self.source(backend), self.key, backend)
                    if backend == "cpu" and not self.stepped:
                        # imported here: Numba is an optional backend
                        from norse.torch.fused._llvm_options import compile_interleaved

                        for kernel in ("forward_final", "forward_record"):
                            if hasattr(module, kernel):  # scans, not single steps
                                compile_interleaved(
                                    getattr(module, kernel),
                                    numba_source.FORWARD_INTERLEAVE,
                                )
                    self._modules[backend] = module
        return module


class SteppedProgram:
    """A step with matrix products (:mod:`.stages`): its elementwise stages as
    :class:`Program` s of their own, run one step at a time by :mod:`.recurrent`."""

    #: The stepped driver takes ``dt`` as a constant of the stages.
    time_step_free = False

    def __init__(self, key: str, graph: Graph, plan: "stages.Plan", weights: Tuple):
        self.key = key
        self.plan = plan
        #: The kinds of the weights the step takes (:data:`.trace.RECURRENT`; none for
        #: a feed-forward step).
        self.weights = weights
        self.stages = [
            _program(f"{key}_stage{stage.round}", stage.graph, stepped=True)
            for stage in plan.stages
        ]
        #: Matrices found by :func:`.trace.find_matrices` (a recurrent step's weights,
        #: the first matrices, are given).
        self.found_matrices = graph.matrices - len(weights)
        self.state_fields = list(graph.states)
        self.state_dtypes = [
            graph.nodes[graph.new_states[f]].dtype for f in self.state_fields
        ]
        self.output_dtype = graph.nodes[graph.output].dtype
        used = {f for stage in self.stages for f in stage.params}
        differentiable = {f for stage in self.stages for f in stage.differentiable}
        #: Tensor parameter fields of any stage; those with a gradient.
        self.params = [f for f in graph.params if f in used]
        self.differentiable = [f for f in self.params if f in differentiable]


def _program(key: str, graph: Graph, stepped: bool = False) -> Program:
    """The :class:`Program` of ``graph``, its derivative appended; its parameters are
    those the computation reads."""
    adjoint = derive(graph)
    used = set()
    for node in graph.nodes:
        if node.op == "param":
            continue
        used.update(a for a in node.args if isinstance(a, int))
    params = [f for f, i in graph.params.items() if i in used]
    return Program(key, graph, adjoint, params, stepped)


def _import_source(source: str, key: str, backend: str):
    directory = cache_directory()
    os.makedirs(directory, exist_ok=True)
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    name = f"norse_generated_{backend}_{digest}"
    path = os.path.join(directory, name + ".py")
    if not os.path.exists(path):
        temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(temporary, "w") as file:
            file.write(f"# Generated by norse.torch.fused.generate for {key}\n")
            file.write(source)
        os.replace(temporary, path)  # atomic: concurrent writers write the same text
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


# -- specifications and the program cache -------------------------------------------

_PROGRAMS: Dict[str, Program] = {}
_FAILURES: Dict[Any, str] = {}
_SPEC_KEYS: Dict[Any, Optional[str]] = {}
_STEP_NAMES: Dict[Callable, str] = {}


def _step_name(step: Callable) -> str:
    name = _STEP_NAMES.get(step)
    if name is None:
        module = getattr(step, "__module__", "?")
        name = f"{module}.{getattr(step, '__qualname__', repr(step))}"
        _STEP_NAMES[step] = name
    return name


def _parameter_spec(p: Any) -> Tuple:
    spec = [structure(p)]
    for field, value in flatten(p):
        if isinstance(value, Tensor):
            spec.append((field, "tensor", value.dtype, value.dim() > 0))
        elif isinstance(value, (bool, int, float, str, type(None))):
            spec.append((field, "value", type(value).__name__, value))
        else:
            # A function (e.g. a reset method) or another object: by identity.
            spec.append((field, "object", id(value)))
    return tuple(spec)


def describe_state(state: Any) -> Tuple:
    """The state's fields and their dtypes, ``((field, dtype), ...)``: what a program
    depends on in the state besides its structure (constants for
    :func:`torch.compile`, like :func:`describe_parameters`)."""
    return tuple((field, value.dtype) for field, value in flatten(state))


def specification(
    step: Callable, x_dtype: torch.dtype, state: Any, p: Any, dt: float
) -> Tuple:
    states = describe_state(state)
    return (step, structure(state), x_dtype, states, _parameter_spec(p), float(dt))


def program_for(
    step: Callable, x_dtype, state: Any, p: Any, dt: float, recurrent: Any = False
):
    """The :class:`Program` of this specification, or ``None`` (reason in
    :func:`why_not`); ``recurrent``: ``step`` is a recurrent step, whose weight products
    become the program's inputs (:func:`.trace.trace_recurrent`; ``True``: input and
    recurrent weights, or the kinds of its weights, see :data:`.trace.RECURRENT`)."""
    spec = specification(step, x_dtype, state, p, dt) + (weight_kinds(recurrent),)
    key = _SPEC_KEYS.get(spec, False)
    if key is False:
        key = _build(spec, step, x_dtype, state, p, dt, recurrent)
        _SPEC_KEYS[spec] = key
    return None if key is None else _PROGRAMS[key]


def describe_parameters(p: Any) -> Tuple:
    """What a program depends on in ``p``, leaf by leaf: ``(field, "tensor", dtype,
    per_neuron)`` for a tensor, ``(field, "value", value)`` for anything else. Plain
    Python on metadata, so that :func:`torch.compile` reads it as constants."""
    return tuple(
        (field, "tensor", value.dtype, value.dim() > 0)
        if isinstance(value, Tensor)
        else (field, "value", value)
        for field, value in flatten(p)
    )


def _probe_from_description(p_structure: Tuple, description: Tuple) -> Any:
    values = {}
    for field, kind, *rest in description:
        if kind == "tensor":
            dtype, per_neuron = rest
            values[field] = torch.zeros((_PROBE,) if per_neuron else (), dtype=dtype)
        else:
            values[field] = rest[0]
    return rebuild(p_structure, values)


def _probe_parameters(p: Any) -> Any:
    return _probe_from_description(structure(p), describe_parameters(p))


@torch.compiler.assume_constant_result
def compiled_program_key(
    step: Callable,
    x_dtype: torch.dtype,
    state_structure: Tuple,
    state_dtypes: Tuple,
    p_structure: Tuple,
    p_description: Tuple,
) -> str:
    """The key of the program of this specification for a kernel inside a graph that
    :func:`torch.compile` traces, ``""`` for none or for a program that needs the time
    step as a constant (the compiler may make the module's ``dt`` symbolic).

    The compiler calls this while it traces the call, with constants computed from
    the metadata of the state (:func:`.trace.structure`, the fields' dtypes) and of the
    parameters (:func:`describe_parameters`), and puts the key into the graph as a
    constant: the program is traced and built eagerly, outside the compiled graph,
    which runs its operator ``norse::generated_scan`` with ``dt`` as a tensor."""
    state = _probe_state_from(state_structure, state_dtypes)
    p = _probe_from_description(p_structure, p_description)
    program = program_for(step, x_dtype, state, p, PROBE_TIME_STEP)
    if program is None or not program.time_step_free:
        return ""
    return program.key


def _probe_state_from(state_structure: Tuple, state_dtypes: Tuple) -> Any:
    return rebuild(
        state_structure,
        {field: torch.zeros(_PROBE, dtype=dtype) for field, dtype in state_dtypes},
    )


def _probe_state(state: Any) -> Any:
    return _probe_state_from(structure(state), describe_state(state))


def matrices(
    program: "SteppedProgram", step: Callable, x_dtype, state: Any, p: Any, dt: float
) -> List[Tensor]:
    """The tensors the step multiplies now, for ``program`` (see
    :func:`.trace.find_matrices`), a recurrent step's weights excepted."""
    if not program.found_matrices:
        return []
    return find_matrices(
        step,
        x_dtype,
        _probe_state(state),
        _probe_parameters(p),
        dt,
        _PROBE,
        program.weights,
    )


def _build(spec, step, x_dtype, state, p, dt, recurrent=False) -> Optional[str]:
    probe_state = _probe_state(state)
    weights = weight_kinds(recurrent)
    time_step_free = False
    try:
        if weights:
            graph = trace_recurrent(
                step, x_dtype, probe_state, _probe_parameters(p), dt, _PROBE, weights
            )
        else:

            def traced(time_step: float) -> Graph:
                probe_x = torch.zeros(_PROBE, dtype=x_dtype)
                return trace(
                    step, probe_x, probe_state, _probe_parameters(p), time_step
                )

            graph = traced(dt)
            if not graph.products:  # the stepped driver takes dt as a constant
                probe_dt = PROBE_TIME_STEP if dt != PROBE_TIME_STEP else 2 * dt
                time_step_free = time_step_leaf(graph, traced(probe_dt), dt, probe_dt)
        key = hashlib.sha256(
            (repr(spec[1:]) + _step_name(step) + graph.describe()).encode()
        ).hexdigest()[:16]
        key = f"{getattr(step, '__name__', 'step')}_{key}"
        if graph.products:
            program = SteppedProgram(key, graph, stages.split(graph), weights)
        else:
            program = _program(key, graph)
            program.time_step_free = time_step_free
    except Untraceable as error:
        reason = f"{_step_name(step)}: {error}"
        _FAILURES[spec] = reason
        if debug():
            warnings.warn(
                f"norse: no generated kernel for {reason}", RuntimeWarning, stacklevel=4
            )
        return None
    _PROGRAMS[key] = program
    return key


def why_not(
    step: Callable, x_dtype, state: Any, p: Any, dt: float, recurrent: Any = False
) -> Optional[str]:
    """Why this configuration has no generated kernel (``None`` if it has one)."""
    if program_for(step, x_dtype, state, p, dt, recurrent) is not None:
        return None
    spec = specification(step, x_dtype, state, p, dt) + (weight_kinds(recurrent),)
    return _FAILURES.get(spec)


def debug() -> bool:
    """``NORSE_FUSED_DEBUG=1``: warn, with the reason, when a step falls back to the
    reference loop because no kernel can be generated for it."""
    return os.environ.get("NORSE_FUSED_DEBUG", "0") not in ("", "0")


# -- running the kernels -------------------------------------------------------------

_pool = None
_pool_pid = None


def _threads() -> int:
    return max(1, torch.get_num_threads())


def _split(kernel: Callable, args: tuple, steps: int, neurons: int) -> None:
    """``kernel(*args, lo, hi)`` over all neurons, on several threads when the work is
    large enough to pay for them (the kernels release the GIL)."""
    global _pool, _pool_pid
    threads = min(_threads(), max(1, steps * neurons // 65536))
    chunk = numba_source.CHUNK
    if threads <= 1 or neurons < 2 * chunk:
        kernel(*args, 0, neurons)
        return
    per = -(-neurons // threads)
    per = -(-per // chunk) * chunk
    ranges = [(lo, min(lo + per, neurons)) for lo in range(0, neurons, per)]
    if (
        _pool is None
        or _pool._max_workers < len(ranges) - 1
        or _pool_pid != os.getpid()
    ):
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(
            len(ranges) - 1, thread_name_prefix="norse-generated"
        )
        _pool_pid = os.getpid()
    futures = [_pool.submit(kernel, *args, lo, hi) for lo, hi in ranges[1:]]
    kernel(*args, *ranges[0])
    for future in futures:
        future.result()


def _np(tensor: Tensor):
    return tensor.detach().numpy()


def _gradient_array(gradient: Tensor, broadcast: bool = False):
    """A gradient as a C-contiguous array; with ``broadcast``, one value broadcast to
    every element (e.g. from ``out.sum()``) is passed as a ``(1, 1)`` array, which the
    backward scan kernels read as that value for all (others copy it: the kernels' lane
    loops vectorise on contiguous rows)."""
    if (
        broadcast
        and gradient.numel() > 1
        and all(stride == 0 for stride in gradient.stride())
    ):
        return _np(gradient[:1, :1])
    return _np(gradient.contiguous())


def _outputs(program: Program, xs: List[Tensor], record: bool) -> List[Tensor]:
    x = xs[0]
    steps, neurons = x.shape
    rows = steps if record else 1
    out = [x.new_empty((steps, neurons), dtype=program.output_dtype)]
    out += [x.new_empty((rows, neurons), dtype=d) for d in program.state_dtypes]
    return out


def _forward(
    key: str,
    xs: List[Tensor],
    states: List[Tensor],
    params: List[Tensor],
    record: bool,
):
    program = _PROGRAMS[key]
    outputs = _outputs(program, xs, record)
    x = xs[0]
    if BACKENDS[x.device.type] == "cpu":
        module = program.module("cpu")
        args = (
            *(_np(x) for x in xs),
            *(_np(s) for s in states),
            *(_np(p) for p in params),
            _np(outputs[0]),
            *(_np(r) for r in outputs[1:]),
        )
        kernel = module.forward_record if record else module.forward_final
        _split(kernel, args, x.shape[0], x.shape[1])
    else:
        module = program.module(BACKENDS[x.device.type])
        module.forward(x, states, params, outputs, record)
    return outputs


@torch.library.custom_op("norse::generated_scan", mutates_args=())
def generated_scan(
    key: str,
    xs: List[Tensor],
    states: List[Tensor],
    params: List[Tensor],
    record: bool,
) -> List[Tensor]:
    """Runs the generated program ``key`` over time: inputs ``xs`` ``(T, M)`` each (one
    for a feed-forward step), states ``(M,)``,
    parameters ``(M,)`` or ``(1,)``; returns ``[outputs (T, M), state fields]`` with the
    state fields ``(T, M)`` (``record``) or ``(1, M)``."""
    return _forward(key, xs, states, params, record)


@generated_scan.register_fake
def _(key, xs, states, params, record):
    return _outputs(_PROGRAMS[key], xs, record)


def _backward_outputs(program, xs, states, params, param_grads):
    x = xs[0]
    g_xs = [torch.empty_like(x) for x in xs]
    g_states = [torch.empty_like(s) for s in states]
    g_params = []
    if param_grads:
        wanted = set(program.differentiable)
        for field, value in zip(program.params, params):
            if field in wanted:
                dtype = value.dtype
                if dtype in (torch.float16, torch.bfloat16):
                    # float32, so that a shared parameter's sum over the neurons
                    # does not add up half-precision roundings
                    dtype = torch.float32
                g_params.append(x.new_empty((x.shape[1],), dtype=dtype))
    return [*g_xs, *g_states, *g_params]


@torch.library.custom_op("norse::generated_scan_backward", mutates_args=())
def generated_scan_backward(
    key: str,
    g_out: Tensor,
    g_states: List[Tensor],
    xs: List[Tensor],
    states: List[Tensor],
    params: List[Tensor],
    record: bool,
    param_grads: bool,
) -> List[Tensor]:
    """Backpropagation through time of :func:`generated_scan`: returns ``[g_xs...,
    g_states0..., g_params...]``, the parameter gradients per neuron ``(M,)`` for the
    differentiable parameters (none without ``param_grads``; float32 for half-precision
    parameters)."""
    program = _PROGRAMS[key]
    outputs = _backward_outputs(program, xs, states, params, param_grads)
    x = xs[0]
    if BACKENDS[x.device.type] == "cpu":
        module = program.module("cpu")
        kind = "all" if param_grads else "states"
        kernel = getattr(module, f"backward_{kind}_{'record' if record else 'final'}")
        args = (
            _gradient_array(g_out, broadcast=True),
            *(_gradient_array(g) for g in g_states),
            *(_np(x) for x in xs),
            *(_np(s) for s in states),
            *(_np(p) for p in params),
            *(_np(o) for o in outputs),
        )
        _split(kernel, args, x.shape[0], x.shape[1])
    else:
        program.module(BACKENDS[x.device.type]).backward(
            g_out.contiguous(),
            [g.contiguous() for g in g_states],
            x,
            states,
            params,
            outputs,
            record,
            param_grads,
        )
    return outputs


@generated_scan_backward.register_fake
def _(key, g_out, g_states, xs, states, params, record, param_grads):
    return _backward_outputs(_PROGRAMS[key], xs, states, params, param_grads)


def parameter_gradients(
    program: Program,
    params: List[Tensor],
    per_lane: Optional[List[Tensor]],
    needed: List[bool],
) -> List[Optional[Tensor]]:
    """The gradients of the kernels' parameter arguments ``params`` from the per-lane
    gradients of the differentiable ones (``per_lane``, in program order; ``None``
    when none was computed): summed over the lanes for a 0-dim parameter (passed as
    ``(1,)``), ``None`` where ``needed`` is false."""
    grads: List[Optional[Tensor]] = [None] * len(params)
    if per_lane is None:
        return grads
    lanes = iter(per_lane)
    wanted = set(program.differentiable)
    for k, (field, value) in enumerate(zip(program.params, params)):
        if field not in wanted:
            continue
        grad = next(lanes)
        if needed[k]:
            if value.numel() == 1:
                grad = grad.sum().reshape(value.shape)
            grads[k] = grad.to(value.dtype)
    return grads


def _setup_context(ctx, inputs, output) -> None:
    key, xs, states, params, record = inputs
    ctx.save_for_backward(*xs, *states, *params)
    ctx.key = key
    ctx.record = record
    ctx.counts = (len(xs), len(states), len(params))


def _backward(ctx, grads: List[Tensor]):
    saved = ctx.saved_tensors
    inputs, count = ctx.counts[0], ctx.counts[1]
    xs, states = saved[:inputs], saved[inputs : inputs + count]
    params = saved[inputs + count :]
    x = xs[0]
    program = _PROGRAMS[ctx.key]
    g_out, *g_states = grads
    g_out = torch.zeros_like(x, dtype=program.output_dtype) if g_out is None else g_out
    rows = x.shape[0] if ctx.record else 1
    g_states = [
        torch.zeros((rows, x.shape[1]), dtype=s.dtype, device=x.device)
        if g is None
        else g
        for g, s in zip(g_states, states)
    ]
    needs_xs, needs_states, needs_params = ctx.needs_input_grad[1:4]
    param_grads = any(needs_params)
    results = torch.ops.norse.generated_scan_backward(
        ctx.key,
        g_out,
        list(g_states),
        list(xs),
        list(states),
        list(params),
        ctx.record,
        param_grads,
    )
    g_xs = [g if needed else None for g, needed in zip(results[:inputs], needs_xs)]
    g_states0 = results[inputs : inputs + count]
    g_params = parameter_gradients(
        program,
        params,
        results[inputs + count :] if param_grads else None,
        needs_params,
    )
    g_states0 = [g if needed else None for g, needed in zip(g_states0, needs_states)]
    return None, g_xs, g_states0, g_params, None


torch.library.register_autograd(
    "norse::generated_scan", _backward, setup_context=_setup_context
)
