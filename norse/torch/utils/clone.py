"""Tensor cloning helper kept for Norse 1.1 compatibility."""

from typing import Any, Optional, Union

import torch


def clone_tensor(
    x: Any, device: Optional[Union[str, torch.device]] = None
) -> torch.Tensor:
    """A detached copy of ``x`` (a tensor or anything ``torch.as_tensor`` accepts; Norse
    1.1 raised for numbers), moved to ``device`` when one is given."""
    cloned = torch.as_tensor(x).detach().clone()
    return cloned if device is None else cloned.to(device)
