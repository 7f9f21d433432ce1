"""How the packages of :mod:`norse.torch` export a file added to them.

``norse/torch/functional/__init__.py`` and ``norse/torch/module/__init__.py`` import the
catalogue by name and then call :func:`export_declared`, so that a new file (a neuron
model's equations, its module forms) exports the names in its ``__all__`` from the package
and from ``norse.torch`` without an entry in either ``__init__``.
"""

import importlib
import pkgutil
from typing import Dict, Sequence


def export_declared(
    package: str, path: Sequence[str], namespace: Dict[str, object]
) -> None:
    """Imports every public submodule of ``package`` (whose ``__path__`` is ``path``) and
    adds the names in its ``__all__`` to ``namespace`` (the package's ``globals()``); a
    name already there keeps its value.

    Example (the last line of a package's ``__init__.py``)::

        export_declared(__name__, __path__, globals())
    """
    for info in pkgutil.iter_modules(path):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for name in getattr(module, "__all__", ()):
            namespace.setdefault(name, getattr(module, name))
