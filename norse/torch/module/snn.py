"""The four module forms of every neuron model, written once.

A neuron model is a parameter ``NamedTuple``, a state ``NamedTuple`` and a step function
(see :mod:`norse.torch.functional`). These generic wrappers turn a step function into

==================  ========================  ==============================
form                class                     input
==================  ========================  ==============================
cell                :class:`SNNCell`          ``(batch, ...)``, one step
time module         :class:`SNN`              ``(T, batch, ...)``
recurrent cell      :class:`SNNRecurrentCell` ``(batch, input_size)``
recurrent module    :class:`SNNRecurrent`     ``(T, batch, input_size)``
==================  ========================  ==============================

Every form returns ``(output, state)``; pass ``state=None`` (the default) on the first
call and the returned state afterwards. The neuron parameters live in a child module
``params`` (``module.p`` reads them as the ``NamedTuple``), so ``.to()``, ``state_dict()`` and
``DataParallel``/DDP replicas carry them; an ``nn.Parameter`` inside the tuple trains.
"""

from typing import Any, Callable, Optional, Tuple

import torch

from norse.torch.functional.validation import check_count, check_sequence
from norse.torch.module import anomaly
from norse.torch.module.fast_path import run_fused, start_state
from norse.torch.module.neuron import (  # noqa: F401  (import path of Norse 1.1 and earlier releases)
    NeuronModule,
    NeuronParameters,
    is_module_stateful,
    spikes_as_float,
    track_rest_voltage,
)

FeedforwardActivation = Callable[
    [torch.Tensor, Any, Any, float], Tuple[torch.Tensor, Any]
]
RecurrentActivation = Callable[
    [torch.Tensor, Any, torch.Tensor, torch.Tensor, Any, float],
    Tuple[torch.Tensor, Any],
]


def _per_step(
    cell: torch.nn.Module, input_tensor: torch.Tensor, state: Any
) -> Tuple[torch.Tensor, Any]:
    """The cells' reference loop over a sequence: ``cell.forward(input_t, state)`` for
    every time step; the outputs stacked and the final state."""
    outputs = []
    for step_input in input_tensor.unbind(0):
        out, state = cell.forward(step_input, state)
        outputs.append(out)
    return torch.stack(outputs), state


class _LayerSizes:
    """``input_size`` and ``hidden_size`` of a layer with input weights (the recurrent
    forms, :class:`~norse.torch.module.leaky_integrator.LILinearCell`,
    :class:`~norse.torch.module.lif_correlation.LIFCorrelation`): checked and stored by
    :meth:`_setup_sizes`; :meth:`_sized_state_shape` is the state shape of an input
    ``(..., input_size)`` (``(T, ..., input_size)`` with ``time``), :meth:`_state_shape`
    that of a cell."""

    def _setup_sizes(self, input_size: int, hidden_size: int) -> None:
        self.input_size = check_count(input_size, "input_size")
        self.hidden_size = check_count(hidden_size, "hidden_size")

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, dt={self.dt}"

    def _sized_state_shape(self, input_tensor: torch.Tensor, time: bool) -> Tuple:
        features = input_tensor.shape[-1] if input_tensor.dim() > 0 else None
        if features != self.input_size:
            raise ValueError(
                f"input_tensor must end in input_size={self.input_size} features, "
                f"got shape {tuple(input_tensor.shape)}"
            )
        leading = input_tensor.shape[1:-1] if time else input_tensor.shape[:-1]
        return (*leading, self.hidden_size)

    def _state_shape(self, input_tensor: torch.Tensor) -> Tuple[int, ...]:
        return self._sized_state_shape(input_tensor, time=False)


