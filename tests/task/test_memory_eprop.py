import json

import pytest
import torch

from norse.dataset.memory import MemoryStoreRecallDataset
from norse.task import memory, memory_eprop

TINY = [
    "--neurons", "6",
    "--batches_per_epoch", "2",
    "--batch_size", "4",
    "--seq_length", "5",
    "--seq_periods", "4",
    "--val_samples", "6",
    "--test_samples", "6",
    "--no_progress",
    "--no_plots",
]  # fmt: skip


@pytest.fixture(autouse=True)
def reference_loops(monkeypatch):
    monkeypatch.setenv("NORSE_FUSED", "0")


def test_the_eprop_step_gives_bptts_gradient_of_the_task_loss_without_recurrence():
    # Zero recurrent weights: e-prop is exact, so its gradient of the task's loss (recall
    # cross-entropy plus rate regulariser) is the one autograd finds through MemoryNet.
    torch.manual_seed(0)
    args = memory.parse_args([*TINY, "--seq_length", "20", "--input_scale", "4"])
    net = memory.build_model(args).double()
    with torch.no_grad():
        net.recurrent_weights.zero_()
    data = MemoryStoreRecallDataset(
        4, seq_length=20, seq_periods=4, seq_repetitions=1, seed=3
    )
    x, labels = next(memory.dataset_batches(data, 4))
    x = x.double()

    def regularizer(rates):
        return 0.5 * ((rates - 10.0) / 10.0).pow(2).mean()

    voltages, spikes, _ = net(x.transpose(0, 1))
    logits, targets, _ = memory.recall_logits(voltages, labels, args.seq_length)
    rates = spikes.mean((0, 1)) / args.dt
    loss = torch.nn.functional.cross_entropy(logits, targets) + regularizer(rates)
    loss.backward()
    expected = {name: p.grad.clone() for name, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    assert spikes.sum() > 20

    trainer = memory_eprop.build_trainer(net)
    loss_e, correct, count = memory_eprop.train_step(
        trainer, (x, labels), args.seq_length, args.dt, regularizer, torch.device("cpu")
    )
    loss_e.backward()
    torch.testing.assert_close(loss_e, loss)
    assert count == 4 and correct == (logits.argmax(-1) == targets).sum()
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-9, atol=1e-12)


def test_eprop_trains_from_the_command_line(tmp_path):
    summary = memory.main(
        [*TINY, "--learning", "eprop", "--feedback", "random", "--epochs", "1"]
        + ["--output", str(tmp_path)]
    )
    assert summary["learning"] == "eprop"
    assert 0 <= summary["test_accuracy"] <= 1
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert row.get("skipped_steps", 0) == 0


def test_unknown_learning_rules_are_rejected():
    with pytest.raises(SystemExit):
        memory.parse_args(["--learning", "ottt"])
    with pytest.raises(SystemExit):
        memory.parse_args(["--feedback", "transposed"])


def test_a_sample_with_several_recalls_is_refused():
    args = memory.parse_args(TINY)
    trainer = memory_eprop.build_trainer(memory.build_model(args))
    x = torch.zeros(1, 20, 20)
    labels = torch.zeros(1, 4, 2, dtype=torch.uint8)
    labels[0, 2:, 0] = 1
    with pytest.raises(ValueError, match="exactly one RECALL period"):
        memory_eprop.train_step(
            trainer, (x, labels), 5, 0.001, lambda r: r.sum(), torch.device("cpu")
        )
