"""Peak training memory and step time with and without ``norse.torch.utils.memory``:
``python benchmarks/memory.py``.

Networks (``--networks``):

* ``vgg11``: the model zoo's VGG-11 (``norse.torch.models.vgg11``) with a CIFAR-sized
  classifier (``num_classes=10, hidden_size=512, pool_size=1``), images 32 x 32 x 3
  presented at every one of ``T = 8`` steps, batch 32. Its weights are scaled by 12
  after the zoo's initialisation: with the zoo's weights and LIF defaults the layers
  after the second never spike within 8 steps and the output is zero;
* ``vgg11-torchvision``: the same with torchvision's classifier (two hidden layers of
  4096, 7 x 7 pooling: 129 M parameters, 1.03 GB with their gradients);
* ``mnist``: the main job's network, ``norse.task.mnist.MNISTConvSNN`` with its default
  settings (T = 8), batch 64 (the task's batch size);
* ``mnist-sequential``: the same layers as one ``SequentialState`` (conv, batch norm
  over all steps, LIF, pooling...; the image presented at every step), which
  :func:`~norse.torch.utils.memory.optimise` can also recompute.

A training step is ``zero_grad``, forward, cross-entropy on the read-out, backward. The
plain model and a copy optimised with ``optimise(model, x, budget=...)`` (default
``"memory"``; with ``--peak f``, ``optimise(model, x, peak=f)``) are measured alternately on the same batch; the gradients of the two are
compared.

**Memory** is the peak of the bytes of all tensors alive during a step: parameters,
buffers and the batch, plus the peak of what the step allocates on top (activations,
tensors saved for the backward pass, gradients, temporaries). On the CPU the second
part comes from PyTorch's profiler (``profile_memory=True``: every allocation and
release of PyTorch's CPU allocator, summed in time order); memory that Numba kernels or
oneDNN allocate outside PyTorch's allocator is not counted. On CUDA it is
``torch.cuda.max_memory_allocated()`` (its ``memory_allocated()`` before the step is the
first part). **Time** is the best of ``--repeats`` steps after a warm-up step, without
the profiler.

Prints, per network, ``memory: plain A MB, optimised B MB, time xR`` and details.
"""

import argparse
import copy
import os
import time
from typing import Callable, Dict, Tuple

import torch
import torch.nn.functional as F

from norse.torch.functional.decode import max_decode
from norse.torch.models import vgg11
from norse.torch.module.leaky_integrator import LI
from norse.torch.module.lif import LIF
from norse.torch.module.lift import Lift
from norse.torch.module.sequential import SequentialState
from norse.torch.utils import memory

Batch = Tuple[torch.Tensor, torch.Tensor]


def _vgg_batch(steps: int, batch: int) -> Batch:
    images = torch.rand(batch, 3, 32, 32)
    x = images.unsqueeze(0).expand(steps, *images.shape).contiguous()
    return x, torch.randint(0, 10, (batch,))


def _vgg_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(output.mean(0), target)


def _mnist_net() -> torch.nn.Module:
    from norse.task.mnist import MNISTConvSNN

    return MNISTConvSNN()


def _mnist_sequential(steps: int = 8) -> torch.nn.Module:
    """The layers of ``MNISTConvSNN`` (defaults) as one ``SequentialState``; the batch
    norms see all steps at once (``fold=True``), as in the task, with the task's gain
    of 3 as their initial weight."""
    from norse.task.mnist import MNISTConvSNN

    task = MNISTConvSNN(seq_length=steps)

    def norm(module: torch.nn.Module) -> Lift:
        torch.nn.init.constant_(module.weight, 3.0)
        return Lift(module, fold=True)

    return SequentialState(
        Lift(torch.nn.Conv2d(1, 16, 5, bias=False)),
        norm(torch.nn.BatchNorm2d(16)),
        LIF(task.lif1.p),
        Lift(torch.nn.MaxPool2d(2)),
        Lift(torch.nn.Conv2d(16, 32, 5, bias=False)),
        norm(torch.nn.BatchNorm2d(32)),
        LIF(task.lif2.p),
        Lift(torch.nn.MaxPool2d(2)),
        Lift(torch.nn.Flatten()),
        Lift(torch.nn.Linear(512, 128, bias=False)),
        norm(torch.nn.BatchNorm1d(128)),
        LIF(task.lif3.p),
        Lift(torch.nn.Linear(128, 10)),
        LI(),
    )


def _mnist_loss(output, target: torch.Tensor) -> torch.Tensor:
    voltages = output[0] if isinstance(output, tuple) else output
    return F.cross_entropy(max_decode(voltages), target)


def _mnist_sequential_batch(steps: int, batch: int) -> Batch:
    images = torch.rand(batch, 1, 28, 28)
    x = images.unsqueeze(0).expand(steps, *images.shape).contiguous()
    return x, torch.randint(0, 10, (batch,))


def _mnist_batch(steps: int, batch: int) -> Batch:
    return torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))


def _vgg(**kwargs) -> torch.nn.Module:
    model = vgg11(num_classes=10, **kwargs)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                module.weight.mul_(VGG_WEIGHT_GAIN)
    return model


#: Scale of the VGG weights after the zoo's initialisation: spikes reach the classifier.
VGG_WEIGHT_GAIN = 12.0

