r"""The time-fused neuron scan as PyTorch custom operators with a hand-written backward.

``torch.ops.norse.neuron_scan`` runs a feed-forward model of the LIF family (see
:mod:`.spec` for the flags and :mod:`.cuda` for the equations) over all time steps in one
pass; ``torch.ops.norse.neuron_scan_backward`` is its backpropagation through time with
the surrogate gradient of the threshold. Both are registered with
:func:`torch.library.custom_op` and have fake (meta) implementations, so
``torch.compile`` traces through them without a graph break, and the forward carries
its backward through :func:`torch.library.register_autograd`.

Shapes (``T`` steps, ``M`` neurons, batch included):

* ``x``: ``(T, M)``;
* ``states``: ``[v0, i0, b0]`` (voltage, synaptic current, adaptive threshold), each
  ``(M,)``, or empty (``(0,)``) for a state the model lacks;
* ``params``: ``[a_mem, a_syn, v_leak, v_th, v_reset, a_adapt, beta]`` with
  ``a_* = dt * tau_*_inv``, each ``(1,)`` (shared) or ``(M,)`` (per neuron), in the
  compute dtype (that of the states);
* ``alpha``: ``(1,)``, the surrogate sharpness;
* outputs: spikes (or voltages) ``(T, M)`` in the dtype of ``x``, and ``v``, ``i``, ``b``
  as ``(T, M)`` records, ``(M,)`` final states, or empty.

Between forward and backward only the inputs are kept: the backward replays the
forward dynamics from the initial state (see :mod:`.cuda`).
"""

import importlib
from typing import Any, Iterable, List, Sequence, Tuple

import torch
from torch import Tensor

from norse.torch.fused import registry

#: The kernel module of each device type (:mod:`.cuda`), imported on first use; it
#: provides ``scan_forward`` and ``scan_backward`` on tensors. (The tests route CPU
#: tensors through the Triton kernels in interpreter mode by adding ``"cpu"``.)
BACKENDS = {"cuda": "norse.torch.fused.cuda"}


def _backend(x: Tensor):
    return importlib.import_module(BACKENDS[x.device.type])


def _scan_outputs(x: Tensor, states: List[Tensor], record: bool):
    shape = (x.shape[0], x.shape[1]) if record else (x.shape[1],)
    outputs = [torch.empty_like(x)]
    for state in states:
        outputs.append(state.new_empty(shape if state.numel() else (0,)))
    return tuple(outputs)


def _neuron_scan(x, states, params, flags, record):
    out, *state_out = _scan_outputs(x, states, record)
    _backend(x).scan_forward(x, states, params, flags, out, state_out)
    return (out, *state_out)


