r"""Generated kernels for recurrent steps: PyTorch's matrix products, fused elementwise
dynamics.

A recurrent step ``step(x, state, W_in, W_rec, p, dt)`` is traced with its two products
``linear(x, W_in)`` and ``linear(z, W_rec)`` (``z`` a state field, the last spikes) as the
inputs of its elementwise graph (:func:`.trace.trace_recurrent`). One autograd function
runs the sequence:

* forward, per step: the two products exactly as the reference step computes them (the
  same :func:`torch.nn.functional.linear` calls, so the forward pass is the reference's
  bit for bit), then one call of the generated elementwise kernel (one step) on them and
  the state; the state before each step and the two products are kept;
* backward, per step in reverse: the generated adjoint kernel (one step) gives the
  gradients of the two products, the state before the step and the per-neuron
  parameters; the recurrent product's adjoint :math:`\partial z_{t-1} \mathrel{+}=
  \partial b_t W_{rec}` joins the state gradient; after the loop the weight and input
  gradients are one product each over all steps, :math:`\partial W_{in} = \sum_t
  \partial a_t^T x_t`, :math:`\partial W_{rec} = \sum_t \partial b_t^T z_{t-1}`,
  :math:`\partial x_t = \partial a_t W_{in}`.
"""

from typing import Any, Callable, Optional, Tuple

import torch
from torch import Tensor

from norse.torch.fused import registry
from norse.torch.fused.generate import _program_inputs, results, runtime
from norse.torch.fused.generate.runtime import _np
from norse.torch.fused.generate.trace import flatten


class _RecurrentScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, key, n_states, record, x, w_in, w_rec, *rest):
        program = runtime._PROGRAMS[key]
        module = program.module("cpu")
        states, params = rest[:n_states], rest[n_states:]
        steps, batch = x.shape[0], x.shape[1]
        hidden = w_rec.shape[0]
        lanes = batch * hidden
        fields = program.state_fields
        sources = [
            None if kind == "input" else fields.index(field)
            for kind, field in program.products
        ]
        # history[k][t]: state field k before step t (history[k][steps]: the final one)
        history = [x.new_empty((steps + 1, lanes), dtype=s.dtype) for s in states]
        for row, state in zip(history, states):
            row[0] = state
        products = [x.new_empty((steps, batch, hidden)) for _ in sources]
        out = x.new_empty((steps, lanes), dtype=program.output_dtype)
        h, pr, o = (
            [_np(t) for t in history],
            [_np(t) for t in products],
            _np(out),
        )
        flat = [a.reshape(steps, lanes) for a in pr]
        ps = [_np(t) for t in params]
        for t in range(steps):
            for k, source in enumerate(sources):
                operand = (
                    x[t] if source is None else history[source][t].view(batch, hidden)
                )
                weights = w_in if source is None else w_rec
                # the reference's own call: the same rounding as its step
                products[k][t] = torch.nn.functional.linear(operand, weights)
            module.forward_step(
                *(a[t : t + 1] for a in flat),
                *(a[t] for a in h),
                *ps,
                o[t : t + 1],
                *(a[t + 1 : t + 2] for a in h),
                0,
                lanes,
            )
        ctx.key, ctx.n_states, ctx.record = key, n_states, record
        ctx.shape = (steps, batch, hidden)
        ctx.sources = sources
        ctx.save_for_backward(x, w_in, w_rec, *history, *products, *params)
        # copies: the outputs must not share memory with what the backward pass reads
        final = [(row[1:] if record else row[steps]).clone() for row in history]
        return (out, *final)

    @staticmethod
    def backward(ctx, g_out, *g_final):
        saved = ctx.saved_tensors
        n_states = ctx.n_states
        x, w_in, w_rec = saved[:3]
        history = saved[3 : 3 + n_states]
        products = saved[3 + n_states : 3 + n_states + len(ctx.sources)]
        params = saved[3 + n_states + len(ctx.sources) :]
        program = runtime._PROGRAMS[ctx.key]
        module = program.module("cpu")
        steps, batch, hidden = ctx.shape
        lanes = batch * hidden
        needs_params = ctx.needs_input_grad[6 + n_states :]
        param_grads = any(needs_params)
        kernel = (
            module.backward_step_all if param_grads else module.backward_step_states
        )
        g_out = (
            x.new_zeros((steps, lanes), dtype=program.output_dtype)
            if g_out is None
            else g_out.contiguous()
        )
        # g_states[k]: the gradient of state field k after the step at hand
        g_states = [x.new_zeros((1, lanes), dtype=h.dtype) for h in history]
        if ctx.record:
            recorded = [None if g is None else g.contiguous() for g in g_final]
        else:
            for g_state, g in zip(g_states, g_final):
                if g is not None:
                    g_state[0] = g
        g_before = [x.new_empty((lanes,), dtype=h.dtype) for h in history]
        g_products = [x.new_empty((steps, batch, hidden)) for _ in ctx.sources]
        differentiable = len(program.differentiable)
        g_params_step = (
            [x.new_empty((lanes,)) for _ in range(differentiable)]
            if param_grads
            else []
        )
        g_params = [torch.zeros_like(g) for g in g_params_step]
        h = [_np(t) for t in history]
        pr = [_np(t).reshape(steps, lanes) for t in products]
        gp = [_np(t).reshape(steps, lanes) for t in g_products]
        ps = [_np(t) for t in params]
        go, gs, gb = (
            _np(g_out),
            [_np(t) for t in g_states],
            [_np(t) for t in g_before],
        )
        gps = [_np(t) for t in g_params_step]
        for t in range(steps - 1, -1, -1):
            if ctx.record:
                for g_state, g in zip(g_states, recorded):
                    if g is not None:
                        g_state += g[t]
            kernel(
                go[t : t + 1],
                *gs,
                *(a[t : t + 1] for a in pr),
                *(a[t] for a in h),
                *ps,
                *(a[t : t + 1] for a in gp),
                *gb,
                *gps,
                0,
                lanes,
            )
            for g_state, g in zip(g_states, g_before):
                g_state[0] = g
            for k, source in enumerate(ctx.sources):
                if source is not None:
                    # b_t = z_{t-1} W_rec^T: the spikes of the step before get dz
                    g_states[source].view(batch, hidden).addmm_(g_products[k][t], w_rec)
            for total, g in zip(g_params, g_params_step):
                total += g
        g_x = g_w_in = g_w_rec = None
        for k, source in enumerate(ctx.sources):
            g = g_products[k].reshape(steps * batch, hidden)
            if source is None:
                if ctx.needs_input_grad[3]:
                    g_x = (g @ w_in).reshape(x.shape)
                if ctx.needs_input_grad[4]:
                    g_w_in = g.t() @ x.reshape(steps * batch, -1)
            elif ctx.needs_input_grad[5]:
                z = history[source][:steps].reshape(steps * batch, hidden)
                g_w_rec = g.t() @ z
        result_params = runtime.parameter_gradients(
            program, params, g_params if param_grads else None, needs_params
        )
        g_states0 = [
            g[0] if needed else None
            for g, needed in zip(g_states, ctx.needs_input_grad[6 : 6 + n_states])
        ]
        return (None, None, None, g_x, g_w_in, g_w_rec, *g_states0, *result_params)


