"""Argument checks shared by the data sets: each raises a ``ValueError`` or
``TypeError`` naming the argument, what it must be and what it got."""

import os
from typing import Any

import numpy as np

__all__ = [
    "check_flags",
    "check_path",
    "check_positive_int",
    "check_positive_number",
    "is_number",
]

_FLAG_MEANING = {
    "train": "True: the training split, False: the test split",
}


def is_number(value: Any) -> bool:
    """An int or float (Python or NumPy), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int if it is an int >= 1, else a ``ValueError``."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_positive_number(name: str, value: Any, unit: str = "") -> float:
    """``value`` as a float if it is a finite number > 0, else a ``ValueError``
    (``unit``, e.g. ``"seconds"``, is named in the message)."""
    if not (is_number(value) and np.isfinite(value) and value > 0):
        unit = f" ({unit})" if unit else ""
        raise ValueError(
            f"{name} must be a positive, finite number{unit}, got {value!r}"
        )
    return float(value)


def check_path(name: str, value: Any) -> None:
    """A ``TypeError`` unless ``value`` is a ``str`` or ``os.PathLike``."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {value!r}")


def check_flags(**flags: Any) -> None:
    """A ``TypeError`` for the first flag that is not a bool (a split name such as
    ``train="test"`` would otherwise be taken as True)."""
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            meaning = f" ({_FLAG_MEANING[name]})" if name in _FLAG_MEANING else ""
            raise TypeError(f"{name} must be a bool{meaning}, got {value!r}")
