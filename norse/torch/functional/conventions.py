"""The conventions that every neuron model of :mod:`norse.torch.functional` follows,
stated once, and the helpers that write them into the models' docstrings.

Units
    Times are in seconds, inverse time constants (``tau_*_inv``) in 1/s and ``dt`` is
    the length of one explicit Euler step.

Feed-forward steps
    ``model_feed_forward_step(input_tensor, state, p, dt)``: ``input_tensor`` is the
    input current of this step (e.g. the output of a ``Linear`` or ``Conv2d``), of any
    shape ``(...)``, and the tensors of ``state`` have that shape too.

Recurrent steps
    ``model_step(input_tensor, state, input_weights, recurrent_weights, p, dt)``: the
    input is ``(batch, input_size)``, the state tensors are ``(batch, hidden_size)`` and
    the current jumps by ``input_tensor @ input_weights.T + state.z @
    recurrent_weights.T`` (``state.z`` holds the spikes of the previous step).

Results
    A step returns the spikes of the step (of the state's shape) and the new state, a
    tuple of the same type as ``state``; the ``*_integral`` functions run a step over
    the first (time) dimension of their input (:func:`integrate`).

The decorators :func:`documented_fields` (parameter and state tuples) and
:func:`step_arguments` (step functions) append the ``Parameters:`` (and ``Returns:``)
sections that follow from these conventions to a docstring at import time, so that
:func:`help` and the API reference show them while each model's source states only its
equations and what is particular to it.
"""

import inspect
import re
import textwrap
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

import torch

T = TypeVar("T")

#: The meaning of the fields that the parameter and state tuples share.
FIELDS: Dict[str, str] = {
    # parameters
    "tau_syn_inv": r"inverse synaptic time constant :math:`1/\tau_{syn}` (1/s)",
    "tau_mem_inv": r"inverse membrane time constant :math:`1/\tau_{mem}` (1/s)",
    "v_leak": "leak (resting) potential",
    "v_th": "threshold potential",
    "v_reset": "reset potential",
    "method": "surrogate gradient method, see :mod:`.threshold`",
    "alpha": "surrogate gradient sharpness",
    "delta_T": "sharpness of the exponential spike initiation (> 0)",
    "rho_reset": "refractory period in time steps (>= 0); default 5",
    # states
    "z": "spikes of the previous step (fed back through the recurrent weights)",
    "v": "membrane potential",
    "i": "synaptic input current",
    "a": "adaptation current",
    "rho": "remaining refractory steps",
}


def _type_name(annotation: Any) -> str:
    """How an annotation reads in a docstring: ``torch.Tensor``, ``float``, a class name."""
    if annotation is torch.Tensor:
        return "torch.Tensor"
    if isinstance(annotation, type):
        return annotation.__name__
    if getattr(annotation, "_name", None) == "Callable":
        return "Callable"  # the argument types are in the description
    return str(annotation).replace("typing.", "")


def _annotations(cls: Any) -> Dict[str, Any]:
    """The field annotations of a tuple class, those of its bases included (the tuple
    base of a :class:`.StateTuple` holds them)."""
    annotations: Dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        annotations.update(inspect.get_annotations(base))
    return annotations


def _append(obj: Any, sections: List[str]) -> None:
    """Appends ``sections`` (blocks of text) to the docstring of ``obj``, before a
    closing ``Raises:`` section if it has one."""
    doc = inspect.cleandoc(obj.__doc__) if obj.__doc__ else ""
    head, raises, tail = doc.partition("\nRaises:\n")
    parts = [head.rstrip()] if head else []
    closing = ["Raises:\n" + tail] if raises else []
    obj.__doc__ = "\n\n".join(parts + sections + closing)


