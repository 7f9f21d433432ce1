"""The Spiking Heidelberg Digits (SHD): spoken digits as spikes of 700 cochlear channels.

B. Cramer, Y. Stradmann, J. Schemmel and F. Zenke, "The Heidelberg spiking data sets for
the systematic evaluation of spiking neural networks", IEEE TNNLS (2020),
arXiv:1910.07407. Data licensed CC BY 4.0, https://zenkelab.org/datasets/.

20 classes (the digits 0-9 in English, labels 0-9, and German, labels 10-19); 8156
training and 2264 test recordings of up to 1.4 s. Each file is HDF5::

    spikes/times   variable-length float arrays, spike times in seconds (one per sample)
    spikes/units   variable-length int arrays, the channel (0..699) of each spike
    labels         int, the class of each sample
    extra/...      speaker, keys, meta_info (not used here)

:class:`SpikingHeidelbergDigitsDataset` bins the events of a sample into a ``(T, 700)``
spike tensor with ``T = int(1.4 // dt + 1)`` steps (:func:`bin_events`).

Example:
    >>> data = SpikingHeidelbergDigitsDataset("~/.cache/norse/shd", download=True)  # doctest: +SKIP
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
from norse.dataset.download import PathLike, download_gzipped, md5_of

__all__ = ["SpikingHeidelbergDigitsDataset", "bin_events"]


def _h5py():
    try:
        import h5py
    except ImportError as error:  # an optional dependency
        raise ImportError(
            "reading the SHD files needs h5py: pip install h5py"
        ) from error
    return h5py


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

    Event ``k`` lands in time step ``floor(times[k] / dt)``; several events of one
    channel in one step count once (as in Norse 1.1). Events after the last step are put
    into the last step, so every sample gets the same length.

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
    # clipped before the cast, so that a late (even huge) time lands in the last step
    step_index = np.minimum(np.floor(times / dt), steps - 1).astype(np.int64)
    data = torch.zeros((steps, n_units), dtype=torch.uint8)
    data[torch.from_numpy(step_index), torch.from_numpy(units.astype(np.int64))] = 1
    return data


class SpikingHeidelbergDigitsDataset(torch.utils.data.Dataset):
    """The Spiking Heidelberg Digits as ``(spikes (T, 700), label)`` pairs.

    Parameters:
        root (str): folder that holds (or receives) ``shd_train.h5`` / ``shd_test.h5``
        dt (float): width of a time step (s); ``T = int(1.4 // dt + 1)``. Default 0.001.
        sparse (bool): return the spikes as a sparse COO tensor (default) or dense
        train (bool): the training file (default) or the test file
        download (bool): fetch the file (``.h5.gz`` from :attr:`mirrors`, MD5-checked,
            unpacked and checked again) unless it is already in ``root`` and intact
        mirrors (Sequence[str]): base URLs or local folders to download from, tried in
            order (default :attr:`mirrors`)

    Items:
        ``(spikes, label)``: uint8 ``(T, 700)`` spikes (sparse or dense) and a uint8
        scalar label in ``[0, 20)``. The data set is map-style (``len``, indexing,
        shuffling in a DataLoader) and iterable.
    """

    test_file, test_file_md5 = "shd_test.h5", "207ad1295a0ab611e22d1734989c254e"
    test_url = "https://zenkelab.org/datasets/shd_test.h5.gz"
    test_checksum = "3062a80ec0c5719404d5b02e166543b1"
    train_file, train_file_md5 = "shd_train.h5", "8e9877c85f29a28dd353ea6a54402667"
    train_url = "https://zenkelab.org/datasets/shd_train.h5.gz"
    train_checksum = "d47c9825dee33347913e8ce0f2be08b0"
    #: Base URLs tried in order (the data moved from compneuro.net to zenkelab.org).
    mirrors: Tuple[str, ...] = (
        "https://zenkelab.org/datasets/",
        "https://compneuro.net/datasets/",
    )
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
        if download:
            self.download()
        self.path = self.root / (self.train_file if train else self.test_file)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"{self.path} not found; pass download=True to fetch it"
            )
        with _h5py().File(self.path, "r") as handle:
            for key in ("spikes/times", "spikes/units", "labels"):
                if key not in handle:
                    raise ValueError(f"{self.path} is not an SHD file: no {key!r}")
            self.labels = torch.as_tensor(np.asarray(handle["labels"]).astype(np.int64))
            if len(handle["spikes/times"]) != len(self.labels):
                raise ValueError(
                    f"{self.path}: {len(handle['spikes/times'])} samples but {len(self.labels)} labels"
                )
        self._handle = None  # opened on first access, once per process

    @property
    def steps(self) -> int:
        """Time steps per sample, ``int(max_length // dt + 1)``."""
        return int(self.max_length // self.dt + 1)

    def _file(self):
        if self._handle is None:
            self._handle = _h5py().File(self.path, "r")
        return self._handle

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handle"] = None  # HDF5 handles do not cross process boundaries
        return state

    def _check_integrity(self) -> bool:
        files = [(self.test_file, self.test_file_md5)]
        if self.train:
            files.append((self.train_file, self.train_file_md5))
        return all(
            (self.root / name).is_file() and md5_of(self.root / name) == md5
            for name, md5 in files
        )

    def download(self) -> None:
        """Fetches the file of this split (and checks it) unless it is already intact."""
        name, md5, gz_md5 = (
            (self.train_file, self.train_file_md5, self.train_checksum)
            if self.train
            else (self.test_file, self.test_file_md5, self.test_checksum)
        )
        download_gzipped(self.root, name, md5, gz_md5, self.mirrors)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} samples")
        index = int(index) % len(self)
        handle = self._file()
        data = bin_events(
            handle["spikes/times"][index],
            handle["spikes/units"][index],
            self.dt,
            self.steps,
            self.n_units,
        )
        label = self.labels[index].to(torch.uint8)
        return (data.to_sparse() if self.sparse else data), label

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        return (self[index] for index in range(len(self)))
