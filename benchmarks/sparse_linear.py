"""Event-driven (sparse) vs dense weight products for binary spike input.

Times ``y = x @ W.T`` for a binary spike input ``x`` under ``torch.no_grad()`` on the CPU:

* ``dense``: :func:`torch.nn.functional.linear`;
* ``sparse``: :func:`norse.torch.fused.spike_linear.spike_linear` with ``method="sparse"``
  (active inputs, then per row a sum of rows of ``W.T``: the Numba kernels of
  :mod:`norse.torch.fused.cpu_linear`, or ``embedding_bag`` without Numba);
* ``auto``: ``spike_linear`` with the default ``method="auto"`` (includes finding the
  active inputs to choose).

The weight is stored column-major, as :class:`norse.torch.SpikeLinear` stores it
(``F.linear`` is as fast with either layout). Default: a 4,096 x 4,096 float32 layer,
activities 0.5-10%, inputs ``(1, N)``, ``(32, N)`` and ``(T=50, B=32, N)``, with 1 and 2
PyTorch threads; medians (minimum in brackets), the three timed in turn.

``--crossover`` prints the speed-up of the event-driven path over the dense product
(ratio of medians, the two timed in turn) for several layers, weight layouts (column-
major as ``SpikeLinear`` stores it, row-major as ``torch.nn.Linear``), row counts and
activities, for inference and for a training step (forward and backward to the weight
and bias): the data behind the thresholds of ``method="auto"``.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/sparse_linear.py
    PYTHONPATH=. .venv/bin/python benchmarks/sparse_linear.py --crossover --threads 1

Not part of the test suite.
"""

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from norse.torch.functional.sparse import column_major
from norse.torch.fused.spike_linear import spike_linear


def _alternate(functions, budget_s: float, min_repeats: int = 5, max_repeats: int = 51):
    """Run times (s) of each of ``functions``, called in turn (so that a change of the
    machine's load affects all alike), as many rounds as fit in about ``budget_s``
    seconds (at least ``min_repeats``), after one warm-up round."""
    rounds = [[] for _ in functions]
    for _ in range(2):  # warm-up, then a timed round that sizes the repeats
        for function, times in zip(functions, rounds):
            start = time.perf_counter()
            function()
            times[:] = [time.perf_counter() - start]
    per_round = sum(times[0] for times in rounds)
    repeats = int(min(max_repeats, max(min_repeats, budget_s / max(per_round, 1e-6))))
    for _ in range(repeats - 1):
        for function, times in zip(functions, rounds):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
    return rounds


def _ms(times) -> str:
    return f"{1e3 * statistics.median(times):.3g} ({1e3 * min(times):.3g})"


def _spikes(shape, activity: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=generator) < activity).float()


def table(args) -> None:
    generator = torch.Generator().manual_seed(0)
    n = args.features
    weight = column_major(torch.randn(n, n, generator=generator) / n**0.5)
    shapes = [(1, n), (32, n), (50, 32, n)]
    print(
        f"Layer {n} x {n}, float32, no_grad, medians in ms (minimum), "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"\nthreads={threads}\n")
        print("| input | activity | dense | sparse | auto | dense/sparse |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for shape in shapes:
            for activity in args.activities:
                x = _spikes(shape, activity, generator)
                with torch.no_grad():
                    reference = F.linear(x, weight)
                    result = spike_linear(x, weight, method="sparse")
                    torch.testing.assert_close(result, reference, rtol=1e-4, atol=1e-4)
                    dense, sparse, auto = _alternate(
                        [
                            lambda: F.linear(x, weight),
                            lambda: spike_linear(x, weight, method="sparse"),
                            lambda: spike_linear(x, weight),
                        ],
                        args.budget,
                    )
                ratio = statistics.median(dense) / statistics.median(sparse)
                print(
                    f"| {tuple(shape)} | {100 * activity:g}% | {_ms(dense)} | "
                    f"{_ms(sparse)} | {_ms(auto)} | {ratio:.1f}x |",
                    flush=True,
                )


def crossover(args) -> None:
    """Speed-up of ``method="sparse"`` over ``"dense"`` (dense median / sparse median)
    per layer, weight layout, row count and activity, for inference (``no_grad``) and a
    training step (forward, then backward to the weight and bias)."""
    generator = torch.Generator().manual_seed(0)
    activities = [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5]
    print(f"load {os.getloadavg()[0]:.1f}, threads {torch.get_num_threads()}")
    header = " | ".join(f"{100 * a:g}%" for a in activities)
    print(f"| in -> out | layout | rows | mode | {header} |")
    print("| --- | --- | ---: | --- |" + " ---: |" * len(activities))
    for layer in args.layers:
        in_features, out_features = map(int, layer.split("x"))
        for layout in args.layouts:
            weight = torch.randn(out_features, in_features, generator=generator)
            if layout == "column":
                weight = column_major(weight)
            bias = torch.randn(out_features, generator=generator)
            for rows in args.rows:
                for mode in ("inference", "training"):
                    weight.requires_grad_(mode == "training")
                    bias.requires_grad_(mode == "training")
                    ratios = []
                    for activity in activities:
                        x = _spikes((rows, in_features), activity, generator)

                        def run(method, x=x, mode=mode):
                            if mode == "training":
                                spike_linear(x, weight, bias, method).sum().backward()
                            else:
                                with torch.no_grad():
                                    spike_linear(x, weight, bias, method)

                        dense, sparse = map(
                            statistics.median,
                            _alternate(
                                [lambda: run("dense"), lambda: run("sparse")],
                                args.budget,
                            ),
                        )
                        ratios.append(dense / sparse)
                    shown = " | ".join(f"{r:.1f}" for r in ratios)
                    print(
                        f"| {in_features} -> {out_features} | {layout} | {rows} | "
                        f"{mode} | {shown} |",
                        flush=True,
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", type=int, default=4096)
    parser.add_argument(
        "--activities", type=float, nargs="*", default=[0.005, 0.01, 0.02, 0.05, 0.1]
    )
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument(
        "--budget", type=float, default=1.0, help="seconds of repeats per measurement"
    )
    parser.add_argument("--crossover", action="store_true")
    parser.add_argument(
        "--layers",
        nargs="*",
        default=["256x256", "784x256", "1024x1024", "256x10", "4096x4096"],
        help="in_features x out_features",
    )
    parser.add_argument("--layouts", nargs="*", default=["column", "row"])
    parser.add_argument("--rows", type=int, nargs="*", default=[1, 16, 64, 256, 3200])
    args = parser.parse_args()
    if args.crossover:
        torch.set_num_threads(args.threads[0])
        crossover(args)
    else:
        table(args)


if __name__ == "__main__":
    main()
