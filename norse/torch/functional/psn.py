r"""Parallel spiking neurons (PSN; Fang et al., NeurIPS 2023).

The PSN family drops the reset, so that a neuron's membrane is a linear function of its
whole input sequence, computed for all time steps at once by one matrix product:

.. math::
    \begin{align*}
        H &= W X + b, \qquad W \in \mathbb{R}^{T \times T},\ b \in \mathbb{R}^{T},\
            X \in \mathbb{R}^{T \times N} \\
        S &= \Theta(H)
    \end{align*}

(``b = -`` the threshold of each step; the initialisation of SpikingJelly, whose
parameters load unchanged, is :math:`b = -1`, i.e. a threshold of 1). Variants:

* PSN: :math:`W` a free ``(T, T)`` matrix; every step sees the whole sequence, so it
  is not causal and needs a fixed ``T``.
* masked PSN of order ``k``: :math:`W \odot M_k(\lambda)` with the band mask
  :math:`M_k[t, s] = 1` for :math:`s \le t \le s + k - 1` (the last ``k`` inputs, causal)
  blended with the all-ones matrix :math:`J` during training:
  :math:`M_k(\lambda) = \lambda M_k + (1 - \lambda) J` (progressive masking, :math:`\lambda`
  rising from 0 to 1).
* sliding PSN of order ``k``: one set of ``k`` weights shared over time,
  :math:`H_t = \sum_{i=0}^{k-1} w_i X_{t-k+1+i} + b` (inputs before the first step are
  zero, or those held in the state): causal, any ``T``, and step-able.

The spikes use the threshold functions of :mod:`.threshold` (``p.method``, ``p.alpha``),
so the surrogate gradient is any of the registered ones. Inputs and outputs are
dimensionless (the membrane is a weighted sum of the inputs).
"""

from typing import NamedTuple, Optional, Tuple, Union

import torch

from norse.torch.functional.threshold import threshold
from norse.torch.functional.validation import (
    check_count,
    check_sequence,
    check_shape,
)


class PSNParameters(NamedTuple):
    """Threshold settings of the parallel spiking neurons.

    Parameters:
        method (str): surrogate gradient method, see :mod:`.threshold`
        alpha (float): surrogate gradient sharpness
    """

    method: str = "super"
    alpha: float = torch.as_tensor(100.0)


class SlidingPSNState(NamedTuple):
    """State of a sliding PSN: the last ``k - 1`` inputs, oldest first.

    Parameters:
        history (torch.Tensor): ``(k - 1, ...)``; zeros before the first step
    """

    history: torch.Tensor


def _check_matrix(weight: torch.Tensor, bias: torch.Tensor, steps: int) -> None:
    check_shape(weight, (steps, steps), "weight", "(T, T)")
    check_shape(bias, (steps,), "bias", "(T,)")


