"""Traces one call of a neuron step function into an elementwise graph.

The step runs once on real tensors under a :class:`torch.overrides.TorchFunctionMode`
that records every operation: its name, its operands (earlier nodes or constants), the
dtype of its result and the dtype it computes in. Running on real tensors lets PyTorch
decide type promotion (Python numbers and 0-dim tensors take the dtype of the tensors
they meet); the kernels only replay what was recorded, so they compute as the
reference does. :func:`~norse.torch.functional.threshold.threshold` is recorded as one
``threshold`` node (it supports ``__torch_function__``), so its surrogate gradient is
known.

A matrix product ``torch.nn.functional.linear(value, W)`` (no bias) of a per-neuron value
(the input, a state field or an intermediate value) with a matrix ``W`` the step does not
compute (a recurrent step's weights, or a tensor it reads from elsewhere, e.g. a module's
coupling matrix) is recorded as one ``product`` node; :mod:`.stages` cuts the graph there
into elementwise stages, and the driver (:mod:`.recurrent`) computes the products with
PyTorch. The matrices are numbered in order of first use (a recurrent step's weights
first, in argument order); :func:`find_matrices` finds the same tensors again at run time.

What cannot become a per-neuron kernel raises :class:`Untraceable` with the reason:
an operation that is not elementwise (indexing, reductions, ``matmul``), control flow
that reads tensor values (``bool(tensor)``, ``.item()``), random numbers, a tensor the
step creates with varying values.
"""

