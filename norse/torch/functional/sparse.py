r"""Event-driven weight products for binary spike input.

A linear synapse maps spikes :math:`x \in \{0, 1\}^{\ldots \times n_{in}}` to currents

.. math::
    y = x W^\top + b, \qquad y_m = b + \sum_{k:\, x_{mk} = 1} W_{:,k},

so for a binary input each output row is the sum of the weight columns of its *active*
inputs. When few inputs spike (a spiking network typically has < 2% of its neurons
active per step) it is cheaper to gather and add those columns than to multiply the
whole matrix: the work is ``active inputs x out_features`` instead of
``in_features x out_features`` per row.

This module is the reference, in PyTorch operations only: the indices of the active
inputs come from :func:`torch.nonzero` and the sums from
:func:`torch.nn.functional.embedding_bag` (``mode="sum"``), which reads :math:`W^\top`
without a copy when the weight is stored *column-major* (``weight.t()`` contiguous, see
:func:`column_major`), as :class:`~norse.torch.module.sparse.SpikeLinear` and
:class:`~norse.torch.module.leaky_integrator.LILinearCell` store theirs; a row-major
weight is transposed on each sparse call. :mod:`norse.torch.fused.spike_linear` adds
the Numba CPU kernels of :mod:`norse.torch.fused.cpu_linear` (a vectorised scan for the
active inputs and the check that every value is 0 or 1, then per row a sum of rows of
:math:`W^\top`; the weight gradient the same gather over the transposed index,
:math:`(\partial L/\partial W)^\top_{k,:} = \sum_{m:\, x_{mk}=1} \partial L /
\partial y_m`); the layers (:class:`~norse.torch.module.sparse.SpikeLinear`,
:class:`~norse.torch.module.leaky_integrator.LILinearCell`, a ``torch.nn.Linear`` in
:class:`~norse.torch.SequentialState` or :class:`~norse.torch.Lift`) use it. Nothing is
cached, so every change of the weight (optimizer steps, ``weight.data`` edits,
``load_state_dict``) is seen at once.

:func:`spike_linear` chooses with ``method``:

* ``"dense"``: :func:`torch.nn.functional.linear`;
* ``"sparse"``: the event-driven path on any device (raises for non-binary input);
* ``"auto"`` (default): ``"sparse"`` on the CPU for a binary input, a column-major
  weight, an activity (fraction of non-zero inputs) of at most
  :func:`activity_threshold` and a large enough product (:data:`MIN_SPARSE_WORK`);
  ``"dense"`` otherwise (also under :func:`torch.compile` and ``torch.func``
  transforms). With the CPU kernels (:mod:`norse.torch.fused.spike_linear`) ``"auto"``
  goes by :func:`kernel_activity_threshold`, :data:`MIN_KERNEL_WORK` and, for a
  row-major weight, :data:`MIN_ROWS_TO_TRANSPOSE` instead. The thresholds were measured
  on a 2-core AMD EPYC (AVX-512) with PyTorch 2.13 (``benchmarks/sparse_linear.py
  --crossover``, see ``benchmarks/RESULTS.md``).

Both paths give the same result up to floating-point rounding (the sum runs in another
order) and the same gradients: ``grad_input = grad_out @ W`` (dense),
``grad_weight = grad_out^T @ x`` (event-driven with the CPU kernels; dense otherwise and
for double backward), ``grad_bias = sum(grad_out)``.
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from norse.torch.functional.validation import check_tensor

#: Valid values of ``method``.
METHODS = ("auto", "dense", "sparse")

#: ``"auto"`` keeps small products dense: it considers the sparse path only when
#: ``out_features * in_features * max(rows, 16)`` reaches this. Below it the dense product
#: takes less than the sparse path's fixed cost (about 40 us for counting, indices,
#: offsets and the gather); measured crossovers: 256 x 256 wins from 256 rows on, not at
#: 32; 1,024 x 1,024 wins from 1 row on.
MIN_SPARSE_WORK = 1 << 24

# Measured crossovers (activity up to which the sparse path is faster; one thread,
# dense and sparse timed alternately; benchmarks/sparse_linear.py --crossover):
#   rows:           1     4     32    256   1600
#   4096 x 4096    30%   30%   30%   30%   30%
#   1024 x 1024    20%   50%   20%   15%   20%
#   256 x 256       -     -     -    10%   7.5%

#: Activity (fraction of non-zero inputs) up to which ``"auto"`` takes the sparse path
#: for many rows (large batch, or time folded into the batch): the lowest crossover
#: measured for hundreds of rows (256 x 256 layer, 1,600 rows).
SPARSE_ACTIVITY_THRESHOLD = 0.075

#: The threshold for few rows (up to 16), where the dense product is a matrix-vector
#: product bound by reading the whole weight: the lowest crossover measured for 1-32 rows.
SPARSE_ACTIVITY_THRESHOLD_FEW_ROWS = 0.2

#: Output-column blocks of the sparse path: bytes of :math:`W^\top` per block (fits
#: the L2/L3 caches), used for weights of at least :data:`BLOCK_MIN_WEIGHT_BYTES` when
#: there are at least ``BLOCK_MIN_ACTIVE_PER_INPUT * in_features`` active inputs in all
#: (the copy of the blocks then costs less than re-reading gathered rows from memory).
#: 4,096 x 4,096, 1,600 rows at 2%: 177 ms unblocked, 36 ms in 32 blocks of 2 MiB.
BLOCK_BYTES = 2 << 20
BLOCK_MIN_WEIGHT_BYTES = 8 << 20
BLOCK_MIN_ACTIVE_PER_INPUT = 2


# Measured speed-ups of the CPU kernels over the dense product (benchmarks/
# sparse_linear.py --crossover, 1 thread, float32; inference / training step):
#   column-major weight      rows  1%          10%         20%         30%
#     1024 x 1024               1  3.0 / 1.3   2.3 / 1.0   2.0 / 1.1   1.7 / 1.0
#     1024 x 1024             256  14  / 7.2   3.1 / 2.7   1.7 / 1.7   1.2 / 1.3
#     4096 x 4096              64  13  / 1.9   2.6 / 1.4   1.4 / 1.1   1.0 / 1.0
#     256 x 256               256  5.8 / 3.2   2.5 / 1.9   1.6 / 1.5   1.3 / 1.1
#   row-major weight (transposed per call)
#     784 x 256              3200  7.9 / 9.5   3.1 / 2.9   2.0 / 1.7   1.4 / 1.2
#     784 x 256               256  4.4 / 2.7   2.3 / 1.7   1.5 / 1.3   1.1 / 1.0
#     4096 x 4096             256  1.6 / 1.1   1.0 / 0.9   0.7 / 0.7   0.6 / 0.6
#     256 x 10               3200  2.8 / 2.2   1.0 / 0.8   0.7 / 0.5   0.6 / 0.4

#: :data:`MIN_SPARSE_WORK` for the CPU kernels, whose fixed cost is a few microseconds:
#: 256 x 256 at 64 rows (2**22) already gains 1.3-2.9x up to 5% activity, 256 -> 10 at
#: 3,200 rows 1.2-5x up to 4% (the hidden layer of an MLP, often < 1% active).
MIN_KERNEL_WORK = 1 << 22

#: Activity (fraction of non-zero inputs) up to which ``"auto"`` takes the CPU kernels.
KERNEL_ACTIVITY_THRESHOLD = 0.2

#: The threshold for layers with fewer than :data:`NARROW_OUTPUT` outputs (the rows the
#: kernels add are then short; 256 x 10 at 3,200 rows breaks even near 8%).
KERNEL_ACTIVITY_THRESHOLD_NARROW = 0.04
NARROW_OUTPUT = 64

#: A row-major weight (``torch.nn.Linear``'s) is transposed on each call of the CPU
#: kernels; ``"auto"`` takes them only from this many rows on, times
#: ``weight.numel() / 2**22`` for larger weights (the copy of a weight larger than the
#: caches is slow: 54 ms for 4,096 x 4,096, the time of the dense product of 140 rows).
MIN_ROWS_TO_TRANSPOSE = 256


def kernel_activity_threshold(weight: torch.Tensor) -> float:
    """Highest activity at which ``"auto"`` takes the CPU kernels for ``weight``."""
    if weight.shape[0] < NARROW_OUTPUT:
        return KERNEL_ACTIVITY_THRESHOLD_NARROW
    return KERNEL_ACTIVITY_THRESHOLD


def activity_threshold(rows: int) -> float:
    """Highest activity (fraction of non-zero inputs) at which ``method="auto"`` takes
    the sparse path for an input of ``rows`` rows (all leading dimensions together):
    ``0.8 / sqrt(rows)`` clipped to [:data:`SPARSE_ACTIVITY_THRESHOLD`,
    :data:`SPARSE_ACTIVITY_THRESHOLD_FEW_ROWS`], a fit below the measured crossovers."""
    return min(
        SPARSE_ACTIVITY_THRESHOLD_FEW_ROWS,
        max(SPARSE_ACTIVITY_THRESHOLD, 0.8 / max(rows, 1) ** 0.5),
    )


def column_major(weight: torch.Tensor) -> torch.Tensor:
    """The values of ``weight`` ``(out_features, in_features)`` stored column-major:
    same shape and values, but ``weight.t()`` is contiguous, so the sparse path reads the
    rows of :math:`W^\\top` without a copy (:func:`torch.nn.functional.linear` is as fast
    with either layout). Gradients flow through it like through ``.clone()``."""
    return weight.t().contiguous().t()


def is_column_major(weight: torch.Tensor) -> bool:
    """Whether ``weight.t()`` is contiguous (see :func:`column_major`)."""
    return weight.dim() == 2 and weight.t().is_contiguous()


def _active(
    flat: torch.Tensor, method: str
) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """Row and column indices of the non-zero entries of the ``(rows, in_features)``
    input, or ``None`` when they are not all 1 and ``method`` is ``"auto"``."""
    rows, cols = flat.nonzero(as_tuple=True)
    if flat.dtype != torch.bool and rows.numel():
        values = flat[rows, cols]
        binary = values == 1
        if not bool(binary.all()):
            if method == "auto":
                return None
            bad = values[~binary][0].item()
            raise ValueError(
                f"input must be binary (0 or 1) for method='sparse', found the value "
                f"{bad!r}; use method='auto' (falls back to the dense product for "
                f"non-binary input) or method='dense'"
            )
    return rows, cols


def _gather_sum(
    rows: torch.Tensor,
    cols: torch.Tensor,
    n_rows: int,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
) -> torch.Tensor:
    """``(n_rows, out_features)``: per row, the sum of the weight columns at ``cols``
    (``rows`` sorted ascending, as :func:`torch.nonzero` returns them), plus ``bias``.

    With many active inputs and a weight larger than the caches, the output columns are
    done in blocks (:data:`BLOCK_BYTES` of :math:`W^\\top` each, copied contiguous), so
    that the rows gathered again and again come from the cache instead of memory.
    """
    out_features, in_features = weight.shape
    if cols.numel() == 0:
        out = weight.new_zeros(n_rows, out_features)
    else:
        offsets = weight.new_zeros(n_rows, dtype=torch.long)
        torch.cumsum(torch.bincount(rows, minlength=n_rows)[:-1], 0, out=offsets[1:])
        table = weight.t()
        row_bytes = in_features * weight.element_size()
        width = max(16, (BLOCK_BYTES // row_bytes) // 16 * 16)
        if (
            row_bytes * out_features < BLOCK_MIN_WEIGHT_BYTES
            or cols.numel() < BLOCK_MIN_ACTIVE_PER_INPUT * in_features
            or width >= out_features
        ):
            out = F.embedding_bag(cols, table.contiguous(), offsets, mode="sum")
        else:
            out = weight.new_empty(n_rows, out_features)
            for start in range(0, out_features, width):
                block = table[:, start : start + width].contiguous()
                out[:, start : start + width] = F.embedding_bag(
                    cols, block, offsets, mode="sum"
                )
    if bias is not None:
        out += bias
    return out


class _SpikeLinear(torch.autograd.Function):
    """Event-driven forward from the index tensors ``active = (rows, cols)``; dense
    gradients (``grad_input = grad_out @ W``, ``grad_weight = grad_out^T @ x``)."""

    @staticmethod
    def forward(ctx, input, weight, bias, active):
        ctx.save_for_backward(input, weight)
        return _event_driven(active, input, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        input, weight = ctx.saved_tensors
        return (*linear_gradients(grad_out, input, weight, ctx.needs_input_grad), None)


def linear_gradients(grad_out, input, weight, needs) -> tuple:
    """``(grad_input, grad_weight, grad_bias)`` of ``linear(input, weight, bias)``
    from ``grad_out``, dense (``None`` where ``needs[k]`` is false); the input may be
    spikes of any dtype, the weight gradient takes the weight's."""
    rows = input.numel() // weight.shape[1]  # (-1 is ambiguous with 0 outputs)
    grad_flat = grad_out.reshape(rows, weight.shape[0])
    grad_input = grad_weight = grad_bias = None
    if needs[0]:
        grad_input = (grad_flat @ weight).reshape(input.shape)
    if needs[1]:
        flat = input.reshape(-1, weight.shape[1]).to(weight.dtype)
        grad_weight = grad_flat.t() @ flat
    if needs[2]:
        grad_bias = grad_flat.sum(0)
    return grad_input, grad_weight, grad_bias


