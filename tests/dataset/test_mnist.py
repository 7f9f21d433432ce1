"""Tests for norse.dataset.mnist: bundled subset, IDX parsing, download, Dataset.

No test touches the network: downloads (through pooch) are served from local
directories, ``file://`` URLs and a web server on this machine holding small
synthetic IDX files.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from norse.dataset import mnist
from norse.dataset.mnist import (
    MNIST_FILES,
    IDXFormatError,
    MNISTDigits,
    bundled_split,
    bundled_split_indices,
    download_mnist,
    load_bundled_mnist,
    load_full_mnist,
    normalize_mnist,
    read_idx,
)

# --------------------------------------------------------------------------
# Helpers (kept here on purpose: no conftest.py, no tests/__init__.py)
# --------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array of 1 (labels) or 3 (images) dimensions as IDX."""
    magic = {1: 2049, 3: 2051}[array.ndim]
    header = magic.to_bytes(4, "big")
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def synthetic_mnist(
    directory: Path, n_train: int = 6, n_test: int = 4, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write small IDX files named like the official ones; return the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(
            0, 256, (n_train, 28, 28), dtype=np.uint8
        ),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(
            0, 256, (n_test, 28, 28), dtype=np.uint8
        ),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(directory / name, array, compress=True)
    return arrays


def md5_map(directory: Path) -> dict[str, str]:
    return {
        name: hashlib.md5((directory / name).read_bytes()).hexdigest()
        for name in MNIST_FILES
    }


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray], dict[str, str]]:
    """A local mirror directory with synthetic files and their MD5s."""
    directory = tmp_path / "mirror"
    arrays = synthetic_mnist(directory)
    return directory, arrays, md5_map(directory)


# --------------------------------------------------------------------------
# Bundled subset
# --------------------------------------------------------------------------


def test_bundled_shape_dtype_range():
    images, labels = load_bundled_mnist()
    assert images.shape == (5000, 28, 28)
    assert images.dtype == np.uint8
    assert labels.shape == (5000,)
    assert labels.dtype == np.int64
    assert labels.min() == 0 and labels.max() == 9
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10
    # Real MNIST statistics: mean 0.1307, std 0.3081 on the [0, 1] scale.
    scaled = images / 255.0
    assert 0.12 < scaled.mean() < 0.14
    assert 0.29 < scaled.std() < 0.32
    assert images.max() == 255 and images.min() == 0
    # Border pixels are (almost) always background in MNIST.
    assert images[:, 0, :].mean() < 1 and images[:, :, 0].mean() < 1


def test_bundled_orientation_not_transposed():
    # Strokes of a "1" are tall and thin: more ink spread over rows than columns.
    images, labels = load_bundled_mnist()
    ones = images[labels == 1].astype(np.float64)
    rows_with_ink = (ones.sum(axis=2) > 0).sum(axis=1).mean()
    cols_with_ink = (ones.sum(axis=1) > 0).sum(axis=1).mean()
    assert rows_with_ink > 1.5 * cols_with_ink


def test_bundled_returns_fresh_copies():
    images, labels = load_bundled_mnist()
    images[:] = 0
    labels[:] = 3
    again_images, again_labels = load_bundled_mnist()
    assert again_images.max() == 255
    assert np.bincount(again_labels).tolist() == [500] * 10


def test_bundled_split_default_sizes_and_stratification():
    (train_x, train_y), (test_x, test_y) = bundled_split()
    assert train_x.shape == (4000, 28, 28) and train_y.shape == (4000,)
    assert test_x.shape == (1000, 28, 28) and test_y.shape == (1000,)
    assert train_x.dtype == np.uint8 and train_y.dtype == np.int64
    assert np.bincount(train_y, minlength=10).tolist() == [400] * 10
    assert np.bincount(test_y, minlength=10).tolist() == [100] * 10


def test_bundled_split_no_overlap():
    train_idx, test_idx = bundled_split_indices()
    assert len(set(train_idx.tolist())) == 4000
    assert len(set(test_idx.tolist())) == 1000
    assert not set(train_idx.tolist()) & set(test_idx.tolist())
    # The bundled digits are all distinct, so compare content too.
    (train_x, _), (test_x, _) = bundled_split()
    train_set = {image.tobytes() for image in train_x}
    assert not any(image.tobytes() in train_set for image in test_x)


