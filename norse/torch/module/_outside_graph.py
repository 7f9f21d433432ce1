"""What :func:`torch.compile` must leave to eager mode (imported only while compiling:
:func:`torch.compiler.disable` loads TorchDynamo)."""

import torch


@torch.compiler.disable
def require_grad(tensor: torch.Tensor) -> None:
    """Makes ``tensor``, a graph output, a leaf that requires grad."""
    tensor.requires_grad_(True)
