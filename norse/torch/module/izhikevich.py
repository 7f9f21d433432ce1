r"""Izhikevich neuron layers in the four module forms.

Equations, update order and the 20 named behaviours: :mod:`norse.torch.functional.izhikevich`.
A layer takes an :class:`~norse.torch.functional.izhikevich.IzhikevichSpikingBehavior`:
its parameters configure the neurons and its state is the initial state, expanded to the
input's shape, device and dtype on the first call.

Example:
    >>> import torch, norse.torch as norse
    >>> layer = norse.Izhikevich(norse.tonic_spiking)
    >>> spikes, state = layer(torch.full((400, 1, 2), 14.0))  # 100 ms of 0.25 ms steps
"""

from typing import Any

import torch

from norse.torch.functional.izhikevich import (
    IzhikevichParameters,
    IzhikevichRecurrentState,
    IzhikevichSpikingBehavior,
    IzhikevichState,
    izhikevich_feed_forward_step,
    izhikevich_recurrent_step,
)
from norse.torch.module.snn import (
    SNN,
    SNNCell,
    SNNRecurrent,
    SNNRecurrentCell,
    track_rest_voltage,
)


def _check_behavior(spiking_method: Any) -> IzhikevichSpikingBehavior:
    if not (
        isinstance(spiking_method, tuple)
        and getattr(spiking_method, "_fields", None) == ("p", "s")
    ):
        raise TypeError(
            "spiking_method must be an IzhikevichSpikingBehavior (e.g. "
            "norse.torch.tonic_spiking or create_izhikevich_spiking_behavior(...)), "
            f"got {type(spiking_method).__name__}"
        )
    return spiking_method


class _IzhikevichForm:
    """Binds a behaviour to a generic form: its parameters configure the neurons and its
    state, expanded to the input's state shape, device and dtype, starts them."""

    parameter_type = IzhikevichParameters
    state_type = IzhikevichState

    def __init__(self, spiking_method: IzhikevichSpikingBehavior, **kwargs):
        behavior = _check_behavior(spiking_method)
        recurrent = self.state_type is IzhikevichRecurrentState
        super().__init__(
            activation=(
                izhikevich_recurrent_step if recurrent else izhikevich_feed_forward_step
            ),
            state_fallback=None,
            p=behavior.p,
            **kwargs,
        )
        self.spiking_method = behavior

    def initial_state(self, input_tensor: torch.Tensor) -> Any:
        shape = self._state_shape(input_tensor)
        dtype = (
            input_tensor.dtype
            if input_tensor.is_floating_point()
            else torch.get_default_dtype()
        )

        recurrent = self.state_type is IzhikevichRecurrentState

        def full(value: Any) -> torch.Tensor:
            value = torch.as_tensor(value)
            if recurrent:  # Norse 1.1's recurrent forms start from detached copies
                value = value.detach()
            return (
                value.to(device=input_tensor.device, dtype=dtype).expand(shape).clone()
            )

        # The feed-forward forms start from the behaviour's state itself (a gradient
        # reaches s.v and s.u, as in Norse 1.1); the voltage requires grad.
        s = self.spiking_method.s
        if recurrent:
            state = IzhikevichRecurrentState(z=full(0.0), v=full(s.v), u=full(s.u))
        else:
            state = IzhikevichState(v=full(s.v), u=full(s.u))
        return track_rest_voltage(state, input_tensor, self)


class _IzhikevichRecurrentForm(_IzhikevichForm):
    """The recurrent forms take ``(input_size, hidden_size, spiking_method, ...)``."""

    state_type = IzhikevichRecurrentState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        spiking_method: IzhikevichSpikingBehavior,
        **kwargs,
    ):
        super().__init__(
            spiking_method, input_size=input_size, hidden_size=hidden_size, **kwargs
        )


class IzhikevichCell(_IzhikevichForm, SNNCell):
    """One Euler step of a feed-forward Izhikevich layer (*without* time).

    Parameters:
        spiking_method (IzhikevichSpikingBehavior): parameters and initial state
        dt (float): time step (s), default 0.001

    Shapes: input current, spikes and state ``(batch, ...)``.
    """


class Izhikevich(_IzhikevichForm, SNN):
    """A feed-forward Izhikevich layer *with* time: input ``(T, batch, ...)``.

    Parameters:
        spiking_method (IzhikevichSpikingBehavior): parameters and initial state
        dt (float): time step (s), default 0.001
        record_states (bool): return the states of all time steps
    """


class IzhikevichRecurrentCell(_IzhikevichRecurrentForm, SNNRecurrentCell):
    """One Euler step of a recurrently connected Izhikevich layer (*without* time).

    Parameters:
        input_size (int): number of input features
        hidden_size (int): number of neurons
        spiking_method (IzhikevichSpikingBehavior): parameters and initial state
        input_weights, recurrent_weights, autapses, dt: see :class:`.SNNRecurrentCell`

    Shapes: input ``(batch, input_size)``; spikes and state ``(batch, hidden_size)``.
    """


class IzhikevichRecurrent(_IzhikevichRecurrentForm, SNNRecurrent):
    """A recurrently connected Izhikevich layer *with* time: input
    ``(T, batch, input_size)``.

    Parameters: as :class:`IzhikevichRecurrentCell`, plus ``record_states``.
    """
