"""Chains of modules that pass neuron states along.

:class:`SequentialState` is ``torch.nn.Sequential`` for networks that mix stateless
layers (``Linear``, ``Conv2d``...) with stateful ones (neuron layers, ``torch.nn.RNN``):
it keeps one state per layer and returns them as a list. :class:`RecurrentSequential`
feeds the output of a chain back into its input at the next call.
"""

import inspect
from collections import OrderedDict
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch

from norse.torch.fused.layers import apply_layer
from norse.torch.module.snn import NeuronModule, is_module_stateful


def _is_layer_stateful(module: torch.nn.Module) -> bool:
    """Whether :class:`SequentialState` calls ``module`` as ``module(x, state)``.

    Norse 1.1's rule: its ``forward`` takes a ``state`` argument, or it is a
    ``torch.nn.RNNBase``. :func:`~norse.torch.module.snn.is_module_stateful` adds
    ``torch.compile`` wrappers (judged by the module they wrap) and modules that declare
    ``is_stateful`` (:class:`.Lift`); a neuron module follows Norse's rule as well, so
    the encoders (``forward(x)``) are called without a state.
    """
    inner = getattr(module, "_orig_mod", module)
    if isinstance(inner, NeuronModule) and not isinstance(
        getattr(inner, "is_stateful", None), bool
    ):
        try:
            return "state" in inspect.signature(inner.forward).parameters
        except (TypeError, ValueError):  # a forward without a signature
            return True
    return is_module_stateful(module)


