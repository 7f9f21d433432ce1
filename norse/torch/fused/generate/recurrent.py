r"""Generated kernels for steps with matrix products: PyTorch's products, fused
elementwise stages, one step at a time.

A step whose products ``linear(value, W)`` (a recurrent step's ``linear(x, W_in)`` and
``linear(z, W_rec)``, a multi-compartment step's ``linear(v, G)``) were traced as
``product`` nodes (:mod:`.trace`) is cut into elementwise stages (:mod:`.stages`), each
compiled into a single-step kernel and its adjoint (Numba on the CPU,
:func:`.numba_source.step_source`; Triton on CUDA,
:func:`.triton_source.step_module_source`, the same arguments as tensors). One autograd
function runs the sequence, float32 or float64 (float16 and bfloat16 input on CUDA is
computed in float32, products included, and its output and state are rounded to their
dtypes, as the scans round what they store: the results equal the float32 reference on
the upcast values, rounded):

* forward, per step and round: the products of the round exactly as the reference step
  computes them (the same :func:`torch.nn.functional.linear` calls, so the forward pass
  is the reference's bit for bit), then the stage of the round; the state before each
  step, the products and the computed product operands are kept;
* backward, per step in reverse and stage in reverse: the stage's adjoint kernel gives
  the gradients of what it read (products, product operands, the state before the
  step) and of the per-neuron parameters; then the products of its round pass their
  gradient :math:`g` on to their operands, :math:`g W` (per step: the state before or an
  operand computed in the step feed back in time); after the loop the gradients of the
  matrices are one product each over all steps, :math:`\partial W = \sum_t g_t^T
  u_t` (:math:`u_t` the operand), and so is the gradient of the input through its
  products, :math:`\partial x_t = g_t W_{in}`.

On the CPU a product whose operand is binary (spikes fed back) is event-driven where
that is exact or only reorders a sum: in the forward pass a step's product when every
row has at most :data:`EXACT_SPIKES` spikes (the sum of one or two weight rows is the
dense product's in any order, the weights being finite), and the matrix gradient
:math:`\sum_t g_t^T u_t` when few of the operands' values are spikes (the sum of the
rows of :math:`g` per spike, in another order than the dense product's)
(:mod:`norse.torch.fused.cpu_linear`).
"""

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from norse.torch.fused import registry
from norse.torch.fused.generate import _program_inputs, results, runtime
from norse.torch.fused.generate.runtime import _np
from norse.torch.fused.generate.stages import Source
from norse.torch.fused.generate.trace import (
    HALF_PRECISION,
    RECURRENT,
    flatten,
    rebuild,
    structure,
)

_linear = torch.nn.functional.linear

#: Spikes per row up to which a forward product of a binary operand is event-driven (on
#: the CPU): one or two weight rows add up exactly, as in the dense product.
EXACT_SPIKES = 2
#: Activity (the fraction of an operand's values that are spikes) up to which a
#: matrix's gradient is summed per spike: the crossover with the dense product, about
#: 9-10% for any size (both costs grow with the matrix; ``benchmarks/RESULTS.md``).
WEIGHT_GRADIENT_ACTIVITY = 0.1