def _event_driven(active, input, weight, bias) -> torch.Tensor:
    """``(..., out_features)`` from the active inputs found by :func:`_active`."""
    rows, cols = active
    n_rows = input.numel() // weight.shape[1]
    out = _gather_sum(rows, cols, n_rows, weight, bias)
    return out.reshape(*input.shape[:-1], weight.shape[0])


def records_gradient(
    input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]
) -> bool:
    """Whether autograd records ``linear(input, weight, bias)``: gradients are on and
    one of the tensors requires grad. The event-driven products then go through their
    autograd function, else they run without one."""
    return torch.is_grad_enabled() and any(
        tensor is not None and tensor.requires_grad for tensor in (input, weight, bias)
    )


def _torch_path_wins(flat: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``"auto"`` takes the index-tensor path: a CPU input, a column-major
    weight, a large enough product and low enough activity."""
    return (
        flat.device.type == "cpu"
        and weight.numel() * max(flat.shape[0], 16) >= MIN_SPARSE_WORK
        and weight.t().is_contiguous()
        and not torch.compiler.is_compiling()
        and not torch._C._are_functorch_transforms_active()
        and int(torch.count_nonzero(flat))
        <= activity_threshold(flat.shape[0]) * flat.numel()
    )


def fits_event_driven(input: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``input`` and ``weight`` fit the event-driven product: a non-empty input
    ``(..., in_features)`` in the weight's dtype (or ``torch.bool``) on its device, and
    a 2-D weight. Otherwise :func:`spike_linear_unchecked` leaves them to the dense
    product (and its errors)."""
    return not (
        input.numel() == 0
        or input.dim() == 0
        or weight.dim() != 2
        or input.shape[-1] != weight.shape[1]
        or input.dtype not in (weight.dtype, torch.bool)
        or input.device != weight.device
    )


def _dense(
    input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]
) -> torch.Tensor:
    if input.dtype == torch.bool:
        input = input.to(weight.dtype)
    return F.linear(input, weight, bias)


