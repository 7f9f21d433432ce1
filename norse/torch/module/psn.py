r"""Parallel spiking neuron layers (PSN, masked PSN, sliding PSN; Fang et al., NeurIPS 2023).

Equations: :mod:`norse.torch.functional.psn`. The layers hold the learnable weights and
bias (initialised as in SpikingJelly: Kaiming-uniform weights, bias -1, i.e. threshold 1;
the sliding PSN's weights optionally :math:`(\dots, 1/4, 1/2, 1)`), and follow the time
conventions of the other layers: input ``(T, batch, ...)``, every call returns
``(spikes, state)``.

==================  =====================  ==============================================
layer               input                  state
==================  =====================  ==============================================
:class:`PSN`        ``(T, batch, ...)``    none (``None``): the weights span the sequence
:class:`MaskedPSN`  ``(T, batch, ...)``    none (``None``)
:class:`SlidingPSN` ``(T, batch, ...)``    :class:`.SlidingPSNState` (last ``k - 1``
                                           inputs), so a sequence may come in pieces
:class:`SlidingPSNCell`  ``(batch, ...)``  :class:`.SlidingPSNState`, one step per call
==================  =====================  ==============================================
"""

import math
from typing import Optional, Tuple

import torch

from norse.torch.functional.psn import (
    PSNParameters,
    SlidingPSNState,
    masked_psn_mask,
    psn_feed_forward,
    sliding_psn_feed_forward,
    sliding_psn_initial_state,
    sliding_psn_step,
)
from norse.torch.functional.threshold import check_method
from norse.torch.functional.validation import (
    check_count,
    check_parameter_type,
    check_sequence,
)


def _check_parameters(p: PSNParameters) -> PSNParameters:
    check_parameter_type(p, PSNParameters)
    check_method(p.method, "p.method")
    return p


def _kaiming(shape: Tuple[int, ...]) -> torch.Tensor:
    """``torch.nn.Linear``'s (and SpikingJelly's) weight initialisation."""
    weight = torch.empty(shape)
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    return weight


class _WholeSequence(torch.nn.Module):
    """Shared by :class:`PSN` and :class:`MaskedPSN`: a ``(T, T)`` weight, a ``(T,)``
    bias, and input checks for sequences of exactly ``T`` steps."""

    def __init__(self, T: int, p: PSNParameters):
        super().__init__()
        self.T = check_count(T, "T")
        self.p = _check_parameters(p)
        self.weight = torch.nn.Parameter(_kaiming((self.T, self.T)))
        self.bias = torch.nn.Parameter(torch.full((self.T,), -1.0))

    def _check(self, input_tensor: torch.Tensor, state: None) -> None:
        if state is not None:
            raise ValueError(
                f"{type(self).__name__} keeps no state between calls (its weights span "
                f"the whole sequence), so state must be None, got {type(state).__name__}"
            )
        check_sequence(input_tensor, min_dim=2)
        if input_tensor.shape[0] != self.T:
            raise ValueError(
                f"input_tensor must have T={self.T} time steps (dimension 0), got "
                f"{input_tensor.shape[0]}"
            )

    def extra_repr(self) -> str:
        return f"T={self.T}, p={self.p}"


class PSN(_WholeSequence):
    r"""Parallel spiking neurons: :math:`S = \Theta(W X + b)` with a learnable ``(T, T)``
    weight :math:`W` and bias :math:`b` (``(T,)``, minus the threshold of each step).

    Every step weighs the inputs of all ``T`` steps (future ones included), so the layer
    takes sequences of exactly ``T`` steps.

    Parameters:
        T (int): number of time steps
        p (PSNParameters): surrogate gradient (``method``, ``alpha``)

    Shapes: input and spikes ``(T, batch, ...)``; the state is ``None``.
    """

    def __init__(self, T: int, p: PSNParameters = PSNParameters()):
        super().__init__(T, p)

    def forward(
        self, input_tensor: torch.Tensor, state: None = None
    ) -> Tuple[torch.Tensor, None]:
        self._check(input_tensor, state)
        return psn_feed_forward(input_tensor, self.weight, self.bias, self.p), None