class _SpikeProducts:
    """The event-driven products of one sequence on the CPU (see the module doc), kept
    from the forward pass for the backward pass: the products of a state field or a
    computed value, until the operand turns out not to be binary (a voltage, say) or
    the matrix not finite, and the transposed matrices of those computed so."""

    def __init__(self, plan, matrices: Sequence[Tensor], backend: str):
        self.tables: Dict[int, Tensor] = {}
        # per product: steps to skip before the next try, and the wait after a miss
        # (doubled by each miss in a row, so that dense phases cost few scans)
        self.skip: Dict[int, int] = {}
        self.wait: Dict[int, int] = {}
        self.matrices: Dict[int, Tensor] = {}
        if backend != "cpu":
            return
        from norse.torch.fused import cpu_linear

        self.kernels = cpu_linear
        self.matrices = {
            k: matrices[product.matrix]
            for k, product in enumerate(plan.products)
            if product.operand.kind != "input"
        }

    def forward(self, k: int, operand: Tensor, out: Tensor) -> bool:
        """Writes product ``k`` of ``operand`` ``(rows, features)`` into ``out`` if it
        is exact event-driven; returns whether it did."""
        if k not in self.matrices:
            return False
        if self.skip.get(k, 0) > 0:
            self.skip[k] -= 1
            return False
        active = self.kernels.active_inputs(operand.detach())
        if active is None:
            del self.matrices[k]  # not spikes: dense from now on
            return False
        if active.count and np.diff(active.pointer).max() > EXACT_SPIKES:
            self.skip[k] = self.wait.get(k, 1)
            self.wait[k] = 2 * self.skip[k]
            return False
        self.wait[k] = 1
        table = self.tables.get(k)
        if table is None:
            weights = self.matrices[k].detach()
            # a finite sum: every weight is finite (0 * inf is NaN in the dense
            # product); an overflowing one only keeps the product dense
            if not bool(weights.sum().isfinite()):
                del self.matrices[k]
                return False
            table = self.tables[k] = weights.t().contiguous()
        self.kernels.gather_sum(table, active.index, active.pointer, None, out)
        return True

    def weight_gradient(self, k: int, g: Tensor, u: Tensor) -> Optional[Tensor]:
        """:math:`g^T u` event-driven for binary ``u`` with few spikes, else ``None``."""
        if k not in self.matrices:
            return None
        active = self.kernels.active_inputs(u)
        if active is None or active.count > WEIGHT_GRADIENT_ACTIVITY * u.numel():
            return None
        return self.kernels.binary_weight_grad(active, g)


def upcast(tree: Any) -> Any:
    """``tree`` (a state or parameters) with its half-precision tensors as float32."""
    values = {
        field: value.float()
        if isinstance(value, Tensor) and value.dtype in HALF_PRECISION
        else value
        for field, value in flatten(tree)
    }
    return rebuild(structure(tree), values)


def _rounds(plan) -> List[List[int]]:
    """Per stage, the products computed just before it."""
    before, previous = [], -1
    for stage in plan.stages:
        before.append(
            [
                k
                for k, product in enumerate(plan.products)
                if previous < product.round <= stage.round
            ]
        )
        previous = stage.round
    return before


def _first_contributions(plan) -> Dict[Tuple, bool]:
    """Per contribution to a gradient in one step's backward pass (stages in reverse,
    each followed by the products of its round), whether it is the first: the first
    writes its target, the later ones add to it. Keys: ``(i, "x", n)`` (input ``n`` of
    stage ``i``), ``(i, "s", n)`` (its state field ``n``), ``("product", k)``."""
    seen = set()
    first = {}

    def contribute(key, target: Source) -> None:
        first[key] = target not in seen
        seen.add(target)

    for i, products in reversed(list(enumerate(_rounds(plan)))):
        stage = plan.stages[i]
        for n, source in enumerate(stage.inputs):
            contribute((i, "x", n), source)
        for n, source in enumerate(stage.writes):
            if source.kind == "state":
                contribute((i, "s", n), source)
        for k in products:
            if plan.products[k].operand.kind != "input":
                contribute(("product", k), plan.products[k].operand)
    return first


def _backend(x: Tensor) -> Tuple[str, Callable]:
    """The kernel backend of ``x``'s device (:data:`.runtime.BACKENDS`) and how its
    kernels take a tensor: as a NumPy view (Numba) or as the tensor (Triton)."""
    backend = runtime.BACKENDS[x.device.type]
    return backend, (_np if backend == "cpu" else Tensor.detach)


