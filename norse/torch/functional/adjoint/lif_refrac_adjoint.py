r"""Adjoint (EventProp) gradients of refractory LIF neurons.

Forward: one step of :mod:`norse.torch.functional.lif_refrac` with a Heaviside threshold
(a spike sets :math:`\rho = \rho_{\text{reset}}` steps during which the voltage is held at
:math:`v_{\text{reset}}`; the current keeps integrating).

Backward: as :mod:`.lif_adjoint` between spikes (the held voltage passes its adjoint on
unchanged, and its current does not reach it), including the recurrent term. A spike
followed by a refractory period moves, with its time :math:`t_k`, the *release* of the
voltage at the end of the period. Releasing later by :math:`\delta t` lowers the voltage
after the release by :math:`\dot v_{\text{rel}}\,\delta t`, with
:math:`\dot v_{\text{rel}} = \tau_m^{-1}(v_{\text{leak}} - v_{\text{held}} + i)` at the end of
the period. The gradient of :math:`\rho` carries this back to the spike
(:math:`g_\rho` is the gradient with respect to the new :math:`\rho`):

.. math::
    \text{refractory steps:}\quad \frac{\partial L}{\partial \rho} = g_\rho
        \;\left(- \Delta t\, \dot v_{\text{rel}}\, \lambda_v \text{ added in the last
        one}\right), \qquad
    \text{spike:}\quad \lambda_{v_d} = \left(g_z - g_\rho / \Delta t\right) / \dot v^-.

This is the derivative with respect to :math:`\rho` read as a continuous count-down (one
unit per step): a larger :math:`\rho` releases the voltage :math:`\Delta t` per unit later.
So a neuron that starts refractory gets the gradient of its release time in ``rho``. With
``rho_reset = 0`` a spike uses the LIF jump condition of :mod:`.lif_adjoint`.

Differences to Norse 1.1: besides those listed in :mod:`.lif_adjoint`, Norse 1.1 carries
the gradient of ``rho`` through non-refractory steps (so one refractory period's release
also reaches earlier, unrelated spikes) and its sparse and recurrent refractory adjoint
functions do not run (misspelt attribute names; the sparse one takes the LIF state as one
argument, which gets no gradient).
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

# heaviside and the plain step are importable from here as in Norse 1.1 (whose tests
# compare the adjoint steps with the plain ones).
from norse.torch.functional.heaviside import heaviside  # noqa: F401
from norse.torch.functional.lif import LIFFeedForwardState, LIFState
from norse.torch.functional.lif_refrac import (
    LIFRefracFeedForwardState,
    LIFRefracParameters,
    LIFRefracState,
    lif_refrac_feed_forward_step,
    lif_refrac_step,  # noqa: F401 (re-exported)
    lif_refrac_step_sparse,  # noqa: F401 (re-exported)
)
from norse.torch.functional.synapse import recurrent_input


def lif_refrac_adjoint_forward(
    ctx: Any,
    current: torch.Tensor,
    v: torch.Tensor,
    i: torch.Tensor,
    rho: torch.Tensor,
    p: LIFRefracParameters,
    dt: float,
    sparse: bool,
    kept: Tuple[torch.Tensor, ...],
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The refractory LIF step for the adjoint functions; returns ``(z, v, i, rho)`` and
    saves the spike and release factors."""
    lif = p.lif
    hard_threshold = p._replace(lif=lif._replace(method="heaviside"))
    state = LIFRefracFeedForwardState(LIFFeedForwardState(v, i), rho)
    z, new = lif_refrac_feed_forward_step(current, state, hard_threshold, dt)
    i_jump = i + current
    inverse_slope = crossing_rate_inverse(
        z, lif.tau_mem_inv * (lif.v_leak - v + i_jump)
    )
    immediate = torch.as_tensor(p.rho_reset) <= 0
    # Without a refractory period the voltage restarts at once (LIF jump condition);
    # with one, the spike time reaches the loss through the release (rho's gradient).
    ratio = torch.where(
        immediate,
        inverse_slope * lif.tau_mem_inv * (lif.v_leak - lif.v_reset + i_jump),
        torch.zeros_like(inverse_slope),
    )
    through_rho = torch.where(
        immediate, torch.zeros_like(inverse_slope), -inverse_slope / dt
    )
    refractory = rho > 0
    release = torch.where(
        refractory & (new.rho <= 0),
        -dt * lif.tau_mem_inv * (lif.v_leak - new.lif.v + new.lif.i),
        torch.zeros_like(new.lif.v),
    )
    ctx.p, ctx.dt = p, dt
    # The refractory mask is as dense as the spikes are sparse: always kept as it is.
    save_factors(
        ctx,
        sparse,
        (z, inverse_slope, ratio, through_rho, release),
        (*kept, refractory),
    )
    return z, new.lif.v, new.lif.i, new.rho


