"""Conductance-based LIF (CobaLIF) layers.

Equations and update order: :mod:`norse.torch.functional.coba_lif`. The first state has
``v = v_rest`` and zero conductances (Norse 1.1 started at ``v = 0``, above the default
threshold ``v_thresh = -10``, so every neuron spiked in the first step).

In Norse 1.1 ``CobaLIFCell`` is the *recurrent* cell ``CobaLIFCell(input_size,
hidden_size)``; it stays so here (and is also named :class:`CobaLIFRecurrentCell`). The
other forms are added: :class:`CobaLIFFeedForwardCell`, :class:`CobaLIF` (feed-forward,
with time) and :class:`CobaLIFRecurrent`. As in Norse 1.1 the recurrent forms use the
whole recurrent weight matrix (``autapses=True`` by default) and draw the default
weights from ``N(0, 1/input_size)`` and
``N(0, 1/hidden_size)``.
"""

import operator
from typing import Any, Dict, Optional

import torch

from norse.torch.functional.coba_lif import (
    CobaLIFFeedForwardState,
    CobaLIFParameters,
    CobaLIFState,
    coba_lif_feed_forward_step,
    coba_lif_step,
)
from norse.torch.module.binding import NeuronModel, Step

_coba_lif = NeuronModel(
    CobaLIFParameters(),
    feed_forward=Step(coba_lif_feed_forward_step, CobaLIFFeedForwardState),
    recurrent=Step(coba_lif_step, CobaLIFState),
    initial_values={"v": "v_rest"},
    positive_parameters=("c_m_inv",),
    nonnegative_parameters=("g_l",),
)


def _norse_weights(
    input_size: int,
    hidden_size: int,
    input_weights: Optional[torch.Tensor],
    recurrent_weights: Optional[torch.Tensor],
) -> Dict[str, Any]:
    """Norse 1.1's default CobaLIF weights (for sizes that are valid; invalid ones are
    left to the generic checks, which name them)."""
    try:  # ints, or one-element integer tensors (as the generic checks accept)
        sizes = [operator.index(n) for n in (input_size, hidden_size)]
    except TypeError:
        sizes = [0]
    valid = all(n > 0 for n in sizes) and not isinstance(input_size, bool)
    input_size, hidden_size = sizes if valid else (input_size, hidden_size)
    if valid and input_weights is None:
        input_weights = torch.nn.Parameter(
            torch.randn(hidden_size, input_size) / input_size**0.5
        )
    if valid and recurrent_weights is None:
        recurrent_weights = torch.nn.Parameter(
            torch.randn(hidden_size, hidden_size) / hidden_size**0.5
        )
    return {"input_weights": input_weights, "recurrent_weights": recurrent_weights}


class _NorseWeights:
    """Norse 1.1's arguments of the recurrent forms: ``dt`` fourth, the default weights
    of :func:`_norse_weights` and ``autapses=True``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: CobaLIFParameters = CobaLIFParameters(),
        dt: float = 0.001,
        input_weights: Optional[torch.Tensor] = None,
        recurrent_weights: Optional[torch.Tensor] = None,
        autapses: bool = True,
        **kwargs,
    ):
        super().__init__(
            input_size,
            hidden_size,
            p,
            dt=dt,
            autapses=autapses,
            **_norse_weights(input_size, hidden_size, input_weights, recurrent_weights),
            **kwargs,
        )


class CobaLIFFeedForwardCell(_coba_lif.Cell):
    """One Euler step of a feed-forward conductance-based LIF layer (*without*
    time).

    The positive part of the input raises ``g_e``, the negative part ``g_i``.
    """


class CobaLIF(_coba_lif.SNN):
    """A feed-forward conductance-based LIF layer *with* time: input ``(T, batch,
    ...)``."""


class CobaLIFRecurrentCell(_NorseWeights, _coba_lif.RecurrentCell):
    """One Euler step of a recurrently connected conductance-based LIF layer.

    Positive weights are excitatory, negative weights inhibitory; input and recurrent
    conductances add up.

    Parameters:
        input_size (int): number of input features
        hidden_size (int): number of neurons
        p (CobaLIFParameters): neuron parameters
        dt (float): time step, default 0.001
        input_weights (torch.Tensor): ``(hidden_size, input_size)``; default
            ``N(0, 1/input_size)`` as in Norse 1.1
        recurrent_weights (torch.Tensor): ``(hidden_size, hidden_size)``; default
            ``N(0, 1/hidden_size)``
        autapses (bool): self-connections, default True (Norse 1.1 uses the whole
            recurrent matrix); False zeroes and masks the diagonal

    Shapes: input ``(batch, input_size)``; spikes and state ``(batch, hidden_size)``.

    Example:
        >>> import torch, norse.torch as norse
        >>> cell = norse.CobaLIFCell(10, 20)
        >>> spikes, state = cell(torch.randn(16, 10))
        >>> spikes.shape
        torch.Size([16, 20])
    """


class CobaLIFCell(CobaLIFRecurrentCell):
    """Norse 1.1's name of the recurrent :class:`CobaLIFRecurrentCell`:
    ``CobaLIFCell(input_size, hidden_size, p=CobaLIFParameters(), dt=0.001)``."""


class CobaLIFRecurrent(_NorseWeights, _coba_lif.Recurrent):
    """A recurrently connected conductance-based LIF layer *with* time: input
    ``(T, batch, input_size)``.

    Parameters: as :class:`CobaLIFRecurrentCell` (also the Norse 1.1 weights and
    ``autapses=True``), plus ``record_states``.
    """
