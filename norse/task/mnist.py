"""Train a spiking convolutional network on MNIST: ``python -m norse.task.mnist``.

The default run trains on the bundled subset of 5,000 real MNIST digits (4,000 for
training, 1,000 held out, see :mod:`norse.dataset.mnist`) and needs no network. With
``--data full`` it downloads the 70,000 digits of MNIST (60,000 / 10,000).

Network (time first, ``T = --seq-length`` steps)::

    image -> encoder -> conv 5x5 -> BN -> LIF -> max-pool 2
                     -> conv 5x5 -> BN -> LIF -> max-pool 2
                     -> linear -> BN -> LIF -> linear -> LI -> max over time -> class

With the default ``direct`` encoder the normalised image is the input current of the first
layer at every step (its convolution is computed once); ``constant-current`` (Norse's
:class:`~norse.torch.ConstantCurrentLIFEncoder`) and ``poisson`` feed spikes instead.
Convolutions and linear layers run on all time steps at once (time folded into the
batch), the neurons run as :class:`~norse.torch.LIF` / :class:`~norse.torch.LI` time
modules. The class scores are the peak read-out voltages (:func:`max_decode`), trained
with cross-entropy.

Outputs in ``--output`` (default ``runs/mnist``): ``checkpoint.pt`` (``--resume``
continues from it), ``metrics.jsonl`` (one line per epoch), ``metrics.json`` (summary),
``training_curve.png`` and ``raster.png`` (hidden-layer spikes of one held-out digit),
``cost.csv`` (the trained network's synaptic operations and energy estimate per held-out
digit, per layer: :mod:`norse.torch.utils.synops`; also printed at the end).
"""

import argparse
import functools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from norse.dataset import mnist as mnist_data
from norse.task import harness
from norse.torch.functional.decode import max_decode
from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.lif import LIFParameters
from norse.torch.module.encode import ConstantCurrentLIFEncoder, PoissonEncoder
from norse.torch.module.leaky_integrator import LI
from norse.torch.module.lif import LIF
from norse.torch.module.lift import Lift
from norse.torch.utils.synops import SynOpCounter, SynOpsResult

ENCODERS = ("direct", "constant-current", "poisson")


