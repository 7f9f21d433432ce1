r"""Fused kernels for the recurrent time modules (:class:`~norse.torch.module.snn.SNNRecurrent`).

Registered for the recurrent steps :func:`~norse.torch.functional.lsnn.lsnn_step`
(``LSNNRecurrent``) and :func:`~norse.torch.functional.lif.lif_step` (``LIFRecurrent``).
The factories take the two weight matrices as well (see :func:`.registry.find`); the
kernel is called as ``kernel(input, state, p, dt, record_states, input_weights,
recurrent_weights)`` and returns ``(spikes, final_state)`` like the reference loop.

How the sequence runs
---------------------
One custom operator (``torch.ops.norse.recurrent_scan``, with a fake implementation and a
hand-written backward registered with :mod:`torch.library`) runs all ``T`` steps:

* per step the products ``x_t W_{in}^T`` and ``z_{t-1} W_{rec}^T`` into preallocated
  buffers, exactly as the reference step computes them, and one call of an elementwise
  Numba kernel (:mod:`.cpu_recurrent`) that updates the state in place, writes the
  spikes ``z_t`` and keeps the distance to the threshold ``s_t`` for the backward pass
  (nothing else is saved). When no batch element had more than two spikes in the
  previous step, the recurrent current is the sum of the spiking neurons' weights
  instead (with at most two terms the order of a sum does not change its rounding);
* backward: per step (in reverse) one Numba adjoint kernel and one product
  ``dc_t W_{rec}``; then the weight and input gradients as products over all steps,
  :math:`\partial W_{in} = \sum_t dc_t^T x_t`, :math:`\partial W_{rec} = \sum_t dc_t^T
  z_{t-1}` (a sum over the spikes when they are sparse), :math:`\partial x_t = dc_t
  W_{in}`.

The forward pass is bit for bit the reference loop's: BLAS rounds a product of ``T *
batch`` rows differently from one of ``batch`` rows (FMA contraction and blocking depend
on the shape), and a sum of three or more weights in another order rounds differently.
The per-step input products cost little (1.4 ms against 1.2 ms for one product over all
steps, T=100, batch 32, 128 x 128, one thread); summing the spikes' weights whatever
their number would save up to ~2 ms per forward pass of that layer. Gradients equal
autograd through the reference up to rounding.

Equations (per neuron, :math:`a_\ast = dt\,\tau_\ast^{-1}`, :math:`c_t = x_t W_{in}^T +
z_{t-1} W_{rec}^T` the current that enters step :math:`t`, :math:`\bar z` the detached
spike, :math:`\sigma'` the surrogate derivative of the threshold; the state before step
:math:`t` is :math:`(z_{t-1}, v, i, b)`):

========================================  ==========================================
LSNN (:func:`.lsnn_step`)                 LIF (:func:`.lif_step`)
========================================  ==========================================
:math:`v_d = v + a_m((v_l - v) + i)`      :math:`j = i + c_t`
:math:`b_d = b + a_a (v_{th} - b)`        :math:`v_d = v + a_m((v_l - v) + j)`
:math:`s = v_d - b_d,\ z_t = H(s)`        :math:`s = v_d - v_{th},\ z_t = H(s)`
:math:`v' = \bar z\,?\,v_r : v_d`         :math:`v' = \bar z\,?\,v_r : v_d`
:math:`b' = b_d + \beta \bar z`           :math:`i' = j - a_s j`
:math:`i' = (i - a_s i) + c_t`
========================================  ==========================================

(the reference adds the input current and the recurrent current in that order, as the
kernels do).

Adjoint recursion (backpropagation through time)
------------------------------------------------
Let :math:`\lambda_v, \lambda_i, \lambda_b` be the gradients of the loss with respect to
the state *after* step :math:`t`, :math:`g_t` that of the output :math:`z_t` and
:math:`\mu_t = dc_{t+1} W_{rec}` the gradient that reaches :math:`z_t` through the next
step's recurrent current (the final state's ``z`` gradient for :math:`t = T - 1`). The
reset and the threshold jump use the detached spike, so :math:`z_t` has no other
consumer, and :math:`\partial v' / \partial v_d = 1 - \bar z` with no term through the
spike. With :math:`g_s = (g_t + \mu_t)\,\sigma'(s)`:

LSNN (the current enters *after* the spike, so :math:`dc_t = \lambda_i`):

.. math::
    \begin{align*}
        dc_t &= \lambda_i, \qquad
        \lambda_{v_d} = (1 - \bar z)\lambda_v + g_s, \qquad
        \lambda_{b_d} = \lambda_b - g_s \\
        \lambda_v &\leftarrow (1 - a_m)\lambda_{v_d}, \qquad
        \lambda_i \leftarrow a_m \lambda_{v_d} + (1 - a_s)\lambda_i, \qquad
        \lambda_b \leftarrow (1 - a_a)\lambda_{b_d}
    \end{align*}

LIF (the current enters the jump :math:`j` before the membrane update):

.. math::
    \begin{align*}
        \lambda_{v_d} &= (1 - \bar z)\lambda_v + g_s, \qquad
        dc_t = \lambda_j = a_m \lambda_{v_d} + (1 - a_s)\lambda_i \\
        \lambda_v &\leftarrow (1 - a_m)\lambda_{v_d}, \qquad \lambda_i \leftarrow \lambda_j
    \end{align*}

and for both :math:`\mu_{t-1} = dc_t W_{rec}`. After step 0 the adjoints are the
gradients of the initial state (:math:`\mu_{-1}` that of its ``z``). Starting values:
the gradients of the final state's ``v``, ``i``, ``b`` and ``z`` (zero when unused).
The parameters :math:`v_r` and :math:`\beta` act through detached spikes only.

Supported (otherwise the factory returns ``None`` and the module runs its reference
loop): CPU tensors of dtype float32 or float64 with Numba installed, input ``(T, ...,
input_size)`` with at least one step, weights of the input's dtype and of shapes
``(hidden, input_size)`` and ``(hidden, hidden)``, states of the input's dtype (scalars
or of the state shape), parameters as accepted by the feed-forward kernels
(:mod:`.neurons`) that do not require gradients (while gradients are enabled), a
deterministic surrogate (:data:`.spec.SURROGATE_CODES`) with a scalar ``alpha``, and
``record_states=False``. There is no CUDA kernel yet: CUDA input runs the reference
loop. To add a model, write its two step kernels in :mod:`.cpu_recurrent` (same
arguments) and add an entry to :data:`_MODELS`.
"""

