r"""Adjoint (EventProp) gradients of refractory multi-compartment LIF neurons.

Forward: one step of :func:`norse.torch.functional.lif_mc_refrac.lif_mc_refrac_step` with a
Heaviside threshold (the ``method`` of the parameters is ignored). With
:math:`r = \Theta(\rho)` (1 while refractory), :math:`a = \tau_m^{-1}`,
:math:`s = \tau_s^{-1}` and the coupling :math:`(G v)_k = \sum_l G_{kl} v_l` (1/s):

.. math::
    v_d = v + (1 - r)\,\Delta t\, a (v_{\text{leak}} - v + i) + \Delta t\, G v, \quad
    z = (1 - r)\,\Theta(v_d - v_{\text{th}}), \quad
    v' = (1 - z)\, v_d + z\, v_{\text{reset}},

.. math::
    i' = (1 - \Delta t\, s)\, i + x W_{\text{in}}^T + z_{t-1} W_{\text{rec}}^T, \quad
    \rho' = (1 - z) \max(\rho - r, 0) + z\, \rho_{\text{reset}}.

This is the Euler step of :math:`\dot v = (1 - r)\, a (v_{\text{leak}} - v + i) + G v`,
:math:`\dot i = -s\, i`: a refractory compartment loses its leak and synaptic drive, not
its coupling, so (unlike :mod:`.lif_refrac_adjoint`) its voltage is not held.

Backward, with :math:`\lambda_v, \lambda_i, g_z, g_\rho` the gradients of the loss with
respect to :math:`v', i', z, \rho'`:

* Between events, the transpose of the step:

  .. math::
      \frac{\partial L}{\partial v} = \lambda_{v_d} - (1 - r)\,\Delta t\, a\,
          \lambda_{v_d} + \Delta t\, \lambda_{v_d} G, \qquad
      \frac{\partial L}{\partial i} = (1 - r)\,\Delta t\, a\, \lambda_{v_d}
          + (1 - \Delta t\, s)\, \lambda_i,

  :math:`\partial L/\partial G = \Delta t\, \lambda_{v_d}^T v`,
  :math:`\partial L/\partial x = \lambda_i W_{\text{in}}`,
  :math:`\partial L/\partial W_{\text{in}} = \lambda_i^T x`,
  :math:`\partial L/\partial W_{\text{rec}} = \lambda_i^T z_{t-1}`, and
  :math:`\lambda_{v_d} = \lambda_v` where no compartment spikes.

* A spike of compartment :math:`k` that crossed the threshold during the step (it started
  at or below :math:`v_{\text{th}}` with the slope
  :math:`\dot v^-_k = a (v_{\text{leak}} - v_k + i_k) + (G v)_k > 0`) moves with
  :math:`\delta t_k = -\delta v_{d,k} / \dot v^-_k`. A later spike shifts, after it, the
  compartment's own voltage by :math:`-\dot v^+_k\, \delta t_k`, with the slope after the
  reset :math:`\dot v^+_k = (G v')_k` (plus :math:`a (v_{\text{leak}} - v_{\text{reset}}
  + i_k)` if :math:`\rho_{\text{reset}} = 0`), and the voltages of the compartments
  :math:`j` coupled to it by :math:`-G_{jk} (v_{\text{reset}} - v_{\text{th}})\,
  \delta t_k` (the jump of :math:`v_k` changes their coupling term earlier or later;
  compartments that spike in the same step are left out: their reset fixes their
  :math:`v'`). It also moves the end of its refractory period with :math:`\rho'` (:math:`\delta
  \rho' = \delta t_k / \Delta t`). EventProp's jump condition, for the spiking
  :math:`k`:

  .. math::
      \lambda_{v_d,k} = \frac{\dot v^+_k \lambda_{v,k}
          + (v_{\text{reset}} - v_{\text{th}}) \sum_{j:\, z_j = 0} \lambda_{v,j} G_{jk}
          + g_{z,k} - [\rho_{\text{reset}} > 0]\; g_{\rho,k} / \Delta t}{\dot v^-_k}.

  :math:`g_z` enters as :math:`-\partial L/\partial t_k` (the convention of
  :mod:`.lif_adjoint`). A spike without such a crossing (a compartment driven above the
  threshold by the coupling while refractory spikes when released) has no crossing time:
  its adjoint is cut, :math:`\lambda_{v_d,k} = 0`, as backpropagation through a Heaviside
  reset would.

* The release: in the last refractory step (:math:`r = 1`, :math:`\rho' \le 0`) the leak
  and drive switch back on; releasing :math:`\Delta t` later (one unit more of
  :math:`\rho`) changes the voltage after it by
  :math:`-\Delta t\, a (v_{\text{leak}} - v' + i')`. As in :mod:`.lif_refrac_adjoint`,
  :math:`\rho` is read as a continuous count-down: in refractory steps

  .. math::
      \frac{\partial L}{\partial \rho} = g_\rho \;\left(
          - \Delta t\, a (v_{\text{leak}} - v' + i')\, \lambda_v \text{ added in the last
          one}\right),

  and 0 otherwise.

* The previous spikes :math:`z_{t-1}` kick :math:`i` at the end of the step. As in
  :mod:`.lif_adjoint` they receive the gradient of their times, not of their amplitude:
  :math:`J W_{\text{rec}}` with
  :math:`J = (1 - \Theta(\rho'))\, a\, \lambda_v - s\, \lambda_i`, minus the derivative
  of the loss with respect to the time of a unit current jump there (the adjoint's rate
  of change right after the jump).

So without spikes the gradients are exactly those of backpropagation through
:func:`.lif_mc_refrac_step` (except those of :math:`z_{t-1}` and :math:`\rho`, which get
the time derivatives above), and with spikes they converge to the gradients of the
continuous-time dynamics (spike and release times included) as ``dt`` goes to 0. With
``g_coupling = 0`` and no input the gradients equal those of
:func:`.lif_refrac_feed_forward_adjoint_step`. Neuron parameters receive no gradient.

Norse 1.1 has this function (same arguments and results); its forward pass runs its own
:func:`.lif_mc_refrac_step` (see :mod:`norse.torch.functional.lif_mc_refrac` for the two
fixes) and its backward pass fails (it calls ``torch.linear``, which does not exist).
"""

