"""Membrane reset after a spike.

A reset method maps (spikes ``z``, voltage ``v``, reset value, threshold) to the new voltage.
"""

from typing import Callable

import torch

ResetMethod = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor
]


def reset_value(
    z: torch.Tensor, v: torch.Tensor, reset: torch.Tensor, th: torch.Tensor
) -> torch.Tensor:
    """Sets spiking neurons to ``reset``: :math:`v' = (1 - z) v + z v_{reset}`."""
    return (1 - z) * v + z * reset


def reset_subtract(
    z: torch.Tensor, v: torch.Tensor, reset: torch.Tensor, th: torch.Tensor
) -> torch.Tensor:
    """Subtracts the threshold from spiking neurons: :math:`v' = v - z v_{th}`."""
    return (1 - z) * v + z * (v - th)
