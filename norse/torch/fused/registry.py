"""Which step functions have a fused multi-step kernel, and for which configurations.

A *factory* is registered per step function. Given the parameters, the input
``(T, ...)``, the initial state and ``record_states``, it returns a kernel
``(input, state, p, dt, record_states) -> (outputs, state)`` when it supports the
configuration (device, dtype, surrogate method, ...) or ``None``. The model files never
import this module; the generic time modules do.

Recurrent steps (``(input, state, input_weights, recurrent_weights, p, dt)``, e.g.
:func:`~norse.torch.functional.lsnn.lsnn_step`) need the weights too: the recurrent time
module passes ``weights=(input_weights, recurrent_weights)`` (the effective recurrent
weights, autapses masked) to :func:`find`, which hands them to the factory as extra
positional arguments; the kernel it returns is called as ``kernel(input, state, p, dt,
record_states, input_weights, recurrent_weights)`` (see :mod:`.recurrent`).
"""

import contextlib
import importlib
import os
import types
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import torch

Kernel = Callable[[torch.Tensor, Any, Any, float, bool], Any]


class Rest:
    """The resting state of a feed-forward time module, not built yet.

    Passed to :func:`find` and to the kernel in place of a state when the module starts
    from rest with its own :meth:`initial_state`: a kernel that supports it needs no
    state tensors (every field starts at zero, except those of ``initial_values``,
    which start at the parameter they name, e.g. ``{"v": "v_leak"}``); any other use
    calls ``build(input_tensor)`` (the module's ``initial_state``). Factories that do
    not know it return ``None`` (``isinstance(state, state_type)`` fails).
    """

    __slots__ = ("state_type", "initial_values", "build")

    def __init__(
        self,
        state_type: type,
        initial_values: Dict[str, str],
        build: Callable[[torch.Tensor], Any],
    ):
        self.state_type = state_type
        self.initial_values = initial_values
        self.build = build


Factory = Callable[[Any, torch.Tensor, Any, bool], Optional[Kernel]]

_FACTORIES: Dict[Callable, List[Factory]] = {}
_forced_reference = 0
_generated_only = 0


def plain_eager() -> bool:
    """Whether PyTorch runs in plain eager mode: nothing traces the operations
    (:func:`torch.compile`, :func:`torch.jit.trace` or ``script``), no ``torch.func``
    transform or dispatch mode sees them. Only then may a fast path run code that is no
    PyTorch operator (NumPy views of tensors, Numba kernels)."""
    return not (
        torch.compiler.is_compiling()
        or torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch._C._are_functorch_transforms_active()
        or torch._C._len_torch_dispatch_stack() > 0
    )


def register(step_function: Callable, factory: Factory) -> None:
    """Registers ``factory`` as a fused implementation of ``step_function``."""
    _FACTORIES.setdefault(step_function, []).append(factory)


def enabled() -> bool:
    """False inside :func:`reference_only` or when ``NORSE_FUSED=0``."""
    return _forced_reference == 0 and os.environ.get("NORSE_FUSED", "1") != "0"


def find(
    step_function: Callable,
    p: Any,
    input_tensor: torch.Tensor,
    state: Any,
    record_states: bool,
    weights: Sequence[torch.Tensor] = (),
    dt: Optional[float] = None,
) -> Optional[Kernel]:
    """The first registered kernel that supports this configuration, else (given
    ``dt``) one generated from the step function itself (:mod:`.generate`; recurrent
    steps: :mod:`.generate.recurrent`), or ``None``.

    ``weights``: for recurrent steps, ``(input_weights, recurrent_weights)``, passed on
    to the factories (see the module doc)."""
    if not enabled():
        return None
    for factory in () if _generated_only else _FACTORIES.get(step_function, ()):
        kernel = factory(p, input_tensor, state, record_states, *weights)
        if kernel is not None:
            return kernel
    if dt is None or not isinstance(dt, (int, float)):
        return None
    if weights:
        from norse.torch.fused.generate import recurrent

        return recurrent.kernel_for(
            step_function, p, input_tensor, state, record_states, tuple(weights), dt
        )
    from norse.torch.fused import generate

    return generate.kernel_for(
        step_function, p, input_tensor, state, record_states, float(dt)
    )


@contextlib.contextmanager
def reference_only() -> Iterator[None]:
    """Runs the reference per-step loop inside the ``with`` block (no fused kernels)."""
    global _forced_reference
    _forced_reference += 1
    try:
        yield
    finally:
        _forced_reference -= 1


@contextlib.contextmanager
def generated_only() -> Iterator[None]:
    """Skips the registered (hand-written) kernels inside the ``with`` block: the
    kernels generated from the step functions run where they can, else the reference
    loop. For comparing the two, as ``benchmarks/`` does."""
    global _generated_only
    _generated_only += 1
    try:
        yield
    finally:
        _generated_only -= 1


#: The module whose import makes the fused kernels of a device type usable: the Numba
#: kernels (Numba and llvmlite) on the CPU, Triton on CUDA.
_BACKEND_MODULES = {"cpu": "norse.torch.fused.cpu", "cuda": "triton"}
_BACKEND_PACKAGES = {"cpu": "numba", "cuda": "triton"}


_AVAILABLE: Dict[str, bool] = {}


def backend_available(device_type: str) -> bool:
    """Whether the fused kernels of ``device_type`` (``"cpu"``, ``"cuda"``) can run.

    A backend that is missing or broken (not installed, or failing to import with this
    NumPy, PyTorch or driver) is reported once, with a ``RuntimeWarning`` naming the
    cause; every layer then runs the reference step loop, which gives the same results,
    only slower. :func:`torch.compile` cannot trace the import: a graph compiled before
    any eager call assumes the backend (the kernels' operator imports it when it runs).
    """
    available = _AVAILABLE.get(device_type)
    if available is None:
        if torch.compiler.is_compiling():
            return device_type in _BACKEND_MODULES
        available = _AVAILABLE[device_type] = _load_backend(device_type)
    return available


_CPU_KERNEL_MODULES: Dict[str, Optional[types.ModuleType]] = {}


def cpu_kernel_module(name: str) -> Optional[types.ModuleType]:
    """The Numba kernel module ``norse.torch.fused.<name>`` (e.g. ``"cpu_linear"``,
    ``"cpu_pool"``), imported on the first call, or ``None`` when the CPU kernels cannot
    run (:func:`backend_available`). The answer is kept: the layers ask on every call."""
    try:
        return _CPU_KERNEL_MODULES[name]
    except KeyError:
        module = None
        if backend_available("cpu"):
            module = importlib.import_module(f"norse.torch.fused.{name}")
        _CPU_KERNEL_MODULES[name] = module
        return module


def _load_backend(device_type: str) -> bool:
    module = _BACKEND_MODULES.get(device_type)
    if module is None:
        return False
    try:
        importlib.import_module(module)
    except Exception as error:  # ImportError, or any failure while loading
        package = _BACKEND_PACKAGES[device_type]
        warnings.warn(
            f"norse: the fused {device_type.upper()} kernels are unavailable "
            f"({type(error).__name__}: {error}); layers run the reference step loop "
            f"instead (same results, slower). Install or repair {package} "
            f"(pip install {package}) for the fast path.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True
