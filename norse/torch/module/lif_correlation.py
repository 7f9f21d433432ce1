r"""A recurrent LIF layer with correlation sensors, as a module.

Equations: :mod:`norse.torch.functional.lif_correlation` and
:mod:`norse.torch.functional.correlation_sensor`. As in Norse 1.1 the weights are passed
to every call (a plasticity rule such as
:func:`~norse.torch.functional.correlation_sensor.correlation_based_update` changes them
between steps); the module holds the parameters (as buffers, so they move with ``.to()``)
and builds the first state.

Example:
    >>> import torch, norse.torch as norse
    >>> layer = norse.LIFCorrelation(input_size=10, hidden_size=8)
    >>> w_in, w_rec = torch.randn(8, 10), torch.randn(8, 8)
    >>> z, s = layer(torch.ones(1, 10), w_in, w_rec)
    >>> z, s = layer(torch.ones(1, 10), w_in, w_rec, s)
"""

from typing import Optional, Tuple

import torch

from norse.torch.functional.correlation_sensor import CorrelationSensorState
from norse.torch.functional.lif import LIFState
from norse.torch.functional.lif_correlation import (
    LIFCorrelationParameters,
    LIFCorrelationState,
    lif_correlation_step,
)
from norse.torch.functional.validation import (
    check_input,
    check_shape,
    validate_parameters,
)
from norse.torch.module.snn import NeuronParameters, _LayerSizes


class LIFCorrelation(_LayerSizes, torch.nn.Module):
    """A recurrent LIF layer whose input and recurrent synapses carry correlation sensors.

    Parameters:
        input_size (int): number of input features
        hidden_size (int): number of neurons
        p (LIFCorrelationParameters): parameters of the neurons and both sensors
        dt (float): time step (s), default 0.001

    Shapes: input ``(batch, input_size)``; ``input_weights`` ``(hidden_size,
    input_size)``; ``recurrent_weights`` ``(hidden_size, hidden_size)``; spikes
    ``(batch, hidden_size)``; see :class:`LIFCorrelationState` for the state.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIFCorrelationParameters = LIFCorrelationParameters(),
        dt: float = 0.001,
    ):
        super().__init__()
        self._setup_sizes(input_size, hidden_size)
        if not isinstance(p, LIFCorrelationParameters):
            raise TypeError(
                f"p must be LIFCorrelationParameters, got {type(p).__name__}"
            )
        for field, part in zip(p._fields, p):
            validate_parameters(part, dt, name=f"p.{field}")
        self.dt = dt
        self.lif_parameters = NeuronParameters(p.lif_parameters)
        self.input_correlation_parameters = NeuronParameters(
            p.input_correlation_parameters
        )
        self.recurrent_correlation_parameters = NeuronParameters(
            p.recurrent_correlation_parameters
        )

    @property
    def p(self) -> LIFCorrelationParameters:
        """The parameters as a :class:`LIFCorrelationParameters` of the module's tensors."""
        return LIFCorrelationParameters(
            self.lif_parameters.as_tuple(),
            self.input_correlation_parameters.as_tuple(),
            self.recurrent_correlation_parameters.as_tuple(),
        )

    def initial_state(self, input_tensor: torch.Tensor) -> LIFCorrelationState:
        """Neurons at rest (``v = v_leak``, no spikes, no current) and empty sensors."""
        batch = input_tensor.shape[0]
        options = {"device": input_tensor.device, "dtype": input_tensor.dtype}
        hidden = torch.zeros(batch, self.hidden_size, **options)
        v_leak = torch.as_tensor(self.lif_parameters.as_tuple().v_leak).detach()

        def sensor(n_pre: int) -> CorrelationSensorState:
            shape = (batch, n_pre, self.hidden_size)
            return CorrelationSensorState(
                post_pre=torch.zeros(shape, **options),
                correlation_trace=torch.zeros(shape, **options),
                anti_correlation_trace=torch.zeros(shape, **options),
            )

        return LIFCorrelationState(
            lif_state=LIFState(
                z=hidden, v=hidden + v_leak.to(**options), i=hidden.clone()
            ),
            input_correlation_state=sensor(self.input_size),
            recurrent_correlation_state=sensor(self.hidden_size),
        )

    def forward(
        self,
        input_tensor: torch.Tensor,
        input_weights: torch.Tensor,
        recurrent_weights: torch.Tensor,
        state: Optional[LIFCorrelationState] = None,
    ) -> Tuple[torch.Tensor, LIFCorrelationState]:
        check_input(input_tensor, "input_tensor", 2)
        if input_tensor.dim() != 2 or input_tensor.shape[1] != self.input_size:
            raise ValueError(
                f"input_tensor must have shape (batch, input_size={self.input_size}), "
                f"got {tuple(input_tensor.shape)}"
            )
        for name, weights, shape in (
            ("input_weights", input_weights, (self.hidden_size, self.input_size)),
            ("recurrent_weights", recurrent_weights, (self.hidden_size,) * 2),
        ):
            if not isinstance(weights, torch.Tensor):
                raise TypeError(
                    f"{name} must be a torch.Tensor, got {type(weights).__name__}"
                )
            check_shape(weights, shape, name)
        if state is None:
            state = self.initial_state(input_tensor)
        elif not isinstance(state, LIFCorrelationState):
            raise TypeError(
                f"state must be a LIFCorrelationState (or None), got {type(state).__name__}"
            )
        return lif_correlation_step(
            input_tensor, state, input_weights, recurrent_weights, self.p, self.dt
        )
