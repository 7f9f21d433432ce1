"""A file added to a package of norse.torch exports its ``__all__`` (export_declared)."""

import importlib
import sys

import norse.torch.functional as functional
import norse.torch.module as module
from norse.torch.functional.exports import export_declared


def test_a_new_file_exports_its_all_and_nothing_else(tmp_path, monkeypatch):
    package = tmp_path / "fresh_package"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(
        "__all__ = ['Public']\nclass Public: pass\nclass Other: pass\n"
    )
    (package / "plain.py").write_text("class NotListed: pass\n")
    (package / "_private.py").write_text("raise RuntimeError('never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        imported = importlib.import_module("fresh_package")
        namespace = {"Public": "kept"}
        export_declared("fresh_package", imported.__path__, namespace)
        assert namespace == {"Public": "kept"}  # a name already there keeps its value
        namespace = {}
        export_declared("fresh_package", imported.__path__, namespace)
        assert list(namespace) == ["Public"]
        assert namespace["Public"] is sys.modules["fresh_package.model"].Public
    finally:
        for name in [n for n in sys.modules if n.startswith("fresh_package")]:
            del sys.modules[name]


def test_the_packages_export_every_declared_name():
    for package in (functional, module):
        for name in dir(package):
            declared = getattr(getattr(package, name), "__all__", None)
            if not isinstance(declared, (list, tuple)) or name.startswith("_"):
                continue
            for exported in declared:
                assert hasattr(package, exported), f"{package.__name__}.{exported}"
