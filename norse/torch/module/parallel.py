r"""Time-parallel forms of the time modules.

* ``LI(parallel=...)`` and ``LIBox(parallel=...)`` run the leaky integrators by parallel
  scans (:mod:`norse.torch.functional.parallel_scan`): ``True`` always, ``False`` never,
  ``None`` (the default) where measured faster than what would run otherwise (see
  :func:`scan_preferred`).
* :class:`LIFFixedPoint`: a feed-forward LIF layer whose voltage, reset included, runs in
  parallel over time by fixed-point iteration of the spike train
  (:mod:`norse.torch.functional.lif_fixed_point`); it records the iterations it needed.
"""

import math
from typing import Any, Callable, Optional, Tuple

import torch

from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    lif_feed_forward_step,
)
from norse.torch.functional.lif_fixed_point import (
    check_deterministic_method,
    lif_feed_forward_fixed_point,
)
from norse.torch.functional.validation import check_count, check_sequence
from norse.torch.fused import registry
from norse.torch.module import anomaly
from norse.torch.module.snn import SNN, spikes_as_float

#: The automatic rule's bounds (``benchmarks/parallel_scan.py``, CPU, 1 thread; see
#: benchmarks/RESULTS.md): where no fused kernel serves the call, the scan beat the
#: reference loop, forward and backward, from this many steps (the shortest measured) ...
AUTO_MIN_STEPS = 100
#: ... for at most this many values per step (batch x neurons) ...
AUTO_MAX_NEURONS = 1024
#: ... and at most this many values in the whole sequence (T x batch x neurons): beyond,
#: the scan's levels move more memory than the loop's steps cost.
AUTO_MAX_VALUES = 2**20
#: The dtypes of the fused CPU kernels (see :mod:`norse.torch.fused.generate`).
_FUSED_CPU_DTYPES = (torch.float32, torch.float64)


def check_parallel(parallel: Optional[bool]) -> Optional[bool]:
    """``parallel`` validated: ``True``, ``False`` or ``None`` (automatic)."""
    if parallel is not None and not isinstance(parallel, bool):
        raise TypeError(
            f"parallel must be True, False or None (automatic), got {parallel!r}"
        )
    return parallel


def scan_preferred(module: SNN, input_tensor: Any, state: Optional[Any] = None) -> bool:
    """Whether the time module ``module`` (with a ``parallel`` attribute) runs this call
    by its parallel scan.

    ``parallel=True``: always (dense input). ``parallel=False``: never. ``None``: on the
    CPU, where no fused kernel serves the call (a fused kernel was faster at every size
    measured) and the reference loop would run instead, when ``T >= AUTO_MIN_STEPS``,
    a step has at most ``AUTO_MAX_NEURONS`` values and the sequence at most
    ``AUTO_MAX_VALUES`` (there the scan beat the loop); never inside
    ``reference_only()``, with ``NORSE_FUSED=0`` or in anomaly mode.
    CUDA and other devices keep their kernels or loop (not measured).
    """
    parallel = module.parallel
    if parallel is False:
        return False
    dense = (
        isinstance(input_tensor, torch.Tensor)
        and input_tensor.layout == torch.strided
        and input_tensor.dim() >= 1
    )
    if parallel is True:
        if not dense:
            raise TypeError(
                f"parallel=True needs a dense input tensor (T, ...), got "
                f"{type(input_tensor).__name__}"
                + (
                    f" with layout {input_tensor.layout}"
                    if isinstance(input_tensor, torch.Tensor)
                    else ""
                )
            )
        return True
    if (
        not dense
        or input_tensor.device.type != "cpu"
        or not input_tensor.is_floating_point()
    ):
        return False
    if (
        input_tensor.shape[0] < AUTO_MIN_STEPS
        or anomaly.enabled
        or not registry.enabled()
    ):
        return False
    neurons = math.prod(input_tensor.shape[1:])
    if neurons > AUTO_MAX_NEURONS or neurons * input_tensor.shape[0] > AUTO_MAX_VALUES:
        return False
    if registry.backend_available("cpu") and input_tensor.dtype in _FUSED_CPU_DTYPES:
        # The fused CPU kernels take float32/float64 (norse.torch.fused.generate): asking
        # the registry on every call would cost more than the rare miss
        return False
    start = state
    if start is None:
        start = registry.Rest(
            module.state_type, module.initial_values, module.state_fallback
        )
    # as the time module asks (with dt: a kernel generated from the step counts too)
    kernel = registry.find(
        module.activation,
        module.p,
        input_tensor,
        start,
        module.record_states,
        dt=module.dt,
    )
    return kernel is None