def spike_linear_unchecked(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    method: str = "auto",
) -> torch.Tensor:
    """:func:`spike_linear` without its argument checks, for step functions in hot
    loops (:func:`~norse.torch.functional.leaky_integrator.li_step`): mismatched
    arguments go to :func:`torch.nn.functional.linear` (and its errors), a non-binary
    input with ``"auto"`` to the dense product. PyTorch operations only (the index-tensor
    path); :func:`norse.torch.fused.spike_linear.spike_linear_unchecked` adds the CPU
    kernels."""
    if method == "dense" or not fits_event_driven(input, weight):
        return _dense(input, weight, bias)
    flat = input.reshape(-1, weight.shape[1])
    if method == "auto" and not _torch_path_wins(flat, weight):
        return _dense(input, weight, bias)
    active = _active(flat, method)
    if active is None:  # "auto" and a value that is not 0 or 1
        return _dense(input, weight, bias)
    if records_gradient(input, weight, bias):
        return _SpikeLinear.apply(input, weight, bias, active)
    return _event_driven(active, input, weight, bias)


def check_arguments(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    method: str,
) -> None:
    """Raises the errors of :func:`spike_linear` for its arguments (see there)."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    for name, tensor in (("input", input), ("weight", weight), ("bias", bias)):
        if not (name == "bias" and tensor is None):
            check_tensor(tensor, name)
    if not weight.is_floating_point():
        raise TypeError(f"weight must be floating-point, got dtype {weight.dtype}")
    if weight.dim() != 2:
        raise ValueError(
            f"weight must be 2-D (out_features, in_features), got shape "
            f"{tuple(weight.shape)}"
        )
    if input.dim() == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"input must end in in_features={weight.shape[1]} (weight has shape "
            f"{tuple(weight.shape)}), got input of shape {tuple(input.shape)}"
        )
    if input.dtype not in (weight.dtype, torch.bool):
        raise TypeError(
            f"input has dtype {input.dtype} but weight has {weight.dtype}; spikes must "
            f"have the weight's dtype (or be torch.bool): convert with "
            f".to({weight.dtype})"
        )
    if input.device != weight.device:
        raise ValueError(
            f"input is on device {input.device} but weight is on {weight.device}; "
            f"move one of them"
        )
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise ValueError(
                f"bias must have shape (out_features,) = ({weight.shape[0]},), got "
                f"{tuple(bias.shape)}"
            )
        if bias.dtype != weight.dtype or bias.device != weight.device:
            raise TypeError(
                f"bias must have the weight's dtype and device ({weight.dtype}, "
                f"{weight.device}), got ({bias.dtype}, {bias.device})"
            )


def spike_linear(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    method: str = "auto",
) -> torch.Tensor:
    r"""``input @ weight.T + bias`` for binary spike input, event-driven when sparse.

    The reference, in PyTorch operations; the same function with the Numba CPU kernels
    is :func:`norse.torch.fused.spike_linear.spike_linear` (what the layers use).

    Parameters:
        input (torch.Tensor): spikes ``(..., in_features)``, values 0 or 1, in the
            weight's dtype (or ``torch.bool``)
        weight (torch.Tensor): ``(out_features, in_features)``
        bias (torch.Tensor, optional): ``(out_features,)``
        method (str): ``"auto"`` (default; sparse for a binary input with low activity
            on the CPU, see :func:`activity_threshold`), ``"dense"``
            (:func:`torch.nn.functional.linear`) or ``"sparse"`` (event-driven on any
            device; raises for non-binary input)

    Returns:
        ``(..., out_features)`` in the weight's dtype; equal to
        ``torch.nn.functional.linear(input, weight, bias)`` up to rounding, with the same
        gradients (input, weight and bias).

    Raises:
        ValueError: unknown ``method``; shape mismatch of ``input``, ``weight`` or
            ``bias``; tensors on different devices; ``method="sparse"`` with an input
            that is not binary.
        TypeError: a non-tensor argument, or dtypes that differ.

    Example:
        >>> w = torch.randn(128, 1024)
        >>> spikes = (torch.rand(32, 1024) < 0.02).float()
        >>> with torch.no_grad():
        ...     y = spike_linear(spikes, w)  # sparse path: ~20 active inputs per row
    """
    check_arguments(input, weight, bias, method)
    return spike_linear_unchecked(input, weight, bias, method)
