"""Event streams (tonic's format) to spike tensors.

Event cameras and silicon cochleas record *events*: a structured numpy array with the
fields ``x``, ``y`` (absent for 1D sensors), ``t`` (timestamps, microseconds in tonic's
data sets) and ``p`` (polarity), one row per event, as the `tonic
<https://tonic.readthedocs.io>`_ data sets (N-MNIST, DVS Gesture, SHD...) return them.
A spiking network wants time-first tensors, so ``events_to_frames`` counts the
events of each time bin, polarity and pixel with tonic's ``ToFrame`` transform:

.. code-block:: text

    events (N,) with x, y, t, p  ->  frames (T, C, H, W)      C = polarities
    events (N,) with x, t, p     ->  frames (T, C, W)

and ``collate_frames`` stacks samples of a batch to ``(T, batch, C, H, W)`` (zero
padded to the longest sample), the layout of every Norse time module.
``EventsToFrames`` is the same conversion as a transform object (for
``tonic.transforms.Compose`` or a ``torch.utils.data.Dataset``). The frames need tonic
(``pip install "norse[data]"``); ``collate_frames`` does not.

Binning: bin ``k`` holds the events with ``start + k * time_window <= t < start +
(k + 1) * time_window``, where ``start`` is the first timestamp unless given. With
only ``n_time_bins`` the window is chosen so that the bins just cover the recording
(every event is counted); with only ``time_window`` there are as many bins as needed;
with both, the output has exactly ``n_time_bins`` bins (later events are dropped,
missing bins stay zero), which gives equal lengths across samples. These windows are
handed to ``ToFrame`` with the timestamps in units of bins, so that neighbouring bins
share their edge exactly (no event is lost or counted twice by rounding).

Example:
    >>> import numpy as np
    >>> from norse.dataset.events import events_to_frames
    >>> dtype = [("x", int), ("y", int), ("t", int), ("p", int)]
    >>> events = np.array([(0, 1, 0, 1), (2, 0, 1500, 0), (2, 0, 1700, 0)], dtype=dtype)
    >>> frames = events_to_frames(events, sensor_size=(3, 2, 2), time_window=1000)
    >>> frames.shape  # (T, polarities, height, width)
    torch.Size([2, 2, 2, 3])
    >>> frames[1, 0, 0, 2].item()  # two events in the second millisecond
    2.0
"""

from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from norse.dataset._checks import is_number
from norse.dataset.download import _import_extra

__all__ = ["EventsToFrames", "collate_frames", "events_to_frames"]


def _check_events(events: Any) -> np.ndarray:
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise TypeError(
            "events must be a structured numpy array with fields x, (y,) t, p, got "
            f"{type(events).__name__}"
            + (f" with dtype {events.dtype}" if isinstance(events, np.ndarray) else "")
        )
    missing = {"x", "t", "p"} - set(events.dtype.names)
    if missing:
        raise ValueError(
            f"events lack the fields {sorted(missing)}; they have {events.dtype.names}"
        )
    return events