import functools
import math
from typing import Any, Callable, List, NamedTuple, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from norse.torch.functional.lif import LIFState, lif_feed_forward_step, lif_step
from norse.torch.functional.lsnn import LSNNState, lsnn_feed_forward_step, lsnn_step
from norse.torch.fused import registry
from norse.torch.fused.neurons import _MODELS as _FEED_FORWARD_MODELS
from norse.torch.fused.neurons import (
    _SCALED_BY_DT,
    _as_lanes,
    _parameter_supported,
    _state_supported,
)
from norse.torch.fused.spec import SURROGATE_CODES

_DTYPES = (torch.float32, torch.float64)
#: Largest fraction of spikes (of all neuron-steps) for which the recurrent weight
#: gradient is summed over the spikes rather than computed as a dense product.
SPARSE_FRACTION = 0.2
#: The state fields of the operator, in order; a model passes an empty tensor for those
#: it lacks (LIF: ``b``).
STATE_FIELDS = ("z", "v", "i", "b")


class _RecurrentModel(NamedTuple):
    """How a recurrent step function maps onto :func:`recurrent_scan`."""

    #: Prefix of the step kernels in :mod:`.cpu_recurrent` (``<name>_forward_step``,
    #: ``<name>_backward_step``).
    name: str
    state_type: type
    #: Parameter fields feeding the rows of :data:`.spec.PARAMETER_ROWS`; ``None``:
    #: unused.
    fields: Tuple[Optional[str], ...]


