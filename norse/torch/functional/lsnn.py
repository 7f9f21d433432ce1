r"""Long short-term memory spiking neurons (LSNN): LIF neurons with an adaptive threshold.

After G. Bellec, D. Salaj, A. Subramoney, R. Legenstein and W. Maass, "Long short-term
memory and learning-to-learn in networks of spiking neurons" (NeurIPS 2018).

Dynamics (time in seconds, ``tau_*_inv`` in 1/s):

.. math::
    \begin{align*}
        \dot{v} &= \tau_{\text{mem}}^{-1} (v_{\text{leak}} - v + i) \\
        \dot{i} &= -\tau_{\text{syn}}^{-1} i \\
        \dot{b} &= \tau_{\text{adapt}}^{-1} (v_{\text{th}} - b)
    \end{align*}

:math:`b` is the neuron's own threshold: it relaxes to :math:`v_{\text{th}}` with the
(slow) adaptation time constant and jumps by :math:`\beta` with every spike, so a neuron
that fired recently needs more drive to fire again. Jump condition and transitions:
:math:`z = \Theta(v - b)`, :math:`v \leftarrow (1 - z) v + z v_{\text{reset}}`,
:math:`b \leftarrow b + \beta z`, :math:`i \leftarrow i + i_{\text{in}}`.

One explicit Euler step of length ``dt`` (the update order of Norse 1.1):

1. decay:  ``v_dec = v + dt * tau_mem_inv * (v_leak - v + i)``,
   ``i_dec = i - dt * tau_syn_inv * i``, ``b_dec = b + dt * tau_adapt_inv * (v_th - b)``
2. spike:  ``z = threshold(v_dec - b_dec, method, alpha)``
3. reset:  ``v_new = (1 - z) * v_dec + z * v_reset``, ``b_new = b_dec + beta * z``
4. input:  ``i_new = i_dec + input`` (unlike :mod:`.lif`, the input of a step reaches the
   voltage in the *next* step)

:func:`ada_lif_step` is the variant with an adaptation *current* instead (see there).
"""

from typing import NamedTuple, Tuple

import torch

from norse.torch.functional.conventions import documented_fields, step_arguments
from norse.torch.functional.synapse import recurrent_jump
from norse.torch.functional.threshold import threshold

#: The input of a feed-forward LSNN step (it reaches the voltage in the next step).
LATE_INPUT = "input current of shape ``(...)``, added to ``i`` at the end of the step"

_THRESHOLD = "adaptive threshold (starts at ``v_th``)"


@documented_fields(
    tau_adapt_inv="inverse adaptation time constant of the threshold (1/s); "
    "default 1/800",
    v_th="resting threshold, the value ``b`` relaxes to",
    beta="threshold increase per spike; default 1.8",
)
class LSNNParameters(NamedTuple):
    """Parameters of an LSNN (adaptive-threshold LIF) neuron."""

    tau_syn_inv: torch.Tensor = torch.as_tensor(1.0 / 5e-3)
    tau_mem_inv: torch.Tensor = torch.as_tensor(1.0 / 1e-2)
    tau_adapt_inv: torch.Tensor = torch.as_tensor(1.0 / 800)
    v_leak: torch.Tensor = torch.as_tensor(0.0)
    v_th: torch.Tensor = torch.as_tensor(1.0)
    v_reset: torch.Tensor = torch.as_tensor(0.0)
    beta: torch.Tensor = torch.as_tensor(1.8)
    method: str = "super"
    alpha: float = torch.as_tensor(100.0)


@documented_fields(b=_THRESHOLD)
class LSNNState(NamedTuple):
    """State of a recurrent LSNN neuron."""

    z: torch.Tensor
    v: torch.Tensor
    i: torch.Tensor
    b: torch.Tensor


@documented_fields(b=_THRESHOLD)
class LSNNFeedForwardState(NamedTuple):
    """State of a feed-forward LSNN neuron."""

    v: torch.Tensor
    i: torch.Tensor
    b: torch.Tensor


