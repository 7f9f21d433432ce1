"""Checks of neuron parameters and states, done once per sequence or construction.

The step functions of :mod:`norse.torch.functional` (``lif_step``, ``lif_feed_forward_step``,
...) do **not** validate their arguments: they sit in the per-step hot loop, where a check
would cost on every step. The modules (:mod:`norse.torch.module`) call these helpers once
at their boundary (construction, parameter assignment, and each ``forward`` call before
the time loop). Code that calls the step functions directly can do the same, once, before
its own loop::

    from norse.torch.functional import lif_feed_forward_step, LIFParameters
    from norse.torch.functional.lif import LIFFeedForwardState
    from norse.torch.functional.validation import check_step_arguments

    p = LIFParameters()
    state = LIFFeedForwardState(v=torch.zeros(2, 3), i=torch.zeros(2, 3))
    check_step_arguments(x[0], state, p, dt=0.001, state_type=LIFFeedForwardState)
    for x_t in x:
        z, state = lif_feed_forward_step(x_t, state, p, dt=0.001)

Every error names the argument, what is expected and what was given.
"""

import math
import operator
import typing
import warnings
from typing import Any, NamedTuple, Optional, Sequence, Tuple

import torch

from norse.torch.functional.threshold import check_method


def describe(value: Any) -> str:
    """``value`` for an error message: a one-element tensor as its number, a larger one
    by its shape, anything else by its ``repr``."""
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, torch.Tensor):
        return f"{value.item():g}"
    return repr(value)


# --- arguments of encoders, decoders and layers (checked once per call) -----------------


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int`` (Python int, NumPy integer or integer 0-d tensor).

    Raises:
        TypeError: for other types (``bool`` and floats included), naming ``name``.
        ValueError: below ``minimum``.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must be an int, got {value!r}")
        value = int(value)
    kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
    if isinstance(value, bool):
        raise TypeError(f"{name} must be {kind}, got {value!r}")
    try:
        count = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be {kind}, got {type(value).__name__} {value!r}"
        ) from None
    if count < minimum:
        raise ValueError(f"{name} must be {kind}, got {count}")
    return count


def check_sequence(
    sequence: Any,
    name: str = "input_tensor",
    min_dim: int = 1,
    floating: bool = False,
) -> None:
    """Checks that ``sequence`` is a tensor with a time dimension first, ``(T, ...)``
    with ``T >= 1`` (``(T, batch, ...)`` for ``min_dim=2``), and with ``floating`` a
    floating-point one.

    Raises:
        TypeError: no tensor, or (``floating``) not a floating-point one; the message
            names ``name``.
        ValueError: fewer than ``min_dim`` dimensions (a scalar), or no time steps.
    """
    layout = "(T, batch, ...)" if min_dim > 1 else "(T, ...)"
    if not isinstance(sequence, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape {layout}, "
            f"got {type(sequence).__name__}"
        )
    if sequence.dim() < max(min_dim, 1) or sequence.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape {layout} with T >= 1 (a time dimension first), "
            f"got shape {tuple(sequence.shape)}"
        )
    if floating:
        check_input(sequence, name)


def check_shape(
    tensor: torch.Tensor, expected: Sequence[int], name: str, layout: str = ""
) -> None:
    """Raises a ``ValueError`` unless ``tensor`` has the shape ``expected``; the message
    names ``name``, the expected shape (after its symbolic ``layout``, e.g. ``"(T, T)"``,
    if given) and the shape given."""
    expected = tuple(expected)
    if tuple(tensor.shape) != expected:
        wanted = f"{layout} = {expected}" if layout else f"{expected}"
        raise ValueError(f"{name} must have shape {wanted}, got {tuple(tensor.shape)}")


def check_scalar(value: Any, name: str, like: torch.Tensor, why: str) -> torch.Tensor:
    """``value`` as a 0-dim tensor of the dtype and device of ``like``.

    Raises:
        ValueError: if ``value`` has more than one element; the message names ``name``
            and says ``why`` it must be a scalar (e.g. "for OTTT (...)").
    """
    value = torch.as_tensor(value).to(like)
    if value.numel() != 1:
        raise ValueError(
            f"{name} must be a scalar {why}, got shape {tuple(value.shape)}"
        )
    return value.reshape(())