def _lean(plan, backend: str) -> bool:
    """Whether a sequence may keep only what its adjoint reads (:class:`_Rows`): on the
    CPU, for a plan of one stage without computed operands (a recurrent step, a
    feed-forward multi-compartment one)."""
    return backend == "cpu" and len(plan.stages) == 1 and not plan.values


class _Rows:
    """One sequence's tensors as the kernels take them (``view``: NumPy views on the
    CPU), by :class:`~.stages.Source` and step ``t``.

    A state field keeps every step, ``(T + 1, M)``: the state before each step, then
    the final one; or, in a *lean* sequence (:func:`_lean`), where the forward step
    records what the adjoint reads (:attr:`.runtime.Program.records`), only two rows
    that alternate, unless it is a product's operand (the matrix's gradient reads it)
    or the states are returned for every step. A lean sequence also computes each
    product into one reused row."""

    def __init__(self, program, x, history, full, products, values, view):
        steps = x.shape[0]
        self.fields = {f: k for k, f in enumerate(program.state_fields)}
        self.full = full
        self.x = view(x).reshape(steps, -1)
        self.history = [view(h) for h in history]
        self.products = [view(p).reshape(len(p), -1) for p in products]
        self.values = [view(v) for v in values]

    def row(self, k: int, t: int) -> int:
        """The row of state field ``k`` that holds the state before step ``t``."""
        return t if self.full[k] else t % 2

    def read(self, source: Source, t: int):
        """``(1, M)``: what a stage reads at step ``t``."""
        if source.kind == "input":
            return self.x[t : t + 1]
        if source.kind == "state":
            k = self.fields[source.key]
            r = self.row(k, t)
            return self.history[k][r : r + 1]
        if source.kind == "product":
            rows = self.products[source.key]
            return rows[t : t + 1] if len(rows) > 1 else rows
        return self.values[source.key][t : t + 1]

    def before(self, source: Source, t: int):
        """``(M,)``: the old value of what a stage writes at step ``t``."""
        if source.kind == "state":
            k = self.fields[source.key]
            return self.history[k][self.row(k, t)]
        return self.values[source.key][t]  # never read

    def after(self, source: Source, t: int):
        """``(1, M)``: where a stage writes at step ``t``."""
        if source.kind == "state":
            k = self.fields[source.key]
            r = self.row(k, t + 1)
            return self.history[k][r : r + 1]
        return self.values[source.key][t : t + 1]


def _stage_params(kernels, program, params, view) -> List:
    index = {f: k for k, f in enumerate(program.params)}
    return [view(params[index[f]]) for f in kernels.params]


