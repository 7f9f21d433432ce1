"""CIFAR-10: 60,000 colour images (32 x 32) of 10 classes, without torchvision.

A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images" (2009),
https://www.cs.toronto.edu/~kriz/cifar.html.

:func:`download_cifar10` fetches the official "python version" archive through pooch
(MD5-checked, cached) and unpacks it; :func:`load_cifar10` reads its pickled batches (each checked
against its MD5 as well) into ``uint8`` arrays ``(N, 3, 32, 32)`` (channel, row, column)
and ``int64`` labels; :class:`CIFAR10` is a :class:`torch.utils.data.Dataset` of float
images in ``[0, 1]``. :func:`random_crop_flip` is the usual training augmentation.

Example:
    >>> images, labels = load_cifar10("~/.cache/norse", train=False, download=True)  # doctest: +SKIP
    >>> images.shape, labels[:3]                                    # doctest: +SKIP
    ((10000, 3, 32, 32), array([3, 8, 8]))
"""

import os
import pickle
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.utils.data

from norse.dataset._checks import check_flags, check_path
from norse.dataset.download import PathLike, _import_extra, fetch

__all__ = [
    "CIFAR10",
    "CIFAR10_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "download_cifar10",
    "load_cifar10",
    "random_crop_flip",
]

ARCHIVE, ARCHIVE_MD5 = "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = (
    ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
    ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
    ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
    ("data_batch_4", "634d18415352ddfa80567beed471001a"),
    ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
)
TEST_FILES = (("test_batch", "40351d587109b95175f43aff81a1287e"),)
MIRRORS: Tuple[str, ...] = ("https://www.cs.toronto.edu/~kriz/",)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
#: Per-channel mean and standard deviation of the training images (in [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def _md5(path: Path) -> str:
    return _import_extra("pooch", "checking the CIFAR-10 files").file_hash(
        os.fspath(path), alg="md5"
    )


def download_cifar10(
    root: PathLike,
    mirrors: Optional[Sequence[PathLike]] = None,
    timeout: float = 60.0,
) -> Path:
    """``root/cifar-10-batches-py``, downloaded through pooch (archive MD5-checked) and
    unpacked unless every batch file is already there and intact."""
    pooch = _import_extra("pooch", "downloading CIFAR-10")
    root = Path(os.path.expanduser(os.fspath(root)))
    folder = root / FOLDER
    missing = False
    for name, md5 in TRAIN_FILES + TEST_FILES:
        path = folder / name
        if path.is_file() and _md5(path) != md5:
            path.unlink()  # pooch unpacks only the members that are missing
        missing = missing or not path.is_file()
    if missing:
        fetch(
            root,
            ARCHIVE,
            f"md5:{ARCHIVE_MD5}",
            MIRRORS if mirrors is None else mirrors,
            timeout=timeout,
            processor=pooch.Untar(extract_dir=os.fspath(root)),
        )
    return folder


def _read_batch(path: Path, md5: str) -> Tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass download=True to fetch it")
    if _md5(path) != md5:
        raise ValueError(
            f"{path} is corrupt (MD5 mismatch); delete it and download again"
        )
    with open(path, "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(
            f"{path}: expected data (N, 3072) and N labels, got {data.shape} and {labels.shape}"
        )
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(
    root: PathLike,
    train: bool = True,
    download: bool = False,
    mirrors: Optional[Sequence[PathLike]] = None,
    files: Optional[Sequence[Tuple[str, str]]] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """The training (50,000) or test (10,000) images ``uint8 (N, 3, 32, 32)`` and labels
    ``int64 (N,)`` from ``root/cifar-10-batches-py``.

    Parameters:
        files: ``(name, md5)`` of the batches to read (default: the official ones)
    """
    check_path("root", root)
    check_flags(train=train, download=download)
    root = Path(os.path.expanduser(os.fspath(root)))
    folder = download_cifar10(root, mirrors) if download else root / FOLDER
    files = files if files is not None else (TRAIN_FILES if train else TEST_FILES)
    parts = [_read_batch(folder / name, md5) for name, md5 in files]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def random_crop_flip(
    images: torch.Tensor, padding: int = 4, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Random translation by up to ``padding`` pixels (zero padding, then a crop of the
    original size) and a horizontal flip with probability 1/2, per image of a batch
    ``(N, C, H, W)``."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(
            f"images must have shape (N, C, H, W), got {tuple(images.shape)}"
        )
    if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    n, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    shifts = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    out = torch.empty_like(images)
    for k in range(n):
        dy, dx = int(shifts[k, 0]), int(shifts[k, 1])
        crop = padded[k, :, dy : dy + height, dx : dx + width]
        out[k] = crop.flip(-1) if flips[k] else crop
    return out


class CIFAR10(torch.utils.data.Dataset):
    """CIFAR-10 images as float ``(3, 32, 32)`` tensors in ``[0, 1]`` with int labels.

    Parameters:
        root: folder holding (or receiving) ``cifar-10-batches-py``
        train: the 50,000 training images (default) or the 10,000 test images
        transform: applied to each image tensor
        download: fetch and unpack the archive if needed
    """

    def __init__(
        self,
        root: PathLike,
        train: bool = True,
        transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        download: bool = False,
    ):
        if transform is not None and not callable(transform):
            raise TypeError(
                f"transform must be callable or None, got {type(transform).__name__}"
            )
        images, labels = load_cifar10(root, train=train, download=download)
        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        image = self.images[index].float() / 255
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])
