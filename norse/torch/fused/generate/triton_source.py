r"""Triton source of the fused forward and backward kernels of a traced step (CUDA).

The same computation as :mod:`.numba_source`, for the GPU: one Triton program per block
of :data:`BLOCK` neurons loops over time with the state in registers, so every step
reads and writes one contiguous run of each ``(T, M)`` tensor per program. Parameters
are loaded once, and the nodes that depend on parameters and constants only are
computed once, before the loop.

Layout (``T`` steps, ``M`` neurons with the batch): input ``x`` ``(T, M)``, initial
state fields ``(M,)``, parameters ``(M,)`` (per neuron) or ``(1,)`` (shared). The module
has two launchers (plain Python, called by :mod:`.runtime`):

* ``forward(x, states, params, outputs, record)``: ``outputs`` is ``[out (T, M),
  R...]`` with one ``R`` per state field, ``(T, M)`` (the state after every step,
  ``record``) or ``(1, M)`` (the final state);
* ``backward(g_out, g_states, x, states, params, outputs, record, param_grads)``:
  backpropagation through time. ``g_out`` ``(T, M)``, ``g_states`` shaped like the
  forward's ``R``; ``outputs`` is ``[g_x (T, M), g_s0 (M,) per state field, g_p (M,)
  per differentiable parameter]``, the parameter gradients per neuron (the caller sums
  those of shared parameters) and only written with ``param_grads``. Each program
  replays the forward pass of its block, storing the state at the start of every step
  in a scratch tensor ``(T, n_states, M)`` that the launcher allocates (float32, or
  float64 if a state field is float64), then walks back in time applying the derived
  vector-Jacobian product. Nothing is kept between forward and backward but the inputs.

Numerics. float32 and float64 follow the dtypes of the graph's nodes exactly, in the
reference's order of operations: the kernels are compiled with
``enable_fp_fusion=False`` (no fused multiply-adds), float32 division and square root
are the IEEE ones (``tl.div_rn``, ``tl.sqrt_rn``; Triton's ``/`` and ``tl.sqrt`` are
approximate on float32), and ``exp``, ``log``, ``tanh`` and ``pow`` are libdevice's,
the CUDA math library PyTorch's CUDA kernels call too (denormals not flushed). float16
and bfloat16 values are loaded into float32 and every node whose dtype is a half type is
computed, and kept, in float32; they are rounded only when stored. The results then
match the half-precision reference within rounding, not bit for bit (the reference
rounds every intermediate result to the half type); they equal the float32 computation
on the upcast inputs rounded to the output dtype.

Triton's interpreter (``TRITON_INTERPRET=1``, CPU tensors, as the tests run without a
GPU) has no libdevice: there ``exp`` and ``log`` are NumPy's (float32 ``exp`` may
differ from PyTorch's by an ulp) and ``tanh`` and ``pow`` are computed from them
(within a few ulps).
"""

from typing import Dict, List, Sequence

import torch

from norse.torch.fused.generate.derive import Adjoint
from norse.torch.fused.generate.expressions import (
    Dialect,
    lines,
    literal_value,
    operand,
)
from norse.torch.fused.generate.numba_source import Layout, _dependencies
from norse.torch.fused.generate.trace import ARITY, Graph, Node

#: Neurons per Triton program (one per thread with :data:`NUM_WARPS` warps).
BLOCK = 128
#: Warps per program.
NUM_WARPS = 4

#: The Triton type each graph dtype is computed in: half types in float32.
_KERNEL_TYPES = {
    torch.float16: "tl.float32",
    torch.bfloat16: "tl.float32",
    torch.float32: "tl.float32",
    torch.float64: "tl.float64",
    torch.bool: "tl.int1",
}


def kernel_type(dtype: torch.dtype) -> str:
    """The Triton type a value of ``dtype`` is held in inside the kernels."""
    return _KERNEL_TYPES[dtype]