class _SteppedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, key, shape, counts, record, x, *rest):
        program = runtime._PROGRAMS[key]
        plan = program.plan
        n_matrices, n_states = counts
        matrices = rest[:n_matrices]
        states = rest[n_matrices : n_matrices + n_states]
        params = rest[n_matrices + n_states :]
        steps, lanes = x.shape[0], math.prod(shape)
        backend, view = _backend(x)
        needs = ctx.needs_input_grad
        save = any(needs)
        kind = "all" if any(needs[5 + n_matrices + n_states :]) else "states"
        stage0 = program.stages[0]
        lean = _lean(plan, backend) and (
            not save or stage0.records.get(kind) is not None
        )
        fields = {f: k for k, f in enumerate(program.state_fields)}
        operand_fields = {
            fields[p.operand.key] for p in plan.products if p.operand.kind == "state"
        }
        full = [
            not lean or record or (save and k in operand_fields)
            for k in range(n_states)
        ]
        history = [
            x.new_empty((steps + 1 if f else 2, lanes), dtype=s.dtype)
            for s, f in zip(states, full)
        ]
        for row, state in zip(history, states):
            row[0] = state
        products = [x.new_empty((1 if lean else steps, *shape)) for _ in plan.products]
        values = [x.new_empty((steps, lanes), dtype=d) for d in plan.values]
        recorded = stage0.record_dtypes(kind) if lean and save else []
        records = [x.new_empty((steps, lanes), dtype=d) for d in recorded]
        out = x.new_empty((steps, lanes), dtype=program.output_dtype)
        rows = _Rows(program, x, history, full, products, values, view)
        # per product: its operand's and its own rows at each step, (rows, features)
        # views made once (the loop below runs per step), and its matrix
        product_rows = []
        for product, target in zip(plan.products, products):
            source = product.operand
            if source.kind == "input":
                operand = x.reshape(steps, -1, x.shape[-1]).unbind(0)
            elif source.kind == "state":
                k = fields[source.key]
                field_rows = history[k].view(len(history[k]), -1, shape[-1]).unbind(0)
                operand = [field_rows[rows.row(k, t)] for t in range(steps)]
            else:
                operand = values[source.key].view(steps, -1, shape[-1]).unbind(0)
            targets = target.view(len(target), -1, shape[-1]).unbind(0)
            if lean:
                targets = targets * steps
            weights = matrices[product.matrix]
            product_rows.append((operand, targets, weights, weights.t()))
        # per stage: its kernel and its arguments at each step
        # a lean sequence with a backward pass records what the adjoint reads
        forward_name = f"forward_step_{kind}" if lean and save else "forward_step"
        record_rows = [view(r) for r in records]
        calls = []
        for stage, kernels in zip(plan.stages, program.stages):
            kernel = getattr(kernels.module(backend), forward_name)
            output = view(out if stage.output else out.new_empty((1, lanes)))
            ps = _stage_params(kernels, program, params, view)
            arguments = [
                (
                    *(rows.read(s, t) for s in stage.inputs),
                    *(rows.before(s, t) for s in stage.writes),
                    *ps,
                    output[t : t + 1] if stage.output else output,
                    *(rows.after(s, t) for s in stage.writes),
                    *(r[t : t + 1] for r in record_rows),
                    0,
                    lanes,
                )
                for t in range(steps)
            ]
            calls.append((kernel, arguments))
        rounds = _rounds(plan)
        spikes = ctx.spikes = _SpikeProducts(plan, matrices, backend)
        for t in range(steps):
            for (kernel, arguments), before in zip(calls, rounds):
                for k in before:
                    operand_rows, target_rows, weights, transposed = product_rows[k]
                    operand, target = operand_rows[t], target_rows[t]
                    if k in spikes.matrices and spikes.forward(k, operand, target):
                        continue
                    if backend == "cpu":
                        # the reference's linear is this product on the CPU
                        torch.mm(operand, transposed, out=target)
                    else:
                        # the reference's own call: the same rounding as its step
                        target.copy_(_linear(operand, weights))
                kernel(*arguments[t])
        ctx.key, ctx.shape, ctx.counts, ctx.record = key, shape, counts, record
        ctx.lean, ctx.full, ctx.n_records = lean, full, len(records)
        ctx.save_for_backward(
            x, *matrices, *history, *products, *values, *records, *params
        )
        # copies: the outputs must not share memory with what the backward pass reads
        final = [
            (row[1:] if record else row[rows.row(k, steps)]).clone()
            for k, row in enumerate(history)
        ]
        return (out, *final)

    @staticmethod
    def backward(ctx, g_out, *g_final):
        program = runtime._PROGRAMS[ctx.key]
        plan = program.plan
        shape, record = ctx.shape, ctx.record
        n_matrices, n_states = ctx.counts
        saved = list(ctx.saved_tensors)
        x = saved.pop(0)
        matrices = [saved.pop(0) for _ in range(n_matrices)]
        history = [saved.pop(0) for _ in range(n_states)]
        products = [saved.pop(0) for _ in plan.products]
        values = [saved.pop(0) for _ in plan.values]
        records = [saved.pop(0) for _ in range(ctx.n_records)]
        params = saved
        steps, lanes = x.shape[0], math.prod(shape)
        needs = ctx.needs_input_grad
        needs_matrices = needs[5 : 5 + n_matrices]
        needs_states = needs[5 + n_matrices : 5 + n_matrices + n_states]
        needs_params = needs[5 + n_matrices + n_states :]
        param_grads = any(needs_params)
        backend, view = _backend(x)
        rows = _Rows(program, x, history, ctx.full, products, values, view)
        g_out = (
            x.new_zeros((steps, lanes), dtype=program.output_dtype)
            if g_out is None
            else g_out.reshape(steps, lanes).contiguous()
        )
        # g_state[n][k]: the gradient of state field k, n = new: after the step at
        # hand, 1 - new: before it (new swaps after each step); with their NumPy views
        # and (rows, features) views, made once
        g_state = [
            [x.new_zeros((1, lanes), dtype=h.dtype) for h in history],
            [x.new_empty((1, lanes), dtype=h.dtype) for h in history],
        ]
        g_state_views = [[view(g) for g in pair] for pair in g_state]
        g_state_rows = [[g.view(-1, shape[-1]) for g in pair] for pair in g_state]
        if record:
            recorded = [
                None if g is None else g.reshape(steps, lanes).contiguous()
                for g in g_final
            ]
        else:
            for g_state_field, g in zip(g_state[0], g_final):
                if g is not None:
                    g_state_field[0] = g.reshape(lanes)
        # every product is read by a stage, whose adjoint writes its gradient
        g_products = [x.new_empty((steps, *shape)) for _ in plan.products]
        g_values = [x.new_empty((1, lanes), dtype=d) for d in plan.values]
        reads_input = any(
            source.kind == "input" for stage in plan.stages for source in stage.inputs
        )
        # the gradient of the input as the stages read it (a feed-forward step's)
        g_inputs = x.new_empty((steps, lanes) if reads_input else (0, lanes))
        totals = {f: x.new_zeros((lanes,)) for f in program.differentiable}
        fields = rows.fields
        first = _first_contributions(plan)
        gp = [view(g).reshape(steps, lanes) for g in g_products]
        gv = [view(g) for g in g_values]
        gi = view(g_inputs)

        def target(source: Source, which: int):
            """The gradient row of ``source`` (state fields: of ``g_state[which]``):
            ``(rows, by step)``."""
            if source.kind == "product":
                return gp[source.key], True
            if source.kind == "input":
                return gi, True
            if source.kind == "value":
                return gv[source.key], False
            return g_state_views[which][fields[source.key]], False

        def scratch() -> Tuple[Tensor, Any]:
            row = x.new_empty((1, lanes))
            return row, view(row)

        kind = "all" if param_grads else "states"
        record_rows = [view(r) for r in records]
        calls = []
        for i, (stage, kernels) in enumerate(zip(plan.stages, program.stages)):
            module = kernels.module(backend)
            # what the adjoint reads at each step: the forward step's records (a lean
            # sequence), else the stage's inputs and state before the step
            if ctx.lean:
                kernel = getattr(module, f"backward_step_{kind}_recorded")
                reads = [tuple(r[t : t + 1] for r in record_rows) for t in range(steps)]
            else:
                kernel = getattr(module, f"backward_step_{kind}")
                reads = [
                    (
                        *(rows.read(s, t) for s in stage.inputs),
                        *(rows.before(s, t) for s in stage.writes),
                    )
                    for t in range(steps)
                ]
            go = view(g_out if stage.output else g_out.new_zeros((1, lanes)))
            # (target source, scratch view or None): a later contribution to a
            # gradient goes to scratch and is added
            grads_x = [
                (source, None if first[(i, "x", n)] else scratch()[1])
                for n, source in enumerate(stage.inputs)
            ]
            grads_s = [
                (
                    source,
                    None
                    if source.kind == "state" and first[(i, "s", n)]
                    else scratch()[1],
                )
                for n, source in enumerate(stage.writes)
            ]
            wanted = kernels.differentiable if param_grads else []
            scratch_p = [x.new_empty((lanes,)) for _ in wanted]
            products_before = []  # (operand source, its gradient rows, matrix, first)
            for k in _rounds(plan)[i]:
                product = plan.products[k]
                if product.operand.kind != "input":  # those after the loop
                    products_before.append(
                        (
                            product.operand,
                            g_products[k].view(steps, -1, shape[-1]).unbind(0),
                            matrices[product.matrix],
                            first[("product", k)],
                        )
                    )
            calls.append(
                (
                    kernel,
                    go,
                    stage,
                    reads,
                    _stage_params(kernels, program, params, view),
                    grads_x,
                    grads_s,
                    list(zip(wanted, scratch_p, [view(g) for g in scratch_p])),
                    products_before,
                )
            )
        g_value_rows = [g.view(-1, shape[-1]) for g in g_values]

        def stage_step(i: int, t: int):
            """Stage ``i`` at step ``t`` of the backward pass: its adjoint and the
            adjoint's arguments, the (row, scratch) pairs to add after it, its
            per-lane parameter gradients as (field, gradient, view), and its
            products' operand gradients as (gradient row, matrix, target, first)."""
            kernel, go, stage, reads, ps, grads_x, grads_s, grads_p, before = calls[i]
            new = (steps - 1 - t) % 2  # g_state[new]: after step t
            old = 1 - new
            gx_rows, adds = [], []
            for source, scratch_row in grads_x:
                grad_rows, by_step = target(source, old)
                row = grad_rows[t : t + 1] if by_step else grad_rows
                if scratch_row is None:
                    gx_rows.append(row)
                else:
                    gx_rows.append(scratch_row)
                    adds.append((row, scratch_row))
            gs_rows, gs0_rows = [], []
            for source, scratch_row in grads_s:
                gs_rows.append(target(source, new)[0])
                if source.kind != "state":
                    gs0_rows.append(scratch_row[0])  # a value's old one: unused
                elif scratch_row is None:
                    gs0_rows.append(target(source, old)[0][0])
                else:
                    gs0_rows.append(scratch_row[0])
                    adds.append((target(source, old)[0], scratch_row))
            arguments = (
                go[t : t + 1] if stage.output else go,
                *gs_rows,
                *reads[t],
                *ps,
                *gx_rows,
                *gs0_rows,
                *(g_view for _, _, g_view in grads_p),
                0,
                lanes,
            )
            products = [
                (
                    g_rows[t],
                    weights,
                    g_state_rows[old][fields[source.key]]
                    if source.kind == "state"
                    else g_value_rows[source.key],
                    is_first,
                )
                for source, g_rows, weights, is_first in before
            ]
            return kernel, arguments, adds, grads_p, products

        # every step's arguments made first (stages in reverse): the loop below runs
        # per step
        schedule = [
            [stage_step(i, t) for i in range(len(calls) - 1, -1, -1)]
            for t in range(steps)
        ]
        for t in range(steps - 1, -1, -1):
            if record:
                new = (steps - 1 - t) % 2
                for g_state_field, g in zip(g_state[new], recorded):
                    if g is not None:
                        g_state_field += g[t]
            for kernel, arguments, adds, grads_p, products in schedule[t]:
                kernel(*arguments)
                for row, scratch_row in adds:
                    row += scratch_row
                for field, g, _ in grads_p:
                    totals[field] += g
                for g_row, weights, row, is_first in products:
                    if is_first:
                        torch.mm(g_row, weights, out=row)
                    else:
                        row.addmm_(g_row, weights)
        new = steps % 2  # after the last step (t = 0) the gradients swap once more
        g_new = g_state[new]
        g_x = None
        if needs[4]:
            g_x = g_inputs.view(x.shape) if reads_input else None
            for k, product in enumerate(plan.products):
                if product.operand.kind == "input":
                    g = g_products[k].reshape(-1, shape[-1]) @ matrices[product.matrix]
                    g = g.view(x.shape)
                    g_x = g if g_x is None else g_x + g
        g_matrices: List[Optional[Tensor]] = [None] * n_matrices
        for k, product in enumerate(plan.products):
            m = product.matrix
            if not needs_matrices[m]:
                continue
            source = product.operand
            if source.kind == "input":
                u = x.reshape(-1, x.shape[-1])
            elif source.kind == "state":
                u = history[fields[source.key]][:steps].reshape(-1, shape[-1])
            else:
                u = values[source.key].reshape(-1, shape[-1])
            g_rows = g_products[k].reshape(-1, shape[-1])
            g = ctx.spikes.weight_gradient(k, g_rows, u)
            if g is None:
                g = g_rows.t() @ u
            g_matrices[m] = g if g_matrices[m] is None else g_matrices[m] + g
        per_lane = [totals[f] for f in program.differentiable] if param_grads else None
        g_params = runtime.parameter_gradients(program, params, per_lane, needs_params)
        g_states = [g[0] if needed else None for g, needed in zip(g_new, needs_states)]
        return (None, None, None, None, g_x, *g_matrices, *g_states, *g_params)


