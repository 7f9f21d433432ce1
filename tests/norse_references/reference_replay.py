"""Replays a reference case: the one engine that both environments run.

``scripts/record_norse_references.py`` runs it on real Norse 1.1.0 and stores what it
saw; ``tests/test_norse_references.py`` runs it on this package with the stored inputs
and compares. It imports only torch and numpy at module level (never ``norse``), so that
both environments can load it; dotted paths are resolved when a case runs, in whichever
``norse`` is installed.

A case (:class:`Case`) is data: the callable, its arguments as a tree of spec nodes
(:class:`T` random leaf tensors, :class:`Call` objects built from a dotted path,
:class:`Ref` objects looked up by path, :class:`Gen` seeded generators, :class:`Weights`
modules with seeded or stored weights, plus
:class:`Step`/:class:`Carry` for calls repeated over time), and how often to call it.
Running a case gives three flat ``{key: tensor}`` maps: the leaf inputs, every tensor of
every result (outputs and state fields, per step) and the gradient of a fixed weighted
sum of those results with respect to every leaf that requires a gradient (inputs,
initial state fields, weights, parameter fields).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import zlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

# ---------------------------------------------------------------------------- spec nodes


@dataclasses.dataclass(frozen=True)
class T:
    """A leaf tensor of ``shape``: uniform in ``[lo, hi)``, or 0/1 spikes drawn with
    probability ``spikes``, or filled with ``value``; rounded down with ``floor``;
    converted to ``dtype``. ``grad``: it requires a gradient (float dtypes only);
    ``param``: it is a ``torch.nn.Parameter``."""

    shape: Tuple[int, ...] = ()
    lo: float = -1.0
    hi: float = 1.0
    spikes: Optional[float] = None
    value: Optional[float] = None
    floor: bool = False
    dtype: str = "float64"
    grad: bool = True
    param: bool = False


@dataclasses.dataclass(frozen=True)
class Call:
    """``path(*args, **kwargs)``; then each ``attrs`` tensor replaces the data of the
    attribute at that (dotted) name, e.g. the weights a module drew at random, which
    becomes a leaf."""

    path: str
    args: tuple = ()
    kwargs: Tuple[Tuple[str, Any], ...] = ()
    attrs: Tuple[Tuple[str, Any], ...] = ()


def call(
    path: str, *args: Any, attrs: Optional[Dict[str, Any]] = None, **kwargs: Any
) -> Call:
    """A :class:`Call` with keyword arguments written naturally."""
    return Call(path, args, tuple(kwargs.items()), tuple((attrs or {}).items()))


@dataclasses.dataclass(frozen=True)
class Weights:
    """``module`` (a :class:`Call`) built right after ``torch.manual_seed(seed)`` (the
    global generator is restored afterwards), every parameter multiplied by ``scale``
    (to drive deep networks to spike), in evaluation mode with ``eval``.

    With ``store`` its state dict (parameters and buffers, under Norse's names) is
    recorded as inputs ``<key>@<name>`` and loaded on replay with
    ``load_state_dict(strict=True)``: a key that this package does not accept fails the
    case. The parameters are then leaves that require a gradient (with ``grad``); with
    ``init`` the values as constructed (before loading) are also results under the same
    keys, so that the construction is compared too. Without ``store`` nothing is stored
    or differentiated: both packages must draw the same numbers."""

    module: Call
    seed: int = 0
    store: bool = True
    grad: bool = True
    eval: bool = False
    scale: float = 1.0
    init: bool = True


@dataclasses.dataclass(frozen=True)
class Ref:
    """The object at a dotted path (a function, a preset, a constant)."""

    path: str


@dataclasses.dataclass(frozen=True)
class Gen:
    """A ``torch.Generator`` seeded with ``seed``."""

    seed: int


@dataclasses.dataclass(frozen=True)
class Step:
    """In a repeated call: ``value[t]`` at step ``t``."""

    value: Any


@dataclasses.dataclass(frozen=True)
class Carry:
    """In a repeated call: ``initial`` at the first step, then the part ``out`` (a dotted
    path of indices/fields, ``""`` for all) of the previous step's result."""

    initial: Any
    out: str = "1"


@dataclasses.dataclass(frozen=True)
class Case:
    """One recorded call. ``fn``: dotted path of a function, or a :class:`Call` building a
    callable object (a module). ``steps``: call it that many times (threading
    :class:`Step`/:class:`Carry` arguments); 0 calls it once. ``seed``:
    ``torch.manual_seed`` right before the first call. ``known``: ``(key pattern,
    tag)`` pairs of deliberate differences from Norse 1.1 (see the cases' REASONS)."""

    name: str
    fn: Any
    args: tuple = ()
    kwargs: Tuple[Tuple[str, Any], ...] = ()
    steps: int = 0
    seed: Optional[int] = None
    known: Tuple[Tuple[str, str], ...] = ()

    @property
    def family(self) -> str:
        return self.name.split("/")[0]

    def spec(self) -> str:
        """The fingerprint stored with the recording (stale recordings are detected)."""
        return repr(dataclasses.replace(self, known=()))


# ---------------------------------------------------------------------------- building


def resolve(path: str) -> Any:
    """The object at ``path``: the longest importable module prefix, then attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise ImportError(path)


DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "int64": torch.int64,
    "bool": torch.bool,
}


def _generate(node: T, key: str) -> torch.Tensor:
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    uniform = torch.rand(node.shape, generator=generator, dtype=torch.float64)
    if node.value is not None:
        return torch.full(node.shape, float(node.value), dtype=torch.float64)
    if node.spikes is not None:
        return (uniform < node.spikes).to(torch.float64)
    value = node.lo + (node.hi - node.lo) * uniform
    return value.floor() if node.floor else value


class _Builder:
    """Turns spec nodes into objects; remembers the leaves (by key) and their values."""

    def __init__(self, case: Case, stored: Optional[Dict[str, torch.Tensor]]):
        self.case = case
        self.stored = stored
        self.values: Dict[str, torch.Tensor] = {}
        self.leaves: Dict[str, torch.Tensor] = {}
        self.initial: Dict[str, torch.Tensor] = {}  # parameters as constructed

    def leaf(self, node: T, key: str) -> torch.Tensor:
        if self.stored is None:
            value = _generate(node, f"{self.case.name}/{key}")
        else:
            value = self.stored[key]
        value = value.to(DTYPES[node.dtype])
        self.values[key] = value.clone()
        grad = node.grad and value.is_floating_point()
        if node.param:
            tensor = torch.nn.Parameter(value, requires_grad=grad)
        else:
            tensor = value.requires_grad_(grad)
        if grad:
            self.leaves[key] = tensor
        return tensor

    def weights(self, node: Weights, key: str) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(node.seed)
            made = self.build(node.module, key)
        if node.scale != 1.0:
            with torch.no_grad():
                for parameter in made.parameters():
                    parameter.mul_(node.scale)
        if node.eval:
            made.eval()
        if not node.store:
            made.requires_grad_(False)
            return made
        ours = made.state_dict(keep_vars=True)
        if self.stored is None:
            state = {name: value.detach().clone() for name, value in ours.items()}
        else:
            state = {
                k.split("@", 1)[1]: value
                for k, value in self.stored.items()
                if k.startswith(f"{key}@")
            }
        for name, value in state.items():
            if node.init and name in ours:
                self.initial[f"{key}@{name}"] = ours[name].detach().clone()
            self.values[f"{key}@{name}"] = value.clone()
        if self.stored is not None:
            made.load_state_dict(state, strict=True)
        parameters = dict(made.named_parameters())
        for name in state:
            if name in parameters:
                parameters[name].requires_grad_(node.grad)
                if node.grad:
                    self.leaves[f"{key}@{name}"] = parameters[name]
        return made

    def build(self, node: Any, key: str) -> Any:
        if isinstance(node, T):
            return self.leaf(node, key)
        if isinstance(node, Call):
            args = [self.build(a, f"{key}.{i}") for i, a in enumerate(node.args)]
            kwargs = {k: self.build(v, f"{key}.{k}") for k, v in node.kwargs}
            made = resolve(node.path)(*args, **kwargs)
            for name, spec in node.attrs:
                value = self.build(spec, f"{key}@{name}")
                self.leaves.pop(f"{key}@{name}", None)
                target = _part(made, name)
                # .data keeps the tensor (a registered Parameter, with its hooks) and
                # takes the value's dtype: modules draw their weights in float32.
                target.data = value.detach().clone()
                if target.requires_grad:
                    self.leaves[f"{key}@{name}"] = target
            return made
        if isinstance(node, Weights):
            return self.weights(node, key)
        if isinstance(node, Ref):
            return resolve(node.path)
        if isinstance(node, Gen):
            return torch.Generator().manual_seed(node.seed)
        if isinstance(node, Step):
            return Step(self.build(node.value, key))
        if isinstance(node, Carry):
            return Carry(self.build(node.initial, key), node.out)
        if isinstance(node, (tuple, list)):
            return type(node)(self.build(v, f"{key}.{i}") for i, v in enumerate(node))
        return node


def _index(value: Any, step: int) -> Any:
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a state per step
        return type(value)(*(_index(v, step) for v in value))
    return value[step]


def _substitute(value: Any, step: int, carried: Dict[int, Any]) -> Any:
    # Only the plain containers of the spec: named tuples are built values.
    if isinstance(value, Step):
        return _index(value.value, step)
    if isinstance(value, Carry):
        return carried[id(value)]
    if type(value) in (tuple, list):
        return type(value)(_substitute(v, step, carried) for v in value)
    if type(value) is dict:
        return {k: _substitute(v, step, carried) for k, v in value.items()}
    return value


def _carries(value: Any) -> List[Carry]:
    if isinstance(value, Carry):
        return [value]
    if type(value) in (tuple, list):
        return [c for v in value for c in _carries(v)]
    if type(value) is dict:
        return [c for v in value.values() for c in _carries(v)]
    return []


def _part(value: Any, path: str) -> Any:
    for name in filter(None, path.split(".")):
        value = value[int(name)] if name.isdigit() else getattr(value, name)
    return value


# ---------------------------------------------------------------------------- running


def flatten(
    value: Any, key: str, tensors: Dict[str, Any], types: Dict[str, str]
) -> None:
    """Every tensor and number inside ``value`` (tuples, named tuples, lists, objects
    with attributes) under a dotted key; ``types`` gets the container type names."""
    if isinstance(value, torch.Tensor):
        tensors[key] = value
    elif isinstance(value, (bool, int, float)):
        tensors[key] = value
        types[key] = type(value).__name__
    elif value is None:
        types[key] = "None"
    elif isinstance(value, (tuple, list)):
        types[key] = type(value).__name__
        names = getattr(value, "_fields", range(len(value)))
        for name, item in zip(names, value):
            flatten(item, f"{key}.{name}", tensors, types)
    elif (hasattr(value, "__dict__") or hasattr(value, "__slots__")) and not callable(
        value
    ):
        # A plain object holding tensors (STDPState): its public tensor attributes.
        types[key] = type(value).__name__
        names = getattr(value, "__dict__", None) or getattr(
            type(value), "__slots__", ()
        )
        for name in sorted(names):
            item = getattr(value, name)
            if isinstance(item, (torch.Tensor, tuple, list)) and not name.startswith(
                "_"
            ):
                flatten(item, f"{key}.{name}", tensors, types)
    else:
        types[key] = type(value).__name__


def loss_weights(key: str, like: torch.Tensor) -> torch.Tensor:
    """Fixed, key-dependent weights so that the gradient of the weighted sum tells every
    element (and every output) apart."""
    phase = zlib.crc32(key.encode()) % 1000 / 100.0
    index = torch.arange(like.numel(), dtype=torch.float64)
    return (
        (1.0 + 0.5 * torch.sin(0.7 * index + phase)).reshape(like.shape).to(like.dtype)
    )


@dataclasses.dataclass
class Result:
    """What a run saw: leaf inputs, results, gradients (flat maps) and metadata."""

    inputs: Dict[str, torch.Tensor]
    outputs: Dict[str, Any]
    grads: Dict[str, torch.Tensor]
    types: Dict[str, str]
    error: Optional[str] = None
    grad_error: Optional[str] = None


def run(case: Case, stored: Optional[Dict[str, torch.Tensor]] = None) -> Result:
    """Runs ``case`` in the installed ``norse``: with fresh random leaves (recording) or
    with ``stored`` leaf values (replaying)."""
    # A seeded case reseeds the global generator: restore it afterwards.
    with torch.random.fork_rng(devices=[], enabled=case.seed is not None):
        return _run(case, stored)


def _run(case: Case, stored: Optional[Dict[str, torch.Tensor]]) -> Result:
    builder = _Builder(case, stored)
    result = Result(builder.values, {}, {}, {})
    try:
        fn = (
            resolve(case.fn)
            if isinstance(case.fn, str)
            else builder.build(case.fn, "m")
        )
        args = [builder.build(a, f"a{i}") for i, a in enumerate(case.args)]
        kwargs = {k: builder.build(v, k) for k, v in case.kwargs}
        if case.seed is not None:
            torch.manual_seed(case.seed)
        if not case.steps:
            flatten(fn(*args, **kwargs), "out", result.outputs, result.types)
        else:
            carries = _carries((args, kwargs))
            carried = {id(c): c.initial for c in carries}
            for step in range(case.steps):
                out = fn(
                    *_substitute(args, step, carried),
                    **_substitute(kwargs, step, carried),
                )
                flatten(out, f"t{step}", result.outputs, result.types)
                carried = {id(c): _part(out, c.out) for c in carries}
        result.outputs.update(builder.initial)
    except Exception as error:  # recorded: the other side must fail the same way
        result.error = f"{type(error).__name__}: {error}"
        return result
    _differentiate(builder.leaves, result)
    return result


def _differentiate(leaves: Dict[str, torch.Tensor], result: Result) -> None:
    # Every float result, also those that need no gradient (constants here): the loss
    # is then the same function on both sides even where requires_grad flags differ.
    terms = [
        (loss_weights(key, value) * value).sum().to(torch.float64)
        for key, value in sorted(result.outputs.items())
        if isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and value.layout == torch.strided
    ]
    loss = torch.stack(terms).sum() if terms else torch.zeros(())
    if not loss.requires_grad:
        return
    try:
        if not leaves:  # nothing to differentiate, but backward must work
            loss.backward()
            return
        grads = torch.autograd.grad(
            loss, list(leaves.values()), allow_unused=True, materialize_grads=True
        )
    except Exception as error:
        result.grad_error = f"{type(error).__name__}: {error}"
        return
    result.grads = dict(zip(leaves, grads))


# ---------------------------------------------------------------------------- storage


def _entry(key: str, value: Any) -> Tuple[list, np.ndarray]:
    if isinstance(value, torch.Tensor):
        dense = (
            value.detach().to_dense()
            if value.layout != torch.strided
            else value.detach()
        )
        array = dense.cpu().to(torch.float64).numpy().ravel()
        dtype = str(value.dtype).replace("torch.", "")
        if value.layout != torch.strided:
            dtype += "/sparse"
        return [key, dtype, list(value.shape), bool(value.requires_grad)], array
    return [key, type(value).__name__, [], False], np.array([float(value)])


def pack(tensors: Dict[str, Any]) -> Tuple[list, np.ndarray]:
    """``tensors`` as one flat float64 array (exact for every dtype used here) and a list
    of ``[key, dtype, shape, requires_grad]`` entries."""
    entries, arrays = [], [np.zeros(0)]
    for key in sorted(tensors):
        entry, array = _entry(key, tensors[key])
        entries.append(entry)
        arrays.append(array)
    return entries, np.concatenate(arrays)


def unpack(entries: list, flat: np.ndarray) -> Dict[str, torch.Tensor]:
    """The inverse of :func:`pack` (numbers come back as float64 0-d tensors)."""
    tensors, offset = {}, 0
    for key, dtype, shape, _ in entries:
        size = math.prod(shape)
        chunk = torch.from_numpy(flat[offset : offset + size].copy()).reshape(shape)
        tensors[key] = chunk.to(DTYPES.get(dtype.split("/")[0], torch.float64))
        offset += size
    return tensors


def save_case(case: Case, result: Result) -> Dict[str, np.ndarray]:
    """The npz arrays that store ``result`` of ``case``."""
    meta: Dict[str, Any] = {"spec": case.spec(), "types": result.types}
    arrays = {}
    for part in ("inputs", "outputs", "grads"):
        entries, flat = pack(getattr(result, part))
        meta[part] = entries
        arrays[f"{case.name}|{part}"] = flat
    meta["error"], meta["grad_error"] = result.error, result.grad_error
    arrays[f"{case.name}|meta"] = np.array(json.dumps(meta, sort_keys=True))
    return arrays


def load_case(name: str, npz: Any) -> Tuple[dict, Dict[str, Dict[str, torch.Tensor]]]:
    """The metadata and the ``inputs``/``outputs``/``grads`` maps of a stored case."""
    meta = json.loads(str(npz[f"{name}|meta"]))
    parts = {
        p: unpack(meta[p], npz[f"{name}|{p}"]) for p in ("inputs", "outputs", "grads")
    }
    return meta, parts
