"""Numba source of the fused forward and backward kernels of a traced step.

Layout (``T`` steps, ``M`` neurons with the batch): inputs ``X0, X1, ...`` ``(T, M)``
(one per input leaf of the graph), initial state fields ``(M,)``, parameters ``(M,)``
(per neuron) or ``(1,)`` (shared). Neurons run in chunks of contiguous lanes
(:data:`FORWARD_CHUNK`, :data:`BACKWARD_CHUNK`); each chunk loops over time with its
state in a lane buffer and takes row slices outside the lane loop, so that every step
touches one contiguous run per chunk and the lane loop vectorises. ``lo, hi``: the
neuron range of this call (threads split it).

``forward_final`` / ``forward_record(X..., S..., P..., out, R..., lo, hi)`` write the
outputs and, per state field, ``R`` ``(1, M)`` (the final state) or ``(T, M)`` (every
step).

``backward_{all,states}_{final,record}(GO, GS..., X..., S..., P..., GX..., GS0...,
GP..., lo, hi)`` is backpropagation through time: per chunk it replays the forward
pass, keeping in a chunk-local record the fewest values of every step from which the
reverse loop computes what it needs without the inputs (:mod:`.record`; nothing is
stored between forward and backward but the inputs), then walks back in time applying
the derived vector-Jacobian product. ``GO``: the gradient of the outputs ``(T, M)``, or
``(1, 1)`` for one value for all; ``GS``: gradients of the state outputs (shaped like
``R``); ``GX`` ``(T, M)``; ``GS0`` ``(M,)``; ``GP``: per-neuron parameter gradients
``(M,)`` (``all`` only; the caller sums those of shared parameters).
"""

from typing import Callable, Collection, Dict, List, Optional, Sequence, Tuple

import torch

from norse.torch.fused.generate.derive import Adjoint
from norse.torch.fused.generate.expressions import (
    CHEAP_POWERS,
    Dialect,
    lines,
    literal_value,
    name,
)
from norse.torch.fused.generate.record import recorded_values
from norse.torch.fused.generate.trace import ARITY, Graph, Node

#: Lanes per chunk: long runs amortise the per-row loop set-up; the chunk's state
#: buffers stay in L1 (forward) or its per-step record in L2 (backward).
FORWARD_CHUNK = 1024
#: Lanes per chunk of the time-tiled forward pass when the parameters are shared: the
#: state rows (128 KiB each in float32) stay in L2, and the eight rows a pass streams
#: (four input rows, four output rows) are long enough for the hardware prefetchers.
TILED_FORWARD_CHUNK = 32768
#: Fewest and most lanes per chunk of the backward kernels; between them, as many as
#: let the chunk's record of all steps fit in RECORD_BYTES.
BACKWARD_CHUNK = 256
BACKWARD_CHUNK_MAX = 1024
RECORD_BYTES = 512 * 1024
CHUNK = BACKWARD_CHUNK
#: Steps per pass over a chunk's lanes in the forward kernel without state records.
TIME_TILE = 4
#: Vector iterations LLVM interleaves in the forward kernels' lane loops: each lane's
#: steps are one chain of dependent operations, and with LLVM's own choice (one) the CPU
#: stalls on it before it reaches the independent lanes next to it
#: (:mod:`norse.torch.fused._llvm_options`).
FORWARD_INTERLEAVE = 4

_NUMPY = {
    torch.float32: "np.float32",
    torch.float64: "np.float64",
    torch.bool: "np.bool_",
}


class NumbaDialect(Dialect):
    def type_name(self, dtype: torch.dtype) -> str:
        return _NUMPY[dtype]

    def literal(self, value: float, dtype: torch.dtype) -> str:
        text = literal_value(value)
        if text in ("nan", "inf", "-inf"):
            text = {"nan": "np.nan", "inf": "np.inf", "-inf": "-np.inf"}[text]
        return f"{_NUMPY[dtype]}({text})"

    def cast(self, expression: str, dtype: torch.dtype) -> str:
        return f"{_NUMPY[dtype]}({expression})"

    def select(self, condition: str, a: str, b: str) -> str:
        return f"({a} if {condition} else {b})"

    def function(self, name: str, argument: str, dtype: torch.dtype) -> str:
        if name == "abs":
            return f"abs({argument})"
        if name == "exp":  # the libm call would keep the lane loop scalar
            return f"{'exp32' if dtype == torch.float32 else 'exp64'}({argument})"
        return f"np.{'power' if name == 'pow' else name}({argument})"

    def logical(self, op: str, a: str, b) -> str:
        if op == "not":
            return f"(not {a})"
        return f"({a} {op} {b})"


