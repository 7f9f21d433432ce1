"""The layering of the package, checked on its import graph.

Every ``.py`` file under ``norse/`` is parsed with :mod:`ast` (nothing is imported) and
each import is resolved to the module it names: ``import a.b``, ``from a import b``
(``b`` a submodule or a name of ``a``), relative imports, imports inside functions and
``if TYPE_CHECKING:`` blocks, ``importlib.import_module("...")`` with a literal name,
and attribute reads through a name bound to a module (``autograd._backend``). The rules:

* ``norse.torch.functional`` (the reference equations) imports only the standard
  library, ``torch``, ``numpy`` and itself, so the reference never depends on a fast
  path, a module or a task;
* ``norse.torch.fused`` (the fast path) imports neither ``norse.torch.module`` nor
  ``norse.task``;
* nothing under ``norse.torch`` imports ``norse.task``;
* ``norse.torch.module`` and ``norse.torch.utils`` do not import each other both ways,
  and no chain of imports between files runs through both and back;
* a private name (``_name``, or anything inside a ``_module``) of one package is
  neither imported nor read as an attribute from another package. The packages are
  the subpackages of ``norse.torch`` (functional, fused, module, utils, models,
  quantization), ``norse.torch`` itself, and ``norse.task``, ``norse.dataset`` and
  ``norse.utils``.

Each failure names the file and line, the import as written and the rule it breaks.
"""

import ast
import sys
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Set

import pytest

ROOT = Path(__file__).resolve().parents[1]

STDLIB = set(sys.stdlib_module_names) | {"__future__"}


class Import(NamedTuple):
    """One resolved import: ``name`` read from module ``target`` (``None``: the module)."""

    file: str  # path relative to the repository root
    line: int
    module: str  # the importing module
    target: str  # the imported module, dotted
    name: Optional[str]
    text: str  # the import (or attribute read) as written
    attribute: bool = False  # a read of ``name`` through a module bound by an import


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


#: Every module under norse/, dotted name -> whether it is a package (``__init__.py``).
MODULES: Dict[str, bool] = {
    _module_name(path): path.name == "__init__.py"
    for path in sorted((ROOT / "norse").rglob("*.py"))
}


