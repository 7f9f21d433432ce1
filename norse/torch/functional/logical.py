"""Logic on spike (bit) vectors; inputs are tensors of 0s and 1s."""

import torch

from norse.torch.functional.threshold import super_fn


def logical_and(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 where both ``x`` and ``y`` spike."""
    return x * y


def logical_xor(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 where exactly one of ``x`` and ``y`` spikes."""
    return torch.abs(x - y)


def logical_or(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 where ``x`` or ``y`` spikes (SuperSpike surrogate gradient)."""
    return super_fn(x + y)


def muller_c(
    y_prev: torch.Tensor, x_1: torch.Tensor, x_2: torch.Tensor
) -> torch.Tensor:
    """Next state of a Muller C-element given its previous output and two inputs."""
    return super_fn(x_1 * x_2 + (x_1 + x_2) * y_prev)


def posedge_detector(z: torch.Tensor, z_prev: torch.Tensor) -> torch.Tensor:
    """1 where a spike train goes from 0 (``z_prev``) to 1 (``z``)."""
    return (1 - z_prev) * z