def check_seq_length(seq_length: Any) -> int:
    """``seq_length``, the number of time steps of an encoder, as a positive ``int``
    (see :func:`check_count`)."""
    return check_count(seq_length, "seq_length (number of time steps)")


def check_dt(dt: Any) -> float:
    """``dt`` (a number or one-element tensor) as a positive, finite ``float``.

    Raises:
        TypeError: not a number.
        ValueError: not positive and finite.
    """
    if isinstance(dt, torch.Tensor) and dt.numel() == 1:
        dt = float(dt)
    if isinstance(dt, bool) or not isinstance(dt, (int, float)):
        raise TypeError(f"dt must be a positive float (seconds), got {dt!r}")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive, finite float (seconds), got {dt!r}")
    return float(dt)


def check_f_max(f_max: Any) -> None:
    """Checks a maximum spike rate ``f_max`` (Hz) of a rate code: a non-negative,
    finite number or tensor.

    Raises:
        TypeError: neither a real number nor a real tensor.
        ValueError: a negative, infinite or NaN entry.
    """
    if isinstance(f_max, torch.Tensor) and not f_max.is_complex():
        values = f_max.detach()
    elif isinstance(f_max, (int, float)) and not isinstance(f_max, bool):
        values = torch.as_tensor(float(f_max))
    else:
        raise TypeError(
            f"f_max must be a non-negative float (Hz) or tensor, got {f_max!r}"
        )
    if not bool((torch.isfinite(values) & (values >= 0)).all()):
        raise ValueError(
            f"f_max must be a non-negative, finite frequency (Hz), got {describe(f_max)}"
        )


def float_input(values: Any, name: str) -> torch.Tensor:
    """``values`` as a floating-point tensor: integer and boolean tensors are converted
    to the default floating dtype (Norse 1.1 accepts integer data), floating tensors
    keep theirs.

    Raises:
        TypeError: not a tensor, or a complex one (naming ``name``).
        ValueError: a NaN entry.
    """
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(values).__name__}")
    if values.is_complex():
        raise TypeError(f"{name} must be a real tensor, got dtype {values.dtype}")
    if not values.is_floating_point():
        values = values.to(torch.get_default_dtype())
    elif bool(torch.isnan(values).any()):
        raise ValueError(f"{name} contains NaN (got shape {tuple(values.shape)})")
    return values


def check_scale(scale: Any, label: str = "scale") -> torch.Tensor:
    """``scale`` (a number or tensor) as a tensor whose entries are all positive and
    finite.

    Raises:
        TypeError: neither a real number nor a real tensor (naming ``label``).
        ValueError: empty, or an entry that is not positive and finite.
    """
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float, torch.Tensor))
        or (isinstance(scale, torch.Tensor) and scale.is_complex())
    ):
        raise TypeError(f"{label} must be a positive number or tensor, got {scale!r}")
    tensor = torch.as_tensor(scale)
    if tensor.numel() == 0:
        raise ValueError(f"{label} must not be empty")
    if not bool((torch.isfinite(tensor) & (tensor > 0)).all()):
        raise ValueError(f"{label} must be positive and finite, got {describe(scale)}")
    return tensor