def _count(value: Any) -> Optional[int]:
    """``value`` as an int if it is a whole number >= 1 (int, or a float like 34.0),
    else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        return None
    if not np.isfinite(value) or value != int(value) or value < 1:
        return None
    return int(value)


def _check_sensor_size(sensor_size: Sequence[int]) -> Tuple[int, int, int]:
    counts = (
        [_count(n) for n in sensor_size]
        if isinstance(sensor_size, (tuple, list, np.ndarray)) and len(sensor_size) == 3
        else [None]
    )
    if None in counts:
        raise ValueError(
            "sensor_size must be (width, height, polarities) with positive ints, as "
            f"tonic's data sets give it, got {sensor_size!r}"
        )
    width, height, polarities = counts
    return width, height, polarities


def _check_binning(
    time_window: Optional[float],
    n_time_bins: Optional[int],
    start_time: Optional[float],
    dtype: torch.dtype,
) -> None:
    if time_window is None and n_time_bins is None:
        raise ValueError("give time_window, n_time_bins or both")
    if time_window is not None and not (
        is_number(time_window) and np.isfinite(time_window) and time_window > 0
    ):
        raise ValueError(
            f"time_window must be a positive, finite number, got {time_window!r}"
        )
    if n_time_bins is not None and _count(n_time_bins) is None:
        raise ValueError(f"n_time_bins must be a positive int, got {n_time_bins!r}")
    if start_time is not None and not (
        is_number(start_time) and np.isfinite(start_time)
    ):
        raise ValueError(f"start_time must be a finite number, got {start_time!r}")
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, got {dtype!r}")


#: More bins * polarities * pixels than this is a mistake (e.g. a time window in
#: seconds for timestamps in microseconds), not a tensor to allocate.
_MAX_FRAME_ELEMENTS = 2**30


def _channels(p: np.ndarray, polarities: int) -> np.ndarray:
    """Polarity to channel: a one-channel sensor merges polarities; with two channels,
    negative polarities (-1, used by some sensors) go to channel 0."""
    if polarities == 1:
        return np.zeros(p.shape, dtype=np.int64)
    p = p.astype(np.int64)
    if polarities == 2 and p.size and p.min() < 0:
        p = (p > 0).astype(np.int64)
    if p.size and (p.min() < 0 or p.max() >= polarities):
        raise ValueError(
            f"polarities must lie in [0, {polarities}) for sensor_size with "
            f"{polarities} polarities, got values from {p.min()} to {p.max()}"
        )
    return p


def _binned_events(x, y, channel, bins) -> np.ndarray:
    """The events in tonic's layout with ``t`` in units of time bins, sorted by it (tonic
    slices by ``searchsorted``): bin ``k`` is then exactly ``k <= t < k + 1``, with no
    rounding of bin edges between neighbouring bins."""
    order = np.argsort(bins, kind="stable")
    fields = [("x", "<i8")] + ([("y", "<i8")] if y is not None else [])
    events = np.empty(len(order), dtype=fields + [("t", "<f8"), ("p", "<i8")])
    events["x"], events["t"], events["p"] = x[order], bins[order], channel[order]
    if y is not None:
        events["y"] = y[order]
    return events


def events_to_frames(
    events: np.ndarray,
    sensor_size: Sequence[int],
    time_window: Optional[float] = None,
    n_time_bins: Optional[int] = None,
    start_time: Optional[float] = None,
    binary: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Counts events per time bin, polarity and pixel with ``tonic.transforms.ToFrame``.

    Parameters:
        events (np.ndarray): structured array with fields ``x``, ``t``, ``p`` and
            (for 2D sensors) ``y``, as in tonic
        sensor_size (tuple): ``(width, height, polarities)``, tonic's ``sensor_size``
            (height 1 for 1D sensors)
        time_window (float): width of a time bin, in the unit of ``t`` (microseconds
            in tonic)
        n_time_bins (int): number of bins (see the module documentation for how it
            combines with ``time_window``)
        start_time (float): start of the first bin; the first timestamp by default
        binary (bool): 1 where a pixel had at least one event instead of the count
        dtype (torch.dtype): of the result

    Returns:
        ``(T, polarities, height, width)``, or ``(T, polarities, width)`` for events
            without ``y``.

    Raises:
        ValueError: missing fields, events outside the sensor, no binning given, more
            than 32767 events in one pixel and bin (tonic counts in int16).
        ImportError: tonic (the ``data`` extra) is not installed.
    """
    events = _check_events(events)
    has_y = "y" in events.dtype.names
    width, height, polarities = _check_sensor_size(sensor_size)
    if not has_y and height != 1:
        raise ValueError(
            f"the events have no y field, so sensor_size must have height 1, got "
            f"{sensor_size!r}"
        )
    _check_binning(time_window, n_time_bins, start_time, dtype)
    tonic = _import_extra("tonic", "events_to_frames")

    t = events["t"].astype(np.float64)
    if not np.isfinite(t).all():
        raise ValueError(
            f"event timestamps t must be finite, got {np.count_nonzero(~np.isfinite(t))} "
            "NaN or infinite values"
        )
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64) if has_y else np.zeros_like(x)
    channel = _channels(events["p"], polarities)
    if x.size and (x.min() < 0 or x.max() >= width or y.min() < 0 or y.max() >= height):
        raise ValueError(
            f"events lie outside the sensor of width {width} and height {height}: x in "
            f"[{x.min()}, {x.max()}], y in [{y.min()}, {y.max()}]"
        )

    start = (
        float(start_time) if start_time is not None else (t.min() if t.size else 0.0)
    )
    if time_window is None:
        # bins that just cover [start, last event]; +1 keeps the last event inside
        span = (t.max() - start + 1.0) if t.size else 1.0
        window = span / n_time_bins
    else:
        window = float(time_window)
    if n_time_bins is not None:
        steps = int(n_time_bins)
    else:
        # float first: a huge span must reach the size check below, not overflow
        last = np.floor((t.max() - start) / window) if t.size else 0.0
        steps = int(min(max(last + 1, 1), 2.0**62))
    pixels = polarities * height * width
    if steps * pixels > _MAX_FRAME_ELEMENTS:
        raise ValueError(
            f"the frames would have {steps} time bins of {pixels} pixels; the events "
            f"span {t.max() - start if t.size else 0} (unit of t) and time_window is "
            f"{window}: use a larger time_window or give n_time_bins"
        )
    shape = (steps, polarities, height, width) if has_y else (steps, polarities, width)
    frames = np.zeros(shape, dtype=np.int64)
    bins = (t - start) / window
    kept = np.count_nonzero((bins >= 0) & (bins < steps))
    if kept:  # tonic's ToFrame has no empty frames of the right shape
        to_frame = tonic.transforms.ToFrame(
            sensor_size=(width, height, polarities),
            time_window=1.0,
            start_time=0.0,
            end_time=float(steps),
            include_incomplete=True,
        )
        counted = to_frame(_binned_events(x, y if has_y else None, channel, bins))
        frames[: len(counted)] = counted[:steps]
        if kept >= 2**15 and frames.sum() != kept:
            raise ValueError(
                f"more than 32767 events fell into one pixel and time bin, beyond the "
                f"int16 counts of tonic's ToFrame: use a smaller time_window or more "
                f"n_time_bins (time_window is {window})"
            )
    result = torch.from_numpy(frames)
    if binary:
        result = result.clamp(max=1)
    return result.to(dtype)