def _dependencies(
    graph: Graph, roots: Sequence[int], known: Collection[int] = ()
) -> List[int]:
    """The nodes ``roots`` depend on, in graph order; the arguments of the ``known``
    nodes (values read rather than computed) are not followed."""
    seen = set()
    stack = [r for r in roots if r is not None]
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        node = graph.nodes[index]
        if node.op in ARITY and index not in known:
            stack.extend(a for a in node.args[: ARITY[node.op]] if a is not None)
    return sorted(seen)


class Layout:
    """Which leaves a kernel takes, and how it names them."""

    def __init__(self, graph: Graph, params: Sequence[str]) -> None:
        self.states = list(graph.states)
        self.params = list(params)
        self.lane_params = {f for f in params if graph.nodes[graph.params[f]].lane}


def _names(prefix: str, count: int) -> str:
    """``"P0, P1, "`` for ``("P", 2)``: a run of kernel arguments."""
    return "".join(f"{prefix}{k}, " for k in range(count))


def _arguments(
    graph: Graph, layout: Layout, wanted: Sequence[str] = ()
) -> Dict[str, str]:
    """The kernels' argument runs: inputs ``X``, states ``S``, parameters ``P``, new
    states ``R``; for the backward kernels the gradients ``GS`` (of the new state),
    ``GX``, ``GS0_`` (of the state before) and ``GP`` (of the ``wanted`` parameters)."""
    inputs, states = len(graph.inputs), len(layout.states)
    return {
        "x": _names("X", inputs),
        "s": _names("S", states),
        "p": _names("P", len(layout.params)),
        "r": _names("R", states),
        "gs": _names("GS", states),
        "gx": _names("GX", inputs),
        "gs0": _names("GS0_", states),
        "gp": _names("GP", len(wanted)),
    }


def _leaf_names(graph: Graph, layout: Layout) -> Dict[int, str]:
    names = {index: f"xr{k}[j]" for k, index in enumerate(graph.inputs)}
    for k, field in enumerate(layout.states):
        names[graph.states[field]] = f"s{k}"
    for k, field in enumerate(layout.params):
        index = graph.params[field]
        names[index] = f"L{k}[j]" if field in layout.lane_params else f"q{k}"
    return names


def _forward_start(
    graph: Graph, layout: Layout, function_name: str, recorded: Sequence[int] = ()
):
    """``(dialect, leaves, nodes, source)`` of a forward kernel: the spelling of the
    leaves, the nodes of one step (those ``recorded`` included) and the kernel's first
    lines (its signature, with a ``REC`` argument per recorded value)."""
    a = _arguments(graph, layout)
    records = _names("REC", len(recorded))
    return (
        NumbaDialect(),
        _leaf_names(graph, layout),
        _dependencies(graph, [graph.output, *graph.new_states.values(), *recorded]),
        [
            "@njit(cache=True, nogil=True, error_model='numpy')",
            f"def {function_name}({a['x']}{a['s']}{a['p']}out, {a['r']}{records}"
            "lo, hi):",
        ],
    )


