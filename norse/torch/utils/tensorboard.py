"""Forward hooks that log the spikes of a layer to TensorBoard.

Each function returns a hook for ``torch.nn.Module.register_forward_hook`` on a
module that returns ``(spikes, state)`` (every neuron module of Norse). Each call of the
module logs one value under ``key``; the step counter is kept per module and per hook
kind, so one layer can carry several hooks.

Example:
    >>> import torch
    >>> from torch.utils.tensorboard import SummaryWriter
    >>> import norse.torch as norse
    >>> from norse.torch.utils.tensorboard import hook_spike_activity_mean
    >>> writer = SummaryWriter()  # doctest: +SKIP
    >>> layer = norse.LIF()
    >>> handle = layer.register_forward_hook(
    ...     hook_spike_activity_mean("lif", writer))  # doctest: +SKIP

The writer is any object with ``add_scalar``, ``add_histogram`` and ``add_image``, such
as ``torch.utils.tensorboard.SummaryWriter`` (needs ``pip install tensorboard``);
this module itself imports nothing from TensorBoard.
"""

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
    if not (isinstance(output, tuple) and len(output) == 2):
        raise TypeError(
            f"the TensorBoard spike hooks need a module that returns (spikes, state); "
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
    return spikes.detach().float().cpu()


def _make_hook(
    writer: "SummaryWriter",
    method: str,
    key: str,
    kind: str,
    transform: Callable[[torch.Tensor], Any],
    **log_options: Any,
) -> Hook:
    """A hook that logs ``transform(spikes)`` with ``writer.<method>`` under ``key``;
    its step counter is the module attribute ``_norse_hook_<kind>``."""
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, got {type(key).__name__}")
    write = _writer_method(writer, method)
    counter = f"_norse_hook_{kind}"

    def log(tag: str, value: Any, step: int) -> None:
        write(tag, value, step, **log_options)

    def hook(module: torch.nn.Module, _inputs: Tuple[Any, ...], output: Any) -> None:
        step = getattr(module, counter, 0)
        log(key, transform(_spikes_of(module, output)), step)
        setattr(module, counter, step + 1)

    return hook


def _writer_method(writer: "SummaryWriter", name: str) -> Callable[..., Any]:
    method = getattr(writer, name, None)
    if not callable(method):
        raise TypeError(
            f"writer must be a SummaryWriter (an object with {name}()), "
            f"got {type(writer).__name__}"
        )
    return method


def _per_neuron(reduce: Callable[..., torch.Tensor]) -> Callable[[torch.Tensor], Any]:
    # reduce the first dimension (batch for cells, time for time modules): one value per
    # neuron (and per sample for time modules) makes a histogram worth looking at
    def transform(spikes: torch.Tensor) -> torch.Tensor:
        return reduce(spikes, 0) if spikes.dim() > 1 else spikes

    return transform


def hook_spike_activity_mean(key: str, writer: "SummaryWriter") -> Hook:
    """A hook that logs the *mean* spike activity of the layer (all spikes of the call
    averaged: the fraction of neurons that fired) as a scalar line under ``key``.

    Arguments:
        key (str): the name of the plot in TensorBoard
        writer (SummaryWriter): where to log
    """
    return _make_hook(
        writer,
        "add_scalar",
        key,
        "spike_activity_mean",
        lambda spikes: spikes.mean().item(),
    )


def hook_spike_activity_sum(key: str, writer: "SummaryWriter") -> Hook:
    """A hook that logs the *total* number of spikes of each call as a scalar line
    under ``key``.

    Arguments:
        key (str): the name of the plot in TensorBoard
        writer (SummaryWriter): where to log
    """
    return _make_hook(
        writer,
        "add_scalar",
        key,
        "spike_activity_sum",
        lambda spikes: spikes.sum().item(),
    )


def hook_spike_histogram_mean(key: str, writer: "SummaryWriter") -> Hook:
    """A hook that logs a histogram of the *mean* activity per neuron: the spikes are
    averaged over the first dimension (the batch of a cell, the time of a time module)
    and the histogram is taken over the remaining values.

    Arguments:
        key (str): the name of the histogram in TensorBoard
        writer (SummaryWriter): where to log
    """
    return _make_hook(
        writer, "add_histogram", key, "spike_histogram_mean", _per_neuron(torch.mean)
    )


def hook_spike_histogram_sum(key: str, writer: "SummaryWriter") -> Hook:
    """A hook that logs a histogram of the spike *count* per neuron: the spikes are
    summed over the first dimension (the batch of a cell, the time of a time module).

    Arguments:
        key (str): the name of the histogram in TensorBoard
        writer (SummaryWriter): where to log
    """
    return _make_hook(
        writer, "add_histogram", key, "spike_histogram_sum", _per_neuron(torch.sum)
    )


def _as_image(spikes: torch.Tensor) -> torch.Tensor:
    # a grey image: one row per entry of the first dimension (sample or time step),
    # one column per neuron, values in [0, 1]
    if spikes.dim() == 0:
        spikes = spikes.reshape(1, 1)
    elif spikes.dim() == 1:
        spikes = spikes[None]
    image = spikes.reshape(spikes.shape[0], -1)
    return image.clamp(0.0, 1.0)


def hook_spike_image(key: str, writer: "SummaryWriter") -> Hook:
    """A hook that logs the spikes of each call as a grey image: one row per entry of
    the first dimension (the batch of a cell, the time of a time module) and one column
    per neuron (trailing dimensions are flattened).

    Arguments:
        key (str): the name of the image in TensorBoard
        writer (SummaryWriter): where to log
    """
    return _make_hook(
        writer, "add_image", key, "spike_image", _as_image, dataformats="HW"
    )
