"""LIF layer on a GPU: the fused Triton kernels against the HBM bandwidth floor.

Issue 4's GPU target: ``LIF`` forward + backward, 64 x 65,536 neurons, T=32, float16
input, within 1.5x of the time the memory must take for the bytes the pass has to move.
Those bytes, per neuron-step: forward reads the input and writes the spikes; backward
reads the input again (the replay), the gradient of the spikes, and writes the gradient
of the input; each ``itemsize`` bytes (the state is float32 in registers). The floor is
the time of a device-to-device copy of a tensor of the same total bytes (half read,
half written), measured in the same run. The script also reports the bytes the kernels
actually move (the backward reads the input twice and writes and reads float32
checkpoints every ``SEGMENT`` steps, see :mod:`norse.torch.fused.cuda`) so that a miss
can be attributed; ``SEGMENT`` is the constant to tune.

Timing: CUDA events around each call, medians of ``--repeat`` calls after warm-up, the
fused path (the hand-written kernels of :mod:`norse.torch.fused.cuda`), the kernels
generated from the step function (``generated_only``: whether the hand-written ones can
go, issue 14) and the reference loop (``reference_only``, fewer repeats) timed in turn.

Usage (one prepared run on a lent GPU, a minute or two)::

    python benchmarks/gpu_lif.py --sweep --json /tmp/gpu_lif.json

``--sweep`` also times the kernel configurations of :data:`SWEEP` (neurons per
program, warps, segment length of the backward pass) in the same run, so that one lent
GPU session both measures the target and picks the constants of
:mod:`norse.torch.fused.cuda`.

``--smoke`` runs a tiny shape on the CPU through Triton's interpreter (the tests' route)
to check the script without a GPU; its timings mean nothing. Not part of the test
suite.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys

import torch


def _setup_smoke() -> None:
    """Routes CPU tensors to the Triton kernels, interpreted (as tests/torch/fused)."""
    os.environ["TRITON_INTERPRET"] = "1"
    from norse.torch.fused import autograd
    from norse.torch.fused.generate import runtime

    autograd.BACKENDS["cpu"] = "norse.torch.fused.cuda"
    runtime.BACKENDS["cpu"] = "cuda"


class _Timer:
    """Milliseconds of ``function()``: CUDA events on a GPU, wall clock otherwise."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def __call__(self, function) -> float:
        if self.cuda:
            start = torch.cuda.Event(enable_timing=True)
            stop = torch.cuda.Event(enable_timing=True)
            start.record()
            function()
            stop.record()
            torch.cuda.synchronize()
            return start.elapsed_time(stop)
        import time

        begin = time.perf_counter()
        function()
        return 1e3 * (time.perf_counter() - begin)


def _median(timer, function, warmup: int, repeat: int) -> float:
    for _ in range(warmup):
        function()
    return statistics.median(timer(function) for _ in range(repeat))


