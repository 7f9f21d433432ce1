"""Store/recall memory task: a recurrent network of LIF and LSNN neurons remembers a bit.

Run ``python -m norse.task.memory`` (``--help`` lists the options). The input
(:class:`norse.dataset.memory.MemoryStoreRecallDataset`) shows a random bit in every
period of ``seq_length`` ms; a STORE command marks the bit to remember and a RECALL
command, up to ``seq_periods - 1`` periods later, asks for it while the data channels are
silent. The network is one recurrently connected population -- half LIF, half LSNN
neurons (``--neuron_model lsnnlif``, the default) -- read out by two leaky integrators;
the prediction is the readout voltage averaged over the RECALL period, so the loss is
taken at the recall periods only. A firing-rate regulariser keeps the neurons near
``--regularization_target`` Hz.

With the default periods of 200 ms (Norse 1.1's), RECALL comes 0.2 to 2.2 s after
STORE. The LSNN neurons' adaptive thresholds decay with a time constant of seconds: a
neuron that fired during STORE stays less excitable until RECALL. LIF neurons forget
within their ~10 ms membrane time constant; a recurrent LIF network could only keep the
bit in reverberating activity, which it does not find at these delays:
``--neuron_model lif`` (the same network with plain LIF neurons only) stays near chance.
(With ``--seq_length 50``, delays up to 0.55 s, it can: 94 % test accuracy at ~20-50 Hz
in our runs, against 99 % at ~12 Hz for the LSNN network.)

Training is backpropagation through time with surrogate gradients; the gradient reaches
the STORE period through the adaptive thresholds (the feed-forward LSNN step keeps the
threshold jump differentiable). Two choices make it learn fast and stay stable: a
threshold jump ``--beta 0.2`` (40 % of ``v_th`` per spike; Norse 1.1's task used 1.8,
with which the coupled voltage/threshold gradient grows by ~1.3 per step while a neuron
sits near threshold and training diverges) and a wide surrogate (``--alpha 10``;
Norse's default 100 passes almost no gradient through silent neurons). Gradients are
clipped (``--max_grad_norm``). Every epoch draws fresh training sequences; the epoch
with the best validation accuracy is kept (training stops once it reaches
``--stop_at``) and tested on ``--test_samples`` further sequences.

``--learning eprop`` trains online instead: e-prop (Bellec et al. 2020,
:mod:`norse.task.memory_eprop`) computes the gradient forward in time from eligibility
traces, with the readout error broadcast to the neurons (``--feedback symmetric`` or
``random``), and keeps no history: memory does not grow with the sequence length.
``--compile`` fuses its trace updates with ``torch.compile``.

Outputs in ``--output``: ``checkpoint.pt`` (resumable with ``--resume``),
``metrics.jsonl`` (one line per epoch: loss, accuracy, validation accuracy split by
delay: short is fewer than ``seq_periods // 2`` periods), ``summary.json`` (test numbers,
run time and command), ``history.png``, ``raster.png`` and ``readout.png``.
"""

import argparse
import functools
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from norse.dataset.memory import MemoryStoreRecallDataset
from norse.task import harness, memory_eprop
from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.lif import LIFParameters, lif_feed_forward_step
from norse.torch.functional.lsnn import LSNNParameters, lsnn_feed_forward_step
from norse.torch.module.leaky_integrator import LI
from norse.torch.module.lif import LIFCell
from norse.torch.module.lsnn import LSNNCell

NEURON_MODELS = ("lsnnlif", "lsnn", "lif")


