"""Event-driven (sparse) vs dense weight products for binary spike input.

Times ``y = x @ W.T`` for a binary spike input ``x`` under ``torch.no_grad()`` on the CPU:

* ``dense``: :func:`torch.nn.functional.linear`;
* ``sparse``: :func:`norse.torch.functional.sparse.spike_linear` with ``method="sparse"``
  (active indices, then per row a sum of rows of ``W.T`` with ``embedding_bag``);
* ``auto``: ``spike_linear`` with the default ``method="auto"`` (includes counting the
  active inputs to choose).

The weight is stored column-major, as :class:`norse.torch.SpikeLinear` stores it
(``F.linear`` is as fast with either layout). Default: a 4,096 x 4,096 float32 layer,
activities 0.5-10%, inputs ``(1, N)``, ``(32, N)`` and ``(T=50, B=32, N)``, with 1 and 2
PyTorch threads; medians (minimum in brackets), the three timed in turn.

``--crossover`` scans activities for several layer sizes and row counts and prints, for
each, the highest activity up to which the sparse path is faster than the dense one (at
every scanned activity below it; the two timed in turn): the data behind the thresholds
of ``method="auto"``.

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

from norse.torch.functional.sparse import column_major, spike_linear


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
    generator = torch.Generator().manual_seed(0)
    activities = [0.005, 0.01, 0.02, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0]
    print(f"load {os.getloadavg()[0]:.1f}, threads {torch.get_num_threads()}")
    print("| out x in | rows | dense ms | sparse ms at 0.5% / 2% / 5% | crossover |")
    print("| --- | ---: | ---: | --- | --- |")
    for size in args.sizes:
        weight = column_major(torch.randn(size, size, generator=generator))
        for rows in args.rows:
            sparse_at, dense_at, last_win = {}, [], None
            with torch.no_grad():
                for activity in activities:
                    x = _spikes((rows, size), activity, generator)
                    dense, sparse = map(
                        statistics.median,
                        _alternate(
                            [
                                lambda: F.linear(x, weight),
                                lambda: spike_linear(x, weight, method="sparse"),
                            ],
                            args.budget,
                        ),
                    )
                    sparse_at[activity] = sparse
                    dense_at.append(dense)
                    if sparse >= dense:  # the first loss ends the scan
                        break
                    last_win = activity
            shown = " / ".join(
                f"{1e3 * sparse_at[a]:.3g}" if a in sparse_at else "-"
                for a in (0.005, 0.02, 0.05)
            )
            won = "never" if last_win is None else f"<= {100 * last_win:g}%"
            print(
                f"| {size} x {size} | {rows} | {1e3 * statistics.median(dense_at):.3g} "
                f"| {shown} | {won} |",
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
    parser.add_argument("--sizes", type=int, nargs="*", default=[128, 256, 1024, 4096])
    parser.add_argument("--rows", type=int, nargs="*", default=[1, 4, 32, 256, 1600])
    args = parser.parse_args()
    if args.crossover:
        torch.set_num_threads(args.threads[0])
        crossover(args)
    else:
        table(args)


if __name__ == "__main__":
    main()