def test_bundled_split_matches_indices():
    images, labels = load_bundled_mnist()
    train_idx, test_idx = bundled_split_indices(300, 200, seed=5)
    (train_x, train_y), (test_x, test_y) = bundled_split(300, 200, seed=5)
    np.testing.assert_array_equal(train_x, images[train_idx])
    np.testing.assert_array_equal(train_y, labels[train_idx])
    np.testing.assert_array_equal(test_x, images[test_idx])
    np.testing.assert_array_equal(test_y, labels[test_idx])


def test_bundled_split_deterministic_and_seeded():
    a_train, a_test = bundled_split_indices(seed=0)
    b_train, b_test = bundled_split_indices(seed=0)
    np.testing.assert_array_equal(a_train, b_train)
    np.testing.assert_array_equal(a_test, b_test)
    c_train, _ = bundled_split_indices(seed=1)
    assert not np.array_equal(a_train, c_train)


def test_bundled_split_is_shuffled():
    _, labels = load_bundled_mnist()
    train_idx, _ = bundled_split_indices()
    # The file is sorted by class; the split's order must not be.
    assert np.any(np.diff(labels[train_idx]) < 0)
    # Every 100-sample window of the training order holds all classes.
    assert len(np.unique(labels[train_idx[:100]])) == 10


@pytest.mark.parametrize(
    ("n_train", "n_test"), [(1, 1), (4999, 1), (1, 4999), (2500, 2500), (123, 457)]
)
def test_bundled_split_custom_sizes(n_train: int, n_test: int):
    train_idx, test_idx = bundled_split_indices(n_train, n_test, seed=3)
    assert len(train_idx) == n_train and len(test_idx) == n_test
    assert not set(train_idx.tolist()) & set(test_idx.tolist())
    _, labels = load_bundled_mnist()
    counts = np.bincount(labels[train_idx], minlength=10)
    assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n_train": 0}, "n_train=0"),
        ({"n_train": -5}, "n_train=-5"),
        ({"n_test": 0}, "n_test=0"),
        ({"n_test": -1}, "n_test=-1"),
        ({"n_train": 4500, "n_test": 501}, "n_train=4500 .* n_test=501"),
        ({"n_train": 5000}, "n_train=5000 .* n_test=1000"),
    ],
)
def test_bundled_split_rejects_bad_sizes(kwargs: dict, pattern: str):
    with pytest.raises(ValueError, match=pattern):
        bundled_split(**kwargs)


def test_bundled_split_rejects_non_integer_sizes():
    with pytest.raises(TypeError, match="n_train"):
        bundled_split(n_train=10.5)
    with pytest.raises(TypeError, match="n_test"):
        bundled_split(n_test=True)


# --------------------------------------------------------------------------
# read_idx
# --------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_images_and_labels(tmp_path: Path, compress: bool):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    # Name has no .gz even when compressed: detection is by content.
    image_path = write_idx(tmp_path / "images.idx", images, compress)
    label_path = write_idx(tmp_path / "labels.idx", labels, compress)

    got_images = read_idx(image_path)
    got_labels = read_idx(str(label_path))
    assert got_images.dtype == np.uint8 and got_images.shape == (3, 28, 28)
    assert got_labels.dtype == np.uint8 and got_labels.shape == (3,)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_images.flags.writeable


def test_read_idx_non_square_images(tmp_path: Path):
    images = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    path = write_idx(tmp_path / "x.gz", images, compress=True)
    np.testing.assert_array_equal(read_idx(path), images)


def test_read_idx_empty_label_file(tmp_path: Path):
    path = write_idx(tmp_path / "empty", np.zeros(0, dtype=np.uint8), compress=False)
    assert read_idx(path).shape == (0,)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_bad_magic(tmp_path: Path, compress: bool):
    data = bytearray(idx_bytes(np.zeros(4, dtype=np.uint8)))
    data[2:4] = (0x0D01).to_bytes(2, "big")  # float64 type code, not ubyte
    path = tmp_path / "bad"
    path.write_bytes(gzip.compress(bytes(data)) if compress else bytes(data))
    with pytest.raises(IDXFormatError, match="bad magic"):
        read_idx(path)
    assert issubclass(IDXFormatError, ValueError)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("cut", [1, 2, 10, 100])
def test_read_idx_truncated_payload(tmp_path: Path, compress: bool, cut: int):
    data = idx_bytes(np.ones((2, 28, 28), dtype=np.uint8))[:-cut]
    path = tmp_path / "short"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx(path)


