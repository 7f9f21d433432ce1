"""The start and the end of a task run: threads, processes, device and seeds; the
summary with the command that reproduces it."""

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from .distributed import DistributedContext, distributed_context, init_distributed
from .rng import seed_everything


def set_threads(threads: int) -> None:
    """Sets PyTorch's CPU threads; 0 means all cores, shared by the processes that
    ``torchrun`` starts on this machine (``LOCAL_WORLD_SIZE``)."""
    if threads > 0:
        torch.set_num_threads(threads)
    elif os.cpu_count():
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        torch.set_num_threads(max(1, os.cpu_count() // local_processes))


def start_run(args: argparse.Namespace) -> Tuple[DistributedContext, torch.device]:
    """Starts a task run from the options of
    :func:`~norse.task.harness.add_run_options` (``threads``, ``device``, ``seed``,
    ``deterministic``): sets the threads (:func:`set_threads`), joins the process group
    of a ``torchrun`` (:func:`~norse.task.harness.init_distributed`) and seeds every
    generator with ``seed + rank``, so that each process draws its own augmentations
    and samples (rank 0's initial weights reach the others when training starts).

    Returns:
        ``(context, device)`` of this process.
    """
    set_threads(args.threads)
    context, device = init_distributed(args.device)
    seed_everything(args.seed + context.rank, args.deterministic)
    return context, device


def save_summary(
    summary: Dict[str, Any],
    output_dir: Path,
    module: str,
    argv: Optional[Sequence[str]],
    started: Optional[float] = None,
) -> Dict[str, Any]:
    """Adds the run's ``seconds`` since ``started`` (a ``time.perf_counter()``, if
    given) and the command line (``python -m module ...``) to ``summary``, writes it
    to ``output_dir/summary.json``, prints it and returns it (in a distributed run only
    rank 0 writes and prints)."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    summary = dict(summary)
    if started is not None:
        summary["seconds"] = time.perf_counter() - started
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
