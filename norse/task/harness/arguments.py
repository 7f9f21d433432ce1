"""Command-line options of the tasks: the parser, the options every task shares, and
range checks.

Each check exits like argparse on a usage error (exit status 2, usage and message on
stderr), naming the option as it is spelled on the command line, what it must be and
the given value. NaN and infinity are outside every range (``type=float`` accepts
them). Counts and sizes must be "a positive int" and rates, time steps and time
constants "a positive, finite number": the wording of the data sets' argument checks.
"""

import argparse
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

_POSITIVE_INT = "a positive int"
_POSITIVE_INTS = "positive ints"
_POSITIVE_NUMBER = "a positive, finite number"


def task_parser(module: str, description: str) -> argparse.ArgumentParser:
    """The argument parser of ``python -m module`` (defaults shown in ``--help``)."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def add_option(parser: argparse.ArgumentParser, *names: str, **kwargs: Any) -> None:
    """``parser.add_argument`` that also accepts each ``--snake_case`` option spelled
    ``--kebab-case`` (Norse 1.1's tasks use underscores, many tools dashes)."""
    dashed = tuple(name.replace("_", "-") for name in names if "_" in name)
    parser.add_argument(*names, *dashed, **kwargs)


def add_run_options(parser: argparse.ArgumentParser, output: str) -> None:
    """The options every task shares: ``--seed``, ``--device``, ``--threads``,
    ``--deterministic``, ``--output`` (default ``output``), ``--resume``,
    ``--no_progress`` and ``--no_plots``."""
    add_option(parser, "--seed", type=int, default=0)
    add_option(parser, "--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    add_option(
        parser,
        "--threads",
        type=int,
        default=1,
        help="CPU threads (small per-step products run fastest on one)",
    )
    add_option(parser, "--deterministic", action="store_true")
    add_option(
        parser, "--output", type=Path, default=Path(output), help="output folder"
    )
    add_option(
        parser,
        "--resume",
        action="store_true",
        help="continue from OUTPUT/checkpoint.pt",
    )
    add_option(parser, "--no_progress", action="store_true", help="no progress bars")
    add_option(parser, "--no_plots", action="store_true", help="skip the PNG plots")


def check_run_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> None:
    """Checks the options of :func:`add_run_options`: ``--threads`` a positive int,
    ``--seed`` in [0, 2**64) (seeds feed ``numpy.random.SeedSequence`` and
    ``torch.manual_seed``) and ``--device``."""
    require_positive(parser, args, "threads")
    require_range(parser, args, "seed", 0, 2**64 - 1)
    require_device(parser, args)


def option_name(parser: argparse.ArgumentParser, dest: str) -> str:
    """The command-line spelling (``--batch_size`` or ``--batch-size``) of the option
    stored in ``args.<dest>``."""
    for action in parser._actions:
        if action.dest == dest and action.option_strings:
            return action.option_strings[0]
    return "--" + dest


def _fail(
    parser: argparse.ArgumentParser, name: str, expected: str, value: Any
) -> None:
    parser.error(f"{option_name(parser, name)} must be {expected}, got {value}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return _is_int(value) or bool(np.isfinite(value))


def require_positive(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str
) -> None:
    """Exits with a usage error naming the first option in ``names`` that is not a
    positive int (counts and sizes; every value of an option that takes several)."""
    for name in names:
        value = getattr(args, name)
        if isinstance(value, (list, tuple)):
            if not all(_is_int(v) and v >= 1 for v in value):
                _fail(parser, name, _POSITIVE_INTS, list(value))
        elif not (_is_int(value) and value >= 1):
            _fail(parser, name, _POSITIVE_INT, value)


def require_positive_finite(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str
) -> None:
    """Exits with a usage error naming the first option in ``names`` that is not a
    finite number > 0 (for rates, time steps, time constants, learning rates)."""
    for name in names:
        value = getattr(args, name)
        if not (_is_finite(value) and value > 0):
            _fail(parser, name, _POSITIVE_NUMBER, value)


def _interval(
    low: Optional[float], high: Optional[float], open_low: bool, open_high: bool
) -> str:
    def number(x: float) -> str:
        return str(x) if isinstance(x, int) else f"{x:g}"

    if high is None:
        return f"{'>' if open_low else '>='} {number(low)}"
    if low is None:
        return f"{'<' if open_high else '<='} {number(high)}"
    left, right = "(" if open_low else "[", ")" if open_high else "]"
    return f"in {left}{number(low)}, {number(high)}{right}"


def require_range(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    name: str,
    low: Optional[float] = None,
    high: Optional[float] = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
    reason: str = "",
) -> None:
    """Exits with a usage error unless ``args.<name>`` is a finite number between
    ``low`` and ``high`` (included unless ``open_low``/``open_high``; None: no bound);
    ``reason`` (e.g. ``"1 / --dt: at most one spike per step"``) is added to the message.

    Example: ``require_range(parser, args, "gamma", 0, 1, open_low=True)`` accepts
    ``--gamma`` in (0, 1]."""
    value = getattr(args, name)
    inside = (
        _is_finite(value)
        and (low is None or (value > low if open_low else value >= low))
        and (high is None or (value < high if open_high else value <= high))
    )
    if not inside:
        because = f" ({reason})" if reason else ""
        _fail(parser, name, _interval(low, high, open_low, open_high) + because, value)


def require_non_negative(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str
) -> None:
    """Exits with a usage error naming the first option in ``names`` that is not a
    finite number >= 0 (for counts where 0 means "all" or "none", penalty factors)."""
    for name in names:
        require_range(parser, args, name, 0)


def require_probability(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str
) -> None:
    """Exits with a usage error naming the first option in ``names`` outside [0, 1]
    (probabilities, fractions, accuracies, label smoothing)."""
    for name in names:
        require_range(parser, args, name, 0, 1)


def require_method(
    parser: argparse.ArgumentParser, args: argparse.Namespace, name: str = "method"
) -> None:
    """Exits with a usage error unless ``args.<name>`` is a threshold method of
    :data:`norse.torch.functional.threshold.METHODS` (``super``, ``triangle``, ...)."""
    from norse.torch.functional.threshold import METHODS

    value = getattr(args, name)
    if value not in METHODS:
        _fail(parser, name, f"one of {', '.join(METHODS)}", repr(value))


def require_device(
    parser: argparse.ArgumentParser, args: argparse.Namespace, name: str = "device"
) -> None:
    """Exits with a usage error unless ``args.<name>`` is ``auto`` or a device name
    that ``torch.device`` understands (``cpu``, ``cuda``, ``cuda:1``, ...)."""
    value = getattr(args, name)
    if value == "auto":
        return
    try:
        torch.device(value)
    except (RuntimeError, ValueError):
        _fail(parser, name, "auto, cpu, cuda or cuda:N", repr(value))