@pytest.mark.parametrize("length", [0, 3, 8, 12])
def test_read_idx_truncated_header(tmp_path: Path, length: int):
    data = idx_bytes(np.ones((2, 28, 28), dtype=np.uint8))[:length]
    path = tmp_path / "header"
    path.write_bytes(data)
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx(path)


def test_read_idx_trailing_bytes(tmp_path: Path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.ones(5, dtype=np.uint8)) + b"\x00")
    with pytest.raises(IDXFormatError, match="too long"):
        read_idx(path)


def test_read_idx_truncated_gzip_stream(tmp_path: Path):
    compressed = gzip.compress(idx_bytes(np.ones((4, 28, 28), dtype=np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(IDXFormatError, match="gzip"):
        read_idx(path)


def test_read_idx_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")


# --------------------------------------------------------------------------
# load_full_mnist without download
# --------------------------------------------------------------------------


def test_load_full_mnist_from_local_files(tmp_path: Path):
    arrays = synthetic_mnist(tmp_path, n_train=6, n_test=4)
    (train_x, train_y), (test_x, test_y) = load_full_mnist(tmp_path, download=False)
    assert train_x.shape == (6, 28, 28) and train_x.dtype == np.uint8
    assert test_x.shape == (4, 28, 28) and test_x.dtype == np.uint8
    assert train_y.dtype == np.int64 and test_y.dtype == np.int64
    np.testing.assert_array_equal(train_x, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(train_y, arrays["train-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(test_x, arrays["t10k-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(test_y, arrays["t10k-labels-idx1-ubyte.gz"])


def test_load_full_mnist_accepts_uncompressed(tmp_path: Path):
    arrays = synthetic_mnist(tmp_path / "src")
    for name, array in arrays.items():
        write_idx(tmp_path / name.removesuffix(".gz"), array, compress=False)
    (train_x, _), (_, test_y) = load_full_mnist(tmp_path, download=False)
    np.testing.assert_array_equal(train_x, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(test_y, arrays["t10k-labels-idx1-ubyte.gz"])


def test_load_full_mnist_missing_without_download(tmp_path: Path):
    synthetic_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        load_full_mnist(tmp_path, download=False)


def test_load_full_mnist_count_mismatch(tmp_path: Path):
    synthetic_mnist(tmp_path, n_train=6)
    write_idx(
        tmp_path / "train-labels-idx1-ubyte.gz",
        np.zeros(5, dtype=np.uint8),
        compress=True,
    )
    with pytest.raises(IDXFormatError, match="6 images but .* 5 labels"):
        load_full_mnist(tmp_path, download=False)


def test_load_full_mnist_swapped_files(tmp_path: Path):
    arrays = synthetic_mnist(tmp_path)
    write_idx(
        tmp_path / "t10k-images-idx3-ubyte.gz",
        arrays["t10k-labels-idx1-ubyte.gz"],
        compress=True,
    )
    with pytest.raises(IDXFormatError, match="expected an image file"):
        load_full_mnist(tmp_path, download=False)


def test_load_full_mnist_downloads_from_mirror(tmp_path: Path, mirror, monkeypatch):
    source, arrays, md5s = mirror
    monkeypatch.setattr(mnist, "MNIST_FILES", md5s)
    root = tmp_path / "root"
    (train_x, _), (test_x, _) = load_full_mnist(root, mirrors=[source])
    np.testing.assert_array_equal(train_x, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(test_x, arrays["t10k-images-idx3-ubyte.gz"])


# --------------------------------------------------------------------------
# download_mnist with local mirrors
# --------------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_official_md5s():
    assert MNIST_FILES == {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }


def test_download_from_local_directory(tmp_path: Path, mirror):
    source, arrays, md5s = mirror
    root = tmp_path / "nested" / "root"
    paths = download_mnist(root, mirrors=[source], md5s=md5s)
    assert set(paths) == set(MNIST_FILES)
    assert leftovers(root) == sorted(MNIST_FILES)
    for name, path in paths.items():
        assert path == root / name
        assert path.read_bytes() == (source / name).read_bytes()
        np.testing.assert_array_equal(read_idx(path), arrays[name])


def test_download_from_file_url(tmp_path: Path, mirror):
    source, _, md5s = mirror
    root = tmp_path / "root"
    download_mnist(root, mirrors=[source.as_uri() + "/"], md5s=md5s)
    assert leftovers(root) == sorted(MNIST_FILES)
    download_mnist(tmp_path / "root2", mirrors=[source.as_uri()], md5s=md5s)
    assert leftovers(tmp_path / "root2") == sorted(MNIST_FILES)


def test_download_single_mirror_string(tmp_path: Path, mirror):
    source, _, md5s = mirror
    download_mnist(tmp_path / "root", mirrors=str(source), md5s=md5s)
    assert leftovers(tmp_path / "root") == sorted(MNIST_FILES)


def test_download_falls_back_to_next_mirror(tmp_path: Path, mirror):
    source, _, md5s = mirror
    root = tmp_path / "root"
    missing = tmp_path / "does-not-exist"
    download_mnist(root, mirrors=[missing, str(source)], md5s=md5s)
    assert leftovers(root) == sorted(MNIST_FILES)


def test_download_falls_back_after_md5_mismatch(tmp_path: Path, mirror):
    source, _, md5s = mirror
    corrupt = tmp_path / "corrupt"
    synthetic_mnist(corrupt, seed=99)  # same names, different content
    root = tmp_path / "root"
    download_mnist(root, mirrors=[corrupt, source], md5s=md5s)
    assert md5_map(root) == md5s
    assert leftovers(root) == sorted(MNIST_FILES)


def test_download_md5_mismatch_raises_and_leaves_nothing(tmp_path: Path, mirror):
    source, _, md5s = mirror
    root = tmp_path / "root"
    wrong = {name: "0" * 32 for name in md5s}
    with pytest.raises(RuntimeError, match="MD5 hash of downloaded file"):
        download_mnist(root, mirrors=[source], md5s=wrong)
    assert leftovers(root) == []


def test_download_md5_mismatch_later_file_keeps_only_verified(tmp_path: Path, mirror):
    source, _, md5s = mirror
    root = tmp_path / "root"
    bad_name = "t10k-images-idx3-ubyte.gz"
    partly_wrong = dict(md5s, **{bad_name: "f" * 32})
    with pytest.raises(RuntimeError, match=bad_name):
        download_mnist(root, mirrors=[source], md5s=partly_wrong)
    # Files before the bad one were verified and kept; no temporary or bad file.
    assert bad_name not in leftovers(root)
    assert set(leftovers(root)) <= set(MNIST_FILES)
    for name in leftovers(root):
        assert hashlib.md5((root / name).read_bytes()).hexdigest() == md5s[name]


def test_download_all_mirrors_fail_lists_errors(tmp_path: Path):
    root = tmp_path / "root"
    with pytest.raises(RuntimeError) as info:
        download_mnist(root, mirrors=[tmp_path / "a", tmp_path / "b"])
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert "/a/" in message and "/b/" in message
    assert leftovers(root) == []


def test_download_no_mirrors(tmp_path: Path):
    with pytest.raises(RuntimeError, match="no mirrors"):
        download_mnist(tmp_path, mirrors=[])


def test_download_skips_present_files(tmp_path: Path, mirror):
    source, _, md5s = mirror
    root = tmp_path / "root"
    download_mnist(root, mirrors=[source], md5s=md5s)
    # Intact files in the cache: the mirror that does not exist is never asked.
    paths = download_mnist(root, mirrors=[tmp_path / "nowhere"], md5s=md5s)
    assert set(paths) == set(MNIST_FILES)


def test_download_replaces_corrupt_present_file(tmp_path: Path, mirror):
    source, _, md5s = mirror
    root = tmp_path / "root"
    root.mkdir()
    (root / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    download_mnist(root, mirrors=[source], md5s=md5s)
    assert md5_map(root) == md5s
    assert leftovers(root) == sorted(MNIST_FILES)


@pytest.fixture
def web_server(mirror):
    """The mirror folder served over HTTP on this machine; yields its base URL."""
    source, _, _ = mirror
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(source)
    )
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def test_download_over_http_passes_timeout(tmp_path: Path, mirror, web_server):
    requests = pytest.importorskip("requests")
    _, arrays, md5s = mirror
    seen = []
    real_get = requests.get

    def spy(url, *args, **kwargs):
        seen.append((url, kwargs.get("timeout")))
        return real_get(url, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(requests, "get", spy)
        paths = download_mnist(
            tmp_path / "root", mirrors=[web_server], timeout=2.5, md5s=md5s
        )
    assert sorted(url for url, _ in seen) == sorted(web_server + n for n in md5s)
    assert all(timeout == 2.5 for _, timeout in seen)
    for name, path in paths.items():
        np.testing.assert_array_equal(read_idx(path), arrays[name])


def test_download_offline_names_the_file_and_the_network(tmp_path: Path):
    # a port that nobody listens on: the request fails as it does without a network
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    with pytest.raises(RuntimeError) as info:
        download_mnist(tmp_path / "root", mirrors=[closed], timeout=2.0)
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert "network" in message and closed + "train-images-idx3-ubyte.gz" in message
    assert leftovers(tmp_path / "root") == []


def test_default_mirrors_are_https_bases():
    assert all(base.startswith("https://") for base in mnist.DEFAULT_MIRRORS)
    assert all(base.endswith("/mnist/") for base in mnist.DEFAULT_MIRRORS)


# --------------------------------------------------------------------------
# MNISTDigits and normalisation
# --------------------------------------------------------------------------


def test_dataset_items():
    images, labels = load_bundled_mnist()
    dataset = MNISTDigits(images, labels)
    assert len(dataset) == 5000
    image, label = dataset[1234]
    assert image.dtype == torch.float32 and image.shape == (1, 28, 28)
    assert label.dtype == torch.int64 and label.shape == ()
    assert int(label) == labels[1234]
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    torch.testing.assert_close(image[0], torch.from_numpy(images[1234]).float() / 255.0)


def test_dataset_extremes_scale_exactly():
    images = np.array([np.zeros((28, 28)), np.full((28, 28), 255)], dtype=np.uint8)
    dataset = MNISTDigits(images, np.array([0, 1]))
    assert float(dataset[0][0].max()) == 0.0
    assert float(dataset[1][0].min()) == 1.0


def test_dataset_with_dataloader_and_normalize():
    (train_x, train_y), _ = bundled_split(n_train=64, n_test=10)
    dataset = MNISTDigits(train_x, train_y, transform=normalize_mnist)
    loader = torch.utils.data.DataLoader(dataset, batch_size=16)
    batch_x, batch_y = next(iter(loader))
    assert batch_x.shape == (16, 1, 28, 28) and batch_x.dtype == torch.float32
    assert batch_y.shape == (16,) and batch_y.dtype == torch.int64
    raw = torch.from_numpy(train_x[:16]).float().unsqueeze(1) / 255.0
    torch.testing.assert_close(batch_x, (raw - 0.1307) / 0.3081)


def test_dataset_does_not_alias_inputs():
    images, labels = load_bundled_mnist()
    dataset = MNISTDigits(images, labels)
    images[:] = 0
    labels[:] = 0
    assert float(dataset[0][0].max()) > 0
    assert int(dataset[4999][1]) == 9


def test_dataset_accepts_tensors():
    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([1, 2, 3])
    image, label = MNISTDigits(images, labels)[2]
    torch.testing.assert_close(image[0], images[2].float() / 255)
    assert int(label) == 3


def test_dataset_validates_inputs():
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        MNISTDigits(images.astype(np.float32), np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="shape"):
        MNISTDigits(images.reshape(3, 784), np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        MNISTDigits(images, np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="integer"):
        MNISTDigits(images, np.zeros(3, dtype=np.float32))


def test_normalize_mnist():
    x = torch.tensor([0.0, 0.1307, 1.0])
    y = normalize_mnist(x)
    torch.testing.assert_close(y, (x - 0.1307) / 0.3081)
    assert abs(float(y[1])) < 1e-6
    torch.testing.assert_close(normalize_mnist(x, mean=0.5, std=0.5), 2 * x - 1)
    # Over the bundled digits the standardised pixels are roughly N(0, 1)-scaled.
    images, _ = load_bundled_mnist()
    z = normalize_mnist(torch.from_numpy(images).float() / 255)
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05


def test_bundled_split_rejects_a_negative_seed():
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        mnist.bundled_split_indices(10, 10, seed=-1)


def test_digits_transform_must_be_callable():
    images, labels = np.zeros((2, 28, 28), np.uint8), np.arange(2)
    with pytest.raises(TypeError, match="transform must be callable or None"):
        mnist.MNISTDigits(images, labels, transform="flip")
