r"""Export of one time step of a network to ONNX, with its state as explicit tensors.

:func:`to_onnx` writes an ONNX graph that computes **one time step** of a network: a
:class:`~norse.torch.SequentialState` of ``torch.nn`` layers (``Linear``, ``Conv2d``,
pooling, ``Flatten``, activations, ``BatchNorm`` in eval mode...) and neuron *cells*
(``LIFCell``, ``LIFBoxCell``, ``LICell``, ``IAFCell``, ``LIFRefracCell``, ``LSNNCell``,
``LIFExCell``, ``LIFAdExCell``, the recurrent cells ``LIFRecurrentCell``,
``LSNNRecurrentCell``...), or a single cell. A runtime (``onnxruntime``, a compiler for
an accelerator) then runs the network one step per call and feeds the state back::

    inputs:   input, state_<layer>_<field>, ...
    outputs:  output, next_state_<layer>_<field>, ...

Names. The input is ``input`` (``(batch, ...)``, one time step), the output ``output``
(``output_0``, ``output_1``... for a ``SequentialState(..., return_hidden=True)``). Every
tensor of the state is an input named ``state_`` followed by its path, and its new
value the output of the same name with the prefix ``next_state_``. The path is the
layer's name in the ``SequentialState`` (its index, ``0``, ``1``..., or the key of an
``OrderedDict``) and the state's field names down to the tensor, joined by ``_``; a
single cell's state has no layer part. For ``SequentialState(Linear, LIFCell,
Linear, LIFRefracCell)``::

    state_1_v, state_1_i, state_3_lif_z, state_3_lif_v, state_3_lif_i, state_3_rho

Shapes. The batch dimension (the first) of the input, the output and of every state
tensor that has one is dynamic unless ``dynamic_batch=False``; the other dimensions are
those of ``sample_input``.

The step computed is the inference step: spikes are the Heaviside step of the
distance to the threshold (a surrogate gradient only matters for training), dropout
and batch normalisation act as in ``module.eval()``.

Initial state. The first step of a network starts from the rest state its layers
build themselves (``v = v_leak``, currents ``0``...). :meth:`OnnxStep.initial_state`
returns it as numpy arrays for any batch size; it is also stored in the ONNX file, so
that a program with nothing but ``onnxruntime`` and numpy can build it: the metadata
entry ``norse.state`` (``InferenceSession(...).get_modelmeta().custom_metadata_map``)
holds a JSON list with one object per state tensor::

    {"input": "state_1_v", "output": "next_state_1_v", "dtype": "float32",
     "shape": [null, 16], "rest": 0.0}

``shape`` is the tensor's shape with ``null`` for the batch dimension; ``rest`` is the
value of one batch entry: a number where all its elements are equal, else a nested list
of the shape without the batch dimension.

What cannot be exported raises an :class:`OnnxExportError` naming the layer: time
modules (``LIF``, ``LIFRecurrent``, ``Lift``... take a whole sequence: export their
cell), stochastic spike thresholds (``method="logistic"``/``"circ_dist"``) and other
layers that draw random numbers (``PoissonEncoderStep``), layers whose Python code
branches on tensor values, layers without an ONNX translation. Sparse input is refused
(``sample_input`` must be dense).

Example:
    >>> import torch, norse.torch as norse
    >>> model = norse.SequentialState(torch.nn.Linear(4, 8), norse.LIFCell())
    >>> step = norse.to_onnx(model, torch.zeros(2, 4), "/tmp/step.onnx")  # doctest: +SKIP
    >>> step.state_names  # doctest: +SKIP
    ('state_1_v', 'state_1_i')
"""

import dataclasses
import json
import os
import re
from importlib.util import find_spec
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from norse.torch.functional.threshold import STOCHASTIC_METHODS
from norse.torch.module.delay import Delay
from norse.torch.module.encode import RateEncoder
from norse.torch.module.exp_filter import ExpFilter
from norse.torch.module.lift import Lift
from norse.torch.module.sequential import RecurrentSequential, SequentialState
from norse.torch.module.snn import (
    SNN,
    NeuronModule,
    SNNRecurrent,
    is_module_stateful,
    spikes_as_float,
)

