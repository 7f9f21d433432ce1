import pytest

from norse.torch.utils._optional import import_optional
from norse.torch.utils.plot import _pyplot


def test_an_installed_package_is_the_module():
    import json

    assert import_optional("json", "unused") is json


def test_a_missing_package_says_how_to_install_it():
    with pytest.raises(ImportError, match="pip install nothing") as caught:
        import_optional("norse_no_such_package", "X needs it: pip install nothing")
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_the_plots_get_pyplot():
    plt = pytest.importorskip("matplotlib.pyplot")
    assert _pyplot() is plt