class EventsToFrames:
    """``events_to_frames`` as a transform: ``EventsToFrames(...)(events)``.

    Picklable (for ``DataLoader`` workers) and usable in ``tonic.transforms.Compose``.

    Example:
        >>> transform = EventsToFrames(sensor_size=(34, 34, 2), n_time_bins=20)
    """

    def __init__(
        self,
        sensor_size: Sequence[int],
        time_window: Optional[float] = None,
        n_time_bins: Optional[int] = None,
        start_time: Optional[float] = None,
        binary: bool = False,
        dtype: torch.dtype = torch.float32,
    ):
        _check_sensor_size(sensor_size)
        _check_binning(time_window, n_time_bins, start_time, dtype)
        _import_extra("tonic", "EventsToFrames")  # fail here, not in a worker
        self.sensor_size = tuple(sensor_size)
        self.time_window = time_window
        self.n_time_bins = n_time_bins
        self.start_time = start_time
        self.binary = binary
        self.dtype = dtype

    def __call__(self, events: np.ndarray) -> torch.Tensor:
        return events_to_frames(
            events,
            self.sensor_size,
            time_window=self.time_window,
            n_time_bins=self.n_time_bins,
            start_time=self.start_time,
            binary=self.binary,
            dtype=self.dtype,
        )

    def __repr__(self) -> str:
        return (
            f"EventsToFrames(sensor_size={self.sensor_size}, time_window="
            f"{self.time_window}, n_time_bins={self.n_time_bins}, binary={self.binary})"
        )


def collate_frames(
    samples: Sequence[Union[torch.Tensor, Tuple[Any, Any]]],
) -> Union[torch.Tensor, Tuple[torch.Tensor, Any]]:
    """Stacks frames ``(T_i, ...)`` of a batch into ``(T, batch, ...)``, padding
    shorter samples with zeros at the end (``T`` is the longest).

    Use as ``DataLoader(dataset, collate_fn=collate_frames)``. Samples may be frames or
    ``(frames, target)`` pairs; then the result is ``(frames, targets)`` with the
    targets stacked by ``torch.utils.data.default_collate``.
    """
    if not isinstance(samples, (list, tuple)):
        raise TypeError(
            "collate_frames takes a list of samples (frames, or (frames, target) "
            f"pairs), got {type(samples).__name__}"
        )
    if len(samples) == 0:
        raise ValueError("collate_frames got an empty batch")
    paired = isinstance(samples[0], (tuple, list))
    frames: List[torch.Tensor] = []
    for index, sample in enumerate(samples):
        if isinstance(sample, (tuple, list)) != paired or (paired and len(sample) != 2):
            raise ValueError(
                f"sample {index} is {type(sample).__name__}, but sample 0 is "
                f"{type(samples[0]).__name__}: all samples must be frames or all "
                "(frames, target) pairs"
            )
        frame = sample[0] if paired else sample
        if not isinstance(frame, (torch.Tensor, np.ndarray)):
            raise TypeError(
                f"sample {index} has frames of type {type(frame).__name__}; expected a "
                "torch.Tensor or numpy array (T, ...)"
            )
        frames.append(torch.as_tensor(frame))
    tail = frames[0].shape[1:]
    for index, frame in enumerate(frames):
        if frame.dim() < 1 or frame.shape[1:] != tail:
            raise ValueError(
                f"sample {index} has frames of shape {tuple(frame.shape)}, but sample 0 "
                f"has (T, {', '.join(str(n) for n in tail)}); all must agree after T"
            )
    steps = max(frame.shape[0] for frame in frames)
    batch = frames[0].new_zeros((steps, len(frames), *tail))
    for index, frame in enumerate(frames):
        batch[: frame.shape[0], index] = frame
    if not paired:
        return batch
    targets = torch.utils.data.default_collate([s[1] for s in samples])
    return batch, targets
