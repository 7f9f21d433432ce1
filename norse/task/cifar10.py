"""CIFAR-10 classification with a convolutional network of LIF neurons.

Run ``python -m norse.task.cifar10`` (``--help`` lists the options). The data set is
downloaded into ``--data`` on first use (MD5-checked, see :mod:`norse.dataset.cifar10`).

The normalised image drives the first convolution as a constant current for
``--seq_length`` steps; three blocks of convolution, LIF neurons and max pooling (all
steps at once: the convolutions are lifted over time) feed a linear layer read out by
leaky integrators, whose peak voltage over time gives the class scores (as in Norse
1.1's task, which used 64-128-256-256 channels and 128 steps; the defaults here are
smaller so that an epoch is practical on a CPU). Training images are randomly shifted
and flipped; the loss is cross-entropy with label smoothing.

Outputs in ``--output``: ``checkpoint.pt`` (``--resume``), ``metrics.jsonl``,
``summary.json``, ``history.png`` and ``raster.png`` (spikes of the first layer).
"""

import argparse
import functools
import time
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple

import torch

from norse.dataset import cifar10 as data
from norse.task import harness
from norse.torch.functional.lif import LIFParameters
from norse.torch.module.leaky_integrator import LI
from norse.torch.module.lif import LIF
from norse.torch.module.lift import Lift
from norse.torch.module.sequential import SequentialState


class LIFConvNet(torch.nn.Module):
    """Conv-LIF-pool x 3, then Linear and LI; class scores are the peak LI voltages.

    Parameters:
        seq_length: time steps per image
        channels: output channels of the three convolutions
        p: LIF parameters

    Shapes: images ``(batch, 3, 32, 32)`` -> scores ``(batch, 10)``; with
    ``return_spikes`` also the first layer's spikes ``(T, batch, channels[0], 32, 32)``.
    """

    def __init__(
        self,
        seq_length: int = 8,
        channels: Sequence[int] = (32, 64, 128),
        p: LIFParameters = LIFParameters(v_th=torch.as_tensor(0.4)),
    ):
        super().__init__()
        self.seq_length = seq_length
        c1, c2, c3 = channels
        conv = lambda a, b: Lift(torch.nn.Conv2d(a, b, 3, padding=1, bias=False))  # noqa: E731
        pool = lambda: Lift(torch.nn.MaxPool2d(2))  # noqa: E731
        self.first = SequentialState(conv(3, c1), LIF(p))
        self.rest = SequentialState(
            pool(),
            conv(c1, c2),
            LIF(p),
            pool(),
            conv(c2, c3),
            LIF(p),
            pool(),
            Lift(torch.nn.Flatten()),
            Lift(torch.nn.Linear(c3 * 4 * 4, 10)),
            LI(),
        )

    def forward(self, images: torch.Tensor, return_spikes: bool = False):
        currents = images.unsqueeze(0).expand(self.seq_length, *images.shape)
        spikes, _ = self.first(currents)
        voltages, _ = self.rest(spikes)
        scores = voltages.max(0).values
        return (scores, spikes) if return_spikes else scores