class TritonDialect(Dialect):
    """Spelling of Triton: literals typed with ``tl.full``, IEEE division and square
    root on float32, the math functions of the module prelude (libdevice, or their
    interpreter equivalents)."""

    def type_name(self, dtype: torch.dtype) -> str:
        return kernel_type(dtype)

    def literal(self, value: float, dtype: torch.dtype) -> str:
        text = literal_value(value)
        text = {"nan": "_NAN", "inf": "_INF", "-inf": "-_INF"}.get(text, text)
        if dtype is None:  # a Python number: weakly typed, as in PyTorch
            return text
        # A typed 0-dim constant: the value rounds to the dtype as PyTorch's would.
        return f"tl.full([], {text}, {kernel_type(dtype)})"

    def cast(self, expression: str, dtype: torch.dtype) -> str:
        return f"({expression}).to({kernel_type(dtype)})"

    def select(self, condition: str, a: str, b: str) -> str:
        return f"tl.where({condition}, {a}, {b})"

    def function(self, name: str, argument: str, dtype: torch.dtype) -> str:
        if name == "abs":
            return f"tl.abs({argument})"
        if name == "sqrt":
            if kernel_type(dtype) == "tl.float32":
                return f"tl.sqrt_rn({argument})"
            return f"tl.sqrt({argument})"  # float64: always IEEE
        return f"_{name}({argument})"  # exp, log, tanh, pow: the prelude

    def logical(self, op: str, a: str, b) -> str:
        if op == "not":
            return f"(~{a})"
        return f"({a} {'&' if op == 'and' else '|'} {b})"

    def divide(self, a: str, b: str, dtype: torch.dtype) -> str:
        if kernel_type(dtype) == "tl.float32":
            return f"tl.div_rn({a}, {b})"
        return f"{a} / {b}"


#: Module header: imports, the math functions and the launch options.
_PRELUDE = """import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

BLOCK = {block}
_OPTIONS = dict(num_warps={warps}, enable_fp_fusion=False, enable_reflect_ftz=False)
_INF = tl.constexpr(float("inf"))
_NAN = tl.constexpr(float("nan"))


@triton.jit
def _exp_interpreted(x):
    return tl.exp(x)


@triton.jit
def _log_interpreted(x):
    return tl.log(x)


@triton.jit
def _tanh_interpreted(x):
    # exp of a non-positive argument: no overflow
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -t, t)


@triton.jit
def _pow_interpreted(x, y):
    magnitude = tl.exp(y * tl.log(tl.abs(x)))
    integral = tl.floor(y) == y
    odd = integral & (tl.floor(y * 0.5) != y * 0.5)
    signed = tl.where(odd, -magnitude, magnitude)
    # a negative base has a real power only for an integral exponent (sqrt: NaN)
    return tl.where(x < 0, tl.where(integral, signed, tl.sqrt(x)), magnitude)


# The interpreter has no libdevice (its functions are stubs there).
if triton.knobs.runtime.interpret:
    _exp, _log = _exp_interpreted, _log_interpreted
    _tanh, _pow = _tanh_interpreted, _pow_interpreted
else:
    _exp, _log, _tanh, _pow = libdevice.exp, libdevice.log, libdevice.tanh, libdevice.pow


def _grid(neurons):
    return (triton.cdiv(neurons, BLOCK),)
"""


def _dependence(graph: Graph, leaves: Sequence[str]) -> List[bool]:
    """Whether each node depends on a leaf of the kinds ``leaves`` (``"lane_param"``:
    a per-neuron parameter)."""
    result: List[bool] = []
    for node in graph.nodes:
        if node.op == "param":
            result.append(node.lane and "lane_param" in leaves)
        elif node.op in ("input", "state", "grad_out", "grad_state"):
            result.append(node.op in leaves)
        elif node.op == "const":
            result.append(False)
        else:
            operands = node.args[: ARITY[node.op]]
            result.append(any(a is not None and result[a] for a in operands))
    return result


