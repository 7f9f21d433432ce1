import json

import pytest
import torch

from norse.task import harness, memory

TINY = [
    "--neurons", "6",
    "--batches_per_epoch", "2",
    "--batch_size", "4",
    "--seq_length", "5",
    "--seq_periods", "4",
    "--val_samples", "6",
    "--test_samples", "6",
    "--no_progress",
]  # fmt: skip


@pytest.fixture(autouse=True)
def reference_loops(monkeypatch):
    # The task's logic is under test here, not the fused kernels of the readout (tested
    # on their own), whose first call compiles for a while.
    monkeypatch.setenv("NORSE_FUSED", "0")


def _run(tmp_path, *extra):
    return memory.main([*TINY, "--output", str(tmp_path), *extra])


def test_one_epoch_writes_checkpoint_metrics_summary_and_plots(tmp_path):
    summary = _run(tmp_path, "--epochs", "1")
    for name in ("checkpoint.pt", "metrics.jsonl", "summary.json"):
        assert (tmp_path / name).is_file(), name
    for name in ("history.png", "raster.png", "readout.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert len(rows) == 1 and rows[0]["epoch"] == 1
    for key in ("train_loss", "val_accuracy", "val_accuracy_long_delay"):
        assert key in rows[0]
    assert 0 <= summary["test_accuracy"] <= 1 and summary["test_samples"] == 6
    assert summary["best_epoch"] == 1
    assert json.loads((tmp_path / "summary.json").read_text())["epochs"] == 1
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert checkpoint["extra"]["args"]["neuron_model"] == "lsnnlif"


def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path, monkeypatch):
    _run(tmp_path / "full", "--epochs", "2", "--no_plots")
    save = harness.atomic_save

    def save_then_die(obj, path):  # the run is killed right after its first checkpoint
        save(obj, path)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(harness.checkpoints, "atomic_save", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            _run(tmp_path / "split", "--epochs", "2", "--no_plots")
    assert (
        torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)["epoch"]
        == 0
    )
    _run(tmp_path / "split", "--epochs", "2", "--no_plots", "--resume")
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    split = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    for name, value in full["model"].items():
        torch.testing.assert_close(split["model"][name], value, rtol=0, atol=0)
    assert [r["train_loss"] for r in full["history"]] == [
        r["train_loss"] for r in split["history"]
    ]


@pytest.mark.parametrize(
    "model, lif, lsnn", [("lsnnlif", 3, 3), ("lsnn", 0, 6), ("lif", 6, 0)]
)
def test_neuron_models(model, lif, lsnn):
    net = memory.build_model(memory.parse_args([*TINY, "--neuron", model]))
    assert (net.lif_neurons, net.lsnn_neurons) == (lif, lsnn)
    voltages, spikes, thresholds = net(torch.ones(7, 2, 20), record_thresholds=True)
    assert voltages.shape == (7, 2, 2) and spikes.shape == (7, 2, 6)
    assert (thresholds is None) == (lsnn == 0)


def test_lsnn_thresholds_jump_by_beta_per_spike():
    torch.manual_seed(0)
    args = memory.parse_args([*TINY, "--neuron", "lsnn", "--beta", "0.3"])
    net = memory.build_model(args)
    _, spikes, thresholds = net(torch.ones(30, 1, 20) * 3, record_thresholds=True)
    count = spikes[:, 0].sum(0)  # b jumps in the step of the spike
    assert count.sum() > 0
    # b = v_th + beta * (number of spikes), each jump decaying by at most 30 steps
    decay = (1 - args.dt / args.tau_adapt) ** 30
    rise = thresholds[-1, 0] - args.v_th
    assert (rise <= 0.3 * count + 1e-6).all()
    assert (rise >= 0.3 * count * decay - 1e-6).all()


def test_recall_logits_average_the_recall_period():
    voltages = torch.arange(2 * 3 * 4 * 2, dtype=torch.float32).reshape(12, 2, 2)
    labels = torch.zeros(2, 4, 2, dtype=torch.uint8)
    labels[0, 2, 1] = 1
    labels[1, 3, 0] = 1
    logits, targets, mask = memory.recall_logits(voltages, labels, seq_length=3)
    torch.testing.assert_close(logits[0], voltages[6:9, 0].mean(0))
    torch.testing.assert_close(logits[1], voltages[9:12, 1].mean(0))
    assert targets.tolist() == [1, 0] and mask.sum() == 2


def test_bad_arguments_are_rejected():
    with pytest.raises(SystemExit):
        memory.parse_args(["--neurons", "0"])
    with pytest.raises(SystemExit):
        memory.parse_args(["--neuron", "izhikevich"])
    net = memory.build_model(memory.parse_args(TINY))
    with pytest.raises(ValueError, match="x must be"):
        net(torch.ones(3, 2, 7))
