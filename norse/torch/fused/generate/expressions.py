"""Turns graph nodes into source lines, shared by the Numba and Triton emitters.

A :class:`Dialect` says how a language spells a cast, a select, a literal and the math
functions; :func:`lines` writes one assignment per node (``n12 = ...``), the operands
converted to the node's compute dtype first, as PyTorch converts them.
"""

import math
from typing import Callable, Dict, Iterable, List, Optional

import torch

from norse.torch.fused.generate.trace import ARITY, Graph, Node


class Dialect:
    """Spelling of one target language (subclasses: Numba, Triton)."""

    def type_name(self, dtype: torch.dtype) -> str:
        raise NotImplementedError

    def literal(self, value: float, dtype: torch.dtype) -> str:
        raise NotImplementedError

    def cast(self, expression: str, dtype: torch.dtype) -> str:
        raise NotImplementedError

    def select(self, condition: str, a: str, b: str) -> str:
        raise NotImplementedError

    def function(self, name: str, argument: str, dtype: torch.dtype) -> str:
        raise NotImplementedError

    def logical(self, op: str, a: str, b: Optional[str]) -> str:
        raise NotImplementedError

    def divide(self, a: str, b: str, dtype: torch.dtype) -> str:
        """``a / b`` in ``dtype`` (Triton's ``/`` on float32 is not IEEE division)."""
        return f"{a} / {b}"


def _literal_value(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def name(index: int) -> str:
    return f"n{index}"


def lines(
    graph: Graph,
    indices: Iterable[int],
    dialect: Dialect,
    leaf: Callable[[int, Node], str],
) -> List[str]:
    """Assignments for ``indices`` (in order); ``leaf(index, node)`` spells inputs,
    states, parameters and seeds."""
    out = []
    for index in indices:
        node = graph.nodes[index]
        if node.op == "const":
            continue
        out.append(f"{name(index)} = {_expression(graph, index, node, dialect, leaf)}")
    return out


def operand(graph: Graph, index: int, dtype: torch.dtype, dialect: Dialect) -> str:
    """Node ``index`` converted to ``dtype``."""
    node = graph.nodes[index]
    if node.op == "const":
        target = dtype if dtype is not None else node.dtype
        if target is torch.bool:
            return "True" if node.args[0] else "False"
        return dialect.literal(node.args[0], target)
    if node.dtype == dtype or dtype is None:
        return name(index)
    return dialect.cast(name(index), dtype)


def _expression(graph: Graph, index: int, node: Node, dialect: Dialect, leaf) -> str:
    op = node.op
    if op in ("input", "state", "param", "grad_out", "grad_state"):
        return leaf(index, node)
    dtype = node.compute
    args = node.args[: ARITY[op]]

    def a(k: int, as_dtype: Optional[torch.dtype] = dtype) -> str:
        return operand(graph, args[k], as_dtype, dialect)

    if op == "div":
        return dialect.divide(a(0), a(1), dtype)
    if op in ("add", "sub", "mul"):
        symbol = {"add": "+", "sub": "-", "mul": "*"}[op]
        return f"{a(0)} {symbol} {a(1)}"
    if op == "neg":
        return f"-{a(0)}"
    if op in ("gt", "ge", "lt", "le", "eq", "ne"):
        symbol = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "==", "ne": "!="}
        return f"{a(0)} {symbol[op]} {a(1)}"
    if op in ("and", "or"):
        return dialect.logical(op, a(0, torch.bool), a(1, torch.bool))
    if op == "not":
        return dialect.logical(op, a(0, torch.bool), None)
    if op == "cast":
        source = graph.nodes[args[0]]
        if source.op == "const":
            return a(0)
        return dialect.cast(name(args[0]), node.dtype)
    if op == "detach":
        return a(0)
    if op == "where":
        return dialect.select(a(0, torch.bool), a(1), a(2))
    if op == "threshold":
        one, zero = dialect.literal(1.0, dtype), dialect.literal(0.0, dtype)
        return dialect.select(f"{a(0)} > {dialect.literal(0.0, dtype)}", one, zero)
    if op == "relu":
        zero = dialect.literal(0.0, dtype)
        x = a(0)
        return dialect.select(
            f"{x} > {zero}", x, dialect.select(f"{x} != {x}", x, zero)
        )
    if op in ("maximum", "minimum"):
        x, y = a(0), a(1)
        symbol = ">" if op == "maximum" else "<"
        # NaN propagates, as in torch.maximum
        return dialect.select(
            f"{x} != {x}",
            x,
            dialect.select(f"{y} != {y}", y, dialect.select(f"{x} {symbol} {y}", x, y)),
        )
    if op == "clamp":
        x = a(0)
        if args[1] is not None:
            low = a(1)
            x = dialect.select(f"{x} < {low}", low, x)
        if args[2] is not None:
            high = a(2)
            x = dialect.select(f"{x} > {high}", high, x)
        return x
    if op == "square":
        x = a(0)
        return f"{x} * {x}"
    if op == "pow":
        return _power(a(0), node.args[1], dtype, dialect)
    if op in ("exp", "log", "tanh", "sqrt", "abs"):
        return dialect.function(op, a(0), dtype)
    if op == "sigmoid":
        one = dialect.literal(1.0, dtype)
        exp = dialect.function("exp", "-" + a(0), dtype)
        return dialect.divide(one, f"({one} + {exp})", dtype)
    raise ValueError(f"no spelling for operation {op!r}")


#: Exponents that :func:`_power` spells with products and divisions.
CHEAP_POWERS = (0.0, 1.0, 2.0, 3.0, -1.0, -2.0)


def _power(x: str, exponent: float, dtype: torch.dtype, dialect: Dialect) -> str:
    """``x ** exponent`` as PyTorch's CPU pow computes the common exponents."""
    one = dialect.literal(1.0, dtype)
    special: Dict[float, str] = {
        0.0: one,
        1.0: x,
        2.0: f"({x} * {x})",
        3.0: f"({x} * {x} * {x})",
        -1.0: f"({dialect.divide(one, x, dtype)})",
        -2.0: f"({dialect.divide(one, f'({x} * {x})', dtype)})",
        0.5: dialect.function("sqrt", x, dtype),
        -0.5: f"({dialect.divide(one, dialect.function('sqrt', x, dtype), dtype)})",
    }
    if exponent in special:
        return special[exponent]
    return dialect.function("pow", f"{x}, {dialect.literal(exponent, dtype)}", dtype)


literal_value = _literal_value
