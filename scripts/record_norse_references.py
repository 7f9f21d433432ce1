"""Records reference results of real Norse 1.1.0 for ``tests/test_norse_references.py``.

Runs every case of ``tests/norse_references/reference_cases.py`` on the installed
``norse`` (which must be Norse 1.1.0, not this package) and stores its inputs, results
and gradients in ``tests/norse_references/<family>.npz``, with the versions in
``tests/norse_references/index.json``. Regenerate with::

    /path/to/venv-with-norse-1.1.0/bin/python scripts/record_norse_references.py

(a virtual environment with ``pip install norse==1.1.0 numpy``; run from anywhere: it
does not import this repository's ``norse``). ``--only PATTERN`` records the matching
cases only and keeps the others.
"""

import argparse
import fnmatch
import json
import platform
import sys
import warnings
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

REPOSITORY = Path(__file__).resolve().parent.parent
REFERENCES = REPOSITORY / "tests" / "norse_references"
sys.path.insert(0, str(REFERENCES))

import reference_cases  # noqa: E402
import reference_replay  # noqa: E402

NORSE_VERSION = "1.1.0"


def check_norse() -> str:
    """The installed norse: Norse 1.1.0 itself, never this repository's package."""
    import norse

    location = Path(norse.__file__).resolve()
    if REPOSITORY in location.parents:
        sys.exit(f"{location} is this repository's package; run in a Norse 1.1.0 venv")
    version = getattr(norse, "__version__", "?")
    if version != NORSE_VERSION:
        sys.exit(f"norse {version} is installed; the references need {NORSE_VERSION}")
    return version


def record(cases: List[reference_replay.Case]) -> Dict[str, Dict[str, np.ndarray]]:
    """The npz arrays per family; prints one line per case."""
    families: Dict[str, Dict[str, np.ndarray]] = {}
    for case in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = reference_replay.run(case)
        families.setdefault(case.family, {}).update(
            reference_replay.save_case(case, result)
        )
        # The mean first output (the spike rate of a neuron): to check that cases spike.
        firsts = [
            value.detach().double().mean().item()
            for key, value in result.outputs.items()
            if key.endswith((".0", ".z"))
            and isinstance(value, torch.Tensor)
            and value.layout == torch.strided
        ]
        mean = f"{np.mean(firsts):.2f}" if firsts else "-"
        note = result.error or result.grad_error or ""
        print(f"{case.name:64s} results={len(result.outputs):3d} "
              f"grads={len(result.grads):3d} mean={mean} {note}"[:200])  # fmt: skip
    return families


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="record only the cases matching this pattern")
    options = parser.parse_args()
    version = check_norse()
    torch.set_num_threads(1)
    cases = reference_cases.CASES
    names = [case.name for case in cases]
    if len(set(names)) != len(names):
        sys.exit("duplicate case names")
    if options.only:
        cases = [case for case in cases if fnmatch.fnmatch(case.name, options.only)]
    families = record(cases)
    for family, arrays in sorted(families.items()):
        path = REFERENCES / f"{family}.npz"
        if options.only and path.exists():
            with np.load(path) as old:
                kept = {k: old[k] for k in old.files if k.split("|")[0] in names}
            arrays = {**kept, **arrays}
        np.savez_compressed(path, **arrays)
    index = {
        "norse": version,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cases": len(names),
        "families": sorted({case.family for case in reference_cases.CASES}),
    }
    (REFERENCES / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"recorded {len(cases)} cases into {REFERENCES}")


if __name__ == "__main__":
    main()
