"""The training harness shared by every task: devices, seeding, epochs with progress bars,
atomic checkpoints with exact resume, JSON metrics and plots.

A task supplies a model, an optimiser (and optionally a learning-rate scheduler), a
training step and an evaluation function; :func:`fit` runs the epochs. A run that is
interrupted and resumed with ``resume=True`` ends where an uninterrupted run would: the
checkpoint holds the model, optimiser, scheduler, random number generator states and the
metrics so far, and batches are shuffled from ``seed + epoch``.
"""

import argparse
import atexit
import contextlib
import copy
import json
import os
import pickle
import random
import shlex
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
)

import numpy as np
import torch
from tqdm.auto import tqdm

Batch = Tuple[torch.Tensor, torch.Tensor]
#: ``(model, batch) -> (loss, number of correct predictions)``, optionally followed by the
#: number of predictions (when a sample holds several; the default is the batch size)
StepFunction = Callable[[torch.nn.Module, Batch], Tuple[torch.Tensor, int]]
#: ``(model) -> metrics`` on held-out data, e.g. ``{"test_accuracy": 0.98}``
EvalFunction = Callable[[torch.nn.Module], Dict[str, float]]


def select_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; other names go to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name!r} requested but CUDA is not available")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seeds Python, NumPy and PyTorch; ``deterministic`` also asks PyTorch for
    deterministic algorithms (slower on some GPU operations)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a multi-process run (``torchrun``).

    A plain ``python -m ...`` run is rank 0 of a world of size 1. Under ``torchrun``
    every process trains a replica of the model on its shard of each epoch (see
    :func:`batches`); :func:`fit` averages their gradients with
    :class:`~torch.nn.parallel.DistributedDataParallel`, and only rank 0 shows progress
    and writes checkpoints, metrics and plots.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_context() -> DistributedContext:
    """The context of the initialised process group, or a single process without one."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return DistributedContext()
    return DistributedContext(
        rank=torch.distributed.get_rank(),
        world_size=torch.distributed.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def _environment_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"environment variable {name} must be an integer, got {value!r}"
        ) from None


def init_distributed(
    device_name: str = "auto", backend: Optional[str] = None
) -> Tuple[DistributedContext, torch.device]:
    """Joins the process group that ``torchrun`` describes, if any, and picks the device.

    ``torchrun --nproc_per_node=N`` (or any launcher that sets ``WORLD_SIZE``, ``RANK``,
    ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``) starts N processes; each calls
    this function, which initialises :mod:`torch.distributed` with NCCL on GPUs and gloo
    on CPUs (or ``backend``) and, with ``device_name="auto"`` and CUDA, gives process
    ``LOCAL_RANK`` the GPU ``cuda:LOCAL_RANK``. Without such a launcher (``WORLD_SIZE``
    unset or 1) nothing is initialised and the result is ``(DistributedContext(),
    select_device(device_name))``.
    """
    world_size = _environment_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return DistributedContext(), select_device(device_name)
    if not torch.distributed.is_available():
        raise RuntimeError(
            f"WORLD_SIZE={world_size} asks for a distributed run, but this PyTorch "
            "build has no torch.distributed"
        )
    local_rank = _environment_int("LOCAL_RANK", 0)
    if device_name == "auto" and torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    else:
        device = select_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(
            backend or ("nccl" if device.type == "cuda" else "gloo"),
            device_id=device if device.type == "cuda" else None,
        )
        atexit.register(_leave_process_group)
    return distributed_context(), device


def _leave_process_group() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _prepare_replica(
    model: torch.nn.Module, context: DistributedContext
) -> torch.nn.Module:
    """Wraps ``model`` in DistributedDataParallel (the replica that trains).

    Batch-norm layers synchronise their batch statistics across processes on GPUs
    (:class:`~torch.nn.SyncBatchNorm`, same parameters and buffers, so checkpoints
    stay interchangeable); PyTorch offers that only for CUDA, so on CPUs each process
    normalises with the statistics of its own shard (rank 0's running statistics are
    kept, as DistributedDataParallel broadcasts buffers).
    """
    device = next(iter(model.parameters())).device
    norms = (torch.nn.modules.batchnorm._BatchNorm,)
    if any(isinstance(module, norms) for module in model.modules()):
        if device.type == "cuda":
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        elif context.is_main:
            warnings.warn(
                "batch norm on CPUs uses each process's own batch statistics "
                "(PyTorch synchronises them only on CUDA)",
                stacklevel=3,
            )
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device] if device.type == "cuda" else None
    )


@contextlib.contextmanager
def _atomic_file(path: Path, mode: str) -> Iterator[Any]:
    """A stream to a temporary file in the folder of ``path``, flushed to disk and
    renamed over ``path`` when the block ends without error (removed otherwise)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=path.name, suffix=".tmp"
    )
    try:
        with os.fdopen(handle, mode) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it over
    ``path``: a crash leaves either the old or the new checkpoint, never half of one."""
    with _atomic_file(path, "wb") as stream:
        torch.save(obj, stream)


#: What a checkpoint may hold besides tensors, containers and plain Python values: the
#: NumPy generator state (``numpy.random.get_state()`` holds a ``uint32`` array) and
#: ``numpy.float64`` metrics (JSON takes them, so an ``evaluate`` may return them).
#: These only rebuild arrays and scalars; none runs other code.
_CHECKPOINT_GLOBALS = [
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),
    type(np.dtype(np.float64)),
    # the rebuilding functions pickle names (numpy.core in NumPy 1, numpy._core in 2)
    np.zeros(0).__reduce__()[0],
    np.float64(0).__reduce__()[0],
]


def load_checkpoint(path: Path) -> Dict[str, Any]:
    """Loads a checkpoint written by :func:`atomic_save` onto the CPU, refusing any
    whose pickle would call other code.

    ``torch.load(weights_only=True)`` rebuilds only tensors, containers, plain Python
    values and the few NumPy types of a generator state; a file that names anything else
    (a crafted pickle's ``__reduce__`` can name any function) raises
    :class:`pickle.UnpicklingError` naming the file and what it asked for.
    """
    path = Path(path)
    # scoped: the allowlist does not outlive this load
    with torch.serialization.safe_globals(_CHECKPOINT_GLOBALS):
        try:
            return torch.load(path, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as error:
            try:
                wanted = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            except Exception:  # not a torch.save zip file
                wanted = []
            # torch's own message also suggests weights_only=False: keep only its cause
            _, _, cause = str(error).partition("WeightsUnpickler error:")
            cause = next((line for line in cause.splitlines() if line.strip()), "")
            asked = f"it names {', '.join(wanted)}" if wanted else cause.strip()
            raise pickle.UnpicklingError(
                f"refusing to load checkpoint {path}: it holds more than tensors, "
                "plain values and NumPy generator states, and unpickling it could run "
                f"code ({asked}). Only if you trust where it came from, load it with "
                "torch.load(path, weights_only=False) yourself."
            ) from error


def _atomic_write_text(text: str, path: Path) -> None:
    """Writes ``text`` to ``path`` atomically (as :func:`atomic_save`)."""
    with _atomic_file(path, "w") as stream:
        stream.write(text)


def _rng_states() -> Dict[str, Any]:
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: Dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


@dataclass
class History:
    """Metrics per epoch (one dict per finished epoch) and, when :func:`fit` selects
    the best model, the epoch (1-based) whose weights it kept."""

    epochs: List[Dict[str, float]] = field(default_factory=list)
    best_epoch: Optional[int] = None

    def column(self, name: str) -> List[float]:
        return [row[name] for row in self.epochs if name in row]


def batches(
    data: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    context: Optional[DistributedContext] = None,
) -> Iterable[Batch]:
    """Mini-batches of in-memory tensors; the order depends only on ``seed``.

    In a distributed run (``context``, by default :func:`distributed_context`) each
    process gets its shard of the shuffled order, as
    :class:`~torch.utils.data.DistributedSampler` deals it: rank ``r`` of ``W`` takes
    every ``W``-th sample from position ``r``, the order is padded by repeating its start
    so every process gets the same number of batches, and ``batch_size`` is per process
    (a global batch of ``W * batch_size``). With one process the order is the same
    permutation as ``torch.randperm(n)`` seeded with ``seed``.
    """
    if data.shape[0] != labels.shape[0]:
        raise ValueError(
            f"data and labels must have the same length, got {data.shape[0]} and {labels.shape[0]}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    context = distributed_context() if context is None else context
    sampler = torch.utils.data.DistributedSampler(
        range(data.shape[0]),
        num_replicas=context.world_size,
        rank=context.rank,
        shuffle=shuffle,
        seed=seed,
    )
    order = torch.tensor(list(sampler), dtype=torch.long)
    for start in range(0, order.shape[0], batch_size):
        index = order[start : start + batch_size].to(data.device)
        yield data[index], labels[index.to(labels.device)]


def shard_length(samples: int, context: Optional[DistributedContext] = None) -> int:
    """Samples per process when :func:`batches` deals ``samples`` out to every process."""
    context = distributed_context() if context is None else context
    return -(-samples // context.world_size)


def fit(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_step: StepFunction,
    make_batches: Callable[[int], Iterable[Batch]],
    num_batches: int,
    epochs: int,
    evaluate: Optional[EvalFunction] = None,
    scheduler: Optional[Any] = None,
    output_dir: Optional[Path] = None,
    resume: bool = False,
    progress: bool = True,
    checkpoint_extra: Optional[Dict[str, Any]] = None,
    max_grad_norm: Optional[float] = None,
    best_metric: Optional[str] = None,
    stop_at: Optional[float] = None,
) -> History:
    """Trains ``model`` for ``epochs`` epochs.

    Parameters:
        model: the network (already on its device)
        optimizer: its optimiser
        train_step: computes ``(loss, correct)`` or ``(loss, correct, predictions)``
            for one batch (the harness calls ``backward`` and the optimiser); the train
            accuracy is correct / predictions, where predictions defaults to the batch size
        make_batches: ``epoch -> iterable of batches``; shuffle with ``seed + epoch`` so a
            resumed run sees the same batches
        num_batches: batches per epoch (for the progress bar)
        epochs: total number of epochs
        evaluate: held-out metrics after each epoch
        scheduler: stepped once per batch if given
        output_dir: where ``checkpoint.pt`` and ``metrics.jsonl`` go (None: nowhere)
        resume: continue from ``output_dir/checkpoint.pt`` if it exists
        progress: show a tqdm bar per epoch with loss and accuracy
        checkpoint_extra: saved with every checkpoint (e.g. the task's configuration)
        max_grad_norm: clip the gradient norm to this value before each step (None: no
            clipping); tames the rare exploding gradient of long recurrent sequences. A
            step whose gradient is not finite is then skipped (counted in the epoch's
            ``skipped_steps``) instead of writing NaN into the weights
        best_metric: a metric of ``evaluate`` to maximise (e.g. ``"val_accuracy"``):
            the weights of the best epoch are kept (also in the checkpoint) and loaded
            into ``model`` at the end; None keeps the last weights
        stop_at: stop early once ``best_metric`` reaches this value

    Under ``torchrun`` (after :func:`init_distributed`) every process calls ``fit``
    with the same arguments and its own shard of batches: ``train_step`` receives the
    model wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` (gradients are
    averaged over the processes, so the replicas stay identical), ``evaluate`` the plain
    model; train loss and accuracy are summed over all processes; rank 0 alone shows
    progress and writes the checkpoint (which also holds every rank's random number
    generator states) and the metrics. Checkpoints are those of the plain model and
    load in single-process runs as well.

    Returns:
        The :class:`History` of all epochs (including those of a resumed run).
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    history = History()
    first_epoch = 0
    best: Optional[Dict[str, Any]] = None
    if stop_at is not None and best_metric is None:
        raise ValueError("stop_at needs best_metric (the metric to compare)")
    context = distributed_context()
    progress = progress and context.is_main
    checkpoint_path = Path(output_dir) / "checkpoint.pt" if output_dir else None
    metrics_path = (
        Path(output_dir) / "metrics.jsonl" if output_dir and context.is_main else None
    )
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        checkpoint = load_checkpoint(checkpoint_path)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None and checkpoint.get("scheduler") is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        _set_rng_states(_rng_states_of_rank(checkpoint, context))
        history = History(list(checkpoint["history"]))
        first_epoch = checkpoint["epoch"] + 1
        best = checkpoint.get("best")
        if checkpoint.get("stopped"):
            first_epoch = epochs  # it had stopped early: nothing left to do
        if metrics_path is not None:
            # A run killed after appending an epoch's metrics but before saving its
            # checkpoint repeats that epoch: keep the metrics of the checkpoint only.
            _atomic_write_text(
                "".join(json.dumps(row) + "\n" for row in history.epochs),
                metrics_path,
            )
    elif metrics_path is not None and metrics_path.exists():
        metrics_path.unlink()  # a fresh run starts a fresh metrics file
    replica = _prepare_replica(model, context) if context.enabled else model

    for epoch in range(first_epoch, epochs):
        replica.train()
        started = time.perf_counter()
        loss_sum, correct, seen, predicted, skipped = 0.0, 0, 0, 0, 0
        bar = tqdm(
            make_batches(epoch),
            total=num_batches,
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=not progress,
            leave=True,
        )
        for batch in bar:
            optimizer.zero_grad(set_to_none=True)
            loss, batch_correct, *predictions = train_step(replica, batch)
            if not _finite_everywhere(loss, context):
                raise FloatingPointError(
                    f"loss became {loss.item()} in epoch {epoch + 1}; lower the learning rate"
                )
            loss.backward()
            finite = True
            if max_grad_norm is not None:
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
                finite = bool(torch.isfinite(norm))
            if finite:
                optimizer.step()
            else:
                skipped += 1
            if scheduler is not None:
                scheduler.step()
            size = batch[0].shape[0]
            loss_sum += loss.item() * size
            correct += int(batch_correct)
            seen += size
            predicted += int(predictions[0]) if predictions else size
            bar.set_postfix(
                loss=f"{loss_sum / seen:.4f}", acc=f"{correct / predicted:.4f}"
            )
        if context.enabled:
            totals = torch.tensor(
                [loss_sum, correct, seen, predicted, skipped], dtype=torch.float64
            )
            torch.distributed.all_reduce(totals)
            loss_sum, correct, seen, predicted, skipped = totals.tolist()
            skipped = int(skipped) // context.world_size  # every rank skips together
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(seen, 1),
            "train_accuracy": correct / max(predicted, 1),
            "train_seconds": time.perf_counter() - started,
            "lr": optimizer.param_groups[0]["lr"],
        }
        if skipped:
            row["skipped_steps"] = skipped
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                row.update(evaluate(model))
        history.epochs.append(row)
        stopped = False
        if best_metric is not None:
            if best_metric not in row:
                raise KeyError(
                    f"best_metric {best_metric!r} is not among the metrics {sorted(row)}"
                )
            if best is None or row[best_metric] > best["value"]:
                best = {
                    "epoch": epoch + 1,
                    "value": row[best_metric],
                    "model": copy.deepcopy(model.state_dict()),
                }
            stopped = stop_at is not None and row[best_metric] >= stop_at
        if progress:
            tqdm.write(
                "epoch {epoch}: ".format(**row)
                + ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch")
            )
        if metrics_path is not None:
            metrics_path.parent.mkdir(parents=True, exist_ok=True)
            with open(metrics_path, "a") as stream:
                stream.write(json.dumps(row) + "\n")
        if checkpoint_path is not None:
            # every rank takes part in the gather; rank 0 alone writes
            rng_per_rank = _gather_objects(_rng_states(), context)
        if checkpoint_path is not None and context.is_main:
            atomic_save(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict()
                    if scheduler is not None
                    else None,
                    "rng_per_rank": rng_per_rank,
                    "history": history.epochs,
                    "extra": checkpoint_extra or {},
                    "best": best,
                    "stopped": stopped,
                },
                checkpoint_path,
            )
        if checkpoint_path is not None and context.enabled:
            torch.distributed.barrier()  # no rank runs ahead of the checkpoint
        if stopped:
            if progress:
                tqdm.write(f"{best_metric} reached {stop_at}: stopping early")
            break
    if best is not None:
        model.load_state_dict(best["model"])
        history.best_epoch = best["epoch"]
    return history


def _finite_everywhere(loss: torch.Tensor, context: DistributedContext) -> bool:
    """Whether ``loss`` is finite in every process (all must stop together, or the
    others would wait for gradients forever)."""
    finite = torch.isfinite(loss.detach()).all()
    if context.enabled:
        flag = finite.to(torch.int32).reshape(1).cpu()
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        finite = flag[0]
    return bool(finite)


def _gather_objects(obj: Any, context: DistributedContext) -> List[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` in a single process)."""
    if not context.enabled:
        return [obj]
    gathered: List[Any] = [None] * context.world_size
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def _rng_states_of_rank(
    checkpoint: Dict[str, Any], context: DistributedContext
) -> Dict[str, Any]:
    """This rank's generator states from a checkpoint (those before distributed support
    hold rank 0's under ``"rng"``); a run resumed with another number of processes
    cannot continue every rank's stream and says so."""
    per_rank = checkpoint.get("rng_per_rank") or [checkpoint["rng"]]
    if len(per_rank) != context.world_size:
        warnings.warn(
            f"the checkpoint was written by {len(per_rank)} process(es), this run has "
            f"{context.world_size}: random streams restart from rank 0's state, so the "
            "result will differ from an uninterrupted run",
            stacklevel=3,
        )
        return per_rank[0]
    return per_rank[context.rank]


def task_parser(module: str, description: str) -> argparse.ArgumentParser:
    """The argument parser of ``python -m module`` (defaults shown in ``--help``)."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def add_option(parser: argparse.ArgumentParser, *names: str, **kwargs: Any) -> None:
    """``parser.add_argument`` that also accepts each ``--snake_case`` option spelled
    ``--kebab-case`` (Norse 1.1's tasks use underscores, many tools dashes)."""
    dashed = tuple(name.replace("_", "-") for name in names if "_" in name)
    parser.add_argument(*names, *dashed, **kwargs)


def add_run_options(parser: argparse.ArgumentParser, output: str) -> None:
    """The options every task shares: ``--seed``, ``--device``, ``--threads``,
    ``--deterministic``, ``--output`` (default ``output``), ``--resume``,
    ``--no_progress`` and ``--no_plots``."""
    add_option(parser, "--seed", type=int, default=0)
    add_option(parser, "--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    add_option(
        parser,
        "--threads",
        type=int,
        default=1,
        help="CPU threads (small per-step products run fastest on one)",
    )
    add_option(parser, "--deterministic", action="store_true")
    add_option(
        parser, "--output", type=Path, default=Path(output), help="output folder"
    )
    add_option(
        parser,
        "--resume",
        action="store_true",
        help="continue from OUTPUT/checkpoint.pt",
    )
    add_option(parser, "--no_progress", action="store_true", help="no progress bars")
    add_option(parser, "--no_plots", action="store_true", help="skip the PNG plots")


def require_positive(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str
) -> None:
    """Exits with a usage error naming the first option in ``names`` that is not > 0
    (NaN included)."""
    for name in names:
        if not getattr(args, name) > 0:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")


def save_summary(
    summary: Dict[str, Any],
    output_dir: Path,
    module: str,
    argv: Optional[Sequence[str]],
) -> Dict[str, Any]:
    """Adds the command line (``python -m module ...``) to ``summary``, writes it to
    ``output_dir/summary.json``, prints it and returns it (in a distributed run only
    rank 0 writes and prints)."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    summary = dict(summary)
    summary["command"] = " ".join(
        ["python", "-m", module, *map(shlex.quote, arguments)]
    )
    context = distributed_context()
    summary["processes"] = context.world_size
    if not context.is_main:
        return summary
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    (Path(output_dir) / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return summary


def pyplot():
    """``matplotlib.pyplot`` on the file-only ``Agg`` backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Lays out ``fig``, saves it as a PNG at ``path`` and closes it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return Path(path)


def plot_history(history: History, path: Path, title: str = "") -> Path:
    """Saves loss and accuracy curves per epoch as a PNG."""
    plt = pyplot()

    epochs = history.column("epoch")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, history.column("train_loss"), marker="o", label="train")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_acc.plot(epochs, history.column("train_accuracy"), marker="o", label="train")
    if history.column("val_accuracy"):
        ax_acc.plot(
            epochs, history.column("val_accuracy"), marker="^", label="validation"
        )
    if history.column("test_accuracy"):
        ax_acc.plot(
            epochs, history.column("test_accuracy"), marker="s", label="held out"
        )
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_raster(
    spikes: torch.Tensor, path: Path, title: str = "", max_neurons: int = 400
) -> Path:
    """Saves a spike raster of ``spikes`` shaped ``(T, neurons...)`` as a PNG; shows the
    ``max_neurons`` most active neurons and each neuron's rate on the side
    (drawn by :func:`norse.torch.utils.plot.plot_raster`)."""
    pyplot()  # the Agg backend before norse.torch.utils.plot draws

    from norse.torch.utils import plot

    ax, _ = plot.plot_raster(
        spikes, max_neurons=max_neurons, sort_by_rate=True, title=title
    )
    fig = ax.figure
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------
# Range checks of command-line options: each exits like argparse on a usage error (exit
# status 2, usage and message on stderr), naming the option as it is spelled on the
# command line, the expected range and the given value. NaN and infinity are outside
# every range (``type=float`` accepts them).


def option_name(parser: argparse.ArgumentParser, dest: str) -> str:
    """The command-line spelling (``--batch_size`` or ``--batch-size``) of the option
    stored in ``args.<dest>``."""
    for action in parser._actions:
        if action.dest == dest and action.option_strings:
            return action.option_strings[0]
    return "--" + dest


def _interval(
    low: Optional[float], high: Optional[float], open_low: bool, open_high: bool
) -> str:
    def number(x: float) -> str:
        return str(x) if isinstance(x, int) else f"{x:g}"

    if high is None:
        return f"{'>' if open_low else '>='} {number(low)}"
    if low is None:
        return f"{'<' if open_high else '<='} {number(high)}"
    left, right = "(" if open_low else "[", ")" if open_high else "]"
    return f"in {left}{number(low)}, {number(high)}{right}"


def require_range(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    name: str,
    low: Optional[float] = None,
    high: Optional[float] = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
    reason: str = "",
) -> None:
    """Exits with a usage error unless ``args.<name>`` is a finite number between
    ``low`` and ``high`` (included unless ``open_low``/``open_high``; None: no bound);
    ``reason`` (e.g. ``"1 / --dt: at most one spike per step"``) is added to the message.

    Example: ``require_range(parser, args, "gamma", 0, 1, open_low=True)`` accepts
    ``--gamma`` in (0, 1]."""
    value = getattr(args, name)
    inside = (
        (isinstance(value, int) or bool(np.isfinite(value)))
        and (low is None or (value > low if open_low else value >= low))
        and (high is None or (value < high if open_high else value <= high))
    )
    if not inside:
        expected = _interval(low, high, open_low, open_high)
        because = f" ({reason})" if reason else ""
        parser.error(
            f"{option_name(parser, name)} must be {expected}{because}, got {value}"
        )


def require_positive_finite(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str
) -> None:
    """Exits with a usage error naming the first option in ``names`` that is not a
    finite number > 0 (for rates, time steps, time constants, learning rates)."""
    for name in names:
        require_range(parser, args, name, 0, open_low=True)


def require_non_negative(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str
) -> None:
    """Exits with a usage error naming the first option in ``names`` that is not a
    finite number >= 0 (for counts where 0 means "all" or "none", penalty factors)."""
    for name in names:
        require_range(parser, args, name, 0)


def require_probability(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str
) -> None:
    """Exits with a usage error naming the first option in ``names`` outside [0, 1]
    (probabilities, fractions, accuracies, label smoothing)."""
    for name in names:
        require_range(parser, args, name, 0, 1)


def require_method(
    parser: argparse.ArgumentParser, args: argparse.Namespace, name: str = "method"
) -> None:
    """Exits with a usage error unless ``args.<name>`` is a threshold method of
    :data:`norse.torch.functional.threshold.METHODS` (``super``, ``triangle``, ...)."""
    from norse.torch.functional.threshold import METHODS

    value = getattr(args, name)
    if value not in METHODS:
        parser.error(
            f"{option_name(parser, name)} must be one of {', '.join(METHODS)}, "
            f"got {value!r}"
        )


def require_device(
    parser: argparse.ArgumentParser, args: argparse.Namespace, name: str = "device"
) -> None:
    """Exits with a usage error unless ``args.<name>`` is ``auto`` or a device name
    that ``torch.device`` understands (``cpu``, ``cuda``, ``cuda:1``, ...)."""
    value = getattr(args, name)
    if value == "auto":
        return
    try:
        torch.device(value)
    except (RuntimeError, ValueError):
        parser.error(
            f"{option_name(parser, name)} must be auto, cpu, cuda or cuda:N, "
            f"got {value!r}"
        )


def check_run_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> None:
    """Checks the options of :func:`add_run_options`: ``--threads`` >= 1, ``--seed``
    in [0, 2**64) (seeds feed ``numpy.random.SeedSequence`` and ``torch.manual_seed``)
    and ``--device``."""
    require_range(parser, args, "threads", 1)
    require_range(parser, args, "seed", 0, 2**64 - 1)
    require_device(parser, args)