def forward_source(graph: Graph, layout: Layout, record: bool) -> str:
    """The forward kernel; ``record``: whether it writes the state of every step.

    Without records, each pass over a chunk's lanes advances them :data:`TIME_TILE`
    steps with the state in registers in between (one lane-buffer load and store per
    tile instead of per step); the steps left over run one per pass."""
    dialect, leaves, body_nodes, src = _forward_start(
        graph, layout, f"forward_{'record' if record else 'final'}"
    )
    states = layout.states
    src.append("    steps = X0.shape[0]")
    for k, field in enumerate(layout.params):
        if field not in layout.lane_params:
            src.append(f"    q{k} = P{k}[0]")
    tiled = not record and bool(states)
    chunk = TILED_FORWARD_CHUNK if tiled and not layout.lane_params else FORWARD_CHUNK
    for k, field in enumerate(states):
        src.append(f"    B{k} = np.empty({chunk}, S{k}.dtype)")
    src += [
        f"    for c0 in range(lo, hi, {chunk}):",
        f"        width = min({chunk}, hi - c0)",
        "        for j in range(width):",
    ]
    for k in range(len(states)):
        src.append(f"            B{k}[j] = S{k}[c0 + j]")
    src += _lane_parameter_rows(layout)
    first = "0"
    if tiled:
        src += [f"        for t in range(0, steps - {TIME_TILE - 1}, {TIME_TILE}):"]
        for u in range(TIME_TILE):
            src += _input_rows(graph, f"_{u}", f" + {u}")
            src.append(f"            orow_{u} = out[t + {u}, c0 : c0 + width]")
        src.append("            for j in range(width):")
        src += [f"                s{k} = B{k}[j]" for k in range(len(states))]
        for u in range(TIME_TILE):
            src += _step_lines(graph, layout, body_nodes, dialect, leaves, f"_{u}")
        src += [f"                B{k}[j] = s{k}" for k in range(len(states))]
        first = f"steps - steps % {TIME_TILE}"
    # Row slices made outside the lane loop keep it vectorisable.
    src += [
        f"        for t in range({first}, steps):",
        *_input_rows(graph),
        "            orow = out[t, c0 : c0 + width]",
    ]
    if record:
        for k in range(len(states)):
            src.append(f"            Rr{k} = R{k}[t, c0 : c0 + width]")
    src.append("            for j in range(width):")
    src += [f"                s{k} = B{k}[j]" for k in range(len(states))]
    src += _step_lines(graph, layout, body_nodes, dialect, leaves, "")
    for k in range(len(states)):
        src.append(f"                B{k}[j] = s{k}")
        if record:
            src.append(f"                Rr{k}[j] = s{k}")
    if not record:
        src += ["        for j in range(width):"]
        for k in range(len(states)):
            src.append(f"            R{k}[0, c0 + j] = B{k}[j]")
        if not states:
            src.append("            pass")
    return "\n".join(src) + "\n"


def _step_lines(
    graph: Graph,
    layout: Layout,
    nodes: Sequence[int],
    dialect: Dialect,
    leaves: Dict[int, str],
    suffix: str,
) -> List[str]:
    """One step of a lane inside a lane loop: its values from ``s0, s1, ...`` and the
    input rows ``xr0{suffix}, ...``, the output written to ``orow{suffix}``, the new
    state left in ``s0, s1, ...``."""
    inputs = {index: f"xr{k}{suffix}[j]" for k, index in enumerate(graph.inputs)}

    def leaf(index: int, node: Node) -> str:
        return inputs.get(index, leaves[index])

    spelled = {**leaves, **inputs}
    src = [f"                {line}" for line in lines(graph, nodes, dialect, leaf)]
    src.append(
        f"                orow{suffix}[j] = "
        f"{_value(graph, graph.output, dialect, spelled)}"
    )
    # Through temporaries: a new state may be another field's old value.
    new = [
        _value(graph, graph.new_states[field], dialect, spelled)
        for field in layout.states
    ]
    src += [f"                u{k} = {value}" for k, value in enumerate(new)]
    src += [f"                s{k} = u{k}" for k in range(len(new))]
    return src


def _record_offset(rows: int) -> int:
    """Rows left unused at the start of the backward record's allocation, for ``rows``
    rows per step: with the record less than one step's rows in, the backward kernels
    ran 2-4x slower (measured for 3, 3 and 4 rows per step, benchmarks/RESULTS.md)."""
    return 2 * rows


#: Operations whose results the backward replay records, so that the reverse loop reads
#: them instead of computing them again (each costs tens of arithmetic operations);
#: ``pow`` only with exponents other than those spelled with products
#: (:data:`.expressions.CHEAP_POWERS`).
RECORDED_OPS = ("exp", "log", "tanh", "sigmoid", "pow", "sqrt")


