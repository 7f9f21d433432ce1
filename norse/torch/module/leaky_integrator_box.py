r"""Box leaky integrator layers: voltage driven directly by the input (no current state).

Equations: :mod:`norse.torch.functional.leaky_integrator_box`.
"""

from norse.torch.functional.leaky_integrator_box import (
    LIBoxParameters,
    LIBoxState,
    li_box_feed_forward_step,
)
from norse.torch.functional.parallel_scan import li_box_feed_forward_scan
from norse.torch.module.binding import NeuronModel, Step
from norse.torch.module.leaky_integrator import ParallelScanOption

_li_box = NeuronModel(
    LIBoxParameters(),
    feed_forward=Step(li_box_feed_forward_step, LIBoxState),
    initial_values={"v": "v_leak"},
)


class LIBoxCell(_li_box.Cell):
    """One Euler step of a box leaky integrator; input and voltage ``(batch, ...)``."""


class LIBox(ParallelScanOption, _li_box.SNN):
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

    scan = staticmethod(li_box_feed_forward_scan)
