"""Detection of NaN and Inf in neuron states, as the neuron modules run it.

The public path, with its user documentation, is :mod:`norse.torch.utils.anomaly`. The
implementation lives here, with the modules whose time loops call :func:`check_step`
(:mod:`.snn`, :mod:`.parallel`), so that ``norse.torch.module`` needs nothing from
``norse.torch.utils`` (which imports the modules for its exporters and counters).
"""

import contextlib
import os
import weakref
from typing import Any, Iterator, Optional

import torch

#: Whether the checks run; set by :func:`detect_anomaly`, :func:`set_detect_anomaly`
#: or ``NORSE_ANOMALY=1`` in the environment (read at import).
enabled: bool = os.environ.get("NORSE_ANOMALY", "0").strip().lower() not in (
    "",
    "0",
    "false",
    "no",
    "off",
)

# Calls of each cell (modules without a time loop) since detection was switched on: the
# "step" of a cell.
_cell_calls: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()


class AnomalyError(FloatingPointError):
    """A neuron state or output became NaN or infinite (see :mod:`.anomaly`)."""


def is_anomaly_enabled() -> bool:
    """Whether anomaly detection is on."""
    return enabled


def set_detect_anomaly(mode: bool) -> bool:
    """Switches anomaly detection on or off; returns the previous setting."""
    global enabled
    previous = enabled
    enabled = bool(mode)
    if enabled and not previous:
        _cell_calls.clear()
    return previous


@contextlib.contextmanager
def detect_anomaly(mode: bool = True) -> Iterator[None]:
    """Context manager: anomaly detection on (or off, ``mode=False``) inside the block,
    restored afterwards (blocks nest)."""
    previous = set_detect_anomaly(mode)
    try:
        yield
    finally:
        set_detect_anomaly(previous)


def named_tensors(value: Any, name: str = "state") -> Iterator:
    """``(dotted name, tensor)`` for every tensor in a (nested) state tuple (or a tensor,
    tuple or list), depth first: ``("state.lif.v", ...)``, ``("state.rho", ...)``."""
    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, tuple) and hasattr(value, "_fields"):
        for field, item in zip(value._fields, value):
            yield from named_tensors(item, f"{name}.{field}")
    elif isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            yield from named_tensors(item, f"{name}[{index}]")


def _first_bad(tensor: torch.Tensor) -> Optional[str]:
    """Describes the first NaN/Inf entry of ``tensor``, or ``None`` if all are finite."""
    if tensor.is_sparse:
        tensor = tensor.coalesce().values()
    if not (tensor.is_floating_point() or tensor.is_complex()):
        return None
    bad = ~torch.isfinite(tensor.detach())
    if not bool(bad.any()):
        return None
    index = tuple(int(i) for i in bad.nonzero()[0])
    return f"{tensor.detach()[index].item()} at index {index}"


def check_step(
    module: Any, step: Optional[int], input_tensor: Any, output: Any, state: Any
) -> None:
    """Raises :class:`AnomalyError` if ``state`` or ``output`` holds a NaN or Inf.

    Parameters:
        module: the module that ran the step (named in the message)
        step: the time step within the sequence, or ``None`` for a cell (the cell's
            call count since detection was switched on is used)
        input_tensor: the input of this step (reported as finite or not)
        output: the step's output
        state: the new state (a possibly nested ``NamedTuple``)
    """
    if step is None:
        step = _cell_calls.get(module, 0)
        _cell_calls[module] = step + 1
        where = f"call {step} of this cell"
    else:
        where = f"time step {step}"
    for name, tensor in (*named_tensors(state), *named_tensors(output, "output")):
        bad = _first_bad(tensor)
        if bad is None:
            continue
        cause = (
            "the input of this step is not finite either"
            if isinstance(input_tensor, torch.Tensor)
            and _first_bad(input_tensor) is not None
            else "the input of this step is finite (check dt, parameters and weights)"
        )
        raise AnomalyError(
            f"{type(module).__name__}: {name} is not finite ({bad}) at {where}; {cause}"
        )