def _fold(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(0, 1)


def _unfold(x: torch.Tensor, steps: int) -> torch.Tensor:
    return x.view(steps, x.shape[0] // steps, *x.shape[1:])


class MNISTConvSNN(torch.nn.Module):
    """The spiking conv net of the MNIST task.

    Parameters:
        seq_length (int): number of time steps ``T``
        channels (tuple of two ints): output channels of the two convolutions
        hidden (int): LIF neurons in the fully connected layer
        scale (float): gain on every synaptic current (after batch norm)
        encoder (str): ``"direct"``, ``"constant-current"`` or ``"poisson"``
        encoder_gain (float): input gain of the spiking encoders (current or rate)
        p (LIFParameters): hidden-layer neuron parameters
        readout (LIParameters): read-out parameters

    Shapes:
        input ``(batch, 1, 28, 28)`` in [0, 1]; output ``(T, batch, 10)`` voltages.
    """

    def __init__(
        self,
        seq_length: int = 8,
        channels: Sequence[int] = (16, 32),
        hidden: int = 128,
        scale: float = 3.0,
        encoder: str = "direct",
        encoder_gain: float = 10.0,
        p: LIFParameters = LIFParameters(
            tau_syn_inv=torch.tensor(500.0),
            tau_mem_inv=torch.tensor(200.0),
            alpha=torch.tensor(20.0),
        ),
        readout: LIParameters = LIParameters(),
    ):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        if seq_length < 1:
            raise ValueError(f"seq_length must be a positive int, got {seq_length}")
        c1, c2 = channels
        self.seq_length = seq_length
        self.scale = scale
        self.encoder_name = encoder
        if encoder == "constant-current":
            self.encoder = ConstantCurrentLIFEncoder(seq_length)
            self.encoder_gain = encoder_gain
        elif encoder == "poisson":
            self.encoder = PoissonEncoder(seq_length, f_max=encoder_gain * 100.0)
            self.encoder_gain = 1.0
        else:
            self.encoder = None
            self.encoder_gain = 1.0
        self.conv1 = torch.nn.Conv2d(1, c1, 5, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(c1)
        self.lif1 = LIF(p)
        self.conv2 = torch.nn.Conv2d(c1, c2, 5, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(c2)
        self.lif2 = LIF(p)
        self.fc1 = torch.nn.Linear(c2 * 4 * 4, hidden, bias=False)
        self.bn3 = torch.nn.BatchNorm1d(hidden)
        self.lif3 = LIF(p)
        self.fc2 = torch.nn.Linear(hidden, 10)
        self.out = LI(readout)
        # All steps at once, so that on the CPU Lift can run the pooling in the Numba
        # kernels of norse.torch.fused.cpu_pool (the values and gradients of
        # F.max_pool2d).
        self.pool = Lift(torch.nn.MaxPool2d(2))

    def forward(
        self, images: torch.Tensor, record: Optional[Dict[str, torch.Tensor]] = None
    ) -> torch.Tensor:
        """Read-out voltages ``(T, batch, 10)``; ``record`` (a dict), if given, receives
        the spikes of the hidden layers ``(T, batch, ...)``."""
        if images.dim() != 4 or images.shape[1:] != (1, 28, 28):
            raise ValueError(
                f"images must have shape (batch, 1, 28, 28), got {tuple(images.shape)}"
            )
        steps = self.seq_length
        x = mnist_data.normalize_mnist(images)
        if self.encoder is None:
            # constant input: the first convolution is the same at every step
            current = self.scale * self.bn1(self.conv1(x))
            current = current.unsqueeze(0).expand(steps, *current.shape)
        else:
            spikes = self.encoder(images * self.encoder_gain)
            current = _unfold(self.scale * self.bn1(self.conv1(_fold(spikes))), steps)
        z1, _ = self.lif1(current)
        z = _fold(self.pool(z1))
        z2, _ = self.lif2(_unfold(self.scale * self.bn2(self.conv2(z)), steps))
        z = _fold(self.pool(z2)).flatten(1)
        z3, _ = self.lif3(_unfold(self.scale * self.bn3(self.fc1(z)), steps))
        voltages, _ = self.out(_unfold(self.fc2(_fold(z3)), steps))
        if record is not None:
            record.update(conv1=z1, conv2=z2, hidden=z3)
        return voltages


def held_out_cost(
    model: torch.nn.Module, images: torch.Tensor, batch_size: int = 500
) -> SynOpsResult:
    """The network's cost per digit on ``images`` ``(N, 1, 28, 28)`` (one pass in
    evaluation mode): synaptic operations, membrane updates, activation sparsity and
    the energy estimate of :mod:`norse.torch.utils.synops` (45 nm, 32-bit float).

    With the ``direct`` encoder the first convolution runs once per digit on the
    image (dense input: MACs); the later layers receive spikes at every step (ACs)."""
    model.eval()
    with SynOpCounter(model, batch_dim=0) as counter, torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            model(images[start : start + batch_size])
    return counter.result()


def random_affine(
    images: torch.Tensor, strength: float, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Random rotation (±10°), scaling (±10%) and shift (±2 px), each times ``strength``,
    per image ``(batch, 1, H, W)``; ``strength = 0`` returns the images unchanged."""
    if strength <= 0:
        return images
    batch = images.shape[0]

    def uniform() -> torch.Tensor:
        return torch.rand(batch, generator=generator) * 2 - 1

    angle = uniform() * math.radians(10) * strength
    zoom = 1 + uniform() * 0.1 * strength
    shift_x = uniform() * (2 / 14) * strength
    shift_y = uniform() * (2 / 14) * strength
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1
    ).to(images)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def load_data(
    data: str,
    data_dir: Path,
    n_train: int,
    n_test: int,
    seed: int,
    download: bool = True,
) -> Tuple[Tuple[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]:
    """Images as float tensors ``(N, 1, 28, 28)`` in [0, 1] and int64 labels."""
    if data == "bundled":
        (train_x, train_y), (test_x, test_y) = mnist_data.bundled_split(
            n_train, n_test, seed=seed
        )
    elif data == "full":
        (train_x, train_y), (test_x, test_y) = mnist_data.load_full_mnist(
            data_dir, download=download
        )
    else:
        raise ValueError(f"--data must be 'bundled' or 'full', got {data!r}")

    def tensors(x, y):
        return (
            torch.as_tensor(x).float().div_(255.0).unsqueeze(1),
            torch.as_tensor(y).long(),
        )

    return tensors(train_x, train_y), tensors(test_x, test_y)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m norse.task.mnist",
        description="Train a spiking conv net on MNIST and report held-out accuracy.",
    )
    parser.add_argument("--data", choices=("bundled", "full"), default="bundled")
    parser.add_argument(
        "--data-dir", type=Path, default=Path("~/.cache/norse/mnist").expanduser()
    )
    parser.add_argument(
        "--no-download",
        action="store_true",
        help="--data full: use the files in --data-dir only",
    )
    parser.add_argument(
        "--n-train", type=int, default=4000, help="bundled split: training digits"
    )
    parser.add_argument(
        "--n-test", type=int, default=1000, help="bundled split: held-out digits"
    )
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--lr", type=float, default=5e-3, help="peak learning rate (one-cycle)"
    )
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seq-length", type=int, default=8, help="time steps T")
    parser.add_argument("--channels", type=int, nargs=2, default=(16, 32))
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument(
        "--scale", type=float, default=3.0, help="gain on synaptic currents"
    )
    parser.add_argument(
        "--alpha", type=float, default=20.0, help="SuperSpike sharpness"
    )
    parser.add_argument("--method", default="super", help="surrogate gradient method")
    parser.add_argument(
        "--tau-syn-inv", type=float, default=500.0, help="hidden LIF 1/tau_syn (1/s)"
    )
    parser.add_argument(
        "--tau-mem-inv", type=float, default=200.0, help="hidden LIF 1/tau_mem (1/s)"
    )
    parser.add_argument("--encoder", choices=ENCODERS, default="direct")
    parser.add_argument("--encoder-gain", type=float, default=10.0)
    parser.add_argument(
        "--augment", type=float, default=1.0, help="augmentation strength (0: off)"
    )
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deterministic", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads (0: all cores)"
    )
    parser.add_argument("--output", type=Path, default=Path("runs/mnist"))
    parser.add_argument(
        "--resume", action="store_true", help="continue from --output/checkpoint.pt"
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-plots", action="store_true")
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``argv``; one out of range exits with a usage error (status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    harness.require_range(parser, args, "epochs", 0)
    harness.require_positive(
        parser, args, "batch_size", "seq_length", "hidden", "n_train", "n_test",
        "channels",
    )  # fmt: skip
    if args.data == "bundled" and args.n_train + args.n_test > mnist_data.BUNDLED_SIZE:
        parser.error(
            f"--n-train + --n-test must be <= {mnist_data.BUNDLED_SIZE} (the bundled "
            f"digits), got {args.n_train} + {args.n_test}"
        )
    harness.require_positive_finite(
        parser, args, "lr", "scale", "alpha", "tau_syn_inv", "tau_mem_inv",
        "encoder_gain",
    )  # fmt: skip
    harness.require_non_negative(parser, args, "weight_decay", "augment", "threads")
    harness.require_probability(parser, args, "label_smoothing")
    harness.require_method(parser, args)
    harness.require_device(parser, args)
    return args


def build_model(args: argparse.Namespace) -> MNISTConvSNN:
    """The network that the options describe."""
    return MNISTConvSNN(
        seq_length=args.seq_length,
        channels=tuple(args.channels),
        hidden=args.hidden,
        scale=args.scale,
        encoder=args.encoder,
        encoder_gain=args.encoder_gain,
        p=LIFParameters(
            tau_syn_inv=torch.tensor(args.tau_syn_inv),
            tau_mem_inv=torch.tensor(args.tau_mem_inv),
            method=args.method,
            alpha=torch.tensor(args.alpha),
        ),
    )


def build_optimizer(
    model: torch.nn.Module, args: argparse.Namespace, batches_per_epoch: int
) -> Tuple[torch.optim.Optimizer, Optional[torch.optim.lr_scheduler.LRScheduler]]:
    """AdamW with a one-cycle learning rate (constant in runs under 10 steps, such as
    smoke tests)."""
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=args.lr, weight_decay=args.weight_decay
    )
    total_steps = batches_per_epoch * args.epochs
    if total_steps < 10:
        return optimizer, None
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=total_steps, pct_start=0.25
    )


def train_step(model, batch, augment: float, label_smoothing: float):
    """Cross-entropy of the peak read-out voltages of a randomly moved batch."""
    images, labels = batch
    images = random_affine(images, augment)
    scores = max_decode(model(images))
    loss = F.cross_entropy(scores, labels, label_smoothing=label_smoothing)
    return loss, (scores.argmax(1) == labels).sum().item()


def evaluate(model, images: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
    """Held-out loss and accuracy (500 digits at a time)."""
    correct, loss = 0, 0.0
    for start in range(0, images.shape[0], 500):
        scores = max_decode(model(images[start : start + 500]))
        batch_labels = labels[start : start + 500]
        loss += F.cross_entropy(scores, batch_labels, reduction="sum").item()
        correct += (scores.argmax(1) == batch_labels).sum().item()
    return {
        "test_loss": loss / images.shape[0],
        "test_accuracy": correct / images.shape[0],
    }


def full_batches(
    epoch: int, images: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace
) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """This process's shuffled batches of epoch ``epoch``, without the last partial one
    (batch norm and the one-cycle schedule want full batches)."""
    for batch in harness.batches(
        images, labels, args.batch_size, shuffle=True, seed=args.seed * 1000 + epoch
    ):
        if batch[0].shape[0] == args.batch_size:
            yield batch


def report(
    model: MNISTConvSNN,
    history: harness.History,
    summary: Dict[str, Any],
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    args: argparse.Namespace,
) -> Dict[str, Any]:
    """Adds the held-out cost per digit to ``summary``; writes ``cost.csv``,
    ``metrics.json`` and the plots; prints the accuracy and the cost."""
    args.output.mkdir(parents=True, exist_ok=True)
    cost = held_out_cost(model, test_x)
    cost.to_csv(args.output / "cost.csv")
    summary["cost_per_digit"] = {
        "synops": cost.synops,
        "effective_acs": cost.effective_acs,
        "effective_macs": cost.effective_macs,
        "dense_ops": cost.dense_ops,
        "membrane_updates": cost.membrane_updates,
        "activation_sparsity": cost.activation_sparsity,
        "energy_pj": cost.energy_pj,
    }
    with open(args.output / "metrics.json", "w") as stream:
        json.dump(summary, stream, indent=2)
    if not args.no_plots and history.epochs:
        harness.plot_history(
            history, args.output / "training_curve.png", "MNIST, spiking conv net"
        )
        model.eval()
        record: Dict[str, torch.Tensor] = {}
        with torch.no_grad():
            model(test_x[:1], record=record)
        harness.plot_raster(
            record["hidden"][:, 0],
            args.output / "raster.png",
            f"hidden LIF layer, held-out digit {int(test_y[0])}",
        )
    print(
        f"held-out accuracy: {summary['test_accuracy']:.4f} on {summary['n_test']} digits "
        f"after {summary['epochs']} epochs ({summary['train_seconds']:.0f} s of training, "
        f"{summary['threads']} threads); outputs in {args.output}"
    )
    print(f"cost per held-out digit (table in {args.output / 'cost.csv'}):\n{cost}")
    print(
        f"SynOps per held-out digit: {cost.synops:,.0f} ({cost.effective_acs:,.0f} ACs "
        f"+ {cost.effective_macs:,.0f} MACs), energy estimate "
        f"{cost.energy_pj / 1e6:.4g} uJ per digit (45 nm, 32-bit float: "
        f"{cost.energy.ac_pj:g} pJ per AC, {cost.energy.mac_pj:g} pJ per MAC)"
    )
    return summary


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    """Trains, tests and reports; returns the summary (also in ``metrics.json``)."""
    args = parse_args(argv)
    context, device = harness.start_run(args)
    # the split is fixed (seed 0) so that every run is judged on the same digits
    (train_x, train_y), (test_x, test_y) = load_data(
        args.data, args.data_dir, args.n_train, args.n_test, 0, not args.no_download
    )
    train_x, train_y = train_x.to(device), train_y.to(device)
    test_x, test_y = test_x.to(device), test_y.to(device)
    model = build_model(args).to(device)
    # --batch-size is per process: a step of N processes sees N * batch-size digits
    batches_per_epoch = harness.shard_length(train_x.shape[0]) // args.batch_size
    optimizer, scheduler = build_optimizer(model, args, batches_per_epoch)
    started = time.perf_counter()
    history = harness.fit(
        model,
        optimizer,
        functools.partial(
            train_step, augment=args.augment, label_smoothing=args.label_smoothing
        ),
        functools.partial(full_batches, images=train_x, labels=train_y, args=args),
        num_batches=batches_per_epoch,
        epochs=args.epochs,
        evaluate=functools.partial(evaluate, images=test_x, labels=test_y),
        scheduler=scheduler,
        output_dir=args.output,
        resume=args.resume,
        progress=not args.no_progress,
        checkpoint_extra={"args": {k: str(v) for k, v in vars(args).items()}},
    )
    final = history.epochs[-1] if history.epochs else {}
    summary = {
        "test_accuracy": final.get("test_accuracy", float("nan")),
        "test_loss": final.get("test_loss", float("nan")),
        "epochs": len(history.epochs),
        "train_seconds": sum(history.column("train_seconds")),
        "wall_seconds_this_run": time.perf_counter() - started,
        "n_train": int(train_x.shape[0]),
        "n_test": int(test_x.shape[0]),
        "data": args.data,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "processes": context.world_size,
    }
    if not context.is_main:
        return summary
    return report(model, history, summary, test_x, test_y, args)


if __name__ == "__main__":
    main(sys.argv[1:])
