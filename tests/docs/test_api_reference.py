"""Every public name of the library has an entry in the built API reference.

The public names are those of ``norse.torch`` (and so of ``norse.torch.functional`` and
``norse.torch.module``, which it re-exports), of ``norse.torch.models``,
``norse.torch.quantization`` and the ``norse.torch.utils`` modules. A name has an entry
when the built site holds an anchor (mkdocstrings gives every rendered object the id
``module.path.name``) that ends in that name and leads to the same object.
"""

import importlib
import pkgutil
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Dict, Iterator, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = re.compile(r'id="(norse(?:\.\w+)+)"')


def _public_names(module: types.ModuleType) -> Iterator[Tuple[str, Any]]:
    """``(name, object)`` of what ``module`` offers: its ``__all__``, or else every name
    without a leading underscore; modules and objects from other libraries (re-exported
    for convenience, documented by their owners) are left out."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name in dir(module) if not name.startswith("_")]
    for name in names:
        value = getattr(module, name)
        if isinstance(value, types.ModuleType):
            continue
        home = getattr(value, "__module__", None)
        if home is not None and not home.startswith("norse"):
            continue  # e.g. torch's tree_map in norse.torch.utils.pytree
        yield name, value


def _utility_modules() -> Iterator[types.ModuleType]:
    """The public modules under ``norse.torch.utils``."""
    package = importlib.import_module("norse.torch.utils")
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield importlib.import_module(info.name)


def public_api() -> Dict[str, Any]:
    """``{"module.name": object}`` for every name the API reference must cover."""
    modules = [
        importlib.import_module(name)
        for name in (
            "norse.torch",
            "norse.torch.functional",
            "norse.torch.module",
            "norse.torch.models",
            "norse.torch.quantization",
        )
    ]
    modules += list(_utility_modules())
    api = {}
    for module in modules:
        # only names a module defines itself count, unless it lists them in __all__ or
        # is a package that gathers them (norse.torch re-exports functional and module)
        defines_only = not hasattr(module, "__all__") and not hasattr(
            module, "__path__"
        )
        for name, value in _public_names(module):
            home = getattr(value, "__module__", module.__name__)
            if defines_only and home != module.__name__:
                continue
            api[f"{module.__name__}.{name}"] = value
    return api


def _resolve(path: str) -> Any:
    """The object at a dotted path (a module, then attributes)."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            value = getattr(value, part)
        return value
    raise ImportError(path)


def missing_entries(api: Dict[str, Any], anchors: Set[str]) -> Set[str]:
    """The names of ``api`` that no anchor documents."""
    by_name: Dict[str, list] = {}
    for anchor in anchors:
        by_name.setdefault(anchor.rsplit(".", 1)[1], []).append(anchor)
    missing = set()
    for path, value in api.items():
        name = path.rsplit(".", 1)[1]
        candidates = by_name.get(name, [])
        if path in candidates:
            continue
        documented = False
        for anchor in candidates:
            try:
                documented = _resolve(anchor) is value
            except (ImportError, AttributeError):
                continue
            if documented:
                break
        if not documented:
            missing.add(path)
    return missing


def test_the_checker_sees_a_missing_name():
    api = {"norse.torch.LIFCell": _resolve("norse.torch.LIFCell")}
    assert missing_entries(api, set()) == {"norse.torch.LIFCell"}
    # a re-exported object is documented where it is defined
    assert not missing_entries(api, {"norse.torch.module.lif.LIFCell"})
    # the same name on another object does not count
    assert missing_entries(api, {"norse.torch.module.lif_box.LIFCell"})
    assert "norse.torch.SpikeLinear" in public_api()
    assert "norse.torch.utils.plot.plot_raster" in public_api()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site_dir = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--site-dir", str(site_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return site_dir


def test_every_public_name_is_in_the_api_reference(site):
    anchors = {
        match.group(1)
        for page in site.rglob("*.html")
        for match in ANCHOR.finditer(page.read_text())
    }
    missing = sorted(missing_entries(public_api(), anchors))
    assert not missing, (
        f"{len(missing)} public names have no entry in the API reference (add a "
        "'::: module' directive to a docs/api page, or a docstring): "
        + ", ".join(missing)
    )
