"""Input checks shared by the networks of the model zoo."""

from typing import Any, Optional

import torch

from norse.torch.functional.validation import check_sequence


def first_conv(module: torch.nn.Module) -> Optional[torch.nn.Conv2d]:
    """The first ``Conv2d`` inside ``module`` (None if it has none)."""
    return next((m for m in module.modules() if isinstance(m, torch.nn.Conv2d)), None)


def check_image_sequence(
    x: Any, network: str, conv: Optional[torch.nn.Conv2d], min_size: int = 1
) -> None:
    """Raises a ``TypeError``/``ValueError`` naming the problem unless ``x`` is a
    tensor ``(T, batch, C, H, W)`` with ``T >= 1``, the channels and dtype of the
    network's first convolution ``conv`` and images of at least ``min_size`` pixels
    a side (the convolutions and poolings need them)."""
    channels = conv.in_channels if conv is not None else "C"
    layout = f"(T, batch, channels, height, width) = (T, batch, {channels}, H, W)"
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{network} takes a tensor {layout}, got {type(x).__name__}")
    if x.dim() != 5:
        raise ValueError(
            f"{network} takes input of shape {layout}, got shape {tuple(x.shape)}"
        )
    check_sequence(x, "x")
    if conv is not None and x.shape[2] != conv.in_channels:
        raise ValueError(
            f"x must have {conv.in_channels} channels in dimension 2, got shape "
            f"{tuple(x.shape)}"
        )
    if conv is not None and x.dtype != conv.weight.dtype:
        raise TypeError(
            f"x must have the dtype of {network}'s weights, {conv.weight.dtype}, got "
            f"{x.dtype} (convert the input or the network with .to(dtype))"
        )
    if min(x.shape[3:]) < min_size:
        raise ValueError(
            f"{network} needs images of at least {min_size}x{min_size} pixels for its "
            f"convolutions and poolings, got {x.shape[3]}x{x.shape[4]}"
        )