#: name: (model, batch maker, loss, T, batch size)
NETWORKS: Dict[str, Tuple[Callable, Callable, Callable, int, int]] = {
    "vgg11": (
        lambda: _vgg(hidden_size=512, pool_size=1),
        _vgg_batch,
        _vgg_loss,
        8,
        32,
    ),
    "vgg11-torchvision": (
        _vgg,
        _vgg_batch,
        _vgg_loss,
        8,
        32,
    ),
    "mnist": (_mnist_net, _mnist_batch, _mnist_loss, 8, 64),
    "mnist-sequential": (
        _mnist_sequential,
        _mnist_sequential_batch,
        _mnist_loss,
        8,
        64,
    ),
}


def _step(model: torch.nn.Module, loss_fn: Callable, batch: Batch) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model(batch[0]), batch[1])
    loss.backward()
    return loss.detach()


def _resident_bytes(model: torch.nn.Module, batch: Batch) -> int:
    tensors = list(model.parameters()) + list(model.buffers()) + list(batch)
    return sum(t.numel() * t.element_size() for t in tensors)


def peak_bytes(model: torch.nn.Module, loss_fn: Callable, batch: Batch) -> int:
    """Peak bytes of the tensors alive during one training step (see the module doc)."""
    device = batch[0].device
    if device.type == "cuda":
        model.zero_grad(set_to_none=True)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        _step(model, loss_fn, batch)
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    from torch.profiler import ProfilerActivity, profile

    model.zero_grad(set_to_none=True)
    base = _resident_bytes(model, batch)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _step(model, loss_fn, batch)
    events = [
        e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    ]
    events.sort(key=lambda e: e.start_ns())
    current = top = 0
    for event in events:
        current += event.nbytes()
        top = max(top, current)
    return base + top


def step_seconds(model: torch.nn.Module, loss_fn: Callable, batch: Batch) -> float:
    device = batch[0].device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    _step(model, loss_fn, batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def run(name: str, args: argparse.Namespace) -> Dict[str, float]:
    make, make_batch, loss_fn, steps, batch_size = NETWORKS[name]
    torch.manual_seed(0)
    device = torch.device(args.device)
    plain = make().to(device).train()
    batch = tuple(t.to(device) for t in make_batch(steps, args.batch or batch_size))
    optimised = copy.deepcopy(plain)
    start = time.perf_counter()
    if args.peak is None:
        memory.optimise(optimised, batch[0], budget=args.budget)
    else:
        memory.optimise(optimised, batch[0], peak=args.peak)
    planning = time.perf_counter() - start
    plan = memory.plan_of(optimised)

    # one step each (warm-up, then the gradients compared: the same random numbers)
    torch.manual_seed(1)
    loss_plain = _step(plain, loss_fn, batch)
    torch.manual_seed(1)
    loss_optimised = _step(optimised, loss_fn, batch)
    grad_difference = max(
        (a.grad - b.grad).abs().max().item()
        for a, b in zip(plain.parameters(), optimised.parameters())
        if a.grad is not None
    )
    grad_equal = all(
        (a.grad is None and b.grad is None) or torch.equal(a.grad, b.grad)
        for a, b in zip(plain.parameters(), optimised.parameters())
    )

    memory_plain = peak_bytes(plain, loss_fn, batch)
    memory_optimised = peak_bytes(optimised, loss_fn, batch)
    times_plain, times_optimised = [], []
    for _ in range(args.repeats):
        times_plain.append(step_seconds(plain, loss_fn, batch))
        times_optimised.append(step_seconds(optimised, loss_fn, batch))
    best_plain, best_optimised = min(times_plain), min(times_optimised)

    print(f"== {name}: input {tuple(batch[0].shape)}, device {device}")
    print(plan)
    print(
        f"planning {planning:.1f} s; loss plain {loss_plain.item():.6f}, optimised "
        f"{loss_optimised.item():.6f}; gradients "
        + ("equal bit for bit" if grad_equal else f"differ by <= {grad_difference:.2e}")
    )
    print(
        "step times plain "
        + ", ".join(f"{t:.2f}" for t in times_plain)
        + " s; optimised "
        + ", ".join(f"{t:.2f}" for t in times_optimised)
        + " s"
    )
    print(
        f"memory: plain {memory_plain / 1e6:.1f} MB, optimised "
        f"{memory_optimised / 1e6:.1f} MB, time x{best_optimised / best_plain:.2f}"
        f"  ({100 * memory_optimised / memory_plain:.0f}% of the plain peak; "
        f"best step {best_plain:.2f} s plain, {best_optimised:.2f} s optimised)",
        flush=True,
    )
    return {
        "plain_bytes": memory_plain,
        "optimised_bytes": memory_optimised,
        "time_ratio": best_optimised / best_plain,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--networks", nargs="+", choices=sorted(NETWORKS), default=["vgg11", "mnist"]
    )
    parser.add_argument(
        "--budget",
        default="memory",
        help="'memory', 'time' or a step-time ratio (default 'memory')",
    )
    parser.add_argument(
        "--peak",
        type=float,
        default=None,
        help="a memory target instead of a budget: optimise(..., peak=PEAK), a "
        "fraction of the plain step's predicted peak",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--batch", type=int, default=None, help="batch size (default per network)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    if args.budget not in ("memory", "time"):
        args.budget = float(args.budget)
    torch.set_num_threads(args.threads)
    for name in args.networks:
        run(name, args)


if __name__ == "__main__":
    main()