#: Name of the graph input that takes one time step of the network's input.
INPUT_NAME = "input"
#: Name of the graph output (``output_<i>`` for several outputs).
OUTPUT_NAME = "output"
#: Prefix of the state inputs.
STATE_PREFIX = "state"
#: Prefix of the state outputs.
NEXT_STATE_PREFIX = "next_state"
#: Key of the ONNX metadata entry that describes the state (see the module doc).
METADATA_KEY = "norse.state"

# ATen operators that draw random numbers (their names without the in-place "_").
_RANDOM_OPS = frozenset(
    {
        "bernoulli",
        "cauchy",
        "dropout",
        "exponential",
        "geometric",
        "log_normal",
        "multinomial",
        "native_dropout",
        "normal",
        "poisson",
        "rand",
        "rand_like",
        "randint",
        "randint_like",
        "randn",
        "randn_like",
        "randperm",
        "uniform",
    }
)


class OnnxExportError(ValueError):
    """A model (or one of its layers) that :func:`to_onnx` cannot express in ONNX."""


@dataclasses.dataclass(frozen=True)
class StateTensor:
    """One tensor of the exported state.

    Attributes:
        input_name (str): the graph input that takes it, e.g. ``state_1_v``
        output_name (str): the graph output that returns its next value,
            e.g. ``next_state_1_v``
        shape (Tuple[Optional[int], ...]): its shape, ``None`` for the (dynamic) batch
            dimension (the first for the neuron cells; ``DelayCell``'s ring buffer,
            ``(length, batch, ...)``, has it second)
        dtype (np.dtype): its numpy dtype
        rest (np.ndarray): its resting value for one batch entry: the shape without the
            batch dimension (the whole shape for a tensor without batch dimension)
    """

    input_name: str
    output_name: str
    shape: Tuple[Optional[int], ...]
    dtype: np.dtype
    rest: np.ndarray

    @property
    def batch_axis(self) -> Optional[int]:
        """The position of the batch dimension, ``None`` if there is none."""
        return self.shape.index(None) if None in self.shape else None

    @property
    def batched(self) -> bool:
        """Whether the tensor has a (dynamic) batch dimension."""
        return self.batch_axis is not None

    def initial(self, batch_size: int) -> np.ndarray:
        """The resting value for ``batch_size`` batch entries, of shape ``shape`` with
        ``batch_size`` for the batch dimension."""
        axis = self.batch_axis
        if axis is None:
            return self.rest.copy()
        shape = tuple(batch_size if size is None else size for size in self.shape)
        return np.broadcast_to(np.expand_dims(self.rest, axis), shape).copy()

    def metadata(self) -> Dict[str, Any]:
        """The JSON object of this tensor in the ``norse.state`` metadata entry."""
        flat = self.rest.reshape(-1)
        uniform = flat.size > 0 and bool(np.all(flat == flat[0]))
        return {
            "input": self.input_name,
            "output": self.output_name,
            "dtype": str(self.dtype),
            "shape": list(self.shape),
            "rest": flat[0].item() if uniform else self.rest.tolist(),
        }


@dataclasses.dataclass(frozen=True)
class OnnxStep:
    """What :func:`to_onnx` wrote: the file and the names of its inputs and outputs.

    Attributes:
        path (str): the ONNX file
        input_name (str): the input of one time step (``"input"``)
        output_names (Tuple[str, ...]): ``("output",)`` (``output_<i>`` for several)
        states (Tuple[StateTensor, ...]): the state tensors, in the order of the graph's
            inputs after ``input`` (and of its outputs after the outputs)
    """

    path: str
    input_name: str
    output_names: Tuple[str, ...]
    states: Tuple[StateTensor, ...]

    @property
    def state_names(self) -> Tuple[str, ...]:
        """The state inputs, e.g. ``("state_1_v", "state_1_i")``."""
        return tuple(state.input_name for state in self.states)

    @property
    def next_state_names(self) -> Tuple[str, ...]:
        """The state outputs, e.g. ``("next_state_1_v", "next_state_1_i")``."""
        return tuple(state.output_name for state in self.states)

    @property
    def input_names(self) -> Tuple[str, ...]:
        """All graph inputs in order: ``input`` and the state inputs."""
        return (self.input_name, *self.state_names)

    @property
    def all_output_names(self) -> Tuple[str, ...]:
        """All graph outputs in order: the outputs and the state outputs."""
        return (*self.output_names, *self.next_state_names)

    def initial_state(self, batch_size: int) -> Dict[str, np.ndarray]:
        """The rest state of the network for ``batch_size`` batch entries, by input name
        (the feed of the first step together with the input).

        Raises:
            ValueError: if ``batch_size`` is not a positive int.
        """
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        return {
            state.input_name: state.initial(int(batch_size)) for state in self.states
        }


