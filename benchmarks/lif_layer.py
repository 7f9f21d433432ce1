"""LIF layer speed and memory: fused kernels vs the reference loop vs Norse 1.1.

Measures a feed-forward ``LIF`` layer (default 1024 neurons, batch 32, T=100) on the CPU:

* ``fwd``: forward pass under ``torch.no_grad()``;
* ``fwd+bwd``: forward with an input that requires grad, then ``z.sum().backward()``;
* ``copy``: ``x.clone()`` of the input (the memory-copy floor: the forward reads the
  input and writes spikes of the same size);
* for long sequences (T=1000 by default), time of fwd+bwd and the peak resident memory
  above the process's baseline (``ru_maxrss``), at several T to show how it grows.

Every implementation runs in its own subprocess with the same user code: ``fused`` and
``reference`` (this repository, ``norse.torch.fused.reference_only()`` for the latter),
and ``norse11`` (Norse 1.1, from another interpreter, ``--norse11-python``). The machine
may be shared: the script prints medians and the load average.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/lif_layer.py
    PYTHONPATH=. .venv/bin/python benchmarks/lif_layer.py --impl fused --repeats 50

Not part of the test suite.
"""

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from _common import parse_driver_or_serve  # this folder is on sys.path as a script

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _timed(function, repeats: int):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def _summary(times):
    return {
        "median_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
    }


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def import_norse(impl: str):
    """``(norse.torch, context)`` for one implementation: ``norse11`` is the Norse 1.1
    installed in the running interpreter; otherwise this repository, with
    ``reference_only`` as the context for ``reference`` (a null context else)."""
    if impl == "norse11":
        import norse.torch as norse

        return norse, contextlib.nullcontext
    sys.path.insert(0, REPO)
    import norse.torch as norse
    from norse.torch.fused import reference_only

    return norse, reference_only if impl == "reference" else contextlib.nullcontext


def worker(args) -> dict:
    """Runs in the subprocess of one implementation; returns the measurements."""
    import torch

    norse, context = import_norse(args.impl)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    layer = norse.LIF()
    result = {"impl": args.impl, "torch_threads": torch.get_num_threads()}

    def forward(x):
        with context(), torch.no_grad():
            return layer(x)

    def forward_backward(x):
        x = x.detach().requires_grad_()
        with context():
            z, state = layer(x)
        z.sum().backward()
        return x.grad

    if args.memory_only:
        # Warm up (compilation) on a short sequence, then measure one long run.
        forward_backward(torch.randn(2, args.batch, args.neurons) + 1.5)
        baseline = _current_rss_bytes()
        x = 1.5 + torch.randn(args.steps, args.batch, args.neurons)
        input_bytes = x.numel() * x.element_size()
        start = time.perf_counter()
        forward_backward(x)
        elapsed = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        result.update(
            steps=args.steps,
            seconds=elapsed,
            peak_above_baseline_mb=(peak - baseline) / 2**20,
            input_mb=input_bytes / 2**20,
        )
        return result

    x = 1.5 + torch.randn(args.steps, args.batch, args.neurons)
    for _ in range(3):  # warm up (Numba compilation, allocator)
        forward(x)
        forward_backward(x)
    result["fwd"] = _summary(_timed(lambda: forward(x), args.repeats))
    result["fwd+bwd"] = _summary(_timed(lambda: forward_backward(x), args.repeats))
    result["copy"] = _summary(_timed(lambda: x.clone(), args.repeats))
    result["spike_rate"] = float(forward(x)[0].mean())
    return result


def worker_result(command: list) -> dict:
    """Runs a benchmark worker process, ``command``, and returns the JSON object its
    last output line holds. The worker runs outside this repository and without
    ``PYTHONPATH``, so that Norse 1.1 does not see this repository on its path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    output = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd="/", check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _run_worker(python: str, impl: str, args, extra=()) -> dict:
    command = [
        python,
        os.path.abspath(__file__),
        "--impl",
        impl,
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
        "--neurons",
        str(args.neurons),
        "--repeats",
        str(args.repeats),
        "--threads",
        str(args.threads),
        *extra,
    ]
    return worker_result(command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", choices=["fused", "reference", "norse11"])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--neurons", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--long-steps", type=int, nargs="*", default=[250, 500, 1000])
    parser.add_argument(
        "--long-impls",
        nargs="*",
        default=["fused", "reference", "norse11"],
        help="implementations measured on the long sequences (the loops take minutes)",
    )
    parser.add_argument("--memory-only", action="store_true")
    args, implementations = parse_driver_or_serve(parser, worker, "fused", "reference")
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    print(
        f"LIF layer: T={args.steps}, batch={args.batch}, neurons={args.neurons}, "
        f"float32, {args.repeats} repeats, torch threads={args.threads}"
    )
    for python, impl in implementations:
        result = _run_worker(python, impl, args)
        line = ", ".join(
            f"{key} {result[key]['median_ms']:.2f} ms (min {result[key]['min_ms']:.2f})"
            for key in ("fwd", "fwd+bwd", "copy")
        )
        print(f"  {impl:9s} {line}, spike rate {result['spike_rate']:.3f}")
    print("Long sequences, fwd+bwd (one run each, after warm-up):")
    for steps in args.long_steps:
        for python, impl in implementations:
            if impl not in args.long_impls:
                continue
            long_args = argparse.Namespace(**{**vars(args), "steps": steps})
            result = _run_worker(python, impl, long_args, ["--memory-only"])
            print(
                f"  T={steps:5d} {impl:9s} {result['seconds'] * 1e3:9.1f} ms, "
                f"peak +{result['peak_above_baseline_mb']:8.1f} MiB "
                f"(input {result['input_mb']:.1f} MiB)"
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
