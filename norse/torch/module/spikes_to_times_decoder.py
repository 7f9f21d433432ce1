"""Spike trains to spike times as a module; see
:mod:`norse.torch.functional.spikes_to_times_decoder`."""

from typing import Union

import torch

from norse.torch.functional.spikes_to_times_decoder import ToSpikeTimes
from norse.torch.functional.validation import check_count, check_dt


class SpikesToTimesDecoder(torch.nn.Module):
    """Decodes spikes ``(T, ...)`` into the times of the first ``spike_count`` spikes of
    every element, shape ``(min(spike_count, T), ...)``, ascending; ``inf`` marks a
    missing spike. Gradients reach the returned spikes (``-1`` per index, times ``dt``
    for times), as in Norse 1.1.

    Example:
        >>> spikes = torch.zeros(10, 2, 3)
        >>> spikes[2] = 1.0
        >>> SpikesToTimesDecoder()(spikes).shape      # first spike times: 0.002 s
        torch.Size([1, 2, 3])

    Parameters:
        spike_count (int or torch.Tensor): spikes to return per element, default 1
        convert_indices_to_times (bool): return times (index * ``dt``, in s) instead of
            time-step indices, default True
        dt (float): time step (s) of the input, default 0.001
    """

    def __init__(
        self,
        spike_count: Union[int, torch.Tensor] = torch.as_tensor(1),
        convert_indices_to_times: bool = True,
        dt: float = 1e-3,
    ):
        super().__init__()
        check_count(spike_count, "spike_count", 0)
        self.spike_count = spike_count
        self.convert_to_time = bool(convert_indices_to_times)
        self.dt = check_dt(dt)
        self.decoding_fn = ToSpikeTimes.apply

    def extra_repr(self) -> str:
        return (
            f"spike_count={int(self.spike_count)}, "
            f"convert_indices_to_times={self.convert_to_time}, dt={self.dt}"
        )

    def forward(self, spike_input: torch.Tensor) -> torch.Tensor:
        spike_indices = self.decoding_fn(spike_input, self.spike_count)
        if self.convert_to_time:
            spike_indices = spike_indices * self.dt
        return spike_indices