def run(
    program: "runtime.SteppedProgram",
    x: Tensor,
    state: Any,
    p: Any,
    record_states: bool,
    matrices: Sequence[Tensor],
    shape: Tuple[int, ...],
) -> Tuple[Tensor, Any]:
    """Runs ``program`` over the sequence ``x`` (``(T, *shape)``, or ``(T, batch,
    features)`` for a recurrent step) with the neuron shape ``shape`` (a half-precision
    ``x``: ``program`` is the float32 one, see :func:`prepare`)."""
    if x.dtype not in HALF_PRECISION:
        return _scan(program, x, state, p, record_states, matrices, shape)
    out, final = _scan(
        program,
        x.float(),
        upcast(state),
        upcast(p),
        record_states,
        [m.float() for m in matrices],
        shape,
    )
    dtypes = dict((field, value.dtype) for field, value in flatten(state))
    rounded = {f: v.to(dtypes[f]) for f, v in flatten(final)}
    return out.to(x.dtype), rebuild(structure(final), rounded)


def _scan(program, x, state, p, record_states, matrices, shape):
    states, params = _program_inputs(program, p, state, shape, x.device)
    outputs = _SteppedScan.apply(
        program.key,
        shape,
        (len(matrices), len(states)),
        record_states,
        x.contiguous(),
        *matrices,
        *states,
        *params,
    )
    return results(program, outputs, state, x.shape[0], shape, record_states)


