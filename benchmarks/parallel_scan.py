"""Time-parallel neurons: parallel scans and fixed-point LIF vs the fused kernels and the
reference loop.

For each ``T`` in ``--steps`` and each layer size (batch x neurons) in ``--sizes``:

* LI layer: ``fused`` (``LI()``, the fused kernel of the time module), ``loop``
  (``LI()`` inside ``reference_only()``: the per-step reference loop, what runs where no
  fused kernel applies) and ``scan`` (``LI(parallel=True)``: two log-depth scans);
* LIF layer: ``fused`` (``LIF()``), ``loop`` (``reference_only()``), ``current scan``
  (``lif_feed_forward_scan``: the current scanned, the voltage step by step) and
  ``fixed point`` (``LIFFixedPoint()``, with the iterations it needed).

``fwd``: forward under ``torch.no_grad()``; ``fwd+bwd``: forward with an input that
requires grad, then ``out.sum().backward()``. Medians of ``--repeats`` runs after one
warm-up (one run for runs longer than ``--budget`` seconds). The LIF input is uniform in
[0, ``--drive``], so that neurons fire at different, moderate rates.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/parallel_scan.py
    PYTHONPATH=. .venv/bin/python benchmarks/parallel_scan.py --steps 100 1000 --sizes 4x16

Not part of the test suite.
"""

import argparse
import os
import platform
import statistics
import time

import torch

import norse.torch as norse
from norse.torch.functional.lif import LIFFeedForwardState
from norse.torch.functional.parallel_scan import lif_feed_forward_scan
from norse.torch.fused import reference_only


def _timed(function, repeats: int, budget: float) -> float:
    """Median seconds of ``function()`` after one warm-up run (which compiles the
    kernels); a single timed run when that one took longer than ``budget``."""
    function()
    start = time.perf_counter()
    function()
    first = time.perf_counter() - start
    if first > budget:
        return first
    times = [first]
    for _ in range(repeats - 1):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _forward(layer, x, context):
    def run():
        with context(), torch.no_grad():
            layer(x)

    return run


def _backward(layer, x, context):
    def run():
        with context():
            xg = x.detach().requires_grad_()
            out, _ = layer(xg)
            out.sum().backward()

    return run


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


def _current_scan_layer(x):
    p = norse.LIFParameters()
    state = LIFFeedForwardState(
        torch.zeros(x.shape[1:], dtype=x.dtype), torch.zeros(x.shape[1:], dtype=x.dtype)
    )

    def layer(x):
        return lif_feed_forward_scan(x, state, p)

    return layer


def run(args) -> list:
    rows = []
    for size in args.sizes:
        batch, neurons = (int(part) for part in size.split("x"))
        for steps in args.steps:
            if steps * batch * neurons > args.max_elements:
                continue
            generator = torch.Generator().manual_seed(0)
            x_li = torch.randn(steps, batch, neurons, generator=generator)
            x_lif = torch.rand(steps, batch, neurons, generator=generator) * args.drive
            fixed_point = norse.LIFFixedPoint()
            cases = [
                ("LI", "fused", norse.LI(parallel=False), x_li, _Null),
                ("LI", "loop", norse.LI(parallel=False), x_li, reference_only),
                ("LI", "scan", norse.LI(parallel=True), x_li, _Null),
                ("LIF", "fused", norse.LIF(), x_lif, _Null),
                ("LIF", "loop", norse.LIF(), x_lif, reference_only),
                ("LIF", "current scan", _current_scan_layer(x_lif), x_lif, _Null),
                ("LIF", "fixed point", fixed_point, x_lif, _Null),
            ]
            for model, impl, layer, x, context in cases:
                forward = _timed(_forward(layer, x, context), args.repeats, args.budget)
                backward = _timed(
                    _backward(layer, x, context), args.repeats, args.budget
                )
                extra = ""
                if impl == "fixed point":
                    with torch.no_grad():
                        reference = norse.LIF()(x)[0]
                        differing = (fixed_point(x)[0] != reference).sum().item()
                    most = reference.sum(0).max().item()
                    extra = (
                        f"{fixed_point.iterations} it., busiest neuron {most:.0f} "
                        f"spikes, {differing} of {reference.sum().item():.0f} spikes "
                        f"differ (float32 rounding)"
                    )
                row = dict(
                    model=model,
                    impl=impl,
                    steps=steps,
                    size=size,
                    fwd_ms=1e3 * forward,
                    bwd_ms=1e3 * backward,
                    note=extra,
                )
                rows.append(row)
                print(
                    f"{model:4} {impl:13} T={steps:6} {size:8} fwd {row['fwd_ms']:10.2f} ms"
                    f"  fwd+bwd {row['bwd_ms']:10.2f} ms  {extra}",
                    flush=True,
                )
    return rows


def table(rows: list) -> str:
    """Markdown table: time per implementation, and the speed-up of the parallel forms
    over the fused kernel and over the loop."""
    lines = [
        "| model | batch x neurons | T | impl | fwd | fwd+bwd | fwd vs fused | fwd vs loop "
        "| fwd+bwd vs fused | fwd+bwd vs loop | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    key = {(r["model"], r["size"], r["steps"], r["impl"]): r for r in rows}
    for r in rows:
        fused = key[(r["model"], r["size"], r["steps"], "fused")]
        loop = key[(r["model"], r["size"], r["steps"], "loop")]
        ratios = []
        for base in (fused, loop):
            ratios.append(f"{base['fwd_ms'] / r['fwd_ms']:.2f}x")
        for base in (fused, loop):
            ratios.append(f"{base['bwd_ms'] / r['bwd_ms']:.2f}x")
        lines.append(
            f"| {r['model']} | {r['size']} | {r['steps']} | {r['impl']} "
            f"| {_ms(r['fwd_ms'])} | {_ms(r['bwd_ms'])} | {ratios[0]} | {ratios[1]} "
            f"| {ratios[2]} | {ratios[3]} | {r['note']} |"
        )
    return "\n".join(lines)


def _ms(value: float) -> str:
    return f"{value / 1e3:.2f} s" if value >= 1e3 else f"{value:.2f} ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument(
        "--sizes", nargs="+", default=["1x64", "16x64", "32x512"], help="BATCHxNEURONS"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--drive", type=float, default=0.5)
    parser.add_argument(
        "--max-elements",
        type=float,
        default=4e7,
        help="skip sizes with more than this many T x batch x neurons values",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{args.threads} thread(s), load {os.getloadavg()}",
        flush=True,
    )
    rows = run(args)
    print(f"load after: {os.getloadavg()}")
    print(table(rows))


if __name__ == "__main__":
    main()