# --------------------------------------------------------------------------------------
# State trees: NamedTuples, lists and tuples of tensors (None for stateless layers)


@dataclasses.dataclass(frozen=True)
class _Node:
    """The structure of a state: a tensor leaf, ``None``, a NamedTuple or a list."""

    kind: str  # "tensor", "none", "namedtuple", "list", "tuple"
    type: Optional[type] = None
    keys: Tuple[str, ...] = ()
    children: Tuple["_Node", ...] = ()


def _structure(value: Any, where: str) -> _Node:
    if isinstance(value, torch.Tensor):
        return _Node("tensor")
    if value is None:
        return _Node("none")
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return _Node(
            "namedtuple",
            type(value),
            tuple(value._fields),
            tuple(
                _structure(item, f"{where}.{field}")
                for field, item in zip(value._fields, value)
            ),
        )
    if isinstance(value, (list, tuple)):
        return _Node(
            "list" if isinstance(value, list) else "tuple",
            None,
            tuple(str(index) for index in range(len(value))),
            tuple(
                _structure(item, f"{where}[{index}]")
                for index, item in enumerate(value)
            ),
        )
    raise OnnxExportError(
        f"{where} is a {type(value).__name__}; to_onnx exports states made of tensors "
        "(in NamedTuples and lists)"
    )


def _layer_keys(node: _Node, module: torch.nn.Module) -> _Node:
    """``node`` with the layer names of a SequentialState (recursively) as the keys of
    its state list (``"0"``, ``"1"``... or the keys of an ``OrderedDict``)."""
    if not isinstance(module, SequentialState) or node.kind != "list":
        return node
    layers = list(module._modules.items())
    return dataclasses.replace(
        node,
        keys=tuple(name for name, _ in layers),
        children=tuple(
            _layer_keys(child, layer)
            for child, (_, layer) in zip(node.children, layers)
        ),
    )


def _leaves(value: Any, node: _Node, path: Tuple[str, ...]) -> Iterator:
    """``(path, tensor)`` for every tensor of ``value``, in a fixed order."""
    if node.kind == "tensor":
        yield path, value
    elif node.kind != "none":
        for key, item, child in zip(node.keys, value, node.children):
            yield from _leaves(item, child, (*path, key))


def _rebuild(node: _Node, tensors: Iterator[torch.Tensor]) -> Any:
    if node.kind == "tensor":
        return next(tensors)
    if node.kind == "none":
        return None
    items = [_rebuild(child, tensors) for child in node.children]
    if node.kind == "namedtuple":
        return node.type(*items)
    return items if node.kind == "list" else tuple(items)


def _name(prefix: str, path: Sequence[str]) -> str:
    return "_".join([prefix, *(re.sub(r"\W", "_", part) for part in path)])


# --------------------------------------------------------------------------------------
# Layers


def _describe(name: Optional[str], layer: torch.nn.Module) -> str:
    kind = type(layer).__name__
    return kind if name is None else f"layer {name} ({kind})"


def _cell_name(layer: torch.nn.Module) -> str:
    """``LIFCell`` for ``LIF``, ``LIFRecurrentCell`` for ``LIFRecurrent`` (if it exists)."""
    import norse.torch as norse

    candidate = f"{type(layer).__name__}Cell"
    return candidate if hasattr(norse, candidate) else "the cell form of the layer"


def _methods(p: Any) -> Iterator[str]:
    """Every ``method`` field of a (nested) parameter NamedTuple."""
    if isinstance(p, tuple) and hasattr(p, "_fields"):
        for field, value in zip(p._fields, p):
            if field == "method" and isinstance(value, str):
                yield value
            else:
                yield from _methods(value)


