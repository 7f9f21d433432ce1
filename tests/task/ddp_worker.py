"""One process of the distributed-training tests (launched by ``torchrun`` from
``test_distributed.py``; not a test module itself).

``python ddp_worker.py OUTPUT EPOCHS [--resume]`` trains :func:`build_model` on
:func:`problem` with :func:`norse.task.harness.fit`, a per-process batch of
``BATCH_SIZE`` and gloo on the CPU, and saves this rank's final weights to
``OUTPUT/rank<r>.pt`` (the harness writes ``OUTPUT/checkpoint.pt``).
"""

import sys
from pathlib import Path

import torch

from norse.task import harness
from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.lif import LIFParameters
from norse.torch.module.leaky_integrator import LI
from norse.torch.module.lif import LIF

BATCH_SIZE = 4  # per process
SAMPLES = 24
STEPS = 5


class TinySNN(torch.nn.Module):
    """Linear -> LIF (trainable per-neuron membrane time constants) -> Linear -> LI."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(6, 10)
        self.lif = LIF(
            LIFParameters(
                tau_mem_inv=torch.nn.Parameter(torch.full((10,), 100.0)),
                v_th=torch.tensor(0.3),
            )
        )
        self.readout = torch.nn.Linear(10, 3)
        self.li = LI(LIParameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        currents = self.hidden(x.expand(STEPS, *x.shape)) * 5
        spikes, _ = self.lif(currents)
        voltages, _ = self.li(self.readout(spikes))
        return voltages.max(0).values


def build_model() -> TinySNN:
    torch.manual_seed(0)
    return TinySNN()


def problem():
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(SAMPLES, 6, generator=generator)
    y = torch.randint(0, 3, (SAMPLES,), generator=generator)
    return x, y


def train_step(model, batch):
    data, labels = batch
    scores = model(data)
    loss = torch.nn.functional.cross_entropy(scores, labels)
    return loss, (scores.argmax(1) == labels).sum()


def train(output: Path, epochs: int, resume: bool, make_batches) -> torch.nn.Module:
    model = build_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.5)
    harness.fit(
        model,
        optimizer,
        train_step,
        make_batches,
        num_batches=SAMPLES // BATCH_SIZE,
        epochs=epochs,
        output_dir=output,
        resume=resume,
        progress=False,
    )
    return model


def main(argv) -> None:
    output, epochs, resume = Path(argv[0]), int(argv[1]), "--resume" in argv
    torch.set_num_threads(1)
    context, _ = harness.init_distributed("cpu")
    x, y = problem()
    model = train(
        output,
        epochs,
        resume,
        lambda epoch: harness.batches(x, y, BATCH_SIZE, shuffle=True, seed=epoch),
    )
    torch.save(model.state_dict(), output / f"rank{context.rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1:])
