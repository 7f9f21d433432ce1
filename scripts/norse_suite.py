"""Runs Norse 1.1.0's own test suite against this package.

Norse is the oracle of our compatibility promise. This script fetches the ``norse==1.1.0``
source distribution from the package index (``pip download --no-deps``, cached outside
the repository), extracts its test files into a temporary folder outside the repository
(Norse's code is never committed here), rewrites their two relative imports to absolute
ones so that they import *this* package, and runs them with pytest.

A test fails the run when it passed on real Norse 1.1.0 (the list recorded in
``tests/norse_suite/passing_on_norse_1_1_0.txt``) and fails here, unless it is listed in
``tests/norse_suite/deliberate_differences.toml`` (a Norse 1.1 bug that we fix on purpose,
with its entry on docs/compatibility.md). A listed test that passes here also fails the
run, so the list stays exact.

Usage::

    python scripts/norse_suite.py            # run against the installed package
    python scripts/norse_suite.py --record   # in a venv with real norse==1.1.0: record
                                             # which tests pass there

Environment: ``NORSE_SUITE_CACHE`` (default ``~/.cache/norse-suite``) holds the download.
"""

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Dict, Set

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

NORSE_VERSION = "1.1.0"
REPOSITORY = Path(__file__).resolve().parent.parent
SUITE_DATA = REPOSITORY / "tests" / "norse_suite"
PASSING_FILE = SUITE_DATA / "passing_on_norse_1_1_0.txt"
DIFFERENCES_FILE = SUITE_DATA / "deliberate_differences.toml"

# The relative imports of Norse's test files, made absolute (they name Norse's modules,
# which this package provides under the same paths).
RELATIVE_IMPORTS = {
    "norse/torch/functional/test/test_stdp.py": (
        "from ...functional.stdp import",
        "from norse.torch.functional.stdp import",
    ),
    "norse/torch/module/test/test_encode.py": (
        "from ..lif import",
        "from norse.torch.module.lif import",
    ),
}


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "norse-suite"
    return Path(os.environ.get("NORSE_SUITE_CACHE", default))


def fetch_sdist() -> Path:
    """The ``norse==1.1.0`` source archive, downloaded once into the cache."""
    folder = cache_dir()
    found = sorted(folder.glob(f"norse-{NORSE_VERSION}.tar.gz"))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"norse=={NORSE_VERSION}",
            "--dest",
            str(folder),
        ],
        check=True,
    )
    found = sorted(folder.glob(f"norse-{NORSE_VERSION}.tar.gz"))
    if not found:
        raise SystemExit(f"pip did not leave norse-{NORSE_VERSION}.tar.gz in {folder}")
    return found[0]


def extract_tests(archive: Path, target: Path) -> None:
    """Copies the files of Norse's ``test`` folders to ``target``: the sources to
    ``suite/norse/...``, the data files to ``norse/...`` (one test reads
    ``norse/torch/utils/test/braille.nir`` relative to the working directory)."""
    prefix = f"norse-{NORSE_VERSION}/"
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(prefix + "norse/"):
                continue
            relative = member.name[len(prefix) :]
            if "/test/" not in relative:
                continue
            data = tar.extractfile(member).read()
            if relative in RELATIVE_IMPORTS:
                before, after = RELATIVE_IMPORTS[relative]
                text = data.decode()
                if before not in text:
                    raise SystemExit(f"{relative}: expected '{before}' to rewrite")
                data = text.replace(before, after).encode()
            if relative.endswith("/__init__.py"):
                # Test folders as plain directories: pytest's importlib mode then names
                # the modules by path, and nothing here can shadow norse's packages.
                continue
            # Sources under suite/ (pytest's importlib mode would otherwise make a
            # norse.* module of them); data where the tests read it (norse/...).
            folder = "suite/" if relative.endswith(".py") else ""
            path = target / (folder + relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def run_pytest(root: Path, report: Path, workers: int, extra) -> int:
    env = dict(os.environ)
    # No current-directory entry on sys.path: the extracted norse/ folder (tests only)
    # must not shadow the installed package.
    env["PYTHONSAFEPATH"] = "1"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "suite",
        "-q",
        "-p",
        "no:cacheprovider",
        "--import-mode=importlib",
        "--continue-on-collection-errors",
        "--rootdir",
        str(root),
        "-o",
        "addopts=",
        f"--junitxml={report}",
    ]
    if workers > 1:
        command += ["-n", str(workers)]
    command += list(extra)
    return subprocess.run(command, cwd=root, env=env).returncode


