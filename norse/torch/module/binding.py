"""One declarative binding per neuron model, from which its module forms follow.

A neuron model is defined once, in :mod:`norse.torch.functional`: a parameter
``NamedTuple``, a state ``NamedTuple`` per form and a step function with the equations.
:class:`NeuronModel` binds them to the generic forms of :mod:`.snn`; each form is then a
one-line class with its docstring (the arguments and shapes are appended to it). A
complete binding is ``norse/torch/module/lif_ex.py``; the docs page "Adding a neuron model"
walks through one.

The four bases (:attr:`NeuronModel.Cell`, :attr:`~NeuronModel.SNN`,
:attr:`~NeuronModel.RecurrentCell`, :attr:`~NeuronModel.Recurrent`) take the arguments of
Norse 1.1's model classes: ``(p=<default parameters>, dt=0.001, ...)`` for the
feed-forward forms and ``(input_size, hidden_size, p=<default parameters>, ...)`` for the
recurrent ones; everything else (checks, initial states, the fused kernels, the time
loop) is the generic forms' work.
"""

import inspect
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence

from norse.torch.module._adjoint import AdjointSelection
from norse.torch.module.nested import NestedNeuronModule
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell


class Step(NamedTuple):
    """One form's step function and state type (feed-forward or recurrent).

    Parameters:
        function: ``(input, state, p, dt)`` (feed-forward) or ``(input, state,
            input_weights, recurrent_weights, p, dt)`` (recurrent) ``-> (spikes, state)``
        state: the state ``NamedTuple`` type the function takes and returns
        sparse: the step for sparse input, if the model has one
        adjoint: the adjoint (EventProp) step, run when ``p.method == "adjoint"``
        adjoint_sparse: the adjoint step for sparse input
    """

    function: Callable
    state: type
    sparse: Optional[Callable] = None
    adjoint: Optional[Callable] = None
    adjoint_sparse: Optional[Callable] = None


def _is_nested(parameters: Any) -> bool:
    return any(
        isinstance(value, tuple) and hasattr(value, "_fields") for value in parameters
    )


