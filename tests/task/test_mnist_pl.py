import json
import math

import pytest
import torch

pl = pytest.importorskip("pytorch_lightning")

from norse.task import mnist_pl  # noqa: E402


@pytest.fixture(autouse=True)
def reference_loops(monkeypatch):
    monkeypatch.setenv("NORSE_FUSED", "0")  # the Lightning wiring is under test here


def test_tiny_run_trains_tests_and_checkpoints(tmp_path):
    summary = mnist_pl.main(
        [
            "--n_train",
            "32",
            "--n_test",
            "16",
            "--max_epochs",
            "1",
            "--seq_length",
            "2",
            "--batch_size",
            "16",
            "--accelerator",
            "cpu",
            "--output",
            str(tmp_path),
            "--no_progress",
        ]  # fmt: skip
    )
    assert summary["train_samples"] == 32 and summary["test_samples"] == 16
    assert 0 <= summary["test_accuracy"] <= 1 and summary["epochs"] == 1
    assert list(tmp_path.rglob("*.ckpt")), "Lightning wrote no checkpoint"
    assert list(tmp_path.rglob("metrics.csv"))
    assert json.loads((tmp_path / "summary.json").read_text())["epochs"] == 1


def test_module_matches_norse_1_1_interface():
    net = mnist_pl.LIFConvNet(28 * 28, seq_length=3, learning_rate=1e-3)
    out = net(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 10)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(2))
    silent = mnist_pl.LIFConvNet(
        28 * 28, seq_length=3, learning_rate=1e-3, input_scale=0.0
    )
    silent.rsnn.load_state_dict(net.rsnn.state_dict())
    # no input current: no spikes, equal scores for every class
    torch.testing.assert_close(
        silent(torch.rand(2, 1, 28, 28)), torch.full((2, 10), -math.log(10))
    )
    only_out = mnist_pl.LIFConvNet(784, 3, 1e-3, optimizer="sgd", only_output=True)
    optimizer = only_out.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    assert sum(p.numel() for g in optimizer.param_groups for p in g["params"]) == sum(
        p.numel() for p in only_out.rsnn.out.parameters()
    )
    with pytest.raises(ValueError, match="optimizer"):
        mnist_pl.LIFConvNet(784, 3, 1e-3, optimizer="rmsprop")
