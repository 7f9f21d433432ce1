r"""Adjoint (EventProp) gradients of LSNN (adaptive-threshold LIF) neurons.

Forward: one Euler step of :mod:`norse.torch.functional.lsnn` with a Heaviside threshold:

.. math::
    v_d = v + \Delta t\,\tau_m^{-1}(v_{\text{leak}} - v + i), \quad
    i_d = (1 - \Delta t\,\tau_s^{-1})\, i, \quad
    b_d = b + \Delta t\,\tau_a^{-1}(v_{\text{th}} - b), \\
    z = \Theta(v_d - b_d), \quad v' = (1 - z) v_d + z v_{\text{reset}}, \quad
    b' = b_d + \beta z, \quad i' = i_d + I.

Backward: between spikes the exact transpose of the Euler step (so without spikes it equals
backpropagation through time through :func:`.lsnn_feed_forward_step`). A spike is a
crossing of :math:`v - b` through zero; moving the state before it by
:math:`(\delta v, \delta b)` moves the spike time by
:math:`\delta t = -(\delta v - \delta b) / D` with the crossing rate
:math:`D = \dot v^- - \dot b^-`, and after the spike the voltage by :math:`-\dot v^+\delta t`
and the threshold by :math:`\tau_a^{-1}\beta\,\delta t` (its jump comes later, so it has
relaxed less). With the gradients :math:`\lambda_v, \lambda_b, g_z` of :math:`v', b', z`
and the output convention :math:`\partial L/\partial t_k = -g_z` of :mod:`.lif_adjoint`,
the jump conditions are

.. math::
    \lambda_{v_d} = \left(\dot v^+ \lambda_v - \tau_a^{-1}\beta\,\lambda_b + g_z\right) / D,
    \qquad \lambda_{b_d} = \lambda_b - \lambda_{v_d}

with :math:`\dot v^- = \tau_m^{-1}(v_{\text{leak}} - v + i)`,
:math:`\dot b^- = \tau_a^{-1}(v_{\text{th}} - b)` (the slopes of the Euler step that
crossed) and :math:`\dot v^+ = \tau_m^{-1}(v_{\text{leak}} - v_{\text{reset}} + i)`.

Differences to Norse 1.1: Norse 1.1 treats the threshold like a second voltage with its own
reset-like jump (:math:`\lambda_b` scaled by :math:`\dot b^+/\dot b^-`, output term
:math:`g_z/\dot b^-`, which is zero or of either sign depending on :math:`b - v_{\text{th}}`)
instead of the crossing of :math:`v - b`, and couples :math:`\lambda_i` to
:math:`\lambda_v` with :math:`\tau_s^{-1}` instead of :math:`\tau_m^{-1}`. Neuron parameters
receive no gradient.
"""

from typing import Any, Tuple

import torch

from norse.torch.functional.adjoint.lif_adjoint import (
    as_dense,
    crossing_rate_inverse,
    feed_forward_kept,
    input_gradient,
    load_factors,
    recurrent_gradients,
    save_factors,
)
from norse.torch.functional.conventions import step_arguments

# The plain step is importable from here as in Norse 1.1 (whose tests compare the
# adjoint steps with it).
from norse.torch.functional.lsnn import (
    LATE_INPUT,
    LSNNFeedForwardState,
    LSNNParameters,
    LSNNState,
    lsnn_feed_forward_step,
    lsnn_step,  # noqa: F401 (re-exported)
)
from norse.torch.functional.synapse import recurrent_input