class _RecurrentWeights(_LayerSizes):
    """Input and recurrent weight set-up shared by the two recurrent forms."""

    dtype_bound_tensors = ("input_weights", "recurrent_weights")
    full_shape_state_fields = ("z",)

    def _setup_weights(
        self,
        input_size: int,
        hidden_size: int,
        input_weights: Optional[torch.Tensor],
        recurrent_weights: Optional[torch.Tensor],
        autapses: bool,
    ) -> None:
        self._setup_sizes(input_size, hidden_size)
        input_size, hidden_size = self.input_size, self.hidden_size
        self.autapses = autapses
        scale = (2.0 / hidden_size) ** 0.5
        self._register_weight(
            "input_weights",
            input_weights,
            (hidden_size, input_size),
            lambda: torch.randn(hidden_size, input_size) * scale,
        )
        self._register_weight(
            "recurrent_weights",
            recurrent_weights,
            (hidden_size, hidden_size),
            lambda: torch.randn(hidden_size, hidden_size) * scale,
        )
        if not autapses:
            # Self-connections are masked in every forward pass, so no optimiser update
            # (momentum, weight decay, a loaded checkpoint) can bring them back.
            with torch.no_grad():
                self.recurrent_weights.fill_diagonal_(0.0)
            self.register_buffer(
                "autapse_mask",
                1.0 - torch.eye(hidden_size, dtype=self.recurrent_weights.dtype),
                persistent=False,
            )
        else:
            self.autapse_mask = None

    def extra_repr(self) -> str:
        recorded = ", record_states=True" if getattr(self, "record_states", 0) else ""
        return (
            f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"p={self.p}, autapses={self.autapses}, dt={self.dt}{recorded}"
        )

    def _register_weight(self, name, value, shape, default) -> None:
        if value is None:
            self.register_parameter(name, torch.nn.Parameter(default()))
            return
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{name} must be a torch.Tensor, got {type(value).__name__}"
            )
        if tuple(value.shape) != shape:
            raise ValueError(
                f"{name} must have shape {shape} (hidden_size, ...), got {tuple(value.shape)}"
            )
        if isinstance(value, torch.nn.Parameter):
            self.register_parameter(name, value)
        else:
            # A plain tensor is a fixed weight (as in Norse 1.1, it is not trained), but
            # it still moves with the module.
            self.register_buffer(name, value)

    def _effective_recurrent_weights(self) -> torch.Tensor:
        if self.autapse_mask is None:
            return self.recurrent_weights
        return self.recurrent_weights * self.autapse_mask.to(
            self.recurrent_weights.dtype
        )


class SNNCell(NeuronModule):
    """A feed-forward neuron layer *without* time: one integration step per call.

    Parameters:
        activation (FeedforwardActivation): step function ``(input, state, p, dt) ->
            (output, state)``
        state_fallback (Callable[[torch.Tensor], Any]): builds the state for a first call
            (``None``: the generic :meth:`initial_state`)
        p (NamedTuple): neuron parameters
        dt (float): integration time step (s), default 0.001
        activation_sparse (FeedforwardActivation): step used for sparse input, if any

    Shapes:
        input ``(batch, ...)``; output and state tensors ``(batch, ...)``.
    """

    def __init__(
        self,
        activation: FeedforwardActivation,
        state_fallback: Optional[Callable[[torch.Tensor], Any]],
        p: Any,
        dt: float = 0.001,
        activation_sparse: Optional[FeedforwardActivation] = None,
    ):
        super().__init__()
        self._setup(activation, state_fallback, p, dt, activation_sparse)

    def _state_shape(self, input_tensor: torch.Tensor) -> Tuple[int, ...]:
        return tuple(input_tensor.shape)

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[Any] = None
    ) -> Tuple[torch.Tensor, Any]:
        input_tensor = spikes_as_float(input_tensor)
        state = self._resolve_state(input_tensor, state, 0)
        out, state = self._activation_for(input_tensor)(
            input_tensor, state, self.p, self.dt
        )
        if anomaly.enabled:
            anomaly.check_step(self, None, input_tensor, out, state)
        return out, state

    def forward_sequence(
        self, input_tensor: torch.Tensor, state: Optional[Any] = None
    ) -> Tuple[torch.Tensor, Any]:
        """The cell over a sequence ``(T, batch, ...)``: the outputs of calling it once
        per step, stacked, and the final state (what :class:`~norse.torch.Lift` of the
        cell computes), with the time module's fused kernel where one fits."""
        input_tensor = spikes_as_float(input_tensor)
        first = input_tensor[0]
        rest = not torch.is_grad_enabled() and self._starts_from_own_rest(state)
        state = self._resolve_state(first, state, 0, build=not rest)
        start = start_state(
            self, rest, state, lambda sequence: self.state_fallback(sequence[0])
        )
        fused = run_fused(self, input_tensor, start, self.p, False)
        if fused is not None:
            return fused
        if rest:
            state = self.state_fallback(first)
        return _per_step(self, input_tensor, state)