def package_of(module: str) -> str:
    """The package a module belongs to, for the private-name rule."""
    parts = module.split(".")
    if parts[:2] == ["norse", "torch"]:
        sub = ".".join(parts[:3])
        return sub if len(parts) > 2 and MODULES.get(sub) else "norse.torch"
    return ".".join(parts[:2])


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _dotted(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def find_imports(
    module: str, is_package: bool, source: str, file: str
) -> Iterator[Import]:
    """The imports of one module's ``source``, resolved to dotted module names."""
    tree = ast.parse(source, filename=file)
    here = module.split(".") if is_package else module.split(".")[:-1]
    # Names bound to modules (``import a.b as m``; ``from a import b``, b a module), so
    # that ``m._name`` is seen as a read of a private name of ``a.b``.
    bound: Dict[str, str] = {}
    attributes: List[ast.Attribute] = []

    def text(node: ast.AST) -> str:
        return (ast.get_source_segment(source, node) or "").replace("\n", " ")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                written = f"import {alias.name}"
                yield Import(file, node.lineno, module, alias.name, None, written)
                head = alias.name.split(".")[0]
                bound[alias.asname or head] = alias.name if alias.asname else head
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            source_name = "." * node.level + (node.module or "")
            for alias in node.names:
                written = f"from {source_name} import {alias.name}"
                submodule = f"{target}.{alias.name}"
                if submodule in MODULES:
                    yield Import(file, node.lineno, module, submodule, None, written)
                    bound[alias.asname or alias.name] = submodule
                else:
                    yield Import(file, node.lineno, module, target, alias.name, written)
        elif (
            isinstance(node, ast.Call)
            and (_dotted(node.func) or "").split(".")[-1] == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Import(
                file, node.lineno, module, node.args[0].value, None, text(node)
            )
        elif isinstance(node, ast.Attribute):
            attributes.append(node)
    for node in attributes:
        dotted = _dotted(node.value)
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        if head not in bound:
            continue
        target = bound[head] + (f".{rest}" if rest else "")
        if target in MODULES:
            yield Import(file, node.lineno, module, target, node.attr, text(node), True)


def _all_imports() -> List[Import]:
    found = []
    for path in sorted((ROOT / "norse").rglob("*.py")):
        module = _module_name(path)
        found.extend(
            find_imports(
                module,
                MODULES[module],
                path.read_text(),
                str(path.relative_to(ROOT)),
            )
        )
    return found


#: Every import and every attribute read through an imported module.
FOUND = _all_imports()
#: The imports alone: the edges of the import graph.
IMPORTS = [found for found in FOUND if not found.attribute]


def _within(target: str, package: str) -> bool:
    return target == package or target.startswith(package + ".")


def _check(rule: str, broken: List[Import]) -> None:
    """Fails naming each offending import (file, line, the import as written) and the
    rule it breaks."""
    if broken:
        lines = sorted(
            {
                f"{found.file}:{found.line}: `{found.text}` breaks the rule: {rule}"
                for found in broken
            }
        )
        pytest.fail("\n".join(lines), pytrace=False)


def test_the_import_graph_is_found():
    # Guards against a walker that silently finds nothing to check.
    assert len(MODULES) > 100
    assert any(
        found.module == "norse.torch.module.lif"
        and _within(found.target, "norse.torch.functional")
        for found in IMPORTS
    )
    assert any(
        found.module.startswith("norse.torch.functional") and found.target == "torch"
        for found in IMPORTS
    )


@pytest.mark.parametrize(
    "module, is_package, source, expected",
    [
        (
            "norse.torch.module.lif",
            False,
            "from norse.torch.functional.sparse import _x\n",
            ("norse.torch.functional.sparse", "_x"),
        ),
        (
            "norse.torch.module.lif",
            False,
            "def f():\n    from ..fused import autograd\n    return autograd._backend\n",
            ("norse.torch.fused.autograd", "_backend"),
        ),
        (
            "norse.torch.module",
            True,
            "import norse.torch.fused.cpu as c\nc._threads()\n",
            ("norse.torch.fused.cpu", "_threads"),
        ),
        (
            "norse.torch.utils.state",
            False,
            "import norse.torch\nnorse.torch.fused.cpu._threads\n",
            ("norse.torch.fused.cpu", "_threads"),
        ),
        (
            "norse.torch.module.lif",
            False,
            "from .. import fused\n",
            ("norse.torch.fused", None),
        ),
        (
            "norse.torch.module.lif",
            False,
            "import importlib\nimportlib.import_module('norse.task.harness')\n",
            ("norse.task.harness", None),
        ),
    ],
)
def test_the_walker_resolves_each_form_of_import(module, is_package, source, expected):
    found = {
        (item.target, item.name)
        for item in find_imports(module, is_package, source, "probe.py")
    }
    assert expected in found


def test_functional_imports_only_torch_numpy_stdlib_and_itself():
    rule = (
        "norse/torch/functional/ imports only the standard library, torch, numpy "
        "and norse.torch.functional"
    )
    allowed = STDLIB | {"torch", "numpy"}
    broken = [
        found
        for found in IMPORTS
        if _within(found.module, "norse.torch.functional")
        and not _within(found.target, "norse.torch.functional")
        and found.target.split(".")[0] not in allowed
    ]
    _check(rule, broken)


def test_fused_imports_neither_module_nor_task():
    rule = "norse/torch/fused/ imports neither norse.torch.module nor norse.task"
    broken = [
        found
        for found in IMPORTS
        if _within(found.module, "norse.torch.fused")
        and (
            _within(found.target, "norse.torch.module")
            or _within(found.target, "norse.task")
        )
    ]
    _check(rule, broken)


def test_nothing_in_norse_torch_imports_task():
    rule = "nothing under norse/torch/ imports norse.task"
    broken = [
        found
        for found in IMPORTS
        if _within(found.module, "norse.torch") and _within(found.target, "norse.task")
    ]
    _check(rule, broken)


def _import_cycles(imports: List[Import]) -> List[Set[str]]:
    """The strongly connected components (more than one module) of the graph whose
    edges are the imports between modules of the package (Tarjan's algorithm)."""
    edges: Dict[str, Set[str]] = {module: set() for module in MODULES}
    for found in imports:
        if found.target in MODULES and found.target != found.module:
            edges[found.module].add(found.target)
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components: List[Set[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        # (node, iterator over its successors), iteratively: the graph is deep
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)
    return components


def test_module_and_utils_do_not_import_each_other():
    """``norse.torch.utils`` holds tools over the modules (the exporters, SynOps and
    memory counters, the state helpers): they import ``norse.torch.module``. So
    ``norse.torch.module`` imports nothing from ``norse.torch.utils``: what both need
    lives in the module package (e.g. :func:`~norse.torch.module.snn.is_module_stateful`,
    the anomaly checks of ``norse.torch.module.anomaly``). Both directions are listed
    when both exist."""
    rule = (
        "norse.torch.module and norse.torch.utils do not import each other (a cycle "
        "between the packages): move what both need to the package it belongs to"
    )

    def edges(source: str, target: str) -> List[Import]:
        return [
            found
            for found in IMPORTS
            if _within(found.module, source) and _within(found.target, target)
        ]

    forward = edges("norse.torch.module", "norse.torch.utils")
    backward = edges("norse.torch.utils", "norse.torch.module")
    if forward and backward:
        _check(rule, forward + backward)


def test_no_import_cycle_spans_module_and_utils():
    """The same at the level of files: no chain of imports leads from a file of one
    package through the other back to itself. Every import counts (inside functions
    too); the parent packages that Python runs first do not, since
    ``norse/torch/__init__.py`` imports everything and would join every file into one
    cycle."""
    rule = "no import cycle runs through both norse.torch.module and norse.torch.utils"
    broken = []
    for component in _import_cycles(IMPORTS):
        packages = {package_of(module) for module in component}
        if {"norse.torch.module", "norse.torch.utils"} <= packages:
            broken += [
                found
                for found in IMPORTS
                if found.module in component
                and found.target in component
                and package_of(found.module) != package_of(found.target)
            ]
    _check(rule, broken)


def test_the_cycle_finder_finds_cycles():
    def edge(source, target):
        return Import("f.py", 1, source, target, None, "import")

    a, b, c = (
        "norse.torch.module.lift",
        "norse.torch.utils.state",
        "norse.torch.module.snn",
    )
    assert _import_cycles([edge(a, b), edge(b, c)]) == []
    assert _import_cycles([edge(a, b), edge(b, c), edge(c, a)]) == [{a, b, c}]


def _reaches_private(found: Import) -> bool:
    home = package_of(found.target)
    inside = found.target[len(home) :].split(".")[1:]
    return any(_private(part) for part in inside) or (
        found.name is not None and _private(found.name)
    )


def test_private_names_stay_in_their_package():
    rule = (
        "a private name (_name, or anything in a _module) is used only inside its own "
        "package: make it public (documented) in its home, or move it"
    )
    broken = [
        found
        for found in FOUND
        if found.target in MODULES
        and package_of(found.module) != package_of(found.target)
        and _reaches_private(found)
    ]
    _check(rule, broken)


def test_packages_are_the_documented_ones():
    # The private-name rule's notion of a package, spelled out.
    packages: Set[str] = {package_of(module) for module in MODULES}
    assert {
        "norse.torch",
        "norse.torch.functional",
        "norse.torch.fused",
        "norse.torch.module",
        "norse.torch.utils",
        "norse.torch.models",
        "norse.torch.quantization",
        "norse.task",
        "norse.dataset",
        "norse.utils",
    } <= packages
