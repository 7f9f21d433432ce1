"""Every ```python block of the documentation (docs/**/*.md) runs.

The blocks of one page run in order in one namespace (a later block may use what an
earlier one defined), in a temporary working directory, with matplotlib's Agg backend.

A block titled with a file of the repository (```python title="norse/torch/module/x.py"```)
is that file: it is written to a temporary folder and imported as the module of that
name (its package's ``__path__`` extended for the test), or, for a file under
``tests/``, its ``test_*`` functions run.
"""

import importlib
import os
import re
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
TITLE = re.compile(r'title="([^"]+)"')


def _pages():
    """The pages with at least one python block."""
    return [
        page for page in sorted(DOCS.rglob("*.md")) if BLOCK.search(page.read_text())
    ]


def python_blocks(text: str):
    """The code of every ```python fence in ``text``."""
    return [match.group(2) for match in BLOCK.finditer(text)]


def titled_blocks(text: str):
    """``(title or None, code)`` of every ```python fence in ``text``."""
    blocks = []
    for match in BLOCK.finditer(text):
        title = TITLE.search(match.group(1))
        blocks.append((title.group(1) if title else None, match.group(2)))
    return blocks


def _run_file(title: str, code: str, folder: Path, monkeypatch, added: list) -> None:
    """Runs a block that stands for the repository file ``title`` (module docstring);
    the names of modules it adds go to ``added``."""
    path = folder / title
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(code)
    if title.startswith("tests/"):
        namespace = {"__name__": f"docs_{path.stem}"}
        exec(compile(code, title, "exec"), namespace)
        tests = [f for name, f in namespace.items() if name.startswith("test_")]
        assert tests, f"{title} defines no test"
        for test in tests:
            test()
        return
    package = importlib.import_module(".".join(Path(title).parent.parts))
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(path.parent)])
    name = f"{package.__name__}.{path.stem}"
    assert name not in sys.modules, f"{title} would replace the package's own {name}"
    added.append(name)
    importlib.import_module(name)


def _remove_modules(names: list) -> None:
    for name in names:
        sys.modules.pop(name, None)
        package, _, attribute = name.rpartition(".")
        if hasattr(sys.modules.get(package), attribute):
            delattr(sys.modules[package], attribute)


def test_the_extractor_finds_blocks():
    text = "a\n```python\nx = 1\n```\n```sh\nls\n```\n```python title\ny = 2\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = 2\n"]
    assert len(_pages()) >= 20, "documentation pages with code are missing"


@pytest.mark.parametrize("page", _pages(), ids=lambda path: str(path.relative_to(DOCS)))
def test_page_code_runs(page, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    blocks = titled_blocks(page.read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NORSE_DOCS_TEST", "1")
    torch.manual_seed(0)
    namespace = {"__name__": f"docs_{page.stem}"}
    added = []
    try:
        for index, (title, code) in enumerate(blocks):
            if title is not None:
                _run_file(title, code, tmp_path / "repository", monkeypatch, added)
                continue
            source = f"{page.relative_to(DOCS)} block {index + 1}"
            exec(compile(code, source, "exec"), namespace)
    finally:
        _remove_modules(added)
        plt.close("all")
        os.chdir(tmp_path)
