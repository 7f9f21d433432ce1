"""The catalogue of neuron modules shared by the cross-cutting tests (properties,
fuzzing, gradient checks): every public module of :mod:`norse.torch` built on the generic
forms of :mod:`norse.torch.module.snn`, found by introspection, so that a new model is
covered without editing the tests.

Tests ask for

* ``neuron_class``: parametrised over every neuron module class;
* ``time_class``: over the time modules (``SNN`` and ``SNNRecurrent`` forms);
* ``neuron_pair``: over ``(cell class, time class)`` pairs that run the same step
  function (``LIFCell``/``LIF``, ``LIFRecurrentCell``/``LIFRecurrent``, ...);
* ``neurons``: the helpers below (build a module, list its parameters, ...).
"""

import inspect
from types import SimpleNamespace
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import pytest
import torch

import norse.torch as norse
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell
from norse.torch.utils.anomaly import named_tensors

GENERIC = (SNNCell, SNN, SNNRecurrentCell, SNNRecurrent)
#: Models whose output is a voltage, not spikes.
NON_SPIKING = ("LI", "LICell", "LIBox", "LIBoxCell")
#: Input current that makes every model fire within a few steps (Izhikevich needs more
#: drive: its default behaviour integrates 0.25 ms per 1 ms step of ``dt``).
DRIVE = {"Izhikevich": 100.0, "CobaLIF": 40.0}


def neuron_classes() -> List[type]:
    """Every neuron module class exported by ``norse.torch``, sorted by name."""
    found = []
    for name in sorted(dir(norse)):
        cls = getattr(norse, name)
        if inspect.isclass(cls) and issubclass(cls, GENERIC) and cls not in GENERIC:
            found.append(cls)
    return found


def is_recurrent(cls: type) -> bool:
    return issubclass(cls, (SNNRecurrentCell, SNNRecurrent))


def has_time(cls: type) -> bool:
    return issubclass(cls, (SNN, SNNRecurrent))


def is_spiking(cls: type) -> bool:
    return cls.__name__ not in NON_SPIKING


def drive(cls: type) -> float:
    """An input scale at which ``cls`` fires (see :data:`DRIVE`)."""
    for prefix, value in DRIVE.items():
        if cls.__name__.startswith(prefix):
            return value
    return 10.0


def build(
    cls: type,
    features: int = 3,
    hidden: int = 4,
    p: Optional[NamedTuple] = None,
    dtype: torch.dtype = torch.float32,
    positive_weights: bool = False,
    **kwargs: Any,
) -> torch.nn.Module:
    """An instance of ``cls`` for inputs with ``features`` features (recurrent forms:
    ``hidden`` neurons), converted to ``dtype``. ``positive_weights`` gives recurrent
    forms input weights in [0.5, 1] (so that a positive input drives every neuron)."""
    arguments: Dict[str, Any] = dict(kwargs)
    if cls.__name__.startswith("Izhikevich"):
        behaviour = norse.tonic_spiking
        if p is not None:
            behaviour = behaviour._replace(p=p)
        arguments["spiking_method"] = behaviour
    elif p is not None:
        arguments["p"] = p
    if cls.__name__.startswith("LIFMC") and not is_recurrent(cls):
        arguments.setdefault("g_coupling", torch.full((features, features), 0.1))
    if is_recurrent(cls):
        if positive_weights:
            generator = torch.Generator().manual_seed(features * 31 + hidden)
            arguments.setdefault(
                "input_weights",
                0.5 + 0.5 * torch.rand(hidden, features, generator=generator),
            )
        module = cls(features, hidden, **arguments)
    else:
        module = cls(**arguments)
    return module.to(dtype)


def state_shape(cls: type, batch: Tuple[int, ...], features: int, hidden: int):
    return (*batch, hidden if is_recurrent(cls) else features)


def default_parameters(cls: type) -> NamedTuple:
    """The parameters ``cls`` is built with by default."""
    return build(cls).p


def lookup(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = getattr(value, part)
    return value


def replace(p: NamedTuple, path: str, value: Any) -> NamedTuple:
    """``p`` with the (dotted) field ``path`` set to ``value``."""
    head, _, rest = path.partition(".")
    if not rest:
        return p._replace(**{head: value})
    return p._replace(**{head: replace(getattr(p, head), rest, value)})


def numeric_fields(p: NamedTuple, prefix: str = "") -> List[str]:
    """Dotted names of the tensor and number fields of (nested) parameters."""
    found = []
    for field, value in zip(p._fields, p):
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            found.extend(numeric_fields(value, f"{prefix}{field}."))
        elif isinstance(value, (torch.Tensor, int, float)) and not isinstance(
            value, bool
        ):
            found.append(prefix + field)
    return found


def neuron_pairs() -> List[Tuple[type, type]]:
    """``(cell, time module)`` pairs of the same model and connectivity: matched by the
    state type and the step function of default instances."""

    def key(cls):
        module = build(cls)
        activation = getattr(module.activation, "__func__", module.activation)
        return (is_recurrent(cls), cls.state_type, activation)

    times = {key(cls): cls for cls in neuron_classes() if has_time(cls)}
    return [
        (cls, times[key(cls)])
        for cls in neuron_classes()
        if not has_time(cls) and key(cls) in times
    ]


def pytest_generate_tests(metafunc):
    if "neuron_class" in metafunc.fixturenames:
        classes = neuron_classes()
        metafunc.parametrize("neuron_class", classes, ids=[c.__name__ for c in classes])
    if "time_class" in metafunc.fixturenames:
        classes = [cls for cls in neuron_classes() if has_time(cls)]
        metafunc.parametrize("time_class", classes, ids=[c.__name__ for c in classes])
    if "neuron_pair" in metafunc.fixturenames:
        pairs = neuron_pairs()
        metafunc.parametrize(
            "neuron_pair", pairs, ids=[f"{a.__name__}-{b.__name__}" for a, b in pairs]
        )


@pytest.fixture(scope="session")
def neurons():
    """The catalogue helpers (see the module docstring)."""
    return SimpleNamespace(
        classes=neuron_classes,
        pairs=neuron_pairs,
        build=build,
        is_recurrent=is_recurrent,
        has_time=has_time,
        is_spiking=is_spiking,
        drive=drive,
        state_shape=state_shape,
        default_parameters=default_parameters,
        leaves=named_tensors,
        lookup=lookup,
        replace=replace,
        numeric_fields=numeric_fields,
    )


@pytest.fixture
def counted_calls(monkeypatch):
    """``count(owner, name)`` replaces ``owner.name`` for the test by a wrapper that
    records the positional arguments of every call, then makes it; returns the list
    (``calls=``: a list to record into, shared by several counted functions)."""

    def count(owner, name, calls=None):
        calls = [] if calls is None else calls
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            calls.append(args)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)
        return calls

    return count


@pytest.fixture
def event_driven_calls(counted_calls):
    """The calls of the event-driven product of ``spike_linear`` (counted, then run):
    the reference's (index tensors) and the CPU kernels' in one list."""
    from norse.torch.functional import sparse
    from norse.torch.fused import spike_linear

    calls = counted_calls(sparse, "_event_driven")
    return counted_calls(spike_linear, "_event_driven", calls)