#: The supported models, indexed by the ``model`` code of :func:`recurrent_scan`; their
#: parameters fill the rows as for the feed-forward steps of the same neurons.
_MODELS: Tuple[_RecurrentModel, ...] = (
    _RecurrentModel(
        "lsnn", LSNNState, _FEED_FORWARD_MODELS[lsnn_feed_forward_step].fields
    ),
    _RecurrentModel(
        "lif", LIFState, _FEED_FORWARD_MODELS[lif_feed_forward_step].fields
    ),
)


def _kernels(model: int) -> Tuple[Callable, Callable, Any]:
    """The forward and backward step kernels of ``model`` and the module
    :mod:`.cpu_recurrent` (imports Numba on first use)."""
    from norse.torch.fused import cpu_recurrent

    name = _MODELS[model].name
    return (
        getattr(cpu_recurrent, f"{name}_forward_step"),
        getattr(cpu_recurrent, f"{name}_backward_step"),
        cpu_recurrent,
    )


def _rows(tensor: Tensor, rows: int) -> np.ndarray:
    """A NumPy view of a contiguous CPU tensor as ``(rows, -1)``."""
    return tensor.detach().view(rows, -1).numpy()


def _stacked(x: Tensor, shape: Tuple[int, int], rows: List[Tensor]) -> Tensor:
    """``(3, N, H)``: the ``v, i, b`` rows (an empty one, LIF's ``b``: zeros)."""
    stacked = x.new_zeros((3, *shape))
    for index, row in enumerate(rows):
        if row.numel():
            stacked[index] = row
    return stacked


def _scan_outputs(x: Tensor, recurrent_weights: Tensor, model: int, save: bool):
    steps, batch = x.shape[0], x.shape[1]
    hidden = recurrent_weights.shape[0]
    state = (batch, hidden)
    adaptive = "b" in _MODELS[model].state_type._fields
    return (
        x.new_empty((steps, *state)),
        x.new_empty(state),
        x.new_empty(state),
        x.new_empty(state),
        x.new_empty(state if adaptive else (0,)),
        x.new_empty((steps, *state) if save else (0,)),
    )


