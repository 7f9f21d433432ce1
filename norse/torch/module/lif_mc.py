"""Multi-compartment LIF layers: compartments coupled by a matrix ``g_coupling``.

Equations and update order: :mod:`norse.torch.functional.lif_mc`. ``g_coupling`` has
shape ``(n, n)`` for ``n`` compartments (the last input dimension, or ``hidden_size``);
an ``nn.Parameter`` trains, a plain tensor stays fixed (a buffer). The recurrent forms
default to a trainable :math:`\\mathcal{N}(0, 1/n)` matrix as in Norse 1.1.

Norse 1.1 had only :class:`LIFMCRecurrentCell`; the feed-forward cell
:class:`LIFMCCell`, the time module :class:`LIFMC` and :class:`LIFMCRecurrent` are added
here (the feed-forward forms need ``g_coupling``, since they do not know ``n``).
"""

from typing import Any, NamedTuple, Optional, Tuple

import torch

from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters, LIFState
from norse.torch.functional.lif_mc import lif_mc_feed_forward_step, lif_mc_step
from norse.torch.module.nested import NestedNeuronModule
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell


class CoupledCompartments(NestedNeuronModule):
    """Mixin that stores ``g_coupling`` and binds it into the model's step functions,
    so the generic forms of :mod:`.snn` can run them.

    A model sets :attr:`recurrent_step` and :attr:`feed_forward_step` (step functions
    taking ``g_coupling`` after the weights) and :attr:`default_parameters`.
    """

    initial_values = {"v": "v_leak"}
    recurrent_step = staticmethod(lif_mc_step)
    feed_forward_step = staticmethod(lif_mc_feed_forward_step)
    default_parameters: NamedTuple = LIFParameters()

    def _recurrent_activation(
        self, input_tensor, state, input_weights, recurrent_weights, p, dt
    ):
        return self.recurrent_step(
            input_tensor,
            state,
            input_weights,
            recurrent_weights,
            self.g_coupling,
            p,
            dt,
        )

    def _feed_forward_activation(self, input_tensor, state, p, dt):
        return self.feed_forward_step(input_tensor, state, self.g_coupling, p, dt)

    def _register_coupling(
        self, g_coupling: Optional[torch.Tensor], size: Optional[int]
    ) -> None:
        if g_coupling is None:
            if size is None:
                raise TypeError(
                    f"{type(self).__name__} needs g_coupling, a (n, n) tensor for n "
                    f"compartments (the last input dimension)"
                )
            g_coupling = torch.nn.Parameter(torch.randn(size, size) / size**0.5)
        if not isinstance(g_coupling, torch.Tensor):
            raise TypeError(
                f"g_coupling must be a torch.Tensor, got {type(g_coupling).__name__}"
            )
        n = g_coupling.shape[0] if g_coupling.dim() == 2 else None
        if n is None or g_coupling.shape[1] != n or size not in (None, n):
            expected = (
                f"({size}, {size}) (hidden_size, hidden_size)" if size else "(n, n)"
            )
            raise ValueError(
                f"g_coupling must have shape {expected}, got {tuple(g_coupling.shape)}"
            )
        if isinstance(g_coupling, torch.nn.Parameter):
            self.register_parameter("g_coupling", g_coupling)
        else:
            self.register_buffer("g_coupling", g_coupling)

    def _state_shape(self, input_tensor: torch.Tensor) -> Tuple[int, ...]:
        shape = super()._state_shape(input_tensor)
        n = self.g_coupling.shape[0]
        if not shape or shape[-1] != n:
            raise ValueError(
                f"input_tensor must end in {n} compartments (the size of g_coupling), "
                f"got shape {tuple(input_tensor.shape)}"
            )
        return shape


class _FeedForwardCompartments(CoupledCompartments):
    state_type = LIFFeedForwardState
    dtype_bound_tensors = ("g_coupling",)
    full_shape_state_fields = ("v",)  # multiplied with g_coupling

    def __init__(
        self, g_coupling: torch.Tensor, p: Optional[NamedTuple] = None, **kwargs: Any
    ):
        super().__init__(
            activation=self._feed_forward_activation,
            state_fallback=None,
            p=self.default_parameters if p is None else p,
            **kwargs,
        )
        self._register_coupling(g_coupling, None)


class _RecurrentCompartments(CoupledCompartments):
    state_type = LIFState
    dtype_bound_tensors = ("input_weights", "recurrent_weights", "g_coupling")
    full_shape_state_fields = ("z", "v")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: Optional[NamedTuple] = None,
        g_coupling: Optional[torch.Tensor] = None,
        **kwargs: Any,
    ):
        super().__init__(
            activation=self._recurrent_activation,
            state_fallback=None,
            input_size=input_size,
            hidden_size=hidden_size,
            p=self.default_parameters if p is None else p,
            **kwargs,
        )
        self._register_coupling(g_coupling, self.hidden_size)


class LIFMCCell(_FeedForwardCompartments, SNNCell):
    """One Euler step of feed-forward multi-compartment LIF neurons (*without* time).

    Parameters:
        g_coupling (torch.Tensor): compartment coupling ``(n, n)`` (1/s)
        p (LIFParameters): neuron parameters, default ``LIFParameters()``
        dt (float): time step (s), default 0.001

    Shapes: input, spikes and state ``(batch, ..., n)``.
    """


class LIFMC(_FeedForwardCompartments, SNN):
    """Feed-forward multi-compartment LIF neurons *with* time: input
    ``(T, batch, ..., n)``.

    Parameters: as :class:`LIFMCCell`, plus ``record_states`` (return every state).
    """


class LIFMCRecurrentCell(_RecurrentCompartments, SNNRecurrentCell):
    """One Euler step of recurrently connected multi-compartment LIF neurons.

    Parameters:
        input_size (int): number of input features
        hidden_size (int): number of compartments
        p (LIFParameters): neuron parameters, default ``LIFParameters()``
        g_coupling (torch.Tensor): ``(hidden_size, hidden_size)`` coupling (1/s);
            default trainable :math:`\\mathcal{N}(0, 1/\\text{hidden\\_size})`
        input_weights, recurrent_weights, autapses, dt: see :class:`.SNNRecurrentCell`

    Shapes: input ``(batch, input_size)``; spikes and state ``(batch, hidden_size)``.
    """


class LIFMCRecurrent(_RecurrentCompartments, SNNRecurrent):
    """Recurrently connected multi-compartment LIF neurons *with* time: input
    ``(T, batch, input_size)``.

    Parameters: as :class:`LIFMCRecurrentCell`, plus ``record_states``.
    """