def run(args) -> dict:
    import norse.torch as norse
    from norse.torch.fused import generated_only, reference_only

    device = "cpu" if args.smoke else "cuda"
    dtype = getattr(torch, args.dtype)
    steps, batch, neurons = args.steps, args.batch, args.neurons
    generator = torch.Generator(device=device).manual_seed(0)
    x = (
        1.5 + torch.randn(steps, batch, neurons, generator=generator, device=device)
    ).to(dtype)
    grad = torch.randn(x.shape, generator=generator, device=device).to(dtype)
    layer = norse.LIF().to(device)
    timer = _Timer(device)

    def forward():
        with torch.no_grad():
            layer(x)

    def forward_backward():
        x_ = x.detach().requires_grad_()
        spikes, _ = layer(x_)
        spikes.backward(grad)

    # Correctness first: the fused pass against the reference loop.
    x_fused = x.detach().requires_grad_()
    spikes, _ = layer(x_fused)
    spikes.backward(grad)
    with reference_only():
        x_ref = x.detach().requires_grad_()
        reference, _ = layer(x_ref)
        reference.backward(grad)
    with generated_only():
        x_generated = x.detach().requires_grad_()
        generated_spikes, _ = layer(x_generated)
        generated_spikes.backward(grad)
    spikes_differ = (spikes != reference).float().mean().item()
    generated_differ = (generated_spikes != reference).float().mean().item()
    grad_error = (
        (x_fused.grad.float() - x_ref.grad.float()).abs().max()
        / x_ref.grad.float().abs().max().clamp_min(1e-30)
    ).item()

    element = x.element_size()
    neuron_steps = x.numel()
    floor_bytes = {
        "forward": 2 * element * neuron_steps,
        "forward+backward": 5 * element * neuron_steps,
    }
    # What the kernels move besides: the backward reads the input twice (the replay for
    # the checkpoints, then the recomputation of each segment) and writes and reads the
    # float32 checkpoints (v, i) once per SEGMENT steps.
    from norse.torch.fused import cuda

    checkpoint_bytes = 2 * 2 * 4 * neuron_steps / cuda.SEGMENT
    moved_bytes = {
        "forward": floor_bytes["forward"],
        "forward+backward": floor_bytes["forward+backward"]
        + element * neuron_steps
        + checkpoint_bytes,
    }

    def copy_of(total_bytes):
        source = torch.empty(total_bytes // 2, dtype=torch.uint8, device=device)
        target = torch.empty_like(source)
        return lambda: target.copy_(source)

    rows = []
    for name, function in (
        ("forward", forward),
        ("forward+backward", forward_backward),
    ):
        fused = _median(timer, function, args.warmup, args.repeat)
        with generated_only():
            generated = _median(timer, function, args.warmup, args.repeat)
        with reference_only():
            reference_ms = _median(timer, function, 1, args.reference_repeat)
        floor = _median(timer, copy_of(floor_bytes[name]), args.warmup, args.repeat)
        rows.append(
            {
                "pass": name,
                "fused_ms": fused,
                "reference_ms": reference_ms,
                "floor_ms": floor,
                "ratio_to_floor": fused / floor,
                "generated_ms": generated,
                "generated_ratio_to_floor": generated / floor,
                "floor_gb": floor_bytes[name] / 1e9,
                "moved_gb": moved_bytes[name] / 1e9,
                "effective_gb_s": floor_bytes[name] / fused / 1e6,
            }
        )
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke)",
        "torch": torch.__version__,
        "shape": [steps, batch, neurons],
        "dtype": args.dtype,
        "spikes_differing_from_reference": spikes_differ,
        "generated_spikes_differing_from_reference": generated_differ,
        "input_grad_max_relative_error": grad_error,
        "rows": rows,
    }


#: Kernel configurations timed by ``--sweep`` (``cuda.BLOCK``, ``cuda.NUM_WARPS``,
#: ``cuda.SEGMENT``): larger blocks give each thread several neurons (wider loads),
#: longer segments fewer checkpoints but more registers. All compile for sm_90 without
#: spills; registers per thread of the LIF forward / backward kernels (ptxas): 24 / 45,
#: 32 / 72, 40 / 154, 40 / 164, 24 / 32, 24 / 88, 24 / 32, in this order.
SWEEP = [
    (128, 4, 8),
    (256, 4, 8),
    (512, 4, 8),
    (1024, 8, 8),
    (128, 4, 4),
    (128, 4, 16),
    (256, 8, 4),
]


@contextlib.contextmanager
def _kernel_config(block: int, warps: int, segment: int):
    from norse.torch.fused import cuda

    saved = cuda.BLOCK, cuda.NUM_WARPS, cuda.SEGMENT
    cuda.BLOCK, cuda.NUM_WARPS, cuda.SEGMENT = block, warps, segment
    try:
        yield
    finally:
        cuda.BLOCK, cuda.NUM_WARPS, cuda.SEGMENT = saved


