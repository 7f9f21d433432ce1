"""Quantised accuracy of the MNIST task's network: ``python benchmarks/quantization.py``.

1. Trains the float network of ``norse.task.mnist`` (bundled digits, the task's default
   settings; ``--float-checkpoint`` reuses a trained one) and measures its held-out
   accuracy.
2. Rewrites it as a ``SequentialState`` chain (input normalisation, batch norm and the
   synaptic gain folded into the convolutions and the linear layer) and checks that the
   chain computes what the network computes.
3. Quantises the chain with :func:`norse.torch.quantization.quantize` (16-bit state,
   12-bit decays, 8-bit input; formats calibrated on training digits) with int8 and
   int4 weights, per channel and per tensor: post-training (no retraining), and with
   quantisation-aware fine-tuning from the float weights.
4. Runs the integer-only network (:func:`~norse.torch.quantization.to_integer`) of each
   fine-tuned model on the held-out digits and checks that it gives the same
   predictions and the same spikes as the fake-quantised model.

Prints a Markdown table and writes ``--output``/results.json.
"""

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from norse.dataset import mnist as mnist_data
from norse.task import mnist
from norse.torch.functional.decode import max_decode
from norse.torch.module.lift import Lift
from norse.torch.module.sequential import SequentialState
from norse.torch.quantization import (
    QuantizationConfig,
    fold_batch_norm,
    quantize,
    to_integer,
)


def fold_normalization(conv: torch.nn.Conv2d) -> torch.nn.Conv2d:
    """A copy of ``conv`` (no padding) that takes raw images in [0, 1]:
    ``conv((x - mean) / std) = conv'(x)`` with ``W' = W / std`` and
    ``b' = b - mean / std * sum(W)``."""
    if conv.padding != (0, 0):
        raise ValueError(
            "folding the normalisation needs a convolution without padding"
        )
    folded = copy.deepcopy(conv)
    mean, std = mnist_data.MNIST_MEAN, mnist_data.MNIST_STD
    with torch.no_grad():
        bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
        folded.weight.copy_(conv.weight / std)
        total = conv.weight.sum(dim=(1, 2, 3))
        folded.bias = torch.nn.Parameter(bias - mean / std * total)
    return folded


def as_chain(model: mnist.MNISTConvSNN) -> SequentialState:
    """The task's network (direct encoder) as a chain that takes the images repeated
    over time, ``(T, batch, 1, 28, 28)``, and returns the read-out voltages."""
    if model.encoder is not None:
        raise ValueError("only the direct encoder is converted")
    model = copy.deepcopy(model).eval()
    conv1 = fold_batch_norm(fold_normalization(model.conv1), model.bn1, model.scale)
    conv2 = fold_batch_norm(model.conv2, model.bn2, model.scale)
    fc1 = fold_batch_norm(model.fc1, model.bn3, model.scale)
    return SequentialState(
        Lift(conv1),
        model.lif1,
        Lift(torch.nn.MaxPool2d(2)),
        Lift(conv2),
        model.lif2,
        Lift(torch.nn.MaxPool2d(2)),
        Lift(torch.nn.Flatten()),
        Lift(fc1),
        model.lif3,
        Lift(model.fc2),
        model.out,
    )


def over_time(images: torch.Tensor, steps: int) -> torch.Tensor:
    return images.unsqueeze(0).expand(steps, *images.shape)


@torch.no_grad()
def accuracy(
    run, images: torch.Tensor, labels: torch.Tensor, batch: int = 250
) -> float:
    """Held-out accuracy of ``run(images) -> voltages (T, batch, 10)``."""
    correct = 0
    for start in range(0, images.shape[0], batch):
        scores = max_decode(run(images[start : start + batch]))
        correct += (scores.argmax(1) == labels[start : start + batch]).sum().item()
    return correct / images.shape[0]


def fine_tune(
    model: torch.nn.Module,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    steps: int,
    epochs: int,
    lr: float,
    batch_size: int,
    augment: float,
    seed: int,
) -> float:
    """Quantisation-aware training: AdamW with a cosine schedule; returns seconds."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    batches = train_x.shape[0] // batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, batches * epochs)
    )
    model.train()
    for _ in range(epochs):
        order = torch.randperm(train_x.shape[0], generator=generator)
        for index in range(batches):
            chosen = order[index * batch_size : (index + 1) * batch_size]
            images = mnist.random_affine(train_x[chosen], augment, generator)
            voltages, _ = model(over_time(images, steps))
            loss = F.cross_entropy(max_decode(voltages), train_y[chosen])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()
    return time.perf_counter() - started


@torch.no_grad()
def integer_check(
    quantized: torch.nn.Module, images: torch.Tensor, steps: int, batch: int = 250
) -> Dict[str, float]:
    """Accuracy of the integer network, and whether its spikes and read-out voltages
    equal the fake-quantised model's on every held-out digit."""
    integer = to_integer(quantized)
    quantized.return_hidden = True
    integer.return_hidden = True
    identical = True
    predictions = []
    started = time.perf_counter()
    for start in range(0, images.shape[0], batch):
        x = over_time(images[start : start + batch], steps)
        float_layers, _ = quantized(x)
        integer_layers, _ = integer(x)
        for fmt, value, ints in zip(integer.formats, float_layers, integer_layers):
            identical &= torch.equal(value.double(), ints.double() * fmt.scale)
        predictions.append(max_decode(integer_layers[-1]).argmax(1))
    quantized.return_hidden = False
    return {
        "predictions": torch.cat(predictions),
        "identical": identical,
        "seconds": time.perf_counter() - started,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("runs/quantization"))
    parser.add_argument(
        "--float-checkpoint",
        type=Path,
        default=None,
        help="a checkpoint.pt of python -m norse.task.mnist (default settings) to "
        "start from instead of training",
    )
    parser.add_argument("--float-epochs", type=int, default=15)
    parser.add_argument("--qat-epochs", type=int, default=3)
    parser.add_argument("--qat-lr", type=float, default=5e-4)
    parser.add_argument("--calibration", type=int, default=256, help="digits")
    parser.add_argument("--state-bits", type=int, default=16)
    parser.add_argument("--decay-bits", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 float epoch, few steps"
    )
    return parser


