"""The files of a training run: atomic checkpoints, their safe loading, and the metrics
file that stays consistent with the checkpoint across an interruption."""

import contextlib
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import numpy as np
import torch


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


def _atomic_write_text(text: str, path: Path) -> None:
    """Writes ``text`` to ``path`` atomically (as :func:`atomic_save`)."""
    with _atomic_file(path, "w") as stream:
        stream.write(text)


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


class RunFiles:
    """``checkpoint.pt`` and ``metrics.jsonl`` of a run in ``output_dir``.

    The checkpoint is a dict whose ``"history"`` holds the metrics rows so far; the
    metrics file has one JSON line per row. Only the process that ``writes`` (rank 0 of
    a distributed run) touches the files; every process reads the checkpoint.

    Parameters:
        output_dir: the run's folder (created on the first write)
        writes: False in the processes that only read
    """

    def __init__(self, output_dir: Path, writes: bool = True):
        self.checkpoint_path = Path(output_dir) / "checkpoint.pt"
        self.metrics_path = Path(output_dir) / "metrics.jsonl"
        self.writes = writes

    def start(self, resume: bool) -> Optional[Dict[str, Any]]:
        """The checkpoint to continue from (``resume`` and one exists; the metrics file
        is rewritten to its history), else None (a fresh metrics file follows)."""
        if resume and self.checkpoint_path.exists():
            checkpoint = load_checkpoint(self.checkpoint_path)
            if self.writes:
                # A run killed after appending a row but before saving its checkpoint
                # repeats that step: keep the rows of the checkpoint only.
                _atomic_write_text(
                    "".join(json.dumps(row) + "\n" for row in checkpoint["history"]),
                    self.metrics_path,
                )
            return checkpoint
        if self.writes and self.metrics_path.exists():
            self.metrics_path.unlink()
        return None

    def log(self, row: Dict[str, Any]) -> None:
        """Appends ``row`` to the metrics file as one JSON line."""
        if self.writes:
            self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.metrics_path, "a") as stream:
                stream.write(json.dumps(row) + "\n")

    def save(self, checkpoint: Dict[str, Any]) -> None:
        """Replaces the checkpoint by ``checkpoint`` (:func:`atomic_save`)."""
        if self.writes:
            atomic_save(checkpoint, self.checkpoint_path)
