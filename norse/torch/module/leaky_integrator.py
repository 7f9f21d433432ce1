r"""Leaky integrator (LI) layers: non-spiking read-outs whose output is the voltage.

Equations: :mod:`norse.torch.functional.leaky_integrator`.
"""

from typing import Any, Callable, Optional, Tuple

import torch

from norse.torch.functional.leaky_integrator import (
    LIParameters,
    LIState,
    li_feed_forward_step,
    li_step,
)
from norse.torch.functional.parallel_scan import li_feed_forward_scan
from norse.torch.functional.sparse import column_major
from norse.torch.fused.spike_linear import spike_linear_unchecked
from norse.torch.module.binding import NeuronModel, Step
from norse.torch.module.neuron import NeuronModule
from norse.torch.module.parallel import check_parallel, scan_forward, scan_preferred
from norse.torch.module.snn import _LayerSizes

_li = NeuronModel(
    LIParameters(),
    feed_forward=Step(li_feed_forward_step, LIState),
    initial_values={"v": "v_leak"},
)


class ParallelScanOption:
    """The ``parallel`` argument of the leaky integrator time modules: their sequences
    run by the exact parallel scan :attr:`scan` where chosen (see
    :func:`~norse.torch.module.parallel.scan_preferred`), else by the fused kernel or
    the reference loop of :class:`.SNN`."""

    #: ``(input, state, p, dt) -> (voltages, state)`` over a whole sequence
    scan: Callable

    def __init__(self, *args: Any, parallel: Optional[bool] = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.parallel = check_parallel(parallel)

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[Any] = None
    ) -> Tuple[torch.Tensor, Any]:
        if scan_preferred(self, input_tensor, state):
            return scan_forward(self, type(self).scan, input_tensor, state)
        return super().forward(input_tensor, state)


class LICell(_li.Cell):
    """One Euler step of a leaky integrator: input current ``(batch, ...)`` to
    voltage."""


class LI(ParallelScanOption, _li.SNN):
    """A leaky integrator layer *with* time: input ``(T, batch, ...)``, voltages out.

    Parameters:
        p (LIParameters): parameters
        dt (float): time step (s), default 0.001
        record_states (bool): return the states of all time steps
        parallel (bool): run the sequence by parallel scans
            (:func:`~norse.torch.functional.parallel_scan.li_feed_forward_scan`):
            ``True`` always, ``False`` never, ``None`` (default) where measured faster
            (:func:`~norse.torch.module.parallel.scan_preferred`)
    """

    scan = staticmethod(li_feed_forward_scan)


class LILinearCell(_LayerSizes, NeuronModule):
    """A leaky integrator behind a linear synapse (*without* time).

    Parameters:
        input_size (int): number of input features
        hidden_size (int): number of integrators
        p (LIParameters): parameters
        dt (float): time step (s), default 0.001

    Shapes: input ``(batch, input_size)``; voltage and state ``(batch, hidden_size)``.
    The weights start as :math:`\\mathcal{N}(0, 1/\\text{input\\_size})`, stored
    column-major so that spike input with low activity takes the event-driven product
    (:func:`~norse.torch.fused.spike_linear.spike_linear`).
    """

    state_type = LIState
    initial_values = {"v": "v_leak"}
    dtype_bound_tensors = ("input_weights",)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIParameters = LIParameters(),
        dt: float = 0.001,
    ):
        super().__init__()
        self._setup_sizes(input_size, hidden_size)
        # Norse 1.1's values (same random draw), stored column-major.
        self.input_weights = torch.nn.Parameter(
            column_major(
                torch.randn(self.hidden_size, self.input_size) / self.input_size**0.5
            )
        )
        self._setup(li_step, None, p, dt, None)

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[LIState] = None
    ) -> Tuple[torch.Tensor, LIState]:
        state = self._resolve_state(input_tensor, state, 1)
        # li_step with the weight product of the fast path (the CPU kernels for sparse
        # spikes): li_step adds input @ W.T to the current, as li_feed_forward_step
        # adds its input.
        current = spike_linear_unchecked(input_tensor, self.input_weights)
        return li_feed_forward_step(current, state, self.p, self.dt)
