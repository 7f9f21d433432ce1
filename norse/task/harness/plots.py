"""PNG plots of a run: training curves and spike rasters, drawn without a display."""

from pathlib import Path

import torch

from .loop import History


def pyplot():
    """``matplotlib.pyplot`` on the file-only ``Agg`` backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Lays out ``fig``, saves it as a PNG at ``path`` and closes it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return Path(path)


def plot_history(history: History, path: Path, title: str = "") -> Path:
    """Saves loss and accuracy curves per epoch as a PNG."""
    plt = pyplot()

    epochs = history.column("epoch")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, history.column("train_loss"), marker="o", label="train")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_acc.plot(epochs, history.column("train_accuracy"), marker="o", label="train")
    if history.column("val_accuracy"):
        ax_acc.plot(
            epochs, history.column("val_accuracy"), marker="^", label="validation"
        )
    if history.column("test_accuracy"):
        ax_acc.plot(
            epochs, history.column("test_accuracy"), marker="s", label="held out"
        )
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_raster(
    spikes: torch.Tensor, path: Path, title: str = "", max_neurons: int = 400
) -> Path:
    """Saves a spike raster of ``spikes`` shaped ``(T, neurons...)`` as a PNG; shows the
    ``max_neurons`` most active neurons and each neuron's rate on the side
    (drawn by :func:`norse.torch.utils.plot.plot_raster`)."""
    pyplot()  # the Agg backend before norse.torch.utils.plot draws

    from norse.torch.utils import plot

    ax, _ = plot.plot_raster(
        spikes, max_neurons=max_neurons, sort_by_rate=True, title=title
    )
    fig = ax.figure
    return save_figure(fig, path)