def prepare(
    step: Callable,
    x: Tensor,
    state: Any,
    p: Any,
    dt: float,
    size: int,
    recurrent: Any = False,
) -> Tuple[Optional["runtime.SteppedProgram"], List[Tensor], Optional[str]]:
    """``(program, matrices, None)``: the stepped program of ``step`` for ``x`` (the
    float32 one for half-precision ``x``) and the matrices it multiplies now, or
    ``(None, [], reason)``; ``size`` is the neurons' last dimension, ``recurrent`` as for
    :func:`.runtime.program_for`."""
    reason = backend_problem(x)
    if reason is not None:
        return None, [], reason
    if x.dtype in HALF_PRECISION:
        traced = (torch.float32, upcast(state), upcast(p))
    else:
        traced = (x.dtype, state, p)
    program = runtime.program_for(step, *traced, dt, recurrent=recurrent)
    if program is None:
        return None, [], runtime.why_not(step, *traced, dt, recurrent)
    if not isinstance(program, runtime.SteppedProgram):
        return None, [], "the step has no matrix products"
    # the tensors the reference multiplies, of x's dtype as it needs them
    found = runtime.matrices(program, step, x.dtype, state, p, dt)
    reason = matrices_problem(program, found, x.dtype, x.device, size)
    if reason is not None:
        return None, [], reason
    return program, found, None