def sweep(args, result: dict, configs) -> list:
    """Forward and forward + backward times of each kernel configuration (checked
    against the reference pass of :func:`run` first), against the same floors."""
    import norse.torch as norse
    from norse.torch.fused import reference_only

    device = "cpu" if args.smoke else "cuda"
    dtype = getattr(torch, args.dtype)
    generator = torch.Generator(device=device).manual_seed(0)
    shape = (args.steps, args.batch, args.neurons)
    x = (1.5 + torch.randn(shape, generator=generator, device=device)).to(dtype)
    grad = torch.randn(x.shape, generator=generator, device=device).to(dtype)
    layer = norse.LIF().to(device)
    timer = _Timer(device)
    floors = {row["pass"]: row["floor_ms"] for row in result["rows"]}
    with reference_only():
        x_ref = x.detach().requires_grad_()
        reference, _ = layer(x_ref)
        reference.backward(grad)
    rows = []
    for block, warps, segment in configs:
        with _kernel_config(block, warps, segment):
            x_ = x.detach().requires_grad_()
            spikes, _ = layer(x_)
            spikes.backward(grad)
            error = (x_.grad.float() - x_ref.grad.float()).abs().max() / (
                x_ref.grad.float().abs().max().clamp_min(1e-30)
            )

            def forward():
                with torch.no_grad():
                    layer(x)

            def forward_backward():
                x_ = x.detach().requires_grad_()
                layer(x_)[0].backward(grad)

            fwd = _median(timer, forward, args.warmup, args.repeat)
            both = _median(timer, forward_backward, args.warmup, args.repeat)
        rows.append(
            {
                "block": block,
                "warps": warps,
                "segment": segment,
                "spikes_equal": bool(torch.equal(spikes, reference)),
                "input_grad_max_relative_error": error.item(),
                "forward_ms": fwd,
                "forward_ratio": fwd / floors["forward"],
                "forward_backward_ms": both,
                "forward_backward_ratio": both / floors["forward+backward"],
            }
        )
    return rows


def sweep_table(rows: list) -> str:
    lines = [
        "| BLOCK | warps | SEGMENT | spikes equal | input grad error | fwd ms | "
        "fwd / floor | fwd+bwd ms | fwd+bwd / floor |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['block']} | {row['warps']} | {row['segment']} | "
            f"{row['spikes_equal']} | {row['input_grad_max_relative_error']:.1e} | "
            f"{row['forward_ms']:.3f} | "
            f"{row['forward_ratio']:.2f}x | {row['forward_backward_ms']:.3f} | "
            f"{row['forward_backward_ratio']:.2f}x |"
        )
    return "\n".join(lines)


def table(result: dict) -> str:
    lines = [
        f"{result['device']}, torch {result['torch']}, LIF {result['shape']} "
        f"(T, batch, neurons), {result['dtype']} input; spikes differing from the "
        f"reference: {result['spikes_differing_from_reference']:.2e} (generated "
        f"kernels: {result['generated_spikes_differing_from_reference']:.2e}), input "
        f"gradient max relative error {result['input_grad_max_relative_error']:.2e}",
        "",
        "| pass | fused ms | generated ms | reference ms | floor ms (copy of the same "
        "bytes) | fused / floor | generated / floor | bytes to move (GB) | bytes the "
        "kernels move (GB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['pass']} | {row['fused_ms']:.3f} | {row['generated_ms']:.3f} | "
            f"{row['reference_ms']:.2f} | {row['floor_ms']:.3f} | "
            f"{row['ratio_to_floor']:.2f}x | {row['generated_ratio_to_floor']:.2f}x | "
            f"{row['floor_gb']:.3f} | {row['moved_gb']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--neurons", type=int, default=65536)
    parser.add_argument(
        "--dtype", default="float16", choices=["float16", "bfloat16", "float32"]
    )
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--reference-repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the result to this file")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also time the kernel configurations of SWEEP (block, warps, segment)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny float32 run on the CPU through Triton's interpreter (no GPU)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.batch, args.neurons, args.dtype = 4, 2, 300, "float32"
        args.warmup, args.repeat, args.reference_repeat = 1, 2, 1
        _setup_smoke()
    elif not torch.cuda.is_available():
        sys.exit("no CUDA device: run on a GPU, or pass --smoke to check the script")
    result = run(args)
    print(table(result))
    if args.sweep:
        configs = SWEEP[:2] if args.smoke else SWEEP
        result["sweep"] = sweep(args, result, configs)
        print()
        print(sweep_table(result["sweep"]))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(result, file, indent=2)


if __name__ == "__main__":
    main()