@torch.library.custom_op("norse::neuron_scan", mutates_args=())
def neuron_scan(
    x: Tensor,
    states: List[Tensor],
    params: List[Tensor],
    alpha: Tensor,
    method: int,
    flags: int,
    record: bool,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Runs a neuron model over time; returns ``(outputs, v, i, b)`` (see the module
    doc)."""
    return _neuron_scan(x, states, params, flags, record)


@neuron_scan.register_fake
def _(x, states, params, alpha, method, flags, record):
    return _scan_outputs(x, states, record)


def _backward_outputs(
    x: Tensor, states: List[Tensor], params: List[Tensor], param_grads: bool
):
    g_states0 = [torch.empty_like(state) for state in states]
    # A backend that can skip the parameter gradients gets (and returns) no rows.
    optional = getattr(_backend(x), "OPTIONAL_PARAMETER_GRADIENTS", False)
    rows = len(params) if param_grads or not optional else 0
    g_p = states[0].new_empty((rows, x.shape[1]))
    return (torch.empty_like(x), *g_states0, g_p)


@torch.library.custom_op("norse::neuron_scan_backward", mutates_args=())
def neuron_scan_backward(
    g_out: Tensor,
    g_states: List[Tensor],
    x: Tensor,
    states: List[Tensor],
    params: List[Tensor],
    alpha: Tensor,
    method: int,
    flags: int,
    param_grads: bool,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Backpropagation through time of :func:`neuron_scan`.

    ``g_out``: ``(T, M)``; ``g_states``: gradients of the ``v``, ``i``, ``b`` outputs.
    Returns ``(g_x, g_v0, g_i0, g_b0, g_p)`` with ``g_p`` the per-neuron gradients of the
    parameters, ``(7, M)``; without ``param_grads`` it may have no rows (the CPU backend
    then leaves out their accumulation, a faster kernel).
    """
    g_x, *g_states0, g_p = _backward_outputs(x, states, params, param_grads)
    _backend(x).scan_backward(
        g_out, g_states, x, states, params, alpha, method, flags, g_x, g_states0, g_p
    )
    return (g_x, *g_states0, g_p)


@neuron_scan_backward.register_fake
def _(g_out, g_states, x, states, params, alpha, method, flags, param_grads):
    return _backward_outputs(x, states, params, param_grads)


def _setup_context(ctx, inputs, output) -> None:
    x, states, params, alpha, method, flags, record = inputs
    ctx.save_for_backward(x, alpha, *states, *params)
    ctx.counts = (len(states), len(params))
    ctx.method = method
    ctx.flags = flags


def _backward(ctx, g_out: Tensor, *g_states: Tensor):
    x, alpha, *saved = ctx.saved_tensors
    states, params = saved[: ctx.counts[0]], saved[ctx.counts[0] :]
    # Absent states have empty outputs; their (materialised) gradients are empty too.
    g_states = [
        grad if state.numel() else state for grad, state in zip(g_states, states)
    ]
    needs_x, needs_states, needs_params = ctx.needs_input_grad[:3]
    g_x, *g_states0, g_p = torch.ops.norse.neuron_scan_backward(
        g_out,
        g_states,
        x,
        states,
        params,
        alpha,
        ctx.method,
        ctx.flags,
        any(needs_params),
    )
    g_states0 = [
        grad if (needed and state.numel()) else None
        for grad, state, needed in zip(g_states0, states, needs_states)
    ]
    g_params = []
    for row, (value, needed) in enumerate(zip(params, needs_params)):
        grad = None
        if needed:
            grad = g_p[row]
            if value.numel() == 1:
                grad = grad.sum().reshape(value.shape)
        g_params.append(grad)
    # alpha is detached, as in the reference threshold; the rest are static arguments.
    return g_x if needs_x else None, g_states0, g_params, None, None, None, None


torch.library.register_autograd(
    "norse::neuron_scan", _backward, setup_context=_setup_context
)


def plain_inference(x: Tensor, *others: Iterable[Any]) -> bool:
    """No gradient to record for ``x`` and the tensors among ``others`` (iterables,
    read only while gradients are on); ``x`` a plain tensor (not a fake one); no
    tracing, compiling, ``torch.func`` transform or dispatch mode that should see the
    operator."""
    if torch.is_grad_enabled() and (
        x.requires_grad
        or any(
            isinstance(t, Tensor) and t.requires_grad
            for values in others
            for t in values
        )
    ):
        return False
    return type(x) is torch.Tensor and registry.plain_eager()


def scan(
    x: Tensor,
    states: Sequence[Tensor],
    params: Sequence[Tensor],
    alpha: Tensor,
    method: int,
    flags: int,
    record: bool,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Calls :func:`neuron_scan` on prepared inputs (see the module doc for the shapes):
    returns ``(outputs, v, i, b)``, with empty tensors for states the model lacks.

    In plain eager mode with nothing to differentiate (inference) it runs the
    operator's implementation without the dispatcher (saves about 0.05 ms a call)."""
    if plain_inference(x, states, params):
        return _neuron_scan(x, list(states), list(params), flags, record)
    return torch.ops.norse.neuron_scan(
        x, list(states), list(params), alpha, method, flags, record
    )
