import importlib.util
import json
from pathlib import Path

import pytest
import torch

from norse.dataset import cifar10 as data
from norse.task import cifar10

# The real-format folder writer of the data set tests.
_spec = importlib.util.spec_from_file_location(
    "cifar10_data_tests", Path(__file__).parents[1] / "dataset" / "test_cifar10.py"
)
_data_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_data_tests)


@pytest.fixture(autouse=True)
def reference_loops(monkeypatch):
    monkeypatch.setenv("NORSE_FUSED", "0")  # the task's wiring is under test here


def test_tiny_run_writes_checkpoint_metrics_summary_and_plots(tmp_path, monkeypatch):
    _, _, train, test = _data_tests.make_cifar_folder(tmp_path / "data")
    monkeypatch.setattr(data, "TRAIN_FILES", train)
    monkeypatch.setattr(data, "TEST_FILES", test)
    summary = cifar10.main(
        [
            "--data",
            str(tmp_path / "data"),
            "--output",
            str(tmp_path / "run"),
            "--epochs",
            "1",
            "--batch_size",
            "4",
            "--seq_length",
            "2",
            "--channels",
            "2",
            "2",
            "2",
            "--no_download",
            "--no_progress",
        ]  # fmt: skip
    )
    assert summary["train_samples"] == 6 and summary["test_samples"] == 3
    assert 0 <= summary["test_accuracy"] <= 1
    rows = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert len(rows) == 1 and "test_accuracy" in rows[0]
    for name in ("checkpoint.pt", "summary.json"):
        assert (tmp_path / "run" / name).is_file()
    for name in ("history.png", "raster.png"):
        assert (tmp_path / "run" / name).read_bytes()[:4] == b"\x89PNG"


def test_network_shapes():
    net = cifar10.LIFConvNet(seq_length=3, channels=(2, 3, 4))
    scores, spikes = net(torch.randn(5, 3, 32, 32), return_spikes=True)
    assert scores.shape == (5, 10) and spikes.shape == (3, 5, 2, 32, 32)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