def main(argv: Optional[List[str]] = None) -> Dict[str, dict]:
    args = build_parser().parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.output.mkdir(parents=True, exist_ok=True)
    (train_x, train_y), (test_x, test_y) = mnist.load_data(
        "bundled", Path("."), 4000, 1000, seed=0
    )
    if args.quick:
        args.float_epochs, args.qat_epochs = 1, 1
        train_x, train_y = train_x[:512], train_y[:512]
        test_x, test_y = test_x[:250], test_y[:250]

    checkpoint = args.float_checkpoint
    started = time.perf_counter()
    if checkpoint is None:
        float_dir = args.output / "float"
        mnist.main(
            [
                "--epochs",
                str(args.float_epochs),
                "--output",
                str(float_dir),
                "--seed",
                str(args.seed),
                "--no-plots",
                "--no-progress",
            ]
            + (["--n-train", "512", "--n-test", "250"] if args.quick else [])
        )
        checkpoint = float_dir / "checkpoint.pt"
    float_seconds = time.perf_counter() - started
    model = mnist.MNISTConvSNN()
    model.load_state_dict(torch.load(checkpoint, weights_only=False)["model"])
    model.eval()
    steps = model.seq_length

    float_accuracy = accuracy(model, test_x, test_y)
    chain = as_chain(model).eval()
    with torch.no_grad():
        reference = model(test_x[:100])
        rewritten, _ = chain(over_time(test_x[:100], steps))
    if not torch.allclose(reference, rewritten, atol=1e-4, rtol=1e-4):
        raise RuntimeError("the folded chain does not compute the task's network")
    results: Dict[str, dict] = {
        "float": {"accuracy": float_accuracy, "train_seconds": float_seconds}
    }
    print(f"float: {float_accuracy:.4f} ({float_seconds:.0f} s)", flush=True)

    calibration = over_time(train_x[: args.calibration], steps)
    for weight_bits in (8, 4):
        for per_channel in (True, False):
            config = QuantizationConfig(
                weight_bits=weight_bits,
                per_channel=per_channel,
                state_bits=args.state_bits,
                decay_bits=args.decay_bits,
            )
            name = f"int{weight_bits} {'per-channel' if per_channel else 'per-tensor'}"
            quantized = quantize(chain, config, calibration).eval()

            def run(images, quantized=quantized):
                return quantized(over_time(images, steps))[0]

            ptq = accuracy(run, test_x, test_y)
            row = {"ptq_accuracy": ptq, "config": repr(config)}
            print(f"{name}, post-training: {ptq:.4f}", flush=True)
            if per_channel:
                seconds = fine_tune(
                    quantized,
                    train_x,
                    train_y,
                    steps,
                    args.qat_epochs,
                    args.qat_lr,
                    64,
                    1.0,
                    args.seed,
                )
                qat = accuracy(run, test_x, test_y)
                check = integer_check(quantized, test_x, steps)
                integer_accuracy = (
                    (check["predictions"] == test_y).float().mean().item()
                )
                row.update(
                    qat_accuracy=qat,
                    qat_epochs=args.qat_epochs,
                    qat_seconds=seconds,
                    integer_accuracy=integer_accuracy,
                    integer_identical=bool(check["identical"]),
                    integer_seconds=check["seconds"],
                )
                print(
                    f"{name}, QAT {args.qat_epochs} epochs: {qat:.4f} ({seconds:.0f} s); "
                    f"integer network: {integer_accuracy:.4f}, same spikes and "
                    f"voltages: {check['identical']} ({check['seconds']:.0f} s)",
                    flush=True,
                )
            results[name] = row

    lines = [
        "| weights | state | post-training | QAT | integer network | spikes identical |",
        "|---|---|---|---|---|---|",
        f"| float32 | float32 | {float_accuracy:.2%} | | | |",
    ]
    for name, row in results.items():
        if name == "float":
            continue
        qat = f"{row['qat_accuracy']:.2%}" if "qat_accuracy" in row else ""
        integer = f"{row['integer_accuracy']:.2%}" if "integer_accuracy" in row else ""
        same = str(row.get("integer_identical", ""))
        lines.append(
            f"| {name} | {args.state_bits}-bit | {row['ptq_accuracy']:.2%} | {qat} | "
            f"{integer} | {same} |"
        )
    print("\n".join(lines))
    with open(args.output / "results.json", "w") as stream:
        json.dump(
            {"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
            stream,
            indent=2,
        )
    if not all(
        row.get("integer_identical", True) for row in results.values() if row
    ) or math.isnan(float_accuracy):
        raise SystemExit("the integer network differs from the fake-quantised model")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
