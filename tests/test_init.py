"""``import norse``: the subpackages Norse 1.1 imports there are reachable (imported on
first access), and the version orders after Norse 1.1.0."""

import subprocess
import sys
import textwrap

import pytest
from packaging.version import Version

import norse


def _run(code: str) -> str:
    """Runs ``code`` in a fresh interpreter (nothing imported yet) and returns stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_norse_is_cheap_and_gives_the_subpackages():
    out = _run(
        """
        import sys
        import norse
        print("torch" in sys.modules, "norse.torch" in sys.modules)
        import torch
        model = norse.torch.SequentialState(torch.nn.Linear(2, 3), norse.torch.LI())
        out, states = model(torch.ones(4, 1, 2))
        print(tuple(out.shape), type(states[1]).__name__)
        print(norse.dataset.__name__, norse.task.__name__, norse.utils.__name__)
        print(sorted(name for name in dir(norse) if not name.startswith("_")))
        """
    )
    assert out.splitlines() == [
        "False False",  # neither PyTorch nor norse.torch imported by `import norse`
        "(4, 1, 3) LIState",
        "norse.dataset norse.task norse.utils",
        "['dataset', 'task', 'torch', 'utils']",
    ]


def test_star_import_and_unknown_names():
    out = _run(
        """
        from norse import *
        print(torch.__name__, dataset.__name__, task.__name__, utils.__name__)
        """
    )
    assert out.split() == ["norse.torch", "norse.dataset", "norse.task", "norse.utils"]
    with pytest.raises(AttributeError, match="module 'norse' has no attribute 'nope'"):
        norse.nope


def test_subpackage_is_the_imported_module():
    import norse.torch

    assert norse.torch is sys.modules["norse.torch"]
    assert norse.__getattr__("torch") is sys.modules["norse.torch"]


def test_version_orders_after_norse_1_1_0():
    version = Version(norse.__version__)
    assert Version("1.1.0") < version < Version("1.1.1")
    assert version.release[:3] == (1, 1, 0)
