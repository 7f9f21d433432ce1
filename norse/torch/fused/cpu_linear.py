r"""CPU kernels (Numba) of the event-driven weight product for binary spike input.

For spikes :math:`x \in \{0, 1\}^{R \times K}` and a weight :math:`W` ``(N, K)``,

.. math::
    y_r = b + \sum_{k \in A_r} W^\top_{k,:}, \qquad
    \left(\frac{\partial L}{\partial W}\right)^\top_{k,:}
        = \sum_{r:\, k \in A_r} \frac{\partial L}{\partial y_r},

with :math:`A_r` the active (non-zero) inputs of row ``r``. Three kernels:

* :func:`_scan`: the active inputs of every row as a CSR index (``index``, ``pointer``),
  and whether every value is 0 or 1. It compares 64 inputs at a time (one vector
  compare, the result a 64-bit mask) and walks the set bits with ``cttz``, so that it
  costs less than counting the active inputs with ``torch.count_nonzero``.
* :func:`_gather_sum`: ``out[r] = bias + sum(table[index[j]] for j in row r)``, eight
  rows of the table per pass over ``out[r]``, in blocks of output columns whose slice of
  the table stays in the L2 cache. With ``table = W.T`` it is the forward product; with
  ``table = grad_out`` and the *transposed* index (:func:`_transpose`, the rows active per
  input) it is the weight gradient :math:`(\partial L / \partial W)^\top`.
* :func:`_transpose`: CSR to CSC (a counting sort; the row indices of each column stay
  ascending).

At low activity both products take a fraction of the dense ones' time
(``benchmarks/RESULTS.md``). The gather-sums split their output rows over PyTorch's threads
(``torch.set_num_threads``, :func:`.cpu._run`); the scan and the
transposition of the index stay on one. Sums run in another order than the dense product's, so results
agree up to rounding. The input's dtype: float32, float64 or bool; the table's: float32
or float64.
"""

from typing import NamedTuple, Optional

import numpy as np
import torch
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from norse.torch.fused.cpu import _run, _threads
from norse.torch.fused.registry import plain_eager  # noqa: F401 (when they may run)

#: Inputs compared per vector step of :func:`_scan` (one 64-bit mask).
LANES = 64

#: Tables larger than this are gathered in blocks of output columns of about this many
#: bytes (half of the 32 MiB L3 cache), at least :data:`MIN_BLOCK_WIDTH` columns wide:
#: blocks pay only where the table outgrows the cache, and too narrow ones lose their
#: gain (``benchmarks/RESULTS.md``).
BLOCK_BYTES = 16 << 20
MIN_BLOCK_WIDTH = 256


@intrinsic
def _trailing_zeros(typingctx, value):
    """The index of the lowest set bit of a non-zero ``uint64`` (LLVM ``cttz``)."""

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return types.uint64(types.uint64), codegen


