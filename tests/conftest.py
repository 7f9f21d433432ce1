"""Suite-wide set-up.

Triton reads ``TRITON_INTERPRET`` when it is first imported, and other tests (e.g.
``torch.compile``) may import it before the CUDA-kernel tests run; without a GPU the
kernels can only run in the interpreter, so enable it before anything imports Triton.

The ``fuzz`` fixture is the toolkit of the fuzz tests (hypothesis): it runs a call and
accepts only a result or a ``ValueError``/``TypeError`` with a message, draws
arguments that are mostly valid, and counts the inputs; the counts are printed at the
end of the run.
"""

import collections
import os
import warnings
from typing import Any, Callable, Dict, Set, Tuple

import pytest
import torch
from hypothesis import HealthCheck, settings

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _restore_deterministic_algorithms():
    """A task run with ``--deterministic`` switches PyTorch's deterministic mode on for
    the process; it must not leak into the tests that follow in the same worker."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


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
    terminalreporter.write_line(f"fuzzing: {sum(tried.values())} inputs tried")
    for path, count in sorted(tried.items()):
        extra = f", {results[path]} gave a result" if path in results else ""
        terminalreporter.write_line(f"  {path}: {count}{extra}")


class Fuzzer:
    """Runs fuzz inputs and counts them (per kind, and those that gave a result)."""

    #: Values that are no tensor, array or number.
    NOT_NUMBERS = (None, "abc", [1.0, 2.0], {"x": 1}, True, object())
    #: Non-finite and huge values placed into tensors.
    SPECIALS = (float("nan"), float("inf"), float("-inf"), 1e30, -1e30)

    def __init__(self) -> None:
        self.tried: collections.Counter = collections.Counter()
        self.results: collections.Counter = collections.Counter()

    def call(
        self,
        kind: str,
        function: Callable,
        *args: Any,
        expect_result: bool = False,
        **kwargs: Any,
    ) -> Any:
        """``function(*args, **kwargs)``, or None after a ``ValueError``/``TypeError``
        with a message; any other exception fails the test, and so does any exception
        at all with ``expect_result`` (every argument was valid)."""
        self.tried[kind] += 1
        accepted = () if expect_result else (ValueError, TypeError)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = function(*args, **kwargs)
            except accepted as error:
                assert str(error), f"{type(error).__name__} without a message"
                return None
        self.results[kind] += 1
        return result

    @staticmethod
    def arguments(data: Any, spec: Dict[str, Tuple[Any, Any]]) -> Tuple[dict, Set[str]]:
        """Keyword arguments from ``spec = {name: (valid, invalid strategy)}`` and the
        names drawn invalid: half of the draws are all valid, the others break one
        argument (sometimes two)."""
        from hypothesis import strategies as st

        names = list(spec)
        broken = {data.draw(st.one_of(st.none(), st.sampled_from(names)))} - {None}
        if data.draw(st.integers(0, 4)) == 0:
            broken.add(data.draw(st.sampled_from(names)))
        arguments = {
            name: data.draw(invalid if name in broken else valid)
            for name, (valid, invalid) in spec.items()
        }
        return arguments, broken

    def tensors(self, min_dims=0, max_dims=4, sizes=(0, 4), dtypes=None, scale=1.0):
        """A strategy for tensors of random shape, dtype and content, sometimes with
        NaN, Inf or huge values."""
        from hypothesis import strategies as st

        dtypes = dtypes or (
            torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8,
            torch.bool, torch.complex64,
        )  # fmt: skip

        @st.composite
        def draw_tensor(draw):
            dims = draw(st.integers(min_dims, max_dims))
            shape = [draw(st.integers(*sizes)) for _ in range(dims)]
            dtype = draw(st.sampled_from(dtypes))
            generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
            values = scale * (2 * torch.rand(shape, generator=generator) - 0.5)
            if values.numel() and draw(st.integers(0, 3)) == 0:
                index = draw(st.integers(0, values.numel() - 1))
                values.view(-1)[index] = draw(st.sampled_from(self.SPECIALS))
            if dtype.is_floating_point or dtype.is_complex:
                return values.to(dtype)
            values = (values * 100).nan_to_num(0.0, 100.0, -100.0).clamp(-100, 100)
            return values.to(dtype)

        return draw_tensor()


#: The hypothesis settings of the fuzz test files, which set their own ``max_examples``:
#: ``settings(settings.get_profile("fuzz"), max_examples=N)``. Derandomized, so that a
#: run of the suite tries the same inputs every time.
settings.register_profile(
    "fuzz",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_FUZZER = Fuzzer()


@pytest.fixture(scope="session")
def fuzz() -> Fuzzer:
    """The fuzz tests' toolkit (see the module documentation)."""
    return _FUZZER


@pytest.fixture(autouse=True)
def _record_fuzz_inputs(request):
    """Records the inputs a test tried with ``fuzz`` (for the summary below)."""
    tried, results = sum(_FUZZER.tried.values()), sum(_FUZZER.results.values())
    yield
    if sum(_FUZZER.tried.values()) > tried:
        request.node.user_properties.append(
            ("fuzz_inputs", sum(_FUZZER.tried.values()) - tried)
        )
        request.node.user_properties.append(
            ("fuzz_results", sum(_FUZZER.results.values()) - results)
        )


@pytest.fixture
def recorded_ops():
    """A context manager that records the names of the operators dispatched inside it
    (``with recorded_ops() as ops: ...; ops.names``): what tracing and dispatch modes
    see."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class RecordedOps(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    return RecordedOps
