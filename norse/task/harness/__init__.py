"""The training harness shared by every task: devices, seeding, epochs with progress bars,
atomic checkpoints with exact resume, JSON metrics and plots.

A task supplies a model, an optimiser (and optionally a learning-rate scheduler), a
training step and an evaluation function; :func:`fit` runs the epochs. A run that is
interrupted and resumed with ``resume=True`` ends where an uninterrupted run would: the
checkpoint holds the model, optimiser, scheduler, random number generator states and the
metrics so far, and batches are shuffled from ``seed + epoch``.

The pieces, one concern each: :mod:`.distributed` (devices, ``torchrun`` process
groups, per-process shards of the batches), :mod:`.rng` (seeds and generator states),
:mod:`.checkpoints` (atomic saving, safe loading, the run's files), :mod:`.loop`
(:func:`fit`), :mod:`.arguments` (the tasks' command-line options and their checks),
:mod:`.run` (starting a run and saving its summary) and :mod:`.plots`.
"""

from .arguments import (
    add_option,
    add_run_options,
    check_run_options,
    option_name,
    require_device,
    require_method,
    require_non_negative,
    require_positive,
    require_positive_finite,
    require_probability,
    require_range,
    task_parser,
)
from .checkpoints import RunFiles, atomic_save, load_checkpoint
from .distributed import (
    Batch,
    DistributedContext,
    batches,
    distributed_context,
    init_distributed,
    select_device,
    shard_length,
)
from .loop import EvalFunction, History, StepFunction, fit
from .plots import plot_history, plot_raster, pyplot, save_figure
from .rng import rng_states, seed_everything, set_rng_states
from .run import save_summary, set_threads, start_run

__all__ = [
    "Batch",
    "DistributedContext",
    "EvalFunction",
    "History",
    "RunFiles",
    "StepFunction",
    "add_option",
    "add_run_options",
    "atomic_save",
    "batches",
    "check_run_options",
    "distributed_context",
    "fit",
    "init_distributed",
    "load_checkpoint",
    "option_name",
    "plot_history",
    "plot_raster",
    "pyplot",
    "require_device",
    "require_method",
    "require_non_negative",
    "require_positive",
    "require_positive_finite",
    "require_probability",
    "require_range",
    "rng_states",
    "save_figure",
    "save_summary",
    "seed_everything",
    "select_device",
    "set_rng_states",
    "set_threads",
    "shard_length",
    "start_run",
    "task_parser",
]