@intrinsic
def _masks(typingctx, words, index, one):
    """``(nonzero, not_binary)``: 64-bit masks of the :data:`LANES` words
    ``words[index:index + LANES]`` (unsigned integers: the bits of the inputs) that are
    not 0, and that are neither 0 nor ``one`` (the bits of 1.0 in the input's dtype)."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, array, [args[1]], wraparound=False
        )
        word = pointer.type.pointee
        vector = ir.VectorType(word, LANES)
        values = builder.load(builder.bitcast(pointer, vector.as_pointer()), align=1)
        ones = builder.insert_element(
            ir.Constant(vector, ir.Undefined), args[2], ir.Constant(ir.IntType(32), 0)
        )
        ones = builder.shuffle_vector(
            ones, ones, ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        )
        nonzero = builder.icmp_unsigned("!=", values, ir.Constant(vector, [0] * LANES))
        not_one = builder.icmp_unsigned("!=", values, ones)
        mask = ir.IntType(LANES)
        return context.make_tuple(
            builder,
            signature.return_type,
            [
                builder.bitcast(nonzero, mask),
                builder.bitcast(builder.and_(nonzero, not_one), mask),
            ],
        )

    return types.UniTuple(types.uint64, 2)(words, index, one), codegen


@njit(nogil=True, cache=True, error_model="numpy")
def _scan(words, one, index, pointer):
    """Fills the CSR index of the non-zero inputs of ``words`` ``(R, K)`` (the inputs'
    bits): ``index[pointer[r]:pointer[r + 1]]`` are the active columns of row ``r``,
    ascending. Returns their number, or -1 when a value is neither 0 nor ``one``."""
    rows, cols = words.shape
    full = cols - cols % LANES
    count = 0
    bad = np.uint64(0)
    pointer[0] = 0
    for r in range(rows):
        row = words[r]
        for start in range(0, full, LANES):
            mask, not_binary = _masks(row, start, one)
            bad |= not_binary
            while mask:
                index[count] = start + np.int64(_trailing_zeros(mask))
                count += 1
                mask &= mask - np.uint64(1)
        for k in range(full, cols):
            value = row[k]
            index[count] = k
            count += value != 0
            bad |= np.uint64((value != 0) & (value != one))
        pointer[r + 1] = count
    return -1 if bad else count


@njit(nogil=True, cache=True, error_model="numpy")
def _gather_sum(table, index, pointer, bias, out, width, start, stop):
    """``out[r] = bias + sum(table[index[j]] for j in range(pointer[r], pointer[r+1]))``
    for the rows ``start:stop`` of ``out`` ``(R, N)``; ``bias`` ``(N,)`` or empty for
    none. Output columns in blocks of ``width``; eight table rows are added per pass
    over the output row (fewer loads and stores of it), in a fixed order."""
    cols = out.shape[1]
    has_bias = bias.shape[0] == cols
    for lo in range(0, cols, width):
        hi = min(cols, lo + width)
        for r in range(start, stop):
            o = out[r, lo:hi]
            n = hi - lo
            if has_bias:
                b = bias[lo:hi]
                for c in range(n):
                    o[c] = b[c]
            else:
                for c in range(n):
                    o[c] = 0
            j = pointer[r]
            end = pointer[r + 1]
            while j + 8 <= end:
                a0 = table[index[j], lo:hi]
                a1 = table[index[j + 1], lo:hi]
                a2 = table[index[j + 2], lo:hi]
                a3 = table[index[j + 3], lo:hi]
                a4 = table[index[j + 4], lo:hi]
                a5 = table[index[j + 5], lo:hi]
                a6 = table[index[j + 6], lo:hi]
                a7 = table[index[j + 7], lo:hi]
                for c in range(n):
                    o[c] += ((a0[c] + a1[c]) + (a2[c] + a3[c])) + (
                        (a4[c] + a5[c]) + (a6[c] + a7[c])
                    )
                j += 8
            while j + 4 <= end:
                a0 = table[index[j], lo:hi]
                a1 = table[index[j + 1], lo:hi]
                a2 = table[index[j + 2], lo:hi]
                a3 = table[index[j + 3], lo:hi]
                for c in range(n):
                    o[c] += (a0[c] + a1[c]) + (a2[c] + a3[c])
                j += 4
            while j < end:
                a0 = table[index[j], lo:hi]
                for c in range(n):
                    o[c] += a0[c]
                j += 1


@njit(nogil=True, cache=True, error_model="numpy")
def _transpose(index, pointer, cols, column_index, column_pointer):
    """CSR ``(index, pointer)`` of ``R`` rows to CSC over ``cols`` columns: the rows
    active in column ``k`` are ``column_index[column_pointer[k]:column_pointer[k+1]]``,
    ascending."""
    rows = pointer.shape[0] - 1
    column_pointer[:] = 0
    for j in range(pointer[rows]):
        column_pointer[index[j] + 1] += 1
    for k in range(cols):
        column_pointer[k + 1] += column_pointer[k]
    fill = column_pointer[:cols].copy()
    for r in range(rows):
        for j in range(pointer[r], pointer[r + 1]):
            k = index[j]
            column_index[fill[k]] = r
            fill[k] += 1


_WORDS = {
    torch.float32: (torch.int32, np.uint32, 0x3F800000),
    torch.float64: (torch.int64, np.uint64, 0x3FF0000000000000),
    torch.bool: (torch.uint8, np.uint8, 1),
}

#: Input dtypes the kernels take.
INPUT_DTYPES = tuple(_WORDS)

#: Weight (table) dtypes the kernels take.
WEIGHT_DTYPES = (torch.float32, torch.float64)


class ActiveInputs(NamedTuple):
    """The active (non-zero) inputs of a binary ``(rows, cols)`` input, CSR: row ``r``'s
    are ``index[pointer[r]:pointer[r + 1]]`` (NumPy int32 / int64 arrays)."""

    index: np.ndarray
    pointer: np.ndarray
    rows: int
    cols: int

    @property
    def count(self) -> int:
        return int(self.pointer[self.rows])


def active_inputs(flat: torch.Tensor) -> Optional[ActiveInputs]:
    """The :class:`ActiveInputs` of ``flat`` ``(rows, cols)`` (a CPU tensor of a dtype in
    :data:`INPUT_DTYPES`), or ``None`` when a value is neither 0 nor 1 (also -0.0 and
    NaN, which are not spikes)."""
    rows, cols = flat.shape
    as_int, word, one = _WORDS[flat.dtype]
    words = flat.contiguous().view(as_int).numpy().view(word)
    # Sized for every input active; only the pages written are ever touched.
    index = np.empty(max(rows * cols, 1), np.int32)
    pointer = np.empty(rows + 1, np.int64)
    if _scan(words, word(one), index, pointer) < 0:
        return None
    return ActiveInputs(index, pointer, rows, cols)


def _width(table: torch.Tensor) -> int:
    """Output columns per block of :func:`_gather_sum` (see :data:`BLOCK_BYTES`)."""
    rows, cols = table.shape
    width = BLOCK_BYTES // max(1, rows * table.element_size()) // 16 * 16
    return max(1, min(cols, max(MIN_BLOCK_WIDTH, width)))


def gather_sum(
    table: torch.Tensor,
    index: np.ndarray,
    pointer: np.ndarray,
    bias: Optional[torch.Tensor],
    out: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``(len(pointer) - 1, N)``: per row, ``bias`` plus the sum of the rows of ``table``
    ``(K, N)`` (C-contiguous, CPU) that the CSR index selects; written into ``out``
    (C-contiguous) if given."""
    rows, cols = pointer.shape[0] - 1, table.shape[1]
    if out is None:
        out = table.new_empty(rows, cols)
    bias_array = (
        table.new_empty(0) if bias is None else bias.detach().contiguous()
    ).numpy()
    args = (table.detach().numpy(), index, pointer, bias_array, out.numpy())
    # Rows on PyTorch's threads (the kernel releases the GIL), by the work per row.
    per_row = max(1, int(pointer[rows]) * cols // max(rows, 1))
    _run(_gather_sum, args + (_width(table),), per_row, rows, _threads(), align=8)
    return out


def binary_linear(
    active: ActiveInputs, weight: torch.Tensor, bias: Optional[torch.Tensor]
) -> torch.Tensor:
    """``(rows, out_features)``: ``x @ weight.T + bias`` for the binary input whose
    active inputs are ``active``; ``weight`` ``(out_features, in_features)``, any
    layout (transposed once when it is not column-major)."""
    table = weight.detach().t().contiguous()
    return gather_sum(table, active.index, active.pointer, bias)


def binary_weight_grad(active: ActiveInputs, grad_out: torch.Tensor) -> torch.Tensor:
    """``grad_out.T @ x`` ``(out_features, in_features)`` for the binary input ``x``
    whose active inputs are ``active`` and ``grad_out`` ``(rows, out_features)``: the
    gradient of ``x @ W.T`` with respect to ``W`` (computed transposed, returned as a
    column-major view)."""
    count = active.count
    column_index = np.empty(max(count, 1), np.int32)
    column_pointer = np.empty(active.cols + 1, np.int64)
    _transpose(
        active.index[:count], active.pointer, active.cols, column_index, column_pointer
    )
    grad_t = gather_sum(grad_out.contiguous(), column_index, column_pointer, None)
    return grad_t.t()
