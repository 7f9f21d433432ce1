r"""Event-driven weight products for binary spike input.

A linear synapse maps spikes :math:`x \in \{0, 1\}^{\ldots \times n_{in}}` to currents

.. math::
    y = x W^\top + b, \qquad y_m = b + \sum_{k:\, x_{mk} = 1} W_{:,k},

so for a binary input each output row is the sum of the weight columns of its *active*
inputs. When few inputs spike (a spiking network typically has < 2% of its neurons
active per step) it is cheaper to gather and add those columns than to multiply the
whole matrix: the work is ``active inputs x out_features`` instead of
``in_features x out_features`` per row.

Sparse path: the indices of the active inputs (:func:`torch.nonzero`), then per row a sum
of rows of :math:`W^\top` (:func:`torch.nn.functional.embedding_bag`, ``mode="sum"``). It
reads :math:`W^\top` without a copy when the weight is stored *column-major*
(``weight.t()`` contiguous, see :func:`column_major`), as :class:`~norse.torch.module.sparse.SpikeLinear`
and :class:`~norse.torch.module.leaky_integrator.LILinearCell` store theirs; a row-major
weight is transposed on each sparse call. Nothing is cached, so every change of the weight
(optimizer steps, ``weight.data`` edits, ``load_state_dict``) is seen at once.

:func:`spike_linear` chooses with ``method``:

* ``"dense"``: :func:`torch.nn.functional.linear`;
* ``"sparse"``: the event-driven path on any device (raises for non-binary input);
* ``"auto"`` (default): ``"sparse"`` on the CPU for a column-major weight, a large
  enough product (:data:`MIN_SPARSE_WORK`) and a binary input whose activity (fraction of
  non-zero inputs) is at most :func:`activity_threshold` of its number of rows;
  ``"dense"`` otherwise (also under :func:`torch.compile` and ``torch.func``
  transforms). The thresholds were measured on a 2-core AMD EPYC (AVX-512) with PyTorch
  2.13 (``benchmarks/sparse_linear.py --crossover``, see ``benchmarks/RESULTS.md``).

Both paths give the same result up to floating-point rounding (the sum runs in another
order) and the same gradients: ``grad_input = grad_out @ W``,
``grad_weight = grad_out^T @ x``, ``grad_bias = sum(grad_out)``. Inference
(:func:`torch.no_grad`) is where the sparse path pays off; under autograd the forward
pass is event-driven and the backward pass dense.
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

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


def _dense(
    input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]
) -> torch.Tensor:
    if input.dtype == torch.bool:
        input = input.to(weight.dtype)
    return F.linear(input, weight, bias)


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
    """Event-driven forward, dense backward (the gradients of ``F.linear``)."""

    @staticmethod
    def forward(ctx, input, weight, bias, rows, cols):
        flat = input.reshape(-1, weight.shape[1])
        ctx.save_for_backward(input, weight)
        ctx.has_bias = bias is not None
        out = _gather_sum(rows, cols, flat.shape[0], weight, bias)
        return out.reshape(*input.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad_out):
        input, weight = ctx.saved_tensors
        grad_flat = grad_out.reshape(-1, weight.shape[0])
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = (grad_flat @ weight).reshape(input.shape)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_flat.t() @ input.reshape(-1, weight.shape[1]).to(
                weight.dtype
            )
        if ctx.needs_input_grad[2]:
            grad_bias = grad_flat.sum(0)
        return grad_input, grad_weight, grad_bias, None, None


def _spike_linear(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    method: str = "auto",
) -> torch.Tensor:
    """:func:`spike_linear` without its argument checks, for step functions in hot
    loops: mismatched arguments go to :func:`torch.nn.functional.linear` (and its
    errors), a non-binary input with ``"auto"`` to the dense product."""
    if (
        method == "dense"
        or input.numel() == 0
        or input.dim() == 0
        or weight.dim() != 2
        or input.shape[-1] != weight.shape[1]
        or input.dtype not in (weight.dtype, torch.bool)
        or input.device != weight.device
    ):
        return _dense(input, weight, bias)
    flat = input.reshape(-1, weight.shape[1])
    if method == "auto":
        if (
            input.device.type != "cpu"
            or weight.numel() * max(flat.shape[0], 16) < MIN_SPARSE_WORK
            or not weight.t().is_contiguous()
            or torch.compiler.is_compiling()
            or torch._C._are_functorch_transforms_active()
        ):
            return _dense(input, weight, bias)
        active = int(torch.count_nonzero(flat))
        if active > activity_threshold(flat.shape[0]) * flat.numel():
            return _dense(input, weight, bias)
    indices = _active(flat, method)
    if indices is None:
        return _dense(input, weight, bias)
    rows, cols = indices
    if torch.is_grad_enabled() and (
        input.requires_grad
        or weight.requires_grad
        or (bias is not None and bias.requires_grad)
    ):
        return _SpikeLinear.apply(input, weight, bias, rows, cols)
    out = _gather_sum(rows, cols, flat.shape[0], weight, bias)
    return out.reshape(*input.shape[:-1], weight.shape[0])


def _check(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    method: str,
) -> None:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    for name, tensor in (("input", input), ("weight", weight), ("bias", bias)):
        if not (
            isinstance(tensor, torch.Tensor) or (name == "bias" and tensor is None)
        ):
            raise TypeError(
                f"{name} must be a torch.Tensor, got {type(tensor).__name__}"
            )
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
    _check(input, weight, bias, method)
    return _spike_linear(input, weight, bias, method)