class _Emitter:
    """Shared pieces of the kernels of one graph."""

    def __init__(self, graph: Graph, adjoint: Adjoint, layout: Layout) -> None:
        self.graph = graph
        self.adjoint = adjoint
        self.layout = layout
        self.dialect = TritonDialect()
        #: Nodes that change from step to step (the others are computed before the
        #: loop), and nodes with one value per neuron (the others are 0-dim).
        self.per_step = _dependence(graph, ("input", "state", "grad_out", "grad_state"))
        self.per_lane = _dependence(
            graph, ("input", "state", "grad_out", "grad_state", "lane_param")
        )
        self.leaves: Dict[int, str] = {graph.input: "xv"}
        for k, field in enumerate(layout.states):
            self.leaves[graph.states[field]] = f"s{k}"
        for k, field in enumerate(layout.params):
            self.leaves[graph.params[field]] = f"p{k}"
        self.leaves[adjoint.grad_out] = "gout"
        for k, field in enumerate(layout.states):
            self.leaves[adjoint.grad_states[field]] = f"gnew{k}"
        self.state_dtypes = [graph.nodes[graph.states[f]].dtype for f in layout.states]

    def leaf(self, index: int, node: Node) -> str:
        return self.leaves[index]

    def lines(self, indices: Sequence[int]) -> List[str]:
        return lines(self.graph, indices, self.dialect, self.leaf)

    def split(self, indices: Sequence[int]):
        """``(before the loop, in the loop)``: the nodes that do not change between
        steps, and the others (each in graph order)."""
        before = [i for i in indices if not self.per_step[i]]
        inside = [i for i in indices if self.per_step[i]]
        return before, inside

    def value(self, index: int, dtype: torch.dtype) -> str:
        """Node ``index`` as ``dtype``, one value per lane of the block."""
        text = operand(self.graph, index, dtype, self.dialect)
        if self.per_lane[index]:
            return text
        return f"tl.broadcast_to({text}, (BLOCK,))"

    def load(self, pointer: str, offsets: str, dtype: torch.dtype) -> str:
        """A masked load converted to the kernel type of ``dtype``."""
        text = f"tl.load({pointer} + {offsets}, mask=mask, other=0.0)"
        if dtype in (torch.float16, torch.bfloat16):
            text += ".to(tl.float32)"
        return text

    def start(self) -> List[str]:
        """Lane offsets and mask, the parameters and the initial state."""
        src = [
            "    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
            "    mask = offs < neurons",
        ]
        for k, field in enumerate(self.layout.params):
            dtype = self.graph.nodes[self.graph.params[field]].dtype
            if field in self.layout.lane_params:
                src.append(f"    p{k} = {self.load(f'P{k}', 'offs', dtype)}")
            else:
                load = f"tl.load(P{k})"
                if dtype in (torch.float16, torch.bfloat16):
                    load += ".to(tl.float32)"
                src.append(f"    p{k} = {load}")
        for k, dtype in enumerate(self.state_dtypes):
            src.append(f"    s{k} = {self.load(f'S{k}', 'offs', dtype)}")
        return src

    def step(self, indices: Sequence[int], indent: str) -> List[str]:
        """The assignments of ``indices`` that change between steps."""
        return [indent + line for line in self.lines(indices)]

    def new_states(self, indent: str) -> List[str]:
        """The state after the step (each field in its own dtype, as the loop carries
        it; the node names still hold the values before the assignment)."""
        return [
            f"{indent}s{k} = {self.value(self.graph.new_states[field], dtype)}"
            for k, (field, dtype) in enumerate(
                zip(self.layout.states, self.state_dtypes)
            )
        ]


def _row(offsets: str, k: int) -> str:
    """Offsets of field ``k`` of a ``(n, M)`` row starting at ``offsets``."""
    return offsets if k == 0 else f"{offsets} + {k} * neurons"


def _store(pointer: str, offsets: str, value: str) -> str:
    return (
        f"tl.store({pointer} + {offsets}, ({value}).to({pointer}.dtype.element_ty), "
        "mask=mask)"
    )