def _wrap(text: str, indent: str, hanging: str = "    ") -> str:
    """``text`` filled to the width of the source (88 columns), the first line indented
    by ``indent`` and the others by ``hanging`` more; no line breaks inside a literal
    or a role (```` ``x y`` ````, ```:math:`x y```).
    """
    protected = re.sub(
        r"``[^`]*``|`[^`]*`", lambda m: m.group(0).replace(" ", "\0"), text
    )
    lines = textwrap.wrap(
        protected,
        width=88,
        initial_indent=indent,
        subsequent_indent=indent + hanging,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join(lines).replace("\0", " ")


def _section(title: str, entries: List[Tuple[str, str, str]]) -> str:
    """A Google-style section: ``title:`` and one ``name (type): text`` entry each."""
    lines = [f"{title}:"]
    lines += [_wrap(f"{name} ({kind}): {text}", "    ") for name, kind, text in entries]
    return "\n".join(lines)


def documented_fields(**descriptions: str) -> Callable[[T], T]:
    """Class decorator for a parameter or state ``NamedTuple``: appends a ``Parameters:``
    section with one line a field, in field order, typed by the field's annotation.

    A field is described by ``descriptions[name]`` where given, else by :data:`FIELDS`;
    a field in neither is an error (raised at import time).

    Example::

        @documented_fields(beta="threshold increase per spike; default 1.8")
        class LSNNParameters(NamedTuple):
            \"\"\"Parameters of an LSNN neuron.\"\"\"

            tau_syn_inv: torch.Tensor = torch.as_tensor(1.0 / 5e-3)
            beta: torch.Tensor = torch.as_tensor(1.8)
    """

    def decorate(cls: T) -> T:
        annotations = _annotations(cls)
        entries = []
        for name in cls._fields:
            text = descriptions.get(name, FIELDS.get(name))
            if text is None:
                raise TypeError(f"{cls.__name__}.{name} has no description")
            entries.append((name, _type_name(annotations.get(name, Any)), text))
        _append(cls, [_section("Parameters", entries)])
        return cls

    return decorate


def _field_paths(state: Any, prefix: str = "") -> List[str]:
    """The tensor fields of a state tuple, nested tuples spelled out (``lif.v``)."""
    paths = []
    annotations = _annotations(state)
    for name in state._fields:
        inner = annotations.get(name)
        if isinstance(inner, type) and hasattr(inner, "_fields"):
            paths += _field_paths(inner, f"{prefix}{name}.")
        else:
            paths.append(f"{prefix}{name}")
    return paths


def _state_text(state: Any, shape: str) -> str:
    """``z``, ``v``, ``i`` of shape ``(...)`` for a state tuple class."""
    fields = ", ".join(f"``{path}``" for path in _field_paths(state))
    return f"{fields} of shape ``{shape}``"


def step_arguments(
    *,
    shape: Optional[str] = None,
    output: Optional[str] = None,
    returns: Optional[str] = None,
    over_time: Optional[bool] = None,
    sparse: Optional[bool] = None,
    adjoint: Optional[bool] = None,
    **descriptions: str,
) -> Callable[[T], T]:
    """Decorator for a step function: appends the ``Parameters:`` and ``Returns:``
    sections that follow from the conventions of this module to its docstring.

    The kind of step is read from its signature and its name (Norse's naming): a step
    with ``input_weights`` is a layer, its input ``(batch, input_size)`` and its state
    ``(batch, hidden_size)``, otherwise input and state have any shape ``(...)``; a
    name ending in ``_integral`` runs the step over time, one ending in ``_sparse``
    takes sparse input, and one with ``adjoint`` in it computes adjoint gradients (the
    flags below, where given, say otherwise). The standard arguments (``input_tensor``,
    ``input_spikes`` or ``input_current``, ``state``, ``input_weights``,
    ``recurrent_weights``, ``g_coupling``, ``p``, ``dt``; also ``input`` and ``s``, the
    names of some Norse 1.1 steps) are described by the
    conventions, the state by the names of its fields; any other argument, or one
    described differently, takes its text from ``descriptions`` (an argument described
    nowhere is an error, raised at import time).

    Parameters:
        shape (str): the shape of the state and of the returned spikes, if not the
            default of the step's kind
        output (str): what the step returns first, if not ``"Spikes"`` (``"Sparse
            (COO) spikes"`` with ``sparse``), e.g. ``"The new voltage"``
        returns (str): the whole ``Returns:`` text, if not ``output`` of ``shape`` and
            the new state
        over_time (bool): the function runs the step over a sequence: input and
            output have a first (time) dimension ``T``, and it returns the final state
        sparse (bool): the step takes sparse (COO) input (a layer; a feed-forward
            step takes either) and, unless ``output`` says otherwise, returns sparse
            spikes
        adjoint (bool): the step computes adjoint (EventProp) gradients, so the
            surrogate ``method`` of its parameters is ignored
        descriptions (str): the text of an argument, by name
    """

    def decorate(function: T) -> T:
        signature = inspect.signature(function)
        step = function.__name__
        over_time_ = step.endswith("_integral") if over_time is None else over_time
        sparse_ = step.endswith("_sparse") if sparse is None else sparse
        adjoint_ = "adjoint" in step if adjoint is None else adjoint
        layer = "input_weights" in signature.parameters
        state_shape = shape or ("(batch, hidden_size)" if layer else "(...)")
        standard = {
            "input_weights": "input weights of shape ``(hidden_size, input_size)``",
            "recurrent_weights": "recurrent weights of shape "
            "``(hidden_size, hidden_size)``",
            "g_coupling": "compartment coupling ``"
            + ("(hidden_size, hidden_size)" if layer else "(n, n)")
            + "`` (1/s), see :mod:`.lif_mc`",
            "p": "neuron parameters",
            "dt": "integration step (s)",
        }
        time = "T, " if over_time_ else ""
        for name in ("input_tensor", "input_spikes", "input_current"):
            standard[name] = (
                f"input of shape ``({time}batch, input_size)``"
                if layer
                else f"input current of shape ``({time}{state_shape[1:]}``"
            )
            if sparse_:
                standard[name] = (
                    f"sparse (COO) {standard[name]}"
                    if layer
                    else f"{standard[name]}, sparse (COO) or dense"
                )
        first = output or ("Sparse (COO) spikes" if sparse_ else "Spikes")
        standard["input"] = standard["input_tensor"]
        if adjoint_:
            parameters = signature.parameters["p"].annotation
            method = [
                f for f in _field_paths(parameters) if f.split(".")[-1] == "method"
            ]
            standard["p"] += f" (``{method[0]}`` is ignored)"
        entries = []
        for name, parameter in signature.parameters.items():
            annotation = parameter.annotation
            text = descriptions.get(name, standard.get(name))
            if text is None and name in ("state", "s"):
                text = _state_text(annotation, state_shape)
            if text is None:
                raise TypeError(f"{function.__name__}: {name} has no description")
            entries.append((name, _type_name(annotation), text))
        result = returns
        if result is None:
            new_state = signature.return_annotation.__args__[-1].__name__
            result = (
                f"{first} of shape ``({time}{state_shape[1:]}`` and the "
                f"{'final' if over_time_ else 'new'} :class:`{new_state}`."
            )
        returned = "Returns:\n" + _wrap(" ".join(result.split()), "    ", "")
        _append(function, [_section("Parameters", entries), returned])
        return function

    return decorate


def integrate(
    step: Callable[..., Tuple[torch.Tensor, Any]],
    input_tensor: torch.Tensor,
    state: Any,
    *arguments: Any,
) -> Tuple[torch.Tensor, Any]:
    """Runs ``step(input, state, *arguments)`` over the first (time) dimension of
    ``input_tensor``, threading the state.

    Returns:
        The outputs of every step stacked along a new first dimension, and the final
        state.
    """
    outputs = []
    for input_step in input_tensor:
        output, state = step(input_step, state, *arguments)
        outputs.append(output)
    return torch.stack(outputs), state
