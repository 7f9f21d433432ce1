import json

import pytest
import torch

from norse.task import cartpole, harness

pytest.importorskip("gymnasium")


@pytest.fixture(autouse=True)
def reference_loops(monkeypatch):
    # The policy's logic is under test here, not the fused kernels (tested on their
    # own), whose first call compiles for a while.
    monkeypatch.setenv("NORSE_FUSED", "0")


TINY = [
    "--updates", "2",
    "--episodes_per_update", "2",
    "--max_steps", "12",
    "--seq_length", "4",
    "--hidden", "8",
    "--no_progress",
]  # fmt: skip


def test_tiny_run_writes_checkpoint_metrics_summary_and_plots(tmp_path):
    summary = cartpole.main([*TINY, "--output", str(tmp_path)])
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [row["update"] for row in rows] == [1, 2]
    assert all(1 <= row["mean_return"] <= 12 for row in rows)
    assert summary["episodes"] == 4 and summary["policy"] == "snn"
    assert json.loads((tmp_path / "summary.json").read_text())["updates"] == 2
    for name in ("returns.png", "raster.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert checkpoint["update"] == 1


def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path, monkeypatch):
    cartpole.main([*TINY, "--output", str(tmp_path / "full"), "--no_plots"])
    save = harness.atomic_save

    def save_then_die(obj, path):
        save(obj, path)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(harness.checkpoints, "atomic_save", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            cartpole.main([*TINY, "--output", str(tmp_path / "split"), "--no_plots"])
    cartpole.main(
        [*TINY, "--output", str(tmp_path / "split"), "--no_plots", "--resume"]
    )
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    split = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    for name, value in full["policy"].items():
        torch.testing.assert_close(split["policy"][name], value, rtol=0, atol=0)
    assert [r["mean_return"] for r in full["history"]] == [
        r["mean_return"] for r in split["history"]
    ]


def test_discounted_returns():
    assert cartpole.discounted_returns([1.0, 1.0, 1.0], 0.5) == [1.75, 1.5, 1.0]
    assert cartpole.discounted_returns([], 0.9) == []


def test_reinforce_step_favours_the_action_of_the_longer_episode():
    logits = torch.zeros(2, requires_grad=True)
    log_p = torch.log_softmax(logits, 0)
    # Episode 1 took action 0 for 3 steps, episode 2 took action 1 for 1 step.
    loss = cartpole.reinforce_loss(
        [[log_p[0]] * 3, [log_p[1]]], [[1.0] * 3, [1.0]], gamma=1.0
    )
    loss.backward()
    assert logits.grad[0] < 0 < logits.grad[1]  # descent raises the logit of action 0


@pytest.mark.parametrize("policy", ["snn", "lsnn", "ann"])
def test_policies_give_two_logits(policy):
    args = cartpole.parse_args([*TINY, "--policy", policy])
    logits, spikes = cartpole.build_policy(args)(torch.randn(3, 4))
    assert logits.shape == (3, 2)
    assert (spikes is None) == (policy == "ann")
    if spikes is not None:
        assert spikes.shape == (4, 3, 8)


def test_bad_arguments_are_rejected():
    with pytest.raises(SystemExit):
        cartpole.parse_args(["--updates", "0"])
    with pytest.raises(SystemExit):
        cartpole.parse_args(["--policy", "lstm"])