def matrices_problem(
    program: "runtime.SteppedProgram",
    found: List[Tensor],
    dtype: torch.dtype,
    device: torch.device,
    size: int,
) -> Optional[str]:
    """Why the matrices ``found`` for ``program`` (see :func:`.runtime.matrices`) do
    not serve (``None`` if they do)."""
    if len(found) != program.found_matrices:
        return "the step multiplies other matrices than when it was traced"
    for k, matrix in enumerate(found):
        if (
            matrix.layout != torch.strided
            or tuple(matrix.shape) != (size, size)
            or matrix.dtype != dtype
            or matrix.device != device
        ):
            return (
                f"a product's matrix is {tuple(matrix.shape)} {matrix.dtype} on "
                f"{matrix.device}, not a dense ({size}, {size}) {dtype} tensor on "
                f"{device}"
            )
    return None


def backend_problem(x: Tensor) -> Optional[str]:
    """Why the driver cannot run on ``x`` (``None`` if it can): it needs the kernels
    of its device (Numba on the CPU, Triton on CUDA) and float32 or float64, or on CUDA
    a half-precision type (computed in float32)."""
    backend = runtime.BACKENDS.get(x.device.type)
    if backend is None or not registry.backend_available(backend):
        return f"no kernels for steps with matrix products on {x.device.type}"
    dtypes = (torch.float32, torch.float64) + (
        HALF_PRECISION if backend == "cuda" else ()
    )
    if x.dtype not in dtypes:
        return f"a step with matrix products on {x.dtype} input on {x.device.type}"
    return None


