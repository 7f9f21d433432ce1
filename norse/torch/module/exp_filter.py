r"""Exponential smoothing of a sequence after a linear layer.

.. math::
    y_0 = W x_0 + b, \qquad y_t = W x_t + b + \alpha\, y_{t-1}, \qquad
    \alpha = e^{-\Delta t\, \tau_{filter}^{-1}}

See :mod:`norse.torch.functional.filter`.
"""

import math
from typing import Optional

import torch

from norse.torch.functional.filter import exp_filter_step
from norse.torch.functional.validation import (
    check_input,
    check_sequence,
    check_tensors_match,
)
from norse.torch.module.neuron import check_sizes


class ExpFilter(torch.nn.Module):
    """A linear layer followed by an exponential filter over time.

    Parameters:
        input_size (int): number of input features
        output_size (int): number of output features
        tau_filter_inv (float): inverse filter time constant (1/s); 0 sums without decay
        dt (float): time step (s), default 0.001
        input_weights (torch.Tensor): initial weights ``(output_size, input_size)``
            (default: the ``torch.nn.Linear`` initialisation)
        bias (bool): whether the linear layer has a bias

    Shapes: input ``(T, ..., input_size)``; output ``(T, ..., output_size)``.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        tau_filter_inv: float = 1000.0,
        dt: float = 0.001,
        input_weights: Optional[torch.Tensor] = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_sizes(input_size=input_size, output_size=output_size)
        if not (math.isfinite(tau_filter_inv) and tau_filter_inv >= 0):
            raise ValueError(
                f"tau_filter_inv must be a finite, non-negative float (1/s), got {tau_filter_inv!r}"
            )
        if not (isinstance(dt, (int, float)) and dt > 0):
            raise ValueError(f"dt must be a positive float (seconds), got {dt!r}")
        self.input_size = torch.as_tensor(input_size)
        self.output_size = torch.as_tensor(output_size)
        self.parameter = math.exp(-dt * tau_filter_inv)
        self.linear = torch.nn.Linear(input_size, output_size, bias=bias)
        if input_weights is not None:
            if not isinstance(input_weights, torch.Tensor):
                raise TypeError(
                    f"input_weights must be a torch.Tensor, got {type(input_weights).__name__}"
                )
            if tuple(input_weights.shape) != (output_size, input_size):
                raise ValueError(
                    f"input_weights must have shape (output_size, input_size) = "
                    f"({output_size}, {input_size}), got {tuple(input_weights.shape)}"
                )
            with torch.no_grad():
                self.linear.weight.copy_(input_weights)

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, output_size={self.output_size}, "
            f"parameter={self.parameter}"
        )

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        check_input(input_tensor, "input_tensor", 2)
        if input_tensor.shape[-1] != int(self.input_size):
            raise ValueError(
                f"input_tensor must end in input_size={int(self.input_size)} features, "
                f"got shape {tuple(input_tensor.shape)}"
            )
        check_sequence(input_tensor)
        check_tensors_match(input_tensor, [("weights", self.linear.weight)])
        projected = self.linear(input_tensor)
        outputs = [projected[0]]
        for step in projected[1:]:
            outputs.append(exp_filter_step(outputs[-1], step, self.parameter))
        return torch.stack(outputs)
