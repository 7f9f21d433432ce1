"""Seeds and random number generator states: what a checkpoint keeps so that a resumed
run draws the same numbers as an uninterrupted one."""

import os
import random
import warnings
from typing import Any, Dict

import numpy as np
import torch

from .distributed import DistributedContext


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seeds Python, NumPy and PyTorch; ``deterministic`` also asks PyTorch for
    deterministic algorithms (slower on some GPU operations)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def rng_states() -> Dict[str, Any]:
    """The states of Python's, NumPy's and PyTorch's global generators (and CUDA's,
    where there is CUDA), for :func:`set_rng_states`."""
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Dict[str, Any]) -> None:
    """Restores the generator states of :func:`rng_states` (CUDA's where both the states
    and this machine have them)."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def rng_states_of_rank(
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
            stacklevel=4,  # the caller of fit
        )
        return per_rank[0]
    return per_rank[context.rank]