class SequentialState(torch.nn.Sequential):
    """A ``torch.nn.Sequential`` that threads the states of its stateful layers.

    A layer is *stateful* when it is called as ``layer(x, state)`` and returns
    ``(output, state)``. As in Norse 1.1, these are the modules whose ``forward`` has a
    ``state`` argument (every neuron module; not the encoders, whose ``forward`` takes
    only the input) and ``torch.nn.RNN``/``LSTM``/``GRU``; also a :class:`.Lift` of any
    of these and a ``torch.compile`` of any of these. Other layers are called as
    ``layer(x)``; a plain ``torch.nn.Linear`` or ``torch.nn.MaxPool2d`` through
    :func:`~norse.torch.fused.layers.apply_layer`, which runs faster equivalents on the
    CPU (the event-driven product for binary spike input with low activity; Numba
    max-pooling), with the same results.

    ``forward(input, state=None)`` returns ``(output, states)`` where ``states`` has one
    entry per layer: the new state of a stateful layer, ``None`` for the others. Pass
    ``states`` back in on the next call to continue from where the chain stopped;
    ``None`` (the default) starts every layer from its initial state. As in Norse 1.1, a
    list passed in is updated in place (the new states are written into it) and
    returned; ``list(states)`` passes a copy instead.

    Parameters:
        *args (torch.nn.Module): the layers, in order (or one ``OrderedDict`` of named
            layers, as ``torch.nn.Sequential`` takes)
        return_hidden (bool): return the outputs of every layer (a list) instead of the
            output of the last

    Example:
        >>> import torch
        >>> import norse.torch as norse
        >>> model = norse.SequentialState(
        ...     norse.Lift(torch.nn.Conv2d(1, 4, 3)),  # (T, B, 4, 6, 6)
        ...     torch.nn.Flatten(2),                   # (T, B, 144)
        ...     norse.LIF(),                           # spikes (T, B, 144)
        ... )
        >>> spikes, states = model(torch.ones(5, 2, 1, 8, 8))
        >>> spikes.shape, states[0], states[2].v.shape
        (torch.Size([5, 2, 144]), None, torch.Size([2, 144]))
    """

    def __init__(self, *args: torch.nn.Module, return_hidden: bool = False):
        for index, module in enumerate(args):
            if not isinstance(module, (torch.nn.Module, OrderedDict)):
                raise TypeError(
                    f"SequentialState takes torch.nn.Module layers, but argument {index} "
                    f"is {type(module).__name__}"
                )
        super().__init__(*args)
        self.return_hidden = return_hidden
        self.forward_state_hooks: List[torch.utils.hooks.RemovableHandle] = []
        self._stateful_flags: List[bool] = []
        self._flagged_modules: Tuple[torch.nn.Module, ...] = ()
        self._update_stateful_flags()

    def _update_stateful_flags(self) -> None:
        self._flagged_modules = tuple(self._modules.values())
        self._stateful_flags = [
            _is_layer_stateful(module) for module in self._flagged_modules
        ]

    @property
    def stateful_layers(self) -> List[bool]:
        """For every layer, whether it takes and returns a state (kept up to date when
        layers are appended, inserted, replaced or removed).

        Assigning a list (or setting an entry) overrides the detection for the current
        layers, as in Norse 1.1, where this is a plain list.
        """
        modules = tuple(self._modules.values())
        if len(modules) != len(self._flagged_modules) or any(
            a is not b for a, b in zip(modules, self._flagged_modules)
        ):
            self._update_stateful_flags()
        return self._stateful_flags

    @stateful_layers.setter
    def stateful_layers(self, flags: Sequence[bool]) -> None:
        flags = list(flags)
        if len(flags) != len(self._modules):
            raise ValueError(
                f"stateful_layers must hold one flag per layer ({len(self._modules)}), "
                f"got {len(flags)}"
            )
        self._flagged_modules = tuple(self._modules.values())
        self._stateful_flags = flags

    def register_forward_state_hooks(
        self,
        forward_hook: Callable[[torch.nn.Module, Tuple[Any, ...], Any], None],
    ) -> None:
        """Registers ``forward_hook`` as a forward hook on every stateful layer.

        The hook is called as ``forward_hook(layer, (input, state), (output, new_state))``
        after each stateful layer ran (``state`` is ``None`` on a first call). Remove the
        hooks with :meth:`remove_forward_state_hooks`.

        Raises:
            ValueError: if hooks registered by this method are still in place.
        """
        if not callable(forward_hook):
            raise TypeError(
                f"forward_hook must be callable, got {type(forward_hook).__name__}"
            )
        if self.forward_state_hooks:
            raise ValueError(
                "Forward state hooks already in place; call remove_forward_state_hooks() first"
            )
        for module, stateful in zip(self, self.stateful_layers):
            if stateful:
                self.forward_state_hooks.append(
                    module.register_forward_hook(forward_hook)
                )

    def remove_forward_state_hooks(self) -> None:
        """Removes the hooks added by :meth:`register_forward_state_hooks`."""
        for handle in self.forward_state_hooks:
            handle.remove()
        self.forward_state_hooks.clear()

    def extra_repr(self) -> str:
        return "return_hidden=True" if self.return_hidden else ""

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[Sequence[Any]] = None
    ) -> Tuple[Union[torch.Tensor, List[torch.Tensor]], List[Any]]:
        """Runs the layers in order.

        Parameters:
            input_tensor (torch.Tensor): input of the first layer
            state (Optional[list]): one entry per layer (``None`` for layers that should
                start from their initial state; entries of stateless layers are
                ignored), or ``None``. A list is updated in place with the new states.

        Returns:
            ``(output, states)``; ``output`` is the list of every layer's output when
            ``return_hidden`` is set. ``states`` is the list passed in (a new list when
            ``state`` is ``None`` or a tuple).
        """
        flags = self.stateful_layers
        states: Any = [None] * len(flags) if state is None else state
        if isinstance(states, tuple) and any(flags):
            if hasattr(states, "_fields"):
                raise TypeError(
                    "state must be a list with one entry per layer (or None), got "
                    f"{type(states).__name__}; a single layer's state goes in a list, "
                    "e.g. [None, state]"
                )
            states = list(states)  # a tuple cannot take the new states

        hidden = []
        for index, (module, stateful) in enumerate(zip(self, flags)):
            if stateful:
                result = module(input_tensor, _entry(states, index, module))
                if not isinstance(result, (tuple, list)) or len(result) != 2:
                    raise TypeError(
                        f"layer {index} ({type(module).__name__}) takes a state, so it must "
                        f"return (output, state), got {type(result).__name__}"
                    )
                input_tensor = result[0]
                _store(states, index, result[1])
            else:
                input_tensor = apply_layer(module, input_tensor)
            if self.return_hidden:
                hidden.append(input_tensor)
        return (hidden if self.return_hidden else input_tensor), states