def outcomes(report: Path) -> Dict[str, str]:
    """Test id (``path::name``) -> passed / failed / skipped, from a JUnit report."""
    results = {}
    for case in ElementTree.parse(report).iter("testcase"):
        path = case.get("classname", "").replace(".", "/").removeprefix("suite/")
        test_id = f"{path}.py::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            results[test_id] = "failed"
        elif case.find("skipped") is not None:
            results[test_id] = "skipped"
        else:
            results[test_id] = "passed"
    return results


def read_passing() -> Set[str]:
    lines = PASSING_FILE.read_text().splitlines()
    return {line for line in lines if line and not line.startswith("#")}


def read_differences() -> Dict[str, dict]:
    with open(DIFFERENCES_FILE, "rb") as handle:
        entries = tomllib.load(handle).get("difference", [])
    differences = {}
    for entry in entries:
        for field in ("test", "bug", "equation", "compatibility"):
            if not entry.get(field):
                raise SystemExit(f"{DIFFERENCES_FILE.name}: an entry lacks '{field}'")
        if not re.match(r"docs/compatibility\.md#", entry["compatibility"]):
            raise SystemExit(
                f"{DIFFERENCES_FILE.name}: 'compatibility' must link into "
                f"docs/compatibility.md, got {entry['compatibility']!r}"
            )
        differences[entry["test"]] = entry
    return differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--record",
        action="store_true",
        help="record the tests that pass (run in a venv with real norse==1.1.0)",
    )
    parser.add_argument(
        "-n", "--workers", type=int, default=2, help="pytest-xdist workers (default 2)"
    )
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest")
    args = parser.parse_args()

    import norse

    installed = Path(norse.__file__).resolve()
    archive = fetch_sdist()
    with tempfile.TemporaryDirectory(prefix="norse-1.1.0-suite-") as folder:
        root = Path(folder)
        extract_tests(archive, root)
        report = root / "report.xml"
        print(f"Norse {NORSE_VERSION}'s test suite against {installed.parent}")
        run_pytest(root, report, args.workers, args.pytest_args)
        results = outcomes(report)

    if args.record:
        passing = sorted(test for test, result in results.items() if result == "passed")
        header = (
            f"# Tests of Norse {NORSE_VERSION}'s suite that pass on real Norse "
            f"{NORSE_VERSION} (torch {__import__('torch').__version__}), recorded by\n"
            "# `python scripts/norse_suite.py --record` in a venv with norse==1.1.0.\n"
        )
        PASSING_FILE.write_text(header + "\n".join(passing) + "\n")
        print(f"recorded {len(passing)} passing tests in {PASSING_FILE}")
        return 0

    passing, differences = read_passing(), read_differences()
    if args.pytest_args:  # a selection (-k ...): judge only the tests that ran
        passing = {test for test in passing if test in results}
        differences = {k: v for k, v in differences.items() if k in results}
    regressions = sorted(
        test
        for test in passing
        if results.get(test) != "passed" and test not in differences
    )
    stale = sorted(test for test in differences if results.get(test) == "passed")
    unknown = sorted(test for test in differences if test not in passing)
    here = sum(results.get(test) == "passed" for test in passing)
    print(
        f"Norse {NORSE_VERSION} suite: {here} of the {len(passing)} tests that pass on "
        f"Norse {NORSE_VERSION} pass here; {len(differences)} listed as deliberate "
        f"differences"
    )
    for label, tests in (
        ("fail here but pass on Norse (fix the cause)", regressions),
        ("listed as differences but pass here (remove them)", stale),
        ("listed as differences but do not pass on Norse", unknown),
    ):
        if tests:
            print(f"{len(tests)} {label}:")
            for test in tests:
                print(f"  {test}: {results.get(test, 'not run')}")
    return 1 if regressions or stale or unknown else 0


if __name__ == "__main__":
    sys.exit(main())
