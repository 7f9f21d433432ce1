"""MNIST with a spiking convolutional network, trained by PyTorch Lightning.

Run ``python -m norse.task.mnist_pl`` (needs ``pytorch-lightning``: ``pip install
pytorch-lightning``; ``--help`` lists the options). Lightning takes care of devices
(``--accelerator``, ``--devices``, several GPUs or processes), checkpoints (in
``--output``), logging and the training loop.

:class:`LIFConvNet` is Norse 1.1's LightningModule with the same constructor: an encoder
(constant-current LIF, or one spike per pixel with ``only_first_spike``) turns the image
into ``seq_length`` steps of spikes for :class:`norse.torch.models.conv.ConvNet4`, whose
peak output voltages are the class scores. Unlike Norse 1.1 it applies ``input_scale``
(which Norse 1.1 stored but ignored), logs accuracy and has validation and test steps.
The data come from :mod:`norse.dataset.mnist` (the bundled 5,000-digit subset or the full
data set; no torchvision needed), as in ``python -m norse.task.mnist``.
"""

import argparse
import functools
import time
from typing import Dict, Optional, Sequence

import torch
import torch.utils.data

try:
    import pytorch_lightning as pl
except ImportError as error:  # an optional dependency
    raise ImportError(
        "norse.task.mnist_pl needs PyTorch Lightning: pip install pytorch-lightning"
    ) from error

from norse.dataset.mnist import BUNDLED_SIZE, MNIST_MEAN, MNIST_STD
from norse.task import harness
from norse.task.mnist import load_data
from norse.torch.models.conv import ConvNet4
from norse.torch.module.encode import ConstantCurrentLIFEncoder, SpikeLatencyLIFEncoder


class LIFConvNet(pl.LightningModule):
    """Encoder + :class:`ConvNet4`, trained with the negative log-likelihood of the peak
    output voltages.

    Parameters:
        input_features: pixels per image (``28 * 28``)
        seq_length: time steps per image
        learning_rate: of the optimiser
        model: surrogate gradient method of the LIF neurons
        optimizer: ``"adam"`` or ``"sgd"``
        input_scale: factor on the (normalised) image before the encoder
        only_output: train only the output layer
        only_first_spike: latency code (one spike per pixel) instead of a rate code

    Shapes: images ``(batch, 1, 28, 28)`` -> log-probabilities ``(batch, 10)``.
    """

    def __init__(
        self,
        input_features: int,
        seq_length: int,
        learning_rate: float,
        model: str = "super",
        optimizer: str = "adam",
        input_scale: float = 1.0,
        only_output: bool = False,
        only_first_spike: bool = False,
    ):
        super().__init__()
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        encoder = (
            SpikeLatencyLIFEncoder if only_first_spike else ConstantCurrentLIFEncoder
        )
        self.encoder = encoder(seq_length=seq_length)
        self.input_features = input_features
        self.input_scale = input_scale
        self.learning_rate = learning_rate
        self.only_output = only_output
        self.optimizer = optimizer
        self.rsnn = ConvNet4(method=model)
        self.seq_length = seq_length
        self.save_hyperparameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_size = x.shape[0]
        spikes = self.encoder(self.input_scale * x.reshape(-1, self.input_features))
        voltages = self.rsnn(spikes.reshape(self.seq_length, batch_size, 1, 28, 28))
        return torch.nn.functional.log_softmax(voltages.max(0).values, dim=1)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        out = self(x)
        loss = torch.nn.functional.nll_loss(out, y)
        accuracy = (out.argmax(1) == y).float().mean()
        self.log(f"{stage}_loss", loss, prog_bar=stage != "train")
        self.log(f"{stage}_accuracy", accuracy, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._step(batch, "test")

    def configure_optimizers(self):
        optimizer = torch.optim.Adam if self.optimizer == "adam" else torch.optim.SGD
        module = self.rsnn.out if self.only_output else self.rsnn
        return optimizer(module.parameters(), lr=self.learning_rate, weight_decay=1e-6)


def _loader(images, labels, batch_size: int, shuffle: bool, seed: int):
    normalised = (images - MNIST_MEAN) / MNIST_STD
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(normalised, labels),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed) if shuffle else None,
    )


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = harness.task_parser(
        "norse.task.mnist_pl", "MNIST with a spiking ConvNet4 and PyTorch Lightning."
    )
    add = functools.partial(harness.add_option, parser)
    add("--data", choices=("bundled", "full"), default="bundled")
    add("--data_dir", default="~/.cache/norse/mnist", help="for --data full")
    add("--n_train", type=int, default=4000, help="bundled training digits")
    add("--n_test", type=int, default=1000, help="bundled test digits")
    add("--batch_size", type=int, default=32)
    add("--learning_rate", type=float, default=0.002)
    add("--model", default="super", help="surrogate gradient method")
    add("--optimizer", choices=("adam", "sgd"), default="adam")
    add("--seq_length", type=int, default=32, help="time steps (Norse 1.1: 200)")
    add("--input_scale", type=float, default=1.0)
    add("--only_first_spike", action="store_true", help="latency coding")
    add("--train_only_output", action="store_true")
    add("--max_epochs", type=int, default=2)
    add("--accelerator", default="auto", help="cpu, gpu, auto, ...")
    add("--devices", default="auto", help="number of devices or 'auto'")
    add("--seed", type=int, default=0)
    add("--output", default="runs/mnist_pl", help="Lightning's root folder")
    add("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    harness.require_positive(
        parser, args, "batch_size", "seq_length", "max_epochs", "n_train", "n_test"
    )
    if args.data == "bundled" and args.n_train + args.n_test > BUNDLED_SIZE:
        parser.error(
            f"--n_train + --n_test must be <= {BUNDLED_SIZE} (the bundled digits), "
            f"got {args.n_train} + {args.n_test}"
        )
    harness.require_positive_finite(parser, args, "learning_rate", "input_scale")
    harness.require_method(parser, args, "model")
    harness.require_range(parser, args, "seed", 0)
    return args


