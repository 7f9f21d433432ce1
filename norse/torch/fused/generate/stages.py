"""A traced step with matrix products, cut into elementwise stages.

The ``product`` nodes of a step (:mod:`.trace`) are computed by PyTorch, one step at a
time; what lies between them is elementwise and becomes *stages*, each an ordinary
graph that the single-step emitters (:func:`.numba_source.step_source`,
:func:`.numba_source.step_backward_source`) compile. A node's *round* is the number of
products on its longest path from the leaves; a product of round ``r`` multiplies a value
of round ``r - 1``. Per step the driver (:mod:`.recurrent`) runs stage 0 (only when a
product of round 1 multiplies a computed value), the products of round 1, stage 1, the
products of round 2, stage 2, ...

Stage ``s`` reads the step's leaves (input, state fields, parameters), the products of
rounds up to ``s`` and the *values* (computed product operands) of earlier stages, and
recomputes whatever else it needs (elementwise work is cheap; nothing else is carried).
It writes the new state fields whose round is ``s`` (round-0 fields go to the first
stage) and the values that the products of round ``s + 1`` multiply. In its graph the
state fields it writes are its states; the values it writes are states of their own
(named ``@value<j>``, whose old value it never reads); everything else it reads is an
input. A stage without the step's output writes a constant 0 as its output.

A step with one round of products whose operands are leaves (a recurrent step's
``linear(x, W_in)`` and ``linear(z, W_rec)``, a feed-forward step's ``linear(v, G)``)
has a single stage: the traced graph with its products as inputs.
"""

from typing import Any, Dict, List, NamedTuple

import torch

from norse.torch.fused.generate.numba_source import _dependencies
from norse.torch.fused.generate.trace import ARITY, Graph, Node


class Source(NamedTuple):
    """Where a value comes from: ``("input", None)`` (the step's input),
    ``("state", field)`` (a state field before the step), ``("product", k)`` or
    ``("value", j)`` (a computed product operand)."""

    kind: str
    key: Any


class Product(NamedTuple):
    """Product ``k`` of the step: ``linear(operand, matrices[matrix])``."""

    round: int
    operand: Source
    matrix: int


class Stage(NamedTuple):
    """One elementwise stage, run after the products of its round."""

    round: int
    graph: Graph
    #: Per input of ``graph``: what it reads.
    inputs: List[Source]
    #: Per state field of ``graph``: what it writes (``("state", field)`` or
    #: ``("value", j)``).
    writes: List[Source]
    #: Whether ``graph.output`` is the step's output.
    output: bool


class Plan(NamedTuple):
    stages: List[Stage]
    products: List[Product]
    #: The dtype of each value.
    values: List[torch.dtype]


def _rounds(graph: Graph, live: List[int]) -> Dict[int, int]:
    rounds: Dict[int, int] = {}
    for index in live:
        node = graph.nodes[index]
        operands = [a for a in node.args[: ARITY.get(node.op, 0)] if a is not None]
        rounds[index] = max((rounds[a] for a in operands), default=0)
        if node.op == "product":
            rounds[index] += 1
    return rounds


def split(graph: Graph) -> Plan:
    """The stages and products of a traced step with ``product`` nodes."""
    nodes = graph.nodes
    live = _dependencies(graph, [graph.output, *graph.new_states.values()])
    rounds = _rounds(graph, live)
    product_nodes = [i for i in live if nodes[i].op == "product"]
    numbers = {index: k for k, index in enumerate(product_nodes)}
    values: Dict[int, int] = {}  # computed operand node -> value number
    products = []
    for index in product_nodes:
        operand, matrix = nodes[index].args
        kind = nodes[operand].op
        if kind in ("input", "state"):
            source = Source(kind, None if kind == "input" else nodes[operand].args[0])
        else:
            source = Source("value", values.setdefault(operand, len(values)))
        products.append(Product(rounds[index], source, matrix))
    first = 0 if any(rounds[o] == 0 for o in values) else 1

    def stage_of(index: int) -> int:
        return max(rounds[index], first)

    stages = []
    for s in range(first, max(p.round for p in products) + 1):
        fields = [f for f, i in graph.new_states.items() if stage_of(i) == s]
        written = [(j, o) for o, j in values.items() if rounds[o] == s]
        output = stage_of(graph.output) == s
        if fields or written or output:
            stages.append(
                _stage(graph, s, fields, written, output, numbers, values, rounds)
            )
    return Plan(stages, products, [nodes[o].dtype for o in values])


def _stage(graph, s, fields, written, output, numbers, values, rounds) -> Stage:
    nodes = graph.nodes
    roots = [graph.new_states[f] for f in fields] + [o for _, o in written]
    if output:
        roots.append(graph.output)
    known = {i for i in numbers if rounds[i] <= s}
    known |= {o for o in values if rounds[o] < s}
    stage = Graph()
    mapping: Dict[int, int] = {}
    inputs: List[Source] = []
    writes: List[Source] = []
    for field in fields:  # the fields it writes are its states (read or not)
        mapping[graph.states[field]] = stage.add(nodes[graph.states[field]])
        stage.states[field] = mapping[graph.states[field]]
        writes.append(Source("state", field))
    for j, operand in written:  # values: states whose old value is never read
        dtype = nodes[operand].dtype
        name = f"@value{j}"
        stage.states[name] = stage.add(Node("state", (name,), dtype, dtype, True))
        writes.append(Source("value", j))

    def read(index: int, source: Source, label: str) -> int:
        node = nodes[index]
        inputs.append(source)
        stage.inputs.append(
            stage.add(Node("input", (label,), node.dtype, node.dtype, True))
        )
        return stage.inputs[-1]

    for index in _dependencies(graph, roots, known):
        if index in mapping:
            continue
        node = nodes[index]
        if node.op == "product":
            k = numbers[index]
            mapping[index] = read(index, Source("product", k), f"product{k}")
        elif index in values and index in known:
            j = values[index]
            mapping[index] = read(index, Source("value", j), f"value{j}")
        elif node.op == "state":
            field = node.args[0]
            mapping[index] = read(index, Source("state", field), field)
        elif node.op == "input":
            mapping[index] = read(index, Source("input", None), "input")
        elif node.op in ARITY:
            arity = ARITY[node.op]
            args = tuple(
                mapping[a] if k < arity and a is not None else a
                for k, a in enumerate(node.args)
            )
            mapping[index] = stage.add(node._replace(args=args))
        else:  # parameters and constants
            mapping[index] = stage.add(node)
            if node.op == "param":
                stage.params[node.args[0]] = mapping[index]
    for field in fields:
        stage.new_states[field] = mapping[graph.new_states[field]]
    for j, operand in written:
        stage.new_states[f"@value{j}"] = mapping[operand]
    if output:
        stage.output = mapping[graph.output]
    else:
        stage.output = stage.const(0.0, nodes[graph.output].dtype)
    return Stage(s, stage, inputs, writes, output)


def describe(plan: Plan) -> str:
    """The plan as text (for debugging)."""
    lines = []
    for k, product in enumerate(plan.products):
        lines.append(f"product{k} (round {product.round}) = {product}")
    for stage in plan.stages:
        lines.append(
            f"stage {stage.round}: reads {stage.inputs}, writes {stage.writes}, "
            f"output {stage.output}"
        )
        lines.append(stage.graph.describe())
    return "\n".join(lines)
