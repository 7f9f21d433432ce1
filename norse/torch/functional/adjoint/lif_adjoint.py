r"""Adjoint (EventProp) gradients of LIF neurons.

Forward: one Euler step of :mod:`norse.torch.functional.lif` with a Heaviside threshold
(the ``method`` of the parameters is ignored):

.. math::
    i_j = i + I, \quad
    v_d = v + \Delta t\,\tau_m^{-1}(v_{\text{leak}} - v + i_j), \quad
    i' = (1 - \Delta t\,\tau_s^{-1})\, i_j, \quad
    z = \Theta(v_d - v_{\text{th}}), \quad
    v' = (1 - z)\, v_d + z\, v_{\text{reset}}

(``I`` is the input current of the step; in the recurrent step
:math:`I = x W_{\text{in}}^T + z_{t-1} W_{\text{rec}}^T`).

Backward: with :math:`\lambda_v, \lambda_i, g_z` the gradients of the loss with respect to
:math:`v', i', z`, the adjoint of the decayed voltage is

.. math::
    \lambda_{v_d} = \begin{cases}
        \lambda_v & \text{no spike} \\
        \left(\dot v^+ \lambda_v + g_z\right) / \dot v^- & \text{spike}
    \end{cases}

and the adjoint runs through the transpose of the Euler step:

.. math::
    \frac{\partial L}{\partial v} = (1 - \Delta t\,\tau_m^{-1})\,\lambda_{v_d}, \qquad
    \frac{\partial L}{\partial i_j} = \Delta t\,\tau_m^{-1} \lambda_{v_d}
        + (1 - \Delta t\,\tau_s^{-1})\,\lambda_i, \qquad
    \frac{\partial L}{\partial I} = \frac{\partial L}{\partial i} = \frac{\partial L}{\partial i_j}.

The spike case is EventProp's jump condition: moving the state by :math:`\delta v` before the
threshold crossing moves the spike time by :math:`\delta t = -\delta v / \dot v^-`, and the
reset with it, which changes the voltage after the spike by :math:`-\dot v^+ \delta t`.
Here :math:`\dot v^- = \tau_m^{-1}(v_{\text{leak}} - v + i_j)` is the slope of the Euler step
that crossed the threshold and
:math:`\dot v^+ = \tau_m^{-1}(v_{\text{leak}} - v_{\text{reset}} + i_j)` the slope right after
the reset. :math:`g_z` enters as :math:`-\partial L / \partial t_k`, minus the derivative of
the loss with respect to the spike time:

* Spikes fed back through recurrent weights get exactly that. A unit current jump at the
  time of a step changes the loss by :math:`-(\tau_m^{-1}\lambda_{v_d} - \tau_s^{-1}\lambda_i)`
  per second of delay (the time derivative of its adjoint), so the recurrent step returns
  :math:`(\tau_m^{-1}\lambda_{v_d} - \tau_s^{-1}\lambda_i)\,W_{\text{rec}}` as the gradient
  of the previous spikes ``s.z`` (EventProp's recurrent term), not the derivative with
  respect to their amplitude. The weight gradients are the usual ones,
  :math:`\partial L/\partial W = (\partial L/\partial i_j)^T x`.
* Any other gradient of the spikes (a loss on them, a following layer) is read, as in
  Norse 1.1, as :math:`-\partial L/\partial t_k = g_z`: a spike that comes earlier counts
  as that much more output. This is a convention, not a derivative (the spike tensor is
  not differentiable in its amplitude); its sign agrees with surrogate gradients.

A "spike" with :math:`\dot v^- \le 0` (a neuron that starts a step above threshold) has
no crossing time; its adjoint is cut (:math:`\lambda_{v_d} = 0`), as backpropagation
through a Heaviside reset would.

Without spikes the backward pass is exactly backpropagation through time through
:func:`norse.torch.functional.lif.lif_feed_forward_step` (and :func:`.lif_step`, except
for the gradient of ``s.z``). With spikes, gradients of losses on voltages and currents
converge to those of the continuous-time dynamics (spike times included) as ``dt`` goes
to 0, also through recurrent spikes.

Differences to Norse 1.1 (whose adjoint step is not the transpose of its forward step):
Norse 1.1 couples :math:`\lambda_i` to :math:`\lambda_v` with :math:`\tau_s^{-1}` instead of
:math:`\tau_m^{-1}` (wrong gradients whenever the two differ: e.g. half the gradient of
the initial current for the default parameters), uses the current *before* the input jump
in :math:`\dot v^\pm`, returns non-finite values for spikes with :math:`\dot v^- = 0`,
adds the output term after the decay of :math:`\lambda_v` (an :math:`O(\Delta t)`
difference) and passes recurrent spikes the amplitude gradient
:math:`(\partial L/\partial i_j) W_{\text{rec}}`. For a feed-forward neuron with
:math:`\tau_s = \tau_m` and no input in the spiking steps both give the same gradients
as ``dt`` goes to 0.

The ``_sparse`` forms save the spike factors only at the spiking neurons (memory in
proportion to the number of spikes) and accept sparse (COO) input; the recurrent
:func:`lif_adjoint_step_sparse` returns sparse spikes like :func:`.lif_step_sparse`.
Neuron parameters receive no gradient.
"""