@torch.library.custom_op("norse::recurrent_scan", mutates_args=())
def recurrent_scan(
    x: Tensor,
    input_weights: Tensor,
    recurrent_weights: Tensor,
    states: List[Tensor],
    params: Tensor,
    alpha: Tensor,
    method: int,
    model: int,
    save: bool,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Runs a recurrent layer over time.

    Shapes (``T`` steps, ``N`` batch, ``I`` inputs, ``H`` neurons, ``M = N * H``):
    ``x`` ``(T, N, I)``; ``input_weights`` ``(H, I)``; ``recurrent_weights`` ``(H, H)``
    (the effective one: autapses already masked); ``states`` ``[z0, v0, i0, b0]``, each
    ``(N, H)`` or empty for a state the model lacks; ``params`` ``(7, M)`` (rows of
    :data:`.spec.PARAMETER_ROWS`); ``alpha`` ``(1,)``; ``method`` a code of
    :data:`.spec.SURROGATE_CODES`; ``model`` an index into :data:`_MODELS`; ``save``:
    keep what the backward pass needs.

    Returns ``(spikes, z, v, i, b, s)``: spikes ``(T, N, H)``, the final state (``b``
    empty for LIF) and the distances to the threshold ``(T, N, H)`` (empty unless
    ``save``).
    """
    out, z, v, i, b, s = _scan_outputs(x, recurrent_weights, model, save)
    steps, batch, _ = x.shape
    hidden = recurrent_weights.shape[0]
    forward_step, _, kernels = _kernels(model)
    z0 = states[0]
    state = _stacked(x, (batch, hidden), states[1:])
    xp = x.new_empty((batch, hidden))
    rec = x.new_empty((batch, hidden))
    scratch = s if save else x.new_empty((1, batch, hidden))
    arrays = (
        xp.numpy(),
        rec.numpy(),
        state.numpy(),
        params.view(-1, batch, hidden).numpy(),
        out.numpy(),
        scratch.numpy(),
    )
    w_in_t, w_rec_t = input_weights.t(), recurrent_weights.t()
    w_rec_t_rows = w_rec_t.contiguous().numpy()
    x_rows, spikes = x.unbind(0), out.numpy()
    most = hidden
    for t in range(steps):
        # Per step, the products of the reference (one product over all steps, or a sum
        # in another order, would round differently from the per-step ones).
        torch.mm(x_rows[t], w_in_t, out=xp)
        if t > 0 and most <= 2:
            # At most two spikes per row: their weights summed in any order are exact.
            kernels.spike_current(spikes[t - 1], w_rec_t_rows, arrays[1])
        else:
            torch.mm(z0 if t == 0 else out[t - 1], w_rec_t, out=rec)
        most = forward_step(t, *arrays)
    z.copy_(out[-1])
    v.copy_(state[0])
    i.copy_(state[1])
    if b.numel():
        b.copy_(state[2])
    return out, z, v, i, b, s


@recurrent_scan.register_fake
def _(x, input_weights, recurrent_weights, states, params, alpha, method, model, save):
    return _scan_outputs(x, recurrent_weights, model, save)


def _backward_outputs(x, input_weights, recurrent_weights, states, needs):
    like = (x, input_weights, recurrent_weights, *states)
    return tuple(
        torch.empty_like(t) if (n and t.numel()) else x.new_empty((0,))
        for t, n in zip(like, needs)
    )


@torch.library.custom_op("norse::recurrent_scan_backward", mutates_args=())
def recurrent_scan_backward(
    g_out: Tensor,
    g_states: List[Tensor],
    x: Tensor,
    input_weights: Tensor,
    recurrent_weights: Tensor,
    states: List[Tensor],
    s: Tensor,
    params: Tensor,
    alpha: Tensor,
    method: int,
    model: int,
    needs: List[bool],
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Backpropagation through time of :func:`recurrent_scan` (see the module doc).

    ``g_out``: ``(T, N, H)``; ``g_states``: gradients of the final ``z, v, i, b``;
    ``states``: the initial states as passed to :func:`recurrent_scan`; ``s``: its saved
    distances to the threshold; ``needs``: which of ``x, input_weights,
    recurrent_weights, z0, v0, i0, b0`` need a gradient. Returns these gradients, empty
    where not needed.
    """
    g_x, g_w_in, g_w_rec, g_z0, g_v0, g_i0, g_b0 = _backward_outputs(
        x, input_weights, recurrent_weights, states, needs
    )
    steps, batch, inputs = x.shape
    hidden = recurrent_weights.shape[0]
    _, backward_step, kernels = _kernels(model)
    adj = _stacked(x, (batch, hidden), g_states[1:])
    # The adjoint of z_t through the next step's current; at the end, the final z's.
    mu = g_states[0].contiguous().clone()
    dc = x.new_empty((steps, batch, hidden))
    scratch = x.new_empty(batch * hidden)
    consts = np.array(
        [float(alpha.item()), 1.0, 2.0, -1.5, math.sqrt(math.pi)],
        dtype=scratch.numpy().dtype,
    )
    # A gradient that is the same at every step (e.g. from out.sum()) is read as one row.
    g_rows = g_out[:1] if g_out.stride(0) == 0 else g_out
    g_rows = g_rows.contiguous()
    arrays = (
        _rows(g_rows, g_rows.shape[0]),
        mu.view(-1).numpy(),
        _rows(s, steps),
        _rows(adj, 3),
        _rows(params, params.shape[0]),
        _rows(dc, steps),
        scratch.numpy(),
        consts,
        method,
    )
    dc_rows = dc.unbind(0)
    # Heaviside passes no gradient through the spikes: mu is needed for z0 only.
    through_spikes = method != SURROGATE_CODES["heaviside"]
    for t in range(steps - 1, -1, -1):
        backward_step(t, *arrays)
        if (t > 0 and through_spikes) or (t == 0 and needs[3]):
            torch.mm(dc_rows[t], recurrent_weights, out=mu)
    flat = dc.view(steps * batch, hidden)
    if needs[0]:
        torch.mm(flat, input_weights, out=g_x.view(steps * batch, inputs))
    if needs[1]:
        torch.mm(flat.t(), x.reshape(steps * batch, inputs), out=g_w_in)
    if needs[2]:
        # The spikes that fed each step's current: z0, then z_0 ... z_{T-2}.
        torch.mm(dc_rows[0].t(), states[0], out=g_w_rec)
        if steps > 1:
            s_prev = s[:-1].view(-1, hidden)
            transposed = x.new_zeros((hidden, hidden))
            if kernels.spike_weight_grad(
                s_prev.numpy(),
                flat[batch:].numpy(),
                transposed.numpy(),
                SPARSE_FRACTION * s_prev.numel(),
            ):
                g_w_rec += transposed.t()
            else:
                g_w_rec.addmm_(flat[batch:].t(), (s_prev > 0).to(x.dtype))
    for grad, row in ((g_z0, mu), (g_v0, adj[0]), (g_i0, adj[1]), (g_b0, adj[2])):
        if grad.numel():
            grad.copy_(row)
    return g_x, g_w_in, g_w_rec, g_z0, g_v0, g_i0, g_b0


@recurrent_scan_backward.register_fake
def _(g_out, g_states, x, input_weights, recurrent_weights, states, s, *rest):
    return _backward_outputs(x, input_weights, recurrent_weights, states, rest[-1])


def _setup_context(ctx, inputs, output) -> None:
    x, w_in, w_rec, states, params, alpha, method, model, _ = inputs
    ctx.save_for_backward(x, w_in, w_rec, params, alpha, output[5], *states)
    ctx.method = method
    ctx.model = model
    # Unused outputs (the saved s, often the final state) get no zero-filled gradients.
    ctx.set_materialize_grads(False)


def _backward(ctx, g_out: Optional[Tensor], *g_rest: Optional[Tensor]):
    x, w_in, w_rec, params, alpha, s, *states = ctx.saved_tensors
    needs_x, needs_w_in, needs_w_rec, needs_states = ctx.needs_input_grad[:4]
    needs = [needs_x, needs_w_in, needs_w_rec, *needs_states]
    if g_out is None:
        g_out = s.new_zeros(()).expand(s.shape)
    # Absent states (LIF: b) are empty; so are their gradients.
    g_states = []
    for grad, state in zip(g_rest[:4], states):
        if grad is None or not state.numel():
            grad = state.new_zeros(state.shape)
        g_states.append(grad)
    grads = torch.ops.norse.recurrent_scan_backward(
        g_out, g_states, x, w_in, w_rec, states, s, params, alpha, ctx.method,
        ctx.model, needs,
    )  # fmt: skip
    grads = [grad if needed else None for grad, needed in zip(grads, needs)]
    return (*grads[:3], grads[3:], None, None, None, None, None)


torch.library.register_autograd(
    "norse::recurrent_scan", _backward, setup_context=_setup_context
)


def _scalar_alpha(alpha: Any) -> bool:
    if isinstance(alpha, torch.Tensor):
        return alpha.numel() == 1 and not alpha.is_complex()
    return isinstance(alpha, (int, float)) and not isinstance(alpha, bool)


def _weights_supported(x: Tensor, input_weights: Any, recurrent_weights: Any) -> bool:
    for weight in (input_weights, recurrent_weights):
        if (
            not isinstance(weight, torch.Tensor)
            or weight.layout != torch.strided
            or weight.dtype != x.dtype
            or weight.device != x.device
            or weight.dim() != 2
        ):
            return False
    hidden = recurrent_weights.shape[0]
    return tuple(recurrent_weights.shape) == (hidden, hidden) and tuple(
        input_weights.shape
    ) == (hidden, x.shape[-1])


def _make_factory(code: int) -> Callable:
    """The registry factory of ``_MODELS[code]``."""
    model = _MODELS[code]

    def factory(
        p: Any,
        input_tensor: Tensor,
        state: Any,
        record_states: bool,
        input_weights: Optional[Tensor] = None,
        recurrent_weights: Optional[Tensor] = None,
    ) -> Optional[Callable]:
        x = input_tensor
        if (
            record_states
            or not isinstance(x, torch.Tensor)
            or x.layout != torch.strided
            or x.device.type != "cpu"
            or x.dtype not in _DTYPES
            or x.dim() < 2
            or x.numel() == 0
            or not isinstance(state, model.state_type)
            or not _weights_supported(x, input_weights, recurrent_weights)
            or not registry.backend_available("cpu")
        ):
            return None
        shape = (*x.shape[1:-1], recurrent_weights.shape[0])
        grad = torch.is_grad_enabled()
        for field in model.fields:
            if field is None:
                continue
            value = getattr(p, field, None)
            if not _parameter_supported(value, x, shape) or (
                grad and isinstance(value, torch.Tensor) and value.requires_grad
            ):
                return None
        for value in state:
            if not _state_supported(value, x, shape):
                return None
        method = SURROGATE_CODES.get(getattr(p, "method", None), -1)
        if method < 0 or not _scalar_alpha(getattr(p, "alpha", None)):
            return None
        return functools.partial(_run, code, method)

    return factory


def _run(
    code: int,
    method: int,
    input_tensor: Tensor,
    state: Any,
    p: Any,
    dt: float,
    record_states: bool,
    input_weights: Tensor,
    recurrent_weights: Tensor,
) -> Tuple[Tensor, Any]:
    """Runs the whole sequence with :func:`recurrent_scan` (a configuration that the
    factory accepted)."""
    model = _MODELS[code]
    x = input_tensor
    steps, hidden = x.shape[0], recurrent_weights.shape[0]
    shape = (*x.shape[1:-1], hidden)
    batch = math.prod(x.shape[1:-1])
    neurons = batch * hidden
    fields = model.state_type._fields
    states = [
        getattr(state, field).expand(shape).reshape(batch, hidden)
        if field in fields
        else x.new_empty((0,))
        for field in STATE_FIELDS
    ]
    params = torch.stack(
        [
            x.new_zeros(neurons)
            if field is None
            else _as_lanes(getattr(p, field), dt if scaled else None, x, shape, x.dtype)
            .detach()
            .expand(neurons)
            for field, scaled in zip(model.fields, _SCALED_BY_DT)
        ]
    )
    # As the reference threshold: a tensor alpha is detached and cast, a number is
    # rounded to the input's dtype directly.
    if isinstance(p.alpha, torch.Tensor):
        alpha = p.alpha.detach().reshape(1).to(x.dtype)
    else:
        alpha = torch.tensor([float(p.alpha)], dtype=x.dtype)
    save = torch.is_grad_enabled() and any(
        t.requires_grad for t in (x, input_weights, recurrent_weights, *states)
    )
    out, *final, _ = torch.ops.norse.recurrent_scan(
        x.reshape(steps, batch, x.shape[-1]),
        input_weights,
        recurrent_weights,
        states,
        params,
        alpha,
        method,
        code,
        save,
    )
    values = {
        field: value.view(shape)
        for field, value in zip(STATE_FIELDS, final)
        if field in fields
    }
    return out.view(steps, *shape), model.state_type(**values)


registry.register(lsnn_step, _make_factory(0))
registry.register(lif_step, _make_factory(1))
