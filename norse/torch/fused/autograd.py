r"""The time-fused neuron scan as PyTorch custom operators with a hand-written backward.

``torch.ops.norse.neuron_scan`` runs a feed-forward model of the LIF family (see
:mod:`.spec` for the flags and :mod:`.cpu` for the equations) over all time steps in one
pass; ``torch.ops.norse.neuron_scan_backward`` is its backpropagation through time with
the surrogate gradient of the threshold. Both are registered with
:func:`torch.library.custom_op` and have fake (meta) implementations, so
``torch.compile`` traces through them without a graph break, and the forward carries
its backward through :func:`torch.library.register_autograd`.

Shapes (``T`` steps, ``M`` neurons, batch included):

* ``x``: ``(T, M)``; ``v0``, ``i0``: ``(M,)`` (``i0`` is empty for models without a
  synaptic current);
* ``a_mem = dt * tau_mem_inv``, ``a_syn = dt * tau_syn_inv``, ``v_leak``, ``v_th``,
  ``v_reset``: ``(1,)`` (shared) or ``(M,)`` (per neuron), in the dtype of ``x``;
* ``alpha``: ``(1,)``, the surrogate sharpness;
* outputs: spikes (or voltages) ``(T, M)``, and ``v``, ``i`` as ``(T, M)`` records or
  ``(M,)`` final states.

Between forward and backward only the inputs are kept: the backward replays the
forward dynamics from the initial state (see :mod:`.cpu`).
"""

import importlib
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from norse.torch.fused.spec import SYN

#: The kernel module of each device type (:mod:`.cpu`, :mod:`.cuda`), imported on first
#: use; both provide ``scan_forward`` and ``scan_backward`` on tensors. (The tests route
#: CPU tensors through the Triton kernels in interpreter mode by changing this.)
BACKENDS = {"cpu": "norse.torch.fused.cpu", "cuda": "norse.torch.fused.cuda"}


def _backend(x: Tensor):
    return importlib.import_module(BACKENDS[x.device.type])


@torch.library.custom_op("norse::neuron_scan", mutates_args=())
def neuron_scan(
    x: Tensor,
    v0: Tensor,
    i0: Tensor,
    params: List[Tensor],
    alpha: Tensor,
    method: int,
    flags: int,
    record: bool,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Runs a neuron model over time; returns ``(outputs, v, i)`` (see the module doc)."""
    out, v_out, i_out = _scan_outputs(x, v0, flags, record)
    _backend(x).scan_forward(x, v0, i0, params, flags, out, v_out, i_out)
    return out, v_out, i_out


def _scan_outputs(x: Tensor, v0: Tensor, flags: int, record: bool):
    shape = (x.shape[0], x.shape[1]) if record else (x.shape[1],)
    v_out = x.new_empty(shape, dtype=v0.dtype)
    i_out = x.new_empty(shape if flags & SYN else (0,), dtype=v0.dtype)
    return torch.empty_like(x), v_out, i_out


@neuron_scan.register_fake
def _(x, v0, i0, params, alpha, method, flags, record):
    return _scan_outputs(x, v0, flags, record)


@torch.library.custom_op("norse::neuron_scan_backward", mutates_args=())
def neuron_scan_backward(
    g_out: Tensor,
    g_v: Tensor,
    g_i: Tensor,
    x: Tensor,
    v0: Tensor,
    i0: Tensor,
    params: List[Tensor],
    alpha: Tensor,
    method: int,
    flags: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Backpropagation through time of :func:`neuron_scan`.

    ``g_out``: ``(T, M)``; ``g_v``, ``g_i``: gradients of the ``v``, ``i`` outputs (``(T, M)``
    records or ``(M,)``). Returns ``(g_x, g_v0, g_i0, g_p)`` with ``g_p`` the ``(5, M)``
    per-neuron gradients of the parameters.
    """
    results = _backward_outputs(x, v0, flags)
    _backend(x).scan_backward(
        (g_out, g_v, g_i), x, v0, i0, params, alpha, method, flags, results
    )
    return results


def _backward_outputs(x: Tensor, v0: Tensor, flags: int):
    g_i0 = torch.empty_like(v0) if flags & SYN else v0.new_empty(0)
    return (
        torch.empty_like(x),
        torch.empty_like(v0),
        g_i0,
        v0.new_empty((5, x.shape[1])),
    )


@neuron_scan_backward.register_fake
def _(g_out, g_v, g_i, x, v0, i0, params, alpha, method, flags):
    return _backward_outputs(x, v0, flags)


def _setup_context(ctx, inputs, output) -> None:
    x, v0, i0, params, alpha, method, flags, record = inputs
    ctx.save_for_backward(x, v0, i0, alpha, *params)
    ctx.method = method
    ctx.flags = flags


def _backward(ctx, g_out: Tensor, g_v: Tensor, g_i: Tensor):
    x, v0, i0, alpha, *params = ctx.saved_tensors
    syn = (ctx.flags & SYN) != 0
    if not syn:
        g_i = x.new_empty(0)
    g_x, g_v0, g_i0, g_p = torch.ops.norse.neuron_scan_backward(
        g_out, g_v, g_i, x, v0, i0, params, alpha, ctx.method, ctx.flags
    )
    needs_x, needs_v0, needs_i0, needs_params = ctx.needs_input_grad[:4]
    g_params = []
    for row, (value, needed) in enumerate(zip(params, needs_params)):
        grad = None
        if needed:
            grad = g_p[row]
            if value.numel() == 1:
                grad = grad.sum().reshape(value.shape)
        g_params.append(grad)
    return (
        g_x if needs_x else None,
        g_v0 if needs_v0 else None,
        g_i0 if needs_i0 and syn else None,
        g_params,
        None,  # alpha: detached, as in the reference threshold
        None,
        None,
        None,
    )


torch.library.register_autograd(
    "norse::neuron_scan", _backward, setup_context=_setup_context
)


def scan(
    x: Tensor,
    v0: Tensor,
    i0: Optional[Tensor],
    params: Sequence[Tensor],
    alpha: Tensor,
    method: int,
    flags: int,
    record: bool,
) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Calls :func:`neuron_scan` on prepared inputs (see the module doc for the shapes).

    ``params`` is ``(a_mem, a_syn, v_leak, v_th, v_reset)``; ``i0`` is ``None`` for models
    without a synaptic current. Returns ``(outputs, v, i)`` with ``i`` ``None`` for those.
    """
    syn = (flags & SYN) != 0
    out, v, i = torch.ops.norse.neuron_scan(
        x,
        v0,
        i0 if syn else x.new_empty(0),
        list(params),
        alpha,
        method,
        flags,
        record,
    )
    return out, v, (i if syn else None)