def build_model(args: argparse.Namespace) -> LIFConvNet:
    """The LightningModule that the options describe."""
    return LIFConvNet(
        28 * 28,
        seq_length=args.seq_length,
        learning_rate=args.learning_rate,
        model=args.model,
        optimizer=args.optimizer,
        input_scale=args.input_scale,
        only_output=args.train_only_output,
        only_first_spike=args.only_first_spike,
    )


def build_trainer(args: argparse.Namespace) -> pl.Trainer:
    """A deterministic Lightning ``Trainer`` logging to CSV files in ``--output``."""
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    return pl.Trainer(
        max_epochs=args.max_epochs,
        accelerator=args.accelerator,
        devices=devices,
        default_root_dir=args.output,
        enable_progress_bar=not args.no_progress,
        logger=pl.loggers.CSVLogger(args.output),
        deterministic=True,
    )


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Trains with a Lightning ``Trainer`` and tests; returns the test metrics."""
    args = parse_args(argv)
    started = time.perf_counter()
    pl.seed_everything(args.seed, workers=True)
    (train_x, train_y), (test_x, test_y) = load_data(
        args.data, args.data_dir, args.n_train, args.n_test, args.seed
    )
    train = _loader(train_x, train_y, args.batch_size, True, args.seed)
    test = _loader(test_x, test_y, 256, False, args.seed)
    model = build_model(args)
    trainer = build_trainer(args)
    trainer.fit(model, train, test)
    metrics = trainer.test(model, test, verbose=False)[0]
    summary = {
        **{k: float(v) for k, v in metrics.items()},
        "epochs": trainer.current_epoch,
        "train_samples": len(train_y),
        "test_samples": len(test_y),
    }
    return harness.save_summary(
        summary, args.output, "norse.task.mnist_pl", argv, started
    )


if __name__ == "__main__":
    main()