from typing import Any, Optional, Tuple

import torch

# The plain steps are importable from here as in Norse 1.1 (whose tests compare the
# adjoint steps with them).
from norse.torch.functional.conventions import step_arguments
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    LIFState,
    lif_feed_forward_step,
    lif_feed_forward_step_sparse,  # noqa: F401 (re-exported)
    lif_step,  # noqa: F401 (re-exported)
    lif_step_sparse,  # noqa: F401 (re-exported)
)
from norse.torch.functional.synapse import recurrent_input


def as_dense(tensor: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """``tensor`` as a strided tensor (sparse COO ones are densified; None stays None)."""
    if tensor is not None and tensor.is_sparse:
        return tensor.to_dense()
    return tensor


def crossing_rate_inverse(spikes: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """``1 / slope`` where a neuron spiked with a positive threshold-crossing ``slope``
    (the rate at which the distance to threshold grew, in units per second), else ``0``."""
    crossing = (spikes > 0) & (slope > 0)
    safe = torch.where(crossing, slope, torch.ones_like(slope))
    return torch.where(crossing, 1.0 / safe, torch.zeros_like(slope))


def save_factors(
    ctx: Any,
    sparse: bool,
    factors: Tuple[torch.Tensor, ...],
    kept: Tuple[torch.Tensor, ...] = (),
) -> None:
    """Saves the backward ``factors`` (tensors of one shape) and the tensors ``kept``
    as they are. With ``sparse``, only the entries where some factor is nonzero are
    saved (the factors vanish away from spikes), with their flat indices."""
    ctx.kept = len(kept)
    ctx.sparse = sparse
    if sparse:
        factors = torch.broadcast_tensors(*factors)
        ctx.shape = factors[0].shape
        flat = torch.stack([factor.reshape(-1) for factor in factors])
        index = (flat != 0).any(0).nonzero().squeeze(1)
        factors = (index, flat[:, index])
    ctx.save_for_backward(*kept, *factors)


def load_factors(ctx: Any) -> Tuple[Tuple[torch.Tensor, ...], Tuple[torch.Tensor, ...]]:
    """The tensors of :func:`save_factors`: ``(kept, dense factors)``."""
    saved = ctx.saved_tensors
    kept, factors = saved[: ctx.kept], saved[ctx.kept :]
    if ctx.sparse:
        index, values = factors
        dense = values.new_zeros(values.shape[0], ctx.shape.numel())
        dense[:, index] = values
        factors = tuple(factor.view(ctx.shape) for factor in dense)
    return kept, factors


def synaptic_gradients(
    grad_current: torch.Tensor,
    jump_time_gradient: torch.Tensor,
    input_tensor: torch.Tensor,
    z: torch.Tensor,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    needs: Tuple[bool, bool, bool, bool],
) -> Tuple[Optional[torch.Tensor], ...]:
    """Gradients of the synaptic input
    (:func:`~norse.torch.functional.synapse.recurrent_input`) with respect to ``(input,
    z, input_weights, recurrent_weights)`` (``None`` where ``needs`` is False).

    ``grad_current`` is the gradient of the current. The recurrent spikes ``z`` get
    instead the gradient of their *times*: ``jump_time_gradient @ recurrent_weights``,
    with ``jump_time_gradient`` minus the derivative of the loss with respect to the
    time of a unit current jump (EventProp's recurrent term; see the module docstring).
    Sparse inputs get gradients of their own sparsity pattern.
    """

    def through(grad: torch.Tensor, x: torch.Tensor, weights: torch.Tensor):
        grad = grad @ weights
        return grad.sparse_mask(x.coalesce()) if x.is_sparse else grad

    def weight_gradient(x: torch.Tensor) -> torch.Tensor:
        flat_grad = grad_current.reshape(-1, grad_current.shape[-1])
        if x.is_sparse:
            return torch.sparse.mm(x.t(), flat_grad).t()
        return flat_grad.t() @ x.reshape(-1, x.shape[-1])

    return (
        through(grad_current, input_tensor, input_weights) if needs[0] else None,
        through(jump_time_gradient, z, recurrent_weights) if needs[1] else None,
        weight_gradient(input_tensor) if needs[2] else None,
        weight_gradient(z) if needs[3] else None,
    )


def recurrent_gradients(
    ctx: Any,
    grad_current: torch.Tensor,
    jump_time_gradient: torch.Tensor,
    synapse: Tuple[torch.Tensor, ...],
    state_gradients: Tuple[torch.Tensor, ...],
) -> Tuple[Optional[torch.Tensor], ...]:
    """What the backward pass of a recurrent adjoint function returns for its arguments
    ``(input, z, *state, input_weights, recurrent_weights, p, dt)``, given the gradients
    of the state tensors and those of :func:`synaptic_gradients` (``synapse`` holds
    ``(input, z, input_weights, recurrent_weights)``)."""
    needs = ctx.needs_input_grad
    first_weight = 2 + len(state_gradients)
    grad_input, grad_z, grad_w_in, grad_w_rec = synaptic_gradients(
        grad_current,
        jump_time_gradient,
        *synapse,
        (needs[0], needs[1], needs[first_weight], needs[first_weight + 1]),
    )
    return (grad_input, grad_z, *state_gradients, grad_w_in, grad_w_rec, None, None)


def lif_adjoint_forward(
    ctx: Any,
    current: torch.Tensor,
    v: torch.Tensor,
    i: torch.Tensor,
    p: LIFParameters,
    dt: float,
    sparse: bool,
    kept: Tuple[torch.Tensor, ...] = (),
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The LIF step for the adjoint functions: spikes, new voltage and current; saves the
    jump factors :math:`\\dot v^+ / \\dot v^-` and :math:`1 / \\dot v^-` of the spikes
    (and ``kept``, see :func:`save_factors`)."""
    z, state = lif_feed_forward_step(
        current, LIFFeedForwardState(v, i), p._replace(method="heaviside"), dt
    )
    i_jump = i + current
    inverse_slope = crossing_rate_inverse(z, p.tau_mem_inv * (p.v_leak - v + i_jump))
    ratio = inverse_slope * p.tau_mem_inv * (p.v_leak - p.v_reset + i_jump)
    ctx.p = p
    ctx.dt = dt
    save_factors(ctx, sparse, (z, inverse_slope, ratio), kept)
    return z, state.v, state.i


def lif_adjoint_backward(
    ctx: Any,
    grad_z: torch.Tensor,
    lambda_v: torch.Tensor,
    lambda_i: torch.Tensor,
) -> Tuple[torch.Tensor, ...]:
    """Adjoint of :func:`lif_adjoint_forward`: the gradients with respect to the voltage
    and to the current after the input jump (= to the input current and to ``i``), the
    jump-time gradient of the input current (see :func:`synaptic_gradients`) and the
    ``kept`` tensors."""
    kept, (z, inverse_slope, ratio) = load_factors(ctx)
    grad_z, lambda_v = as_dense(grad_z), as_dense(lambda_v)
    p, dt = ctx.p, ctx.dt
    lambda_v_decayed = torch.where(
        z > 0, ratio * lambda_v + inverse_slope * grad_z, lambda_v
    )
    # Transpose of the Euler step, in the operation order of the forward pass.
    membrane = dt * p.tau_mem_inv * lambda_v_decayed
    lambda_i = as_dense(lambda_i)
    grad_v = lambda_v_decayed - membrane
    grad_i_jump = membrane + (lambda_i - dt * p.tau_syn_inv * lambda_i)
    jump_time_gradient = p.tau_mem_inv * lambda_v_decayed - p.tau_syn_inv * lambda_i
    return grad_v, grad_i_jump, jump_time_gradient, kept


def input_gradient(kept_input: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``grad`` in the layout of the input kept by :func:`feed_forward_kept`."""
    return grad.sparse_mask(kept_input.coalesce()) if kept_input.is_sparse else grad


def feed_forward_kept(input_tensor: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """What :func:`input_gradient` needs of the input: the input itself if it is sparse
    (for its sparsity pattern), else only an empty placeholder."""
    return (input_tensor if input_tensor.is_sparse else input_tensor.new_empty(0),)


def _feed_forward_forward(
    ctx, input_tensor, v, i, p=LIFParameters(), dt=0.001, *, sparse
):
    kept = feed_forward_kept(input_tensor)
    return lif_adjoint_forward(ctx, as_dense(input_tensor), v, i, p, dt, sparse, kept)


def _feed_forward_backward(ctx, grad_z, lambda_v, lambda_i):
    grad_v, grad_i_jump, _, (kept_input,) = lif_adjoint_backward(
        ctx, grad_z, lambda_v, lambda_i
    )
    return input_gradient(kept_input, grad_i_jump), grad_v, grad_i_jump, None, None


class LIFFeedForwardAdjointFunction(torch.autograd.Function):
    """Autograd function of :func:`lif_feed_forward_adjoint_step`:
    ``apply(input, v, i, p=LIFParameters(), dt=0.001) -> (z, v, i)``."""

    @staticmethod
    def forward(ctx, *args):
        return _feed_forward_forward(ctx, *args, sparse=False)

    @staticmethod
    def backward(ctx, grad_z, lambda_v, lambda_i):
        return _feed_forward_backward(ctx, grad_z, lambda_v, lambda_i)


class LIFFeedForwardSparseAdjointFunction(LIFFeedForwardAdjointFunction):
    """:class:`LIFFeedForwardAdjointFunction` (same arguments) saving the spike factors
    only at the spiking neurons; returns dense spikes (as Norse 1.1)."""

    @staticmethod
    def forward(ctx, *args):
        return _feed_forward_forward(ctx, *args, sparse=True)


def _recurrent_forward(
    ctx, input_tensor, z, v, i, w_in, w_rec, p=LIFParameters(), dt=0.001, *, sparse
):
    current = recurrent_input(input_tensor, z, w_in, w_rec)
    kept = (input_tensor, z, w_in, w_rec)
    z_new, v_new, i_new = lif_adjoint_forward(ctx, current, v, i, p, dt, sparse, kept)
    return (z_new.to_sparse() if sparse else z_new), v_new, i_new


def _recurrent_backward(ctx, grad_z, lambda_v, lambda_i):
    grad_v, grad_i_jump, jump_time, synapse = lif_adjoint_backward(
        ctx, grad_z, lambda_v, lambda_i
    )
    return recurrent_gradients(
        ctx, grad_i_jump, jump_time, synapse, (grad_v, grad_i_jump)
    )


class LIFAdjointFunction(torch.autograd.Function):
    """Autograd function of :func:`lif_adjoint_step`: ``apply(input, z, v, i,
    input_weights, recurrent_weights, p=LIFParameters(), dt=0.001) -> (z, v, i)``."""

    @staticmethod
    def forward(ctx, *args):
        return _recurrent_forward(ctx, *args, sparse=False)

    @staticmethod
    def backward(ctx, grad_z, lambda_v, lambda_i):
        return _recurrent_backward(ctx, grad_z, lambda_v, lambda_i)


class LIFSparseAdjointFunction(LIFAdjointFunction):
    """:class:`LIFAdjointFunction` (same arguments) for sparse (COO) input and spikes:
    returns sparse spikes and saves the spike factors only at the spiking neurons."""

    @staticmethod
    def forward(ctx, *args):
        return _recurrent_forward(ctx, *args, sparse=True)


def _apply_recurrent(
    function, input_tensor, s, input_weights, recurrent_weights, p, dt
):
    z, v, i = function.apply(
        input_tensor, s.z, s.v, s.i, input_weights, recurrent_weights, p, dt
    )
    return z, LIFState(z, v, i)


@step_arguments()
def lif_feed_forward_adjoint_step(
    input_tensor: torch.Tensor,
    s: LIFFeedForwardState,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFFeedForwardState]:
    """One step of a feed-forward LIF neuron with adjoint gradients (see the module
    docstring); the forward pass equals :func:`.lif_feed_forward_step` with a Heaviside
    threshold.
    """
    z, v, i = LIFFeedForwardAdjointFunction.apply(input_tensor, s.v, s.i, p, dt)
    return z, LIFFeedForwardState(v, i)


@step_arguments(output="Dense spikes")
def lif_feed_forward_adjoint_step_sparse(
    input_tensor: torch.Tensor,
    s: LIFFeedForwardState,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFFeedForwardState]:
    """:func:`lif_feed_forward_adjoint_step` for dense or sparse (COO) input, saving only
    the spiking neurons' factors for the backward pass. Returns dense spikes."""
    z, v, i = LIFFeedForwardSparseAdjointFunction.apply(input_tensor, s.v, s.i, p, dt)
    return z, LIFFeedForwardState(v, i)


@step_arguments()
def lif_adjoint_step(
    input_tensor: torch.Tensor,
    s: LIFState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFState]:
    """One step of a recurrently connected LIF neuron with adjoint gradients; the forward
    pass equals :func:`.lif_step` with a Heaviside threshold.

    The gradient returned for ``s.z`` is minus the derivative of the loss with respect
    to the times of those spikes through the recurrent weights (EventProp's recurrent
    term, see the module docstring); the previous step's jump condition turns it into
    gradients of its state.
    """
    return _apply_recurrent(
        LIFAdjointFunction, input_tensor, s, input_weights, recurrent_weights, p, dt
    )


@step_arguments()
def lif_adjoint_step_sparse(
    input_tensor: torch.Tensor,
    s: LIFState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIFState]:
    """:func:`lif_adjoint_step` for sparse (COO) input and spikes: returns sparse spikes
    (also in the state, as :func:`.lif_step_sparse`) and saves only the spiking neurons'
    factors for the backward pass."""
    return _apply_recurrent(
        LIFSparseAdjointFunction,
        input_tensor,
        s,
        input_weights,
        recurrent_weights,
        p,
        dt,
    )
