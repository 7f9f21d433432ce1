"""Spike trains to spike times, with a gradient for the times.

:class:`ToSpikeTimes` turns spikes of shape ``(T, ...)`` into the time-step indices of the
first ``spike_count`` spikes of every element, shape ``(min(spike_count, T), ...)``, in
ascending order; missing spikes read ``inf``. Its backward pass gives every returned
spike the local gradient ``-1`` (an earlier spike means a smaller index), and zero to
all other entries, as in Norse 1.1.

Example:
    >>> import torch
    >>> spikes = torch.zeros(5, 1, 2)
    >>> spikes[1, 0, 0] = spikes[3, 0, 0] = 1.0
    >>> ToSpikeTimes.apply(spikes, 2)[:, 0]
    tensor([[1., inf],
            [3., inf]])
"""

from typing import Any, Tuple, Union

import torch

from norse.torch.functional.validation import check_count


class ToSpikeTimes(torch.autograd.Function):
    """Indices (along time) of the first ``spike_count`` spikes of each element.

    ``ToSpikeTimes.apply(spike_input, spike_count)``:

    Parameters:
        spike_input (torch.Tensor): spikes of shape ``(T, ...)``; any non-zero entry is
            a spike
        spike_count (int or torch.Tensor): how many spikes to return per element
            (non-negative); at most ``T`` are returned

    Returns:
        Indices of shape ``(min(spike_count, T), ...)`` in ascending order, ``inf`` where
        an element has fewer spikes; floating dtype of the input (default dtype for
        integer input).
    """

    @staticmethod
    def forward(
        ctx: Any, spike_input: torch.Tensor, spike_count: Union[int, torch.Tensor]
    ) -> torch.Tensor:
        if not isinstance(spike_input, torch.Tensor) or spike_input.dim() < 1:
            raise ValueError(
                "spike_input must be a tensor with a leading time dimension (T, ...), "
                f"got {spike_input!r}"
            )
        count = min(check_count(spike_count, "spike_count", 0), spike_input.shape[0])
        dtype = (
            spike_input.dtype
            if spike_input.is_floating_point()
            else torch.get_default_dtype()
        )
        steps = spike_input.shape[0]
        times = torch.arange(steps, dtype=dtype, device=spike_input.device).view(
            steps, *([1] * (spike_input.dim() - 1))
        )
        inf = torch.full((), float("inf"), dtype=dtype, device=spike_input.device)
        indexed = torch.where(spike_input != 0, times, inf)
        # topk of the smallest entries, ascending: the first `count` spike times
        indices = torch.topk(indexed, count, dim=0, largest=False, sorted=True).values
        ctx.save_for_backward(indices)
        ctx.input_shape = spike_input.shape
        ctx.input_dtype = spike_input.dtype
        return indices

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> Tuple[torch.Tensor, None]:
        (indices,) = ctx.saved_tensors
        found = torch.isfinite(indices)
        positions = torch.where(found, indices, torch.zeros_like(indices)).long()
        updates = torch.where(found, -grad_output, torch.zeros_like(grad_output))
        grad_input = torch.zeros(
            ctx.input_shape, dtype=grad_output.dtype, device=grad_output.device
        )
        # Each returned spike sits at its own time step, so no two updates collide
        # except the masked (zero) ones of missing spikes.
        grad_input.scatter_add_(0, positions, updates)
        return grad_input.to(ctx.input_dtype), None