def _entry(states: Any, index: int, module: torch.nn.Module) -> Any:
    """``states[index]``, with an error that says what ``state`` should be."""
    try:
        return states[index]
    except IndexError:
        given = f"{len(states)} entries" if hasattr(states, "__len__") else "no entry"
        raise IndexError(
            f"state has {given}, but layer {index} ({type(module).__name__}) takes a "
            "state; pass one entry per layer"
        ) from None
    except TypeError:  # not subscriptable
        raise TypeError(
            "state must be a list with one entry per layer (or None), "
            f"got {type(states).__name__}"
        ) from None


def _store(states: Any, index: int, value: Any) -> None:
    try:
        states[index] = value
    except TypeError:
        raise TypeError(
            "state must be a list with one entry per layer (or None), the new states "
            f"are written into it; got {type(states).__name__}"
        ) from None


class RecurrentSequentialState(NamedTuple):
    """State of a :class:`RecurrentSequential`.

    Parameters:
        cache: the output(s) fed back into the input at the next call
        state: the list of layer states of the inner :class:`SequentialState`
    """

    cache: Optional[Any] = None
    state: Optional[Any] = None


class RecurrentSequential(torch.nn.Module):
    """A chain of layers whose output is added to its input at the next call.

    Call it once per time step: the first call (``state=None``) runs the layers on
    ``x``; every later call runs them on ``x + cache``, where ``cache`` is the output
    fed back from the previous call, and threads the layer states like
    :class:`SequentialState`.

    Parameters:
        *modules (torch.nn.Module): the layers
        output_modules (Union[int, List[int]]): index of the layer whose output is
            returned and fed back (default -1, the last). With a list of indices, the
            call returns the list of those outputs and feeds back their sum.

    Returns:
        ``(output, RecurrentSequentialState(cache, layer_states))``.
    """

    def __init__(
        self, *modules: torch.nn.Module, output_modules: Union[List[int], int] = -1
    ):
        super().__init__()
        self.module = SequentialState(*modules, return_hidden=True)
        indices = (
            [output_modules] if isinstance(output_modules, int) else output_modules
        )
        if not isinstance(indices, (list, tuple)) or not indices:
            raise TypeError(
                f"output_modules must be an int or a non-empty list of ints, got {output_modules!r}"
            )
        for index in indices:
            if not isinstance(index, int):
                raise TypeError(
                    f"output_modules must hold ints, got {type(index).__name__}"
                )
            if not -len(modules) <= index < len(modules):
                raise ValueError(
                    f"output_modules index {index} is out of range for {len(modules)} layers"
                )
        self.output_modules = output_modules

    def forward(
        self, x: torch.Tensor, state: Optional[RecurrentSequentialState] = None
    ) -> Tuple[Union[torch.Tensor, List[torch.Tensor]], RecurrentSequentialState]:
        if state is None:
            state = RecurrentSequentialState()
        elif not isinstance(state, RecurrentSequentialState):
            raise TypeError(
                f"state must be a RecurrentSequentialState or None, got {type(state).__name__}"
            )
        if state.cache is not None:
            feedback = state.cache
            if isinstance(feedback, (list, tuple)):
                feedback = torch.stack(list(feedback)).sum(0)
            if feedback.shape != x.shape:
                raise ValueError(
                    f"the fed-back output has shape {tuple(feedback.shape)} but x has shape "
                    f"{tuple(x.shape)}; the fed-back layers must keep the input shape"
                )
            x = x + feedback
        outputs, layer_states = self.module(x, state.state)

        if isinstance(self.output_modules, int):
            output = outputs[self.output_modules]
        else:
            output = [outputs[index] for index in self.output_modules]
        return output, RecurrentSequentialState(output, layer_states)
