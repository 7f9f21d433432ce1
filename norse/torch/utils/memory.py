"""Training with less memory: spikes stored as bits, layers recomputed in backward.

Between the forward and the backward pass PyTorch keeps the tensors every operation
saved for its gradient: in a spiking network mostly the spikes that enter each layer and
the currents that enter each neuron layer, for every time step. :func:`optimise` makes a
network keep less of that, with the same gradients:

* **Spikes as bits.** A saved tensor whose every element is exactly ``0.0`` or ``1.0``
  (checked bit for bit, so ``-0.0`` does not count) is stored packed, eight elements to
  a byte, and unpacked when the backward pass needs it (:func:`bit_store`,
  :func:`pack_bits`). Any other tensor is kept as it is.
* **Recomputation.** The layers of each :class:`~norse.torch.SequentialState` in the
  model are split into *units* that end where a layer's output is spikes. A unit can be
  *recomputed*: only its input is kept (as bits when it is spikes) and its forward pass
  runs again during the backward pass (``torch.utils.checkpoint`` without reentrance,
  with the random number generators restored, neuron states threaded through and the
  buffers that the layers update, such as batch-norm statistics, left as the first pass
  left them). A recomputed unit can also run in *chunks* of the batch, so that only a
  part of its activations exists at a time.

Which units are recomputed, and in how many chunks, is decided by a profiling pass on an
example input and a budget (see :func:`optimise`).

Example:
    >>> import torch
    >>> import norse.torch as norse
    >>> from norse.torch.utils import memory
    >>> model = norse.SequentialState(
    ...     norse.Lift(torch.nn.Conv2d(1, 8, 3, padding=1)), norse.LIF(),
    ...     norse.Lift(torch.nn.Conv2d(8, 8, 3, padding=1)), norse.LIF(),
    ... )
    >>> x = torch.rand(4, 2, 1, 16, 16)
    >>> model = memory.optimise(model, x, budget="memory")
    >>> out, _ = model(x)
    >>> out.sum().backward()
"""

import contextlib
import functools
import math
import time
import warnings
from dataclasses import dataclass, replace
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
from torch.utils import _pytree
from torch.utils.checkpoint import checkpoint

from norse.torch.fused import registry
from norse.torch.fused.layers import apply_layer
from norse.torch.module.sequential import SequentialState
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell

__all__ = [
    "MemoryPlan",
    "PackedBits",
    "UnitPlan",
    "apply_plan",
    "bit_store",
    "is_binary",
    "optimise",
    "optimize",
    "pack_bits",
    "plan_of",
    "restore",
    "unpack_bits",
]

#: Saved tensors smaller than this (in bytes) are kept as they are: packing them saves
#: little and costs a few operations each.
MIN_PACK_BYTES = 4096

# The bit patterns of 1.0 in each floating dtype, read as an integer of the same size;
# a tensor is binary when every element has the pattern of 0.0 or of 1.0.
_ONE_BITS = {
    torch.float32: (torch.int32, 0x3F800000),
    torch.float64: (torch.int64, 0x3FF0000000000000),
    torch.float16: (torch.int16, 0x3C00),
    torch.bfloat16: (torch.int16, 0x3F80),
}

# Elements checked first: a tensor of currents fails here without a full pass.
_PREFIX = 64


class PackedBits(NamedTuple):
    """A binary tensor stored eight elements to a byte (see :func:`pack_bits`).

    Parameters:
        bits (torch.Tensor): ``uint8``, ``ceil(numel / 8)`` bytes, element ``8 j + k`` of
            the flattened tensor in bit ``k`` of byte ``j``
        shape (torch.Size): shape of the tensor
        dtype (torch.dtype): floating dtype of the tensor
    """

    bits: torch.Tensor
    shape: torch.Size
    dtype: torch.dtype


def _ones(tensor: torch.Tensor) -> Optional[torch.Tensor]:
    """``tensor == 1`` (a bool tensor, flattened) when ``tensor`` is binary, else
    ``None``: binary means that every element with a nonzero bit pattern has the
    pattern of ``1.0``."""
    if tensor.dtype not in _ONE_BITS or tensor.layout != torch.strided:
        return None
    int_dtype, one = _ONE_BITS[tensor.dtype]
    ints = tensor.reshape(-1).view(int_dtype)
    head = ints[:_PREFIX]
    if not bool(torch.logical_or(head == 0, head == one).all()):
        return None
    ones = ints == one
    if (torch.count_nonzero(ints) - torch.count_nonzero(ones)).item() != 0:
        return None
    return ones


