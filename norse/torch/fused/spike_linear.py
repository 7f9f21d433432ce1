r"""The event-driven weight product for binary spike input, with the Numba CPU kernels.

:func:`spike_linear` takes the arguments of
:func:`norse.torch.functional.sparse.spike_linear` (the reference, in PyTorch
operations), gives the same results up to rounding, the same gradients and the same
errors, and runs the kernels of :mod:`.cpu_linear` where they apply: a CPU input in
plain eager mode (no :func:`torch.compile`, tracing, ``torch.func`` transform or
dispatch mode, which must all see PyTorch operations), float32/float64 (or bool) spikes
and a float32/float64 weight, with Numba installed. Everything else goes to the
reference.

With the kernels, ``method="auto"`` looks at the activity only for a large enough
product (:data:`~norse.torch.functional.sparse.MIN_KERNEL_WORK`) and, for a row-major
weight, enough rows to pay for its transposition
(:data:`~norse.torch.functional.sparse.MIN_ROWS_TO_TRANSPOSE`); it then takes the
kernels when the kernels' scan finds a binary input with an activity of at most
:func:`~norse.torch.functional.sparse.kernel_activity_threshold`, and the dense product
otherwise. The thresholds are read from :mod:`norse.torch.functional.sparse` at each
call. The weight gradient is event-driven too (the same gather over the transposed
index), except under double backward, which needs a differentiable one.

:class:`~norse.torch.module.sparse.SpikeLinear`,
:class:`~norse.torch.module.leaky_integrator.LILinearCell` and a ``torch.nn.Linear``
inside :class:`~norse.torch.SequentialState` or :class:`~norse.torch.Lift`
(:func:`.layers.apply_layer`) use this function.
"""

from typing import Optional

import torch

from norse.torch.functional import sparse
from norse.torch.fused import registry


def _cpu_kernels():
    """:mod:`.cpu_linear` (Numba kernels), or ``None`` without Numba."""
    return registry.cpu_kernel_module("cpu_linear")


def _kernels_for(input: torch.Tensor, weight: torch.Tensor):
    """The CPU kernels when they take this input and weight (see the module doc),
    else ``None``."""
    if input.device.type != "cpu" or type(input) is not torch.Tensor:
        return None
    kernels = _cpu_kernels()
    if (
        kernels is None
        or not registry.plain_eager()
        or input.dtype not in kernels.INPUT_DTYPES
        or weight.dtype not in kernels.WEIGHT_DTYPES
    ):
        return None
    return kernels


def _kernels_may_win(rows: int, weight: torch.Tensor) -> bool:
    """Whether ``"auto"`` looks at the activity to choose the CPU kernels."""
    if weight.numel() * max(rows, 16) < sparse.MIN_KERNEL_WORK:
        return False
    return weight.t().is_contiguous() or rows >= sparse.MIN_ROWS_TO_TRANSPOSE * max(
        1, weight.numel() >> 22
    )


class _KernelSpikeLinear(torch.autograd.Function):
    """The kernels' forward from the active inputs they found (``active``, a
    ``cpu_linear.ActiveInputs``); their weight gradient, or the dense one when a graph
    of the gradient is wanted (double backward); the input gradient dense."""

    @staticmethod
    def forward(ctx, input, weight, bias, active):
        ctx.save_for_backward(input, weight)
        ctx.active = active
        return _event_driven(active, input, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        input, weight = ctx.saved_tensors
        needs = list(ctx.needs_input_grad[:3])
        # The kernels' weight gradient has no graph: double backward takes the dense one.
        kernel_weight_grad = needs[1] and not torch.is_grad_enabled()
        if kernel_weight_grad:
            needs[1] = False
        grad_input, grad_weight, grad_bias = sparse.linear_gradients(
            grad_out, input, weight, needs
        )
        if kernel_weight_grad:
            rows = input.numel() // weight.shape[1]
            grad_flat = grad_out.reshape(rows, weight.shape[0])
            grad_weight = _cpu_kernels().binary_weight_grad(ctx.active, grad_flat)
        return grad_input, grad_weight, grad_bias, None


def _event_driven(active, input, weight, bias) -> torch.Tensor:
    """``(..., out_features)``: the kernels' sums of the active inputs' columns."""
    out = _cpu_kernels().binary_linear(active, weight, bias)
    return out.reshape(*input.shape[:-1], weight.shape[0])


def spike_linear_unchecked(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    method: str = "auto",
) -> torch.Tensor:
    """:func:`spike_linear` without its argument checks, for hot loops (the layers):
    mismatched arguments go to :func:`torch.nn.functional.linear` (and its errors), a
    non-binary input with ``"auto"`` to the dense product."""
    if method == "dense" or not sparse.fits_event_driven(input, weight):
        return sparse.spike_linear_unchecked(input, weight, bias, "dense")
    kernels = _kernels_for(input, weight)
    if kernels is None:
        return sparse.spike_linear_unchecked(input, weight, bias, method)
    flat = input.reshape(-1, weight.shape[1])
    if method == "auto" and not _kernels_may_win(flat.shape[0], weight):
        return sparse.spike_linear_unchecked(input, weight, bias, "dense")
    active = kernels.active_inputs(flat.detach())
    if active is None:
        # A value that is not 0 or 1 (or -0.0, which the index tensors take as 0):
        # "auto" is dense, "sparse" the reference's (which raises for non-binary).
        return sparse.spike_linear_unchecked(
            input, weight, bias, "dense" if method == "auto" else method
        )
    if (
        method == "auto"
        and active.count > sparse.kernel_activity_threshold(weight) * flat.numel()
    ):
        return sparse.spike_linear_unchecked(input, weight, bias, "dense")
    if sparse.records_gradient(input, weight, bias):
        return _KernelSpikeLinear.apply(input, weight, bias, active)
    return _event_driven(active, input, weight, bias)


def spike_linear(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    method: str = "auto",
) -> torch.Tensor:
    """``input @ weight.T + bias`` for binary spike input, event-driven when sparse,
    with the CPU kernels where they apply (see the module doc).

    Arguments, results, gradients and errors: those of
    :func:`norse.torch.functional.sparse.spike_linear`.

    Example:
        >>> w = torch.randn(128, 1024)
        >>> spikes = (torch.rand(32, 1024) < 0.02).float()
        >>> with torch.no_grad():
        ...     y = spike_linear(spikes, w)  # the CPU kernels: ~20 active inputs per row
    """
    sparse.check_arguments(input, weight, bias, method)
    return spike_linear_unchecked(input, weight, bias, method)