def _costly(node: Node) -> bool:
    if node.op == "pow":
        return node.args[1] not in CHEAP_POWERS
    return node.op in RECORDED_OPS


def _history_row(k: int, rows: int, shared: bool) -> str:
    """Row ``k`` of step ``t``'s record (the ``k``-th recorded value, see
    :mod:`.record`); ``rows`` per step."""
    if not shared:
        return f"H{k}[t]"
    return f"work[{_record_offset(rows)} + t * {rows} + {k}]"


def _input_rows(graph: Graph, suffix: str = "", offset: str = "") -> List[str]:
    """This chunk's slices of step ``t`` (``t{offset}``) of every input, named
    ``xr0{suffix}, ...``."""
    return [
        f"            xr{k}{suffix} = X{k}[t{offset}, c0 : c0 + width]"
        for k in range(len(graph.inputs))
    ]


def _lane_parameter_rows(layout: Layout) -> List[str]:
    """This chunk's slices of the per-neuron parameters."""
    return [
        f"        L{k} = P{k}[c0 : c0 + width]"
        for k, field in enumerate(layout.params)
        if field in layout.lane_params
    ]


def _value(graph: Graph, index: int, dialect: Dialect, leaves: Dict[int, str]) -> str:
    node = graph.nodes[index]
    if node.op == "const":
        return dialect.literal(node.args[0], node.dtype or torch.float64)
    return leaves.get(index, name(index))


