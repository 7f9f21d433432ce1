r"""The vector-Jacobian product of a traced step, derived from the same graph.

Given the graph of one step :math:`(o, s') = f(x, s, p)` (:mod:`.trace`), this appends
the nodes of its reverse-mode derivative: from the adjoints of the output (``grad_out``)
and of the new state fields (``grad_state``) to the adjoints of the input, the old state
fields and the parameters. The threshold's derivative is its surrogate: the gradient
function of the method in
:data:`~norse.torch.functional.threshold.SURROGATE_GRADIENTS`, traced into the graph
like the step, so that the fused backward computes what the reference autograd does.

Adjoints are per neuron (``lane``). A parameter shared by all neurons gets per-neuron
contributions that the caller sums, as autograd sums a broadcast operand's gradient.
"""

from typing import Dict, List, Optional

import torch

from norse.torch.functional.threshold import SURROGATE_GRADIENTS
from norse.torch.fused.generate.trace import COMPARISONS, Graph, Node, trace_function

_PROBE_SHAPE = (2,)


class Adjoint:
    """The backward part of a graph: the seeds and the gradient node of each leaf
    (``None`` where no gradient reaches it)."""

    @property
    def input(self) -> Optional[int]:
        """The gradient node of the single input of a feed-forward step."""
        return self.inputs[0] if len(self.inputs) == 1 else None

    def __init__(self, forward_size: int) -> None:
        self.forward_size = forward_size
        self.grad_out: Optional[int] = None
        self.grad_states: Dict[str, int] = {}
        #: Gradient node of each input leaf (:attr:`Graph.inputs`).
        self.inputs: List[Optional[int]] = []
        self.states: Dict[str, Optional[int]] = {}
        self.params: Dict[str, Optional[int]] = {}


class _Builder:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.adjoints: Dict[int, int] = {}

    def node(self, op: str, *args, dtype: torch.dtype) -> int:
        compute = dtype
        if op in ("gt", "ge", "lt", "le", "eq", "ne"):
            # A comparison computes in its operands' dtype (its result is a mask).
            compute = self.graph.nodes[args[0]].dtype or self.graph.nodes[args[1]].dtype
        return self.graph.add(Node(op, tuple(args), dtype, compute, True))

    def const(self, value: float, dtype: torch.dtype) -> int:
        return self.graph.const(value, dtype)

    def cast(self, index: int, dtype: torch.dtype) -> int:
        if self.graph.nodes[index].dtype == dtype:
            return index
        return self.graph.add(Node("cast", (index,), dtype, dtype, True))

    def accumulate(self, target: Optional[int], contribution: int) -> None:
        """Adds ``contribution`` (converted to ``target``'s dtype) to its adjoint."""
        if target is None or not _differentiable(self.graph.nodes[target]):
            return
        contribution = self.cast(contribution, self.graph.nodes[target].dtype)
        previous = self.adjoints.get(target)
        if previous is None:
            self.adjoints[target] = contribution
        else:
            dtype = self.graph.nodes[target].dtype
            self.adjoints[target] = self.node(
                "add", previous, contribution, dtype=dtype
            )


def _differentiable(node: Node) -> bool:
    return (
        node.op != "const"
        and node.dtype is not None
        and node.dtype.is_floating_point
        and node.op not in COMPARISONS
    )


