import pickle
import zipfile

import numpy as np
import pytest
import torch

from norse.dataset import spiking_heidelberg as shd
from norse.dataset.events import collate_frames

h5py = pytest.importorskip("h5py")
pooch = pytest.importorskip("pooch")
tonic = pytest.importorskip("tonic")

SAMPLES = [  # (times in s, channels, label)
    (np.array([0.0, 0.0004, 0.0015, 0.5, 1.39], np.float16), [3, 3, 699, 10, 0], 7),
    (np.array([0.25, 0.2501], np.float16), [100, 101], 19),
    (np.array([], np.float16), [], 0),
]


def write_shd_file(path, samples=SAMPLES):
    """An HDF5 file laid out like the real SHD files (variable-length arrays)."""
    with h5py.File(path, "w") as handle:
        spikes = handle.create_group("spikes")
        times = spikes.create_dataset(
            "times", (len(samples),), dtype=h5py.vlen_dtype(np.float16)
        )
        units = spikes.create_dataset(
            "units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16)
        )
        for index, (t, u, _) in enumerate(samples):
            times[index] = t
            units[index] = np.asarray(u, np.uint16)
        handle.create_dataset(
            "labels", data=np.array([s[2] for s in samples], np.uint16)
        )
        extra = handle.create_group("extra")
        extra.create_dataset("speaker", data=np.arange(len(samples), dtype=np.uint16))
        extra.create_dataset("keys", data=np.array([b"null", b"eins"]))
    return path


def zip_next_to(path):
    """``path`` packed into ``path.zip`` as the SHD archives are; returns the zip."""
    archive = path.with_name(path.name + ".zip")
    with zipfile.ZipFile(archive, "w") as packed:
        packed.write(path, arcname=path.name)
    return archive


@pytest.fixture
def shd_root(tmp_path):
    """A folder in tonic's layout: root/SHD/shd_{train,test}.h5 and their archives."""
    root = tmp_path / "shd"
    (root / "SHD").mkdir(parents=True)
    zip_next_to(write_shd_file(root / "SHD" / "shd_train.h5"))
    zip_next_to(write_shd_file(root / "SHD" / "shd_test.h5", SAMPLES[:2]))
    return root


def test_bin_events_floors_times_to_steps_and_clips_late_events():
    data = shd.bin_events(
        [0.0, 0.0009, 0.0021, 0.5, 9.0], [1, 1, 2, 0, 3], 0.001, 10, 4
    )
    assert data.shape == (10, 4) and data.dtype == torch.uint8
    expected = torch.zeros(10, 4, dtype=torch.uint8)
    expected[0, 1] = 1  # two events in one step count once
    expected[2, 2] = 1
    expected[9, 0] = 1  # after the last step: into the last step
    expected[9, 3] = 1
    torch.testing.assert_close(data, expected)


def test_bin_events_rejects_bad_events():
    with pytest.raises(ValueError, match="same length"):
        shd.bin_events([0.1], [1, 2], 0.001, 10, 4)
    with pytest.raises(ValueError, match="units must lie"):
        shd.bin_events([0.1], [4], 0.001, 10, 4)
    with pytest.raises(ValueError, match=">= 0"):
        shd.bin_events([-0.1], [1], 0.001, 10, 4)


