"""Neuron models: this package's fused (generated) kernels vs Norse 1.1.0, per model.

Issue 14's measurement: the same Norse-1.1 user code (a time module such as ``LIFEx()``,
or ``Lift(cell)``) runs on this package and on Norse 1.1.0, T=100, batch 32, 512
neurons, float32, CPU, 1 PyTorch thread: forward with an input that requires grad, then
``out.sum().backward()`` (weight gradients included), ms per iteration, best of N after
warm-up. Parts:

* ``time``: every model of the catalogue that both packages have (a row shows "-" for
  Norse 1.1.0 where it has no such module). Models with weight matrices inside the cell
  (the recurrent forms, ``Lift(CobaLIFCell(512, 512))``) also get their *floor*: the
  time of their matrix products alone, the same GEMMs with autograd step by step with
  the same shapes (per step ``linear(x_t, W_in) + linear(z_t, W_rec)``, four products
  for CobaLIF's excitatory and inhibitory halves; input and spikes require grad, so the
  backward computes the input, spike and weight gradients), measured in this package's
  process in the same run. A second, *batched* floor does the same multiply-adds
  without autograd, with only the sequential products step by step (the recurrent one
  forward, its adjoint backward) and the input product and the input and weight
  gradients as one GEMM each over all steps, as a fused recurrent kernel may.
* ``compile``: the first forward+backward of models whose generated kernel is not in
  the kernel cache (``NORSE_KERNEL_CACHE`` an empty temporary folder, a fresh process),
  then the same in a fresh process with that cache warm, against the steady state.
* ``memory``: BPTT memory of three models at T=250, 500, 1000: the bytes that autograd
  keeps between forward and backward (every tensor packed by
  ``torch.autograd.graph.saved_tensors_hooks``, counted once per storage, split into the
  input's storage and the rest) and the growth of the resident set during forward and
  backward (``VmHWM`` after a reset via ``/proc/self/clear_refs``); a fresh process per
  model and T.

Both packages run as persistent worker processes of their own interpreters (Norse 1.1.0
from ``--norse11-python`` / ``$NORSE11_PYTHON``, skipped when not given) that take
requests on stdin; the driver alternates between them model by model (and the order
within a model from pass to pass), so that a change of load on a shared machine hits
both. Inputs are NumPy arrays from fixed seeds, the same in both.

Usage::

    NORSE11_PYTHON=../norse11/bin/python .venv/bin/python benchmarks/neuron_models.py
    .venv/bin/python benchmarks/neuron_models.py --parts time --models LIF LIFEx

Not part of the test suite.
"""

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, NamedTuple, Optional, Tuple

