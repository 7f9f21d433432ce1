"""Side-by-side benchmark: this repository vs Norse 1.1, snnTorch 1.0 and SpikingJelly 2.0.

Every implementation runs in its own interpreter (its own virtual environment) as a
subprocess of the driver, one after another, and prints its measurements as JSON; the
driver prints a markdown table of medians (ms per iteration), ratios and peak memory.

Workloads (float32, CPU, ``--threads`` PyTorch threads, 1 by default):

* ``lif_fwd`` / ``lif_fwdbwd``: a 1,024-neuron LIF layer, T=100, batch 32, forward under
  ``no_grad``; forward with an input that requires grad, then ``z.sum().backward()``.
  ``copy`` is ``x.clone()`` of the same input (the memory-bandwidth floor).
* ``mlp``: ``Linear(784,256) -> LIF -> Linear(256,10) -> LI`` training step (forward,
  cross-entropy on the maximum over time of the LI voltage, backward, Adam step), T=50,
  batch 64, binary Poisson-like input with about 13% ones (MNIST-like rates).
* ``conv``: ``Conv(1,16,5) -> LIF -> MaxPool2 -> Conv(16,32,5) -> LIF -> MaxPool2 ->
  Flatten -> Linear(512,10) -> LI`` training step, T=20, batch 32, 1x28x28 binary input.
* ``lsnn``: ``LSNNRecurrent(128, 128)``, T=100, batch 32, forward and backward (Norse
  APIs only: this repository and Norse 1.1).
* ``long``: the LIF layer forward+backward at T=1,000 (one run after a short warm-up):
  time and peak memory above the inputs.

The inputs are the same for every implementation (NumPy generators with fixed seeds).
Peer code is written the way each library's users write it: Norse-API user code is
identical for ``norse`` (this repository) and ``norse11``; snnTorch uses ``snn.Synaptic``
(current-based like Norse's LIF; ``reset_mechanism="none"`` for the leaky integrator)
stepped by a Python loop over time; SpikingJelly uses ``activation_based`` multi-step
modules (``neuron.LIFNode(step_mode="m")``, ``layer.Linear``/``layer.Conv2d``, and
``neuron.NonSpikingLIFNode(decode="max-mem")`` as the leaky integrator). SpikingJelly 2.0
has no ``backend`` argument: on the CPU its ``LIFNode`` runs its own PyTorch forward loop
with a hand-written backward (``spikingjelly._ops.lif.cpu``), the analogue of
``backend="torch"`` in the 0.0.0.0.x releases.

Peak memory is the growth of the resident set (``VmHWM`` reset via
``/proc/self/clear_refs``, after ``malloc_trim``) during one iteration, above what the
process held before it (model, optimizer state, inputs).

Every worker runs ``--rounds`` times (the long sequences only in the first round), one
after another, and the samples are pooled, so that a change of load on a shared machine
hits every library. The ``norse`` worker imports this library from ``--repo`` (this
checkout by default; e.g. a ``git archive`` of a commit, to measure committed code only).

Usage::

    .venv/bin/python benchmarks/peers.py                   # driver, ~6 min
    .venv/bin/python benchmarks/peers.py --skip-long       # ~2-3 min
    $PEER_PYTHON benchmarks/peers.py --impl snntorch   # one worker, JSON

Not part of the test suite.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# this folder is on sys.path when run as a script
from _common import add_norse11_option, resident_growth

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

IMPLS = ("norse", "norse11", "snntorch", "spikingjelly")
NAMES = {
    "norse": "this repo",
    "norse11": "Norse 1.1",
    "snntorch": "snnTorch 1.0",
    "spikingjelly": "SpikingJelly 2.0",
}
PEERS = ("norse11", "snntorch", "spikingjelly")

# Norse's default LIF parameters (dt = 1 ms, tau_syn_inv = 200/s, tau_mem_inv = 100/s) as
# the peers' decay factors and time constant.
ALPHA = 1.0 - 1e-3 * 200.0  # synaptic current decay per step
BETA = 1.0 - 1e-3 * 100.0  # membrane decay per step
TAU = 1.0 / (1e-3 * 100.0)  # membrane time constant in steps

LIF_SHAPE = (100, 32, 1024)  # T, batch, neurons
MLP_SHAPE = (50, 64, 784)
CONV_SHAPE = (20, 32, 1, 28, 28)
LSNN_SHAPE = (100, 32, 128)
POISSON_RATE = 0.13


# ----------------------------------------------------------------------------------
# Inputs (identical for every implementation)


def _inputs(long_steps: int):
    import numpy as np
    import torch

    def tensor(array):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    rng = np.random.default_rng(1234)
    data = {
        "lif": tensor(1.5 + rng.standard_normal(LIF_SHAPE)),
        "mlp": tensor(rng.random(MLP_SHAPE) < POISSON_RATE),
        "mlp_y": torch.from_numpy(rng.integers(0, 10, MLP_SHAPE[1])),
        "conv": tensor(rng.random(CONV_SHAPE) < POISSON_RATE),
        "conv_y": torch.from_numpy(rng.integers(0, 10, CONV_SHAPE[1])),
        "lsnn": tensor(1.5 + rng.standard_normal(LSNN_SHAPE)),
    }
    long_rng = np.random.default_rng(4321)
    data["long"] = tensor(1.5 + long_rng.standard_normal((long_steps, *LIF_SHAPE[1:])))
    data["long_warmup"] = data["long"][:10].clone()
    return data


# ----------------------------------------------------------------------------------
# The user code of each library. Each builder returns callables:
#   lif()  -> f(x) -> spikes (T, B, N)
#   mlp()  -> (module, f(x) -> logits (B, 10))
#   conv() -> (module, f(x) -> logits (B, 10))
#   lsnn() -> f(x) -> spikes (T, B, 128)        (Norse APIs only)


def _norse_api():
    """Norse 1.1 user code; runs unchanged on this repository and on Norse 1.1."""
    import torch

    import norse.torch as norse

    def outputs(module):
        """The first output of a Norse module (spikes or voltages, time first)."""
        return lambda x: module(x)[0]

    def max_over_time(model):
        return model, lambda x: model(x)[0].max(0).values

    def lif():
        return outputs(norse.LIF())

    def mlp():
        return max_over_time(
            norse.SequentialState(
                torch.nn.Linear(784, 256),
                norse.LIF(),
                torch.nn.Linear(256, 10),
                norse.LI(),
            )
        )

    def conv():
        return max_over_time(
            norse.SequentialState(
                norse.Lift(torch.nn.Conv2d(1, 16, 5)),
                norse.LIF(),
                norse.Lift(torch.nn.MaxPool2d(2)),
                norse.Lift(torch.nn.Conv2d(16, 32, 5)),
                norse.LIF(),
                norse.Lift(torch.nn.MaxPool2d(2)),
                norse.Lift(torch.nn.Flatten()),
                torch.nn.Linear(512, 10),
                norse.LI(),
            )
        )

    def lsnn():
        return outputs(norse.LSNNRecurrent(128, 128))

    return {"lif": lif, "mlp": mlp, "conv": conv, "lsnn": lsnn}


def _snntorch():
    """snnTorch 1.0 user code: per-step neurons driven by a Python loop over time."""
    import snntorch as snn
    import torch
    from snntorch import utils

    def lif():
        neuron = snn.Synaptic(alpha=ALPHA, beta=BETA)

        def run(x):
            syn, mem = neuron.reset_mem()
            spk_rec = []
            for step in range(x.shape[0]):
                spk, syn, mem = neuron(x[step], syn, mem)
                spk_rec.append(spk)
            return torch.stack(spk_rec)

        return run

    def readout():
        return snn.Synaptic(
            alpha=ALPHA,
            beta=BETA,
            init_hidden=True,
            output=True,
            reset_mechanism="none",
        )

    def loop(net):
        def run(x):
            utils.reset(net)
            mem_rec = []
            for step in range(x.shape[0]):
                _, _, mem = net(x[step])
                mem_rec.append(mem)
            return torch.stack(mem_rec).max(0).values

        return run

    def mlp():
        net = torch.nn.Sequential(
            torch.nn.Linear(784, 256),
            snn.Synaptic(alpha=ALPHA, beta=BETA, init_hidden=True),
            torch.nn.Linear(256, 10),
            readout(),
        )
        return net, loop(net)

    def conv():
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 5),
            snn.Synaptic(alpha=ALPHA, beta=BETA, init_hidden=True),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 5),
            snn.Synaptic(alpha=ALPHA, beta=BETA, init_hidden=True),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(512, 10),
            readout(),
        )
        return net, loop(net)

    return {"lif": lif, "mlp": mlp, "conv": conv}


def _spikingjelly():
    """SpikingJelly 2.0 user code: activation_based multi-step modules."""
    import torch
    from spikingjelly.activation_based import functional, layer, neuron

    def lif():
        node = neuron.LIFNode(tau=TAU, step_mode="m")

        def run(x):
            functional.reset_net(node)
            return node(x)

        return run

    def multi_step(net):
        functional.set_step_mode(net, "m")

        def run(x):
            functional.reset_net(net)
            return net(x)

        return run

    def mlp():
        net = torch.nn.Sequential(
            layer.Linear(784, 256),
            neuron.LIFNode(tau=TAU),
            layer.Linear(256, 10),
            neuron.NonSpikingLIFNode(tau=TAU, decode="max-mem"),
        )
        return net, multi_step(net)

    def conv():
        net = torch.nn.Sequential(
            layer.Conv2d(1, 16, 5),
            neuron.LIFNode(tau=TAU),
            layer.MaxPool2d(2),
            layer.Conv2d(16, 32, 5),
            neuron.LIFNode(tau=TAU),
            layer.MaxPool2d(2),
            layer.Flatten(),
            layer.Linear(512, 10),
            neuron.NonSpikingLIFNode(tau=TAU, decode="max-mem"),
        )
        return net, multi_step(net)

    return {"lif": lif, "mlp": mlp, "conv": conv}


# ----------------------------------------------------------------------------------
# Measurement


def _warm_up(functions, calls: int, seconds: float) -> None:
    """Calls every function ``calls`` times, and on until ``seconds`` have passed: the
    clock of a just-started process rises over its first ~10-20 ms of work (here the
    copy of 12.5 MiB took 1.3 ms in its first calls, 0.7 ms later), so a count of
    warm-up calls alone would time a 1-ms workload in that ramp and a 20-ms one not."""
    start = time.perf_counter()
    done = 0
    while done < calls or time.perf_counter() - start < seconds:
        for function in functions:
            function()
        done += 1


def _timed(function, warmup: int, repeat: int, warmup_seconds: float = 0.0) -> dict:
    _warm_up([function], warmup, warmup_seconds)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return _summary([1e3 * t for t in times])


def _alternated(
    functions: dict, warmup: int, repeat: int, warmup_seconds: float = 0.0
) -> dict:
    """:func:`_timed` of each of ``functions``, called in turn ``repeat`` times."""
    _warm_up(list(functions.values()), warmup, warmup_seconds)
    times = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(1e3 * (time.perf_counter() - start))
    return {name: _summary(values) for name, values in times.items()}


def _summary(times_ms) -> dict:
    return {
        "median_ms": statistics.median(times_ms),
        "min_ms": min(times_ms),
        "times_ms": list(times_ms),
    }


def _load() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def worker(args) -> dict:
    """Runs in the interpreter of one implementation; returns its measurements."""
    if args.impl == "norse":
        sys.path.insert(0, args.repo)
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.impl in ("norse", "norse11"):
        import norse

        api, version = _norse_api(), getattr(norse, "__version__", "?")
        if args.impl == "norse":
            root = os.path.dirname(os.path.dirname(os.path.abspath(norse.__file__)))
            version = f"{version} from {root}"
    elif args.impl == "snntorch":
        import snntorch

        api, version = _snntorch(), snntorch.__version__
    else:
        import importlib.metadata

        api = _spikingjelly()
        version = importlib.metadata.version("spikingjelly")

    data = _inputs(args.long_steps)
    selected = set(args.workloads)
    result = {
        "impl": args.impl,
        "version": version,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_before": _load(),
        "timing": {},
        "peak_mib": {},
    }

    def measure(name, function):
        result["timing"][name] = _timed(
            function, args.warmup, args.repeat, args.warmup_seconds
        )
        result["peak_mib"][name], _ = resident_growth(function)

    if selected & {"lif", "long"}:
        layer = api["lif"]()

        def forward(x=data["lif"]):
            with torch.no_grad():
                return layer(x)

        def forward_backward(x=data["lif"]):
            x = x.detach().requires_grad_()
            layer(x).sum().backward()
            return x.grad

    if "lif" in selected:
        measure("lif_fwd", forward)
        measure("lif_fwdbwd", forward_backward)
        measure("copy", data["lif"].clone)
        # The same two again, alternated call by call: both under the same load and
        # with the same cache history (each evicts part of the other's data).
        for key, timing in _alternated(
            {"lif_fwd_alt": forward, "copy_alt": data["lif"].clone},
            args.warmup,
            args.repeat,
            args.warmup_seconds,
        ).items():
            result["timing"][key] = timing
        result["lif_spike_rate"] = float(forward().mean())

    for name in ("mlp", "conv"):
        if name not in selected:
            continue
        module, run = api[name]()
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
        x, y = data[name], data[name + "_y"]

        def step(run=run, optimizer=optimizer, x=x, y=y):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(run(x), y)
            loss.backward()
            optimizer.step()
            return loss

        measure(name, step)

    if "lsnn" in selected and "lsnn" in api:
        recurrent = api["lsnn"]()

        def lsnn_step(x=data["lsnn"]):
            x = x.detach().requires_grad_()
            recurrent(x).sum().backward()
            return x.grad

        measure("lsnn", lsnn_step)

    if "long" in selected and args.impl in args.long_impls:
        forward_backward(data["long_warmup"])
        start = time.perf_counter()
        peak, _ = resident_growth(lambda: forward_backward(data["long"]))
        result["long"] = {
            "steps": args.long_steps,
            "seconds": time.perf_counter() - start,
            "peak_mib": peak,
            "input_mib": data["long"].numel() * 4 / 2**20,
        }
    result["load_after"] = _load()
    return result


# ----------------------------------------------------------------------------------
# Driver


def _run_worker(python: str, impl: str, args) -> dict:
    command = [
        python,
        os.path.abspath(__file__),
        "--impl",
        impl,
        "--threads",
        str(args.threads),
        "--warmup",
        str(args.warmup),
        "--warmup-seconds",
        str(args.warmup_seconds),
        "--repeat",
        str(args.repeat),
        "--long-steps",
        str(args.long_steps),
        "--workloads",
        *args.workloads,
        "--long-impls",
        *args.long_impls,
        "--repo",
        args.repo,
    ]
    # The peers must not see this repository's ``norse`` package.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd="/", check=False
    )
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr)
        raise SystemExit(f"worker {impl} ({python}) failed")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _describe(repo: str) -> str:
    """The commit of the source tree, and whether ``norse/`` differs from it."""

    def git(*command):
        return subprocess.run(
            ["git", "-C", repo, *command], capture_output=True, text=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
    except OSError:
        commit = ""
    if not commit:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--", "norse")
    return f"commit {commit}" + (", uncommitted changes in norse/" if dirty else "")


def _merge(results: dict, result: dict) -> None:
    """Pools the timing samples of another round of the same implementation."""
    loads = [f"{result['load_before']} -> {result['load_after']}"]
    impl = result["impl"]
    if impl not in results:
        results[impl] = {**result, "loads": loads}
        return
    merged = results[impl]
    merged["loads"] += loads
    for key, timing in result["timing"].items():
        if key in merged["timing"]:
            pooled = merged["timing"][key]["times_ms"] + timing["times_ms"]
            merged["timing"][key] = _summary(pooled)
        else:
            merged["timing"][key] = timing
    for key, value in result["peak_mib"].items():
        merged["peak_mib"].setdefault(key, value)


ROWS = (
    ("lif_fwd", "LIF layer fwd (T=100, B=32, N=1024)", None),
    ("lif_fwdbwd", "LIF layer fwd+bwd", 5.0),
    ("mlp", "MLP training step (T=50, B=64)", 2.0),
    ("conv", "Conv training step (T=20, B=32)", 1.5),
    ("lsnn", "LSNNRecurrent fwd+bwd (T=100, B=32, 128)", 2.0),
)


def _format_ms(value) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _per_impl(title, rows, impls, value, fmt) -> list:
    """Lines of a markdown table: one row per workload, one column per library."""
    lines = ["", title, ""]
    lines.append("| workload | " + " | ".join(NAMES[i] for i in impls) + " |")
    lines.append("|" + " --- |" * (len(impls) + 1))
    for key, label, _ in rows:
        values = [value(impl, key) for impl in impls]
        if any(v is not None for v in values):
            lines.append("| " + " | ".join([label, *map(fmt, values)]) + " |")
    return lines


def table(results: dict) -> str:
    impls = [impl for impl in IMPLS if impl in results]
    lines = []
    header = ["workload", *(NAMES[i] for i in impls)]
    header += ["fastest peer", "speed-up of this repo", "target"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + " --- |" * len(header))
    for key, label, target in ROWS:
        times = {
            impl: results[impl]["timing"][key]["median_ms"]
            for impl in impls
            if key in results[impl]["timing"]
        }
        if not times:
            continue
        # LSNN: Norse 1.1 is the only peer with the model.
        peers = {i: t for i, t in times.items() if i in PEERS}
        fastest = min(peers, key=peers.get) if peers else None
        cells = [label]
        for impl in impls:
            if impl not in times:
                cells.append("-")
                continue
            ratio = f" ({times[impl] / peers[fastest]:.2f}x)" if fastest else ""
            cells.append(_format_ms(times[impl]) + ratio)
        if fastest and "norse" in times:
            speedup = peers[fastest] / times["norse"]
            cells += [NAMES[fastest], f"{speedup:.2f}x"]
        else:
            cells += ["-", "-"]
        if key == "lif_fwd":
            cells.append("<= 1.5x copy floor")
        else:
            cells.append(f">= {target}x" if target else "")
        lines.append("| " + " | ".join(cells) + " |")
    copies = {
        i: results[i]["timing"]["copy"]["median_ms"]
        for i in impls
        if "copy" in results[i]["timing"]
    }
    if copies:
        cells = ["copy floor (`x.clone()`, 12.5 MiB)"]
        cells += [_format_ms(copies.get(i)) for i in impls]
        if "norse" in copies and "lif_fwd" in results["norse"]["timing"]:
            fwd = results["norse"]["timing"]["lif_fwd"]["median_ms"]
            cells += ["-", f"fwd = {fwd / copies['norse']:.2f}x copy", "<= 1.5x"]
        else:
            cells += ["-", "-", ""]
        lines.append("| " + " | ".join(cells) + " |")
        alternated = {
            i: (
                results[i]["timing"]["lif_fwd_alt"]["median_ms"],
                results[i]["timing"]["copy_alt"]["median_ms"],
            )
            for i in impls
            if "lif_fwd_alt" in results[i]["timing"]
        }
        if alternated:
            lines.append("")
            lines.append(
                "LIF fwd and the copy alternated call by call (same load, same cache "
                "history), medians in ms, fwd / copy: "
                + "; ".join(
                    f"{NAMES[i]} {fwd:.2f} / {copy:.2f} = {fwd / copy:.2f}x"
                    for i, (fwd, copy) in alternated.items()
                )
            )
    lines += _per_impl(
        "Fastest single run (ms; less sensitive to other jobs on a shared machine):",
        (*ROWS, ("copy", "copy floor", None)),
        impls,
        lambda impl, key: results[impl]["timing"].get(key, {}).get("min_ms"),
        _format_ms,
    )
    lines += _per_impl(
        "Peak memory per iteration (MiB above model, optimizer state and inputs):",
        ROWS,
        impls,
        lambda impl, key: results[impl]["peak_mib"].get(key),
        lambda value: "-" if value is None else f"{value:.0f}",
    )
    longs = {i: results[i]["long"] for i in impls if "long" in results[i]}
    if longs:
        steps = next(iter(longs.values()))["steps"]
        lines.append("")
        lines.append(
            f"LIF layer fwd+bwd at T={steps} (batch 32, 1024 neurons; one run after "
            "a warm-up at T=10; memory above the inputs; target for this repo: "
            "<= 1 s and <= 470 MB):"
        )
        lines.append("")
        lines.append("| | " + " | ".join(NAMES[i] for i in longs) + " |")
        lines.append("|" + " --- |" * (len(longs) + 1))
        lines.append(
            "| time (s) | "
            + " | ".join(f"{longs[i]['seconds']:.2f}" for i in longs)
            + " |"
        )
        lines.append(
            "| peak above inputs (MiB) | "
            + " | ".join(f"{longs[i]['peak_mib']:.0f}" for i in longs)
            + " |"
        )
    lines.append("")
    lines.append(
        "Versions and load (1/5/15-min averages before -> after each worker): "
        + "; ".join(
            f"{NAMES[i]}: {results[i]['version']}, torch {results[i]['torch']}, "
            f"{results[i]['threads']} thread(s), load {', '.join(results[i]['loads'])}"
            for i in impls
        )
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", choices=IMPLS, help="worker mode: one implementation")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads")
    parser.add_argument(
        "--warmup",
        type=int,
        default=10,
        help="untimed runs first: a new process takes several calls to settle (heap "
        "growth, page faults: this repository's 1-ms LIF forward ran 6-11 ms in its "
        "4th and 5th calls)",
    )
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=0.5,
        help="and warm-up runs until this much time has passed (see _warm_up)",
    )
    parser.add_argument("--repeat", type=int, default=10, help="timed repetitions")
    parser.add_argument("--long-steps", type=int, default=1000)
    parser.add_argument(
        "--workloads",
        nargs="+",
        default=["lif", "mlp", "conv", "lsnn", "long"],
        choices=["lif", "mlp", "conv", "lsnn", "long"],
    )
    parser.add_argument(
        "--long-impls",
        nargs="+",
        default=list(IMPLS),
        choices=IMPLS,
        help="implementations run at T=--long-steps (Norse 1.1 takes about a minute)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="run every worker this many times, one after another; samples pooled",
    )
    parser.add_argument("--skip-long", action="store_true")
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument(
        "--repo",
        default=REPO,
        help="source tree of this library imported by the 'norse' worker",
    )
    parser.add_argument("--ours-python", default=os.path.join(REPO, ".venv/bin/python"))
    add_norse11_option(parser)
    parser.add_argument(
        "--peer-python",
        default=os.environ.get("PEER_PYTHON", ""),
        help="interpreter of a venv with snnTorch and SpikingJelly (default: "
        "$PEER_PYTHON; skipped when not given)",
    )
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args()
    if args.skip_long:
        args.workloads = [w for w in args.workloads if w != "long"]
    if args.impl is not None:
        print(json.dumps(worker(args)))
        return

    pythons = {
        "norse": args.ours_python,
        "norse11": args.norse11_python,
        "snntorch": args.peer_python,
        "spikingjelly": args.peer_python,
    }
    available = []
    for impl in args.impls:
        if os.path.exists(pythons[impl]):
            available.append(impl)
        else:
            print(f"skipping {impl}: no interpreter at {pythons[impl]}", flush=True)
    print(f"load before: {_load()}", flush=True)
    results = {}
    for round_index in range(args.rounds):
        # The long sequences run once (first round); later rounds repeat the short
        # workloads so that a change of load on a shared machine hits every library.
        workloads = [w for w in args.workloads if round_index == 0 or w != "long"]
        round_args = argparse.Namespace(**{**vars(args), "workloads": workloads})
        for impl in available:
            start = time.perf_counter()
            result = _run_worker(pythons[impl], impl, round_args)
            print(
                f"round {round_index + 1}, {impl}: {time.perf_counter() - start:.0f} s,"
                f" load {result['load_before']} -> {result['load_after']}",
                flush=True,
            )
            _merge(results, result)
    if "norse" in results:
        results["norse"]["version"] += f", {_describe(args.repo)}"
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    print()
    print(
        f"Medians of {args.rounds} x {args.repeat} runs (each worker process: "
        f"at least {args.warmup} warm-ups and {args.warmup_seconds} s of them, then "
        f"{args.repeat} timed runs), ms per iteration "
        "(ratio to the fastest peer in brackets); "
        f"{args.threads} PyTorch thread(s)."
    )
    print()
    print(table(results))


if __name__ == "__main__":
    main()