def backward_source(
    graph: Graph,
    adjoint: Adjoint,
    layout: Layout,
    wanted: Sequence[str],
    record: bool,
    function_name: str,
) -> str:
    """The backward kernel; ``wanted``: parameter fields whose gradient it returns;
    ``record``: whether the forward returned the state of every step."""
    dialect = NumbaDialect()
    leaves = _leaf_names(graph, layout)
    seed_names = {adjoint.grad_out: "gout"}
    for k, field in enumerate(layout.states):
        seed_names[adjoint.grad_states[field]] = f"gnew{k}"

    def leaf(index: int, node: Node) -> str:
        if index in seed_names:
            return seed_names[index]
        return leaves[index]

    states = layout.states
    grad_roots = [*adjoint.inputs, *(adjoint.states[f] for f in states)]
    grad_roots += [adjoint.params[f] for f in wanted]
    needed = _dependencies(graph, grad_roots)
    # Without a state there is nothing to replay: the reverse loop reads the inputs.
    recorded = (
        recorded_values(
            graph,
            needed,
            _seeded(graph, needed, seed_names),
            _costly,
            graph.nodes[graph.states[states[0]]].dtype,
        )
        if states
        else []
    )
    replay_nodes = _dependencies(graph, [*graph.new_states.values(), *recorded])
    adjoint_nodes = [
        index
        for index in _dependencies(graph, grad_roots, recorded)
        if index not in recorded
    ]
    reads_inputs = any(graph.nodes[i].op == "input" for i in adjoint_nodes)

    a = _arguments(graph, layout, wanted)
    src = [
        "@njit(cache=True, nogil=True, error_model='numpy')",
        f"def {function_name}(GO, {a['gs']}{a['x']}{a['s']}{a['p']}{a['gx']}"
        f"{a['gs0']}{a['gp']}lo, hi):",
        "    steps = X0.shape[0]",
    ]
    for k, field in enumerate(layout.params):
        if field not in layout.lane_params:
            src.append(f"    q{k} = P{k}[0]")
    # The per-step record in one allocation when the states share a dtype (few base
    # pointers, few run-time alias checks), _record_offset rows in; the lane buffers and
    # adjoints in arrays of their own (as rows of the record's allocation they made
    # the loops several times slower too).
    kinds = [graph.nodes[index].dtype for index in recorded]
    rows = len(kinds)
    shared = rows > 0 and len(set(kinds)) == 1
    # Chunks as long as the record of all steps allows within RECORD_BYTES (it should
    # stay in L2): long runs per row suit the prefetchers.
    step_bytes = sum(dtype.itemsize for dtype in kinds)
    src.append(
        f"    chunk = {BACKWARD_CHUNK_MAX}"
        if not rows
        else f"    chunk = max({BACKWARD_CHUNK}, min({BACKWARD_CHUNK_MAX}, "
        f"{RECORD_BYTES} // max(1, steps * {step_bytes}) // 64 * 64))"
    )
    if shared:
        src.append(
            f"    work = np.empty(({_record_offset(rows)} + steps * {rows}, chunk), "
            f"{_NUMPY[kinds[0]]})"
        )
    else:
        for k, dtype in enumerate(kinds):
            src.append(f"    H{k} = np.empty((steps, chunk), {_NUMPY[dtype]})")
    for k in range(len(states)):
        src.append(f"    B{k} = np.empty(chunk, S{k}.dtype)")
        src.append(f"    A{k} = np.empty(chunk, GS0_{k}.dtype)")
    for k in range(len(wanted)):
        src.append(f"    C{k} = np.empty(chunk, GP{k}.dtype)")
    # A (1, 1) output gradient is one value for all (e.g. from ``out.sum()``): the
    # reverse loop reads it from a row of copies instead of a (T, M) array.
    src += [
        "    broadcast = GO.shape[0] == 1 and GO.shape[1] == 1",
        "    G = np.empty(chunk, GO.dtype)",
        "    if broadcast:",
        "        G[:] = GO[0, 0]",
        "    for c0 in range(lo, hi, chunk):",
        "        width = min(chunk, hi - c0)",
        "        for j in range(width):",
    ]
    for k in range(len(states)):
        src.append(f"            B{k}[j] = S{k}[c0 + j]")
        src.append(f"            A{k}[j] = {'0' if record else f'GS{k}[0, c0 + j]'}")
    for k in range(len(wanted)):
        src.append(f"            C{k}[j] = 0")
    src += _lane_parameter_rows(layout)
    if rows:
        src += [
            "        for t in range(steps):",
            *_input_rows(graph),
        ]
        for k in range(rows):
            src.append(f"            Hr{k} = {_history_row(k, rows, shared)}")
        src.append("            for j in range(width):")
        for k in range(len(states)):
            src.append(f"                s{k} = B{k}[j]")
        src += [
            f"                {line}"
            for line in lines(graph, replay_nodes, dialect, leaf)
        ]
        for m, index in enumerate(recorded):
            src.append(f"                Hr{m}[j] = {name(index)}")
        for k, field in enumerate(states):
            value = _value(graph, graph.new_states[field], dialect, leaves)
            src.append(f"                B{k}[j] = {value}")
    src += [
        "        for t in range(steps - 1, -1, -1):",
        *(_input_rows(graph) if reads_inputs else []),
        "            gor = G[:width] if broadcast else GO[t, c0 : c0 + width]",
        *(
            f"            gxr{k} = GX{k}[t, c0 : c0 + width]"
            for k in range(len(graph.inputs))
        ),
    ]
    for k in range(rows):
        src.append(f"            Hr{k} = {_history_row(k, rows, shared)}")
    for k in range(len(states)):
        if record:
            src.append(f"            GSr{k} = GS{k}[t, c0 : c0 + width]")
    src += ["            for j in range(width):", "                gout = gor[j]"]
    for k in range(len(states)):
        extra = f" + GSr{k}[j]" if record else ""
        src.append(f"                gnew{k} = A{k}[j]{extra}")
    for m, index in enumerate(recorded):
        src.append(f"                {name(index)} = Hr{m}[j]")
    src += [
        f"                {line}" for line in lines(graph, adjoint_nodes, dialect, leaf)
    ]

    def grad(index) -> str:
        if index is None:
            return "0"
        return leaf(index, graph.nodes[index]) if index in seed_names else name(index)

    src += _adjoint_stores(
        adjoint, states, wanted, grad, "                ", ("gxr", "A", "C", "+=")
    )
    src += ["        for j in range(width):"]
    for k in range(len(states)):
        src.append(f"            GS0_{k}[c0 + j] = A{k}[j]")
    for k in range(len(wanted)):
        src.append(f"            GP{k}[c0 + j] = C{k}[j]")
    if not states and not wanted:
        src.append("            pass")
    return "\n".join(src) + "\n"


