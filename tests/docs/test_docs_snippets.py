"""Every ```python block of the documentation (docs/**/*.md) runs.

The blocks of one page run in order in one namespace (a later block may use what an
earlier one defined), in a temporary working directory, with matplotlib's Agg backend.
"""

import os
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _pages():
    """The pages with at least one python block."""
    return [
        page for page in sorted(DOCS.rglob("*.md")) if BLOCK.search(page.read_text())
    ]


def python_blocks(text: str):
    """The code of every ```python fence in ``text``."""
    return [match.group(1) for match in BLOCK.finditer(text)]


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

    blocks = python_blocks(page.read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NORSE_DOCS_TEST", "1")
    torch.manual_seed(0)
    namespace = {"__name__": f"docs_{page.stem}"}
    try:
        for index, code in enumerate(blocks):
            source = f"{page.relative_to(DOCS)} block {index + 1}"
            exec(compile(code, source, "exec"), namespace)
    finally:
        plt.close("all")
        os.chdir(tmp_path)