def psn_membrane(
    input_tensor: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """:math:`H = W X + b` over time: input ``(T, ...)``, weight ``(T, T)``, bias
    ``(T,)``; returns ``(T, ...)``."""
    check_sequence(input_tensor)
    steps = input_tensor.shape[0]
    _check_matrix(weight, bias, steps)
    flat = input_tensor.reshape(steps, -1)
    return torch.addmm(bias.unsqueeze(1), weight, flat).reshape(input_tensor.shape)


def psn_feed_forward(
    input_tensor: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    p: PSNParameters = PSNParameters(),
) -> torch.Tensor:
    """A PSN (or masked PSN, with a masked ``weight``) over a whole sequence:
    :math:`S = \\Theta(W X + b)`.

    Parameters:
        input_tensor (torch.Tensor): ``(T, ...)``
        weight (torch.Tensor): ``(T, T)``; row ``t`` weighs the inputs for step ``t``
        bias (torch.Tensor): ``(T,)``; minus the threshold of each step
        p (PSNParameters): surrogate gradient

    Returns:
        Spikes ``(T, ...)``.
    """
    return threshold(psn_membrane(input_tensor, weight, bias), p.method, p.alpha)


def masked_psn_mask(
    steps: int,
    order: int,
    lambda_: Union[float, torch.Tensor] = 1.0,
    dtype: Optional[torch.dtype] = None,
    device: Optional[torch.device] = None,
) -> torch.Tensor:
    r""":math:`M_k(\lambda) = \lambda M_k + (1 - \lambda) J`, shape ``(T, T)``, with the
    band :math:`M_k[t, s] = 1` for :math:`s \le t \le s + k - 1` (else 0)."""
    steps, order = check_count(steps, "steps"), check_count(order, "order")
    ones = torch.ones(steps, steps, dtype=dtype, device=device)
    band = torch.tril(ones) * torch.triu(ones, -(order - 1))
    if isinstance(lambda_, torch.Tensor) or lambda_ != 1.0:
        return lambda_ * band + (1.0 - lambda_) * ones
    return band


def sliding_psn_initial_state(input_step: torch.Tensor, order: int) -> SlidingPSNState:
    """Zeros for the ``k - 1`` inputs before the first step, for inputs shaped like
    ``input_step`` ``(...)``."""
    return SlidingPSNState(input_step.new_zeros((order - 1, *input_step.shape)))


def _check_sliding(weight: torch.Tensor, state: SlidingPSNState, step_shape) -> None:
    if weight.dim() != 1 or weight.shape[0] < 1:
        raise ValueError(
            f"weight must have shape (k,) with k >= 1, got {tuple(weight.shape)}"
        )
    history_shape = (weight.shape[0] - 1, *step_shape)
    check_shape(state.history, history_shape, "state.history", "(k - 1, ...)")


def sliding_psn_feed_forward(
    input_tensor: torch.Tensor,
    state: SlidingPSNState,
    weight: torch.Tensor,
    bias: torch.Tensor,
    p: PSNParameters = PSNParameters(),
) -> Tuple[torch.Tensor, SlidingPSNState]:
    r"""A sliding PSN over a sequence: :math:`H_t = \sum_{i=0}^{k-1} w_i X_{t-k+1+i} + b`,
    :math:`S_t = \Theta(H_t)`, where the inputs before step 0 come from ``state``.

    Parameters:
        input_tensor (torch.Tensor): ``(T, ...)``
        state (SlidingPSNState): the ``k - 1`` inputs before, ``(k - 1, ...)``
        weight (torch.Tensor): ``(k,)``; ``w_{k-1}`` weighs the current input
        bias (torch.Tensor): a scalar, minus the threshold
        p (PSNParameters): surrogate gradient

    Returns:
        Spikes ``(T, ...)`` and the state after the last step (its last ``k - 1``
        inputs).
    """
    check_sequence(input_tensor)
    _check_sliding(weight, state, input_tensor.shape[1:])
    steps, order = input_tensor.shape[0], weight.shape[0]
    inputs = torch.cat((state.history.to(input_tensor.dtype), input_tensor))
    # k shifted views, weighted: k element-wise passes (k is small; a (T, T) product
    # would cost T/k times more)
    membrane = bias + weight[0] * inputs[:steps]
    for lag in range(1, order):
        membrane = membrane + weight[lag] * inputs[lag : lag + steps]
    spikes = threshold(membrane, p.method, p.alpha)
    return spikes, SlidingPSNState(inputs[inputs.shape[0] - (order - 1) :])


def sliding_psn_step(
    input_tensor: torch.Tensor,
    state: SlidingPSNState,
    weight: torch.Tensor,
    bias: torch.Tensor,
    p: PSNParameters = PSNParameters(),
) -> Tuple[torch.Tensor, SlidingPSNState]:
    """One step of a sliding PSN: input ``(...)``, state ``(k - 1, ...)``; returns the
    spikes ``(...)`` and the state with the input appended (the oldest dropped)."""
    spikes, state = sliding_psn_feed_forward(
        input_tensor.unsqueeze(0), state, weight, bias, p
    )
    return spikes[0], state
