import json

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