def scan_forward(
    module: SNN, scan: Callable, input_tensor: torch.Tensor, state: Optional[Any]
) -> Tuple[torch.Tensor, Any]:
    """``module``'s time-module call by the functional scan ``scan(input, state, p, dt,
    record_states)``, with the module's input, parameter and state checks."""
    input_tensor = spikes_as_float(input_tensor)
    state = module._resolve_state(input_tensor, state, 1)
    check_sequence(input_tensor)
    return scan(input_tensor, state, module.p, module.dt, module.record_states)


def _fixed_point_step(
    input_tensor: torch.Tensor,
    state: LIFFeedForwardState,
    p: LIFParameters,
    dt: float,
) -> Tuple[torch.Tensor, LIFFeedForwardState]:
    """:func:`~norse.torch.functional.lif.lif_feed_forward_step` under a name of its own:
    the step that :class:`LIFFixedPoint` solves for, whose time module is not LIF's (no
    fused kernel takes it; the results agree up to rounding, not bit for bit)."""
    return lif_feed_forward_step(input_tensor, state, p, dt)


class LIFFixedPoint(SNN):
    """A feed-forward LIF layer *with* time, run in parallel over time by fixed-point
    iteration of the spike train (input ``(T, batch, ...)``).

    The result equals :class:`~norse.torch.module.lif.LIF` once converged (the default
    ``max_iterations=None`` allows ``T`` iterations, which always suffice), and so
    does the gradient (the surrogate gradient of the sequential model, computed by a
    reverse scan); see :mod:`norse.torch.functional.lif_fixed_point`. After each call,
    :attr:`iterations` holds the number of iterations and :attr:`converged` whether the
    spike trains reached their fixed point.

    Parameters:
        p (LIFParameters): neuron parameters; ``method`` a deterministic surrogate
        dt (float): time step (s), default 0.001
        record_states (bool): return the states of all time steps
        max_iterations (int): iteration limit, default ``T``

    Example:
        >>> import torch, norse.torch as norse
        >>> layer = norse.LIFFixedPoint()
        >>> spikes, state = layer(torch.full((50, 2, 3), 0.3))
        >>> layer.converged, layer.iterations > 0
        (True, True)
    """

    state_type = LIFFeedForwardState
    initial_values = {"v": "v_leak"}

    def __init__(
        self,
        p: LIFParameters = LIFParameters(),
        dt: float = 0.001,
        record_states: bool = False,
        max_iterations: Optional[int] = None,
    ):
        super().__init__(
            activation=_fixed_point_step,
            state_fallback=None,
            p=p,
            dt=dt,
            record_states=record_states,
        )
        if max_iterations is not None:
            max_iterations = check_count(max_iterations, "max_iterations")
        check_deterministic_method(self.p.method)
        self.max_iterations = max_iterations
        #: Iterations of the last call (0 before the first).
        self.iterations = 0
        #: Whether the last call converged.
        self.converged = False

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, max_iterations={self.max_iterations}"

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[LIFFeedForwardState] = None
    ) -> Tuple[torch.Tensor, LIFFeedForwardState]:
        def scan(x, start, p, dt, record_states):
            spikes, final, info = lif_feed_forward_fixed_point(
                x, start, p, dt, self.max_iterations, record_states
            )
            self.iterations, self.converged = info.iterations, info.converged
            return spikes, final

        return scan_forward(self, scan, input_tensor, state)
