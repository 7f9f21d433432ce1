r"""A recurrent LIF layer with correlation sensors on its input and recurrent synapses.

One step runs :func:`~norse.torch.functional.lif.lif_step` and then updates two
:mod:`correlation sensors <norse.torch.functional.correlation_sensor>` with the new
postsynaptic spikes: one over the input synapses (presynaptic spikes: the input) and one
over the recurrent synapses (presynaptic spikes: the layer's spikes of the *previous*
step, the ones that travelled through the recurrent weights in this step).

Shapes: input ``(batch, n_input)``, spikes and LIF state ``(batch, n_hidden)``, input
sensor ``(batch, n_input, n_hidden)``, recurrent sensor ``(batch, n_hidden, n_hidden)``.
"""

from typing import NamedTuple, Tuple

import torch

from norse.torch.functional.conventions import documented_fields, step_arguments
from norse.torch.functional.correlation_sensor import (
    CorrelationSensorParameters,
    CorrelationSensorState,
    correlation_sensor_step,
)
from norse.torch.functional.lif import LIFParameters, LIFState, lif_step


@documented_fields(
    lif_state="the neurons",
    input_correlation_state="sensor of the input synapses",
    recurrent_correlation_state="sensor of the recurrent synapses",
)
class LIFCorrelationState(NamedTuple):
    """State of a LIF layer with correlation sensors."""

    lif_state: LIFState
    input_correlation_state: CorrelationSensorState
    recurrent_correlation_state: CorrelationSensorState


@documented_fields(
    lif_parameters="the neurons",
    input_correlation_parameters="input sensor",
    recurrent_correlation_parameters="recurrent sensor",
)
class LIFCorrelationParameters(NamedTuple):
    """Parameters of a LIF layer with correlation sensors."""

    lif_parameters: LIFParameters = LIFParameters()
    input_correlation_parameters: CorrelationSensorParameters = (
        CorrelationSensorParameters()
    )
    recurrent_correlation_parameters: CorrelationSensorParameters = (
        CorrelationSensorParameters()
    )


@step_arguments(
    state="``lif_state`` of shape ``(batch, hidden_size)``, the input and recurrent "
    "sensors' tensors ``(batch, input_size, hidden_size)`` and "
    "``(batch, hidden_size, hidden_size)``",
    p="parameters of the neurons and of both sensors",
)
def lif_correlation_step(
    input_tensor: torch.Tensor,
    state: LIFCorrelationState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFCorrelationParameters = LIFCorrelationParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFCorrelationState]:
    """One Euler step of a recurrent LIF layer and its two correlation sensors."""
    z_new, lif_state = lif_step(
        input_tensor,
        state.lif_state,
        input_weights,
        recurrent_weights,
        p.lif_parameters,
        dt,
    )
    input_sensor = correlation_sensor_step(
        z_pre=input_tensor,
        z_post=z_new,
        state=state.input_correlation_state,
        p=p.input_correlation_parameters,
        dt=dt,
    )
    recurrent_sensor = correlation_sensor_step(
        z_pre=state.lif_state.z,
        z_post=z_new,
        state=state.recurrent_correlation_state,
        p=p.recurrent_correlation_parameters,
        dt=dt,
    )
    return z_new, LIFCorrelationState(
        lif_state=lif_state,
        input_correlation_state=input_sensor,
        recurrent_correlation_state=recurrent_sensor,
    )