def forward_source(emitter: _Emitter) -> str:
    """The forward kernel ``_forward_kernel`` (``RECORD``: the state of every step, or
    the final state)."""
    graph, layout = emitter.graph, emitter.layout
    n_states = len(layout.states)
    nodes = _dependencies(graph, [graph.output, *graph.new_states.values()])
    before, inside = emitter.split(nodes)
    s_args = "".join(f"S{k}, " for k in range(n_states))
    p_args = "".join(f"P{k}, " for k in range(len(layout.params)))
    r_args = "".join(f"R{k}, " for k in range(n_states))
    output_dtype = graph.nodes[graph.output].dtype
    src = [
        "@triton.jit",
        f"def _forward_kernel(X, {s_args}{p_args}OUT, {r_args}steps, neurons, "
        "RECORD: tl.constexpr, BLOCK: tl.constexpr):",
        *emitter.start(),
        *emitter.step(before, "    "),
        "    # Element offsets of this step's row, 64-bit: T * M may exceed 2**31.",
        "    row = offs.to(tl.int64)",
        "    for t in range(steps):",
        f"        xv = {emitter.load('X', 'row', graph.nodes[graph.input].dtype)}",
        *emitter.step(inside, "        "),
        "        " + _store("OUT", "row", emitter.value(graph.output, output_dtype)),
        *emitter.new_states("        "),
    ]
    if n_states:
        src.append("        if RECORD:")
        src += [
            f"            {_store(f'R{k}', 'row', f's{k}')}" for k in range(n_states)
        ]
    src.append("        row += neurons")
    if n_states:
        src.append("    if not RECORD:")
        src += [f"        {_store(f'R{k}', 'offs', f's{k}')}" for k in range(n_states)]
    return "\n".join(src) + "\n"