def _check_layer(name: Optional[str], layer: torch.nn.Module, stateful: bool) -> None:
    """Raises an :class:`OnnxExportError` for layers that cannot be one ONNX step."""
    what = _describe(name, layer)
    inner = getattr(layer, "_orig_mod", layer)  # a torch.compile wrapper
    if isinstance(inner, (SNN, SNNRecurrent, Delay)):
        raise OnnxExportError(
            f"{what} is a time module: it takes a whole sequence (T, batch, ...), while "
            f"to_onnx exports one time step; use {_cell_name(inner)} instead (it takes "
            "the same parameters)"
        )
    if isinstance(inner, ExpFilter):
        raise OnnxExportError(
            f"{what} filters a whole sequence (T, batch, ...), while to_onnx exports one "
            "time step; export its linear layer and filter its outputs outside the step"
        )
    if isinstance(inner, RateEncoder):
        raise OnnxExportError(
            f"{what} draws random numbers, which an ONNX step cannot reproduce; encode "
            "the input outside the exported step and export the rest of the network"
        )
    if hasattr(inner, "seq_length"):
        raise OnnxExportError(
            f"{what} turns one input into a sequence of seq_length steps, while to_onnx "
            "exports one time step; encode the input outside the exported step"
        )
    if isinstance(layer, Lift):
        raise OnnxExportError(
            f"{what} maps its layer over the time dimension of a sequence; in one time "
            "step use the wrapped layer itself"
        )
    if isinstance(layer, torch.nn.RNNBase):
        raise OnnxExportError(
            f"{what} runs over a whole sequence; to_onnx exports one time step of "
            "norse cells (torch.nn.RNNCell-like layers are called as layer(input))"
        )
    if isinstance(layer, RecurrentSequential):
        raise OnnxExportError(
            f"{what}: its state has no fed-back output before the first call, so the "
            "step has no fixed inputs; export its inner SequentialState and add the "
            "fed-back output to the input yourself"
        )
    for method in _methods(getattr(layer, "p", None)):
        if method in STOCHASTIC_METHODS:
            raise OnnxExportError(
                f"{what} samples its spikes (p.method={method!r} is a stochastic "
                "threshold), which a deterministic ONNX step cannot reproduce; export "
                "it with a deterministic method such as 'super' (same weights)"
            )
    if stateful and not isinstance(layer, SequentialState):
        if not callable(getattr(layer, "state_fallback", None)) and not callable(
            getattr(layer, "initial_state", None)
        ):
            raise OnnxExportError(
                f"{what} takes a state, but to_onnx cannot build its initial state (it "
                "has neither state_fallback nor initial_state); export norse cells or "
                "give the layer an initial_state(input) method"
            )


def _layers(module: torch.nn.Module) -> List[Tuple[str, torch.nn.Module, bool]]:
    return [
        (name, layer, stateful)
        for (name, layer), stateful in zip(
            module._modules.items(), module.stateful_layers
        )
    ]


def _check_tree(module: torch.nn.Module, name: Optional[str]) -> None:
    """Checks a SequentialState's layers (recursively) or a single stateful module."""
    if isinstance(module, SequentialState):
        for child_name, layer, stateful in _layers(module):
            full = child_name if name is None else f"{name}.{child_name}"
            _check_layer(full, layer, stateful)
            if isinstance(layer, SequentialState):
                _check_tree(layer, full)
        return
    _check_layer(name, module, True)


def _rest_state(
    module: torch.nn.Module, input_tensor: torch.Tensor, name: Optional[str]
) -> Tuple[Any, Any]:
    """The rest state of a stateful ``module`` for ``input_tensor``, and its output from
    that state (run eagerly: errors name the layer)."""
    if isinstance(module, SequentialState):
        states: List[Any] = []
        hidden = []
        for child_name, layer, stateful in _layers(module):
            full = child_name if name is None else f"{name}.{child_name}"
            if stateful:
                state, input_tensor = _rest_state(layer, input_tensor, full)
            else:
                state, input_tensor = None, _run(layer, full, input_tensor)
            states.append(state)
            hidden.append(input_tensor)
        return states, hidden if module.return_hidden else input_tensor
    try:
        fallback = getattr(module, "state_fallback", None)
        if callable(fallback) and isinstance(module, NeuronModule):
            state = fallback(spikes_as_float(input_tensor))
        else:
            state = module.initial_state(input_tensor)
    except Exception as error:
        raise OnnxExportError(
            f"{_describe(name, module)} cannot build its initial state for an input of "
            f"shape {tuple(input_tensor.shape)}: {_first_line(error)}"
        ) from error
    if state is None:
        raise OnnxExportError(
            f"{_describe(name, module)} returned no initial state (None)"
        )
    return state, _run(module, name, input_tensor, state)[0]