def _seeded(graph: Graph, nodes: Sequence[int], seeds: Collection[int]) -> List[int]:
    """Those of ``nodes`` (in graph order) that depend on the ``seeds``."""
    seeded = set(seeds)
    for index in nodes:
        node = graph.nodes[index]
        if node.op in ARITY and any(
            a in seeded for a in node.args[: ARITY[node.op]] if a is not None
        ):
            seeded.add(index)
    return [index for index in nodes if index in seeded]


def _step_rows(graph: Graph, layout: Layout) -> List[str]:
    """Row slices ``[lo, hi)`` of one step's inputs, states and per-neuron parameters."""
    rows = [f"    xr{k} = X{k}[0, lo:hi]" for k in range(len(graph.inputs))]
    rows += [f"    Sr{k} = S{k}[lo:hi]" for k in range(len(layout.states))]
    return rows + _step_parameters(layout)


def _step_parameters(layout: Layout) -> List[str]:
    """The per-neuron parameters' row slices ``[lo, hi)``, the shared ones' values."""
    rows = [
        f"    L{k} = P{k}[lo:hi]"
        for k, field in enumerate(layout.params)
        if field in layout.lane_params
    ]
    rows += [
        f"    q{k} = P{k}[0]"
        for k, field in enumerate(layout.params)
        if field not in layout.lane_params
    ]
    return rows


def step_source(
    graph: Graph,
    layout: Layout,
    recorded: Sequence[int] = (),
    function_name: str = "forward_step",
) -> str:
    """``forward_step``: one step over lanes ``[lo, hi)``, states read from ``S`` and
    written to row 0 of ``R`` directly (the recurrent driver calls it once per step,
    where the scan kernels' lane buffers would cost more than the step); with
    ``recorded`` (see :func:`step_record`) also those values, to row 0 of ``REC``."""
    dialect, leaves, body_nodes, src = _forward_start(
        graph, layout, function_name, recorded
    )
    states = layout.states
    src += [
        *_step_rows(graph, layout),
        "    orow = out[0, lo:hi]",
        *(f"    Rr{k} = R{k}[0, lo:hi]" for k in range(len(states))),
        *(f"    RECr{m} = REC{m}[0, lo:hi]" for m in range(len(recorded))),
        "    for j in range(hi - lo):",
    ]
    src += [f"        s{k} = Sr{k}[j]" for k in range(len(states))]
    src += [
        f"        {line}"
        for line in lines(graph, body_nodes, dialect, lambda i, n: leaves[i])
    ]
    src.append(f"        orow[j] = {_value(graph, graph.output, dialect, leaves)}")
    for k, field in enumerate(states):
        value = _value(graph, graph.new_states[field], dialect, leaves)
        src.append(f"        Rr{k}[j] = {value}")
    for m, index in enumerate(recorded):
        src.append(f"        RECr{m}[j] = {_value(graph, index, dialect, leaves)}")
    return "\n".join(src) + "\n"


def step_record(
    graph: Graph, adjoint: Adjoint, layout: Layout, wanted: Sequence[str]
) -> Optional[List[int]]:
    """The values of a step that its adjoint (with the gradients of the ``wanted``
    parameters) needs, recorded by the forward step so that the adjoint reads neither
    the step's inputs nor its state (the minimum cut of :mod:`.record`); ``None`` if
    there is no such record."""
    grad_roots = [*adjoint.inputs, *(adjoint.states[f] for f in layout.states)]
    grad_roots += [adjoint.params[f] for f in wanted]
    needed = _dependencies(graph, grad_roots)
    seeds = [adjoint.grad_out, *(adjoint.grad_states[f] for f in layout.states)]
    recorded = recorded_values(
        graph,
        needed,
        _seeded(graph, needed, seeds),
        _costly,
        graph.nodes[graph.states[layout.states[0]]].dtype,
    )
    reads = _dependencies(graph, grad_roots, recorded)
    if any(
        graph.nodes[i].op in ("input", "state") and i not in recorded for i in reads
    ):
        return None
    return recorded