def backward_source(emitter: _Emitter, wanted: Sequence[str]) -> str:
    """The backward kernel ``_backward_kernel``; ``wanted``: the parameter fields whose
    gradients it accumulates when ``PARAM_GRADS``."""
    graph, adjoint, layout = emitter.graph, emitter.adjoint, emitter.layout
    n_states = len(layout.states)
    replay = _dependencies(graph, list(graph.new_states.values()))
    base_roots = [adjoint.input, *(adjoint.states[f] for f in layout.states)]
    base = _dependencies(graph, base_roots)
    param_roots = [adjoint.params[f] for f in wanted]
    extra = sorted(set(_dependencies(graph, param_roots)) - set(base))
    before, _ = emitter.split(sorted(set(replay) | set(base) | set(extra)))
    _, replay_inside = emitter.split(replay)
    _, base_inside = emitter.split(base)
    _, extra_inside = emitter.split(extra)

    x_dtype = graph.nodes[graph.input].dtype
    gs_args = "".join(f"GS{k}, " for k in range(n_states))
    s_args = "".join(f"S{k}, " for k in range(n_states))
    p_args = "".join(f"P{k}, " for k in range(len(layout.params)))
    g0_args = "".join(f"G0_{k}, " for k in range(n_states))
    gp_args = "".join(f"GP{k}, " for k in range(len(wanted)))
    h_arg = "H, " if n_states else ""
    src = [
        "@triton.jit",
        f"def _backward_kernel(GO, {gs_args}X, {s_args}{p_args}GX, {g0_args}{gp_args}"
        f"{h_arg}steps, neurons, RECORD: tl.constexpr, PARAM_GRADS: tl.constexpr, "
        "BLOCK: tl.constexpr):",
        *emitter.start(),
        *emitter.step(before, "    "),
        "    # Element offsets (64-bit) of this step's row of the (T, M) tensors and of",
        "    # the scratch (T, n_states, M).",
        "    row = offs.to(tl.int64)",
        "    h = offs.to(tl.int64)",
    ]
    if n_states:
        src += [
            "    for t in range(steps):",
            *[f"        {_store('H', _row('h', k), f's{k}')}" for k in range(n_states)],
            f"        xv = {emitter.load('X', 'row', x_dtype)}",
            *emitter.step(replay_inside, "        "),
            *emitter.new_states("        "),
            "        row += neurons",
            f"        h += {n_states} * neurons",
        ]
    else:
        src += ["    for t in range(steps):", "        row += neurons"]
    # Adjoints of the state after the step, and the per-neuron parameter gradients.
    for k, field in enumerate(layout.states):
        grad_type = kernel_type(graph.nodes[adjoint.grad_states[field]].dtype)
        src += [
            "    if RECORD:",
            f"        a{k} = tl.zeros((BLOCK,), {grad_type})",
            "    else:",
            f"        a{k} = {emitter.load(f'GS{k}', 'offs', graph.nodes[adjoint.grad_states[field]].dtype)}",
        ]
    for k, field in enumerate(wanted):
        grad_type = kernel_type(graph.nodes[adjoint.params[field]].dtype)
        src.append(f"    c{k} = tl.zeros((BLOCK,), {grad_type})")
    go_dtype = graph.nodes[adjoint.grad_out].dtype
    src += [
        "    for back in range(steps):",
        "        row -= neurons",
        f"        xv = {emitter.load('X', 'row', x_dtype)}",
        f"        gout = {emitter.load('GO', 'row', go_dtype)}",
    ]
    if n_states:
        src.append(f"        h -= {n_states} * neurons")
    for k, (field, dtype) in enumerate(zip(layout.states, emitter.state_dtypes)):
        seed_dtype = graph.nodes[adjoint.grad_states[field]].dtype
        src += [
            f"        s{k} = tl.load(H + {_row('h', k)}, mask=mask, other=0.0)"
            f".to({kernel_type(dtype)})",
            "        if RECORD:",
            f"            gnew{k} = a{k} + {emitter.load(f'GS{k}', 'row', seed_dtype)}",
            "        else:",
            f"            gnew{k} = a{k}",
        ]
    src += emitter.step(base_inside, "        ")
    if wanted:
        src.append("        if PARAM_GRADS:")
        src += emitter.step(extra_inside, "            ")
        for k, field in enumerate(wanted):
            index = adjoint.params[field]
            dtype = graph.nodes[index].dtype
            src.append(f"            c{k} += {emitter.value(index, dtype)}")
    if adjoint.input is None:
        g_x = "tl.zeros((BLOCK,), tl.float32)"
    else:
        g_x = emitter.value(adjoint.input, graph.nodes[adjoint.input].dtype)
    src.append(f"        {_store('GX', 'row', g_x)}")
    for k, field in enumerate(layout.states):
        index = adjoint.states[field]
        seed_dtype = graph.nodes[adjoint.grad_states[field]].dtype
        if index is None:
            src.append(f"        a{k} = tl.zeros((BLOCK,), {kernel_type(seed_dtype)})")
        else:
            src.append(f"        a{k} = {emitter.value(index, seed_dtype)}")
    src += [f"    {_store(f'G0_{k}', 'offs', f'a{k}')}" for k in range(n_states)]
    if wanted:
        src.append("    if PARAM_GRADS:")
        src += [
            f"        {_store(f'GP{k}', 'offs', f'c{k}')}" for k in range(len(wanted))
        ]
    return "\n".join(src) + "\n"


def _launchers(layout: Layout, wanted: Sequence[str], scratch: str) -> str:
    n_states = len(layout.states)
    if n_states:
        scratch_lines = f"""    # The state at the start of every step, written by the replay.
    scratch = [
        torch.empty((max(steps, 1), {n_states}, neurons), dtype={scratch}, device=x.device)
    ]"""
    else:
        scratch_lines = "    scratch = []"
    return f'''
def forward(x, states, params, outputs, record):
    """Runs the step over time: ``x`` ``(T, M)``, ``states`` ``(M,)`` each, ``params``
    ``(M,)`` or ``(1,)``; writes ``outputs`` ``[out (T, M), R...]``, each ``R``
    ``(T, M)`` (``record``) or ``(1, M)``."""
    steps, neurons = x.shape
    if neurons == 0:
        return
    _forward_kernel[_grid(neurons)](
        x, *states, *params, *outputs, steps, neurons,
        RECORD=bool(record), BLOCK=BLOCK, **_OPTIONS,
    )


def backward(g_out, g_states, x, states, params, outputs, record, param_grads):
    """Backpropagation through time: ``g_out`` ``(T, M)``, ``g_states`` ``(T, M)``
    (``record``) or ``(1, M)`` each; writes ``outputs`` ``[g_x (T, M), g_s0 (M,)...,
    g_p (M,)...]`` (the parameter gradients only with ``param_grads``)."""
    steps, neurons = x.shape
    if neurons == 0:
        return
    g_x = outputs[0]
    g_states0 = list(outputs[1 : 1 + {n_states}])
    g_params = list(outputs[1 + {n_states} :])
    if not param_grads:  # pointers the kernel never writes through
        g_params = [g_x] * {len(wanted)}
{scratch_lines}
    _backward_kernel[_grid(neurons)](
        g_out, *g_states, x, *states, *params, g_x, *g_states0, *g_params, *scratch,
        steps, neurons, RECORD=bool(record), PARAM_GRADS=bool(param_grads),
        BLOCK=BLOCK, **_OPTIONS,
    )
'''