def lif_refrac_adjoint_backward(
    ctx: Any,
    grad_z: torch.Tensor,
    lambda_v: torch.Tensor,
    lambda_i: torch.Tensor,
    grad_rho: torch.Tensor,
) -> Tuple[torch.Tensor, ...]:
    """Adjoint of :func:`lif_refrac_adjoint_forward`: gradients with respect to ``v``,
    the current after the input jump (= input current and ``i``) and ``rho``, the
    jump-time gradient of the input current (see :func:`.synaptic_gradients`) and the
    ``kept`` tensors."""
    (*kept, refractory), factors = load_factors(ctx)
    z, inverse_slope, ratio, through_rho, release = factors
    grad_z, lambda_v, lambda_i, grad_rho = (
        as_dense(grad) for grad in (grad_z, lambda_v, lambda_i, grad_rho)
    )
    lif, dt = ctx.p.lif, ctx.dt
    zero = torch.zeros_like(lambda_v)
    spike_term = ratio * lambda_v + through_rho * grad_rho + inverse_slope * grad_z
    lambda_v_decayed = torch.where(
        z > 0, spike_term, torch.where(refractory, zero, lambda_v)
    )
    membrane = dt * lif.tau_mem_inv * lambda_v_decayed
    grad_v = torch.where(refractory, lambda_v, lambda_v_decayed - membrane)
    grad_i_jump = membrane + (lambda_i - dt * lif.tau_syn_inv * lambda_i)
    jump_time_gradient = lif.tau_mem_inv * lambda_v_decayed - lif.tau_syn_inv * lambda_i
    # rho counts down by one per refractory step (derivative 1); the release step adds
    # the shift of the release time.
    grad_rho_old = torch.where(
        refractory, grad_rho + release * lambda_v, torch.zeros_like(grad_rho)
    )
    return grad_v, grad_i_jump, grad_rho_old, jump_time_gradient, tuple(kept)


class LIFAdjointRefracFeedForwardFunction(torch.autograd.Function):
    """Autograd function of :func:`lif_refrac_feed_forward_adjoint_step`:
    ``apply(input, v, i, rho, p=LIFRefracParameters(), dt=0.001) -> (z, v, i, rho)``."""

    @staticmethod
    def forward(ctx, input_tensor, v, i, rho, p=LIFRefracParameters(), dt=0.001):
        kept = feed_forward_kept(input_tensor)
        current = as_dense(input_tensor)
        return lif_refrac_adjoint_forward(ctx, current, v, i, rho, p, dt, False, kept)

    @staticmethod
    def backward(ctx, grad_z, lambda_v, lambda_i, grad_rho):
        grad_v, grad_i_jump, grad_rho_old, _, (kept_input,) = (
            lif_refrac_adjoint_backward(ctx, grad_z, lambda_v, lambda_i, grad_rho)
        )
        grad_input = input_gradient(kept_input, grad_i_jump)
        return grad_input, grad_v, grad_i_jump, grad_rho_old, None, None


def _recurrent_forward(
    ctx,
    input_tensor,
    z,
    v,
    i,
    rho,
    w_in,
    w_rec,
    p=LIFRefracParameters(),
    dt=0.001,
    *,
    sparse,
):
    current = recurrent_input(input_tensor, z, w_in, w_rec)
    kept = (input_tensor, z, w_in, w_rec)
    z_new, v_new, i_new, rho_new = lif_refrac_adjoint_forward(
        ctx, current, v, i, rho, p, dt, sparse, kept
    )
    return (z_new.to_sparse() if sparse else z_new), v_new, i_new, rho_new