def _run(module: torch.nn.Module, name: Optional[str], *arguments: Any) -> Any:
    try:
        return module(*arguments)
    except OnnxExportError:
        raise
    except Exception as error:
        raise OnnxExportError(
            f"{_describe(name, module)} fails on an input of shape "
            f"{tuple(arguments[0].shape)} (one time step, (batch, ...)): "
            f"{_first_line(error)}"
        ) from error


class _Tracker:
    """Which top-level layer runs (shared, not copied, when the exporter copies the
    module that holds it)."""

    def __init__(self) -> None:
        self.active: Optional[str] = None

    def __copy__(self) -> "_Tracker":
        return self

    def __deepcopy__(self, memo: Dict[int, Any]) -> "_Tracker":
        return self


class _StepGraph(torch.nn.Module):
    """``(input, *state tensors) -> (*outputs, *next state tensors)`` around a network;
    remembers which of its layers runs, to name it when tracing fails."""

    def __init__(self, network: torch.nn.Module, state_node: _Node):
        super().__init__()
        self.network = network
        self.state_node = state_node
        self.tracker = _Tracker()

    def _step(self, input_tensor: torch.Tensor, state: Any) -> Tuple[Any, Any]:
        network = self.network
        if not isinstance(network, SequentialState):
            self.tracker.active = None
            return network(input_tensor, state)
        new_states: List[Any] = []
        hidden = []
        for (name, layer, stateful), layer_state in zip(_layers(network), state):
            self.tracker.active = name
            if stateful:
                input_tensor, layer_state = layer(input_tensor, layer_state)
                new_states.append(layer_state)
            else:
                input_tensor = layer(input_tensor)
                new_states.append(None)
            hidden.append(input_tensor)
        self.tracker.active = None
        return (hidden if network.return_hidden else input_tensor), new_states

    def forward(self, input_tensor: torch.Tensor, *state_tensors: torch.Tensor):
        state = _rebuild(self.state_node, iter(state_tensors))
        output, next_state = self._step(input_tensor, state)
        outputs = output if isinstance(output, list) else [output]
        next_leaves = [tensor for _, tensor in _leaves(next_state, self.state_node, ())]
        return (*outputs, *next_leaves)


# --------------------------------------------------------------------------------------
# Export


def _layer_of_node(node: Any, graph: _StepGraph) -> Optional[str]:
    """The name of the top-level layer an FX node was traced in, if known."""
    stack = node.meta.get("nn_module_stack") or {}
    for path, _ in stack.values():
        match = re.search(r"network(?:\.|_)(\w+?)(?:\.|$)", str(path))
        if match and isinstance(graph.network, SequentialState):
            if match.group(1) in graph.network._modules:
                return match.group(1)
    return None


def _dropout_trains(node: Any) -> bool:
    """The ``train`` argument of an ``aten.dropout``/``native_dropout`` node."""
    train = node.args[2] if len(node.args) > 2 else node.kwargs.get("train", True)
    return train is not False


def _check_random(program: Any, graph: _StepGraph) -> None:
    for node in program.graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        packet = getattr(node.target, "_overloadpacket", None)
        op = getattr(packet, "__name__", "").rstrip("_")
        if op in ("dropout", "native_dropout") and not _dropout_trains(node):
            continue  # eval mode: the identity
        if op in _RANDOM_OPS:
            layer_name = _layer_of_node(node, graph)
            layer = (
                graph.network
                if layer_name is None
                else graph.network._modules[layer_name]
            )
            raise OnnxExportError(
                f"{_describe(layer_name, layer)} draws random numbers (aten.{op}), which "
                "an ONNX step cannot reproduce; export the network without it (e.g. "
                "encode the input outside the exported step)"
            )


