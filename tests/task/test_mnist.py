import gzip
import json

import numpy as np
import pytest
import torch

from norse.task import mnist

TINY = [
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--seq-length",
    "3",
    "--hidden",
    "16",
    "--channels",
    "4",
    "8",
    "--threads",
    "1",
    "--no-progress",
]


def test_tiny_run_writes_checkpoint_metrics_and_plots(tmp_path, capsys):
    out = tmp_path / "run"
    summary = mnist.main(
        TINY + ["--n-train", "64", "--n-test", "32", "--output", str(out)]
    )
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    for name in (
        "checkpoint.pt",
        "metrics.jsonl",
        "metrics.json",
        "training_curve.png",
        "raster.png",
    ):
        assert (out / name).exists(), name
    assert json.loads((out / "metrics.json").read_text())["n_test"] == 32
    assert "held-out accuracy" in capsys.readouterr().out


def test_resume_continues_to_the_same_weights(tmp_path):
    args = TINY + ["--n-train", "48", "--n-test", "16", "--no-plots"]
    mnist.main(args[:1] + ["2"] + args[2:] + ["--output", str(tmp_path / "full")])
    mnist.main(args + ["--output", str(tmp_path / "split")])
    mnist.main(
        args[:1] + ["2"] + args[2:] + ["--output", str(tmp_path / "split"), "--resume"]
    )
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["model"]
    split = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)[
        "model"
    ]
    for key in full:
        torch.testing.assert_close(full[key], split[key], rtol=0, atol=0)


def _write_idx(path, array):
    header = (2051 if array.ndim == 3 else 2049).to_bytes(4, "big")
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_full_mnist_from_local_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 32), ("t10k", 16)):
        _write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (n, 28, 28)),
        )
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    summary = mnist.main(
        TINY
        + [
            "--data",
            "full",
            "--data-dir",
            str(tmp_path),
            "--no-download",
            "--no-plots",
            "--output",
            str(tmp_path / "run"),
        ]
    )
    assert summary["n_train"] == 32 and summary["n_test"] == 16


@pytest.mark.parametrize("encoder", mnist.ENCODERS)
def test_model_shapes_and_backward(encoder):
    model = mnist.MNISTConvSNN(
        seq_length=4, channels=(4, 8), hidden=16, encoder=encoder
    )
    images = torch.rand(3, 1, 28, 28)
    record = {}
    voltages = model(images, record=record)
    assert voltages.shape == (4, 3, 10)
    assert record["hidden"].shape == (4, 3, 16)
    assert set(record["conv1"].unique().tolist()) <= {0.0, 1.0}
    voltages.max(0).values.sum().backward()
    assert model.conv1.weight.grad is not None


def test_bad_input():
    with pytest.raises(
        ValueError, match=r"images must have shape \(batch, 1, 28, 28\)"
    ):
        mnist.MNISTConvSNN()(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match="encoder must be one of"):
        mnist.MNISTConvSNN(encoder="rate")
    with pytest.raises(SystemExit):
        mnist.main(["--epochs", "-1"])


def test_random_affine_keeps_shape_and_zero_strength_is_identity():
    images = torch.rand(5, 1, 28, 28)
    assert torch.equal(mnist.random_affine(images, 0.0), images)
    moved = mnist.random_affine(images, 1.0, torch.Generator().manual_seed(0))
    assert moved.shape == images.shape and not torch.equal(moved, images)
