"""Opt-in detection of NaN and Inf in neuron states, at the step where they appear.

A diverging simulation (an unstable ``dt``, an exploding weight, a ``log(0)`` upstream)
usually surfaces much later as a NaN loss. With anomaly detection on, every neuron module
of :mod:`norse.torch.module.snn` checks its output and state after each time step and
raises :class:`AnomalyError` at the first non-finite value, naming the module, the time
step, the state field and whether the input of that step was already non-finite::

    import norse.torch as norse
    from norse.torch.utils.anomaly import detect_anomaly

    with detect_anomaly():
        spikes, state = norse.LIF()(x)   # AnomalyError: LIF: state.v is not finite ...

or, for a whole run, ``NORSE_ANOMALY=1 python train.py``.

Off (the default), it costs one boolean test per step: the checks themselves (a
reduction and a device synchronisation per state tensor and step) run only when on.
While on, the time modules run their reference per-step loop instead of fused kernels,
so that the step of the first bad value is known. Use it for debugging, in eager mode;
inside ``torch.compile`` the checks cause graph breaks.

``enabled`` reads the current setting (as :func:`is_anomaly_enabled`); switch it with
:func:`detect_anomaly`, :func:`set_detect_anomaly` or ``NORSE_ANOMALY``. The
implementation lives with the neuron modules that run the checks
(``norse.torch.module.anomaly``).
"""

from norse.torch.module import anomaly as _implementation
from norse.torch.module.anomaly import (
    AnomalyError,
    check_step,
    detect_anomaly,
    is_anomaly_enabled,
    named_tensors,
    set_detect_anomaly,
)

__all__ = [
    "AnomalyError",
    "check_step",
    "detect_anomaly",
    "is_anomaly_enabled",
    "named_tensors",
    "set_detect_anomaly",
]


def __getattr__(name: str):
    # The switch is a variable of the implementation that set_detect_anomaly rebinds:
    # read it there on each access.
    if name == "enabled":
        return _implementation.enabled
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), "enabled"])
