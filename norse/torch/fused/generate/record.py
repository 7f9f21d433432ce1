"""Which values of a step the backward kernels record in their forward replay.

The reverse loop of a backward scan needs, at every step, some values of the forward
step (the voltage before the reset for the surrogate, a decayed current for a
parameter's gradient, ...). It can recompute them from what the replay recorded; the
cheapest record is the smallest set of values from which all of them follow without
the step's inputs or state, so that the reverse loop reads neither the input rows from
memory nor more record rows than needed. That is a minimum vertex cut between the
step's varying leaves (input, state) and the values the reverse loop needs, found here
with a small max-flow (the graphs have tens to a few hundred nodes).

Results of costly operations (``exp``, ``tanh``, ...) count as leaves too: the reverse
loop never recomputes them, it reads them or values computed from them.
"""

from collections import deque
from typing import Callable, Collection, Dict, List, Sequence

import torch

from norse.torch.fused.generate.trace import ARITY, Graph, Node

#: Cost of recording a value of the record's dtype, and of any other (a record of
#: several dtypes needs an array per row, which makes the kernels' loops slower).
_COST = 2
_OTHER_DTYPE_COST = 3


def recorded_values(
    graph: Graph,
    needed: Sequence[int],
    seeded: Collection[int],
    costly: Callable[[Node], bool],
    dtype: torch.dtype,
) -> List[int]:
    """The nodes to record, in graph order.

    ``needed``: the nodes the reverse loop evaluates (all its dependencies, leaves
    included); ``seeded``: those of them that depend on the gradients it receives (the
    adjoint proper; the others are forward values); ``costly``: whether a node's
    operation is never recomputed; ``dtype``: the record's dtype (other dtypes cost more)."""
    varying = _varying(graph)
    seeded = set(seeded)
    targets = set()
    for index in needed:
        node = graph.nodes[index]
        if index not in seeded or node.op not in ARITY:
            continue
        for arg in node.args[: ARITY[node.op]]:
            if arg is not None and arg not in seeded and varying[arg]:
                targets.add(arg)
    if not targets:
        return []
    return _minimum_cut(graph, targets, varying, costly, dtype)


def _varying(graph: Graph) -> List[bool]:
    """Per node: whether it depends on the step's input or state (graph order is
    topological)."""
    varying = []
    for node in graph.nodes:
        if node.op in ("input", "state"):
            varying.append(True)
        elif node.op in ARITY:
            args = node.args[: ARITY[node.op]]
            varying.append(any(a is not None and varying[a] for a in args))
        else:
            varying.append(False)
    return varying


def _minimum_cut(graph, targets, varying, costly, dtype) -> List[int]:
    # Nodes of the flow network: each varying ancestor of a target, split into an
    # "in" (2k) and an "out" (2k + 1) vertex joined by its cost of being recorded.
    members: List[int] = []
    seen = set()
    stack = list(targets)
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        members.append(index)
        node = graph.nodes[index]
        if node.op in ARITY and not costly(node):
            stack.extend(
                a for a in node.args[: ARITY[node.op]] if a is not None and varying[a]
            )
    position = {index: k for k, index in enumerate(members)}
    source, sink = 2 * len(members), 2 * len(members) + 1
    infinite = (_OTHER_DTYPE_COST + 1) * (len(members) + 1)
    capacity: Dict[int, Dict[int, int]] = {v: {} for v in range(sink + 1)}

    def edge(a: int, b: int, amount: int) -> None:
        capacity[a][b] = capacity[a].get(b, 0) + amount
        capacity[b].setdefault(a, 0)  # the residual edge

    for index, k in position.items():
        node = graph.nodes[index]
        cost = _COST if node.dtype == dtype else _OTHER_DTYPE_COST
        edge(2 * k, 2 * k + 1, cost)
        if node.op in ("input", "state") or costly(node):
            edge(source, 2 * k, infinite)
        else:
            for arg in node.args[: ARITY[node.op]]:
                if arg in position:
                    edge(2 * position[arg] + 1, 2 * k, infinite)
        if index in targets:
            edge(2 * k + 1, sink, infinite)
    while _augment(capacity, source, sink):
        pass
    # The cut nearest the targets: vertices that still reach the sink in the residual
    # network lie behind it (fewest values recomputed in the reverse loop).
    behind = {sink}
    queue = deque([sink])
    while queue:
        v = queue.popleft()
        for u in capacity[v]:
            if u not in behind and capacity[u].get(v, 0) > 0:
                behind.add(u)
                queue.append(u)
    return sorted(
        index
        for index, k in position.items()
        if 2 * k + 1 in behind and 2 * k not in behind
    )


def _augment(capacity: Dict[int, Dict[int, int]], source: int, sink: int) -> bool:
    """Pushes flow along one shortest augmenting path; False when there is none."""
    parent = {source: source}
    queue = deque([source])
    while queue and sink not in parent:
        v = queue.popleft()
        for u, amount in capacity[v].items():
            if amount > 0 and u not in parent:
                parent[u] = v
                queue.append(u)
    if sink not in parent:
        return False
    path = []
    v = sink
    while v != source:
        path.append((parent[v], v))
        v = parent[v]
    amount = min(capacity[a][b] for a, b in path)
    for a, b in path:
        capacity[a][b] -= amount
        capacity[b][a] += amount
    return True
