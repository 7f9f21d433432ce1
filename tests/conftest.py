"""Suite-wide set-up.

Triton reads ``TRITON_INTERPRET`` when it is first imported, and other tests (e.g.
``torch.compile``) may import it before the CUDA-kernel tests run; without a GPU the
kernels can only run in the interpreter, so enable it before anything imports Triton.
"""

import collections
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_terminal_summary(terminalreporter):
    """Prints how many inputs the fuzz tests tried, in all and per file. A fuzz test
    records them as the user property ``fuzz_inputs`` (and those that gave a result
    rather than a clear ValueError/TypeError as ``fuzz_results``); this also works
    with xdist."""
    tried, results = collections.Counter(), collections.Counter()
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", "") != "teardown":
                continue
            path = report.nodeid.split("::")[0]
            for key, value in getattr(report, "user_properties", ()):
                if key == "fuzz_inputs":
                    tried[path] += value
                elif key == "fuzz_results":
                    results[path] += value
    if not tried:
        return
    line = f"fuzzing: {sum(tried.values())} inputs tried"
    if results:
        line += f" ({sum(results.values())} gave a result)"
    terminalreporter.write_line(line)
    for path, count in sorted(tried.items()):
        extra = f", {results[path]} gave a result" if path in results else ""
        terminalreporter.write_line(f"  {path}: {count}{extra}")