class NeuronModel:
    """The binding of one neuron model to the generic module forms.

    Parameters:
        parameters (NamedTuple): the default parameters (``p`` when none is given)
        feed_forward (Step): step function and state of the feed-forward forms
        recurrent (Step): step function and state of the recurrent forms (``None``: the
            model has no recurrent form)
        initial_values (Dict[str, str]): state fields that start at a parameter, e.g.
            ``{"v": "v_leak"}`` or, for nested models, ``{"lif.v": "lif.v_leak"}``; all
            other fields start at zero
        positive_parameters, nonnegative_parameters (Sequence[str]): parameter fields
            (dotted paths) that must be > 0 or >= 0 besides the generic checks
        method_path (Sequence[str]): where ``method`` is in the parameters (for the
            adjoint selection of nested models, e.g. ``("lif", "method")``)
        adjoint_argument (bool): the forms take ``adjoint=False`` (Norse 1.1's LSNN
            argument that selects the adjoint steps whatever ``p.method`` says)

    Attributes:
        Cell, SNN, RecurrentCell, Recurrent: the bases of the four forms (the recurrent
            ones only with ``recurrent``)
    """

    def __init__(
        self,
        parameters: NamedTuple,
        feed_forward: Step,
        recurrent: Optional[Step] = None,
        *,
        initial_values: Optional[Dict[str, str]] = None,
        positive_parameters: Sequence[str] = (),
        nonnegative_parameters: Sequence[str] = (),
        method_path: Sequence[str] = ("method",),
        adjoint_argument: bool = False,
    ):
        if not (isinstance(parameters, tuple) and hasattr(parameters, "_fields")):
            raise TypeError(
                f"parameters must be a parameter NamedTuple instance, got "
                f"{type(parameters).__name__}"
            )
        self.parameters = parameters
        self.feed_forward = feed_forward
        self.recurrent = recurrent
        initial_values = dict(initial_values or {})
        checks = dict(
            initial_values=initial_values,
            positive_parameters=tuple(positive_parameters),
            nonnegative_parameters=tuple(nonnegative_parameters),
            method_path=tuple(method_path),
            default_parameters=parameters,
        )
        # Nested parameters, dotted initial values and sign checks need the nested mixin
        nested = (
            _is_nested(parameters)
            or any("." in field for field in initial_values)
            or positive_parameters
            or nonnegative_parameters
        )
        self._mixins = (NestedNeuronModule,) if nested else ()
        self._adjoint_argument = adjoint_argument
        name = type(parameters).__name__.removesuffix("Parameters")
        self.Cell = self._form(name + "Cell", SNNCell, feed_forward, checks, False)
        self.SNN = self._form(name, SNN, feed_forward, checks, False)
        if recurrent is not None:
            self.RecurrentCell = self._form(
                name + "RecurrentCell", SNNRecurrentCell, recurrent, checks, True
            )
            self.Recurrent = self._form(
                name + "Recurrent", SNNRecurrent, recurrent, checks, True
            )

    def _form(
        self, name: str, generic: type, step: Step, checks: Dict, recurrent: bool
    ) -> type:
        mixins = self._mixins
        attributes: Dict[str, Any] = dict(checks, state_type=step.state)
        if step.adjoint is not None:
            mixins = (AdjointSelection, *mixins)
            attributes["adjoint_activation"] = staticmethod(step.adjoint)
            attributes["adjoint_activation_sparse"] = (
                staticmethod(step.adjoint_sparse) if step.adjoint_sparse else None
            )
        parameters, takes_adjoint = self.parameters, self._adjoint_argument
        form: type

        def construct(module: Any, adjoint: bool, **arguments: Any) -> None:
            super(form, module).__init__(
                activation=step.function,
                activation_sparse=step.sparse,
                state_fallback=None,
                **arguments,
            )
            if adjoint:
                module.adjoint = True

        # Small functions rather than one shared method: their signatures show the
        # model's default parameters and Norse 1.1's argument order.
        if recurrent and takes_adjoint:

            def __init__(
                self,
                input_size: int,
                hidden_size: int,
                p=parameters,
                adjoint: bool = False,
                **kwargs,
            ):
                construct(
                    self,
                    adjoint,
                    input_size=input_size,
                    hidden_size=hidden_size,
                    p=p,
                    **kwargs,
                )

        elif recurrent:

            def __init__(
                self, input_size: int, hidden_size: int, p=parameters, **kwargs
            ):
                construct(
                    self,
                    False,
                    input_size=input_size,
                    hidden_size=hidden_size,
                    p=p,
                    **kwargs,
                )

        elif takes_adjoint:

            def __init__(self, p=parameters, adjoint: bool = False, **kwargs):
                construct(self, adjoint, p=p, **kwargs)

        else:

            def __init__(self, p=parameters, **kwargs):
                construct(self, False, p=p, **kwargs)

        __init__.__annotations__["p"] = type(parameters)
        __init__.__qualname__ = f"{name}.__init__"
        attributes["__init__"] = __init__
        attributes["__doc__"] = f"The {generic.__name__} form of {name}."
        tail = _documentation(generic, type(parameters).__name__, step, takes_adjoint)

        def __init_subclass__(cls, **kwargs: Any) -> None:
            super(form, cls).__init_subclass__(**kwargs)
            doc = cls.__dict__.get("__doc__")
            if doc and "Parameters:" not in doc:
                cls.__doc__ = inspect.cleandoc(doc) + "\n\n" + tail

        attributes["__init_subclass__"] = classmethod(__init_subclass__)
        form = type(f"{name}Form", (*mixins, generic), attributes)
        return form


def _documentation(generic: type, parameters: str, step: Step, adjoint: bool) -> str:
    """The arguments and shapes of a form, appended to a model class's docstring."""
    recurrent = generic in (SNNRecurrentCell, SNNRecurrent)
    lines = ["Parameters:"]
    if recurrent:
        lines += [
            "    input_size (int): number of input features",
            "    hidden_size (int): number of neurons",
        ]
    method = ' (``method="adjoint"``: adjoint gradients)' if step.adjoint else ""
    lines.append(
        f"    p ({parameters}): neuron parameters, default ``{parameters}()``{method}"
    )
    if adjoint:
        lines.append("    adjoint (bool): adjoint gradients whatever ``p.method`` says")
    if recurrent:
        lines.append(
            "    input_weights, recurrent_weights, autapses: see :class:`.SNNRecurrentCell`"
        )
    lines.append("    dt (float): time step (s), default 0.001")
    if generic in (SNN, SNNRecurrent):
        lines.append(
            "    record_states (bool): return the states of every step, stacked"
        )
    features = "input_size" if recurrent else "..."
    neurons = "hidden_size" if recurrent else "..."
    time = "" if generic in (SNNCell, SNNRecurrentCell) else "T, "
    lines += [
        "",
        f"Shapes: input ``({time}batch, {features})``; spikes ``({time}batch, {neurons})``; "
        f"state ``(batch, {neurons})``.",
    ]
    return "\n".join(lines)