def validate_parameters(
    p: NamedTuple,
    dt: float = 0.001,
    name: str = "p",
    extra_methods: Sequence[str] = (),
) -> None:
    """Checks a neuron parameter tuple.

    * every ``tau_*_inv`` field is a number (inverse time constant, 1/s): NaN raises,
      negative or infinite values warn (Norse 1.1 accepts them), 0 means no decay;
    * ``method`` (if present) is a known surrogate or one of ``extra_methods``;
    * ``dt`` is a positive number;
    * warns when ``dt * tau_inv >= 1``: the explicit Euler step then overshoots and the
      dynamics oscillate or diverge; use a smaller ``dt`` or a slower time constant.

    Raises:
        ValueError: naming the field, what is expected and what was given.
        TypeError: for a field of the wrong type.
    """
    if isinstance(dt, torch.Tensor):
        dt = float(dt)
    if not isinstance(dt, (int, float)) or isinstance(dt, bool):
        raise TypeError(f"dt must be a positive float (seconds), got {dt!r}")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive, finite float (seconds), got {dt!r}")
    for field, value in zip(p._fields, p):
        if field == "method":
            if not isinstance(value, str):
                raise TypeError(f"{name}.method must be a str, got {value!r}")
            check_method(value, f"{name}.method", extra_methods)
            continue
        if _is_namedtuple(value):
            continue  # nested parameters: the caller validates each level
        if field == "reset_method":
            if not callable(value):
                raise TypeError(
                    f"{name}.reset_method must be a reset function such as "
                    f"reset_value or reset_subtract, got {value!r}"
                )
            continue
        if not field.startswith("tau_") or not field.endswith("_inv"):
            # alpha = 0 is a valid surrogate width (SuperSpike's derivative is then 1);
            # Norse 1.1 accepts it
            _check_number(value, f"{name}.{field}", nonnegative=field == "alpha")
            continue
        tensor = _parameter_tensor(
            value,
            f"{name}.{field}",
            "a float or tensor (inverse time constant in 1/s)",
        )
        if tensor is None:
            continue
        if bool(torch.isnan(tensor).any()):
            raise ValueError(
                f"{name}.{field} must be an inverse time constant (1/s), not NaN, "
                f"got {describe(value)}"
            )
        if not bool(torch.isfinite(tensor).all()) or bool((tensor < 0).any()):
            # Norse 1.1 accepts these (its own NIR tests import random negative time
            # constants), so they only warn; 0 (no decay) is an ordinary value.
            warnings.warn(
                f"{name}.{field} = {describe(value)}: a negative or infinite inverse "
                f"time constant makes the state grow without bound or the Euler step "
                f"diverge; a decay needs a positive, finite value (1/s)",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        if tensor.numel() == 0:
            continue  # per-neuron values of an empty layer; their shape is checked later
        largest = float(tensor.max()) * dt
        if largest >= 1.0:
            warnings.warn(
                f"dt * {name}.{field} = {largest:g} >= 1: the Euler step is unstable "
                f"(the state overshoots its fixed point); use dt < {1.0 / float(tensor.max()):g} s "
                f"or a smaller {field}",
                RuntimeWarning,
                stacklevel=3,
            )


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def _parameter_tensor(value: Any, name: str, expected: str) -> Optional[torch.Tensor]:
    """``value`` (a number or a real tensor) as a detached tensor, ``None`` for a meta
    tensor (no values to check); a ``TypeError`` saying ``expected`` otherwise."""
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must be a real tensor, got dtype {value.dtype}")
        return None if value.is_meta else value.detach()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.as_tensor(float(value))
    raise TypeError(
        f"{name} must be {expected}, got {type(value).__name__} ({value!r})"
    )


def _check_number(value: Any, name: str, nonnegative: bool = False) -> None:
    """A parameter value must be a real number or a real tensor without NaN (and >= 0,
    finite, if ``nonnegative``; infinite values are allowed otherwise, e.g.
    ``v_th=inf`` for a neuron that never fires)."""
    tensor = _parameter_tensor(value, name, "a number or a real tensor")
    if tensor is None:
        return
    if tensor.is_floating_point() and bool(torch.isnan(tensor).any()):
        raise ValueError(f"{name} must not be NaN, got {describe(value)}")
    if nonnegative and not (
        bool(torch.isfinite(tensor).all()) and bool((tensor >= 0).all())
    ):
        raise ValueError(
            f"{name} must be non-negative and finite, got {describe(value)}"
        )


def _fields_of(kind: type) -> str:
    return ", ".join(kind._fields)


def _a(name: str) -> str:
    return f"{'an' if name[:1] in 'AEIOU' else 'a'} {name}"


def check_parameter_type(p: Any, expected: type, name: str = "p") -> None:
    """Raises a ``TypeError`` unless ``p`` is a ``NamedTuple`` with the fields of the
    parameter type ``expected`` (nested parameter tuples are compared level by level).

    Another model's parameters (``LIParameters`` given to a LIF layer) would otherwise
    fail with an ``AttributeError`` deep inside the step, or be read silently.
    """
    if not _is_namedtuple(p):
        raise TypeError(
            f"{name} must be {_a(expected.__name__)} (a NamedTuple with the fields "
            f"{_fields_of(expected)}), got {type(p).__name__}"
        )
    if tuple(p._fields) != tuple(expected._fields):
        raise TypeError(
            f"{name} must be {_a(expected.__name__)} with the fields "
            f"{_fields_of(expected)}, got {type(p).__name__} with the fields "
            f"{_fields_of(type(p))}"
        )
    hints = typing.get_type_hints(expected)
    for field, value in zip(p._fields, p):
        kind = hints.get(field)
        if (
            isinstance(kind, type)
            and issubclass(kind, tuple)
            and hasattr(kind, "_fields")
        ):
            check_parameter_type(value, kind, f"{name}.{field}")


ParameterShapes = Tuple[Tuple[str, Tuple[int, ...], torch.dtype, torch.device], ...]


def parameter_shapes(p: Any, name: str = "p") -> ParameterShapes:
    """``(name, shape, dtype, device)`` of every tensor in ``p`` (nested tuples included)
    with at least one dimension: the per-neuron parameters that must broadcast to the
    state shape. Worked out once when the parameters are set."""
    found = []
    for field, value in zip(p._fields, p):
        if _is_namedtuple(value):
            found.extend(parameter_shapes(value, f"{name}.{field}"))
        elif isinstance(value, torch.Tensor) and value.dim() > 0:
            found.append(
                (f"{name}.{field}", tuple(value.shape), value.dtype, value.device)
            )
    return tuple(found)


def broadcasts_into(shape: Sequence[int], target: Sequence[int]) -> bool:
    """Whether a tensor of ``shape`` broadcasts to ``target`` without enlarging it."""
    shape, target = tuple(shape), tuple(target)
    if len(shape) > len(target):
        return False
    # == rather than `in`: under torch.compile with dynamic shapes a size is symbolic,
    # and only a comparison becomes a guard
    return all(s == 1 or s == t for s, t in zip(reversed(shape), reversed(target)))


def check_parameter_shapes(
    shapes: ParameterShapes,
    state_shape: Sequence[int],
    dtype: Optional[torch.dtype] = None,
    device: Optional[torch.device] = None,
) -> None:
    """Raises a ``ValueError`` for a per-neuron parameter (from :func:`parameter_shapes`)
    that does not broadcast to ``state_shape`` without enlarging it: a parameter of shape
    ``(2, 1, 3)`` would silently turn a ``(2, 3)`` state into ``(2, 2, 3)``. With
    ``dtype``, floating parameters must also have that dtype (``TypeError``); with
    ``device``, be on that device (``ValueError``; shared, 0-d parameters may stay on the
    CPU, as PyTorch allows)."""
    state_shape = tuple(state_shape)
    for label, shape, kind, where in shapes:
        if device is not None and where != device:
            raise ValueError(
                f"{label} is on device {where} but the input is on {device}; move the "
                f"module with .to({str(device)!r})"
            )
        if not broadcasts_into(shape, state_shape):
            raise ValueError(
                f"{label} has shape {shape}, which does not broadcast to the state "
                f"shape {state_shape} (per-neuron parameters must have the shape of "
                f"the state or broadcast to it, e.g. (hidden_size,))"
            )
        if dtype is not None and kind.is_floating_point and kind != dtype:
            raise TypeError(
                f"{label} has dtype {kind} but the input and weights have {dtype}; "
                f"convert the module with .to({dtype})"
            )


def check_tensors_match(
    input_tensor: torch.Tensor, tensors: Sequence[Tuple[str, torch.Tensor]]
) -> None:
    """Raises a ``TypeError`` (dtype) or ``ValueError`` (device) unless every named
    tensor (weights, coupling matrices) has the dtype and device of ``input_tensor``,
    which a matrix product with the input needs."""
    for label, tensor in tensors:
        if tensor.dtype != input_tensor.dtype:
            raise TypeError(
                f"input_tensor has dtype {input_tensor.dtype} but {label} has "
                f"{tensor.dtype}; convert the input (e.g. .to({tensor.dtype})) or the "
                f"module (e.g. .to({input_tensor.dtype}))"
            )
        if tensor.device != input_tensor.device:
            raise ValueError(
                f"input_tensor is on device {input_tensor.device} but {label} is on "
                f"{tensor.device}; move one of them (module.to(device))"
            )


def check_tensor(value: Any, name: str) -> None:
    """Raises ``TypeError`` unless ``value`` is a :class:`torch.Tensor`."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")


def check_input(
    input_tensor: Any, name: str = "input_tensor", min_dim: int = 0
) -> None:
    """Raises ``TypeError`` unless ``input_tensor`` is a floating-point tensor with at
    least ``min_dim`` dimensions (``ValueError`` for too few dimensions)."""
    check_tensor(input_tensor, name)
    if not input_tensor.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor, got dtype {input_tensor.dtype} "
            f"(convert spikes with .float())"
        )
    if input_tensor.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimension(s) "
            f"({'time first: (T, batch, ...)' if min_dim else ''}), "
            f"got shape {tuple(input_tensor.shape)}"
        )


def check_state(
    state: Any,
    expected_type: type,
    shape: Sequence[int],
    reference: torch.Tensor,
    name: str = "state",
) -> None:
    """Checks that ``state`` is a ``expected_type`` whose tensors have ``shape`` (or are
    scalars), a floating dtype and the device of ``reference``.

    A state of another batch size would otherwise broadcast silently (or fail deep inside
    the step); this names the field and both shapes instead.
    """
    if not isinstance(state, tuple) or not hasattr(state, "_fields"):
        raise TypeError(
            f"{name} must be a {expected_type.__name__} (or None), got {type(state).__name__}"
        )
    if tuple(state._fields) != tuple(expected_type._fields):
        raise TypeError(
            f"{name} must be a {expected_type.__name__} with fields {expected_type._fields}, "
            f"got {type(state).__name__} with fields {state._fields}"
        )
    shape = tuple(shape)
    for field, value in zip(state._fields, state):
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{name}.{field} must be a torch.Tensor, got {type(value).__name__}"
            )
        if value.dim() != 0 and tuple(value.shape) != shape:
            raise ValueError(
                f"{name}.{field} has shape {tuple(value.shape)} but the input needs "
                f"{shape} (a state from another batch size or layer?)"
            )
        if value.device != reference.device:
            raise ValueError(
                f"{name}.{field} is on {value.device} but the input is on {reference.device}"
            )
        if value.is_floating_point() != reference.is_floating_point():
            raise TypeError(
                f"{name}.{field} has dtype {value.dtype}, expected a floating-point dtype "
                f"like the input ({reference.dtype})"
            )


def check_step_arguments(
    input_tensor: Any,
    state: Any,
    p: NamedTuple,
    dt: float = 0.001,
    state_type: Optional[type] = None,
    parameter_type: Optional[type] = None,
    extra_methods: Sequence[str] = (),
) -> None:
    """All the checks a module does at its boundary, for code that calls a functional
    step function (e.g. :func:`~norse.torch.functional.lif.lif_feed_forward_step`)
    directly: call it once before the loop, not on every step.

    Checks that ``input_tensor`` is a floating-point tensor, the parameters (every
    level, see :func:`validate_parameters`; against ``parameter_type`` if given), that
    per-neuron parameters broadcast to the input's shape and, with ``state_type``, that
    ``state`` is that state type with tensors of the input's shape and device.
    """
    check_input(input_tensor)
    if parameter_type is not None:
        check_parameter_type(p, parameter_type)
    _validate_parameter_tree(p, dt, "p", extra_methods)
    check_parameter_shapes(
        parameter_shapes(p), input_tensor.shape, device=input_tensor.device
    )
    if state_type is not None:
        check_state(state, state_type, input_tensor.shape, input_tensor)


def _validate_parameter_tree(
    p: NamedTuple, dt: float, name: str, extra_methods: Sequence[str]
) -> None:
    if not _is_namedtuple(p):
        raise TypeError(
            f"{name} must be a parameter NamedTuple, got {type(p).__name__}"
        )
    validate_parameters(p, dt, name, extra_methods)
    for field, value in zip(p._fields, p):
        if _is_namedtuple(value):
            _validate_parameter_tree(value, dt, f"{name}.{field}", extra_methods)
