"""The synaptic input of recurrently connected neurons, shared by every recurrent step.

A recurrent population receives the input of this step through ``input_weights``
(``(hidden_size, input_size)``) and its own spikes of the previous step through
``recurrent_weights`` (``(hidden_size, hidden_size)``):

.. math::
    I = x W_{\\text{in}}^T + z_{t-1} W_{\\text{rec}}^T

:func:`recurrent_jump` adds it to a state variable (the current ``i`` of the LIF
models, the voltage of the IAF neuron) in the order ``value + input + recurrent``, the
order of Norse 1.1 (floating-point sums depend on it).
"""

import torch


def project(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``x @ weights.T`` for a dense ``x`` (:func:`torch.nn.functional.linear`) or a
    sparse (COO) one (:func:`torch.sparse.mm`)."""
    if x.is_sparse:
        return torch.sparse.mm(x, weights.t())
    return torch.nn.functional.linear(x, weights)


def recurrent_input(
    input_tensor: torch.Tensor,
    z: torch.Tensor,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
) -> torch.Tensor:
    """The synaptic input ``input @ input_weights.T + z @ recurrent_weights.T`` (dense or
    sparse COO ``input`` and ``z``, see :func:`project`)."""
    return project(input_tensor, input_weights) + project(z, recurrent_weights)


def recurrent_jump(
    value: torch.Tensor,
    input_tensor: torch.Tensor,
    z: torch.Tensor,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
) -> torch.Tensor:
    """``value + input @ input_weights.T + z @ recurrent_weights.T``, summed left to
    right (not ``value + recurrent_input(...)``, which rounds differently)."""
    return value + project(input_tensor, input_weights) + project(z, recurrent_weights)