def test_samples_become_time_first_spike_tensors(shd_root):
    data = shd.SpikingHeidelbergDigitsDataset(shd_root)
    assert len(data) == 3 and data.steps == int(1.4 // 0.001 + 1) == 1400
    spikes, label = data[0]
    assert spikes.is_sparse and spikes.shape == (1400, 700)
    assert label.dtype == torch.uint8 and label.item() == 7
    dense = spikes.to_dense()
    times, units, _ = SAMPLES[0]
    steps = np.floor(times.astype(np.float64) / 0.001).astype(int)
    assert {tuple(e) for e in dense.nonzero().tolist()} == {
        (int(s), int(u)) for s, u in zip(steps, units)
    }
    assert dense.sum() == 4  # the two channel-3 events of step 0 merge
    assert data[2][0].to_dense().sum() == 0 and data[-1][1].item() == 0


def test_dense_coarse_steps_test_split_and_iteration(shd_root):
    data = shd.SpikingHeidelbergDigitsDataset(
        shd_root, dt=0.01, sparse=False, train=False
    )
    assert len(data) == 2
    spikes, label = data[1]
    assert (
        not spikes.is_sparse and spikes.shape == (140, 700) and label.item() == 19
    )  # int(1.4 // 0.01 + 1)
    assert spikes[25, 100] == 1 and spikes[25, 101] == 1 and spikes.sum() == 2
    labels = [int(y) for _, y in data]
    assert labels == [7, 19]
    batch, targets = next(iter(torch.utils.data.DataLoader(data, batch_size=2)))
    assert batch.shape == (2, 140, 700) and targets.tolist() == [7, 19]


def test_pickles_for_dataloader_workers(shd_root):
    data = shd.SpikingHeidelbergDigitsDataset(shd_root, sparse=False)
    first = data[0]
    copy = pickle.loads(pickle.dumps(data))
    torch.testing.assert_close(copy[0], first)


def test_batches_collate_time_first(shd_root):
    data = shd.SpikingHeidelbergDigitsDataset(shd_root, dt=0.01, sparse=False)
    loader = torch.utils.data.DataLoader(data, batch_size=3, collate_fn=collate_frames)
    spikes, labels = next(iter(loader))
    assert spikes.shape == (140, 3, 700) and labels.tolist() == [7, 19, 0]
    torch.testing.assert_close(spikes[:, 1], data[1][0])


def test_missing_file_and_wrong_layout_raise(tmp_path, shd_root):
    with pytest.raises(FileNotFoundError, match="download=True"):
        shd.SpikingHeidelbergDigitsDataset(tmp_path / "nowhere")
    # without its archive tonic would download by itself: refused when download=False
    (shd_root / "SHD" / "shd_test.h5.zip").unlink()
    with pytest.raises(FileNotFoundError, match="archive shd_test.h5.zip"):
        shd.SpikingHeidelbergDigitsDataset(shd_root, train=False)
    (tmp_path / "SHD").mkdir()
    with h5py.File(tmp_path / "SHD" / "shd_train.h5", "w") as handle:
        handle.create_dataset("labels", data=np.zeros(2))
    zip_next_to(tmp_path / "SHD" / "shd_train.h5")
    with pytest.raises(ValueError, match="not an SHD file"):
        shd.SpikingHeidelbergDigitsDataset(tmp_path)
    with pytest.raises(ValueError, match="dt"):
        shd.SpikingHeidelbergDigitsDataset(shd_root, dt=0)


def _mirror_of(source, mirror):
    """A local mirror holding the zip of ``source``; returns the zip's MD5."""
    mirror.mkdir()
    (mirror / source.name).write_bytes(source.read_bytes())
    return pooch.file_hash(str(zip_next_to(mirror / source.name)), alg="md5")


def test_download_fetches_checks_and_unpacks_once(tmp_path, shd_root):
    md5 = _mirror_of(shd_root / "SHD" / "shd_train.h5", tmp_path / "mirror")

    class Local(shd.SpikingHeidelbergDigitsDataset):
        train_checksum = md5

    root = tmp_path / "cache"
    data = Local(
        root, download=True, mirrors=[tmp_path / "nowhere", tmp_path / "mirror"]
    )
    assert len(data) == 3 and data[0][1].item() == 7
    assert sorted(p.name for p in (root / "SHD").iterdir()) == [
        "shd_train.h5",
        "shd_train.h5.zip",
    ]
    assert (root / "SHD" / "shd_train.h5").read_bytes() == (
        shd_root / "SHD" / "shd_train.h5"
    ).read_bytes()
    # Intact in the cache: no mirror is asked again, a lost file is unpacked again.
    (root / "SHD" / "shd_train.h5").unlink()
    assert len(Local(root, download=True, mirrors=[tmp_path / "nowhere"])) == 3


def test_download_rejects_a_corrupt_archive(tmp_path, shd_root):
    _mirror_of(shd_root / "SHD" / "shd_train.h5", tmp_path / "mirror")

    class Wrong(shd.SpikingHeidelbergDigitsDataset):
        train_checksum = "0" * 32

    with pytest.raises(RuntimeError, match="MD5 hash of downloaded file"):
        Wrong(tmp_path / "a", download=True, mirrors=[tmp_path / "mirror"])
    assert list((tmp_path / "a" / "SHD").iterdir()) == []


def test_urls_and_checksums_are_tonics():
    cls = shd.SpikingHeidelbergDigitsDataset
    assert cls.mirrors == (tonic.datasets.SHD.base_url,)
    assert cls.train_url == cls.mirrors[0] + tonic.datasets.SHD.train_zip
    assert cls.test_url == cls.mirrors[0] + tonic.datasets.SHD.test_zip
    assert (cls.train_checksum, cls.test_checksum) == (
        tonic.datasets.SHD.train_md5,
        tonic.datasets.SHD.test_md5,
    )
    assert (cls.train_file + ".zip", cls.test_file + ".zip") == (
        tonic.datasets.SHD.train_zip,
        tonic.datasets.SHD.test_zip,
    )
    assert (cls.n_units, cls.max_length) == (700, 1.4)


@pytest.mark.parametrize(
    "times, units, message",
    [
        ([0.1, float("nan")], [1, 2], "spike times must be finite"),
        ([0.1, float("inf")], [1, 2], "spike times must be finite"),
        ([0.1, 0.2], [1, 2.5], "units must be integer channel indices"),
        ([0.1], [float("nan")], "units must be integer channel indices"),
    ],
)
def test_bin_events_rejects_non_finite_times_and_fractional_units(
    times, units, message
):
    with pytest.raises(ValueError, match=message):
        shd.bin_events(times, units, 0.001, 10, 4)


def test_bin_events_checks_its_sizes_and_types():
    with pytest.raises(ValueError, match="steps must be a positive int"):
        shd.bin_events([0.0], [1], 0.001, 0, 4)
    with pytest.raises(ValueError, match="n_units must be a positive int"):
        shd.bin_events([0.0], [1], 0.001, 10, 4.0)
    with pytest.raises(ValueError, match="dt must be a positive, finite number"):
        shd.bin_events([0.0], [1], float("nan"), 10, 4)
    with pytest.raises(
        TypeError, match="times must be an array or sequence of numbers"
    ):
        shd.bin_events(None, [1], 0.001, 10, 4)


def test_bin_events_puts_very_late_spikes_into_the_last_step():
    spikes = shd.bin_events([1e30, 0.0], [2, 1], 0.001, 10, 4)
    assert spikes[9, 2] == 1 and spikes[0, 1] == 1 and spikes.sum() == 2


def test_split_flag_must_be_a_bool(tmp_path):
    with pytest.raises(TypeError, match=r"train must be a bool \(True: the training"):
        shd.SpikingHeidelbergDigitsDataset(tmp_path, train="test")
    with pytest.raises(TypeError, match="root must be a path"):
        shd.SpikingHeidelbergDigitsDataset(None)