class SNN(NeuronModule):
    """A feed-forward neuron layer *with* time: the first input dimension is time.

    Runs the model's step once per time step (or a fused multi-step kernel with the
    same dynamics, when one is registered for the configuration; see
    :mod:`norse.torch.fused`).

    Parameters:
        activation (FeedforwardActivation): step function ``(input, state, p, dt) ->
            (output, state)``
        state_fallback (Callable[[torch.Tensor], Any]): builds the state for a first call
        p (NamedTuple): neuron parameters
        dt (float): integration time step (s), default 0.001
        activation_sparse (FeedforwardActivation): step used for sparse input, if any
        record_states (bool): return the state of every step, stacked to ``(T, ...)``,
            instead of only the final state

    Shapes:
        input ``(T, batch, ...)``; output ``(T, batch, ...)``; state ``(batch, ...)``.
    """

    def __init__(
        self,
        activation: FeedforwardActivation,
        state_fallback: Optional[Callable[[torch.Tensor], Any]],
        p: Any,
        dt: float = 0.001,
        activation_sparse: Optional[FeedforwardActivation] = None,
        record_states: bool = False,
    ):
        super().__init__()
        self._setup(activation, state_fallback, p, dt, activation_sparse)
        self.record_states = record_states

    def _state_shape(self, input_tensor: torch.Tensor) -> Tuple[int, ...]:
        return tuple(input_tensor.shape[1:])

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[Any] = None
    ) -> Tuple[torch.Tensor, Any]:
        input_tensor = spikes_as_float(input_tensor)
        # From rest while gradients are on, the voltage requires grad (Norse 1.1): the
        # state is built, so that no inference-only kernel takes the sequence.
        rest = not torch.is_grad_enabled() and self._starts_from_own_rest(state)
        state = self._resolve_state(input_tensor, state, 1, build=not rest)
        check_sequence(input_tensor)
        p = self.p
        start = start_state(self, rest, state, self.state_fallback)
        fused = run_fused(self, input_tensor, start, p, self.record_states)
        if fused is not None:
            return fused
        activation = self._activation_for(input_tensor)
        if rest:
            state = self.state_fallback(input_tensor)
        return self._run_steps(
            lambda step_input, state: activation(step_input, state, p, self.dt),
            input_tensor,
            state,
        )