def derive(graph: Graph) -> Adjoint:
    """Appends the reverse-mode derivative of the step to ``graph``."""
    result = Adjoint(len(graph.nodes))
    builder = _Builder(graph)
    nodes = list(graph.nodes)
    output = nodes[graph.output]
    result.grad_out = graph.add(Node("grad_out", (), output.dtype, output.dtype, True))
    builder.accumulate(graph.output, result.grad_out)
    for field, index in graph.new_states.items():
        dtype = nodes[index].dtype
        seed = graph.add(Node("grad_state", (field,), dtype, dtype, True))
        result.grad_states[field] = seed
        builder.accumulate(index, seed)
    needed = _needs_gradient(nodes)
    for index in range(len(nodes) - 1, -1, -1):
        node = nodes[index]
        g = builder.adjoints.get(index)
        if g is None or node.op in ("input", "state", "param", "const"):
            continue
        _propagate(builder, nodes, index, node, g, needed)
    result.inputs = [builder.adjoints.get(i) for i in graph.inputs]
    result.states = {f: builder.adjoints.get(i) for f, i in graph.states.items()}
    result.params = {f: builder.adjoints.get(i) for f, i in graph.params.items()}
    return result


def _needs_gradient(nodes: List[Node]) -> List[bool]:
    """Whether a node depends on a leaf with a gradient (input, state, parameter)."""
    needed = []
    for node in nodes:
        if node.op in ("input", "state", "param"):
            needed.append(_differentiable(node))
        elif node.op in ("const", "detach") or not _differentiable(node):
            needed.append(False)
        else:
            needed.append(
                any(isinstance(a, int) and needed[a] for a in _operands(node))
            )
    return needed


def _operands(node: Node) -> List[Optional[int]]:
    from norse.torch.fused.generate.trace import ARITY

    return list(node.args[: ARITY[node.op]])


