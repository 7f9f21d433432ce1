"""Data safety of training: a run killed at a random point (SIGKILL, no clean-up) and
resumed with ``--resume`` ends with exactly the weights of an uninterrupted run.

Runs the MNIST task (``python -m norse.task.mnist``) in subprocesses with a tiny
configuration on the CPU. The checkpoint is written atomically
(:func:`norse.task.harness.atomic_save`), so the kill leaves either the previous or the
next complete checkpoint, never a torn one, whatever instant it hits.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from norse.task import harness

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 4
TINY = (
    f"--n-train 64 --n-test 32 --epochs {EPOCHS} --batch-size 16 --seq-length 3 "
    "--hidden 16 --channels 4 8 --threads 1 --no-plots --no-progress"
).split()


def _command(output, *extra):
    return [sys.executable, "-m", "norse.task.mnist", *TINY, "--output", str(output)]


def _environment():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    env.pop("NORSE_ANOMALY", None)
    return env


def _run(output, *extra):
    result = subprocess.run(
        _command(output) + list(extra),
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def _kill_after_first_checkpoint(output, delay):
    """Starts a run, waits until its first checkpoint exists, waits ``delay`` seconds
    more and kills it with SIGKILL. Returns whether it was still running."""
    process = subprocess.Popen(
        _command(output),
        cwd=ROOT,
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    checkpoint = Path(output) / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.002)
    time.sleep(delay)
    running = process.poll() is None
    if running:
        process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    if not running:
        assert process.returncode == 0, stderr.decode()[-2000:]
    return running


def _load(output):
    return torch.load(Path(output) / "checkpoint.pt", weights_only=False)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    _run(tmp_path / "uninterrupted")
    expected = _load(tmp_path / "uninterrupted")

    generator = random.Random()  # a random kill point on every run of the test
    delay = generator.uniform(0.0, 0.2)
    for attempt in range(8):
        output = tmp_path / f"killed{attempt}"
        running = _kill_after_first_checkpoint(output, delay)
        if running and _load(output)["epoch"] < EPOCHS - 1:
            break  # killed before the last epoch was saved
        delay /= 3  # training had finished: kill sooner
    else:
        pytest.fail("the run always finished training before it could be killed")
    _run(output, "--resume")
    resumed = _load(output)

    assert resumed["epoch"] == expected["epoch"] == EPOCHS - 1
    assert resumed["model"].keys() == expected["model"].keys()
    for key, value in expected["model"].items():
        assert torch.equal(resumed["model"][key], value), (key, delay)
    assert [row["train_loss"] for row in resumed["history"]] == [
        row["train_loss"] for row in expected["history"]
    ]
    # the metrics file matches the checkpoint: no epoch twice after the resume
    rows = (output / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == EPOCHS


def _fit(output, epochs, resume):
    harness.seed_everything(1)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=generator)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(model, batch):
        data, labels = batch
        out = model(data)
        loss = torch.nn.functional.cross_entropy(out, labels)
        return loss, (out.argmax(1) == labels).sum()

    harness.fit(
        model,
        optimizer,
        step,
        lambda epoch: harness.batches(x, y, 8, shuffle=True, seed=epoch),
        num_batches=4,
        epochs=epochs,
        output_dir=output,
        resume=resume,
        progress=False,
    )


def test_resume_drops_metrics_of_an_epoch_without_checkpoint(tmp_path):
    """A kill after an epoch's metrics were appended but before its checkpoint was
    saved: the resumed run repeats that epoch and must not list it twice."""
    _fit(tmp_path, epochs=2, resume=False)
    metrics = tmp_path / "metrics.jsonl"
    with open(metrics, "a") as stream:
        stream.write(json.dumps({"epoch": 3, "train_loss": 0.0}) + "\n")
    _fit(tmp_path, epochs=4, resume=True)
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    assert rows[2]["train_loss"] != 0.0
    assert not list(tmp_path.glob("*.tmp"))