def lsnn_adjoint_forward(
    ctx: Any,
    current: torch.Tensor,
    v: torch.Tensor,
    i: torch.Tensor,
    b: torch.Tensor,
    p: LSNNParameters,
    dt: float,
    kept: Tuple[torch.Tensor, ...],
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The LSNN step for the adjoint functions; returns ``(z, v, i, b)`` and saves the
    jump factors of the spikes."""
    state = LSNNFeedForwardState(v, i, b)
    z, new = lsnn_feed_forward_step(current, state, p._replace(method="heaviside"), dt)
    voltage_slope = p.tau_mem_inv * (p.v_leak - v + i)
    threshold_slope = p.tau_adapt_inv * (p.v_th - b)
    inverse_rate = crossing_rate_inverse(z, voltage_slope - threshold_slope)
    voltage_ratio = inverse_rate * p.tau_mem_inv * (p.v_leak - p.v_reset + i)
    threshold_ratio = inverse_rate * p.tau_adapt_inv * p.beta
    ctx.p, ctx.dt = p, dt
    save_factors(ctx, False, (z, inverse_rate, voltage_ratio, threshold_ratio), kept)
    return z, new.v, new.i, new.b


def lsnn_adjoint_backward(
    ctx: Any,
    grad_z: torch.Tensor,
    lambda_v: torch.Tensor,
    lambda_i: torch.Tensor,
    lambda_b: torch.Tensor,
) -> Tuple[torch.Tensor, ...]:
    """Adjoint of :func:`lsnn_adjoint_forward`: gradients with respect to ``v``, ``i``
    and ``b`` (the input current's is ``lambda_i``), the jump-time gradient of the input
    current (see :func:`.synaptic_gradients`) and the ``kept`` tensors."""
    kept, (z, inverse_rate, voltage_ratio, threshold_ratio) = load_factors(ctx)
    p, dt = ctx.p, ctx.dt
    spiked = z > 0
    jump = voltage_ratio * lambda_v - threshold_ratio * lambda_b + inverse_rate * grad_z
    lambda_v_decayed = torch.where(spiked, jump, lambda_v)
    lambda_b_decayed = torch.where(spiked, lambda_b - jump, lambda_b)
    # Transpose of the Euler step, in the operation order of the forward pass.
    membrane = dt * p.tau_mem_inv * lambda_v_decayed
    grad_v = lambda_v_decayed - membrane
    grad_i = membrane + (lambda_i - dt * p.tau_syn_inv * lambda_i)
    grad_b = lambda_b_decayed - dt * p.tau_adapt_inv * lambda_b_decayed
    jump_time_gradient = p.tau_mem_inv * lambda_v_decayed - p.tau_syn_inv * lambda_i
    return grad_v, grad_i, grad_b, jump_time_gradient, kept


class LSNNFeedForwardAdjointFunction(torch.autograd.Function):
    """Autograd function of :func:`lsnn_feed_forward_adjoint_step`:
    ``apply(input, v, i, b, p=LSNNParameters(), dt=0.001) -> (z, v, i, b)``."""

    @staticmethod
    def forward(ctx, input_tensor, v, i, b, p=LSNNParameters(), dt=0.001):
        kept = feed_forward_kept(input_tensor)
        return lsnn_adjoint_forward(ctx, as_dense(input_tensor), v, i, b, p, dt, kept)

    @staticmethod
    def backward(ctx, grad_z, lambda_v, lambda_i, lambda_b):
        grad_v, grad_i, grad_b, _, (kept_input,) = lsnn_adjoint_backward(
            ctx, grad_z, lambda_v, lambda_i, lambda_b
        )
        grad_input = input_gradient(kept_input, lambda_i)
        return grad_input, grad_v, grad_i, grad_b, None, None


class LSNNAdjointFunction(torch.autograd.Function):
    """Autograd function of :func:`lsnn_adjoint_step`: ``apply(input, z, v, i, b,
    input_weights, recurrent_weights, p=LSNNParameters(), dt=0.001) -> (z, v, i, b)``."""

    @staticmethod
    def forward(
        ctx, input_tensor, z, v, i, b, w_in, w_rec, p=LSNNParameters(), dt=0.001
    ):
        current = recurrent_input(input_tensor, z, w_in, w_rec)
        kept = (input_tensor, z, w_in, w_rec)
        return lsnn_adjoint_forward(ctx, current, v, i, b, p, dt, kept)

    @staticmethod
    def backward(ctx, grad_z, lambda_v, lambda_i, lambda_b):
        grad_v, grad_i, grad_b, jump_time, synapse = lsnn_adjoint_backward(
            ctx, grad_z, lambda_v, lambda_i, lambda_b
        )
        return recurrent_gradients(
            ctx, lambda_i, jump_time, synapse, (grad_v, grad_i, grad_b)
        )


@step_arguments(input_tensor=LATE_INPUT)
def lsnn_feed_forward_adjoint_step(
    input_tensor: torch.Tensor,
    s: LSNNFeedForwardState,
    p: LSNNParameters = LSNNParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LSNNFeedForwardState]:
    """One step of a feed-forward LSNN neuron with adjoint gradients (see the module
    docstring); the forward pass equals :func:`.lsnn_feed_forward_step` with a Heaviside
    threshold.
    """
    z, v, i, b = LSNNFeedForwardAdjointFunction.apply(
        input_tensor, s.v, s.i, s.b, p, dt
    )
    return z, LSNNFeedForwardState(v, i, b)


@step_arguments()
def lsnn_adjoint_step(
    input_tensor: torch.Tensor,
    s: LSNNState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LSNNParameters = LSNNParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LSNNState]:
    """One step of a recurrently connected LSNN neuron with adjoint gradients; the forward
    pass equals :func:`.lsnn_step` with a Heaviside threshold.
    """
    z, v, i, b = LSNNAdjointFunction.apply(
        input_tensor, s.z, s.v, s.i, s.b, input_weights, recurrent_weights, p, dt
    )
    return z, LSNNState(z, v, i, b)