from typing import Any, Tuple

import torch

from norse.torch.functional.adjoint.lif_adjoint import (
    crossing_rate_inverse,
    synaptic_gradients,
)
from norse.torch.functional.adjoint.lif_refrac_adjoint import apply_refractory
from norse.torch.functional.conventions import step_arguments
from norse.torch.functional.lif import LIFState
from norse.torch.functional.lif_mc_refrac import lif_mc_refrac_step
from norse.torch.functional.lif_refrac import LIFRefracParameters, LIFRefracState
from norse.torch.functional.validation import check_dt, check_tensor


class LIFMCRefracAdjointFunction(torch.autograd.Function):
    """Autograd function of :func:`lif_mc_refrac_adjoint`: ``apply(input, z, v, i, rho,
    input_weights, recurrent_weights, g_coupling, p, dt) -> (z, v, i, rho)``."""

    @staticmethod
    def forward(
        ctx: Any,
        input_tensor: torch.Tensor,
        z: torch.Tensor,
        v: torch.Tensor,
        i: torch.Tensor,
        rho: torch.Tensor,
        input_weights: torch.Tensor,
        recurrent_weights: torch.Tensor,
        g_coupling: torch.Tensor,
        p: LIFRefracParameters = LIFRefracParameters(),
        dt: float = 0.001,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        lif = p.lif
        hard_threshold = p._replace(lif=lif._replace(method="heaviside"))
        state = LIFRefracState(LIFState(z, v, i), rho)
        z_new, new = lif_mc_refrac_step(
            input_tensor,
            state,
            input_weights,
            recurrent_weights,
            g_coupling,
            hard_threshold,
            dt,
        )
        refractory = rho > 0
        coupling = torch.nn.functional.linear(v, g_coupling)
        # Only a start at or below threshold crossed it during the step.
        crossed = z_new * (v <= lif.v_th)
        inverse_slope = crossing_rate_inverse(
            crossed, lif.tau_mem_inv * (lif.v_leak - v + i) + coupling
        )
        immediate = torch.as_tensor(p.rho_reset) <= 0
        zero = torch.zeros_like(inverse_slope)
        # Slope right after the reset: the coupling, and the leak and drive without a
        # refractory period.
        slope_after = torch.nn.functional.linear(new.lif.v, g_coupling) + torch.where(
            immediate, lif.tau_mem_inv * (lif.v_leak - lif.v_reset + i), zero
        )
        ratio = inverse_slope * slope_after
        coupled_jump = inverse_slope * (lif.v_reset - lif.v_th)
        through_rho = torch.where(immediate, zero, -inverse_slope / dt)
        release = torch.where(
            refractory & (new.rho <= 0),
            -dt * lif.tau_mem_inv * (lif.v_leak - new.lif.v + new.lif.i),
            zero,
        )
        ctx.p, ctx.dt = p, dt
        ctx.save_for_backward(
            input_tensor,
            z,
            v,
            input_weights,
            recurrent_weights,
            g_coupling,
            refractory,
            new.rho > 0,
            z_new,
            ratio,
            coupled_jump,
            inverse_slope,
            through_rho,
            release,
        )
        return z_new, new.lif.v, new.lif.i, new.rho

    @staticmethod
    def backward(
        ctx: Any,
        grad_z: torch.Tensor,
        lambda_v: torch.Tensor,
        lambda_i: torch.Tensor,
        grad_rho: torch.Tensor,
    ) -> Tuple[Any, ...]:
        (
            input_tensor,
            z,
            v,
            input_weights,
            recurrent_weights,
            g_coupling,
            refractory,
            refractory_after,
            z_new,
            ratio,
            coupled_jump,
            inverse_slope,
            through_rho,
            release,
        ) = ctx.saved_tensors
        lif, dt = ctx.p.lif, ctx.dt
        # sum over the non-spiking j of lambda_v[j] G[j, k]: the compartments whose
        # voltage the spike time of k moves through the coupling
        coupled = torch.nn.functional.linear(lambda_v * (1 - z_new), g_coupling.t())
        spike_term = (
            ratio * lambda_v
            + coupled_jump * coupled
            + inverse_slope * grad_z
            + through_rho * grad_rho
        )
        lambda_v_decayed = torch.where(z_new > 0, spike_term, lambda_v)
        free = 1 - refractory.to(lambda_v_decayed.dtype)
        membrane = free * dt * lif.tau_mem_inv * lambda_v_decayed
        grad_v = (
            lambda_v_decayed
            - membrane
            + dt * torch.nn.functional.linear(lambda_v_decayed, g_coupling.t())
        )
        grad_i = membrane + (lambda_i - dt * lif.tau_syn_inv * lambda_i)
        grad_rho_old = torch.where(
            refractory, grad_rho + release * lambda_v, torch.zeros_like(grad_rho)
        )
        free_after = 1 - refractory_after.to(lambda_v.dtype)
        jump_time_gradient = (
            free_after * lif.tau_mem_inv * lambda_v - lif.tau_syn_inv * lambda_i
        )
        needs = ctx.needs_input_grad
        grad_input, grad_z_old, grad_w_in, grad_w_rec = synaptic_gradients(
            lambda_i,
            jump_time_gradient,
            input_tensor,
            z,
            input_weights,
            recurrent_weights,
            (needs[0], needs[1], needs[5], needs[6]),
        )
        grad_g = None
        if needs[7]:
            n = v.shape[-1]
            grad_g = dt * (lambda_v_decayed.reshape(-1, n).t() @ v.reshape(-1, n))
        return (
            grad_input,
            grad_z_old,
            grad_v,
            grad_i,
            grad_rho_old,
            grad_w_in,
            grad_w_rec,
            grad_g,
            None,
            None,
        )


def _fields(value: Any) -> Tuple[str, ...]:
    return tuple(getattr(value, "_fields", ()))


def _check_arguments(
    input_tensor: Any,
    s: Any,
    input_weights: Any,
    recurrent_weights: Any,
    g_coupling: Any,
    p: Any,
    dt: Any,
) -> None:
    """Cheap structural checks (types and shapes only: no data is read), so that a
    wrong argument is named instead of failing inside a matrix product."""
    if _fields(s) != ("lif", "rho") or _fields(s.lif) != ("z", "v", "i"):
        raise TypeError(
            "s must be a LIFRefracState(lif=LIFState(z, v, i), rho), got "
            f"{type(s).__name__}"
        )
    if _fields(p) != ("lif", "rho_reset"):
        raise TypeError(
            "p must be a LIFRefracParameters(lif=LIFParameters(...), rho_reset), got "
            f"{type(p).__name__}"
        )
    named = (
        ("input", input_tensor),
        ("s.lif.z", s.lif.z),
        ("s.lif.v", s.lif.v),
        ("s.lif.i", s.lif.i),
        ("s.rho", s.rho),
        ("input_weights", input_weights),
        ("recurrent_weights", recurrent_weights),
        ("g_coupling", g_coupling),
    )
    for name, value in named:
        check_tensor(value, name)
    if s.lif.v.dim() == 0 or input_tensor.dim() == 0:
        raise ValueError(
            "input and s.lif.v must have a last (feature) dimension, got shapes "
            f"{tuple(input_tensor.shape)} and {tuple(s.lif.v.shape)}"
        )
    hidden, inputs = s.lif.v.shape[-1], input_tensor.shape[-1]
    for name, value, shape in (
        ("input_weights", input_weights, (hidden, inputs)),
        ("recurrent_weights", recurrent_weights, (hidden, hidden)),
        ("g_coupling", g_coupling, (hidden, hidden)),
    ):
        if tuple(value.shape) != shape:
            raise ValueError(
                f"{name} must have shape {shape} (hidden_size = s.lif.v.shape[-1] = "
                f"{hidden}, input_size = input.shape[-1] = {inputs}), got "
                f"{tuple(value.shape)}"
            )
    if not isinstance(dt, torch.Tensor):  # a tensor dt is taken as it is
        check_dt(dt)


@step_arguments()
def lif_mc_refrac_adjoint(
    input: torch.Tensor,
    s: LIFRefracState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    g_coupling: torch.Tensor,
    p: LIFRefracParameters = LIFRefracParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFRefracState]:
    """One step of recurrently connected refractory multi-compartment LIF neurons with
    adjoint gradients (see the module docstring); the forward pass equals
    :func:`.lif_mc_refrac_step` with a Heaviside threshold.

    Raises:
        TypeError: ``s`` or ``p`` of another type, a non-tensor argument, a ``dt`` that
            is not a number.
        ValueError: weights or coupling of the wrong shape, ``dt <= 0``.
    """
    _check_arguments(input, s, input_weights, recurrent_weights, g_coupling, p, dt)
    return apply_refractory(
        LIFMCRefracAdjointFunction,
        input,
        s,
        input_weights,
        recurrent_weights,
        g_coupling,
        p,
        dt,
    )