def _lsnn_dynamics(
    v: torch.Tensor, i: torch.Tensor, b: torch.Tensor, p: LSNNParameters, dt: float
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Euler decay and spike: returns (spikes, decayed v, decayed i, decayed b)."""
    v_decayed = v + dt * p.tau_mem_inv * (p.v_leak - v + i)
    i_decayed = i - dt * p.tau_syn_inv * i
    b_decayed = b + dt * p.tau_adapt_inv * (p.v_th - b)
    z = threshold(v_decayed - b_decayed, p.method, p.alpha)
    return z, v_decayed, i_decayed, b_decayed


@step_arguments(input_tensor=LATE_INPUT)
def lsnn_feed_forward_step(
    input_tensor: torch.Tensor,
    state: LSNNFeedForwardState,
    p: LSNNParameters = LSNNParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LSNNFeedForwardState]:
    """One Euler step of a feed-forward LSNN neuron (see the module docstring)."""
    z, v_decayed, i_decayed, b_decayed = _lsnn_dynamics(
        state.v, state.i, state.b, p, dt
    )
    v_new = (1 - z) * v_decayed + z * p.v_reset
    b_new = b_decayed + z * p.beta
    return z, LSNNFeedForwardState(v=v_new, i=i_decayed + input_tensor, b=b_new)


@step_arguments()
def lsnn_step(
    input_tensor: torch.Tensor,
    state: LSNNState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LSNNParameters = LSNNParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LSNNState]:
    """One Euler step of a recurrently connected LSNN neuron.

    The current jumps (at the end of the step) by ``input @ input_weights.T +
    state.z @ recurrent_weights.T``. Reset and threshold jump use detached spikes (as in
    Norse 1.1): gradients reach ``v`` only through the surrogate.
    """
    z, v_decayed, i_decayed, b_decayed = _lsnn_dynamics(
        state.v, state.i, state.b, p, dt
    )
    z_reset = z.detach()
    v_new = (1 - z_reset) * v_decayed + z_reset * p.v_reset
    b_new = b_decayed + z_reset * p.beta
    i_new = recurrent_jump(
        i_decayed, input_tensor, state.z, input_weights, recurrent_weights
    )
    return z, LSNNState(z, v_new, i_new, b_new)


@step_arguments()
def ada_lif_step(
    input_tensor: torch.Tensor,
    state: LSNNState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LSNNParameters = LSNNParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LSNNState]:
    r"""One Euler step of a recurrent LIF neuron with an adaptation *current* ``b``.

    .. math::
        \dot{v} = \tau_{\text{mem}}^{-1}(v_{\text{leak}} - v + i - b), \quad
        \dot{i} = -\tau_{\text{syn}}^{-1} i, \quad \dot{b} = -\tau_{\text{adapt}}^{-1} b

    with :math:`z = \Theta(v - v_{\text{th}})`, the subtractive reset
    :math:`v \leftarrow v - z (v_{\text{th}} - v_{\text{reset}})` and
    :math:`b \leftarrow b + \beta z`; the input reaches ``i`` at the end of the step.
    Here ``b`` (in ``state.b``) starts at zero.
    """
    v_decayed = state.v + dt * p.tau_mem_inv * (p.v_leak - state.v + state.i - state.b)
    i_decayed = state.i - dt * p.tau_syn_inv * state.i
    b_decayed = state.b - dt * p.tau_adapt_inv * state.b
    z = threshold(v_decayed - p.v_th, p.method, p.alpha)
    v_new = v_decayed - z * (p.v_th - p.v_reset)
    b_new = b_decayed + z * p.beta
    i_new = recurrent_jump(
        i_decayed, input_tensor, state.z, input_weights, recurrent_weights
    )
    return z, LSNNState(z, v_new, i_new, b_new)