class MaskedPSN(_WholeSequence):
    r"""Masked parallel spiking neurons of order ``k``:
    :math:`S = \Theta\big((W \odot M_k(\lambda)) X + b\big)`, where :math:`M_k` keeps the
    current and ``k - 1`` previous inputs and
    :math:`M_k(\lambda) = \lambda M_k + (1 - \lambda) J` blends it with the all-ones
    matrix (progressive masking: raise :attr:`lambda_` from 0 to 1 during training; at
    1 the layer is causal).

    Parameters:
        k (int): order (how many inputs, the current one included, each step sees)
        T (int): number of time steps
        lambda_init (float): initial :math:`\lambda`, default 0 (as SpikingJelly)
        p (PSNParameters): surrogate gradient

    Shapes: input and spikes ``(T, batch, ...)``; the state is ``None``.
    """

    def __init__(
        self,
        k: int,
        T: int,
        lambda_init: float = 0.0,
        p: PSNParameters = PSNParameters(),
    ):
        super().__init__(T, p)
        self.k = check_count(k, "k")
        self.register_buffer("_lambda", torch.tensor(0.0))
        self.lambda_ = lambda_init

    @property
    def lambda_(self) -> torch.Tensor:
        r"""The masking progress :math:`\lambda \in [0, 1]`."""
        return self._lambda

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"lambda_ must lie in [0, 1], got {value}")
        self._lambda.fill_(value)

    def masked_weight(self) -> torch.Tensor:
        r""":math:`W \odot M_k(\lambda)`, ``(T, T)``."""
        weight = self.weight
        lambda_ = self._lambda.to(weight.dtype)
        mask = masked_psn_mask(self.T, self.k, lambda_, weight.dtype, weight.device)
        return weight * mask

    def forward(
        self, input_tensor: torch.Tensor, state: None = None
    ) -> Tuple[torch.Tensor, None]:
        self._check(input_tensor, state)
        spikes = psn_feed_forward(input_tensor, self.masked_weight(), self.bias, self.p)
        return spikes, None

    def extra_repr(self) -> str:
        return f"k={self.k}, T={self.T}, lambda_={float(self._lambda)}, p={self.p}"


class _Sliding(torch.nn.Module):
    """Weights, state handling and the constructor shared by the two sliding PSN
    forms."""

    def __init__(
        self, k: int, exp_init: bool = True, p: PSNParameters = PSNParameters()
    ):
        super().__init__()
        self.k = check_count(k, "k")
        self.p = _check_parameters(p)
        if exp_init:
            # (..., 1/4, 1/2, 1): the current input counts most
            weight = 0.5 ** torch.arange(self.k - 1, -1, -1, dtype=torch.float32)
        else:
            weight = _kaiming((1, self.k))[0]
        self.weight = torch.nn.Parameter(weight)
        self.bias = torch.nn.Parameter(torch.tensor(-1.0))

    def _state(
        self, input_step: torch.Tensor, state: Optional[SlidingPSNState]
    ) -> SlidingPSNState:
        if state is None:
            return sliding_psn_initial_state(input_step, self.k)
        if not isinstance(state, SlidingPSNState):
            raise TypeError(
                f"state must be a SlidingPSNState (or None), got {type(state).__name__}"
            )
        return state

    def extra_repr(self) -> str:
        return f"k={self.k}, p={self.p}"


class SlidingPSN(_Sliding):
    r"""Sliding parallel spiking neurons of order ``k`` *with* time:
    :math:`H_t = \sum_{i=0}^{k-1} w_i X_{t-k+1+i} + b`, :math:`S_t = \Theta(H_t)`, with
    ``k`` weights shared over time (causal; any ``T``).

    Parameters:
        k (int): order
        exp_init (bool): weights start at :math:`(\dots, 1/4, 1/2, 1)` (default) rather
            than Kaiming-uniform
        p (PSNParameters): surrogate gradient

    Shapes: input and spikes ``(T, batch, ...)``; the state holds the last ``k - 1``
    inputs, ``(k - 1, batch, ...)`` (zeros on the first call), so that a sequence split
    into pieces gives the spikes of the whole.
    """

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[SlidingPSNState] = None
    ) -> Tuple[torch.Tensor, SlidingPSNState]:
        check_sequence(input_tensor, min_dim=2)
        state = self._state(input_tensor[0], state)
        return sliding_psn_feed_forward(
            input_tensor, state, self.weight, self.bias, self.p
        )


class SlidingPSNCell(_Sliding):
    """One step of sliding parallel spiking neurons (*without* time): input
    ``(batch, ...)``; spikes ``(batch, ...)`` and the state of the last ``k - 1`` inputs.

    Parameters: as :class:`SlidingPSN`. Its weights may be loaded from a
    :class:`SlidingPSN` (same ``state_dict``) and give the same spikes step by step.
    """

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[SlidingPSNState] = None
    ) -> Tuple[torch.Tensor, SlidingPSNState]:
        if not isinstance(input_tensor, torch.Tensor):
            raise TypeError(
                f"input_tensor must be a torch.Tensor, got {type(input_tensor).__name__}"
            )
        state = self._state(input_tensor, state)
        return sliding_psn_step(input_tensor, state, self.weight, self.bias, self.p)