def _translation_error(
    program: Any, graph: _StepGraph, error: BaseException
) -> OnnxExportError:
    """Names the layer of the operator that torch.onnx could not translate (found in
    the traced program, or in its decomposition, by node name or operator)."""
    texts = []
    cause: Optional[BaseException] = error
    while cause is not None and len(texts) < 8:
        texts.append(re.sub(r"\x1b\[[0-9;]*m", "", str(cause)))
        cause = cause.__cause__ or cause.__context__
    text = "\n".join(texts)
    node_name = re.search(r"Error when translating node %(\w+)", text)
    target = re.search(r"target=torch\.ops\.([\w.]+)", text)
    summary = re.search(r"<class '[\w.]+'>: ([^\n]+)", text)
    reason = summary.group(1) if summary else _first_line(error)
    layer_name = None
    if node_name or target:
        candidates = [program]
        try:
            candidates.append(program.run_decompositions())
        except Exception:  # only a better error message is at stake
            pass
        for candidate in candidates:
            for node in candidate.graph_module.graph.nodes:
                if (node_name and node.name == node_name.group(1)) or (
                    target and str(node.target) == target.group(1)
                ):
                    layer_name = _layer_of_node(node, graph)
                    break
            if layer_name is not None:
                break
    layer = graph.network if layer_name is None else graph.network._modules[layer_name]
    operator = f" (operator {target.group(1)})" if target else ""
    return OnnxExportError(
        f"{_describe(layer_name, layer)} cannot be translated to ONNX{operator}: {reason}"
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _graph_error(
    graph: _StepGraph, error: BaseException, stage: str
) -> OnnxExportError:
    if graph.tracker.active is not None:
        layer = graph.network._modules[graph.tracker.active]
        where = _describe(graph.tracker.active, layer)
    else:
        where = _describe(None, graph.network)
    hint = ""
    if "data-dependent" in str(error) or "GuardOnDataDependent" in type(error).__name__:
        hint = " (its Python code branches on tensor values, which a graph cannot hold)"
    return OnnxExportError(f"{where} cannot be {stage}{hint}: {_first_line(error)}")


def _check_arguments(
    module: Any, sample_input: Any, path: Any, opset_version: Optional[int]
) -> torch.Tensor:
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module (a SequentialState or a neuron cell), got "
            f"{type(module).__name__}"
        )
    if not isinstance(module, SequentialState) and not is_module_stateful(module):
        raise TypeError(
            f"module must be a SequentialState or a stateful neuron cell (forward(input, "
            f"state)), got {type(module).__name__}; a stateless network needs no step "
            "export: use torch.onnx.export"
        )
    if not isinstance(sample_input, torch.Tensor):
        raise TypeError(
            f"sample_input must be a torch.Tensor (one time step, (batch, ...)), got "
            f"{type(sample_input).__name__}"
        )
    if sample_input.is_sparse or sample_input.layout != torch.strided:
        raise OnnxExportError(
            f"sample_input must be a dense tensor, got layout {sample_input.layout}; the "
            "ONNX step takes dense input (convert it with .to_dense())"
        )
    if sample_input.dim() < 1:
        raise ValueError(
            "sample_input must have a batch dimension first, (batch, ...), got a scalar"
        )
    if sample_input.shape[0] == 0:
        raise ValueError(
            f"sample_input must hold at least one batch entry, got shape "
            f"{tuple(sample_input.shape)}"
        )
    if sample_input.is_complex():
        raise TypeError(
            f"sample_input must be a real tensor, got dtype {sample_input.dtype}"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a file path (str or os.PathLike), got {type(path).__name__}"
        )
    if opset_version is not None and (
        isinstance(opset_version, bool)
        or not isinstance(opset_version, int)
        or opset_version < 18
    ):
        raise ValueError(
            f"opset_version must be None (the exporter's default) or an int >= 18, got "
            f"{opset_version!r}"
        )
    return sample_input.detach()


