r"""Box leaky integrator layers: voltage driven directly by the input (no current state).

Equations: :mod:`norse.torch.functional.leaky_integrator_box`.
"""

from typing import Optional, Tuple

import torch

from norse.torch.functional.leaky_integrator_box import (
    LIBoxParameters,
    LIBoxState,
    li_box_feed_forward_step,
)
from norse.torch.functional.parallel_scan import li_box_feed_forward_scan
from norse.torch.module.parallel import check_parallel, scan_forward, scan_preferred
from norse.torch.module.snn import SNN, SNNCell


class LIBoxCell(SNNCell):
    """One Euler step of a box leaky integrator; input and voltage ``(batch, ...)``.

    Parameters:
        p (LIBoxParameters): parameters
        dt (float): time step (s), default 0.001
    """

    state_type = LIBoxState
    initial_values = {"v": "v_leak"}

    def __init__(self, p: LIBoxParameters = LIBoxParameters(), **kwargs):
        super().__init__(
            activation=li_box_feed_forward_step, state_fallback=None, p=p, **kwargs
        )


class LIBox(SNN):
    """A box leaky integrator layer *with* time: input ``(T, batch, ...)``.

    Parameters:
        p (LIBoxParameters): parameters
        dt (float): time step (s), default 0.001
        record_states (bool): return the states of all time steps
        parallel (bool): run the sequence by a parallel scan
            (:func:`~norse.torch.functional.parallel_scan.li_box_feed_forward_scan`):
            ``True`` always, ``False`` never, ``None`` (default) where measured faster
            (:func:`~norse.torch.module.parallel.scan_preferred`)
    """

    state_type = LIBoxState
    initial_values = {"v": "v_leak"}

    def __init__(
        self,
        p: LIBoxParameters = LIBoxParameters(),
        *,
        parallel: Optional[bool] = None,
        **kwargs,
    ):
        super().__init__(
            activation=li_box_feed_forward_step, state_fallback=None, p=p, **kwargs
        )
        self.parallel = check_parallel(parallel)

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[LIBoxState] = None
    ) -> Tuple[torch.Tensor, LIBoxState]:
        if scan_preferred(self, input_tensor, state):
            return scan_forward(self, li_box_feed_forward_scan, input_tensor, state)
        return super().forward(input_tensor, state)