def module_source(
    graph: Graph, adjoint: Adjoint, layout: Layout, differentiable: Sequence[str]
) -> str:
    """The Triton module of a traced step: kernels and the ``forward`` and
    ``backward`` launchers (see the module doc); ``differentiable``: the parameter
    fields (of ``layout.params``, in order) whose gradients ``backward`` returns."""
    emitter = _Emitter(graph, adjoint, layout)
    wide = any(d == torch.float64 for d in emitter.state_dtypes)
    scratch = "torch.float64" if wide else "torch.float32"
    return "\n\n".join(
        [
            _PRELUDE.format(block=BLOCK, warps=NUM_WARPS),
            forward_source(emitter),
            backward_source(emitter, list(differentiable)),
            _launchers(layout, differentiable, scratch),
        ]
    )


# -- single steps (the stepped driver of steps with matrix products) -----------------


class _StepEmitter(_Emitter):
    """The pieces of one step's kernels: inputs ``X0, X1, ...`` (a stage reads its
    products, values and state fields as inputs), spelled ``x0, x1, ...``."""

    def __init__(self, graph: Graph, adjoint: Adjoint, layout: Layout) -> None:
        super().__init__(graph, adjoint, layout)
        for k, index in enumerate(graph.inputs):
            self.leaves[index] = f"x{k}"

    def start(self) -> List[str]:
        """Lanes ``[lo, hi)``, the parameters, the state before the step and the
        inputs."""
        src = [
            "    offs = lo + tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
            "    mask = offs < hi",
            *super().start()[2:],
        ]
        for k, index in enumerate(self.graph.inputs):
            dtype = self.graph.nodes[index].dtype
            src.append(f"    x{k} = {self.load(f'X{k}', 'offs', dtype)}")
        return src

    def stored(self, pointer: str, index, dtype: torch.dtype) -> str:
        """The store of node ``index`` (``None``: zero) as ``dtype`` to ``pointer``."""
        if index is None:
            value = f"tl.zeros((BLOCK,), {kernel_type(dtype)})"
        else:
            value = self.value(index, dtype)
        return f"    {_store(pointer, 'offs', value)}"


def _step_arguments(graph: Graph, layout: Layout, wanted: Sequence[str] = ()):
    """The argument runs of the single-step kernels, as
    :func:`.numba_source.step_source` and its adjoint take them."""
    runs = {"X": len(graph.inputs), "S": len(layout.states)}
    runs.update({"P": len(layout.params), "R": len(layout.states)})
    runs.update({"GS": len(layout.states), "GX": len(graph.inputs)})
    runs.update({"GS0_": len(layout.states), "GP": len(wanted)})
    return {key: "".join(f"{key}{k}, " for k in range(n)) for key, n in runs.items()}


def step_forward_source(emitter: _StepEmitter) -> str:
    """``_forward_step_kernel``: one step over lanes ``[lo, hi)``: the output to
    ``OUT``, the new state fields to ``R...``."""
    graph, layout = emitter.graph, emitter.layout
    a = _step_arguments(graph, layout)
    nodes = _dependencies(graph, [graph.output, *graph.new_states.values()])
    src = [
        "@triton.jit",
        f"def _forward_step_kernel({a['X']}{a['S']}{a['P']}OUT, {a['R']}lo, hi, "
        "BLOCK: tl.constexpr):",
        *emitter.start(),
        *emitter.step(nodes, "    "),
        emitter.stored("OUT", graph.output, graph.nodes[graph.output].dtype),
    ]
    for k, (field, dtype) in enumerate(zip(layout.states, emitter.state_dtypes)):
        src.append(emitter.stored(f"R{k}", graph.new_states[field], dtype))
    return "\n".join(src) + "\n"


