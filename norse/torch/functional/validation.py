"""Checks of neuron parameters and states, done once per sequence or construction.

The step functions themselves do not validate (they sit in the hot loop); modules call
these helpers at their boundary.
"""

import math
import warnings
from typing import Any, NamedTuple, Sequence

import torch

from norse.torch.functional.threshold import check_method


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return f"{value.item():g}"
        return f"tensor of shape {tuple(value.shape)}"
    return repr(value)


def validate_parameters(
    p: NamedTuple,
    dt: float = 0.001,
    name: str = "p",
    extra_methods: Sequence[str] = (),
) -> None:
    """Checks a neuron parameter tuple.

    * every ``tau_*_inv`` field is finite and strictly positive (inverse time constant, 1/s);
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
        if not field.startswith("tau_") or not field.endswith("_inv"):
            continue
        if isinstance(value, torch.Tensor):
            tensor = value.detach()
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            tensor = torch.as_tensor(float(value))
        else:
            raise TypeError(
                f"{name}.{field} must be a float or tensor (inverse time constant "
                f"in 1/s), got {type(value).__name__}"
            )
        if tensor.is_meta:
            continue
        if not bool(torch.isfinite(tensor).all()) or not bool((tensor > 0).all()):
            raise ValueError(
                f"{name}.{field} must be a positive, finite inverse time constant "
                f"(1/s), got {_describe(value)}"
            )
        largest = float(tensor.max()) * dt
        if largest >= 1.0:
            warnings.warn(
                f"dt * {name}.{field} = {largest:g} >= 1: the Euler step is unstable "
                f"(the state overshoots its fixed point); use dt < {1.0 / float(tensor.max()):g} s "
                f"or a smaller {field}",
                RuntimeWarning,
                stacklevel=3,
            )


def check_input(
    input_tensor: Any, name: str = "input_tensor", min_dim: int = 0
) -> None:
    """Raises ``TypeError`` unless ``input_tensor`` is a floating-point tensor with at
    least ``min_dim`` dimensions (``ValueError`` for too few dimensions)."""
    if not isinstance(input_tensor, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(input_tensor).__name__}"
        )
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