def _propagate(builder: _Builder, nodes, index: int, node: Node, g: int, needed):
    op = node.op
    dtype = node.compute
    operands = _operands(node)

    def want(k: int) -> bool:
        a = operands[k]
        return a is not None and needed[a]

    def arg(k: int) -> int:
        return builder.cast(operands[k], dtype)

    n = builder.node
    if op == "add":
        for k in (0, 1):
            if want(k):
                builder.accumulate(operands[k], g)
    elif op == "sub":
        if want(0):
            builder.accumulate(operands[0], g)
        if want(1):
            builder.accumulate(operands[1], n("neg", g, dtype=dtype))
    elif op == "mul":
        if want(0):
            builder.accumulate(operands[0], n("mul", g, arg(1), dtype=dtype))
        if want(1):
            builder.accumulate(operands[1], n("mul", g, arg(0), dtype=dtype))
    elif op == "div":
        if want(0):
            builder.accumulate(operands[0], n("div", g, arg(1), dtype=dtype))
        if want(1):
            # d(a/b)/db = -(a/b)/b
            quotient = n("div", index, arg(1), dtype=dtype)
            builder.accumulate(
                operands[1], n("neg", n("mul", g, quotient, dtype=dtype), dtype=dtype)
            )
    elif op == "neg":
        builder.accumulate(operands[0], n("neg", g, dtype=dtype))
    elif op == "exp":
        builder.accumulate(operands[0], n("mul", g, index, dtype=dtype))
    elif op == "log":
        builder.accumulate(operands[0], n("div", g, arg(0), dtype=dtype))
    elif op == "tanh":
        one = builder.const(1.0, dtype)
        slope = n("sub", one, n("mul", index, index, dtype=dtype), dtype=dtype)
        builder.accumulate(operands[0], n("mul", g, slope, dtype=dtype))
    elif op == "sigmoid":
        one = builder.const(1.0, dtype)
        slope = n("mul", index, n("sub", one, index, dtype=dtype), dtype=dtype)
        builder.accumulate(operands[0], n("mul", g, slope, dtype=dtype))
    elif op == "relu":
        positive = n("gt", index, builder.const(0.0, dtype), dtype=torch.bool)
        zero = builder.const(0.0, dtype)
        builder.accumulate(operands[0], n("where", positive, g, zero, dtype=dtype))
    elif op == "abs":
        x = arg(0)
        zero = builder.const(0.0, dtype)
        sign = n(
            "sub",
            n("cast", n("gt", x, zero, dtype=torch.bool), dtype=dtype),
            n("cast", n("lt", x, zero, dtype=torch.bool), dtype=dtype),
            dtype=dtype,
        )
        builder.accumulate(operands[0], n("mul", g, sign, dtype=dtype))
    elif op == "sqrt":
        half = builder.const(0.5, dtype)
        builder.accumulate(
            operands[0],
            n("div", n("mul", g, half, dtype=dtype), index, dtype=dtype),
        )
    elif op == "square":
        two = builder.const(2.0, dtype)
        x2 = n("mul", arg(0), two, dtype=dtype)
        builder.accumulate(operands[0], n("mul", g, x2, dtype=dtype))
    elif op == "pow":
        exponent = node.args[1]
        if exponent == 0.0:
            return
        scale = builder.const(exponent, dtype)
        if exponent == 1.0:
            slope = scale
        else:
            slope = n(
                "mul",
                scale,
                builder.graph.add(
                    Node("pow", (arg(0), exponent - 1.0), dtype, dtype, True)
                ),
                dtype=dtype,
            )
        builder.accumulate(operands[0], n("mul", g, slope, dtype=dtype))
    elif op == "where":
        condition = operands[0]
        zero = builder.const(0.0, dtype)
        if want(1):
            builder.accumulate(operands[1], n("where", condition, g, zero, dtype=dtype))
        if want(2):
            builder.accumulate(operands[2], n("where", condition, zero, g, dtype=dtype))
    elif op == "clamp":
        x = arg(0)
        zero = builder.const(0.0, dtype)
        inside: Optional[int] = None
        for k, comparison in ((1, "ge"), (2, "le")):
            if operands[k] is None:
                continue
            check = n(comparison, x, arg(k), dtype=torch.bool)
            inside = (
                check if inside is None else n("and", inside, check, dtype=torch.bool)
            )
        gx = g if inside is None else n("where", inside, g, zero, dtype=dtype)
        builder.accumulate(operands[0], gx)
        # Gradients to tensor bounds where they clip (as torch.clamp's backward).
        for k, comparison in ((1, "lt"), (2, "gt")):
            if operands[k] is not None and want(k):
                outside = n(comparison, x, arg(k), dtype=torch.bool)
                builder.accumulate(
                    operands[k], n("where", outside, g, zero, dtype=dtype)
                )
    elif op in ("maximum", "minimum"):
        a, b = arg(0), arg(1)
        zero = builder.const(0.0, dtype)
        half = n("mul", g, builder.const(0.5, dtype), dtype=dtype)
        first = n("gt" if op == "maximum" else "lt", a, b, dtype=torch.bool)
        equal = n("eq", a, b, dtype=torch.bool)
        for k, wins in ((0, first), (1, None)):
            if not want(k):
                continue
            if wins is None:  # b wins where a does not and they differ
                wins = n(
                    "not", n("or", first, equal, dtype=torch.bool), dtype=torch.bool
                )
            share = n("where", equal, half, zero, dtype=dtype)
            builder.accumulate(operands[k], n("where", wins, g, share, dtype=dtype))
    elif op == "cast":
        builder.accumulate(operands[0], g)
    elif op == "threshold":
        method = node.args[2]
        gradient = SURROGATE_GRADIENTS.get(method)
        if gradient is None:  # heaviside: no gradient through the spikes
            return
        x_node, alpha_node = operands
        x_dtype = nodes[x_node].dtype
        alpha_dtype = nodes[alpha_node].dtype or x_dtype
        x_probe = torch.zeros(_PROBE_SHAPE, dtype=x_dtype)
        alpha_probe = torch.tensor(1.0, dtype=alpha_dtype)
        slope = trace_function(
            builder.graph,
            lambda x, alpha: gradient(x, alpha.to(x.dtype)),
            [x_node, alpha_node],
            [x_probe, alpha_probe],
        )
        builder.accumulate(x_node, n("mul", g, slope, dtype=dtype))
    # comparisons, logical operations, detach, constants: no gradient