class MemoryNet(torch.nn.Module):
    r"""A recurrent population of LIF and LSNN neurons with a leaky-integrator readout.

    In every step the neurons receive the current

    .. math::
        I_t = W_{\text{in}} x_t + W_{\text{rec}} z_{t-1}

    (all-to-all recurrence without self-connections), the first ``lif_neurons`` integrate
    it as LIF neurons (:func:`.lif_feed_forward_step`), the others as LSNN neurons with an
    adaptive threshold (:func:`.lsnn_feed_forward_step`). Two leaky integrators read the
    spikes out through a linear layer.

    Parameters:
        input_size: input neurons per step
        lif_neurons, lsnn_neurons: size of each population (either may be 0, not both)
        p_lif, p_lsnn, p_li: neuron parameters
        output_size: readout neurons (classes)
        dt: time step (s)

    Shapes: input ``(T, batch, input_size)``; :meth:`forward` returns the readout
    voltages ``(T, batch, output_size)``, the spikes ``(T, batch, neurons)`` and, when
    ``record_thresholds``, the LSNN thresholds ``(T, batch, lsnn_neurons)`` (else None).
    """

    def __init__(
        self,
        input_size: int,
        lif_neurons: int,
        lsnn_neurons: int,
        p_lif: LIFParameters = LIFParameters(),
        p_lsnn: LSNNParameters = LSNNParameters(),
        p_li: LIParameters = LIParameters(),
        output_size: int = 2,
        dt: float = 0.001,
        input_scale: float = 1.0,
    ):
        super().__init__()
        if lif_neurons < 0 or lsnn_neurons < 0 or lif_neurons + lsnn_neurons == 0:
            raise ValueError(
                f"lif_neurons and lsnn_neurons must be >= 0 and not both 0, got {lif_neurons} and {lsnn_neurons}"
            )
        self.lif_neurons = lif_neurons
        self.lsnn_neurons = lsnn_neurons
        neurons = lif_neurons + lsnn_neurons
        self.lif = LIFCell(p_lif, dt=dt) if lif_neurons else None
        self.lsnn = LSNNCell(p_lsnn, dt=dt) if lsnn_neurons else None
        self.input_weights = torch.nn.Parameter(
            torch.randn(neurons, input_size) * input_scale / input_size**0.5
        )
        self.recurrent_weights = torch.nn.Parameter(
            torch.randn(neurons, neurons) / neurons**0.5
        )
        self.register_buffer("autapse_mask", 1.0 - torch.eye(neurons), persistent=False)
        with torch.no_grad():
            self.recurrent_weights.mul_(self.autapse_mask)
        self.readout_weights = torch.nn.Linear(neurons, output_size)
        self.readout = LI(p_li, dt=dt)

    def forward(
        self, x: torch.Tensor, record_thresholds: bool = False
    ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        if x.dim() != 3 or x.shape[-1] != self.input_weights.shape[1]:
            raise ValueError(
                f"x must be (T, batch, {self.input_weights.shape[1]}), got {tuple(x.shape)}"
            )
        # The input currents of all steps in one product; only the recurrence is a loop.
        drive = torch.nn.functional.linear(x, self.input_weights)
        recurrent = self.recurrent_weights * self.autapse_mask
        n = self.lif_neurons
        z = torch.zeros_like(drive[0])
        lif_state = self.lif.initial_state(drive[0, :, :n]) if self.lif else None
        lsnn_state = self.lsnn.initial_state(drive[0, :, n:]) if self.lsnn else None
        p_lif = self.lif.p if self.lif else None
        p_lsnn = self.lsnn.p if self.lsnn else None
        dt = (self.lif or self.lsnn).dt
        spikes: List[torch.Tensor] = []
        thresholds: List[torch.Tensor] = []
        for drive_t in drive:
            current = drive_t + torch.nn.functional.linear(z, recurrent)
            parts = []
            if self.lif is not None:
                z_lif, lif_state = lif_feed_forward_step(
                    current[:, :n], lif_state, p_lif, dt
                )
                parts.append(z_lif)
            if self.lsnn is not None:
                z_lsnn, lsnn_state = lsnn_feed_forward_step(
                    current[:, n:], lsnn_state, p_lsnn, dt
                )
                parts.append(z_lsnn)
                if record_thresholds:
                    thresholds.append(lsnn_state.b.detach())
            z = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
            spikes.append(z)
        spikes_t = torch.stack(spikes)
        voltages, _ = self.readout(self.readout_weights(spikes_t))
        return voltages, spikes_t, torch.stack(thresholds) if thresholds else None


def build_model(args: argparse.Namespace) -> MemoryNet:
    """The network of ``args.neuron_model`` with ``args.neurons`` neurons in all."""
    p_lif = LIFParameters(
        v_th=torch.as_tensor(args.v_th),
        method=args.method,
        alpha=torch.as_tensor(args.alpha),
    )
    p_lsnn = LSNNParameters(
        v_th=torch.as_tensor(args.v_th),
        beta=torch.as_tensor(args.beta),
        tau_adapt_inv=torch.as_tensor(1.0 / args.tau_adapt),
        method=args.method,
        alpha=torch.as_tensor(args.alpha),
    )
    if args.neuron_model == "lif":
        lif, lsnn = args.neurons, 0
    elif args.neuron_model == "lsnn":
        lif, lsnn = 0, args.neurons
    else:
        lif = args.neurons // 2
        lsnn = args.neurons - lif
    return MemoryNet(
        4 * args.population_size,
        lif,
        lsnn,
        p_lif=p_lif,
        p_lsnn=p_lsnn,
        output_size=2,
        dt=args.dt,
        input_scale=args.input_scale,
    )


def recall_logits(
    voltages: torch.Tensor, labels: torch.Tensor, seq_length: int
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The readout voltage averaged over each RECALL period.

    Parameters:
        voltages: ``(T, batch, 2)`` with ``T = periods * seq_length``
        labels: ``(batch, periods, 2)``, one-hot at the RECALL periods, zero elsewhere

    Returns:
        ``(logits (M, 2), targets (M,), mask (batch, periods))`` for the ``M`` recalls.
    """
    periods = labels.shape[1]
    per_period = voltages.reshape(periods, seq_length, *voltages.shape[1:]).mean(1)
    mask = labels.sum(-1) > 0
    return per_period.transpose(0, 1)[mask], labels[mask].argmax(-1), mask


def dataset_batches(
    dataset: torch.utils.data.Dataset, batch_size: int
) -> Iterable[Tuple[torch.Tensor, torch.Tensor]]:
    """Stacks the samples of ``dataset`` in order into batches (batch first)."""
    for start in range(0, len(dataset), batch_size):
        items = [
            dataset[i] for i in range(start, min(start + batch_size, len(dataset)))
        ]
        yield torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def _dataset(
    args: argparse.Namespace, samples: int, seed: int
) -> MemoryStoreRecallDataset:
    return MemoryStoreRecallDataset(
        samples,
        seq_length=args.seq_length,
        seq_periods=args.seq_periods,
        seq_repetitions=1,
        population_size=args.population_size,
        poisson_rate=args.poisson_rate,
        dt=args.dt,
        seed=seed,
    )


def _held_out_seed(args: argparse.Namespace, which: int) -> int:
    # Training epoch e draws seed * 100003 + e (e < 50000); held-out sets lie above.
    return args.seed * 100003 + 50000 + which


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = harness.task_parser(
        "norse.task.memory",
        "Store/recall memory task with recurrent LIF + LSNN networks.",
    )
    add = functools.partial(harness.add_option, parser)

    add(
        "--neuron_model",
        "--neuron",
        choices=NEURON_MODELS,
        default="lsnnlif",
        help="lsnnlif: half LIF, half LSNN; lsnn: all LSNN; lif: all LIF (no adaptation)",
    )
    add("--neurons", type=int, default=100, help="recurrent neurons in all")
    add(
        "--epochs",
        type=int,
        default=20,
        help="epochs; every epoch draws fresh sequences",
    )
    add("--batches_per_epoch", type=int, default=10)
    add("--batch_size", type=int, default=64)
    add("--learning_rate", type=float, default=0.01)
    add("--max_grad_norm", type=float, default=1.0, help="gradient clipping (0: none)")
    add("--seq_length", type=int, default=200, help="time steps (ms) per period")
    add("--seq_periods", type=int, default=12, help="periods per sequence")
    add("--population_size", type=int, default=5, help="input neurons per channel")
    add(
        "--poisson_rate",
        type=float,
        default=100.0,
        help="data rate (Hz); commands at half",
    )
    add("--dt", type=float, default=0.001, help="time step (s)")
    add("--v_th", type=float, default=0.5, help="threshold of LIF and LSNN neurons")
    add(
        "--beta",
        type=float,
        default=0.2,
        help="LSNN threshold jump per spike (Norse 1.1's task: 1.8)",
    )
    add(
        "--tau_adapt", type=float, default=2.0, help="LSNN adaptation time constant (s)"
    )
    add("--method", default="super", help="surrogate gradient")
    add("--alpha", type=float, default=10.0, help="surrogate gradient sharpness")
    add("--input_scale", type=float, default=1.0, help="input weight scale")
    add(
        "--learning",
        choices=("bptt", "eprop"),
        default="bptt",
        help="bptt: backpropagation through time; eprop: online e-prop",
    )
    add(
        "--feedback",
        choices=("symmetric", "random"),
        default="symmetric",
        help="e-prop's broadcast of the readout error: readout weights or random",
    )
    add(
        "--compile",
        action="store_true",
        help="e-prop: fuse the trace updates with torch.compile",
    )
    add("--regularization_factor", type=float, default=0.01)
    add("--regularization_target", type=float, default=10.0, help="target rate (Hz)")
    add("--val_samples", type=int, default=256, help="validation sequences")
    add("--test_samples", type=int, default=1024, help="fresh test sequences")
    add(
        "--stop_at",
        type=float,
        default=0.99,
        help="stop once the validation accuracy reaches this",
    )
    harness.add_run_options(parser, output="runs/memory")
    args = parser.parse_args(argv)
    harness.require_positive(
        parser, args, "neurons", "batches_per_epoch", "batch_size", "seq_length",
        "population_size", "val_samples", "test_samples",
    )  # fmt: skip
    harness.require_range(parser, args, "epochs", 0)
    harness.require_range(parser, args, "seq_periods", 2)
    harness.require_positive_finite(
        parser, args, "learning_rate", "dt", "v_th", "tau_adapt", "alpha",
        "input_scale", "regularization_target",
    )  # fmt: skip
    harness.require_non_negative(
        parser, args, "max_grad_norm", "beta", "regularization_factor"
    )
    harness.require_range(
        parser, args, "poisson_rate", 0, 1 / args.dt,
        reason="1 / --dt: at most one spike per input neuron and step",
    )  # fmt: skip
    harness.require_probability(parser, args, "stop_at")
    harness.require_method(parser, args)
    harness.check_run_options(parser, args)
    return args


def rate_penalty(rates: torch.Tensor, args: argparse.Namespace) -> torch.Tensor:
    """The firing-rate regulariser: squared relative distance of each neuron's rate
    (Hz) from ``--regularization_target``, times ``--regularization_factor``."""
    target = args.regularization_target
    return args.regularization_factor * ((rates - target) / target).pow(2).mean()


def bptt_step(model, batch, args: argparse.Namespace, device: torch.device):
    """Loss (recall cross-entropy plus the rate penalty), correct recalls and recalls
    of one batch, for backpropagation through time."""
    x, labels = batch
    x = x.to(device).transpose(0, 1)  # (T, batch, features)
    labels = labels.to(device)
    voltages, spikes, _ = model(x)
    logits, targets, _ = recall_logits(voltages, labels, args.seq_length)
    loss = torch.nn.functional.cross_entropy(logits, targets)
    rates = spikes.mean((0, 1)) / args.dt  # Hz per neuron
    correct = (logits.argmax(-1) == targets).sum()
    return loss + rate_penalty(rates, args), correct, targets.numel()


def build_train_step(
    model: MemoryNet, args: argparse.Namespace, device: torch.device
) -> harness.StepFunction:
    """The training step of ``--learning``: BPTT, or e-prop forward in time (whose
    loss's ``backward()`` writes e-prop's gradient)."""
    if args.learning != "eprop":
        return functools.partial(bptt_step, args=args, device=device)
    trainer = memory_eprop.build_trainer(model, args.feedback, args.compile)
    penalty = functools.partial(rate_penalty, args=args)
    return lambda model, batch: memory_eprop.train_step(
        trainer, batch, args.seq_length, args.dt, penalty, device
    )


def build_optimizer(
    model: MemoryNet, args: argparse.Namespace
) -> Tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Adam with a learning rate that falls along a cosine to 0 at the last step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    steps = max(args.epochs * args.batches_per_epoch, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (
            0.5 * (1 + torch.cos(torch.tensor(step / steps * torch.pi)).item())
        ),
    )
    return optimizer, scheduler


def training_batches(
    epoch: int, args: argparse.Namespace, context: harness.DistributedContext
) -> Iterable[Tuple[torch.Tensor, torch.Tensor]]:
    """Fresh sequences for epoch ``epoch``, drawn differently in each process
    (``--batch_size`` is per process)."""
    seed = (args.seed * 100003 + epoch) * context.world_size + context.rank
    data = _dataset(args, args.batch_size * args.batches_per_epoch, seed)
    return dataset_batches(data, args.batch_size)


def evaluate(
    model: MemoryNet,
    data: MemoryStoreRecallDataset,
    prefix: str,
    args: argparse.Namespace,
    device: torch.device,
) -> Dict[str, float]:
    """Loss, accuracy (also split by the delay between STORE and RECALL: long is at
    least half the periods) and mean firing rate on ``data``, named ``prefix_...``."""
    hits, rate_sum, loss_sum = [], 0.0, 0.0
    for x, labels in dataset_batches(data, 256):
        x = x.to(device).transpose(0, 1)
        voltages, spikes, _ = model(x)
        logits, targets, _ = recall_logits(voltages, labels.to(device), args.seq_length)
        loss_sum += torch.nn.functional.cross_entropy(
            logits, targets, reduction="sum"
        ).item()
        hits.append((logits.argmax(-1) == targets).cpu())
        rate_sum += spikes.mean().item() / args.dt * x.shape[1]
    hits_t = torch.cat(hits).float()
    # Delay in periods between STORE and RECALL (1 .. periods - 1).
    delay = (data.recall_indices - data.store_indices).flatten()
    long = delay >= args.seq_periods // 2
    return {
        f"{prefix}_loss": loss_sum / hits_t.numel(),
        f"{prefix}_accuracy": hits_t.mean().item(),
        f"{prefix}_accuracy_short_delay": hits_t[~long].mean().item(),
        f"{prefix}_accuracy_long_delay": hits_t[long].mean().item(),
        f"{prefix}_rate_hz": rate_sum / len(data),
    }


def plot_run(
    model: MemoryNet,
    history: harness.History,
    data: MemoryStoreRecallDataset,
    args: argparse.Namespace,
    device: torch.device,
) -> None:
    """``history.png``, and ``raster.png`` and ``readout.png`` of the first sequence of
    ``data``."""
    x, labels = data[0]
    with torch.no_grad():
        voltages, spikes, thresholds = model(
            x[:, None].to(device), record_thresholds=True
        )
    harness.plot_history(
        history, args.output / "history.png", title=f"memory task ({args.neuron_model})"
    )
    harness.plot_raster(
        spikes[:, 0].cpu(),
        args.output / "raster.png",
        title="network spikes (one test sequence)",
    )
    plot_readout(
        x,
        labels,
        voltages[:, 0].cpu(),
        spikes[:, 0].cpu(),
        None if thresholds is None else thresholds[:, 0].cpu(),
        args.seq_length,
        args.output / "readout.png",
    )


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Trains and evaluates; returns the final metrics (also in ``summary.json``)."""
    args = parse_args(argv)
    started = time.perf_counter()
    context, device = harness.start_run(args)
    if context.enabled and args.learning != "bptt":
        raise ValueError(
            f"--learning {args.learning} runs in a single process, got a world of "
            f"{context.world_size}"
        )
    args.output.mkdir(parents=True, exist_ok=True)
    model = build_model(args).to(device)
    optimizer, scheduler = build_optimizer(model, args)
    train_step = build_train_step(model, args, device)
    # Held-out sequences the training never sees: validation selects the epoch, the
    # test set (drawn from yet another seed) gives the reported numbers.
    val_set = _dataset(args, args.val_samples, _held_out_seed(args, 0))
    test_set = _dataset(args, args.test_samples, _held_out_seed(args, 1))
    history = harness.fit(
        model,
        optimizer,
        train_step,
        functools.partial(training_batches, args=args, context=context),
        num_batches=args.batches_per_epoch,
        epochs=args.epochs,
        evaluate=lambda model: evaluate(model, val_set, "val", args, device),
        scheduler=scheduler,
        output_dir=args.output,
        resume=args.resume,
        progress=not args.no_progress,
        max_grad_norm=args.max_grad_norm or None,
        best_metric="val_accuracy",
        stop_at=args.stop_at,
        checkpoint_extra={"args": vars(args) | {"output": str(args.output)}},
    )
    model.eval()
    with torch.no_grad():  # the best epoch's weights (by validation accuracy)
        final = evaluate(model, test_set, "test", args, device)
    if not args.no_plots and context.is_main:
        plot_run(model, history, test_set, args, device)
    summary = {
        **final,
        "neuron_model": args.neuron_model,
        "learning": args.learning,
        "epochs": len(history.epochs),
        "best_epoch": history.best_epoch,
        "test_samples": len(test_set),
        "seconds": time.perf_counter() - started,
        "long_delay_ms": args.seq_periods // 2 * args.seq_length * args.dt * 1000,
    }
    return harness.save_summary(summary, args.output, "norse.task.memory", argv)


def plot_readout(x, labels, voltages, spikes, thresholds, seq_length, path) -> Path:
    """Input spikes, network spikes, LSNN thresholds and the readout of one sequence."""
    plt = harness.pyplot()

    rows = 4 if thresholds is not None else 3
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2 * rows), sharex=True)
    steps = torch.arange(x.shape[0])
    t_in, n_in = x.nonzero(as_tuple=True)
    axes[0].scatter(t_in, n_in, s=1, c="k")
    population = x.shape[1] // 4
    axes[0].set_yticks(
        [population * (k + 0.5) for k in range(4)],
        ["bit 0", "bit 1", "store", "recall"],
    )
    axes[0].set_title("input")
    t_net, n_net = spikes.nonzero(as_tuple=True)
    axes[1].scatter(t_net, n_net, s=1, c="k")
    axes[1].set_ylabel("neuron")
    axes[1].set_title("network spikes")
    if thresholds is not None:
        axes[2].plot(steps, thresholds, lw=0.6)
        axes[2].set_ylabel("LSNN threshold b")
    ax = axes[-1]
    ax.plot(
        steps, voltages[:, 1] - voltages[:, 0], c="k", label="readout (bit 1 - bit 0)"
    )
    ax.axhline(0, ls="--", c="grey", lw=0.8)
    for period in labels.sum(-1).nonzero().flatten().tolist():
        ax.axvspan(
            period * seq_length,
            (period + 1) * seq_length,
            color="tab:orange",
            alpha=0.3,
            label=f"recall, target bit {labels[period].argmax().item()}",
        )
    ax.set_xlabel("time step")
    ax.legend(loc="upper left", fontsize=8)
    return harness.save_figure(fig, path)


if __name__ == "__main__":
    main()
