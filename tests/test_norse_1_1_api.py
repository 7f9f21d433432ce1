"""Every public name of Norse 1.1 is importable from the same place here.

``tests/data/norse_1_1_public_names.txt`` lists ``module name`` pairs read from an install of
``norse==1.1.0`` (``dir()`` of its public packages).
"""

import importlib
from pathlib import Path

import pytest

# Names deliberately not provided, with the reason.
NOT_PROVIDED: set = set()

NAMES = [
    tuple(line.split())
    for line in (Path(__file__).parent / "data" / "norse_1_1_public_names.txt")
    .read_text()
    .splitlines()
    if line.strip()
]


def test_the_list_is_substantial():
    assert len(NAMES) > 250


@pytest.mark.parametrize("module", sorted({m for m, _ in NAMES}))
def test_public_names_exist(module):
    imported = importlib.import_module(module)
    missing = [
        name
        for m, name in NAMES
        if m == module and (m, name) not in NOT_PROVIDED and not hasattr(imported, name)
    ]
    assert not missing, f"{module} lacks Norse 1.1 names: {missing}"
