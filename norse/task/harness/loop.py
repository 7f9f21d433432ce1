"""The training loop: :func:`fit` runs the epochs, with checkpoints and exact resume."""

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import torch
from tqdm.auto import tqdm

from .checkpoints import RunFiles
from .distributed import (
    Batch,
    DistributedContext,
    barrier,
    distributed_context,
    finite_everywhere,
    gather_objects,
    prepare_replica,
    sum_over_processes,
)
from .rng import rng_states, rng_states_of_rank, set_rng_states

#: ``(model, batch) -> (loss, number of correct predictions)``, optionally followed by the
#: number of predictions (when a sample holds several; the default is the batch size)
StepFunction = Callable[[torch.nn.Module, Batch], Tuple[torch.Tensor, int]]
#: ``(model) -> metrics`` on held-out data, e.g. ``{"test_accuracy": 0.98}``
EvalFunction = Callable[[torch.nn.Module], Dict[str, float]]


@dataclass
class History:
    """Metrics per epoch (one dict per finished epoch) and, when :func:`fit` selects
    the best model, the epoch (1-based) whose weights it kept."""

    epochs: List[Dict[str, float]] = field(default_factory=list)
    best_epoch: Optional[int] = None

    def column(self, name: str) -> List[float]:
        return [row[name] for row in self.epochs if name in row]


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

    Under ``torchrun`` (after :func:`~norse.task.harness.init_distributed`) every
    process calls ``fit`` with the same arguments and its own shard of batches:
    ``train_step`` receives the model wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel` (gradients are averaged over the
    processes, so the replicas stay identical), ``evaluate`` the plain model; train loss
    and accuracy are summed over all processes; rank 0 alone shows progress and writes
    the checkpoint (which also holds every rank's random number generator states) and
    the metrics. Checkpoints are those of the plain model and load in single-process
    runs as well.

    Returns:
        The :class:`History` of all epochs (including those of a resumed run).
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if stop_at is not None and best_metric is None:
        raise ValueError("stop_at needs best_metric (the metric to compare)")
    context = distributed_context()
    progress = progress and context.is_main
    files = RunFiles(output_dir, writes=context.is_main) if output_dir else None
    history, first_epoch, best = History(), 0, None
    checkpoint = files.start(resume) if files is not None else None
    if checkpoint is not None:
        _restore(checkpoint, model, optimizer, scheduler, context)
        history = History(list(checkpoint["history"]))
        best = checkpoint.get("best")
        # a run that had stopped early has nothing left to do
        first_epoch = epochs if checkpoint.get("stopped") else checkpoint["epoch"] + 1
    replica = prepare_replica(model, context) if context.enabled else model

    for epoch in range(first_epoch, epochs):
        row = _train_epoch(
            replica,
            optimizer,
            scheduler,
            train_step,
            tqdm(
                make_batches(epoch),
                total=num_batches,
                desc=f"epoch {epoch + 1}/{epochs}",
                disable=not progress,
                leave=True,
            ),
            max_grad_norm,
            context,
            epoch + 1,
        )
        row = {"epoch": epoch + 1, **row}
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                row.update(evaluate(model))
        history.epochs.append(row)
        stopped = False
        if best_metric is not None:
            best = _better(best, row, best_metric, model)
            stopped = stop_at is not None and row[best_metric] >= stop_at
        if progress:
            tqdm.write(
                f"epoch {row['epoch']}: "
                + ", ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "epoch")
            )
        if files is not None:
            files.log(row)
            # every rank takes part in the gather; rank 0 alone writes
            files.save(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": None if scheduler is None else scheduler.state_dict(),
                    "rng_per_rank": gather_objects(rng_states(), context),
                    "history": history.epochs,
                    "extra": checkpoint_extra or {},
                    "best": best,
                    "stopped": stopped,
                }
            )
            barrier(context)  # no rank runs ahead of the checkpoint
        if stopped:
            if progress:
                tqdm.write(f"{best_metric} reached {stop_at}: stopping early")
            break
    if best is not None:
        model.load_state_dict(best["model"])
        history.best_epoch = best["epoch"]
    return history


def _restore(
    checkpoint: Dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Optional[Any],
    context: DistributedContext,
) -> None:
    """Loads the weights, optimiser, scheduler and this rank's generator states."""
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
    set_rng_states(rng_states_of_rank(checkpoint, context))


def _train_epoch(
    replica: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Optional[Any],
    train_step: StepFunction,
    bar: Iterable[Batch],
    max_grad_norm: Optional[float],
    context: DistributedContext,
    epoch: int,
) -> Dict[str, float]:
    """Epoch ``epoch`` (1-based): one pass over the batches of ``bar`` (a tqdm bar,
    perhaps disabled); returns the epoch's train
    loss and accuracy over all processes, its seconds, the learning rate and, if any,
    the steps skipped for a gradient that was not finite."""
    replica.train()
    started = time.perf_counter()
    loss_sum, correct, seen, predicted, skipped = 0.0, 0, 0, 0, 0
    for batch in bar:
        optimizer.zero_grad(set_to_none=True)
        loss, batch_correct, *predictions = train_step(replica, batch)
        if not finite_everywhere(loss, context):
            raise FloatingPointError(
                f"loss became {loss.item()} in epoch {epoch}; lower the learning rate"
            )
        loss.backward()
        finite = True
        if max_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(replica.parameters(), max_grad_norm)
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
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / predicted:.4f}")
    loss_sum, correct, seen, predicted, skipped = sum_over_processes(
        [loss_sum, correct, seen, predicted, skipped], context
    )
    row = {
        "train_loss": loss_sum / max(seen, 1),
        "train_accuracy": correct / max(predicted, 1),
        "train_seconds": time.perf_counter() - started,
        "lr": optimizer.param_groups[0]["lr"],
    }
    if skipped:
        row["skipped_steps"] = int(skipped) // context.world_size  # all skip together
    return row


def _better(
    best: Optional[Dict[str, Any]],
    row: Dict[str, float],
    metric: str,
    model: torch.nn.Module,
) -> Dict[str, Any]:
    """``best`` (epoch, value and weights of the best epoch so far), replaced by this
    epoch's if its ``metric`` is higher."""
    if metric not in row:
        raise KeyError(f"best_metric {metric!r} is not among the metrics {sorted(row)}")
    if best is None or row[metric] > best["value"]:
        return {
            "epoch": row["epoch"],
            "value": row[metric],
            "model": copy.deepcopy(model.state_dict()),
        }
    return best
