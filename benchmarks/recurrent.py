"""Recurrent layers: the fused recurrent path vs the reference loop vs Norse 1.1.

Workloads (CPU, float32, input ``torch.rand(T, batch, 128)``, default T=100, batch 32):

* ``LSNNRecurrent(128, 128)`` and ``LIFRecurrent(128, 128)``;
* ``fwd+bwd``: forward with an input that requires grad, then ``z.sum().backward()``
  (weight and input gradients);
* ``fwd``: forward under ``torch.no_grad()``.

Every implementation runs in its own subprocess with the same user code: ``fused`` and
``reference`` (this repository; ``norse.torch.fused.reference_only()`` for the latter)
and ``norse11`` (Norse 1.1, from another interpreter, ``--norse11-python``). The
implementations take turns for ``--passes`` passes so that a change of load on a shared
machine hits all of them; the table gives the median over all passes and the load
average before and after.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/recurrent.py
    PYTHONPATH=. .venv/bin/python benchmarks/recurrent.py --passes 5 --repeats 20

Not part of the test suite.
"""

import argparse
import os
import statistics
import time

# this folder is on sys.path when run as a script
from _common import parse_driver_or_serve
from lif_layer import import_norse, worker_result

MODELS = ("LSNNRecurrent", "LIFRecurrent")
IMPLEMENTATIONS = ("fused", "reference", "norse11")


def worker(args) -> dict:
    """Runs in the subprocess of one implementation; returns the times (ms)."""
    import torch

    norse, context = import_norse(args.impl)
    torch.set_num_threads(args.threads)
    result = {"impl": args.impl, "torch_threads": torch.get_num_threads()}
    for name in MODELS:
        torch.manual_seed(0)
        layer = getattr(norse, name)(args.inputs, args.hidden)
        x = torch.rand(args.steps, args.batch, args.inputs)

        def forward():
            with context(), torch.no_grad():
                return layer(x)[0]

        def forward_backward():
            xi = x.clone().requires_grad_()
            with context():
                z, _ = layer(xi)
            z.sum().backward()

        for function in (forward, forward_backward) * 3:  # warm-up, compilation
            function()
        for key, function in (("fwd", forward), ("fwd+bwd", forward_backward)):
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                function()
                times.append(1e3 * (time.perf_counter() - start))
            result[f"{name} {key}"] = times
        result[f"{name} rate"] = float(forward().mean())
    return result


def _run_worker(python: str, impl: str, args) -> dict:
    command = [python, os.path.abspath(__file__), "--impl", impl]
    for option in ("steps", "batch", "inputs", "hidden", "repeats", "threads"):
        command += [f"--{option}", str(getattr(args, option))]
    return worker_result(command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", choices=IMPLEMENTATIONS)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--inputs", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args, implementations = parse_driver_or_serve(parser, worker, "fused", "reference")
    loads = [os.getloadavg()]
    print(
        f"T={args.steps}, batch={args.batch}, {args.inputs} -> {args.hidden} neurons, "
        f"float32, {args.passes} passes x {args.repeats} repeats, torch threads="
        f"{args.threads}, cpus {os.cpu_count()}"
    )
    times = {}
    rates = {}
    for _ in range(args.passes):
        for python, impl in implementations:
            result = _run_worker(python, impl, args)
            for key, values in result.items():
                if key.endswith(" rate"):
                    rates[impl, key[:-5]] = values
                elif isinstance(values, list):
                    times.setdefault((impl, key), []).extend(values)
        loads.append(os.getloadavg())
    print(
        "load average (1 min) before/after each pass:", [f"{a:.2f}" for a, *_ in loads]
    )
    for name in MODELS:
        for key in ("fwd+bwd", "fwd"):
            medians = {
                impl: statistics.median(times[impl, f"{name} {key}"])
                for _, impl in implementations
            }
            line = ", ".join(
                f"{impl} {ms:7.2f} ms (min {min(times[impl, f'{name} {key}']):.2f})"
                for impl, ms in medians.items()
            )
            ratio = ""
            if "norse11" in medians:
                ratio = (
                    f"; Norse 1.1 / fused = {medians['norse11'] / medians['fused']:.2f}"
                )
            print(f"{name:13s} {key:7s}: {line}{ratio}")
        print(
            f"{name:13s} spike rate: "
            + ", ".join(
                f"{impl} {rates[impl, name]:.4f}" for _, impl in implementations
            )
        )


if __name__ == "__main__":
    main()