def is_binary(tensor: torch.Tensor) -> bool:
    """Whether every element of a floating ``tensor`` is exactly ``0.0`` or ``1.0``.

    Compares bit patterns, so ``-0.0`` and NaN are not binary. Integer, boolean, complex
    and sparse tensors are not binary in this sense (they are not what spike layers
    save). An empty tensor is binary.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    return _ones(tensor) is not None


# Packing reads the eight 0/1 bytes of a group as one int64 and multiplies it by this
# constant: byte k (bit 8 k) lands in bit 56 + k, and every other product falls on a
# distinct bit below the top byte or overflows out of the 64 bits, so the top byte is the
# packed group. Whether the platform's int64 multiplication wraps as assumed (and is
# little-endian) is checked once per device type; otherwise a slower shift-and-sum packs.
_GATHER = 0x0102040810204080
_FAST_PACK: Dict[str, bool] = {}
# (device, dtype) -> (256, 8) table: row b holds the bits of b as 0.0/1.0 (unpacking).
_TABLES: Dict[Tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _bit_table(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    table = _TABLES.get((device, dtype))
    if table is None:
        values = torch.arange(256, device=device).unsqueeze(1)
        table = values.bitwise_right_shift(torch.arange(8, device=device)) & 1
        table = _TABLES[(device, dtype)] = table.to(dtype)
    return table


def _pack_groups(ones: torch.Tensor, fast: bool) -> torch.Tensor:
    """Packs a flat bool tensor whose length is a multiple of 8."""
    if fast:
        product = ones.view(torch.uint8).view(torch.int64) * _GATHER
        return product.bitwise_right_shift_(56).to(torch.uint8)
    shifts = torch.arange(8, dtype=torch.uint8, device=ones.device)
    lanes = ones.view(torch.uint8).view(-1, 8).bitwise_left_shift(shifts)
    return lanes.sum(1, dtype=torch.uint8)


def _fast_pack(device: torch.device) -> bool:
    works = _FAST_PACK.get(device.type)
    if works is None:
        patterns = _bit_table(device, torch.bool).reshape(-1)
        expected = torch.arange(256, device=device).to(torch.uint8)
        works = torch.equal(_pack_groups(patterns, True), expected)
        _FAST_PACK[device.type] = works
    return works


def _pack_ones(ones: torch.Tensor, shape: torch.Size, dtype: torch.dtype) -> PackedBits:
    """Packs the flat bool tensor ``ones``: byte ``j`` holds elements ``8 j ... 8 j + 7``
    in its bits 0 ... 7."""
    pad = (-ones.numel()) % 8
    if pad:
        ones = torch.cat([ones, ones.new_zeros(pad)])
    return PackedBits(_pack_groups(ones, _fast_pack(ones.device)), shape, dtype)


# The CPU kernels (Numba): one pass over a binary tensor packs it, checking every element
# on the way; one pass over the bytes unpacks it. The PyTorch operations above (several
# passes) remain the path on other devices, under tracing, and without Numba, and the
# reference that the tests compare the kernels with.

#: Bytes of packed output per block: the kernel checks a block's elements (32,768 of
#: them, at most 256 KiB of input, still in the cache) before it packs them, so a tensor
#: that is not binary is rejected after its first block.
_KERNEL_BLOCK = 4096
#: Whether Numba imported (``None``: not tried yet; a failure is reported once).
_NUMBA: Dict[str, Optional[bool]] = {"available": None}


def _numba_available() -> bool:
    available = _NUMBA["available"]
    if available is None:
        try:
            import numba  # noqa: F401
        except Exception as error:  # ImportError, or any failure while loading
            warnings.warn(
                "norse.torch.utils.memory: Numba is unavailable "
                f"({type(error).__name__}: {error}); spikes are packed to bits with "
                "PyTorch operations instead (the same bits, slower). Install or repair "
                "numba (pip install numba) for the fast path.",
                RuntimeWarning,
                stacklevel=3,
            )
            available = False
        else:
            available = True
        _NUMBA["available"] = available
    return available


@functools.lru_cache(maxsize=None)
def _bit_kernels(dtype: torch.dtype) -> Tuple[Any, Any]:
    """``(pack, unpack)`` Numba kernels for the floating ``dtype`` (read as the integers
    of its size), with the bit pattern of its ``1.0`` (and a bit that is set in it, read
    as the element's bit) compiled in.

    ``pack(values, out)`` packs the flat integer array ``values`` into ``out`` (uint8,
    ``ceil(len / 8)`` bytes) and returns whether every element was ``0`` or ``one``
    (when not, ``out`` holds garbage). ``unpack(bits, out)`` writes ``len(out)``
    elements. The loops over whole arrays vectorise; the blocks are array slices for
    that reason (a loop over an index range inside the block loop did not)."""
    import numpy as np
    from numba import njit

    int_dtype, one_bits = _ONE_BITS[dtype]
    numpy_dtype = {torch.int16: np.int16, torch.int32: np.int32, torch.int64: np.int64}[
        int_dtype
    ]
    one = numpy_dtype(one_bits)
    shift = numpy_dtype(int(one).bit_length() - 1)
    zero = numpy_dtype(0)
    block = _KERNEL_BLOCK

    def compile_(function: Any) -> Any:
        return njit(nogil=True, cache=True, error_model="numpy")(function)

    @compile_
    def mismatch(values):  # nonzero when an element is neither 0 nor one
        diff = zero
        for i in range(values.shape[0]):
            v = values[i]
            diff |= v ^ (((v >> shift) & 1) * one)
        return diff

    @compile_
    def assemble(values, out):  # len(values) == 8 * len(out)
        for j in range(out.shape[0]):
            byte = 0
            for k in range(8):
                byte |= ((values[8 * j + k] >> shift) & 1) << k
            out[j] = byte

    @compile_
    def pack(values, out):
        full = values.shape[0] // 8
        for start in range(0, full, block):
            stop = min(start + block, full)
            part = values[8 * start : 8 * stop]
            if mismatch(part) != 0:
                return False
            assemble(part, out[start:stop])
        tail = values[8 * full :]
        if tail.shape[0] > 0:
            if mismatch(tail) != 0:
                return False
            byte = 0
            for k in range(tail.shape[0]):
                byte |= ((tail[k] >> shift) & 1) << k
            out[full] = byte
        return True

    @compile_
    def spread(bits, out):  # len(out) == 8 * len(bits)
        for j in range(bits.shape[0]):
            b = bits[j]
            for k in range(8):
                out[8 * j + k] = ((b >> k) & 1) * one

    @compile_
    def unpack(bits, out):
        full = out.shape[0] // 8
        spread(bits[:full], out[: 8 * full])
        for i in range(8 * full, out.shape[0]):
            out[i] = ((bits[full] >> (i - 8 * full)) & 1) * one

    return pack, unpack


def _use_kernels(tensor: torch.Tensor) -> bool:
    """The Numba kernels take plain contiguous CPU tensors in plain eager mode (nothing
    traces the operations)."""
    return (
        type(tensor) is torch.Tensor
        and tensor.device.type == "cpu"
        and tensor.layout == torch.strided
        and tensor.is_contiguous()
        and registry.plain_eager()
        and _numba_available()
    )


def _pack_bits_torch(tensor: torch.Tensor) -> Optional[PackedBits]:
    """:func:`pack_bits` with PyTorch operations (any device)."""
    ones = _ones(tensor)
    if ones is None:
        return None
    return _pack_ones(ones, tensor.shape, tensor.dtype)


def _unpack_bits_torch(packed: PackedBits) -> torch.Tensor:
    """:func:`unpack_bits` with PyTorch operations (any device)."""
    numel = math.prod(packed.shape)
    table = _bit_table(packed.bits.device, packed.dtype)
    flat = table[packed.bits.long()].view(-1)[:numel]
    return flat.view(packed.shape)


def pack_bits(tensor: torch.Tensor) -> Optional[PackedBits]:
    """``tensor`` packed eight elements to a byte, or ``None`` when it is not binary
    (:func:`is_binary`). :func:`unpack_bits` restores it bit for bit (contiguous).

    A contiguous CPU tensor is checked and packed in one pass by a Numba kernel; other
    tensors (and every tensor when Numba is missing, which is reported once) by
    PyTorch operations, with the same result."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype not in _ONE_BITS or tensor.layout != torch.strided:
        return None
    if not _use_kernels(tensor):
        return _pack_bits_torch(tensor)
    int_dtype = _ONE_BITS[tensor.dtype][0]
    values = tensor.detach().view(-1).view(int_dtype).numpy()
    bits = torch.empty((tensor.numel() + 7) // 8, dtype=torch.uint8)
    if not _bit_kernels(tensor.dtype)[0](values, bits.numpy()):
        return None
    return PackedBits(bits, tensor.shape, tensor.dtype)


def unpack_bits(packed: PackedBits) -> torch.Tensor:
    """The tensor that :func:`pack_bits` packed: a new contiguous tensor of its shape and
    dtype on the device of ``packed.bits`` (on the CPU unpacked by a Numba kernel)."""
    if not isinstance(packed, PackedBits):
        raise TypeError(f"packed must be a PackedBits, got {type(packed).__name__}")
    bits = packed.bits
    if not (_use_kernels(bits) and bits.dtype == torch.uint8):
        return _unpack_bits_torch(packed)
    out = torch.empty(packed.shape, dtype=packed.dtype)
    int_dtype = _ONE_BITS[packed.dtype][0]
    if out.numel() > 0:
        _bit_kernels(packed.dtype)[1](
            bits.numpy(), out.view(-1).view(int_dtype).numpy()
        )
    return out


def _packable(tensor: torch.Tensor, min_bytes: int) -> bool:
    """A plain, contiguous floating activation of at least ``min_bytes``; parameters
    (and other leaves that require grad) and views of them stay alive anyway and are not
    copied."""
    return (
        type(tensor) is torch.Tensor
        and tensor.dtype in _ONE_BITS
        and tensor.layout == torch.strided
        and not (tensor.requires_grad and tensor.is_leaf)
        and not (
            tensor._base is not None
            and tensor._base.requires_grad
            and tensor._base.is_leaf
        )
        and tensor.numel() * tensor.element_size() >= min_bytes
        and tensor.is_contiguous()
    )


def bit_store(
    min_bytes: int = MIN_PACK_BYTES,
) -> torch.autograd.graph.saved_tensors_hooks:
    """A context manager under which the tensors that operations save for the backward
    pass are stored as bits when they are binary.

    Inside it, every saved tensor that is a plain, contiguous floating tensor of at least
    ``min_bytes`` bytes (parameters excepted) and whose elements are all exactly 0 or 1
    is packed with :func:`pack_bits`; the backward pass gets it back bit for bit, so
    gradients do not change. Other tensors are kept as they are. Checking costs one pass
    over each saved tensor (one synchronisation on a GPU).

    Example:
        >>> import torch
        >>> w = torch.randn(100, 100, requires_grad=True)
        >>> spikes = (torch.rand(64, 100) > 0.8).float()
        >>> with bit_store():
        ...     y = spikes @ w  # saves the spikes (packed) for the gradient of w
        >>> y.sum().backward()
    """
    if isinstance(min_bytes, bool) or not isinstance(min_bytes, int) or min_bytes < 0:
        raise ValueError(f"min_bytes must be a non-negative int, got {min_bytes!r}")

    def pack(tensor: torch.Tensor) -> Any:
        if _packable(tensor, min_bytes):
            packed = pack_bits(tensor)
            if packed is not None:
                return packed
        return tensor

    def unpack(stored: Any) -> torch.Tensor:
        return unpack_bits(stored) if isinstance(stored, PackedBits) else stored

    return torch.autograd.graph.saved_tensors_hooks(pack, unpack)


# Recomputation -----------------------------------------------------------------------


class _Unit(NamedTuple):
    """What a planned container does with layers ``start ... stop - 1``."""

    start: int
    stop: int
    recompute: bool
    chunks: int


#: The neuron module forms, whose ``initial_state(input)`` is the state a call without
#: one starts from (when ``state_fallback`` is that method).
_NEURON_MODULES = (SNN, SNNCell, SNNRecurrent, SNNRecurrentCell)


def _resting_state(module: torch.nn.Module, x: Any) -> Any:
    """The resting state of a neuron layer that will need no gradient, or ``None``.

    A neuron module starting from rest makes the voltage of its resting state a leaf that
    requires grad (as Norse 1.1 does, so that the backward pass works through a layer
    whose input needs no gradient); the backward pass then computes and keeps that
    leaf's gradient, one time step of the layer's size, for nothing. When the input
    requires grad anyway and no parameter of the layer does (so the resting state is a
    constant), the layer gets the same resting state built without gradients: the same
    outputs and parameter gradients, without that memory.
    """
    build = getattr(module, "initial_state", None)
    if (
        not isinstance(module, _NEURON_MODULES)
        or getattr(module, "state_fallback", None) != build  # its own rest, or another
        or not isinstance(x, torch.Tensor)
        or not x.requires_grad
        or not torch.is_grad_enabled()
        or any(p.requires_grad for p in module.parameters())
    ):
        return None
    with torch.no_grad():
        return build(x)


def _run_layers(
    layers: Sequence[torch.nn.Module],
    flags: Sequence[bool],
    start: int,
    stop: int,
    x: Any,
    states: Any,
) -> Any:
    """Runs ``layers[start:stop]`` as :class:`~norse.torch.SequentialState` does,
    reading and writing the states of stateful layers in ``states`` (indexed by layer);
    a neuron layer starting from rest starts from :func:`_resting_state` where it
    applies."""
    for index in range(start, stop):
        module = layers[index]
        if flags[index]:
            state = states[index]
            if state is None:
                state = _resting_state(module, x)
            result = module(x, state)
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise TypeError(
                    f"layer {index} ({type(module).__name__}) takes a state, so it must "
                    f"return (output, state), got {type(result).__name__}"
                )
            x, states[index] = result
        else:
            x = apply_layer(module, x)
    return x


def _has_forward_hooks(modules: Sequence[torch.nn.Module]) -> bool:
    """Hooks would see a recomputed layer twice: such layers are not recomputed."""
    from torch.nn.modules import module as nn_module

    if nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks:
        return True
    return any(
        m._forward_hooks or m._forward_pre_hooks
        for module in modules
        for m in module.modules()
    )


def _batch_norms_in_training(modules: Sequence[torch.nn.Module]) -> bool:
    """Batch statistics in training mode tie the samples of a batch together."""
    return any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training
        for module in modules
        for m in module.modules()
    )


def _leaves_batch_first(state: Any, batch: int) -> bool:
    """Every tensor in ``state`` has the batch in its first dimension (or is a scalar,
    shared by every sample)."""
    leaves, _ = _pytree.tree_flatten(state)
    return all(
        not isinstance(leaf, torch.Tensor)
        or leaf.dim() == 0
        or (leaf.dim() >= 1 and leaf.shape[0] == batch)
        for leaf in leaves
    )


def _slice_batch(state: Any, start: int, stop: int, batch: int) -> Any:
    def cut(leaf: Any) -> Any:
        if (
            isinstance(leaf, torch.Tensor)
            and leaf.dim() >= 1
            and leaf.shape[0] == batch
        ):
            return leaf[start:stop]
        return leaf

    leaves, spec = _pytree.tree_flatten(state)
    return _pytree.tree_unflatten([cut(leaf) for leaf in leaves], spec)


def _cat_batch(states: Sequence[Any], sizes: Sequence[int], index: int) -> Any:
    """The states of the batch chunks joined along their first dimension."""
    flat = [_pytree.tree_flatten(state) for state in states]
    spec = flat[0][1]
    joined = []
    for position, first in enumerate(flat[0][0]):
        if not isinstance(first, torch.Tensor):
            joined.append(first)
            continue
        parts = [leaves[position] for leaves, _ in flat]
        for part, size in zip(parts, sizes):
            if part.dim() == 0 or part.shape[0] != size:
                raise RuntimeError(
                    f"layer {index} returned a state of shape {tuple(part.shape)} for a "
                    f"batch chunk of {size} samples; recomputing in chunks needs states "
                    "with the batch first (optimise the model again)"
                )
        joined.append(torch.cat(parts, 0))
    return _pytree.tree_unflatten(joined, spec)


def _checkpointed(
    layers: Sequence[torch.nn.Module],
    flags: Sequence[bool],
    unit: _Unit,
    x: torch.Tensor,
    in_states: Dict[int, Any],
    bits: bool,
) -> Tuple[Any, Dict[int, Any]]:
    """Runs one unit (or one batch chunk of it) under ``torch.utils.checkpoint``.

    Only the input is kept for the backward pass, packed to bits when it is binary: the
    checkpoint is given the packed bytes, and the first run takes the input itself from a
    holder it empties, so the float tensor is not kept alive. A recomputation unpacks it
    (with the ``requires_grad`` of the original, so that the layers save the same
    tensors) and puts back the buffers the layers update (batch-norm statistics).
    """
    packed = pack_bits(x) if bits and _packable(x, MIN_PACK_BYTES) else None
    requires_grad = x.requires_grad
    holder = [x]
    del x
    calls = [0]
    buffers = [b for layer in layers[unit.start : unit.stop] for b in layer.buffers()]

    def run(argument: torch.Tensor) -> Tuple[Any, Dict[int, Any]]:
        first = calls[0] == 0
        calls[0] += 1
        if first:
            inputs = holder.pop()
        elif packed is not None:
            inputs = unpack_bits(packed._replace(bits=argument))
            inputs.requires_grad_(requires_grad)
        else:
            inputs = argument
        snapshot = None if first else [b.detach().clone() for b in buffers]
        try:
            states = dict(in_states)
            out = _run_layers(layers, flags, unit.start, unit.stop, inputs, states)
            return out, states
        finally:
            if snapshot is not None:
                with torch.no_grad():
                    for buffer, value in zip(buffers, snapshot):
                        buffer.copy_(value)

    argument = packed.bits if packed is not None else holder[0]
    return checkpoint(run, argument, use_reentrant=False, preserve_rng_state=True)


def _chunk_count(
    unit: _Unit, layers: Sequence[torch.nn.Module], x: Any, in_states: Dict[int, Any]
) -> int:
    if unit.chunks <= 1 or not isinstance(x, torch.Tensor) or x.dim() < 2:
        return 1
    batch = x.shape[1]
    if batch < 2 or _batch_norms_in_training(layers[unit.start : unit.stop]):
        return 1
    if not all(_leaves_batch_first(s, batch) for s in in_states.values()):
        return 1
    return min(unit.chunks, batch)


class _Gather:
    """The gradient of a unit's input, gathered from its batch chunks (:class:`_Chunk`)."""

    def __init__(self, count: int):
        self.count = count
        self.seen = 0
        self.buffer: Optional[torch.Tensor] = None


class _Chunk(torch.autograd.Function):
    """``x[:, start:stop]``, a new contiguous tensor: one batch chunk of a unit's input.

    Its backward pass writes the chunk's gradient into a buffer of the whole input's
    shape that the chunks share, and the last chunk to get its gradient returns the
    buffer (the others return none). ``torch.split`` would join the chunks' gradients
    with a copy, holding the input's gradient twice at the end of the unit's backward
    pass; slices would make every chunk's gradient a zero-filled tensor of the whole
    input. Every chunk gets a gradient (the chunks' outputs and states are joined), so
    the buffer is always returned; the gradient is not differentiable again."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, gather: _Gather, start: int, stop: int
    ) -> torch.Tensor:
        ctx.gather, ctx.bounds, ctx.shape = gather, (start, stop), x.shape
        return x[:, start:stop].clone(memory_format=torch.contiguous_format)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
        gather = ctx.gather
        if gather.buffer is None:
            gather.buffer = grad.new_empty(ctx.shape)
        start, stop = ctx.bounds
        gather.buffer[:, start:stop].copy_(grad)
        gather.seen += 1
        if gather.seen < gather.count:
            return None, None, None, None
        buffer, gather.buffer, gather.seen = gather.buffer, None, 0
        return buffer, None, None, None


def _run_unit(
    layers: Sequence[torch.nn.Module],
    flags: Sequence[bool],
    unit: _Unit,
    x: Any,
    states: Any,
    bits: bool,
) -> Any:
    """Runs one unit as planned: recomputed (under ``torch.utils.checkpoint``) or not,
    in ``unit.chunks`` batch chunks or whole. A stored unit in chunks keeps what its
    layers save, as a whole batch does, but its backward pass (and the workspace of its
    operations, which for a convolution is several times its output) runs one chunk at
    a time."""
    if not isinstance(x, torch.Tensor) or _has_forward_hooks(
        layers[unit.start : unit.stop]
    ):
        return _run_layers(layers, flags, unit.start, unit.stop, x, states)
    stateful = [i for i in range(unit.start, unit.stop) if flags[i]]
    in_states = {i: states[i] for i in stateful}
    chunks = _chunk_count(unit, layers, x, in_states)
    if chunks == 1:
        if not unit.recompute:
            return _run_layers(layers, flags, unit.start, unit.stop, x, states)
        out, new_states = _checkpointed(layers, flags, unit, x, in_states, bits)
    else:
        batch = x.shape[1]
        bounds = [batch * c // chunks for c in range(chunks + 1)]
        sizes = [stop - start for start, stop in zip(bounds[:-1], bounds[1:])]
        gather = _Gather(chunks) if x.requires_grad else None
        outs, chunk_states = [], []
        for start, stop in zip(bounds[:-1], bounds[1:]):
            if gather is not None:
                part = _Chunk.apply(x, gather, start, stop)
            else:
                part = x[:, start:stop].contiguous()
            part_states = {
                i: _slice_batch(s, start, stop, batch) for i, s in in_states.items()
            }
            if unit.recompute:
                out, new = _checkpointed(layers, flags, unit, part, part_states, bits)
            else:
                new = dict(part_states)
                out = _run_layers(layers, flags, unit.start, unit.stop, part, new)
            outs.append(out)
            chunk_states.append(new)
        del part, x
        out = torch.cat(outs, 1)
        new_states = {
            i: _cat_batch([c[i] for c in chunk_states], sizes, i) for i in stateful
        }
    for i in stateful:
        states[i] = new_states[i]
    return out


class _SegmentedSequentialState(SequentialState):
    """A :class:`~norse.torch.SequentialState` that :func:`optimise` planned: while
    gradients are recorded its layers run unit by unit, the planned units recomputed in
    the backward pass. :func:`optimise` turns a ``SequentialState`` into this class in
    place (so parameters, state-dict keys and hooks stay as they are) and
    :func:`restore` turns it back.

    It runs as a plain ``SequentialState`` without gradients, with ``return_hidden``,
    with a ``state`` that is not ``None`` or a list of one entry per layer, after layers
    were added or removed, and (for one unit) when a layer of the unit has forward hooks.
    """

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[Sequence[Any]] = None
    ) -> Tuple[Any, List[Any]]:
        profiler = getattr(self, "_memory_profiler", None)
        if profiler is not None:
            return profiler.run(self, input_tensor, state)
        units = getattr(self, "_memory_units", None)
        layers = list(self._modules.values())
        if (
            not units
            or not torch.is_grad_enabled()
            or self.return_hidden
            or len(layers) != getattr(self, "_memory_layer_count", -1)
            or not (
                state is None or (type(state) is list and len(state) == len(layers))
            )
        ):
            return super().forward(input_tensor, state)
        flags = self.stateful_layers
        states = [None] * len(layers) if state is None else state
        bits = getattr(self, "_memory_bits", True)
        x = input_tensor
        del input_tensor
        for unit in units:
            if unit.recompute or unit.chunks > 1:
                x = _run_unit(layers, flags, unit, x, states, bits)
            else:
                x = _run_layers(layers, flags, unit.start, unit.stop, x, states)
        return x, states


# Profiling -----------------------------------------------------------------------------


@dataclass(eq=False)
class _LayerRecord:
    """What one layer of a planned container did in the profiling pass."""

    container: SequentialState
    index: int
    inputs: Any
    input_is_example: bool
    input_requires_grad: bool
    in_state: Any
    saved: int = 0
    stored: int = 0
    seconds: float = 0.0
    output_bytes: int = 0
    binary: bool = False
    random: bool = False
    batch_second: bool = False
    state_batch_first: bool = True
    state_bytes: int = 0


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _devices(*tensors: Any) -> List[torch.device]:
    found = []
    for tensor in tensors:
        if isinstance(tensor, torch.Tensor) and tensor.device not in found:
            found.append(tensor.device)
    return found


def _synchronize(devices: Sequence[torch.device]) -> None:
    for device in devices:
        if device.type == "cuda":
            torch.cuda.synchronize(device)


def _rng_states(x: Any) -> List[torch.Tensor]:
    states = [torch.get_rng_state()]
    if isinstance(x, torch.Tensor) and x.device.type == "cuda":
        states.append(torch.cuda.get_rng_state(x.device))
    return states


class _Profiler:
    """Runs the planned containers layer by layer and records, per layer, the bytes its
    operations save for the backward pass (each storage once, parameters excluded) with
    and without bits, its time, its output and whether it draws random numbers."""

    def __init__(
        self,
        example: Any,
        devices: Sequence[torch.device],
        model: torch.nn.Module,
    ):
        self.example = example
        self.devices = list(devices)
        # storages alive anyway: a view of a weight saved for the backward pass (e.g.
        # the transposed weight of a linear layer) costs nothing
        self.resident = {
            (t.device, t.untyped_storage().data_ptr())
            for t in (*model.parameters(), *model.buffers())
        }
        self.records: List[_LayerRecord] = []
        self.calls: Dict[int, int] = {}
        self.unplannable: set = set()
        self.current: Optional[_LayerRecord] = None
        self.seen: set = set()
        self.other_saved = 0
        self.other_stored = 0

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        if isinstance(tensor, torch.nn.Parameter) or (
            tensor.requires_grad and tensor.is_leaf
        ):
            return tensor
        storage = tensor.untyped_storage()
        key = (tensor.device, storage.data_ptr())
        if key in self.seen or key in self.resident:
            return tensor
        self.seen.add(key)
        saved = storage.nbytes()
        stored = saved
        if _packable(tensor, MIN_PACK_BYTES) and is_binary(tensor):
            stored = (tensor.numel() + 7) // 8
        if self.current is None:
            self.other_saved += saved
            self.other_stored += stored
        else:
            self.current.saved += saved
            self.current.stored += stored
        return tensor

    def hooks(self) -> torch.autograd.graph.saved_tensors_hooks:
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def run(
        self, container: SequentialState, x: Any, state: Optional[Sequence[Any]]
    ) -> Tuple[Any, List[Any]]:
        key = id(container)
        self.calls[key] = self.calls.get(key, 0) + 1
        layers = list(container._modules.values())
        if (
            container.return_hidden
            or not isinstance(x, torch.Tensor)
            or not (
                state is None or (type(state) is list and len(state) == len(layers))
            )
        ):
            self.unplannable.add(key)
            return SequentialState.forward(container, x, state)
        flags = container.stateful_layers
        states = [None] * len(layers) if state is None else state
        batch = x.shape[1] if x.dim() >= 2 else -1
        for index in range(len(layers)):
            record = _LayerRecord(
                container,
                index,
                x.detach() if isinstance(x, torch.Tensor) else x,
                x is self.example,
                isinstance(x, torch.Tensor) and x.requires_grad,
                states[index] if flags[index] else None,
            )
            before = _rng_states(x)
            self.current = record
            _synchronize(self.devices)
            start = time.perf_counter()
            try:
                x = _run_layers(layers, flags, index, index + 1, x, states)
            finally:
                self.current = None
            _synchronize(self.devices)
            record.seconds = time.perf_counter() - start
            after = _rng_states(x)
            record.random = len(before) != len(after) or not all(
                torch.equal(a, b) for a, b in zip(before, after)
            )
            if isinstance(x, torch.Tensor):
                record.output_bytes = _nbytes(x)
                record.binary = is_binary(x)
                record.batch_second = x.dim() >= 2 and x.shape[1] == batch
            if flags[index]:
                record.state_batch_first = _leaves_batch_first(states[index], batch)
                record.state_bytes = sum(
                    _nbytes(leaf)
                    for leaf in _pytree.tree_flatten(states[index])[0]
                    if isinstance(leaf, torch.Tensor)
                )
            self.records.append(record)
        return x, states


def _sum_of_outputs(output: Any) -> Optional[torch.Tensor]:
    leaves, _ = _pytree.tree_flatten(output)
    terms = [
        leaf.sum()
        for leaf in leaves
        if isinstance(leaf, torch.Tensor)
        and leaf.is_floating_point()
        and leaf.requires_grad
    ]
    return torch.stack(terms).sum() if terms else None


def _timed_step(
    model: torch.nn.Module, example: Any, devices: Sequence[torch.device], bits: bool
) -> float:
    """Seconds of one forward and backward pass (the backward by ``torch.autograd.grad``,
    so no ``.grad`` changes)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    _synchronize(devices)
    start = time.perf_counter()
    with bit_store() if bits else contextlib.nullcontext():
        output = model(example)
    loss = _sum_of_outputs(output)
    del output
    if loss is not None:
        inputs = parameters + (
            [example]
            if isinstance(example, torch.Tensor) and example.requires_grad
            else []
        )
        if inputs:
            torch.autograd.grad(loss, inputs, allow_unused=True)
    _synchronize(devices)
    return time.perf_counter() - start


# Planning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitPlan:
    """The plan for one unit: consecutive layers of a ``SequentialState`` of the model,
    the last of which outputs spikes (or the last layer).

    Byte counts are those of the profiling pass (its batch size); ``saved_bytes`` is what
    the layers save for the backward pass, ``stored_bytes`` the same with binary tensors
    as bits, ``input_bytes`` what a recomputed unit keeps instead (its input, as bits
    when it is spikes, nothing when it is the model's input, which the caller holds).

    Parameters:
        container (str): name of the ``SequentialState`` in the model (``""``: the model)
        start (int): index of the first layer
        stop (int): one past the index of the last layer
        recompute (bool): recomputed in the backward pass
        chunks (int): number of batch chunks it runs in, stored or recomputed (1: the
            whole batch)
        chunkable (bool): its samples are independent (no batch statistics in training,
            no random numbers, batch in dimension 1, states with the batch first), so it
            may run in chunks of the batch
        saved_bytes (int): bytes its layers save for the backward pass
        stored_bytes (int): the same with binary tensors stored as bits
        input_bytes (int): bytes a recomputed unit keeps
        output_bytes (int): bytes of its output
        largest_bytes (int): bytes of the largest output of one of its layers
        parameter_bytes (int): bytes of its parameters that require grad
        forward_seconds (float): time of its forward pass
        state_bytes (int): bytes of the states its neuron layers return (alive until the
            container returns)
        work_bytes (int): predicted bytes alive while it runs in its planned form,
            besides what the units before it keep (its forward or its backward pass,
            whichever holds more; see :func:`optimise`)
    """

    container: str
    start: int
    stop: int
    recompute: bool
    chunks: int
    chunkable: bool
    saved_bytes: int
    stored_bytes: int
    input_bytes: int
    output_bytes: int
    largest_bytes: int
    parameter_bytes: int
    forward_seconds: float
    state_bytes: int = 0
    work_bytes: int = 0


@dataclass(frozen=True)
class MemoryPlan:
    """What :func:`optimise` chose, with its predictions (bytes at the profiled batch
    size; see :func:`optimise` for the model they come from).

    Parameters:
        budget: the budget it was chosen under
        bits (bool): binary saved tensors stored as bits
        units (tuple of UnitPlan): the units, in the order they run
        other_bytes (int): bytes saved outside the units (as stored with ``bits``)
        plain_peak_bytes (int): predicted peak of the bytes a training step allocates
            without optimisation: activations, saved tensors, states, gradients
            (those of the parameters as they are made) and workspace; the parameters,
            buffers and the input, alive anyway, are not included
        peak_bytes (int): the same with the plan
        plain_seconds (Optional[float]): measured time of a training step without
            optimisation (measured only for a numeric budget)
        seconds (Optional[float]): predicted time of a step with the plan
        bits_seconds (Optional[float]): measured time of a step with bits only
        peak (Optional[float]): the memory target it was chosen for (``optimise``'s
            ``peak``)
    """

    budget: Union[str, float]
    bits: bool
    units: Tuple[UnitPlan, ...]
    other_bytes: int
    plain_peak_bytes: int
    peak_bytes: int
    plain_seconds: Optional[float] = None
    seconds: Optional[float] = None
    bits_seconds: Optional[float] = None
    peak: Optional[float] = None

    def __str__(self) -> str:
        lines = [
            f"{'container':<14}{'layers':>8}  {'plan':<26}{'saved MB':>10}"
            f"{'kept MB':>10}{'work MB':>10}{'forward ms':>12}"
        ]
        for unit in self.units:
            if unit.recompute:
                action = "recompute"
                kept = unit.input_bytes
            else:
                action = "store" + (" (bits)" if self.bits else "")
                kept = unit.stored_bytes if self.bits else unit.saved_bytes
            if unit.chunks > 1:
                action += f" x{unit.chunks} chunks"
            layers = f"{unit.start}-{unit.stop - 1}"
            lines.append(
                f"{unit.container or '(model)':<14}{layers:>8}  {action:<26}"
                f"{unit.saved_bytes / 1e6:>10.2f}{kept / 1e6:>10.2f}"
                f"{unit.work_bytes / 1e6:>10.2f}{unit.forward_seconds * 1e3:>12.1f}"
            )
        lines.append(
            f"predicted peak of a step's allocations: plain "
            f"{self.plain_peak_bytes / 1e6:.1f} MB, "
            f"planned {self.peak_bytes / 1e6:.1f} MB"
        )
        if self.plain_seconds and self.seconds:
            bits = f"with bits {self.bits_seconds:.3f} s, " if self.bits_seconds else ""
            lines.append(
                f"step time: plain {self.plain_seconds:.3f} s, {bits}predicted "
                f"{self.seconds:.3f} s (x{self.seconds / self.plain_seconds:.2f})"
            )
        return "\n".join(lines)


def _allocations(function: Callable[[], None], devices: Sequence[torch.device]):
    """Runs ``function``; returns the peak and the final bytes allocated during it,
    relative to its start (on a CUDA device its allocator's statistics, whose peak this
    resets; on the CPU the allocations and releases that PyTorch's profiler records), or
    ``None`` when they cannot be measured (a profiler is running already)."""
    cuda = [d for d in devices if d.type == "cuda"]
    if cuda:
        device = cuda[0]
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        function()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - start
        return peak, torch.cuda.memory_allocated(device) - start
    if torch.autograd._profiler_enabled():
        return None
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        function()
    events = [
        e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    ]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return peak, current


def _unit_pass(
    group: Sequence[_LayerRecord],
    recompute: bool,
    chunks: int,
    bits: bool,
    devices: Sequence[torch.device],
    memory: bool = False,
) -> Any:
    """A forward and backward pass (``torch.autograd.grad``, no ``.grad`` changed) of
    one unit on its profiled input, stored or recomputed, in ``chunks``: its seconds, or
    with ``memory`` the bytes it holds at most in the forward and in the backward pass
    (:class:`_Work`; ``None`` when they cannot be measured)."""
    first = group[0]
    container = first.container
    layers = list(container._modules.values())
    flags = container.stateful_layers
    unit = _Unit(first.index, group[-1].index + 1, recompute, chunks)
    parameters = [
        p
        for layer in layers[unit.start : unit.stop]
        for p in layer.parameters()
        if p.requires_grad
    ]
    x = first.inputs.detach().requires_grad_(first.input_requires_grad)
    states = {r.index: r.in_state for r in group}
    held: List[Any] = []

    def forward() -> None:
        with bit_store() if bits else contextlib.nullcontext():
            if recompute or chunks > 1:
                held.append(_run_unit(layers, flags, unit, x, states, bits))
            else:
                held.append(
                    _run_layers(layers, flags, unit.start, unit.stop, x, states)
                )

    inputs = parameters + ([x] if x.requires_grad else [])

    def backward() -> None:
        out = held.pop()
        if isinstance(out, torch.Tensor) and out.requires_grad and inputs:
            grad = torch.ones_like(out)
            torch.autograd.grad(out, inputs, grad_outputs=grad, allow_unused=True)

    if not memory:
        _synchronize(devices)
        start = time.perf_counter()
        forward()
        backward()
        _synchronize(devices)
        return time.perf_counter() - start
    forward_bytes = _allocations(forward, devices)
    if forward_bytes is None:
        return None
    # The backward pass: measured from where the forward pass ended (the output and
    # what the unit saved alive). The gradient arriving (a tensor of the output's size,
    # made in the pass) stands for the output, which the network no longer holds then;
    # the states that its neuron layers returned are no longer alive then; the
    # gradients of the unit's parameters are counted.
    backward_bytes = _allocations(backward, devices)
    if backward_bytes is None:
        return None
    forward_peak, forward_end = forward_bytes
    states = sum(r.state_bytes for r in group)
    backward_peak = forward_end - states + backward_bytes[0]
    input_bytes = 0 if first.input_is_example else _nbytes_of(first.inputs)
    return _Work(forward_peak + input_bytes, backward_peak)


def _alive_besides(
    units: Sequence[UnitPlan], model: torch.nn.Module
) -> List[Tuple[int, int]]:
    """Per unit, the bytes alive while it runs besides what the units before it keep:
    in the forward pass the states that the neuron layers of the units before it in its
    container returned (the container returns them all); in the backward pass the
    gradients of the parameters after it, and of those in no unit."""
    total = sum(_nbytes(p) for p in model.parameters() if p.requires_grad)
    outside = total - sum(unit.parameter_bytes for unit in units)
    found = []
    for i, unit in enumerate(units):
        states = sum(u.state_bytes for u in units[:i] if u.container == unit.container)
        after = sum(u.parameter_bytes for u in units[i + 1 :])
        found.append((states, after + outside))
    return found


def _resident_bytes(model: torch.nn.Module, example: Any) -> int:
    """Bytes of the parameters, buffers and the example's tensors."""
    leaves = _pytree.tree_flatten(example)[0]
    tensors = [*model.parameters(), *model.buffers(), *leaves]
    return sum(_nbytes(t) for t in tensors if isinstance(t, torch.Tensor))


def _nbytes_of(value: Any) -> int:
    return _nbytes(value) if isinstance(value, torch.Tensor) else 0


class _Work(NamedTuple):
    """Bytes a unit holds at most, beyond what the units before it keep: in the
    forward pass (its input included) and in the backward pass (the gradient arriving
    and what it keeps included)."""

    forward: int
    backward: int


def _analytic_work(unit: UnitPlan, recompute: bool, chunks: int, bits: bool) -> _Work:
    """:class:`_Work` estimated from the profile, where it cannot be measured: a
    stored unit's saved tensors and two gradients of its largest output; a recomputed
    unit's input, output gradient, and one chunk's saved tensors and gradients."""
    kept = (
        unit.input_bytes
        if recompute
        else (unit.stored_bytes if bits else unit.saved_bytes)
    )
    per_chunk = -(-(unit.saved_bytes + 2 * unit.largest_bytes) // chunks)
    if recompute:
        work = kept + unit.output_bytes + per_chunk
        work += unit.parameter_bytes if chunks > 1 else 0
    else:
        work = kept + -(-2 * unit.largest_bytes // chunks)
    return _Work(work, work + unit.parameter_bytes)


class _Option(NamedTuple):
    """One way to run a unit: ``(recompute, chunks)``, what it keeps until the backward
    pass reaches it, what it holds at most while it runs, and the seconds it adds to a
    training step over the unit stored whole."""

    mode: Tuple[bool, int]
    kept: int
    work: int
    seconds: float


def _chunk_counts(limit: int) -> List[int]:
    """1, 2, 4, ... up to ``limit``, and ``limit``."""
    counts = [1]
    while counts[-1] * 2 < limit:
        counts.append(counts[-1] * 2)
    if limit > 1:
        counts.append(limit)
    return counts


def _interpolate(
    at_one: float, at_limit: float, limit: int, chunks: int, inverse: bool
):
    """A value measured with one chunk and with ``limit``, at ``chunks``: linear in
    ``chunks`` (seconds: a cost per chunk) or in ``1 / chunks`` (bytes: one chunk's
    share)."""
    if limit <= 1 or chunks <= 1:
        return at_one
    if inverse:
        share = (1 - 1 / chunks) / (1 - 1 / limit)
    else:
        share = (chunks - 1) / (limit - 1)
    return at_one + (at_limit - at_one) * share


def _options(
    unit: UnitPlan,
    limit: int,
    works: Dict[Tuple[bool, int], _Work],
    seconds: Dict[Tuple[bool, int], float],
    bits: bool,
    before: Tuple[int, int] = (0, 0),
    recompute_allowed: bool = True,
    chunks_allowed: bool = True,
) -> List[_Option]:
    """Every ``(recompute, chunks)`` of a unit, from the forms measured (one chunk and
    ``limit`` chunks, stored and recomputed). ``before``: the bytes alive besides what
    the units before it keep, in its forward pass (the states that the neuron layers
    before it returned) and in its backward pass (the gradients of the parameters after
    it)."""
    stored_kept = unit.stored_bytes if bits else unit.saved_bytes
    options = []
    for recompute in (False, True) if recompute_allowed else (False,):
        for chunks in _chunk_counts(limit) if chunks_allowed else [1]:
            one, most = works[(recompute, 1)], works.get((recompute, limit))
            if most is None:
                most = one
            work = max(
                before[0]
                + _interpolate(one.forward, most.forward, limit, chunks, True),
                before[1]
                + _interpolate(one.backward, most.backward, limit, chunks, True),
            )
            cost = _interpolate(
                seconds[(recompute, 1)],
                seconds.get((recompute, limit), seconds[(recompute, 1)]),
                limit,
                chunks,
                False,
            )
            kept = unit.input_bytes if recompute else stored_kept
            options.append(
                _Option(
                    (recompute, chunks),
                    kept,
                    int(math.ceil(work)),
                    cost - seconds[(False, 1)],
                )
            )
    return options


def _predict_peak(
    table: Sequence[Sequence[_Option]], modes: Sequence[Tuple[bool, int]], other: int
) -> int:
    """Predicted peak bytes of activations (and their gradients) in a training step:
    while a unit runs, forward or backward, what the units before it keep, plus what it
    holds (:class:`_Work`), plus the bytes saved outside the units."""
    peak = prefix = 0
    for options, mode in zip(table, modes):
        option = next(o for o in options if o.mode == mode)
        peak = max(peak, prefix + option.work)
        prefix += option.kept
    return other + max(peak, prefix)


def _cheapest(
    table: Sequence[Sequence[_Option]], other: int, bound: float
) -> Optional[Tuple[float, Tuple[Tuple[bool, int], ...]]]:
    """The modes of least predicted time whose predicted peak is at most ``bound``
    (``(seconds added, modes)``), or ``None``: over the units in order, the pairs (bytes
    kept so far, seconds) that no other pair beats in both."""
    front: List[Tuple[int, float, Tuple[Tuple[bool, int], ...]]] = [(0, 0.0, ())]
    for options in table:
        grown = [
            (prefix + option.kept, seconds + option.seconds, modes + (option.mode,))
            for prefix, seconds, modes in front
            for option in options
            if other + prefix + option.work <= bound
        ]
        grown.sort(key=lambda state: (state[0], state[1]))
        front, best = [], math.inf
        for state in grown:
            if state[1] < best:
                front.append(state)
                best = state[1]
        if not front:
            return None
    found = [(s, m) for prefix, s, m in front if other + prefix <= bound]
    return min(found, key=lambda pair: pair[0]) if found else None


def _choose(
    table: Sequence[Sequence[_Option]], other: int, extra_seconds: float
) -> List[Tuple[bool, int]]:
    """The modes of least predicted peak whose added seconds are at most
    ``extra_seconds`` (bisection on the peak, :func:`_cheapest` for each bound); among
    plans within 1% of that peak, the fastest."""
    high = other + sum(max(o.kept for o in options) for options in table)
    high += max((max(o.work for o in options) for options in table), default=0)
    low = 0
    if _cheapest(table, other, high) is None:  # cannot happen: every bound fits
        return [(False, 1)] * len(table)

    def fits(bound: float) -> bool:
        found = _cheapest(table, other, bound)
        return found is not None and found[0] <= extra_seconds + 1e-12

    if not fits(high):  # not even the fastest plan is within the time: the fastest
        fastest = [min(options, key=lambda o: o.seconds) for options in table]
        return [o.mode for o in fastest]
    while high - low > max(1, high // 4000):
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle
    found = _cheapest(table, other, high * 1.01)
    if found is None or found[0] > extra_seconds + 1e-12:
        found = _cheapest(table, other, high)
    return list(found[1])


# The call ----------------------------------------------------------------------------------

#: Attribute of an optimised model holding its plan (copied with the model).
_PLAN_ATTRIBUTE = "_norse_memory_plan"
#: Attributes of a planned ``SequentialState``.
_CONTAINER_ATTRIBUTES = (
    "_memory_units",
    "_memory_layer_count",
    "_memory_bits",
    "_memory_profiler",
)


class _BitHooks:
    """Enters :func:`bit_store` for every forward pass of a model (forward pre-hook) and
    leaves it when the pass ends, also when it raises (forward hook, ``always_call``)."""

    def __init__(self, model: torch.nn.Module):
        self.contexts: List[torch.autograd.graph.saved_tensors_hooks] = []
        model.register_forward_pre_hook(self.enter)
        model.register_forward_hook(self.leave, always_call=True)

    def enter(self, module: torch.nn.Module, args: Any) -> None:
        context = bit_store()
        context.__enter__()
        self.contexts.append(context)

    def leave(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if self.contexts:
            self.contexts.pop().__exit__(None, None, None)

    @staticmethod
    def remove(model: torch.nn.Module) -> None:
        """Removes the hooks from ``model`` (found by their owner, so that the hooks of
        a copy of an optimised model are found as well)."""
        for hooks in (model._forward_pre_hooks, model._forward_hooks):
            for key, hook in list(hooks.items()):
                if isinstance(getattr(hook, "__self__", None), _BitHooks):
                    del hooks[key]
                    model._forward_hooks_always_called.pop(key, None)


def _containers(model: torch.nn.Module) -> List[Tuple[str, SequentialState]]:
    """The outermost ``SequentialState`` modules (exactly that class) of ``model``, not
    inside a ``Lift`` or ``RecurrentSequential`` (those call their layers once per time
    step)."""
    from norse.torch.module.lift import Lift
    from norse.torch.module.sequential import RecurrentSequential

    found: List[Tuple[str, SequentialState]] = []

    def visit(name: str, module: torch.nn.Module) -> None:
        if type(module) is SequentialState:
            found.append((name, module))
            return
        if isinstance(module, (Lift, RecurrentSequential, SequentialState)):
            return
        for child_name, child in module.named_children():
            visit(f"{name}.{child_name}" if name else child_name, child)

    visit("", model)
    return found


def restore(model: torch.nn.Module) -> torch.nn.Module:
    """Undoes :func:`optimise` (or :func:`apply_plan`): the model's ``SequentialState``
    modules run as before and saved tensors are no longer stored as bits. Returns
    ``model``."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _BitHooks.remove(model)
    for module in model.modules():
        if type(module) is _SegmentedSequentialState:
            module.__class__ = SequentialState
            for name in _CONTAINER_ATTRIBUTES:
                module.__dict__.pop(name, None)
    model.__dict__.pop(_PLAN_ATTRIBUTE, None)
    return model


def plan_of(model: torch.nn.Module) -> Optional[MemoryPlan]:
    """The :class:`MemoryPlan` that :func:`optimise` chose for ``model`` (or that
    :func:`apply_plan` applied); ``None`` if it was not optimised."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model.__dict__.get(_PLAN_ATTRIBUTE)


def apply_plan(model: torch.nn.Module, plan: MemoryPlan) -> torch.nn.Module:
    """Applies ``plan`` to ``model`` (in place; returns it), as :func:`optimise` applies
    the plan it chose: e.g. a plan changed with :func:`dataclasses.replace`, or the plan
    of one model applied to a copy of it without profiling again.

    The units of each planned ``SequentialState`` (by name; :attr:`UnitPlan.container`)
    must cover its layers in order. A plan made for another batch size still gives the
    right results (chunk counts larger than the batch are reduced to it).

    Raises:
        ValueError: if a unit names no ``SequentialState`` of ``model``, or the units do
            not cover its layers in order.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(plan, MemoryPlan):
        raise TypeError(f"plan must be a MemoryPlan, got {type(plan).__name__}")
    restore(model)
    containers = dict(_containers(model))
    planned: Dict[str, List[UnitPlan]] = {}
    for unit in plan.units:
        if unit.container not in containers:
            raise ValueError(
                f"plan has a unit of {unit.container!r}, which is not a SequentialState "
                f"of the model (those are {sorted(containers)})"
            )
        if unit.chunks < 1:
            raise ValueError(
                f"plan has a unit with chunks={unit.chunks}, expected >= 1"
            )
        planned.setdefault(unit.container, []).append(unit)
    for name, units in planned.items():
        bounds = [(u.start, u.stop) for u in units]
        expected = len(containers[name])
        tiles = all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        if not (tiles and bounds[0][0] == 0 and bounds[-1][1] == expected) or any(
            start >= stop for start, stop in bounds
        ):
            raise ValueError(
                f"the units of {name!r} must cover its {expected} layers in order, "
                f"got layers {bounds}"
            )
    for name, units in planned.items():
        container = containers[name]
        container.__class__ = _SegmentedSequentialState
        container._memory_layer_count = len(container)
        container._memory_bits = plan.bits
        container._memory_units = tuple(
            _Unit(u.start, u.stop, u.recompute, u.chunks) for u in units
        )
    if plan.bits:
        _BitHooks(model)
    model.__dict__[_PLAN_ATTRIBUTE] = plan
    return model


def _parameter_bytes(group: Sequence[_LayerRecord]) -> int:
    layers = list(group[0].container._modules.values())
    return sum(
        _nbytes(p)
        for layer in layers[group[0].index : group[-1].index + 1]
        for p in layer.parameters()
        if p.requires_grad
    )


def _units_of(
    records: Sequence[_LayerRecord], names: Dict[int, str], bits: bool
) -> Tuple[List[UnitPlan], List[List[_LayerRecord]]]:
    """Splits each container's records into units. A unit ends after a layer whose
    output is spikes unless the next layer is stateless and outputs spikes too (a LIF
    layer followed by a max pooling ends at the smaller output); a neuron layer always
    starts a new unit after one that outputs spikes."""
    units, groups = [], []
    group: List[_LayerRecord] = []
    for position, record in enumerate(records):
        group.append(record)
        following = records[position + 1] if position + 1 < len(records) else None
        last_of_container = (
            following is None or following.container is not record.container
        )
        stateful = (
            following is not None
            and following.container.stateful_layers[following.index]
        )
        if not (
            last_of_container or (record.binary and (stateful or not following.binary))
        ):
            continue
        first = group[0]
        inputs = first.inputs
        if first.input_is_example or not isinstance(inputs, torch.Tensor):
            kept = 0
        elif bits and _packable(inputs, MIN_PACK_BYTES) and is_binary(inputs):
            kept = (inputs.numel() + 7) // 8
        else:
            kept = _nbytes(inputs)
        units.append(
            UnitPlan(
                container=names[id(record.container)],
                start=first.index,
                stop=record.index + 1,
                recompute=False,
                chunks=1,
                chunkable=False,
                saved_bytes=sum(r.saved for r in group),
                stored_bytes=sum(r.stored for r in group),
                input_bytes=kept,
                output_bytes=record.output_bytes,
                largest_bytes=max(r.output_bytes for r in group),
                parameter_bytes=_parameter_bytes(group),
                state_bytes=sum(r.state_bytes for r in group),
                forward_seconds=sum(r.seconds for r in group),
            )
        )
        groups.append(group)
        group = []
    return units, groups


def _chunkable(group: Sequence[_LayerRecord]) -> bool:
    """Whether the unit's samples are independent: the static conditions, then the
    first half of the batch run alone gives the first half of the whole batch's output
    (to rounding; a spike that flips makes the unit unchunkable, which is safe)."""
    first = group[0]
    inputs = first.inputs
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 2 or inputs.shape[1] < 2:
        return False
    layers = list(first.container._modules.values())
    flags = first.container.stateful_layers
    modules = layers[first.index : group[-1].index + 1]
    if (
        any(r.random or not r.batch_second or not r.state_batch_first for r in group)
        or _batch_norms_in_training(modules)
        or not all(_leaves_batch_first(r.in_state, inputs.shape[1]) for r in group)
    ):
        return False
    batch = inputs.shape[1]
    half = batch // 2
    with torch.no_grad():
        whole = {r.index: r.in_state for r in group}
        part = {r.index: _slice_batch(r.in_state, 0, half, batch) for r in group}
        start, stop = first.index, group[-1].index + 1
        out_whole = _run_layers(layers, flags, start, stop, inputs, whole)
        out_part = _run_layers(layers, flags, start, stop, inputs[:, :half], part)
    return (
        isinstance(out_whole, torch.Tensor)
        and isinstance(out_part, torch.Tensor)
        and out_part.shape == out_whole[:, :half].shape
        and torch.allclose(out_part, out_whole[:, :half], rtol=1e-4, atol=1e-6)
    )


def _check_budget(budget: Any) -> None:
    if isinstance(budget, str):
        if budget not in ("memory", "time"):
            raise ValueError(
                f"budget must be 'memory', 'time' or a time ratio >= 1, got {budget!r}"
            )
        return
    if (
        isinstance(budget, bool)
        or not isinstance(budget, (int, float))
        or not math.isfinite(budget)
        or budget < 1
    ):
        raise ValueError(
            f"budget must be 'memory', 'time' or a time ratio >= 1, got {budget!r}"
        )


def optimise(
    model: torch.nn.Module,
    example: Any,
    budget: Union[str, float] = "memory",
    bits: bool = True,
    max_chunks: int = 64,
    peak: Optional[float] = None,
) -> torch.nn.Module:
    """Makes ``model`` train with less memory and the same gradients; returns ``model``
    (changed in place; :func:`restore` undoes it, :func:`plan_of` returns the plan).

    Two things are applied:

    * with ``bits`` (default), tensors saved for the backward pass that are exactly
      binary (spikes) are stored eight to a byte during every forward pass of the model
      (:func:`bit_store`); this works for any model;
    * every outermost :class:`~norse.torch.SequentialState` of the model (not one inside
      a ``Lift``, which runs per time step) is split into *units* that end where a
      layer's output is spikes; the planned units are *recomputed* in the backward
      pass, keeping only their input (as bits), possibly in chunks of the batch.

    **Profiling.** ``model(example)`` runs once with gradients, layer by layer, to
    measure what every layer saves for the backward pass, with and without bits, how
    long it takes, whether its output is spikes, and whether it may run in chunks of the
    batch (its samples are independent: no batch norm in training mode, no random
    numbers, the batch in dimension 1 and the first half of the batch giving the same
    output alone). Then each unit's forward and backward pass runs alone on its
    profiled input, stored and recomputed, whole and in the most chunks allowed, and the
    bytes it holds at most in each pass are measured (on the CPU with PyTorch's
    profiler, on CUDA with the allocator's statistics, whose peak this resets): its
    saved tensors, its outputs and states, the gradients arriving and leaving, its
    parameters' gradients and the workspace of its operations (a convolution's backward
    pass holds several times its output). For a numeric budget, training steps with and
    without bits are timed as well (the best of three each, after a warm-up step), and
    each unit's passes in the same forms (the best of three; planning then takes some
    thirty training steps). The random number generators, the buffers and the gradients
    of the model are left as they were. Profile with the batch size and mode
    (``train()``) you train with.

    **The rule.** A unit runs *stored* (its layers keep what they save, as bits where
    binary) or *recomputed* (it keeps its input), either whole or in batch chunks (a
    stored unit in chunks keeps as much, but its backward pass, workspace included,
    runs a chunk at a time). The peak of a training step is predicted as the largest,
    over the units, of what the units before it keep plus what it holds in its forward
    pass (with the states the neuron layers before it returned) or its backward pass
    (with the gradients of the parameters after it), plus what is saved outside the
    units; bytes between the measured chunk counts are interpolated in ``1 / chunks``.
    Time is predicted as the step with bits plus what each unit's form adds to its
    stored pass (measured; seconds between chunk counts interpolated linearly).

    * ``budget="memory"``: the least predicted peak (among plans within 1% of it, the
      fastest; without timing, recomputing costs a unit's forward pass).
    * ``budget="time"``: nothing is recomputed or chunked; only bits.
    * ``budget=r`` (a number >= 1): the least predicted peak whose predicted step time
      is at most ``r`` times the measured plain step (exactly, over all forms: a
      bisection on the peak, each bound answered by the fastest plan within it).
    * ``peak=f`` (a fraction, with the default budget): a memory target, the fastest
      plan whose predicted peak of a whole training step (with the parameters, buffers
      and the example, which are alive anyway) is at most ``f`` times the predicted
      plain step's; the least peak where none is. The units' passes are timed as for a
      numeric budget. Predictions came within about 5% of the measured peaks (see
      ``docs/memory.md``): state the target with that margin.

    **Gradients.** The same as without optimisation, bit for bit, when no unit runs in
    chunks (the recomputation repeats the same operations on the same values, the
    random number generators restored). A unit in batch chunks sums its weight
    gradients chunk by chunk, which changes their rounding. Layers with forward hooks
    are not recomputed (the hooks would see them twice); buffers that the layers update
    are put back after a recomputation, other attributes a layer changes in its forward
    pass are not.

    Parameters:
        model (torch.nn.Module): the network
        example: an input, called as ``model(example)``; its batch size is the one
            the byte counts refer to
        budget: ``"memory"`` (default), ``"time"`` or a step-time ratio ``>= 1``
        bits (bool): store binary saved tensors as bits
        max_chunks (int): the most batch chunks a unit runs in; ``1`` keeps whole
            batches, and so the gradients bit for bit
        peak (Optional[float]): a memory target in ``(0, 1]``, a fraction of the plain
            step's predicted peak (instead of a budget)

    Raises:
        ValueError: for a budget that is none of these, or a peak that is no fraction
            or comes with a budget.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_budget(budget)
    if not isinstance(bits, bool):
        raise TypeError(f"bits must be True or False, got {bits!r}")
    if (
        isinstance(max_chunks, bool)
        or not isinstance(max_chunks, int)
        or max_chunks < 1
    ):
        raise ValueError(f"max_chunks must be a positive int, got {max_chunks!r}")
    if peak is not None:
        if (
            isinstance(peak, bool)
            or not isinstance(peak, (int, float))
            or not 0 < peak <= 1
        ):
            raise ValueError(f"peak must be a fraction in (0, 1], got {peak!r}")
        if budget != "memory":
            raise ValueError(
                f"peak is a target instead of a budget: leave budget out, got {budget!r}"
            )
    restore(model)
    containers = _containers(model)
    names = {id(container): name for name, container in containers}
    for _, container in containers:
        container.__class__ = _SegmentedSequentialState
    try:
        plan = _plan(model, example, containers, names, budget, bits, max_chunks, peak)
    finally:
        restore(model)
    return apply_plan(model, plan)


#: The American spelling of :func:`optimise`.
optimize = optimise


def _measure_costs(
    groups: Sequence[Sequence[_LayerRecord]],
    forms: Sequence[Sequence[Tuple[bool, int]]],
    bits: bool,
    devices: Sequence[torch.device],
    repeats: int = 3,
) -> List[Dict[Tuple[bool, int], float]]:
    """Each unit's forward and backward pass timed in each of its ``forms``
    (``(recompute, chunks)``): the best of ``repeats`` rounds that time the forms one
    after the other, so that a slower period of a busy machine does not fall on one form
    only."""
    costs = []
    for group, unit_forms in zip(groups, forms):
        best = {form: math.inf for form in unit_forms}
        for _ in range(repeats):
            for form in unit_forms:
                seconds = _unit_pass(group, *form, bits, devices)
                best[form] = min(best[form], seconds)
        costs.append(best)
    return costs


def _measure_works(
    units: Sequence[UnitPlan],
    groups: Sequence[Sequence[_LayerRecord]],
    forms: Sequence[Sequence[Tuple[bool, int]]],
    bits: bool,
    devices: Sequence[torch.device],
) -> List[Dict[Tuple[bool, int], _Work]]:
    """Each unit's :class:`_Work` in each of its ``forms``, measured (one pass each),
    or estimated from the profile where it cannot be."""
    works = []
    for unit, group, unit_forms in zip(units, groups, forms):
        found = {}
        for form in unit_forms:
            work = _unit_pass(group, *form, bits, devices, memory=True)
            found[form] = (
                work if work is not None else _analytic_work(unit, *form, bits)
            )
        works.append(found)
    return works


def _profiled_call(
    model: torch.nn.Module,
    example: Any,
    containers: Sequence[Tuple[str, SequentialState]],
    profiler: _Profiler,
) -> None:
    """Calls ``model(example)`` (with gradients) while ``profiler`` records the layers
    of the planned ``containers``."""
    for _, container in containers:
        container._memory_profiler = profiler
    with torch.enable_grad(), profiler.hooks():
        model(example)
    for _, container in containers:
        container._memory_profiler = None


def _plan(
    model: torch.nn.Module,
    example: Any,
    containers: Sequence[Tuple[str, SequentialState]],
    names: Dict[int, str],
    budget: Union[str, float],
    bits: bool,
    max_chunks: int,
    peak: Optional[float] = None,
) -> MemoryPlan:
    """Profiles ``model`` on ``example`` and chooses the plan (see :func:`optimise`);
    the random number generators and the buffers are put back afterwards."""
    devices = _devices(example, *model.parameters(), *model.buffers())
    timed = not isinstance(budget, str) or peak is not None
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    cuda = [d for d in devices if d.type == "cuda"]
    plain_seconds = bits_seconds = None
    profiler = _Profiler(example, devices, model)
    with torch.random.fork_rng(devices=cuda):
        try:
            # warm-up of the paths measured below: kernels are compiled and layers
            # set themselves up on their first call (and save more in it)
            _profiled_call(
                model, example, containers, _Profiler(example, devices, model)
            )
            if timed:
                _timed_step(model, example, devices, bits=False)
            _profiled_call(model, example, containers, profiler)
            if timed:  # alternately, the best of three each: other work perturbs
                plain_seconds = bits_seconds = math.inf
                for _ in range(3):
                    seconds = _timed_step(model, example, devices, bits=False)
                    plain_seconds = min(plain_seconds, seconds)
                    seconds = _timed_step(model, example, devices, bits=bits)
                    bits_seconds = min(bits_seconds, seconds)
            planned = [
                r
                for r in profiler.records
                if profiler.calls.get(id(r.container)) == 1
                and id(r.container) not in profiler.unplannable
            ]
            unplanned = [r for r in profiler.records if r not in planned]
            units, groups = _units_of(planned, names, bits)
            units = [
                replace(unit, chunkable=_chunkable(group))
                for unit, group in zip(units, groups)
            ]
            limits = {
                i: min(max_chunks, group[0].inputs.shape[1]) if unit.chunkable else 1
                for i, (unit, group) in enumerate(zip(units, groups))
            }
            other = profiler.other_stored if bits else profiler.other_saved
            other += sum((r.stored if bits else r.saved) for r in unplanned)
            forms = []
            for i in range(len(units)):
                unit_forms = [(False, 1)]
                if budget != "time":
                    unit_forms.append((True, 1))
                    if limits[i] > 1:
                        unit_forms += [(False, limits[i]), (True, limits[i])]
                forms.append(unit_forms)
            works = _measure_works(units, groups, forms, bits, devices)
            plain_works = _measure_works(
                units, groups, [[(False, 1)]] * len(units), False, devices
            )
            if timed:
                costs = _measure_costs(groups, forms, bits, devices)
            else:  # the order of costs only: recomputing costs its forward pass
                costs = [
                    {
                        (recompute, chunks): (
                            unit.forward_seconds * (recompute + 0.05 * (chunks - 1))
                        )
                        for recompute, chunks in unit_forms
                    }
                    for unit, unit_forms in zip(units, forms)
                ]
            before = _alive_besides(units, model)
            table = [
                _options(unit, limits[i], works[i], costs[i], bits, before[i])
                if budget != "time"
                else _options(
                    unit, 1, works[i], costs[i], bits, before[i], False, False
                )
                for i, unit in enumerate(units)
            ]
            plain_other = profiler.other_saved + sum(r.saved for r in unplanned)
            plain_table = [
                _options(unit, 1, w, {(False, 1): 0.0}, False, extra, False, False)
                for unit, w, extra in zip(units, plain_works, before)
            ]
            plain_peak = _predict_peak(
                plain_table, [(False, 1)] * len(units), plain_other
            )
            if budget == "time":
                modes = [(False, 1)] * len(units)
            elif peak is not None:
                resident = _resident_bytes(model, example)
                bound = peak * (resident + plain_peak) - resident
                found = _cheapest(table, other, bound)
                modes = list(found[1]) if found else _choose(table, other, math.inf)
            elif budget == "memory":
                modes = _choose(table, other, math.inf)
            else:
                modes = _choose(table, other, budget * plain_seconds - bits_seconds)
        finally:
            for _, container in containers:
                container._memory_profiler = None
            with torch.no_grad():
                for buffer, value in buffers:
                    buffer.copy_(value)
    chosen = [
        next(o for o in options if o.mode == mode)
        for options, mode in zip(table, modes)
    ]
    units = [
        replace(unit, recompute=recompute, chunks=chunks, work_bytes=option.work)
        for unit, (recompute, chunks), option in zip(units, modes, chosen)
    ]
    seconds = None
    if timed:
        seconds = bits_seconds + sum(option.seconds for option in chosen)
    return MemoryPlan(
        budget=budget,
        bits=bits,
        units=tuple(units),
        other_bytes=other,
        plain_peak_bytes=plain_peak,
        peak_bytes=_predict_peak(table, modes, other),
        plain_seconds=plain_seconds,
        seconds=seconds,
        bits_seconds=bits_seconds,
        peak=peak,
    )
