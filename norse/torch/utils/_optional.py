"""Optional dependencies of the utilities (matplotlib, nir), imported on first use so
that importing :mod:`norse.torch` needs neither."""

import importlib
from types import ModuleType


def import_optional(module: str, message: str) -> ModuleType:
    """``module``, imported on first use; where it is missing, an ``ImportError`` with
    ``message`` (what needs the package and how to install it), raised from the
    original error."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(message) from error