def normalise(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(data.CIFAR10_MEAN, device=images.device)[:, None, None]
    std = torch.tensor(data.CIFAR10_STD, device=images.device)[:, None, None]
    return (images - mean) / std


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = harness.task_parser(
        "norse.task.cifar10", "CIFAR-10 with a convolutional LIF network."
    )
    add = functools.partial(harness.add_option, parser)

    add(
        "--data",
        type=Path,
        default=Path("~/.cache/norse").expanduser(),
        help="folder for cifar-10-batches-py (downloaded on first use)",
    )
    add("--epochs", type=int, default=10)
    add("--batch_size", type=int, default=64)
    add("--learning_rate", type=float, default=0.002)
    add("--seq_length", type=int, default=8, help="time steps per image")
    add("--channels", type=int, nargs=3, default=(32, 64, 128))
    add("--v_th", type=float, default=0.4, help="LIF threshold")
    add("--label_smoothing", type=float, default=0.1)
    add("--train_samples", type=int, default=0, help="use only this many (0: all)")
    add("--test_samples", type=int, default=0, help="evaluate on this many (0: all)")
    add("--no_augment", action="store_true", help="no random shifts and flips")
    add("--no_download", action="store_true", help="fail instead of downloading")
    harness.add_run_options(parser, output="runs/cifar10")
    args = parser.parse_args(argv)
    harness.require_positive(
        parser, args, "epochs", "batch_size", "seq_length", "channels"
    )
    harness.require_positive_finite(parser, args, "learning_rate", "v_th")
    harness.require_probability(parser, args, "label_smoothing")
    harness.require_non_negative(parser, args, "train_samples", "test_samples")
    harness.check_run_options(parser, args)
    return args


def load_split(
    args: argparse.Namespace,
) -> Tuple[Tuple[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]:
    """Training and test images (uint8, ``(N, 3, 32, 32)``) and labels, cut to
    ``--train_samples`` and ``--test_samples`` (0: all)."""

    def subset(images, labels, count: int) -> Tuple[torch.Tensor, torch.Tensor]:
        images, labels = torch.from_numpy(images), torch.from_numpy(labels)
        return (images[:count], labels[:count]) if count > 0 else (images, labels)

    download = not args.no_download
    train = subset(*data.load_cifar10(args.data, True, download), args.train_samples)
    test = subset(*data.load_cifar10(args.data, False, download), args.test_samples)
    return train, test


def build_model(args: argparse.Namespace) -> LIFConvNet:
    """The network that the options describe."""
    p = LIFParameters(v_th=torch.as_tensor(args.v_th))
    return LIFConvNet(args.seq_length, args.channels, p)


def build_optimizer(
    model: torch.nn.Module, args: argparse.Namespace, num_batches: int
) -> Tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Adam with a one-cycle learning rate over the whole run."""
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, args.learning_rate, total_steps=max(1, args.epochs * num_batches)
    )
    return optimizer, scheduler


def prepare(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 images to normalised floats on ``device``."""
    return normalise(images.to(device).float() / 255)


def train_step(model, batch, args: argparse.Namespace, device: torch.device):
    """Cross-entropy with label smoothing of a randomly shifted and flipped batch."""
    images, labels = batch
    if not args.no_augment:  # from the global generator, seeded per epoch
        images = data.random_crop_flip(images)
    scores = model(prepare(images, device))
    labels = labels.to(device)
    loss = torch.nn.functional.cross_entropy(
        scores, labels, label_smoothing=args.label_smoothing
    )
    return loss, (scores.argmax(1) == labels).sum()


def training_batches(
    epoch: int,
    images: torch.Tensor,
    labels: torch.Tensor,
    args: argparse.Namespace,
    context: harness.DistributedContext,
) -> Iterable[Tuple[torch.Tensor, torch.Tensor]]:
    """This process's shuffled batches of epoch ``epoch``; also seeds the epoch's
    augmentation, drawn differently in each process."""
    torch.manual_seed((args.seed * 1000 + epoch) * context.world_size + context.rank)
    return harness.batches(
        images, labels, args.batch_size, shuffle=True, seed=args.seed + epoch
    )


def evaluate(
    model, images: torch.Tensor, labels: torch.Tensor, device: torch.device
) -> Dict[str, float]:
    """Test loss and accuracy (256 images at a time)."""
    correct, loss = 0, 0.0
    for batch_images, batch_labels in harness.batches(
        images, labels, 256, shuffle=False
    ):
        scores = model(prepare(batch_images, device))
        batch_labels = batch_labels.to(device)
        loss += torch.nn.functional.cross_entropy(
            scores, batch_labels, reduction="sum"
        ).item()
        correct += int((scores.argmax(1) == batch_labels).sum())
    return {"test_loss": loss / len(labels), "test_accuracy": correct / len(labels)}


def plot_run(
    model: LIFConvNet,
    history: harness.History,
    test_x: torch.Tensor,
    args: argparse.Namespace,
    device: torch.device,
) -> None:
    """``history.png`` and ``raster.png`` (first-layer spikes of the first test image)."""
    harness.plot_history(
        history, args.output / "history.png", title="CIFAR-10, LIF ConvNet"
    )
    model.eval()
    with torch.no_grad():
        _, spikes = model(prepare(test_x[:1], device), return_spikes=True)
    harness.plot_raster(
        spikes[:, 0].flatten(1).cpu(),
        args.output / "raster.png",
        title="first-layer spikes (one test image)",
    )


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Trains and tests; returns the summary (also in ``summary.json``)."""
    args = parse_args(argv)
    started = time.perf_counter()
    context, device = harness.start_run(args)
    args.output.mkdir(parents=True, exist_ok=True)
    (train_x, train_y), (test_x, test_y) = load_split(args)
    model = build_model(args).to(device)
    # --batch_size is per process; each process trains on its shard of the epoch
    num_batches = -(-harness.shard_length(len(train_y)) // args.batch_size)
    optimizer, scheduler = build_optimizer(model, args, num_batches)
    history = harness.fit(
        model,
        optimizer,
        functools.partial(train_step, args=args, device=device),
        functools.partial(
            training_batches, images=train_x, labels=train_y, args=args, context=context
        ),
        num_batches=num_batches,
        epochs=args.epochs,
        evaluate=functools.partial(
            evaluate, images=test_x, labels=test_y, device=device
        ),
        scheduler=scheduler,
        output_dir=args.output,
        resume=args.resume,
        progress=not args.no_progress,
        checkpoint_extra={
            "args": vars(args) | {"output": str(args.output), "data": str(args.data)}
        },
    )
    if not args.no_plots and context.is_main:
        plot_run(model, history, test_x, args, device)
    last = history.epochs[-1] if history.epochs else {}
    summary = {
        "test_accuracy": last.get("test_accuracy"),
        "train_accuracy": last.get("train_accuracy"),
        "epochs": len(history.epochs),
        "train_samples": len(train_y),
        "test_samples": len(test_y),
    }
    return harness.save_summary(
        summary, args.output, "norse.task.cifar10", argv, started
    )


if __name__ == "__main__":
    main()
