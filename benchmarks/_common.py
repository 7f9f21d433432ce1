"""Helpers shared by the benchmark scripts.

The scripts import this module as ``_common``: a script run as ``python
benchmarks/<name>.py`` has this folder first on ``sys.path``, and so do the worker
processes the scripts start (with this interpreter or another one, such as Norse 1.1's),
since they run the script file itself. It imports nothing but the standard library, so
that it loads in any of those interpreters.

Not part of the test suite.
"""

import argparse
import ctypes
import gc
import json
import os
import sys
import time


def status_kib(field: str) -> int:
    """A field of ``/proc/self/status`` in KiB (``VmRSS``: the resident set now,
    ``VmHWM``: its peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def trim() -> None:
    """Frees what Python and glibc hold but do not use, so that a measurement of the
    resident set starts from the live memory (``malloc_trim`` is glibc's; elsewhere
    only the garbage collector runs)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def resident_growth(function) -> tuple:
    """``(MiB, seconds)``: how far the peak of the resident set rises above the resident
    set at the start while ``function()`` runs, and how long it runs (Linux)."""
    trim()
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM (the peak) to the current resident set
    baseline = status_kib("VmRSS")
    start = time.perf_counter()
    function()
    seconds = time.perf_counter() - start
    return (status_kib("VmHWM") - baseline) / 1024, seconds


def add_norse11_option(parser: argparse.ArgumentParser) -> None:
    """``--norse11-python``: the interpreter whose workers measure Norse 1.1."""
    parser.add_argument(
        "--norse11-python",
        default=os.environ.get("NORSE11_PYTHON", ""),
        help="interpreter of a venv with norse==1.1.0 (default: $NORSE11_PYTHON; "
        "skipped when not given)",
    )


def worker_interpreters(norse11_python: str, *local: str) -> list:
    """``[(interpreter, implementation)]``: each of ``local`` with this interpreter, then
    ``norse11`` with ``norse11_python`` where that file exists."""
    chosen = [(sys.executable, impl) for impl in local]
    if norse11_python and os.path.exists(norse11_python):
        chosen.append((norse11_python, "norse11"))
    return chosen


def parse_driver_or_serve(
    parser: argparse.ArgumentParser, worker, *local: str
) -> tuple:
    """Adds ``--norse11-python`` and parses the command line. In a worker process
    (``--impl`` given) prints ``worker(args)`` as JSON and exits; in the driver returns
    ``(args, worker_interpreters(args.norse11_python, *local))``."""
    add_norse11_option(parser)
    args = parser.parse_args()
    if args.impl is not None:
        print(json.dumps(worker(args)))
        sys.exit(0)
    return args, worker_interpreters(args.norse11_python, *local)