class SNNRecurrentCell(_RecurrentWeights, NeuronModule):
    """A recurrently connected neuron layer *without* time.

    Parameters:
        activation (RecurrentActivation): ``(input, state, input_weights,
            recurrent_weights, p, dt) -> (output, state)``
        state_fallback (Callable[[torch.Tensor], Any]): builds the state for a first call
        input_size (int): number of input features
        hidden_size (int): number of neurons
        p (NamedTuple): neuron parameters
        input_weights (torch.Tensor): ``(hidden_size, input_size)``; default
            :math:`\\mathcal{N}(0, 2/\\text{hidden\\_size})`. An ``nn.Parameter`` trains,
            a plain tensor stays fixed.
        recurrent_weights (torch.Tensor): ``(hidden_size, hidden_size)``, same default
        autapses (bool): allow self-connections; if False (default) the diagonal is
            zeroed and masked
        dt (float): integration time step (s)
        activation_sparse (RecurrentActivation): step used for sparse input, if any

    Shapes:
        input ``(batch, input_size)``; output and state ``(batch, hidden_size)``.
    """

    def __init__(
        self,
        activation: RecurrentActivation,
        state_fallback: Optional[Callable[[torch.Tensor], Any]],
        input_size: int,
        hidden_size: int,
        p: Any,
        input_weights: Optional[torch.Tensor] = None,
        recurrent_weights: Optional[torch.Tensor] = None,
        autapses: bool = False,
        dt: float = 0.001,
        activation_sparse: Optional[RecurrentActivation] = None,
    ):
        super().__init__()
        self._setup_weights(
            input_size, hidden_size, input_weights, recurrent_weights, autapses
        )
        self._setup(activation, state_fallback, p, dt, activation_sparse)

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[Any] = None
    ) -> Tuple[torch.Tensor, Any]:
        input_tensor = spikes_as_float(input_tensor)
        state = self._resolve_state(input_tensor, state, 1)
        out, state = self._activation_for(input_tensor)(
            input_tensor,
            state,
            self.input_weights,
            self._effective_recurrent_weights(),
            self.p,
            self.dt,
        )
        if anomaly.enabled:
            anomaly.check_step(self, None, input_tensor, out, state)
        return out, state

    def forward_sequence(
        self, input_tensor: torch.Tensor, state: Optional[Any] = None
    ) -> Tuple[torch.Tensor, Any]:
        """The cell over a sequence ``(T, batch, input_size)``: the outputs of calling
        it once per step, stacked, and the final state (what :class:`~norse.torch.Lift`
        of the cell computes), with the time module's fused kernel where one fits."""
        input_tensor = spikes_as_float(input_tensor)
        state = self._resolve_state(input_tensor[0], state, 1)
        weights = (self.input_weights, self._effective_recurrent_weights())
        fused = run_fused(self, input_tensor, state, self.p, False, weights)
        if fused is not None:
            return fused
        return _per_step(self, input_tensor, state)


class SNNRecurrent(_RecurrentWeights, NeuronModule):
    """A recurrently connected neuron layer *with* time (first input dimension).

    Runs the model's step once per time step (or a fused multi-step kernel with the
    same dynamics, when one is registered for the configuration; see
    :mod:`norse.torch.fused.recurrent`).

    Parameters: as :class:`SNNRecurrentCell`, plus ``record_states`` (return the state of
    every step stacked to ``(T, ...)`` instead of the final state).

    Shapes:
        input ``(T, batch, input_size)``; output ``(T, batch, hidden_size)``;
        state ``(batch, hidden_size)``.
    """

    def __init__(
        self,
        activation: RecurrentActivation,
        state_fallback: Optional[Callable[[torch.Tensor], Any]],
        input_size: int,
        hidden_size: int,
        p: Any,
        input_weights: Optional[torch.Tensor] = None,
        recurrent_weights: Optional[torch.Tensor] = None,
        autapses: bool = False,
        dt: float = 0.001,
        activation_sparse: Optional[RecurrentActivation] = None,
        record_states: bool = False,
    ):
        super().__init__()
        self._setup_weights(
            input_size, hidden_size, input_weights, recurrent_weights, autapses
        )
        self._setup(activation, state_fallback, p, dt, activation_sparse)
        self.record_states = record_states

    def _state_shape(self, input_tensor: torch.Tensor) -> Tuple[int, ...]:
        return self._sized_state_shape(input_tensor, time=True)

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[Any] = None
    ) -> Tuple[torch.Tensor, Any]:
        input_tensor = spikes_as_float(input_tensor)
        state = self._resolve_state(input_tensor, state, 2)
        activation = self._activation_for(input_tensor)
        check_sequence(input_tensor)
        p = self.p
        input_weights = self.input_weights
        recurrent_weights = self._effective_recurrent_weights()
        weights = (input_weights, recurrent_weights)
        fused = run_fused(self, input_tensor, state, p, self.record_states, weights)
        if fused is not None:
            return fused
        return self._run_steps(
            lambda step_input, state: activation(
                step_input, state, input_weights, recurrent_weights, p, self.dt
            ),
            input_tensor,
            state,
        )