def _state_tensors(
    rest: Any, wider_rest: Any, node: _Node, batch: int, dynamic: bool
) -> Tuple[StateTensor, ...]:
    names = []
    states = []
    pairs = zip(_leaves(rest, node, ()), _leaves(wider_rest, node, ()))
    for (path, tensor), (_, wider) in pairs:
        input_name = _name(STATE_PREFIX, path)
        names.append(input_name)
        # The batch dimension is the one that grows with the batch of the input.
        grown = [
            axis
            for axis in range(tensor.dim())
            if wider.dim() == tensor.dim() and wider.shape[axis] != tensor.shape[axis]
        ]
        axis = (
            grown[0]
            if dynamic
            and len(grown) == 1
            and (tensor.shape[grown[0]], wider.shape[grown[0]]) == (batch, batch + 1)
            else None
        )
        array = tensor.detach().cpu().numpy()
        shape: List[Optional[int]] = list(array.shape)
        if axis is not None:
            shape[axis] = None
        states.append(
            StateTensor(
                input_name=input_name,
                output_name=_name(NEXT_STATE_PREFIX, path),
                shape=tuple(shape),
                dtype=array.dtype,
                rest=np.array(array if axis is None else np.take(array, 0, axis)),
            )
        )
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise OnnxExportError(
            f"the state names {sorted(duplicates)} occur twice (layer names that "
            "differ only in characters other than letters, digits and '_'); rename "
            "the layers"
        )
    return tuple(states)


def to_onnx(
    module: torch.nn.Module,
    sample_input: torch.Tensor,
    path: "str | os.PathLike",
    *,
    dynamic_batch: bool = True,
    opset_version: Optional[int] = None,
) -> OnnxStep:
    """Exports one time step of ``module`` to the ONNX file ``path``.

    The graph takes ``input`` (one time step) and the state tensors
    ``state_<layer>_<field>``, and returns ``output`` and the next state
    ``next_state_<layer>_<field>`` (the naming is described in
    :mod:`norse.torch.utils.export_onnx`). Run it once per time step, feeding
    ``next_state_*`` back in as ``state_*``; the first step takes the rest state,
    :meth:`OnnxStep.initial_state` (also stored in the file's metadata).

    The export runs ``module`` in eval mode under ``torch.no_grad()`` (its training
    flags are restored afterwards) with ``torch.onnx.export`` on a
    ``torch.export`` program (the dynamo-based exporter).

    Parameters:
        module (torch.nn.Module): a :class:`~norse.torch.SequentialState` of torch
            layers and neuron cells, or one neuron cell (e.g. ``LIFCell``)
        sample_input (torch.Tensor): one time step of input, ``(batch, ...)``; it sets
            the dtype and all dimensions but the batch
        path (str or os.PathLike): the ONNX file to write
        dynamic_batch (bool): make the batch dimension (the first of the input)
            dynamic (default); with ``False`` every shape is that of ``sample_input``
        opset_version (Optional[int]): ONNX opset (>= 18), default: the exporter's

    Returns:
        An :class:`OnnxStep`: the names of the graph's inputs and outputs and the rest
        state.

    Raises:
        OnnxExportError: naming the layer that cannot be exported (a time module, a
            stochastic threshold, random numbers, tensor-dependent Python control flow,
            an operator without ONNX translation), or for sparse ``sample_input``.
        TypeError, ValueError: for arguments of the wrong type or value.
        ImportError: without the ``onnx`` and ``onnxscript`` packages.
    """
    sample_input = _check_arguments(module, sample_input, path, opset_version)
    missing = [name for name in ("onnx", "onnxscript") if find_spec(name) is None]
    if missing:
        raise ImportError(
            f"to_onnx needs the packages {' and '.join(missing)} (torch.onnx's "
            f"exporter): pip install {' '.join(missing)}"
        )
    if not isinstance(dynamic_batch, bool):
        raise TypeError(f"dynamic_batch must be a bool, got {dynamic_batch!r}")
    _check_tree(module, None)

    modes = {submodule: submodule.training for submodule in module.modules()}
    module.eval()
    try:
        with torch.no_grad():
            return _export(module, sample_input, path, dynamic_batch, opset_version)
    finally:
        for submodule, training in modes.items():
            submodule.training = training