def _recurrent_backward(ctx, grad_z, lambda_v, lambda_i, grad_rho):
    grad_v, grad_i_jump, grad_rho_old, jump_time, synapse = lif_refrac_adjoint_backward(
        ctx, grad_z, lambda_v, lambda_i, grad_rho
    )
    return recurrent_gradients(
        ctx, grad_i_jump, jump_time, synapse, (grad_v, grad_i_jump, grad_rho_old)
    )


class LIFAdjointRefracFunction(torch.autograd.Function):
    """Autograd function of :func:`lif_refrac_adjoint_step`: ``apply(input, z, v, i, rho,
    input_weights, recurrent_weights, p=LIFRefracParameters(), dt=0.001) -> (z, v, i,
    rho)``."""

    @staticmethod
    def forward(ctx, *args):
        return _recurrent_forward(ctx, *args, sparse=False)

    @staticmethod
    def backward(ctx, grad_z, lambda_v, lambda_i, grad_rho):
        return _recurrent_backward(ctx, grad_z, lambda_v, lambda_i, grad_rho)


class LIFSparseAdjointRefracFunction(LIFAdjointRefracFunction):
    """:class:`LIFAdjointRefracFunction` (same arguments) for sparse (COO) input and
    spikes: returns sparse spikes and saves the spike factors only at the spiking
    neurons. (Norse 1.1 took the LIF state as one argument here; its tensors are separate
    arguments, so that they get gradients.)"""

    @staticmethod
    def forward(ctx, *args):
        return _recurrent_forward(ctx, *args, sparse=True)


def apply_refractory(function, input_tensor, s: LIFRefracState, *arguments):
    """``function.apply(input_tensor, z, v, i, rho, *arguments)`` with the tensors of a
    recurrent refractory state (``arguments``: the weights, ``p`` and ``dt``), returned
    as a step's ``(z, LIFRefracState)``; shared by the recurrent refractory adjoints."""
    z, v, i, rho = function.apply(
        input_tensor, s.lif.z, s.lif.v, s.lif.i, s.rho, *arguments
    )
    return z, LIFRefracState(LIFState(z, v, i), rho)


@step_arguments()
def lif_refrac_feed_forward_adjoint_step(
    input_tensor: torch.Tensor,
    s: LIFRefracFeedForwardState,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFRefracFeedForwardState]:
    """One step of a feed-forward refractory LIF neuron with adjoint gradients (see the
    module docstring); the forward pass equals :func:`.lif_refrac_feed_forward_step` with
    a Heaviside threshold.
    """
    z, v, i, rho = LIFAdjointRefracFeedForwardFunction.apply(
        input_tensor, s.lif.v, s.lif.i, s.rho, p, dt
    )
    return z, LIFRefracFeedForwardState(LIFFeedForwardState(v, i), rho)


@step_arguments()
def lif_refrac_adjoint_step(
    input_tensor: torch.Tensor,
    s: LIFRefracState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFRefracState]:
    """One step of a recurrently connected refractory LIF neuron with adjoint gradients;
    the forward pass equals :func:`.lif_refrac_step` with a Heaviside threshold.
    """
    return apply_refractory(
        LIFAdjointRefracFunction,
        input_tensor,
        s,
        input_weights,
        recurrent_weights,
        p,
        dt,
    )


@step_arguments()
def lif_refrac_adjoint_step_sparse(
    input_tensor: torch.Tensor,
    s: LIFRefracState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFRefracState]:
    """:func:`lif_refrac_adjoint_step` for sparse (COO) input and spikes: returns sparse
    spikes (also in the state) and saves only the spiking neurons' factors."""
    return apply_refractory(
        LIFSparseAdjointRefracFunction,
        input_tensor,
        s,
        input_weights,
        recurrent_weights,
        p,
        dt,
    )