def kernel_for(
    step: Callable,
    p: Any,
    input_tensor: Tensor,
    state: Any,
    record_states: bool,
    weights: Tuple[Tensor, Tensor],
    dt: float,
) -> Optional[Callable]:
    """A kernel ``(input, state, p, dt, record_states, input_weights,
    recurrent_weights) -> (spikes, state)`` for the recurrent ``step`` on the CPU, or
    ``None`` (the reference loop runs)."""
    w_in, w_rec = weights
    x = input_tensor
    if (
        torch.compiler.is_compiling()
        or x.device.type != "cpu"
        or not registry.backend_available("cpu")
        or runtime.BACKENDS["cpu"] != "cpu"
        or x.is_sparse
        or x.dim() != 3
        or x.dtype not in (torch.float32, torch.float64)
        or any(w.dtype != x.dtype or w.is_sparse for w in weights)
        or not all(isinstance(v, Tensor) for _, v in flatten(state))
    ):
        return None
    hidden = w_rec.shape[0]
    shape = (x.shape[1], hidden)
    for _, value in flatten(state):
        if tuple(value.shape) != shape or value.dtype != x.dtype:
            return None
    program = runtime.program_for(step, x.dtype, state, p, dt, recurrent=True)
    if program is None or program.products is None:
        return None

    def kernel(x, given_state, p, dt, record_states, w_in, w_rec):
        states, params = _program_inputs(program, p, given_state, shape, x.device)
        outputs = _RecurrentScan.apply(
            program.key, len(states), record_states, x, w_in, w_rec, *states, *params
        )
        return results(program, outputs, given_state, x.shape[0], shape, record_states)

    return kernel
