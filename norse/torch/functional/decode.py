"""Decoders: reduce spike trains or voltage traces over time to numbers.

They aggregate the first (time) dimension by default, like the PyTorch reductions they
wrap, and are plain module-level functions, so they can be pickled or passed to
:mod:`~norse.torch.functional.lift`-ed modules. The module forms are
:class:`~norse.torch.module.decode.SumDecoder` and
:class:`~norse.torch.module.decode.MaxDecoder`; spike *times* are decoded by
:mod:`~norse.torch.functional.spikes_to_times_decoder`.

Example (the max-over-time readout of Norse's MNIST task):
    >>> import torch
    >>> voltages = torch.randn(100, 32, 10)        # (T, batch, classes) from an LI layer
    >>> logits = max_decode(voltages)              # (batch, classes)
    >>> log_p = torch.nn.functional.log_softmax(logits, dim=1)
"""

import torch


def _check(tensor: torch.Tensor, dimension: int, name: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"{name}: tensor must be a torch.Tensor, got {type(tensor).__name__}"
        )
    if tensor.is_complex():
        raise TypeError(f"{name}: tensor must be real, got dtype {tensor.dtype}")
    if isinstance(dimension, bool) or not isinstance(dimension, int):
        raise TypeError(f"{name}: dimension must be an int, got {dimension!r}")
    if not -tensor.dim() <= dimension < tensor.dim():
        raise ValueError(
            f"{name}: dimension {dimension} does not exist in a tensor of shape "
            f"{tuple(tensor.shape)} (time is dimension 0)"
        )


def sum_decode(tensor: torch.Tensor, dimension: int = 0) -> torch.Tensor:
    """Sums over ``dimension`` (default 0, time): spike counts from spikes ``(T, ...)``.

    Returns:
        ``tensor`` summed over ``dimension``, e.g. shape ``(...)`` for input ``(T, ...)``.
    """
    _check(tensor, dimension, "sum_decode")
    return tensor.sum(dimension)


def max_decode(tensor: torch.Tensor, dimension: int = 0) -> torch.Tensor:
    """Maximum over ``dimension`` (default 0, time), returning the *values* only.

    This is the readout of Norse's MNIST task, ``torch.max(voltages, 0)[0]``: the peak
    membrane voltage of each output neuron over the sequence, used as its logit. The
    gradient flows to the time step of the maximum.

    Returns:
        The maxima, e.g. shape ``(...)`` for input ``(T, ...)``.
    """
    _check(tensor, dimension, "max_decode")
    if tensor.shape[dimension] == 0:
        raise ValueError(
            f"max_decode: dimension {dimension} of the tensor is empty "
            f"(shape {tuple(tensor.shape)}); a maximum needs at least one step"
        )
    return tensor.max(dimension).values