from _common import (  # this folder is on sys.path when run as a script
    add_norse11_option,
    resident_growth,
    worker_interpreters,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS, BATCH, NEURONS = 100, 32, 512


class Model(NamedTuple):
    name: str
    #: ``norse.torch`` -> the module (Norse-1.1 user code).
    build: Callable
    #: ``("current", offset, scale)``: offset + scale * N(0, 1); ``("uniform",)``:
    #: U(0, 1) (as benchmarks/recurrent.py); ``("spikes", rate)``: binary.
    drive: Tuple
    #: ``(input products, recurrent products)`` per step for the GEMM floor, or None
    #: for models without weights inside the cell.
    floor: Optional[Tuple[int, int]] = None


def _cell(name, *args):
    return lambda norse: norse.Lift(getattr(norse, name)(*args))


def _module(name, *args):
    return lambda norse: getattr(norse, name)(*args)


def _recurrent(name, drive=("uniform",), floor=(1, 1), lifted=False):
    """A recurrent form of NEURONS x NEURONS (``lifted``: a cell in ``Lift``), with
    its GEMM floor."""
    label = f"{name}({NEURONS}, {NEURONS})"
    if lifted:
        return Model(f"Lift({label})", _cell(name, NEURONS, NEURONS), drive, floor)
    return Model(label, _module(name, NEURONS, NEURONS), drive, floor)


def _izhikevich(name):
    return lambda norse: getattr(norse, name)(norse.tonic_spiking)


# Driving currents: the LIF family's 1.5 + N(0, 1) (benchmarks/lif_layer.py, about half
# of the LIF neurons spike per step); the Izhikevich neuron's tonic-spiking parameters
# need tens of units to fire within 100 steps. The rates are printed with the times.
CURRENT = ("current", 1.5, 1.0)
MODELS = (
    Model("LIF", _module("LIF"), CURRENT),
    Model("LSNN", _module("LSNN"), CURRENT),
    Model("LIFEx", _module("LIFEx"), CURRENT),
    Model("LIFAdEx", _module("LIFAdEx"), CURRENT),
    Model("Lift(LIFRefracCell)", _cell("LIFRefracCell"), CURRENT),
    Model("Lift(LIFAdExRefracCell)", _cell("LIFAdExRefracCell"), CURRENT),
    Model(
        "Lift(IzhikevichCell(tonic_spiking))",
        lambda norse: norse.Lift(norse.IzhikevichCell(norse.tonic_spiking)),
        ("current", 20.0, 5.0),
    ),
    Model("LI", _module("LI"), CURRENT),
    Model("LIFBox", _module("LIFBox"), CURRENT),
    Model("Lift(LIFBoxCell)", _cell("LIFBoxCell"), CURRENT),
    Model("IAF", _module("IAF"), CURRENT),
    Model("LIFRefrac", _module("LIFRefrac"), CURRENT),
    Model("LIFAdExRefrac", _module("LIFAdExRefrac"), CURRENT),
    Model("Izhikevich(tonic_spiking)", _izhikevich("Izhikevich"), ("current", 20, 5)),
    Model("CobaLIF", _module("CobaLIF"), ("current", 0.0, 1.0)),
    _recurrent("LIFRecurrent"),
    _recurrent("LSNNRecurrent"),
    _recurrent("LIFRecurrentCell", lifted=True),
    _recurrent("LIFAdExRecurrent"),
    # The coupling product of the new voltage is a third product per step (floor: one
    # input and two "recurrent" products); Norse 1.1.0 has only the cell.
    Model(
        "LIFMCRecurrent(512, 512)",
        _module("LIFMCRecurrent", 512, 512),
        ("uniform",),
        (1, 2),
    ),
    Model(
        "Lift(LIFMCRecurrentCell(512, 512))",
        _cell("LIFMCRecurrentCell", 512, 512),
        ("uniform",),
        (1, 2),
    ),
    # Input spikes at 30%: about 10% of this package's neurons spike (Norse 1.1.0's
    # coba_lif_step overwrites the input conductances by the recurrent ones, so its
    # rate does not depend on the input).
    _recurrent("CobaLIFCell", ("spikes", 0.3), (2, 2), lifted=True),
    _recurrent("CobaLIFRecurrent", ("spikes", 0.3), (2, 2)),
)
BY_NAME = {model.name: model for model in MODELS}
MEMORY_MODELS = ("LIFEx", "Lift(LIFRefracCell)", "Izhikevich(tonic_spiking)")
COMPILE_MODELS = ("LIFEx", "Lift(LIFRefracCell)", "Izhikevich(tonic_spiking)")


# ----------------------------------------------------------------------------------
# Worker side (runs in either interpreter)


def _import(impl: str, repo: str):
    """``norse.torch`` of ``impl``: ``norse11`` is whatever the running interpreter has
    installed (run outside this repository); ``norse`` is the package in ``repo``."""
    if impl != "norse11":
        sys.path.insert(0, repo)
    import norse.torch as norse

    return norse


def _input(drive: Tuple, steps: int, seed: int = 1234):
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    shape = (steps, BATCH, NEURONS)
    if drive[0] == "current":
        array = drive[1] + drive[2] * rng.standard_normal(shape)
    elif drive[0] == "uniform":
        array = rng.random(shape)
    else:
        array = rng.random(shape) < drive[1]
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


class _Case:
    """One model built once per worker, with its input and its fwd+bwd call."""

    def __init__(self, norse, model: Model, steps: int):
        import torch

        torch.manual_seed(0)  # the same weights in both packages (same init code)
        self.module = model.build(norse)
        self.x = _input(model.drive, steps)
        self.parameters = list(self.module.parameters())
        self.calls = 0

    def __call__(self):
        for parameter in self.parameters:  # as optimizer.zero_grad(set_to_none=True)
            parameter.grad = None
        x = self.x.detach().requires_grad_()
        out = self.module(x)
        out = out[0] if isinstance(out, tuple) else out
        out.sum().backward()
        self.calls += 1
        return out


class _Floor:
    """The matrix products of a recurrent model alone, step by step, with autograd."""

    def __init__(self, products: Tuple[int, int], steps: int):
        import torch

        generator = torch.Generator().manual_seed(0)
        n_in, n_rec = products

        def weight():
            w = torch.randn(NEURONS, NEURONS, generator=generator) / NEURONS**0.5
            return w.requires_grad_()

        self.w_in = [weight() for _ in range(n_in)]
        self.w_rec = [weight() for _ in range(n_rec)]
        self.x = _input(("uniform",), steps, seed=1)
        # Spikes of the previous step stand for the state's z: binary, and requiring
        # grad as z does in the model (its gradient is one more product per step).
        self.z = _input(("spikes", 0.1), steps, seed=2)
        self.calls = 0

    def __call__(self):
        import torch

        linear = torch.nn.functional.linear
        for w in self.w_in + self.w_rec:
            w.grad = None
        x = self.x.detach().requires_grad_()
        z = self.z.detach().requires_grad_()
        outputs = []
        for x_t, z_t in zip(x.unbind(0), z.unbind(0)):
            h = linear(x_t, self.w_in[0])
            for w in self.w_in[1:]:
                h = h + linear(x_t, w)
            for w in self.w_rec:
                h = h + linear(z_t, w)
            outputs.append(h)
        out = torch.stack(outputs)
        out.sum().backward()
        self.calls += 1
        return out


class _BatchedFloor(_Floor):
    """The same products with the least sequential work and no autograd: only the
    recurrent product of each step (forward) and its adjoint (backward) wait for the
    step before or after; the input products and the gradients of the input and of every
    weight are one GEMM each over all steps (``T * batch`` rows), as a fused recurrent
    kernel may compute them. The same number of multiply-adds as :class:`_Floor`."""

    def __call__(self):
        import torch

        with torch.no_grad():  # the weights require grad for _Floor
            return self._products()

    def _products(self):
        import torch

        steps = self.x.shape[0]
        rows = steps * BATCH
        x, z = self.x.reshape(rows, NEURONS), self.z.reshape(rows, NEURONS)
        # Forward: the input currents of all steps at once, then the recurrent ones.
        current = x.mm(self.w_in[0].t())
        for w in self.w_in[1:]:
            current.addmm_(x, w.t())
        current = current.view(steps, BATCH, NEURONS)
        for t in range(steps):
            for w in self.w_rec:
                current[t].addmm_(self.z[t], w.t())
        # Backward: the gradient of the current (here all ones, as out.sum()) goes to
        # the spikes of the step before, one step at a time...
        grad = torch.ones(steps, BATCH, NEURONS)
        grad_z = torch.empty(steps, BATCH, NEURONS)
        for t in range(steps):
            torch.mm(grad[t], self.w_rec[0], out=grad_z[t])
            for w in self.w_rec[1:]:
                grad_z[t].addmm_(grad[t], w)
        # ... and to the input and the weights in one product each.
        grad = grad.view(rows, NEURONS)
        grad_x = grad.mm(self.w_in[0])
        for w in self.w_in[1:]:
            grad_x.addmm_(grad, w)
        weight_grads = [grad.t().mm(x) for _ in self.w_in]
        weight_grads += [grad.t().mm(z) for _ in self.w_rec]
        self.calls += 1
        return current, grad_z, grad_x, weight_grads


def _path(norse, case) -> str:
    """Which kernel this package's time module finds (instrumented call, not timed):
    the module of the kernel function, or "reference loop"."""
    try:
        from norse.torch.fused import registry
    except ImportError:
        return ""
    found = []
    original = registry.find

    def find(*args, **kwargs):
        kernel = original(*args, **kwargs)
        found.append(kernel)
        return kernel

    registry.find = find
    try:
        case()
    finally:
        registry.find = original
    names = []
    for kernel in found:
        if kernel is None:
            names.append("reference loop")
            continue
        while isinstance(kernel, functools.partial):  # the kernel with bound options
            kernel = kernel.func
        module = getattr(kernel, "__module__", None) or type(kernel).__module__
        names.append(module.replace("norse.torch.fused.", ""))
    return ", ".join(sorted(set(names))) or "reference loop (no fused lookup)"


def _timed(function, warmup: int, repeats: int, min_seconds: float):
    # Warm-up by count and by time: a process's clock ramps up over its first tens of
    # milliseconds of work (see benchmarks/peers.py), which a few calls of a 4-ms model
    # do not cover.
    start = time.perf_counter()
    done = 0
    while done < warmup or (done and time.perf_counter() - start < min_seconds / 2):
        function()
        done += 1
    times = []
    start = time.perf_counter()
    while len(times) < repeats or (
        time.perf_counter() - start < min_seconds and len(times) < 50
    ):
        begin = time.perf_counter()
        function()
        times.append(1e3 * (time.perf_counter() - begin))
    return times


def _versions():
    import torch

    versions = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    try:
        import numba

        versions["numba"] = numba.__version__
    except ImportError:
        pass
    return versions


def serve(args) -> None:
    """Persistent worker: one JSON request per stdin line, one JSON answer per line on
    the original stdout (everything the libraries print goes to stderr)."""
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    import torch

    torch.set_num_threads(args.threads)
    norse = _import(args.impl, args.repo)
    cases = {}
    channel.write(json.dumps(_versions()) + "\n")
    channel.flush()
    for line in sys.stdin:
        request = json.loads(line)
        name, kind = request["model"], request["kind"]
        model = BY_NAME[name]
        answer = {"model": name, "kind": kind}
        try:
            key = (name, kind)
            if key not in cases:
                if kind == "floor":
                    cases[key] = _Floor(model.floor, STEPS)
                elif kind == "batched":
                    cases[key] = _BatchedFloor(model.floor, STEPS)
                else:
                    cases[key] = _Case(norse, model, STEPS)
            case = cases[key]
            first = case.calls == 0
            times = _timed(
                case,
                args.warmup if first else 1,
                args.repeats,
                args.min_seconds,
            )
            answer["times"] = times
            if kind == "model":
                with torch.no_grad():
                    out = case.module(case.x)
                out = out[0] if isinstance(out, tuple) else out
                answer["rate"] = float(out.float().mean())
                if first and args.impl != "norse11":
                    answer["path"] = _path(norse, case)
        except AttributeError as error:  # the model does not exist in this package
            answer["missing"] = str(error)
        channel.write(json.dumps(answer) + "\n")
        channel.flush()


def memory_worker(args) -> dict:
    """One model at one T in a fresh process: saved-tensor bytes and resident peak."""
    import torch

    torch.set_num_threads(args.threads)
    norse = _import(args.impl, args.repo)
    model = BY_NAME[args.model]
    warm = _Case(norse, model, 10)  # compilation, lazy imports, allocator
    warm()
    warm()
    case = _Case(norse, model, args.steps)
    input_storage = case.x.untyped_storage().data_ptr()
    del warm
    saved = {}

    def pack(tensor):
        try:
            storage = tensor.untyped_storage()
            saved[storage.data_ptr()] = storage.nbytes()
        except (RuntimeError, NotImplementedError):
            saved[id(tensor)] = tensor.numel() * tensor.element_size()
        return tensor

    def run():
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            case()

    peak_mib, seconds = resident_growth(run)
    input_bytes = case.x.numel() * case.x.element_size()
    return {
        "impl": args.impl,
        "model": args.model,
        "steps": args.steps,
        "seconds": seconds,
        "input_mib": input_bytes / 2**20,
        "saved_input_mib": saved.get(input_storage, 0) / 2**20,
        "saved_other_mib": sum(v for k, v in saved.items() if k != input_storage)
        / 2**20,
        "peak_rss_mib": peak_mib,
    }


def compile_worker(args) -> dict:
    """First forward+backward of one model in a fresh process (the kernel cache is
    whatever ``NORSE_KERNEL_CACHE`` says), then the steady state.

    A short LIF call (hand-written kernels, cached with this package) runs first and is
    timed on its own: it pays what any first fused call pays once per process (the lazy
    imports of Numba and of ``torch._dynamo`` behind the custom operators, Numba's
    target initialisation), so that the model's own first call shows the cost of its
    kernel: trace, derivative, source, and Numba's compilation or cache load."""
    start = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    norse = _import(args.impl, args.repo)
    imported = time.perf_counter() - start
    start = time.perf_counter()
    _Case(norse, BY_NAME["LIF"], 10)()
    startup = time.perf_counter() - start
    case = _Case(norse, BY_NAME[args.model], STEPS)
    start = time.perf_counter()
    case()
    first = time.perf_counter() - start
    steady = min(_timed(case, 1, 5, 0.0)) / 1e3
    cache = os.environ.get("NORSE_KERNEL_CACHE", "")
    sources = None
    if cache and os.path.isdir(cache):
        sources = len([f for f in os.listdir(cache) if f.endswith(".py")])
    return {
        "impl": args.impl,
        "model": args.model,
        "import_s": imported,
        "startup_s": startup,
        "first_s": first,
        "steady_s": steady,
        "cache_sources": sources,
    }


# ----------------------------------------------------------------------------------
# Driver


def _worker_env(extra=None) -> dict:
    # Without PYTHONPATH, so that Norse 1.1.0 does not see this checkout.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra or {})
    return env


def _one_shot(python: str, impl: str, args, extra: list, env=None) -> dict:
    command = [python, os.path.abspath(__file__), "--impl", impl]
    command += ["--threads", str(args.threads), "--repo", args.repo, *extra]
    output = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=_worker_env(env),
        cwd="/",
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


class _Server:
    def __init__(self, python: str, impl: str, args):
        command = [python, os.path.abspath(__file__), "--serve", "--impl", impl]
        for option in ("threads", "repeats", "warmup", "min_seconds", "repo"):
            command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=_worker_env(),
            cwd="/",
        )
        self.versions = json.loads(self.process.stdout.readline())

    def ask(self, model: str, kind: str) -> dict:
        self.process.stdin.write(json.dumps({"model": model, "kind": kind}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker ended while running {model} ({kind})")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def _load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def _ms(values) -> str:
    return f"{min(values):.1f}" if values else "-"


def run_time(args, implementations) -> None:
    servers = {impl: _Server(python, impl, args) for python, impl in implementations}
    for impl, server in servers.items():
        print(f"{impl}: {server.versions}")
    times, rates, paths = {}, {}, {}
    loads = [_load()]
    models = [BY_NAME[name] for name in args.models]
    for rep in range(args.passes):
        order = list(servers) if rep % 2 == 0 else list(reversed(servers))
        for model in models:
            requests = [(impl, "model") for impl in order]
            if model.floor is not None:
                after = order.index("norse") + 1
                requests[after:after] = [("norse", "floor"), ("norse", "batched")]
            for impl, kind in requests:
                answer = servers[impl].ask(model.name, kind)
                if "missing" in answer:
                    times.setdefault((model.name, impl, kind), [])
                    continue
                times.setdefault((model.name, impl, kind), []).extend(answer["times"])
                if "rate" in answer:
                    rates[model.name, impl] = answer["rate"]
                if "path" in answer:
                    paths[model.name] = answer["path"]
        loads.append(_load())
    for server in servers.values():
        server.close()
    if args.save:
        with open(args.save, "w") as file:
            json.dump(
                {
                    "versions": {i: s.versions for i, s in servers.items()},
                    "loads": loads,
                    "times": [[*key, values] for key, values in times.items()],
                    "rates": [[*key, value] for key, value in rates.items()],
                    "paths": paths,
                },
                file,
            )

    print(f"\nload average (1/5/15 min) before and after each pass: {loads}")
    print(
        f"T={STEPS}, batch {BATCH}, {NEURONS} neurons, float32, fwd + "
        f"out.sum().backward(), {args.threads} thread(s); ms per iteration, best of "
        f"{args.passes} passes x >= {args.repeats} runs (median in brackets)\n"
    )
    has_norse11 = "norse11" in servers

    def cell(name, impl, kind="model"):
        values = times.get((name, impl, kind), [])
        if not values:
            return "-", None
        best = min(values)
        return f"{best:.1f} ({statistics.median(values):.1f})", best

    print(
        "| model | this package ms | Norse 1.1.0 ms | ratio | target | GEMM floor ms |"
        " this / floor | Norse / floor | batched GEMM floor ms | this / batched |"
        " spike rate | path |"
    )
    print("|" + " --- |" * 12)
    for model in models:
        ours, ours_best = cell(model.name, "norse")
        theirs, theirs_best = cell(model.name, "norse11")
        ratio = f"{theirs_best / ours_best:.1f}x" if ours_best and theirs_best else "-"
        floor_text = this_floor = norse_floor = batched_text = this_batched = "-"
        if model.floor is None:
            target = "-"
            if ours_best and theirs_best:
                met = theirs_best / ours_best >= 10
                target = ">= 10x: " + ("met" if met else "MISSED")
        else:
            floor_text, floor_best = cell(model.name, "norse", "floor")
            batched_text, batched_best = cell(model.name, "norse", "batched")
            if ours_best and batched_best:
                this_batched = f"{ours_best / batched_best:.2f}"
            target = "-"
            if ours_best and floor_best:
                this_floor = f"{ours_best / floor_best:.2f}"
                met = ours_best <= 1.2 * floor_best
                if theirs_best:
                    norse_floor = f"{theirs_best / floor_best:.2f}"
                    met = met and ours_best <= theirs_best
                target = "<= 1.2x floor" + (", <= Norse" if theirs_best else "")
                target += ": " + ("met" if met else "MISSED")
        rate = " / ".join(
            f"{rates[model.name, impl]:.3f}"
            for impl in ("norse", "norse11")
            if (model.name, impl) in rates
        )
        if not has_norse11:
            theirs = ratio = "(not run)"
        print(
            f"| {model.name} | {ours} | {theirs} | {ratio} | {target} | {floor_text} | "
            f"{this_floor} | {norse_floor} | {batched_text} | {this_batched} | {rate} | "
            f"{paths.get(model.name, '')} |"
        )


def run_compile(args) -> None:
    print(
        f"\nFirst call (fwd+bwd, T={STEPS}, batch {BATCH}, {NEURONS} neurons) in a "
        "fresh process with an empty kernel cache, then in another fresh process with "
        f"that cache; load {_load()}\n"
    )
    print(
        "| model | import norse.torch s | process start-up (first LIF call, T=10) s |"
        " model's first call, empty cache s | model's first call, warm cache s |"
        " steady ms |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.compile_models:
        cache = tempfile.mkdtemp(prefix="norse-kernel-cache-")
        try:
            env = {"NORSE_KERNEL_CACHE": cache}
            extra = ["--compile", "--model", name]
            cold = _one_shot(sys.executable, "norse", args, extra, env)
            warm = _one_shot(sys.executable, "norse", args, extra, env)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        print(
            f"| {name} | {cold['import_s']:.2f} / {warm['import_s']:.2f} | "
            f"{cold['startup_s']:.2f} / {warm['startup_s']:.2f} | "
            f"{cold['first_s']:.2f} ({cold['cache_sources']} kernel source(s)) | "
            f"{warm['first_s']:.3f} | "
            f"{1e3 * cold['steady_s']:.1f} / {1e3 * warm['steady_s']:.1f} |"
        )


def run_memory(args, implementations) -> None:
    print(
        f"\nBPTT memory, fwd+bwd, batch {BATCH}, {NEURONS} neurons, fresh process per "
        f"row (after a warm-up at T=10); load {_load()}\n"
    )
    print(
        "| model | package | T | input MiB | saved by autograd: input's storage MiB |"
        " saved: other MiB | peak RSS growth MiB | time s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.memory_models:
        for python, impl in implementations:
            steps_list = args.memory_steps
            if impl == "norse11":
                steps_list = args.memory_norse11_steps
            for steps in steps_list:
                extra = ["--memory", "--model", name, "--steps", str(steps)]
                result = _one_shot(python, impl, args, extra)
                package = "Norse 1.1.0" if impl == "norse11" else "this package"
                print(
                    f"| {name} | {package} | {steps} | {result['input_mib']:.1f} | "
                    f"{result['saved_input_mib']:.1f} | "
                    f"{result['saved_other_mib']:.2f} | "
                    f"{result['peak_rss_mib']:.0f} | {result['seconds']:.2f} |"
                )
    print(f"load after: {_load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", choices=["norse", "norse11"])
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--model")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=0.5,
        help="each request repeats a fast model until this much time has passed",
    )
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--save", help="also write the raw times (JSON) to this file")
    parser.add_argument(
        "--repo",
        default=REPO,
        help="where this package is imported from (default: this checkout; e.g. a "
        "`git archive` of a commit, to measure committed code only)",
    )
    parser.add_argument("--parts", nargs="*", default=["time", "compile", "memory"])
    parser.add_argument("--models", nargs="*", default=[m.name for m in MODELS])
    parser.add_argument("--compile-models", nargs="*", default=list(COMPILE_MODELS))
    parser.add_argument("--memory-models", nargs="*", default=list(MEMORY_MODELS))
    parser.add_argument("--memory-steps", type=int, nargs="*", default=[250, 500, 1000])
    parser.add_argument(
        "--memory-norse11-steps",
        type=int,
        nargs="*",
        default=[250, 1000],
        help="T for Norse 1.1.0 (its loop takes tens of seconds at T=1000)",
    )
    add_norse11_option(parser)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    if args.memory:
        print(json.dumps(memory_worker(args)))
        return
    if args.compile:
        print(json.dumps(compile_worker(args)))
        return

    implementations = worker_interpreters(args.norse11_python, "norse")
    print(f"load average before: {_load()}, cpus: {os.cpu_count()}")
    if "time" in args.parts:
        run_time(args, implementations)
    if "compile" in args.parts:
        run_compile(args)
    if "memory" in args.parts:
        run_memory(args, implementations)


if __name__ == "__main__":
    main()
