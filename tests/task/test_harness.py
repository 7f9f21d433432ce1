import json
import pathlib
import pickle

import numpy as np
import pytest
import torch

from norse.task import harness


def _problem():
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = (x[:, 0] > 0).long()
    return x, y


def _train(tmp_path, epochs, resume=False):
    harness.seed_everything(3)
    x, y = _problem()
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 2)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)

    def step(model, batch):
        data, labels = batch
        out = model(data)
        return torch.nn.functional.cross_entropy(out, labels), (
            out.argmax(1) == labels
        ).sum()

    def evaluate(model):
        return {"test_accuracy": (model(x).argmax(1) == y).float().mean().item()}

    history = harness.fit(
        model,
        optimizer,
        step,
        lambda epoch: harness.batches(x, y, 16, shuffle=True, seed=epoch),
        num_batches=4,
        epochs=epochs,
        evaluate=evaluate,
        scheduler=scheduler,
        output_dir=tmp_path,
        resume=resume,
        progress=False,
    )
    return model, history


def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path):
    full_model, full_history = _train(tmp_path / "full", epochs=4)
    _train(tmp_path / "split", epochs=2)
    resumed_model, resumed_history = _train(tmp_path / "split", epochs=4, resume=True)
    for a, b in zip(
        full_model.state_dict().values(), resumed_model.state_dict().values()
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [r["train_loss"] for r in full_history.epochs] == pytest.approx(
        [r["train_loss"] for r in resumed_history.epochs]
    )
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    assert not list((tmp_path / "split").glob("*.tmp"))


class _WritesAFile:
    """A crafted payload: unpickling it calls ``Path.write_text`` (any function would do)."""

    def __init__(self, target: pathlib.Path):
        self.target = target

    def __reduce__(self):
        return pathlib.Path.write_text, (self.target, "ran")


# a plain pickle makes torch warn about its protocol before refusing it
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_load_checkpoint_refuses_a_pickle_that_runs_code(tmp_path, writer):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "checkpoint.pt"
    payload = {"epoch": 0, "model": _WritesAFile(marker)}
    with open(path, "wb") as stream:
        (torch.save if writer == "torch.save" else pickle.dump)(payload, stream)
    # the payload is real: an unrestricted load runs it
    with open(path, "rb") as stream:
        if writer == "torch.save":
            torch.load(stream, weights_only=False)
        else:
            pickle.load(stream)
    assert marker.read_text() == "ran"
    marker.unlink()

    with pytest.raises(pickle.UnpicklingError) as caught:
        harness.load_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message and "refusing" in message
    if writer == "torch.save":
        assert "pathlib" in message  # names what it asked for
    assert not marker.exists()
    # the NumPy allowlist was scoped to the load
    assert np.ndarray not in torch.serialization.get_safe_globals()


def test_load_checkpoint_reads_generator_states(tmp_path):
    path = tmp_path / "checkpoint.pt"
    harness.atomic_save(
        {
            "rng_per_rank": [harness.rng_states()],
            "history": [{"accuracy": np.float64(0.5)}],
        },
        path,
    )
    checkpoint = harness.load_checkpoint(path)
    assert checkpoint["history"] == [{"accuracy": 0.5}]
    states = checkpoint["rng_per_rank"][0]
    harness.set_rng_states(states)
    assert harness.rng_states()["numpy"][1].tolist() == states["numpy"][1].tolist()


def test_atomic_save_leaves_old_checkpoint_on_failure(tmp_path):
    path = tmp_path / "c.pt"
    harness.atomic_save({"a": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        harness.atomic_save({"a": Unpicklable()}, path)
    assert torch.load(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_plots_are_not_blank(tmp_path):
    import matplotlib.image

    history = harness.History(
        [
            {
                "epoch": 1,
                "train_loss": 1.0,
                "train_accuracy": 0.5,
                "test_accuracy": 0.6,
            },
            {
                "epoch": 2,
                "train_loss": 0.5,
                "train_accuracy": 0.8,
                "test_accuracy": 0.7,
            },
        ]
    )
    for path in (
        harness.plot_history(history, tmp_path / "curve.png"),
        harness.plot_raster(
            (torch.rand(20, 30) < 0.2).float(), tmp_path / "raster.png"
        ),
    ):
        image = matplotlib.image.imread(path)
        assert image.std() > 0.01


def test_bad_arguments():
    with pytest.raises(ValueError, match="same length"):
        list(harness.batches(torch.zeros(3, 2), torch.zeros(4), 2, shuffle=False))
    with pytest.raises(ValueError, match="CUDA is not available"):
        if not torch.cuda.is_available():
            harness.select_device("cuda")
        else:
            raise ValueError("CUDA is not available")
    assert harness.select_device("auto").type in ("cpu", "cuda")


def _fit_scripted(tmp_path, scores, resume=False, **kwargs):
    """Fits a one-weight model whose 'val_accuracy' follows ``scores`` per epoch; the
    weight counts the optimiser steps, so the kept weights tell which epoch won."""
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    epoch_scores = iter(scores)

    def step(model, batch):  # d loss / d w = -1: every step adds 1 to the weight
        return -model.weight.sum(), 0, 1

    return model, harness.fit(
        model,
        optimizer,
        step,
        lambda epoch: [(torch.zeros(1, 1), torch.zeros(1))],
        num_batches=1,
        epochs=len(scores),
        evaluate=lambda model: {"val_accuracy": next(epoch_scores)},
        output_dir=tmp_path,
        resume=resume,
        progress=False,
        **kwargs,
    )


def test_best_metric_keeps_the_best_epoch_and_stop_at_ends_early(tmp_path):
    model, history = _fit_scripted(
        tmp_path / "a", [0.2, 0.9, 0.5], best_metric="val_accuracy"
    )
    assert history.best_epoch == 2 and model.weight.item() == 2.0
    assert len(history.epochs) == 3
    model, history = _fit_scripted(
        tmp_path / "b", [0.2, 0.95, 0.99, 0.5], best_metric="val_accuracy", stop_at=0.95
    )
    assert len(history.epochs) == 2 and model.weight.item() == 2.0
    # A resumed run that had stopped early trains no further and keeps the best.
    model, history = _fit_scripted(
        tmp_path / "b", [0.0] * 4, resume=True, best_metric="val_accuracy", stop_at=0.95
    )
    assert history.best_epoch == 2 and model.weight.item() == 2.0
    with pytest.raises(ValueError, match="stop_at needs best_metric"):
        _fit_scripted(tmp_path / "c", [0.1], stop_at=0.5)
    with pytest.raises(KeyError, match="not among the metrics"):
        _fit_scripted(tmp_path / "d", [0.1], best_metric="test_accuracy")


def test_skipped_steps_and_prediction_counts(tmp_path):
    model = torch.nn.Linear(1, 1, bias=False)
    before = model.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(
        model, batch
    ):  # loss 0 with an infinite gradient; 3 of 4 predictions right
        return (model.weight - model.weight.detach()).sqrt().sum(), 3, 4

    history = harness.fit(
        model,
        optimizer,
        step,
        lambda epoch: [(torch.zeros(2, 1), torch.zeros(2))] * 2,
        num_batches=2,
        epochs=1,
        progress=False,
        max_grad_norm=1.0,
    )
    assert history.epochs[0]["skipped_steps"] == 2
    assert history.epochs[0]["train_accuracy"] == 0.75
    torch.testing.assert_close(model.weight.detach(), before)
