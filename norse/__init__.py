"""Norse: deep learning with spiking neural networks (SNNs) on PyTorch.

The public API lives in :mod:`norse.torch` (``import norse.torch as norse``). As in Norse
1.1, ``import norse`` also gives ``norse.torch``, ``norse.dataset``, ``norse.task`` and
``norse.utils``; they are imported on first access, so ``import norse`` alone stays cheap
(it does not import PyTorch).
"""

import importlib as _importlib
from typing import Any as _Any
from typing import List as _List

# The Norse 1.1.0 API and its fixes; a post-release orders after Norse 1.1.0 (for code
# that checks Norse's version) and before any later Norse release.
__version__ = "1.1.0.post1"

__all__ = ["dataset", "task", "torch", "utils"]


def __getattr__(name: str) -> _Any:
    # Called only for names not yet set: importing a subpackage binds it on this module,
    # so each is imported once.
    if name in __all__:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> _List[str]:
    return sorted(set(globals()) | set(__all__))