def _export(
    module: torch.nn.Module,
    sample_input: torch.Tensor,
    path: "str | os.PathLike",
    dynamic_batch: bool,
    opset_version: Optional[int],
) -> OnnxStep:
    # torch.export specialises a dimension of size 1: trace with at least 2 entries.
    if dynamic_batch and sample_input.shape[0] == 1:
        sample_input = torch.cat([sample_input, sample_input])
    batch = sample_input.shape[0]
    rest, output = _rest_state(module, sample_input, None)
    wider_rest, _ = _rest_state(
        module, torch.cat([sample_input, sample_input[:1]]), None
    )
    node = _layer_keys(_structure(rest, "the initial state"), module)
    states = _state_tensors(rest, wider_rest, node, batch, dynamic_batch)

    graph = _StepGraph(module, node)
    # The next state must have the structure of the state it replaces.
    _, next_state = graph._step(sample_input, _rebuild(node, iter(_flat(rest, node))))
    if _layer_keys(_structure(next_state, "the next state"), module) != node:
        raise OnnxExportError(
            f"{_describe(None, module)} returns a state of another structure than the "
            "one it starts from, so the step cannot feed its state back"
        )
    outputs = output if isinstance(output, list) else [output]
    for index, value in enumerate(outputs):
        if not isinstance(value, torch.Tensor):
            raise OnnxExportError(
                f"{_describe(None, module)} returns a {type(value).__name__} as output; "
                "to_onnx exports tensor outputs"
            )
    output_names = (
        (OUTPUT_NAME,)
        if len(outputs) == 1 and not isinstance(output, list)
        else tuple(f"{OUTPUT_NAME}_{index}" for index in range(len(outputs)))
    )

    flat_rest = _flat(rest, node)
    arguments = (sample_input, *flat_rest)
    dynamic_shapes = None
    if dynamic_batch:
        # DYNAMIC, not a named Dim: layers may bound the batch (e.g. a size heuristic
        # that picks a kernel), which a named Dim refuses; making it a constant fails.
        dim = torch.export.Dim.DYNAMIC
        # forward(input, *state_tensors): the state's shapes form one nested tuple
        dynamic_shapes = ({0: dim},)
        if states:
            dynamic_shapes += (
                tuple(
                    {state.batch_axis: dim} if state.batched else None
                    for state in states
                ),
            )
    try:
        program = torch.export.export(
            graph, arguments, dynamic_shapes=dynamic_shapes, strict=False
        )
    except OnnxExportError:
        raise
    except Exception as error:
        if (
            graph.tracker.active is None
            and dynamic_batch
            and ("Constraints violated" in str(error) or "specialized" in str(error))
        ):
            raise OnnxExportError(
                f"{_describe(None, module)}: the batch dimension cannot stay dynamic "
                f"(a layer fixes it); pass dynamic_batch=False: {_first_line(error)}"
            ) from error
        raise _graph_error(graph, error, "traced into a graph") from error
    _check_random(program, graph)

    try:
        onnx_program = torch.onnx.export(
            program,
            arguments,
            dynamo=True,
            input_names=[INPUT_NAME, *(state.input_name for state in states)],
            output_names=[*output_names, *(state.output_name for state in states)],
            opset_version=opset_version,
            verbose=False,
        )
    except Exception as error:
        raise _translation_error(program, graph, error) from error
    if dynamic_batch:
        _name_batch_dimension(onnx_program.model.graph)
    onnx_program.model.metadata_props[METADATA_KEY] = json.dumps(
        [state.metadata() for state in states]
    )
    onnx_program.model.metadata_props["norse.module"] = type(module).__name__
    onnx_program.save(path)
    return OnnxStep(
        path=os.fspath(path),
        input_name=INPUT_NAME,
        output_names=output_names,
        states=states,
    )


def _name_batch_dimension(graph: Any) -> None:
    """Calls the dynamic dimension of the graph's inputs and outputs ``batch``
    (the exporter names it after an internal symbol such as ``s33``)."""
    import onnx_ir  # the IR of torch.onnx's exporter (a dependency of onnxscript)

    for value in (*graph.inputs, *graph.outputs):
        shape = value.shape
        if shape is not None and not all(isinstance(size, int) for size in shape):
            # the batch is the only dynamic dimension
            value.shape = onnx_ir.Shape(
                [size if isinstance(size, int) else "batch" for size in shape]
            )


def _flat(value: Any, node: _Node) -> List[torch.Tensor]:
    return [tensor for _, tensor in _leaves(value, node, ())]


__all__: Sequence[str] = (
    "INPUT_NAME",
    "METADATA_KEY",
    "NEXT_STATE_PREFIX",
    "OUTPUT_NAME",
    "OnnxExportError",
    "OnnxStep",
    "STATE_PREFIX",
    "StateTensor",
    "to_onnx",
)
