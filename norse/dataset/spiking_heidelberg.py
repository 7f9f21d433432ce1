"""The Spiking Heidelberg Digits (SHD): spoken digits as spikes of 700 cochlear channels.

B. Cramer, Y. Stradmann, J. Schemmel and F. Zenke, "The Heidelberg spiking data sets for
the systematic evaluation of spiking neural networks", IEEE TNNLS (2020),
arXiv:1910.07407. Data licensed CC BY 4.0, https://zenkelab.org/datasets/.

20 classes (the digits 0-9 in English, labels 0-9, and German, labels 10-19); 8156
training and 2264 test recordings of up to 1.4 s. Each file is HDF5::

    spikes/times   variable-length float arrays, spike times in seconds (one per sample)
    spikes/units   variable-length int arrays, the channel (0..699) of each spike
    labels         int, the class of each sample
    extra/...      speaker, keys, meta_info

:class:`SpikingHeidelbergDigitsDataset` reads the samples with ``tonic.datasets.SHD``
(files in tonic's layout, ``root/SHD/shd_train.h5`` next to its archive
``shd_train.h5.zip``, which pooch downloads and checks) and bins the events of a sample
into a ``(T, 700)`` spike tensor with ``T = int(1.4 // dt + 1)`` steps
(:func:`bin_events`, on ``tonic.transforms.ToFrame``). tonic, pooch and h5py come with
the ``data`` extra (``pip install "norse[data]"``).

Example:
    >>> data = SpikingHeidelbergDigitsDataset("~/.cache/norse", download=True)  # doctest: +SKIP
    >>> spikes, label = data[0]                  # sparse uint8 (1400, 700), uint8 label
"""

import os
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.utils.data

from norse.dataset._checks import (
    check_flags,
    check_path,
    check_positive_int,
    check_positive_number,
)
from norse.dataset.download import PathLike, _import_extra, fetch
from norse.dataset.events import events_to_frames

__all__ = ["SpikingHeidelbergDigitsDataset", "bin_events"]


