"""Support for neuron models whose parameters or states nest other ones.

Refractory models wrap a base model: ``LIFRefracParameters(lif=LIFParameters(),
rho_reset=...)`` and ``LIFRefracState(lif=LIFState(...), rho=...)``. The generic forms of
:mod:`.snn` store flat parameter tuples; :class:`NestedNeuronModule` (a mixin placed
before the generic form, e.g. ``class LIFRefracCell(NestedNeuronModule, SNNCell)``) adds

* parameters whose nested tuples are child modules too, so every tensor moves with
  ``.to()`` and is saved in ``state_dict()`` (``p.lif.tau_mem_inv`` ...);
* validation of every level (``p.lif.tau_mem_inv`` must be positive ...), of the fields
  named in :attr:`~NestedNeuronModule.positive_parameters` and
  :attr:`~NestedNeuronModule.nonnegative_parameters`, and a clear error for
  ``method="adjoint"`` in models without adjoint gradients (those that have them list
  ``"adjoint"`` in ``extra_methods``);
* initial states for nested state tuples: :attr:`initial_values` may use dotted paths,
  e.g. ``{"lif.v": "lif.v_leak"}``.

Flat models may use the mixin too, for the extra checks.
"""

import typing
from typing import Any, Dict, NamedTuple, Sequence, Tuple

import torch

from norse.torch.functional.validation import describe, validate_parameters
from norse.torch.module.snn import NeuronParameters, track_rest_voltage


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def _is_namedtuple_type(kind: Any) -> bool:
    return (
        isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields")
    )


def _lookup(p: Any, path: str) -> Any:
    for part in path.split("."):
        p = getattr(p, part)
    return p


class NestedNeuronParameters(NeuronParameters):
    """:class:`.NeuronParameters` whose nested parameter tuples are child modules."""

    def __init__(self, p: NamedTuple):
        super().__init__(p)
        self._nested: Dict[str, str] = {}
        for field, value in zip(p._fields, p):
            if _is_namedtuple(value):
                name = field if not hasattr(torch.nn.Module, field) else f"p_{field}"
                self.add_module(name, NestedNeuronParameters(value))
                self._nested[field] = name

    def as_tuple(self) -> NamedTuple:
        """The parameters as the original (nested) ``NamedTuple``, holding live tensors."""
        flat = super().as_tuple()
        return flat._replace(
            **{
                field: self._modules[name].as_tuple()
                for field, name in self._nested.items()
            }
        )


def reject_adjoint(argument: str, model: str) -> None:
    """Raises a ``ValueError``: ``argument`` (e.g. ``"p.method='adjoint'"``) selects
    adjoint (EventProp) gradients in Norse 1.1, which ``model`` does not support yet."""
    raise ValueError(
        f"{argument} selects adjoint (EventProp) gradients, which {model} does not "
        f"support yet; use a surrogate gradient method such as 'super' "
        f"(backpropagation through time)"
    )


def _validate_tree(
    p: NamedTuple, dt: float, name: str, model: str, extra_methods: Sequence[str] = ()
) -> None:
    if getattr(p, "method", None) == "adjoint" and "adjoint" not in extra_methods:
        reject_adjoint(f"{name}.method='adjoint'", model)
    validate_parameters(p, dt, name, extra_methods)
    for field, value in zip(p._fields, p):
        if _is_namedtuple(value):
            _validate_tree(value, dt, f"{name}.{field}", model, extra_methods)


def _check_sign(p: NamedTuple, path: str, strict: bool) -> None:
    value = _lookup(p, path)
    tensor = torch.as_tensor(value).detach()
    if tensor.is_meta:
        return
    good = tensor > 0 if strict else tensor >= 0
    if not bool(torch.isfinite(tensor).all()) or not bool(good.all()):
        expected = "positive" if strict else "non-negative"
        raise ValueError(
            f"p.{path} must be {expected} and finite, got {describe(value)}"
        )


class NestedNeuronModule:
    """Mixin for the generic forms of :mod:`.snn`: nested parameters and states,
    recursive validation, dotted :attr:`initial_values` (see the module docstring)."""

    #: Parameter fields (dotted paths) that must be > 0, e.g. ``("delta_T",)``.
    positive_parameters: Sequence[str] = ()
    #: Parameter fields (dotted paths) that must be >= 0, e.g. ``("rho_reset",)``.
    nonnegative_parameters: Sequence[str] = ()

    def _set_neuron_parameters(self, p: Any) -> None:
        if not _is_namedtuple(p):
            raise TypeError(
                f"p must be a neuron parameter NamedTuple, got {type(p).__name__}"
            )
        self._check_parameter_structure(p)
        _validate_tree(
            p,
            self.__dict__.get("_dt", 0.001),
            "p",
            type(self).__name__,
            getattr(self, "extra_methods", ()),
        )
        for path in self.positive_parameters:
            _check_sign(p, path, strict=True)
        for path in self.nonnegative_parameters:
            _check_sign(p, path, strict=False)
        self.params = NestedNeuronParameters(p)
        if self.state_type is not None:
            self.__dict__["_state_plan"] = _state_plan(
                self.state_type, "", self.initial_values
            )

    def initial_state(self, input_tensor: torch.Tensor) -> Any:
        """The resting state for ``input_tensor``: zeros, except the (dotted) fields of
        :attr:`initial_values`, which start at their (dotted) parameter."""
        shape = self._state_shape(input_tensor)
        dtype = (
            input_tensor.dtype
            if input_tensor.is_floating_point()
            else torch.get_default_dtype()
        )
        return track_rest_voltage(
            _build_state(
                self.__dict__["_state_plan"], self.p, shape, dtype, input_tensor.device
            ),
            input_tensor,
            self,
        )


def _state_plan(state_type: type, prefix: str, initial_values: Dict[str, str]) -> Tuple:
    """How to build ``state_type``: per field, a nested plan, the path of the parameter it
    starts at, or ``None`` (zeros). Worked out once, outside any ``torch.compile`` trace
    (``typing.get_type_hints`` does not trace)."""
    hints = typing.get_type_hints(state_type)
    entries = []
    for field in state_type._fields:
        path = prefix + field
        kind = hints.get(field)
        if _is_namedtuple_type(kind):
            entries.append((field, _state_plan(kind, path + ".", initial_values)))
        elif path in initial_values:
            entries.append((field, tuple(initial_values[path].split("."))))
        else:
            entries.append((field, None))
    return state_type, tuple(entries)


def _build_state(
    plan: Tuple,
    p: Any,
    shape: Tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
) -> Any:
    state_type, entries = plan
    values = {}
    for field, source in entries:
        if source is None:
            values[field] = torch.zeros(shape, dtype=dtype, device=device)
        elif isinstance(source[0], type):
            values[field] = _build_state(source, p, shape, dtype, device)
        else:
            start = p
            for part in source:
                start = getattr(start, part)
            start = torch.as_tensor(start).detach()
            values[field] = start.to(device=device, dtype=dtype).expand(shape).clone()
    return state_type(**values)