def step_backward_source(
    emitter: _StepEmitter, wanted: Sequence[str], name: str
) -> str:
    """``name``: the adjoint of :func:`step_forward_source` over lanes ``[lo, hi)``:
    from the gradients of the output (``GO``) and of the new state (``GS...``) those of
    the inputs (``GX...``), of the state before (``GS0_...``) and, per lane, of the
    ``wanted`` parameters (``GP...``)."""
    graph, adjoint, layout = emitter.graph, emitter.adjoint, emitter.layout
    a = _step_arguments(graph, layout, wanted)
    roots = [*adjoint.inputs, *(adjoint.states[f] for f in layout.states)]
    roots += [adjoint.params[f] for f in wanted]
    go_dtype = graph.nodes[adjoint.grad_out].dtype
    src = [
        "@triton.jit",
        f"def {name}(GO, {a['GS']}{a['X']}{a['S']}{a['P']}{a['GX']}{a['GS0_']}"
        f"{a['GP']}lo, hi, BLOCK: tl.constexpr):",
        *emitter.start(),
        f"    gout = {emitter.load('GO', 'offs', go_dtype)}",
    ]
    for k, field in enumerate(layout.states):
        dtype = graph.nodes[adjoint.grad_states[field]].dtype
        src.append(f"    gnew{k} = {emitter.load(f'GS{k}', 'offs', dtype)}")
    src += emitter.step(_dependencies(graph, roots), "    ")
    for k, index in enumerate(adjoint.inputs):
        src.append(emitter.stored(f"GX{k}", index, graph.nodes[graph.inputs[k]].dtype))
    for k, (field, dtype) in enumerate(zip(layout.states, emitter.state_dtypes)):
        src.append(emitter.stored(f"GS0_{k}", adjoint.states[field], dtype))
    for k, field in enumerate(wanted):
        dtype = graph.nodes[adjoint.params[field]].dtype
        src.append(emitter.stored(f"GP{k}", adjoint.params[field], dtype))
    return "\n".join(src) + "\n"


_STEP_LAUNCHER = '''
def {name}(*args):
    """{kernel} over lanes ``[lo, hi)``: the arguments of the Numba kernel of the same
    name (tensors, then ``lo, hi``)."""
    *tensors, lo, hi = args
    if hi > lo:
        {kernel}[(triton.cdiv(hi - lo, BLOCK),)](
            *tensors, lo, hi, BLOCK=BLOCK, **_OPTIONS
        )
'''


def step_module_source(
    graph: Graph, adjoint: Adjoint, layout: Layout, differentiable: Sequence[str]
) -> str:
    """The Triton module of a stage (:mod:`.stages`) run one step at a time:
    ``forward_step``, ``backward_step_all`` (with the per-lane gradients of the
    ``differentiable`` parameters) and ``backward_step_states``, called as the Numba
    kernels of :func:`.numba_source.step_source` and
    :func:`.numba_source.step_backward_source` (tensors in place of arrays, each
    element ``j`` of a run of lanes at ``pointer + j``)."""
    emitter = _StepEmitter(graph, adjoint, layout)
    parts = [
        _PRELUDE.format(block=BLOCK, warps=NUM_WARPS),
        step_forward_source(emitter),
    ]
    launchers = [("forward_step", "_forward_step_kernel")]
    for wanted, kind in ((list(differentiable), "all"), ([], "states")):
        kernel = f"_backward_step_{kind}_kernel"
        parts.append(step_backward_source(emitter, wanted, kernel))
        launchers.append((f"backward_step_{kind}", kernel))
    parts += [_STEP_LAUNCHER.format(name=n, kernel=k) for n, k in launchers]
    return "\n\n".join(parts)
