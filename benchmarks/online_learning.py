"""Training memory by sequence length: BPTT vs e-prop (recurrent) and BPTT vs OTTT
(feed-forward).

One training step (forward, gradient, optimiser step) per measurement, each in a fresh
process:

* ``bptt-recurrent``: the memory task's network (``norse.task.memory.MemoryNet``, 100
  neurons, half LIF, half LSNN, leaky-integrator readout) and its loss (recall
  cross-entropy plus the rate regulariser), backpropagated through time;
* ``eprop``: the same network, loss and data through ``norse.task.memory_eprop`` (the
  ``--learning eprop`` step of the task);
* ``bptt-feedforward``: ``Linear(20, 100)``, LIF, ``Linear(100, 100)``, LIF,
  ``Linear(100, 2)``, an instantaneous loss at every step summed, backpropagated
  through time;
* ``ottt``: the same network and losses through ``norse.torch.module.ottt.OTTT``
  (``backward()`` at every step).

The data are the memory task's (``MemoryStoreRecallDataset``: 12 periods of
``seq_length`` ms, 20 input neurons), sequence lengths ``--base`` times ``--factors``.
All models run the reference step loops (``NORSE_FUSED=0``), eager (no
``torch.compile``), float32, one thread.

Peak memory is the growth of the resident set (``VmHWM`` reset through
``/proc/self/clear_refs`` after ``malloc_trim``) during the training step, above the
model, the optimiser state and the input sequence. The workers run with
``MALLOC_MMAP_THRESHOLD_=65536``: glibc then maps every block of 64 KiB or more on its
own and returns it when the tensor is freed, so the resident set follows the live
tensors. (With its default, adaptive threshold, e-prop's per-step trace tensors of a few
hundred KiB come from the heap, whose free lists grow with the number of steps: 3 MiB
at T=600 and 12 MiB at T=2400 here, none of it live.)

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/online_learning.py
    PYTHONPATH=. .venv/bin/python benchmarks/online_learning.py --base 50 --factors 1 4 16 --batch 16

Not part of the test suite.
"""

import argparse
import json
import os
import subprocess
import sys

from _common import resident_growth  # this folder is on sys.path when run as a script

METHODS = ("bptt-recurrent", "eprop", "bptt-feedforward", "ottt")


def worker(method: str, seq_length: int, batch: int) -> dict:
    import torch

    from norse.dataset.memory import MemoryStoreRecallDataset
    from norse.task import memory, memory_eprop
    from norse.torch.functional.lif import LIFFeedForwardState, lif_feed_forward_step
    from norse.torch.module.lif import LIFCell
    from norse.torch.module.ottt import OTTT

    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = MemoryStoreRecallDataset(
        batch, seq_length=seq_length, seq_repetitions=1, seed=0
    )
    x, labels = next(memory.dataset_batches(data, batch))  # (batch, T, 20)
    steps = x.shape[1]
    args = memory.parse_args(["--seq_length", str(seq_length)])

    def regularizer(rates):
        return (
            args.regularization_factor
            * ((rates - args.regularization_target) / args.regularization_target)
            .pow(2)
            .mean()
        )

    if method in ("bptt-recurrent", "eprop"):
        model = memory.build_model(args)
        trainer = memory_eprop.build_trainer(model) if method == "eprop" else None

        def loss_and_backward():
            if trainer is not None:
                loss, _, _ = memory_eprop.train_step(
                    trainer, (x, labels), seq_length, args.dt, regularizer, "cpu"
                )
            else:
                voltages, spikes, _ = model(x.transpose(0, 1))
                logits, targets, _ = memory.recall_logits(voltages, labels, seq_length)
                rates = spikes.mean((0, 1)) / args.dt
                loss = torch.nn.functional.cross_entropy(logits, targets)
                loss = loss + regularizer(rates)
            loss.backward()

    else:
        layers = [torch.nn.Linear(20, 100), torch.nn.Linear(100, 100)]
        readout = torch.nn.Linear(100, 2)
        p = LIFCell().p
        targets = labels.argmax(-1).max(1).values  # one class per sample
        inputs = x.transpose(0, 1) * 4  # (T, batch, 20)
        net = OTTT(layers[0], LIFCell(), layers[1], LIFCell(), readout)
        model = torch.nn.ModuleList([*layers, readout])

        def step_loss(output):
            return torch.nn.functional.cross_entropy(output, targets) / steps

        def loss_and_backward():
            # Indexing, not `for x_t in inputs`: iterating a tensor unbinds it into all
            # T views at once (about 0.5 KiB each), memory that grows with T.
            if method == "ottt":
                net.reset()
                for t in range(steps):
                    step_loss(net(inputs[t])).backward()
                return
            states = [None, None]
            loss = 0
            for t in range(steps):
                h = inputs[t]
                for index, layer in enumerate(layers):
                    current = layer(h)
                    if states[index] is None:
                        zeros = torch.zeros_like(current)
                        states[index] = LIFFeedForwardState(zeros, zeros)
                    h, states[index] = lif_feed_forward_step(current, states[index], p)
                loss = loss + step_loss(readout(h))
            loss.backward()

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss_and_backward()
        optimizer.step()

    # The first step allocates the optimiser state; the measured one is the second.
    train_step()
    peak, seconds = resident_growth(train_step)
    return {"method": method, "steps": steps, "peak_mib": peak, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=50, help="seq_length (ms) of x1")
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    parser.add_argument("--worker", nargs=3, metavar=("METHOD", "SEQ_LENGTH", "BATCH"))
    args = parser.parse_args()
    if args.worker:
        method, seq_length, batch = args.worker
        print(json.dumps(worker(method, int(seq_length), int(batch))))
        return
    environment = dict(os.environ, NORSE_FUSED="0", MALLOC_MMAP_THRESHOLD_="65536")
    rows = {}
    for factor in args.factors:
        for method in args.methods:
            command = [sys.executable, __file__, "--worker", method]
            command += [str(args.base * factor), str(args.batch)]
            result = subprocess.run(
                command, capture_output=True, text=True, env=environment, check=True
            )
            row = json.loads(result.stdout.strip().splitlines()[-1])
            rows[(method, factor)] = row
            print(
                f"{method:17s} x{factor:<3d} T={row['steps']:6d}: peak "
                f"{row['peak_mib']:8.1f} MiB, {row['seconds']:7.1f} s",
                flush=True,
            )
    print()
    header = " | ".join(
        f"x{f} (T={rows[(args.methods[0], f)]['steps']})" for f in args.factors
    )
    print(f"| method | {header} |")
    print("| --- |" + " --- |" * len(args.factors))
    for method in args.methods:
        cells = " | ".join(
            f"{rows[(method, f)]['peak_mib']:.1f} MiB, {rows[(method, f)]['seconds']:.1f} s"
            for f in args.factors
        )
        print(f"| {method} | {cells} |")
    print(f"\nbatch {args.batch}, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