def step_backward_source(
    graph: Graph,
    adjoint: Adjoint,
    layout: Layout,
    wanted: Sequence[str],
    function_name: str,
    recorded: Optional[Sequence[int]] = None,
) -> str:
    """The adjoint of :func:`step_source` (``wanted``: the parameter fields whose
    per-lane gradient it writes): the step's gradients with respect to its inputs, its
    state before and its parameters, from those of its output and new state (row 0 of
    ``GO`` and ``GS``). It reads the step's inputs ``X`` and state ``S``, or with
    ``recorded`` (:func:`step_record`) the values the forward step recorded, ``REC``."""
    dialect = NumbaDialect()
    leaves = _leaf_names(graph, layout)
    states = layout.states
    seeds = {adjoint.grad_out: "gout"}
    for k, field in enumerate(states):
        seeds[adjoint.grad_states[field]] = f"gnew{k}"
    grad_roots = [*adjoint.inputs, *(adjoint.states[f] for f in states)]
    grad_roots += [adjoint.params[f] for f in wanted]
    nodes = _dependencies(graph, grad_roots, recorded or ())
    if recorded is not None:
        nodes = [i for i in nodes if i not in recorded]

    def spell(index: int) -> str:
        if index is None:
            return "0"
        if recorded is not None and index in recorded:
            return name(index)
        return seeds.get(index, leaves.get(index, name(index)))

    a = _arguments(graph, layout, wanted)
    if recorded is None:
        reads, rows = f"{a['x']}{a['s']}", _step_rows(graph, layout)
    else:
        reads = _names("REC", len(recorded))
        rows = _step_parameters(layout)
        rows += [f"    RECr{m} = REC{m}[0, lo:hi]" for m in range(len(recorded))]
    src = [
        "@njit(cache=True, nogil=True, error_model='numpy')",
        f"def {function_name}(GO, {a['gs']}{reads}{a['p']}{a['gx']}{a['gs0']}"
        f"{a['gp']}lo, hi):",
        *rows,
        "    gor = GO[0, lo:hi]",
        *(f"    GSr{k} = GS{k}[0, lo:hi]" for k in range(len(states))),
        *(f"    gxr{k} = GX{k}[0, lo:hi]" for k in range(len(graph.inputs))),
        *(f"    GS0r{k} = GS0_{k}[lo:hi]" for k in range(len(states))),
        *(f"    GPr{k} = GP{k}[lo:hi]" for k in range(len(wanted))),
        "    for j in range(hi - lo):",
        "        gout = gor[j]",
    ]
    for k in range(len(states)):
        if recorded is None:
            src.append(f"        s{k} = Sr{k}[j]")
        src.append(f"        gnew{k} = GSr{k}[j]")
    for m, index in enumerate(recorded or ()):
        src.append(f"        {name(index)} = RECr{m}[j]")
    src += [
        f"        {line}"
        for line in lines(
            graph, nodes, dialect, lambda i, n: seeds.get(i, leaves.get(i))
        )
    ]
    src += _adjoint_stores(
        adjoint, states, wanted, spell, "        ", ("gxr", "GS0r", "GPr", "=")
    )
    return "\n".join(src) + "\n"


def _adjoint_stores(
    adjoint: Adjoint,
    states: Sequence[str],
    wanted: Sequence[str],
    spell: Callable[[Optional[int]], str],
    indent: str,
    targets: Tuple[str, str, str, str],
) -> List[str]:
    """The stores of a lane's gradients: of the inputs, of the state before the step
    and of the ``wanted`` parameters, into the rows named ``targets`` (input, state and
    parameter prefixes, and how a parameter's gradient is stored: ``=`` or ``+=``)."""
    inputs, state_rows, param_rows, store = targets
    src = [
        f"{indent}{inputs}{k}[j] = {spell(index)}"
        for k, index in enumerate(adjoint.inputs)
    ]
    src += [
        f"{indent}{state_rows}{k}[j] = {spell(adjoint.states[field])}"
        for k, field in enumerate(states)
    ]
    src += [
        f"{indent}{param_rows}{k}[j] {store} {spell(adjoint.params[field])}"
        for k, field in enumerate(wanted)
    ]
    return src


def module_source(functions: Sequence[str]) -> str:
    return (
        "import numpy as np\nfrom numba import njit\n\n"
        "from norse.torch.fused.generate.numba_math import exp32, exp64\n\n\n"
        + "\n\n".join(functions)
    )