def _numeric_array(values, name: str) -> np.ndarray:
    """``values`` (array, tensor or sequence of numbers) as a flat float64 array."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = (
        np.asarray(values) if isinstance(values, (np.ndarray, list, tuple)) else None
    )
    if array is None or array.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must be an array or sequence of numbers, got "
            f"{type(values).__name__}"
            + (f" of dtype {array.dtype}" if array is not None else "")
        )
    return array.astype(np.float64).reshape(-1)


def bin_events(
    times: Union[np.ndarray, torch.Tensor, Sequence[float]],
    units: Union[np.ndarray, torch.Tensor, Sequence[int]],
    dt: float,
    steps: int,
    n_units: int,
) -> torch.Tensor:
    """Events (spike times in seconds, channel indices) as a binary spike tensor.

    Event ``k`` lands in time step ``floor(times[k] / dt)`` (binned by
    :func:`~norse.dataset.events.events_to_frames`, that is tonic's ``ToFrame``);
    several events of one channel in one step count once (as in Norse 1.1). Events after
    the last step are put into the last step, so every sample gets the same length.

    Returns:
        uint8 ``(steps, n_units)`` with 1 where a channel spiked in a step.

    Raises:
        ValueError: times and units of different lengths, negative or non-finite times,
            channels that are not whole numbers in ``[0, n_units)``, ``dt``, ``steps``
            or ``n_units`` not positive.
        TypeError: times or units that are not numbers.
    """
    check_positive_number("dt", dt, "seconds")
    check_positive_int("steps", steps)
    check_positive_int("n_units", n_units)
    times = _numeric_array(times, "times")
    units = _numeric_array(units, "units")
    if units.size and not (
        np.isfinite(units).all() and (units == np.round(units)).all()
    ):
        raise ValueError(f"units must be integer channel indices, got {units}")
    if times.size and not np.isfinite(times).all():
        raise ValueError(f"spike times must be finite, got {times}")
    if times.shape != units.shape:
        raise ValueError(
            f"times and units must have the same length, got {times.size} and {units.size}"
        )
    if times.size and times.min() < 0:
        raise ValueError(f"spike times must be >= 0 s, got {times.min()}")
    if units.size and (units.min() < 0 or units.max() >= n_units):
        raise ValueError(
            f"units must lie in [0, {n_units}), got [{units.min()}, {units.max()}]"
        )
    # the middle of the last step: later events land there whatever the rounding
    times = np.minimum(times, (steps - 0.5) * dt)
    events = np.zeros(len(times), dtype=[("x", "<i8"), ("t", "<f8"), ("p", "<i8")])
    events["x"], events["t"] = units, times
    frames = events_to_frames(
        events,
        (n_units, 1, 1),
        time_window=dt,
        n_time_bins=steps,
        start_time=0.0,
        binary=True,
        dtype=torch.uint8,
    )
    return frames[:, 0]


class SpikingHeidelbergDigitsDataset(torch.utils.data.Dataset):
    """The Spiking Heidelberg Digits as ``(spikes (T, 700), label)`` pairs, read by
    ``tonic.datasets.SHD``.

    Parameters:
        root (str): folder that holds (or receives) tonic's ``SHD`` folder:
            ``root/SHD/shd_train.h5`` / ``shd_test.h5`` and their archives
            ``shd_train.h5.zip`` / ``shd_test.h5.zip`` (tonic looks for both)
        dt (float): width of a time step (s); ``T = int(1.4 // dt + 1)``. Default 0.001.
        sparse (bool): return the spikes as a sparse COO tensor (default) or dense
        train (bool): the training file (default) or the test file
        download (bool): fetch the archive through pooch (from :attr:`mirrors`,
            MD5-checked, cached) unless it is already there and intact, and unpack it
        mirrors (Sequence[str]): base URLs or local folders to download from, tried in
            order (default :attr:`mirrors`)

    Items:
        ``(spikes, label)``: uint8 ``(T, 700)`` spikes (sparse or dense) and a uint8
        scalar label in ``[0, 20)``. The data set is map-style (``len``, indexing,
        shuffling in a DataLoader) and iterable.

    Raises:
        FileNotFoundError: the file or its archive is missing and ``download`` is false.
        ImportError: tonic or pooch (the ``data`` extra) is not installed.
    """

    # tonic.datasets.SHD's archives (a test checks that they agree)
    test_file, train_file = "shd_test.h5", "shd_train.h5"
    test_url = "https://zenkelab.org/datasets/shd_test.h5.zip"
    test_checksum = "1503a5064faa34311c398fb0a1ed0a6f"
    train_url = "https://zenkelab.org/datasets/shd_train.h5.zip"
    train_checksum = "f3252aeb598ac776c1b526422d90eecb"
    #: Base URLs tried in order.
    mirrors: Tuple[str, ...] = ("https://zenkelab.org/datasets/",)
    max_length = 1.4  # longest recording (s)
    n_units = 700  # cochlear channels

    def __init__(
        self,
        root: PathLike,
        dt: float = 0.001,
        sparse: bool = True,
        train: bool = True,
        download: bool = False,
        *,
        mirrors: Optional[Sequence[PathLike]] = None,
    ):
        super().__init__()
        check_positive_number("dt", dt, "seconds")
        check_flags(sparse=sparse, train=train, download=download)
        check_path("root", root)
        self.root = Path(os.path.expanduser(os.fspath(root)))
        self.dt = dt
        self.sparse = sparse
        self.train = train
        if mirrors is not None:
            self.mirrors = tuple(mirrors)
        tonic = _import_extra("tonic", "SpikingHeidelbergDigitsDataset")
        self.path = self.root / "SHD" / (self.train_file if train else self.test_file)
        archive = self.path.with_name(self.path.name + ".zip")
        if download:
            self.download()
        if not (self.path.is_file() and archive.is_file()):
            # tonic downloads by itself when either is missing: download=False means no
            raise FileNotFoundError(
                f"{self.path} or its archive {archive.name} not found (tonic needs "
                "both); pass download=True to fetch them"
            )
        self.labels = self._check_file()
        self._samples = tonic.datasets.SHD(os.fspath(self.root), train=train)

    def _check_file(self) -> torch.Tensor:
        """The labels, after a check that the file has what tonic reads."""
        h5py = _import_extra("h5py", "SpikingHeidelbergDigitsDataset")
        with h5py.File(self.path, "r") as handle:
            for key in (
                "spikes/times",
                "spikes/units",
                "labels",
                "extra/keys",
                "extra/speaker",
            ):
                if key not in handle:
                    raise ValueError(f"{self.path} is not an SHD file: no {key!r}")
            labels = torch.as_tensor(np.asarray(handle["labels"]).astype(np.int64))
            if len(handle["spikes/times"]) != len(labels):
                raise ValueError(
                    f"{self.path}: {len(handle['spikes/times'])} samples but {len(labels)} labels"
                )
        return labels

    @property
    def steps(self) -> int:
        """Time steps per sample, ``int(max_length // dt + 1)``."""
        return int(self.max_length // self.dt + 1)

    def download(self) -> None:
        """Fetches the archive of this split through pooch (MD5-checked) unless it is
        already there and intact, and unpacks the file when it is missing or the
        archive was fetched anew."""
        pooch = _import_extra("pooch", "SpikingHeidelbergDigitsDataset.download")
        name = self.train_file if self.train else self.test_file
        checksum = self.train_checksum if self.train else self.test_checksum
        folder = self.root / "SHD"
        fetch(
            folder,
            name + ".zip",
            f"md5:{checksum}",
            self.mirrors,
            processor=pooch.Unzip(members=[name], extract_dir=os.fspath(folder)),
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} samples")
        events, label = self._samples[int(index) % len(self)]
        # tonic gives whole microseconds; bin_events takes seconds
        data = bin_events(
            events["t"] / 1e6, events["x"], self.dt, self.steps, self.n_units
        )
        label = torch.tensor(int(label), dtype=torch.uint8)
        return (data.to_sparse() if self.sparse else data), label

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        return (self[index] for index in range(len(self)))