def _weights_fit(weights: Sequence[Tensor], kinds: Sequence[str], x: Tensor) -> bool:
    """Whether ``weights`` are dense matrices of ``x``'s dtype and device, ``(hidden,
    features)`` (``"input"`` kind) or ``(hidden, hidden)`` (``"recurrent"``)."""
    if len(weights) != len(kinds) or not weights:
        return False
    hidden = weights[0].shape[0] if weights[0].dim() == 2 else -1
    columns = {"input": x.shape[-1], "recurrent": hidden}
    return all(
        isinstance(w, Tensor)
        and w.layout == torch.strided
        and w.dtype == x.dtype
        and w.device == x.device
        and tuple(w.shape) == (hidden, columns[kind])
        for w, kind in zip(weights, kinds)
    )


def kernel_for(
    step: Callable,
    p: Any,
    input_tensor: Tensor,
    state: Any,
    record_states: bool,
    weights: Sequence[Tensor],
    dt: float,
    kinds: Sequence[str] = RECURRENT,
) -> Optional[Callable]:
    """A kernel ``(input, state, p, dt, record_states, *weights) -> (spikes, state)``
    for the recurrent ``step`` (``step(input, state, *weights, p, dt)``, the weights of
    ``kinds``: by default ``input_weights, recurrent_weights``, see
    :data:`.trace.RECURRENT`) on the CPU or CUDA, or ``None`` (the reference loop
    runs)."""
    x = input_tensor
    if (
        torch.compiler.is_compiling()
        or not registry.plain_eager()
        or x.is_sparse
        or x.dim() != 3
        or not _weights_fit(weights, kinds, x)
        or not all(isinstance(v, Tensor) for _, v in flatten(state))
    ):
        return None
    hidden = weights[0].shape[0]
    shape = (x.shape[1], hidden)
    for _, value in flatten(state):
        if tuple(value.shape) != shape or value.dtype != x.dtype:
            return None
    program, found, _ = prepare(step, x, state, p, dt, hidden, tuple(kinds))
    if program is None:
        return None

    def kernel(x, given_state, p, dt, record_states, *weights):
        return run(program, x, given_state, p, record_states, [*weights, *found], shape)

    return kernel
