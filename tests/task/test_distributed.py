"""Distributed training with ``torchrun``: 2 CPU processes, gloo, DistributedDataParallel."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from norse.task import harness

REPOSITORY = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("ddp_worker.py")

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="no torch.distributed"
)


def _load_worker():
    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _torchrun(*arguments: str, processes: int = 2, timeout: int = 300) -> str:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPOSITORY), environment.get("PYTHONPATH")])
    )
    environment["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            *arguments,
        ],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


def _assert_same_weights(a, b, exact: bool = True) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if exact:
            assert torch.equal(a[name], b[name]), name
        else:
            torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_two_processes_keep_identical_replicas_equal_to_one_process(tmp_path):
    worker = _load_worker()
    _torchrun(str(WORKER), str(tmp_path / "ddp"), "2")
    rank0 = torch.load(tmp_path / "ddp" / "rank0.pt")
    rank1 = torch.load(tmp_path / "ddp" / "rank1.pt")
    _assert_same_weights(rank0, rank1)  # the replicas never drift apart

    # One process that sees, at every step, the union of both processes' batches:
    # the global batch. The mean loss over it has the averaged gradient of DDP.
    x, y = worker.problem()
    shards = [harness.DistributedContext(rank=r, world_size=2) for r in (0, 1)]

    def global_batches(epoch):
        per_rank = [
            list(harness.batches(x, y, worker.BATCH_SIZE, True, epoch, context))
            for context in shards
        ]
        for parts in zip(*per_rank):
            yield torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    single = worker.train(tmp_path / "single", 2, False, global_batches)
    _assert_same_weights(rank0, single.state_dict(), exact=False)
    # training moved the weights, including the neuron parameters, so the
    # comparisons above are not trivially true
    initial = worker.build_model().state_dict()
    assert not torch.allclose(initial["hidden.weight"], rank0["hidden.weight"])
    assert not torch.equal(
        initial["lif.params.tau_mem_inv"], rank0["lif.params.tau_mem_inv"]
    )
    # the checkpoint holds the plain model (no "module." prefix) and every rank's
    # generator states
    checkpoint = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=False)
    _assert_same_weights(checkpoint["model"], rank0)
    assert len(checkpoint["rng_per_rank"]) == 2
    metrics = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 2  # written once, by rank 0


def test_two_processes_resume_where_an_uninterrupted_run_ends(tmp_path):
    _torchrun(str(WORKER), str(tmp_path / "full"), "3")
    _torchrun(str(WORKER), str(tmp_path / "split"), "1")
    _torchrun(str(WORKER), str(tmp_path / "split"), "3", "--resume")
    for rank in (0, 1):
        _assert_same_weights(
            torch.load(tmp_path / "full" / f"rank{rank}.pt"),
            torch.load(tmp_path / "split" / f"rank{rank}.pt"),
        )


def test_mnist_task_runs_under_torchrun(tmp_path):
    output = _torchrun(
        "-m",
        "norse.task.mnist",
        "--epochs=1",
        "--n-train=64",
        "--n-test=32",
        "--batch-size=16",
        "--seq-length=2",
        "--no-progress",
        "--no-plots",
        "--threads=1",
        f"--output={tmp_path}",
    )
    assert output.count("held-out accuracy") == 1  # rank 0 alone reports
    summary = (tmp_path / "metrics.json").read_text()
    assert '"processes": 2' in summary


def test_batches_deal_each_sample_to_one_process_per_epoch():
    x = torch.arange(10.0)[:, None]
    y = torch.arange(10)
    shards = [
        torch.cat(
            [
                labels
                for _, labels in harness.batches(
                    x, y, 3, True, 7, harness.DistributedContext(rank, 2)
                )
            ]
        )
        for rank in (0, 1)
    ]
    pair = harness.DistributedContext(0, 2)
    assert [len(s) for s in shards] == [harness.shard_length(10, pair)] * 2 == [5, 5]
    assert sorted(torch.cat(shards).tolist()) == list(range(10))
    # one process sees the whole permutation, as before distributed support
    alone = torch.cat([labels for _, labels in harness.batches(x, y, 3, True, 7)])
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(7))
    assert alone.tolist() == expected.tolist()


def test_uneven_shards_are_padded_to_the_same_number_of_batches():
    x, y = torch.zeros(5, 1), torch.arange(5)
    sizes = [
        [
            len(labels)
            for _, labels in harness.batches(
                x, y, 2, False, 0, harness.DistributedContext(rank, 2)
            )
        ]
        for rank in (0, 1)
    ]
    assert sizes == [[2, 1], [2, 1]]


def test_single_process_context_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context, device = harness.init_distributed("cpu")
    assert context == harness.DistributedContext()
    assert context.is_main and not context.enabled
    assert device == torch.device("cpu")
    assert not torch.distributed.is_initialized()


def test_bad_world_size_environment_is_named(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE.*'two'"):
        harness.init_distributed("cpu")
