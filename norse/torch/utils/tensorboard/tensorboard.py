"""Forward hooks that log the spikes of a layer to TensorBoard.

Each function returns a hook for ``torch.nn.Module.register_forward_hook`` on a module
that returns ``(spikes, state)`` (every neuron module of Norse). Each call of the module
logs one value under ``key`` with ``writer.add_scalar``, ``add_histogram`` or
``add_image`` called as ``(key, value, step)``. The step counts the calls of the module;
it is kept on the module, in an attribute per kind of hook (``norse_hook_spike_image``
...), so a hook made again continues the count.

Example:
    >>> import torch
    >>> from torch.utils.tensorboard import SummaryWriter
    >>> import norse.torch as norse
    >>> from norse.torch.utils.tensorboard import tensorboard
    >>> writer = SummaryWriter()  # doctest: +SKIP
    >>> layer = norse.LIFCell()
    >>> handle = layer.register_forward_hook(
    ...     tensorboard.hook_spike_activity_mean("lif", writer))  # doctest: +SKIP

The writer is any object with ``add_scalar``, ``add_histogram`` and ``add_image``, such
as ``torch.utils.tensorboard.SummaryWriter`` (needs ``pip install tensorboard``); this
module itself imports nothing from TensorBoard.
"""

import math
from typing import TYPE_CHECKING, Any, Callable, Tuple

import torch

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    from torch.utils.tensorboard import SummaryWriter

__all__ = [
    "hook_spike_activity_mean",
    "hook_spike_activity_sum",
    "hook_spike_histogram_mean",
    "hook_spike_histogram_sum",
    "hook_spike_image",
]

Hook = Callable[[torch.nn.Module, Tuple[Any, ...], Any], None]


def _spikes_of(module: torch.nn.Module, output: Any) -> torch.Tensor:
    # the first entry of (spikes, state); a bare tensor would give its first row
    if not isinstance(output, (tuple, list)) or not output:
        raise TypeError(
            "the TensorBoard spike hooks need a module that returns (spikes, state); "
            f"{type(module).__name__} returned {type(output).__name__}"
        )
    spikes = output[0]
    if not isinstance(spikes, torch.Tensor):
        raise TypeError(
            f"{type(module).__name__} returned spikes of type {type(spikes).__name__}, "
            "expected a torch.Tensor"
        )
    if spikes.is_sparse:
        spikes = spikes.to_dense()
    return spikes.detach()


def _writer_method(writer: "SummaryWriter", name: str) -> Callable[..., Any]:
    method = getattr(writer, name, None)
    if not callable(method):
        raise TypeError(
            f"writer must be a SummaryWriter (an object with {name}()), "
            f"got {type(writer).__name__}"
        )
    return method


def _make_hook(
    writer: "SummaryWriter",
    method: str,
    key: str,
    counter: str,
    transform: Callable[[torch.Tensor], torch.Tensor],
) -> Hook:
    """A hook that calls ``writer.<method>(key, transform(spikes), step)``, where the
    step is the module attribute ``counter`` (then incremented)."""
    write = _writer_method(writer, method)

    def hook(module: torch.nn.Module, _inputs: Tuple[Any, ...], output: Any) -> None:
        step = getattr(module, counter, 0)
        write(key, transform(_spikes_of(module, output)), step)
        setattr(module, counter, step + 1)

    return hook


def _as_float(spikes: torch.Tensor) -> torch.Tensor:
    # boolean or integer spikes have no mean
    return spikes if spikes.is_floating_point() else spikes.float()


def _mean(spikes: torch.Tensor) -> torch.Tensor:
    return _as_float(spikes).mean()


def _sum(spikes: torch.Tensor) -> torch.Tensor:
    return spikes.sum()


def hook_spike_activity_mean(key: str, writer: "SummaryWriter") -> Hook:
    """A hook that logs the *mean* spike activity of each call (all spikes of the call
    averaged: the fraction of neurons that fired) as a scalar line under ``key``.

    Logs ``writer.add_scalar(key, spikes.mean(), step)`` (a 0-dimensional tensor).

    Arguments:
        key (str): the name of the plot in TensorBoard
        writer (SummaryWriter): where to log

    Returns:
        A hook for ``module.register_forward_hook``.
    """
    return _make_hook(
        writer, "add_scalar", key, "norse_hook_spike_activity_mean", _mean
    )


def hook_spike_activity_sum(key: str, writer: "SummaryWriter") -> Hook:
    """A hook that logs the *total* number of spikes of each call as a scalar line
    under ``key``: ``writer.add_scalar(key, spikes.sum(), step)``.

    Arguments:
        key (str): the name of the plot in TensorBoard
        writer (SummaryWriter): where to log

    Returns:
        A hook for ``module.register_forward_hook``.
    """
    return _make_hook(writer, "add_scalar", key, "norse_hook_spike_activity_sum", _sum)


def hook_spike_histogram_mean(key: str, writer: "SummaryWriter") -> Hook:
    """A hook that logs the *mean* spike activity of each call (all spikes averaged) to
    a histogram under ``key``: ``writer.add_histogram(key, spikes.mean(), step)``;
    TensorBoard's histogram and distribution views then show how it varies over the
    calls.

    Arguments:
        key (str): the name of the histogram in TensorBoard
        writer (SummaryWriter): where to log

    Returns:
        A hook for ``module.register_forward_hook``.
    """
    return _make_hook(
        writer, "add_histogram", key, "norse_hook_spike_histogram_mean", _mean
    )


def hook_spike_histogram_sum(key: str, writer: "SummaryWriter") -> Hook:
    """A hook that logs the *total* number of spikes of each call to a histogram under
    ``key``: ``writer.add_histogram(key, spikes.sum(), step)``.

    Arguments:
        key (str): the name of the histogram in TensorBoard
        writer (SummaryWriter): where to log

    Returns:
        A hook for ``module.register_forward_hook``.
    """
    return _make_hook(
        writer, "add_histogram", key, "norse_hook_spike_histogram_sum", _sum
    )


def _as_image(spikes: torch.Tensor) -> torch.Tensor:
    # one grey channel (TensorBoard's default CHW layout): one column per entry of the
    # last dimension (the neurons), one row per entry of all the others (batch, time...)
    if spikes.dim() == 0:
        return _as_float(spikes).reshape(1, 1, 1)
    return _as_float(spikes).reshape(1, math.prod(spikes.shape[:-1]), spikes.shape[-1])


def hook_spike_image(key: str, writer: "SummaryWriter") -> Hook:
    """A hook that logs the spikes of each call as a grey image under ``key``.

    The spikes of shape ``(..., N)`` are logged as ``writer.add_image(key, image,
    step)`` with ``image`` of shape ``(1, H, N)``: one column per neuron of the last
    dimension and one row per entry of the others (``H = 1`` for the spikes of an
    unbatched cell, the batch size for a cell, time x batch for a time module). A
    single-channel image ``(1, H, W)`` is logged as it is.

    Arguments:
        key (str): the name of the image in TensorBoard
        writer (SummaryWriter): where to log

    Returns:
        A hook for ``module.register_forward_hook``.
    """
    return _make_hook(writer, "add_image", key, "norse_hook_spike_image", _as_image)