import math
from typing import (
    Any,
    Callable,
    Dict,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import torch
from torch.overrides import TorchFunctionMode

from norse.torch.functional.threshold import threshold


class Untraceable(Exception):
    """The step function cannot be compiled into a fused kernel (the message says
    why)."""


class Node(NamedTuple):
    """One value of the traced step.

    ``op`` is an operation name (see :data:`ARITY`), or a leaf: ``"input"``,
    ``"state"`` (``args = (field,)``), ``"param"`` (``args = (field,)``), ``"const"``
    (``args = (value,)``). Operands in ``args`` are node indices, except the static
    arguments listed in :data:`STATIC_ARGS`. ``dtype`` is the result's dtype;
    ``compute`` the dtype the operands are converted to first (the result dtype, or
    the promoted operand dtype of a comparison); ``lane``: whether the value differs
    between neurons (a 0-dim parameter does not).
    """

    op: str
    args: Tuple[Any, ...]
    dtype: torch.dtype
    compute: torch.dtype
    lane: bool


#: Number of node operands per operation; static arguments follow them.
ARITY = {
    "add": 2,
    "sub": 2,
    "mul": 2,
    "div": 2,
    "neg": 1,
    "exp": 1,
    "log": 1,
    "tanh": 1,
    "sigmoid": 1,
    "relu": 1,
    "abs": 1,
    "sqrt": 1,
    "pow": 1,  # exponent: a static number
    "square": 1,
    "where": 3,
    "clamp": 3,  # bounds: nodes, or None
    "maximum": 2,
    "minimum": 2,
    "gt": 2,
    "ge": 2,
    "lt": 2,
    "le": 2,
    "eq": 2,
    "ne": 2,
    "and": 2,
    "or": 2,
    "not": 1,
    "cast": 1,
    "detach": 1,
    "threshold": 2,  # (x, alpha); static: the surrogate method
    "product": 1,  # linear(operand, matrix); static: the matrix's number
}

#: Operations whose result is a bool mask.
COMPARISONS = ("gt", "ge", "lt", "le", "eq", "ne", "and", "or", "not")

_T = torch.Tensor
_F = torch.nn.functional

#: torch functions and Tensor methods -> (operation, how to read the arguments).
_BINARY = {
    "add": (torch.add, _T.add, _T.__add__, _T.__radd__),
    "sub": (torch.sub, _T.sub, _T.__sub__),
    "mul": (torch.mul, _T.mul, _T.__mul__, _T.__rmul__),
    "div": (torch.div, torch.true_divide, _T.div, _T.__truediv__),
    "maximum": (torch.maximum, torch.max, _T.maximum),
    "minimum": (torch.minimum, torch.min, _T.minimum),
    "gt": (torch.gt, _T.gt, _T.__gt__, torch.greater),
    "ge": (torch.ge, _T.ge, _T.__ge__, torch.greater_equal),
    "lt": (torch.lt, _T.lt, _T.__lt__, torch.less),
    "le": (torch.le, _T.le, _T.__le__, torch.less_equal),
    "eq": (torch.eq, _T.eq, _T.__eq__),
    "ne": (torch.ne, _T.ne, _T.__ne__),
    "and": (torch.logical_and, _T.logical_and, _T.__and__),
    "or": (torch.logical_or, _T.logical_or, _T.__or__),
}
_UNARY = {
    "neg": (torch.neg, _T.neg, _T.__neg__),
    "exp": (torch.exp, _T.exp),
    "log": (torch.log, _T.log),
    "tanh": (torch.tanh, _T.tanh, _F.tanh),
    "sigmoid": (torch.sigmoid, _T.sigmoid, _F.sigmoid),
    "relu": (torch.relu, _T.relu, _F.relu),
    "abs": (torch.abs, _T.abs, _T.__abs__),
    "sqrt": (torch.sqrt, _T.sqrt),
    "square": (torch.square, _T.square),
    "not": (torch.logical_not, _T.logical_not, _T.__invert__),
    "detach": (torch.detach, _T.detach),
}
_CASTS = (_T.to, _T.float, _T.double, _T.half, _T.bfloat16, _T.type_as)
_IDENTITIES = (
    torch.as_tensor,
    _T.clone,
    _T.contiguous,
    torch.clone,
    _T.view_as,
    _T.reshape_as,
    _T.expand_as,
)
_LIKE = {
    torch.zeros_like: 0.0,
    torch.ones_like: 1.0,
    _T.new_zeros: 0.0,
    _T.new_ones: 1.0,
}
#: Operations that read tensor values into Python (data-dependent control flow).
_CONTROL_FLOW = (
    _T.__bool__,
    _T.item,
    _T.tolist,
    _T.__int__,
    _T.__float__,
    _T.__index__,
    torch.any,
    torch.all,
    _T.any,
    _T.all,
)

_OPS: Dict[Callable, str] = {}
for _table in (_BINARY, _UNARY):
    for _name, _functions in _table.items():
        for _function in _functions:
            _OPS[_function] = _name

#: Attribute reads and queries that do not compute anything.
_QUERIES = {
    _T.dtype.__get__,
    _T.device.__get__,
    _T.shape.__get__,
    _T.ndim.__get__,
    _T.is_sparse.__get__,
    _T.layout.__get__,
    _T.requires_grad.__get__,
    _T.is_cuda.__get__,
    _T.dim,
    _T.size,
    _T.numel,
    _T.is_floating_point,
    _T.__len__,
}


def _function_name(function: Callable) -> str:
    return getattr(function, "__qualname__", None) or repr(function)


def _linear_arguments(args, kwargs) -> Tuple[Any, Any, Any]:
    """``(input, weight, bias)`` of a call of :func:`torch.nn.functional.linear`."""
    values = list(args) + [None] * (3 - len(args))
    names = ("input", "weight", "bias")
    return tuple(kwargs.get(n, v) for n, v in zip(names, values))


#: The half-precision dtypes. A float32 operand may be traced with a matrix of one: the
#: stepped driver computes a half-precision step in float32, its matrices upcast.
HALF_PRECISION = (torch.float16, torch.bfloat16)


def _matrix_problem(weight: Any, dtype: torch.dtype) -> Optional[str]:
    """Why ``weight`` cannot be a product's matrix (``None`` if it can): a dense square
    float matrix of the operand's dtype, or a half-precision one of a float32 operand
    (the per-neuron result has the operand's shape)."""
    if (
        not isinstance(weight, torch.Tensor)
        or weight.dim() != 2
        or weight.layout != torch.strided
    ):
        return "a matrix product with a matrix that is no dense 2-d tensor"
    if weight.shape[0] != weight.shape[1]:
        return "a matrix product with a matrix that is not square"
    upcast = dtype == torch.float32 and weight.dtype in HALF_PRECISION
    if weight.dtype != dtype and not upcast:
        return f"a matrix product with a {weight.dtype} matrix of a {dtype} value"
    return None


def _product_probe(func, args, kwargs, x, weight, probe: bool) -> torch.Tensor:
    """The value of a traced product: computed with a weight probe or a matrix of the
    probes' size, else (a matrix of the real size) a stand-in of the operand's shape."""
    if not (probe or weight.shape[-1] == x.shape[-1]):
        return torch.ones_like(x)
    if weight.dtype != x.dtype:  # a half-precision matrix, traced in float32
        return func(x, weight.to(x.dtype))
    return func(*args, **kwargs)


class Graph:
    """The recorded step: ``nodes``, the leaves by name and the outputs."""

    def __init__(self) -> None:
        self.nodes: List[Node] = []
        #: The per-step input leaves (one for a feed-forward step; the kernels take
        #: any number).
        self.inputs: List[int] = []
        self.states: Dict[str, int] = {}
        self.params: Dict[str, int] = {}
        self.output: Optional[int] = None
        self.new_states: Dict[str, int] = {}
        #: Number of matrices the ``product`` nodes use (see :func:`trace_recurrent`).
        self.matrices = 0
        self._consts: Dict[Tuple[Any, Any], int] = {}

    @property
    def products(self) -> List[int]:
        """The ``product`` nodes, in graph order."""
        return [i for i, node in enumerate(self.nodes) if node.op == "product"]

    @property
    def input(self) -> Optional[int]:
        """The single input leaf of a feed-forward step."""
        return self.inputs[0] if len(self.inputs) == 1 else None

    def add(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def const(self, value: Any, dtype: Optional[torch.dtype]) -> int:
        """A constant; ``dtype`` ``None`` for a Python number (it takes the dtype of
        the operation that uses it)."""
        if isinstance(value, bool):
            value = float(value)
        key = (float(value), dtype)
        index = self._consts.get(key)
        if index is None:
            compute = dtype if dtype is not None else torch.float64
            index = self.add(Node("const", (float(value),), compute, compute, False))
            if dtype is None:
                # A Python number: weakly typed, converted where it is used.
                self.nodes[index] = self.nodes[index]._replace(dtype=None)
            self._consts[key] = index
        return index

    def describe(self) -> str:
        """The graph as text, one node per line (for debugging and the docs)."""
        lines = []
        for index, node in enumerate(self.nodes):
            dtype = str(node.dtype).replace("torch.", "") if node.dtype else "number"
            lanes = "lane" if node.lane else "scalar"
            lines.append(f"%{index} = {node.op}{node.args} : {dtype} {lanes}")
        lines.append(f"output %{self.output}")
        for field, index in self.new_states.items():
            lines.append(f"state {field} = %{index}")
        return "\n".join(lines)


class _Recorder(TorchFunctionMode):
    """Records the operations of one step into a :class:`Graph`."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.ids: Dict[int, int] = {}
        # Tensors stay alive while recording, so that their ids stay unique.
        self.alive: List[torch.Tensor] = []
        #: The matrices of products by id -> their number (a recurrent step's weight
        #: probes are 0 and 1; others are numbered as the step first uses them).
        self.matrices: Dict[int, int] = {}
        #: A recurrent step's input probe and its leaf (only products may read it).
        self.input_probe: Optional[torch.Tensor] = None
        self.input_node: Optional[int] = None
        #: How many matrices are probes (a recurrent step's weights).
        self.preset = 0

    def bind(self, tensor: torch.Tensor, index: int) -> None:
        self.ids[id(tensor)] = index
        self.alive.append(tensor)

    def operand(self, value: Any) -> int:
        """The node of an operand: a recorded tensor, a number or a uniform tensor
        made inside the step (a constant)."""
        if isinstance(value, torch.Tensor):
            index = self.ids.get(id(value))
            if index is not None:
                return index
            if value.is_complex() or value.is_sparse:
                raise Untraceable(f"a {value.dtype} {value.layout} tensor operand")
            flat = value.detach().reshape(-1)
            if flat.numel() == 0:
                raise Untraceable("an empty tensor operand")
            first = flat[0]
            if flat.numel() > 1 and not bool(torch.all(flat == first)):
                raise Untraceable(
                    "a tensor with varying values that is not an input, a state field "
                    "or a parameter of the step"
                )
            index = self.graph.const(float(first), value.dtype)
            self.bind(value, index)
            return index
        if isinstance(value, (bool, int, float)):
            return self.graph.const(value, None)
        raise Untraceable(f"an operand of type {type(value).__name__}")

    def record(
        self, op: str, operands: List[Any], static: Tuple, result: torch.Tensor
    ) -> torch.Tensor:
        indices = [None if o is None else self.operand(o) for o in operands]
        tensors = [o for o in operands if isinstance(o, torch.Tensor)]
        numbers = [o for o in operands if isinstance(o, (bool, int, float))]
        if op in COMPARISONS and op not in ("and", "or", "not"):
            compute = torch.result_type(*(tensors + numbers)[:2]) if tensors else None
        elif op in ("and", "or", "not"):
            compute = torch.bool
        elif op == "where":
            compute = result.dtype
        else:
            compute = result.dtype
        lane = result.dim() > 0 and any(
            i is not None and self.graph.nodes[i].lane for i in indices
        )
        index = self.graph.add(
            Node(op, (*indices, *static), result.dtype, compute, lane)
        )
        self.bind(result, index)
        return result

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in _QUERIES:
            return func(*args, **kwargs)
        if func in _CONTROL_FLOW:
            raise Untraceable(
                f"{_function_name(func)} reads tensor values (data-dependent control "
                "flow)"
            )
        if func is torch.nn.functional.linear:
            return self._product(func, args, kwargs)
        result = func(*args, **kwargs)
        if func is threshold:
            x, method, alpha = args[0], args[1], args[2]
            if method in ("logistic", "circ_dist"):
                raise Untraceable(f"the stochastic surrogate method {method!r}")
            if not isinstance(alpha, torch.Tensor):
                alpha = float(alpha)
            return self.record("threshold", [x, alpha], (method,), result)
        op = _OPS.get(func)
        if op is not None:
            return self._elementwise(op, func, args, kwargs, result)
        if func in _CASTS:
            return self._cast(args[0], result)
        if func in _IDENTITIES:
            source = args[0]
            if not isinstance(source, torch.Tensor) or source.shape != result.shape:
                if not isinstance(source, torch.Tensor):
                    return self._cast(source, result)
                raise Untraceable(f"{_function_name(func)} changes the shape")
            return self._cast(source, result)
        if func in _LIKE:
            index = self.graph.const(_LIKE[func], result.dtype)
            self.bind(result, index)
            return result
        if func in (torch.full_like, _T.new_full):
            index = self.graph.const(float(args[1]), result.dtype)
            self.bind(result, index)
            return result
        if func in (torch.where, _T.where):
            condition, a, b = (
                list(args) + [kwargs.get(k) for k in ("input", "other")]
            )[:3]
            if func is _T.where:  # a.where(condition, b)
                a, condition, b = args[0], args[1], args[2]
            return self.record("where", [condition, a, b], (), result)
        if func in (torch.clamp, _T.clamp, torch.clip, _T.clip):
            bounds = list(args[1:3]) + [None] * (3 - len(args))
            low = kwargs.get("min", bounds[0])
            high = kwargs.get("max", bounds[1])
            return self.record("clamp", [args[0], low, high], (), result)
        if func in (torch.pow, _T.pow, _T.__pow__):
            base, exponent = args[0], args[1]
            if not isinstance(base, torch.Tensor) or not isinstance(
                exponent, (int, float)
            ):
                raise Untraceable("pow with a tensor exponent")
            return self.record("pow", [base], (float(exponent),), result)
        if func in (_T.__rsub__, torch.rsub):
            return self.record("sub", [args[1], args[0]], (), result)
        if func is _T.__rtruediv__:
            return self.record("div", [args[1], args[0]], (), result)
        if func is _T.__rpow__:
            raise Untraceable("a number raised to a tensor power")
        raise Untraceable(
            f"{_function_name(func)} is not an elementwise operation the kernel "
            "generator knows"
        )

    def _product(self, func, args, kwargs):
        """``linear(x, W)``: one ``product`` node (its matrix by number, see
        :attr:`matrices`), which the driver computes with the same call (the per-step
        matrix products stay PyTorch's)."""
        x, weight, bias = _linear_arguments(args, kwargs)
        if bias is not None:
            raise Untraceable("a matrix product with a bias")
        if not isinstance(weight, torch.Tensor) or id(weight) in self.ids:
            raise Untraceable("a matrix product with a matrix the step computes")
        if x is self.input_probe:
            operand = self.input_node
        else:
            operand = self.ids.get(id(x)) if isinstance(x, torch.Tensor) else None
            if operand is None or not self.graph.nodes[operand].lane:
                raise Untraceable("a matrix product of a value that is not per neuron")
        number = self.matrices.get(id(weight))
        if number is None:
            reason = _matrix_problem(weight, x.dtype)
            if reason is not None:
                raise Untraceable(reason)
            number = self.matrices[id(weight)] = len(self.matrices)
            self.alive.append(weight)
        result = _product_probe(func, args, kwargs, x, weight, number < self.preset)
        index = self.graph.add(
            Node("product", (operand, number), result.dtype, result.dtype, True)
        )
        self.graph.matrices = len(self.matrices)
        self.bind(result, index)
        return result

    def _elementwise(self, op, func, args, kwargs, result):
        if not isinstance(result, torch.Tensor):
            raise Untraceable(f"{_function_name(func)} returned no single tensor")
        if ARITY[op] == 1:
            return self.record(op, [args[0]], (), result)
        if func in (torch.max, torch.min) and (len(args) < 2 or kwargs):
            raise Untraceable(f"{_function_name(func)} as a reduction")
        a = args[0] if args else kwargs.get("input")
        b = args[1] if len(args) > 1 else kwargs.get("other")
        alpha = kwargs.get("alpha", 1)
        if op in ("add", "sub") and alpha != 1:
            raise Untraceable(f"{op} with alpha={alpha}")
        if op == "div" and kwargs.get("rounding_mode") is not None:
            raise Untraceable("div with a rounding mode")
        return self.record(op, [a, b], (), result)

    def _cast(self, source: Any, result: torch.Tensor) -> torch.Tensor:
        index = self.operand(source)
        node = self.graph.nodes[index]
        if node.dtype == result.dtype:
            self.bind(result, index)
            return result
        return self.record("cast", [source], (), result)


def is_named_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def flatten(value: Any, prefix: str = "") -> List[Tuple[str, Any]]:
    """The leaves of nested NamedTuples (e.g. ``LIFRefracState(lif=..., rho=...)``)
    as ``(dotted path, value)`` pairs, in field order."""
    leaves = []
    for field in type(value)._fields:
        item = getattr(value, field)
        path = f"{prefix}{field}"
        if is_named_tuple(item):
            leaves.extend(flatten(item, path + "."))
        else:
            leaves.append((path, item))
    return leaves


def structure(value: Any) -> Tuple:
    """The nesting of NamedTuple types of ``value`` (what :func:`rebuild` needs)."""
    return (
        type(value),
        tuple(
            (
                f,
                structure(getattr(value, f))
                if is_named_tuple(getattr(value, f))
                else None,
            )
            for f in type(value)._fields
        ),
    )


def rebuild(shape: Tuple, values: Dict[str, Any], prefix: str = "") -> Any:
    """The nested NamedTuple of ``shape`` (from :func:`structure`) with the leaves
    ``values`` by dotted path."""
    kind, fields = shape
    items = {}
    for field, inner in fields:
        path = f"{prefix}{field}"
        items[field] = (
            values[path] if inner is None else rebuild(inner, values, path + ".")
        )
    return kind(**items)


def _leaf(graph: Graph, recorder: _Recorder, op: str, name: Any, value, lane_shape):
    lane = value.dim() > 0
    try:
        fits = torch.broadcast_shapes(value.shape, lane_shape) == tuple(lane_shape)
    except RuntimeError:
        fits = False
    if lane and not fits:
        raise Untraceable(
            f"{op} {name!r} has shape {tuple(value.shape)}, not the neuron shape "
            f"{tuple(lane_shape)}"
        )
    index = graph.add(Node(op, (name,), value.dtype, value.dtype, lane))
    recorder.bind(value, index)
    return index


def trace(
    step: Callable,
    input_tensor: torch.Tensor,
    state: Any,
    p: Any,
    dt: float,
) -> Graph:
    """Records ``step(input_tensor, state, p, dt)`` (a feed-forward step: input and
    state fields of one shape, parameters of that shape or 0-dim).

    ``input_tensor`` and the state fields are small probes of the neuron shape; tensor
    fields of ``p`` become ``param`` leaves (per neuron when not 0-dim). Raises
    :class:`Untraceable` when the step is no per-neuron elementwise computation."""
    graph = Graph()
    with _Recorder(graph) as recorder:
        shape = tuple(input_tensor.shape)
        graph.inputs.append(
            _leaf(graph, recorder, "input", "input", input_tensor, shape)
        )
        _record_step(graph, recorder, step, input_tensor, state, p, dt, shape)
    return graph


def _record_step(graph, recorder, step, input_tensor, state, p, dt, shape):
    """Binds the state and parameter leaves, runs the step under ``recorder`` and
    records its outputs."""
    for field, value in flatten(state):
        if not isinstance(value, torch.Tensor):
            raise Untraceable(f"state field {field!r} is no tensor")
        graph.states[field] = _leaf(graph, recorder, "state", field, value, shape)
    for field, value in flatten(p):
        if isinstance(value, torch.Tensor):
            if not value.is_floating_point():
                raise Untraceable(f"parameter {field!r} is no float tensor")
            graph.params[field] = _leaf(graph, recorder, "param", field, value, shape)
    try:
        out, new_state = step(input_tensor, state, p, dt)
    except Untraceable:
        raise
    except Exception as error:  # an operation that failed on the probe
        raise Untraceable(f"the step failed while traced: {error!r}") from error
    if (
        not isinstance(out, torch.Tensor)
        or not is_named_tuple(new_state)
        or structure(new_state) != structure(state)
    ):
        raise Untraceable(
            "the step does not return (tensor, state of the input's state type)"
        )
    graph.output = recorder.operand(out)
    for field, value in flatten(new_state):
        graph.new_states[field] = recorder.operand(value)
    for index in (graph.output, *graph.new_states.values()):
        if graph.nodes[index].dtype in (None, torch.bool):
            raise Untraceable("an output that is no float tensor")


#: The parameter name of the time step when a program takes it at run time (see
#: :func:`time_step_leaf`).
TIME_STEP = "__dt__"


def time_step_leaf(graph: Graph, probe: Graph, dt: float, probe_dt: float) -> bool:
    """Turns the constants ``dt`` of ``graph`` (traced with ``dt``) into one parameter
    leaf :data:`TIME_STEP`, so that its kernels take the time step at run time; True
    when done. ``probe`` is the same step traced with another time step ``probe_dt``:
    the two graphs must be the same but for those constants, so that the step uses
    ``dt`` only as an operand (no Python arithmetic or control flow on it, and no
    other constant of the same value, which would share its node)."""
    if len(graph.nodes) != len(probe.nodes):
        return False
    places = []
    for index, (node, other) in enumerate(zip(graph.nodes, probe.nodes)):
        if node.op != other.op or node.dtype != other.dtype:
            return False
        if node.op == "const" and node.args != other.args:
            if node.args[0] != dt or other.args[0] != probe_dt:
                return False
            places.append(index)
        elif node.args != other.args:
            return False
    if len(places) > 1:
        return False
    for index in places:
        graph.nodes[index] = Node(
            "param", (TIME_STEP,), torch.float64, torch.float64, False
        )
        graph.params[TIME_STEP] = index
    return True


#: The weights of a recurrent step ``step(input, state, *weights, p, dt)``, by kind in
#: argument order: ``"input"`` weights ``(neurons, features)`` multiply the input,
#: ``"recurrent"`` ones are ``(neurons, neurons)``. A recurrent step of the modules takes
#: ``(input_weights, recurrent_weights)``; a step may take more (CobaLIF's weights
#: rectified once per sequence, :mod:`norse.torch.fused.coba_lif`).
RECURRENT = ("input", "recurrent")


def weight_kinds(recurrent: Union[bool, Sequence[str]]) -> Tuple[str, ...]:
    """The kinds of weights a step takes (see :data:`RECURRENT`): ``True`` a recurrent
    step's, ``False`` none (a feed-forward step), else the kinds given."""
    if isinstance(recurrent, bool):
        return RECURRENT if recurrent else ()
    return tuple(recurrent)


def _recurrent_probes(
    x_dtype: torch.dtype, lanes: int, kinds: Sequence[str]
) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """A recurrent step's probe input and weights (one per kind)."""
    features = 3
    # Varying values: the input cannot pass for a constant if the step uses it directly
    x = torch.arange(1, features + 1, dtype=x_dtype)
    columns = {"input": features, "recurrent": lanes}
    weights = [torch.ones(lanes, columns[kind], dtype=x_dtype) for kind in kinds]
    return x, weights


def trace_recurrent(
    step: Callable,
    x_dtype: torch.dtype,
    state: Any,
    p: Any,
    dt: float,
    lanes: int,
    kinds: Sequence[str] = RECURRENT,
) -> Graph:
    """Records a recurrent step ``step(input, state, *weights, p, dt)`` (weights of
    ``kinds``, see :data:`RECURRENT`: ``input_weights, recurrent_weights`` by
    default). Its input may enter only through products (``linear(input,
    input_weights)``): it is a leaf of no lane (its size is the number of input
    features), read by ``product`` nodes only. The weights are matrices ``0, 1, ...``
    in argument order."""
    graph = Graph()
    x, weights = _recurrent_probes(x_dtype, lanes, kinds)
    with _Recorder(graph) as recorder:
        recorder.matrices = {id(w): k for k, w in enumerate(weights)}
        recorder.preset = graph.matrices = len(weights)
        recorder.input_probe = x
        recorder.input_node = graph.add(
            Node("input", ("input",), x_dtype, x_dtype, False)
        )
        graph.inputs.append(recorder.input_node)
        recorder.alive += [x, *weights]
        _record_step(
            graph,
            recorder,
            lambda x_, s_, p_, dt_: step(x_, s_, *weights, p_, dt_),
            x,
            state,
            p,
            dt,
            (lanes,),
        )
    if not graph.products:
        raise Untraceable("the step uses none of its weights")
    return graph


class _MatrixFinder(TorchFunctionMode):
    """Collects the matrices of the ``linear`` calls of one step (see
    :func:`find_matrices`)."""

    def __init__(self, known: List[torch.Tensor]) -> None:
        super().__init__()
        self.found = list(known)
        self.preset = len(known)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not torch.nn.functional.linear:
            return func(*args, **kwargs)
        x, weight, _ = _linear_arguments(args, kwargs)
        probe = any(weight is m for m in self.found[: self.preset])
        if not any(weight is m for m in self.found):
            self.found.append(weight)
        return _product_probe(func, args, kwargs, x, weight, probe)


def find_matrices(
    step: Callable,
    x_dtype: torch.dtype,
    state: Any,
    p: Any,
    dt: float,
    lanes: int,
    recurrent: Union[bool, Sequence[str]],
) -> List[torch.Tensor]:
    """The matrices of the step's products other than a recurrent step's weights, in
    the order in which :func:`trace` (``recurrent``: :func:`trace_recurrent` with the
    weights of :func:`weight_kinds` ``(recurrent)``) numbers them: the step runs once on
    the trace's probes (``state`` and ``p`` as traced, ``lanes`` neurons), its products
    returning stand-ins. The program traced once per specification finds the current
    tensors (a module's coupling matrix, say) this way at every call."""
    kinds = weight_kinds(recurrent)
    if kinds:
        x, known = _recurrent_probes(x_dtype, lanes, kinds)
        call = lambda: step(x, state, *known, p, dt)  # noqa: E731
    else:
        x, known = torch.zeros(lanes, dtype=x_dtype), []
        call = lambda: step(x, state, p, dt)  # noqa: E731
    with _MatrixFinder(known) as finder:
        call()
    return finder.found[len(known) :]


def trace_function(
    graph: Graph, function: Callable, operands: List[int], probes: List[torch.Tensor]
) -> int:
    """Records ``function(*probes)`` into ``graph``, ``probes[k]`` standing for node
    ``operands[k]``; returns the node of the result (used for surrogate gradients)."""
    with _Recorder(graph) as recorder:
        for probe, index in zip(probes, operands):
            recorder.bind(probe, index)
        return recorder.operand(function(*probes))


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
