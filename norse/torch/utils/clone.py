"""Tensor cloning helper kept for Norse 1.1 compatibility."""

import torch


def clone_tensor(x: torch.Tensor) -> torch.Tensor:
    """A detached copy of ``x`` (a tensor or anything ``torch.as_tensor`` accepts)."""
    return torch.as_tensor(x).detach().clone()
