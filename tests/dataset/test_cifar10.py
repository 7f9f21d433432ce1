import pickle
import tarfile

import numpy as np
import pytest
import torch

from norse.dataset import cifar10

pooch = pytest.importorskip("pooch")


def md5_of(path):
    return pooch.file_hash(str(path), alg="md5")


def write_batch(path, count, seed):
    """A batch file in the format of the official 'python version' (a pickled dict)."""
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"testing batch",
        b"labels": [int(v) for v in rng.integers(0, 10, count)],
        b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(count)],
    }
    with open(path, "wb") as handle:
        pickle.dump(batch, handle)
    return batch


def make_cifar_folder(root):
    """A small ``cifar-10-batches-py`` folder; patches the expected MD5s to its files."""
    folder = root / cifar10.FOLDER
    folder.mkdir(parents=True)
    batches = {name: write_batch(folder / name, 3, k) for k, name in enumerate(
        ["data_batch_1", "data_batch_2", "test_batch"])}  # fmt: skip
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump(
            {b"label_names": [c.encode() for c in cifar10.CIFAR10_CLASSES]}, handle
        )
    train = tuple((n, md5_of(folder / n)) for n in ("data_batch_1", "data_batch_2"))
    test = (("test_batch", md5_of(folder / "test_batch")),)
    return folder, batches, train, test


@pytest.fixture
def small_cifar(tmp_path, monkeypatch):
    folder, batches, train, test = make_cifar_folder(tmp_path / "data")
    monkeypatch.setattr(cifar10, "TRAIN_FILES", train)
    monkeypatch.setattr(cifar10, "TEST_FILES", test)
    return tmp_path / "data", batches


def test_load_parses_channels_rows_columns(small_cifar):
    root, batches = small_cifar
    images, labels = cifar10.load_cifar10(root, train=True)
    assert images.shape == (6, 3, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    expected = batches["data_batch_1"][b"labels"] + batches["data_batch_2"][b"labels"]
    assert labels.tolist() == expected
    row = batches["data_batch_1"][b"data"][0]  # 1024 red, 1024 green, 1024 blue values
    assert images[0, 1, 2, 5] == row[1024 + 2 * 32 + 5]
    test_images, _ = cifar10.load_cifar10(root, train=False)
    assert test_images.shape == (3, 3, 32, 32)


def test_dataset_items_and_transform(small_cifar):
    root, _ = small_cifar
    data = cifar10.CIFAR10(root, train=False, transform=lambda x: x * 2)
    image, label = data[1]
    assert len(data) == 3 and image.shape == (3, 32, 32) and isinstance(label, int)
    assert 0 <= image.min() and image.max() <= 2


def test_corrupt_or_missing_files_are_reported(small_cifar, tmp_path):
    root, _ = small_cifar
    with open(root / cifar10.FOLDER / "test_batch", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(ValueError, match="corrupt"):
        cifar10.load_cifar10(root, train=False)
    with pytest.raises(FileNotFoundError, match="download=True"):
        cifar10.load_cifar10(tmp_path / "empty", train=True)


def test_download_from_a_mirror_checks_and_unpacks(tmp_path, monkeypatch):
    folder, _, train, test = make_cifar_folder(tmp_path / "source")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with tarfile.open(mirror / cifar10.ARCHIVE, "w:gz") as tar:
        tar.add(folder, arcname=cifar10.FOLDER)
    monkeypatch.setattr(cifar10, "TRAIN_FILES", train)
    monkeypatch.setattr(cifar10, "TEST_FILES", test)
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", "0" * 32)
    with pytest.raises(RuntimeError, match="MD5 hash of downloaded file"):
        cifar10.download_cifar10(tmp_path / "bad", mirrors=[mirror])
    assert not (tmp_path / "bad" / cifar10.ARCHIVE).exists()
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", md5_of(mirror / cifar10.ARCHIVE))
    images, _ = cifar10.load_cifar10(
        tmp_path / "cache", download=True, mirrors=[mirror]
    )
    assert images.shape == (6, 3, 32, 32)
    # Intact files: no mirror is needed again.
    cifar10.download_cifar10(tmp_path / "cache", mirrors=[])
    # A corrupt batch is unpacked again from the cached archive, without a mirror.
    batch = tmp_path / "cache" / cifar10.FOLDER / "test_batch"
    batch.write_bytes(b"garbage")
    cifar10.download_cifar10(tmp_path / "cache", mirrors=[tmp_path / "nowhere"])
    assert md5_of(batch) == dict(test)["test_batch"]


def test_random_crop_flip_shifts_and_mirrors():
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4) + 1
    generator = torch.Generator().manual_seed(0)
    out = cifar10.random_crop_flip(images, padding=1, generator=generator)
    assert out.shape == images.shape
    for k in range(2):
        # every output is a shifted (zero-filled) and possibly mirrored copy
        candidates = []
        padded = torch.nn.functional.pad(images[k], (1, 1, 1, 1))
        for dy in range(3):
            for dx in range(3):
                crop = padded[:, dy : dy + 4, dx : dx + 4]
                candidates += [crop, crop.flip(-1)]
        assert any(torch.equal(out[k], c) for c in candidates)
    assert torch.equal(
        cifar10.random_crop_flip(
            images, padding=0, generator=torch.Generator().manual_seed(1)
        )
        .abs()
        .sum(),
        images.sum(),
    )


def test_official_checksums():
    assert cifar10.ARCHIVE_MD5 == "c58f30108f718f92721af3b95e74349a"
    assert dict(cifar10.TEST_FILES)["test_batch"] == "40351d587109b95175f43aff81a1287e"
    assert len(cifar10.TRAIN_FILES) == 5


def test_random_crop_flip_checks_its_arguments():
    with pytest.raises(TypeError, match="images must be a torch.Tensor"):
        cifar10.random_crop_flip(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"images must have shape \(N, C, H, W\)"):
        cifar10.random_crop_flip(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="padding must be an int >= 0"):
        cifar10.random_crop_flip(torch.zeros(1, 3, 4, 4), padding=-1)


def test_split_flag_must_be_a_bool(tmp_path):
    # a split name is truthy: train="test" used to load the training batches
    with pytest.raises(TypeError, match=r"train must be a bool \(True: the training"):
        cifar10.load_cifar10(tmp_path, train="test")
    with pytest.raises(TypeError, match="train must be a bool"):
        cifar10.CIFAR10(tmp_path, train="test")
    with pytest.raises(TypeError, match="transform must be callable"):
        cifar10.CIFAR10(tmp_path, transform="flip")
