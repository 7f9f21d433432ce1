r"""CPU kernels (Numba) of the time-fused neuron scan used by :mod:`.autograd`.

One kernel design serves every feed-forward model of the LIF family; ``flags`` (see
:mod:`.spec`) selects the terms of the Euler step of one neuron

.. math::
    \begin{align*}
        j &= i + x_t \quad (\text{SYN; else } j = x_t) \\
        d &= (v_l - v) + j \quad (\text{BOX: } d = (x_t + v_l) - v) \\
        v_d &= v + a_m d \quad (\text{LEAK; else } v_d = v + j) \\
        i' &= j - a_s j \quad (\text{SYN}) \\
        z &= \Theta(v_d - v_{th}) \quad (\text{SPIKE}) \\
        v' &= z\,?\,(\text{SUBTRACT}\,?\,v_d - v_{th} : v_r) : v_d
    \end{align*}

with :math:`a_m = dt\,\tau_{mem}^{-1}` and :math:`a_s = dt\,\tau_{syn}^{-1}`, in the order of
operations of the reference step functions, so results agree with them bit for bit. The
output is ``z`` for spiking models and ``v'`` otherwise.

Layout: input ``(T, M)`` with ``M`` neurons (batch included), C-contiguous. Neurons are
processed in chunks of contiguous lanes (:data:`FORWARD_CHUNK` forward, :data:`CHUNK`
backward); each chunk loops over time with its state in a small lane buffer, so every
step reads and writes one contiguous run per chunk and the lane loop vectorises. The
rows a chunk reads next are prefetched :data:`AHEAD` steps early. Without state
records the forward pass advances each lane :data:`TIME_TILE` steps per pass, its state
in registers in between; with parameters shared by all neurons (held in registers)
its chunks are :data:`TILED_FORWARD_CHUNK` lanes long and the lane buffer holds only
the state. Disjoint neuron ranges run on several threads (the kernels release the
GIL).

The backward pass stores nothing between forward and backward. Per chunk it replays the
forward pass into a chunk-local ``(T, rows, CHUNK)`` record of what the adjoint needs
(see :func:`_record_rows`: for LIF without parameter gradients the distance to the
threshold and the pre-reset voltage; a model without spikes and without parameter
gradients needs none and skips the replay), turns the distances into surrogate
derivatives, then runs the adjoint recursion (backpropagation through time) backwards;
the input is read once, the gradient of the outputs once. The lane buffer and the
record share one allocation, which keeps LLVM's run-time alias checks few enough for
the lane loops to vectorise. Extra memory: ``O(T * CHUNK)`` per thread.

Kernels are specialised when first used: one forward kernel per model (``flags``) and
one backward kernel per model and *whether parameter gradients are wanted* (most
training keeps the neuron parameters fixed; their seven per-neuron accumulations are
then left out), each per dtype. They are closures over these constants (Numba caches a
closure per value of its constants), and the per-lane helpers they call are compiled
for the literal ``flags``, so the lane loops are straight-line code that LLVM inlines
and vectorises (AVX2/AVX-512). Parameters shared by all neurons (the usual case) are
held in registers rather than read per lane. The surrogate ``method`` stays a run-time
argument, chosen per row outside the lane loops (:func:`_surrogate_rows`, compiled once
per dtype), so one backward kernel serves every surrogate. The forward kernel is compiled
with LLVM's vectoriser interleaving :data:`FORWARD_INTERLEAVE` vector iterations (see
:mod:`._llvm_options`). Forward results are bit for bit those of the reference (no
fast-math). Numba is imported only when this module is, on the first fused CPU call;
compiled kernels are cached on disk (``cache=True``).

The forward pass takes about the time of copying the bytes it reads and writes; the
backward pass a few times that (``benchmarks/RESULTS.md`` has the measurements).
:func:`_run` also splits the rows of the kernels of :mod:`.cpu_linear` and
:mod:`.cpu_pool`.
"""

import functools
import os
from typing import Callable, List, Tuple

import numpy as np
import torch
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from norse.torch.fused._llvm_options import compile_interleaved
from norse.torch.fused.spec import (
    ADAPT,
    BOX,
    LEAK,
    SPIKE,
    SUBTRACT,
    SURROGATE_CODES,
    SYN,
)


def _prefetch_intrinsic(write):
    """An intrinsic ``(array, index)`` that hints the CPU to load the cache line of
    ``array[index]`` (for writing with ``write``); nothing else happens."""

    @intrinsic
    def prefetch(typingctx, array, index):
        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            ptr = cgutils.get_item_pointer(
                context, builder, signature.args[0], ary, [args[1]], wraparound=False
            )
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
            fn = cgutils.get_or_insert_function(
                builder.module, fnty, "llvm.prefetch.p0"
            )
            builder.call(fn, [ptr, i32(int(write)), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(array, index), codegen

    return prefetch


_prefetch_read = _prefetch_intrinsic(False)
_prefetch_write = _prefetch_intrinsic(True)


@njit(inline="always", cache=True, error_model="numpy")
def _prefetch_row(array, t, lo, n, write):
    """Prefetches ``array[t, lo:lo + n]`` (one hint per 64-byte line), if ``t`` is a row."""
    if 0 <= t < array.shape[0]:
        row = array[t, lo : lo + n]
        if write:
            for k in range(0, n, 64 // row.itemsize):
                _prefetch_write(row, k)
        else:
            for k in range(0, n, 64 // row.itemsize):
                _prefetch_read(row, k)


#: Time steps ahead that the kernels prefetch the rows they will read (or write).
AHEAD = 2

#: Neurons per chunk of the backward pass (contiguous lanes of the vectorised inner
#: loops); its per-step record, ``(T, 3, CHUNK)`` for LIF, should stay in the L2 cache.
CHUNK = 512
#: Neurons per chunk of the forward pass, which keeps no record: longer runs per row
#: suit the hardware prefetchers.
FORWARD_CHUNK = 4096
#: Neurons per chunk of the forward pass without state records when the parameters are
#: shared: the state rows (128 KiB each in float32) stay in the L2 cache, and eight
#: 128-KiB streams (four input rows, four output rows) suit the prefetchers better than
#: 16 KiB ones.
TILED_FORWARD_CHUNK = 32768
#: Fewest neuron-steps (``T * neurons``) worth handing to another thread.
MIN_WORK_PER_THREAD = 1 << 19
#: Set in this backend: ``scan_backward`` takes a ``g_p`` with no rows to mean that no
#: parameter gradient is wanted (see :mod:`.autograd`).
OPTIONAL_PARAMETER_GRADIENTS = True

_SUPER = SURROGATE_CODES["super"]
_TRIANGLE = SURROGATE_CODES["triangle"]
_TANH = SURROGATE_CODES["tanh"]
_CIRC = SURROGATE_CODES["circ"]
_ERFC = SURROGATE_CODES["heavi_erfc"]


@njit(inline="always", cache=True, error_model="numpy")
def _surrogate_row(method, s, out, n, consts):
    """``out[:n]``: the surrogate derivative of the threshold at ``s[:n] = v_d - v_th``,
    the formulas of :data:`norse.torch.functional.threshold.SURROGATE_GRADIENTS` (zero
    for Heaviside).

    ``method`` is chosen once per row, outside the lane loops, so that each loop
    vectorises (``circ``'s power ``-3/2`` is taken with a square root, which vectorises
    where ``**`` would call ``pow`` per lane). ``consts`` holds ``alpha, 1, 2, -1.5,
    sqrt(pi)`` in the compute dtype (Numba would promote float32 arithmetic with Python
    float literals to float64).
    """
    alpha, one, two, sqrt_pi = consts[0], consts[1], consts[2], consts[4]
    if method == _SUPER:
        for k in range(n):
            q = alpha * abs(s[k]) + one
            out[k] = one / (q * q)
    elif method == _TRIANGLE:
        for k in range(n):
            r = one - abs(s[k])
            out[k] = alpha * r if r > 0 else r - r
    elif method == _TANH:
        for k in range(n):
            t = np.tanh(alpha * s[k])
            out[k] = one - t * t
    elif method == _CIRC:
        for k in range(n):
            r = s[k] / alpha
            q = one + r * r
            out[k] = one / (q * np.sqrt(q))
    elif method == _ERFC:
        for k in range(n):
            r = alpha * s[k]
            out[k] = two * np.exp(-(r * r)) / sqrt_pi
    else:
        out[:n] = one - one


@njit(inline="always", cache=True, error_model="numpy")
def _membrane(v, j, am, vl, flags):
    """The membrane update before the reset: ``(v_d, d)`` from the voltage ``v`` and the
    current ``j`` that drives it (for models without SYN or ADAPT, ``j`` is the input)."""
    d = (j + vl) - v if (flags & BOX) != 0 else (vl - v) + j
    vd = v + am * d if (flags & LEAK) != 0 else v + j
    return vd, d


@njit(inline="always", cache=True, error_model="numpy")
def _threshold(vd, b, th, aa, flags):
    """``(s, b_d)``: the distance to the threshold and the decayed adaptive threshold
    ``b_d = b + a_a (v_th - b)`` (ADAPT; else the threshold is ``v_th``)."""
    bd = b + aa * (th - b)
    return (vd - bd if (flags & ADAPT) != 0 else vd - th), bd


# Rows of the per-thread lane buffer ``(LANE_ROWS, lanes)``: state, parameters (in the
# order of ``params``), adjoints and parameter gradients (in the order of ``params``).
# One buffer (rather than one array per quantity) lets LLVM see a single object at
# constant offsets, which keeps the number of run-time alias checks low enough for the
# lane loops to vectorise. The state comes first: a forward pass with parameters shared
# by all neurons needs only those rows.
_V, _I, _B = range(3)
_AM, _AS, _VL, _TH, _VR, _AA, _BETA = range(3, 10)
_LV, _LI, _LB = range(10, 13)
_G_AM, _G_AS, _G_VL, _G_TH, _G_VR, _G_AA, _G_BETA = range(13, 20)
LANE_ROWS = 20
#: Rows of the forward pass's lane buffer: the state, then the per-neuron parameters.
STATE_ROWS = 3
FORWARD_LANE_ROWS = 10
#: Parameters per model: a_mem, a_syn, v_leak, v_th, v_reset, a_adapt, beta.
PARAMETERS = 7


@njit(cache=True, error_model="numpy")
def _lane_params(lanes, k):
    """The parameters of lane ``k`` (rows ``_AM`` to ``_BETA``)."""
    return (
        lanes[_AM, k],
        lanes[_AS, k],
        lanes[_VL, k],
        lanes[_TH, k],
        lanes[_VR, k],
        lanes[_AA, k],
        lanes[_BETA, k],
    )


@njit(cache=True, error_model="numpy")
def _shared_params(params):
    """``(shared, values)``: whether every parameter is one value for all neurons, and
    those values (the first element of each otherwise)."""
    shared = True
    for row in range(PARAMETERS):
        shared = shared and params[row].shape[0] == 1
    values = (
        params[0][0],
        params[1][0],
        params[2][0],
        params[3][0],
        params[4][0],
        params[5][0],
        params[6][0],
    )
    return shared, values


@njit(cache=True, error_model="numpy")
def _step(xt, v, i, b, p, flags, one):
    """One Euler step of one neuron: ``(output, v', i', b', j)``, with ``j`` the current
    that drives the membrane and ``p`` the parameters (:func:`_lane_params`)."""
    am, a_s, vl, th, vr, aa, beta = p
    syn = (flags & SYN) != 0
    adapt = (flags & ADAPT) != 0
    spike = (flags & SPIKE) != 0
    # LSNN (ADAPT): the input reaches the current after the decay, the voltage a step later.
    j = i if adapt else (i + xt if syn else xt)
    vd, _ = _membrane(v, j, am, vl, flags)
    i_decayed = j - a_s * j
    i_new = (i_decayed + xt if adapt else i_decayed) if (syn | adapt) else i
    s, bd = _threshold(vd, b, th, aa, flags)
    fired = (s > 0) & spike
    v_new = (s if (flags & SUBTRACT) != 0 else vr) if fired else vd
    b_new = ((bd + beta) if fired else bd) if adapt else b
    output = (one if fired else one - one) if spike else vd
    return output, v_new, i_new, b_new, j


@njit(cache=True, error_model="numpy")
def _fill_lanes(lanes, lo, n, states, params, shared):
    """Loads the initial state (empty arrays: zero) of neurons ``lo:lo + n`` and,
    unless they are ``shared`` (held in registers instead), their parameters; a length-1
    parameter is broadcast."""
    for row in range(0 if shared else PARAMETERS):
        values = params[row]
        if values.shape[0] == 1:
            lanes[_AM + row, :n] = values[0]
        else:
            lanes[_AM + row, :n] = values[lo : lo + n]
    for index in range(3):
        if states[index].shape[0] > 0:
            lanes[_V + index, :n] = states[index][lo : lo + n]
        else:
            lanes[_V + index, :n] = 0


@njit(cache=True, error_model="numpy")
def _advance(xt, lanes, k, p, flags, one):
    """Advances the state of lane ``k`` (rows ``_V``, ``_I``, ``_B``) by one step with
    the input ``xt`` and parameters ``p``; returns ``(output, j)`` (see :func:`_step`)."""
    output, v_new, i_new, b_new, j = _step(
        xt, lanes[_V, k], lanes[_I, k], lanes[_B, k], p, flags, one
    )
    lanes[_V, k] = v_new
    if (flags & (SYN | ADAPT)) != 0:
        lanes[_I, k] = i_new
    if (flags & ADAPT) != 0:
        lanes[_B, k] = b_new
    return output, j


@njit(cache=True, error_model="numpy")
def _copy_row(dst, src, n):
    """``dst[:n] = src[:n]`` (a plain loop vectorises; slice assignment did not)."""
    for k in range(n):
        dst[k] = src[k]


@njit(cache=True, error_model="numpy")
def _add_row(dst, src, n):
    """``dst[:n] += src[:n]``, as :func:`_copy_row`."""
    for k in range(n):
        dst[k] += src[k]


@njit(cache=True, error_model="numpy")
def _store_states(state_out, t, lanes, lo, n):
    """Row ``t`` of the state outputs (empty arrays: not stored) from the lanes."""
    for index in range(3):
        if state_out[index].shape[1] > 0:
            _copy_row(state_out[index][t, lo : lo + n], lanes[_V + index], n)


#: Steps per pass of the forward kernel over a chunk's lanes when no state is recorded
#: (:func:`_forward_tile`): the state stays in registers between the steps of a pass;
#: with more steps the rows a pass reads no longer stream.
TIME_TILE = 4


@njit(cache=True, error_model="numpy")
def _forward_tile(x, out, t, lo, n, lanes, shared, p, flags, one):
    """Steps ``t`` to ``t + 3`` (:data:`TIME_TILE`) of lanes ``0:n`` (neurons
    ``lo:lo + n``), the state kept in registers between the steps."""
    x0 = x[t, lo : lo + n]
    x1 = x[t + 1, lo : lo + n]
    x2 = x[t + 2, lo : lo + n]
    x3 = x[t + 3, lo : lo + n]
    o0 = out[t, lo : lo + n]
    o1 = out[t + 1, lo : lo + n]
    o2 = out[t + 2, lo : lo + n]
    o3 = out[t + 3, lo : lo + n]
    for k in range(n):
        p_k = p if shared else _lane_params(lanes, k)
        v, i, b = lanes[_V, k], lanes[_I, k], lanes[_B, k]
        o0[k], v, i, b, _ = _step(x0[k], v, i, b, p_k, flags, one)
        o1[k], v, i, b, _ = _step(x1[k], v, i, b, p_k, flags, one)
        o2[k], v, i, b, _ = _step(x2[k], v, i, b, p_k, flags, one)
        o3[k], v, i, b, _ = _step(x3[k], v, i, b, p_k, flags, one)
        lanes[_V, k] = v
        if (flags & (SYN | ADAPT)) != 0:
            lanes[_I, k] = i
        if (flags & ADAPT) != 0:
            lanes[_B, k] = b


@njit(cache=True, error_model="numpy")
def _forward_lane(x_row, out_row, lanes, k, p, flags, one):
    """Lane ``k`` of one forward step: advances the state, writes the output."""
    out_row[k], _ = _advance(x_row[k], lanes, k, p, flags, one)


# The per-step record of the backward pass, ``history[t]``, keeps only what the adjoint
# needs: for spiking models the surrogate derivative of the threshold (the distance to
# it until :func:`_surrogate_rows` replaces it; always row 0); for ADAPT the adaptive
# threshold before the step; with parameter gradients the voltage before the step and
# the current that drives it, else (spiking models) the pre-reset voltage ``v_d``. A
# model without spikes and without parameter gradients needs no record (its adjoint
# does not depend on the forward pass): the replay is skipped.
_H_SG = 0


@njit(inline="always", cache=True, error_model="numpy")
def _record_rows(flags, grads):
    """``(rows, vd, b, v, j)``: the number of rows of ``history[t]`` and the row of each
    recorded quantity (see above; 0 for one the model does not record)."""
    spike = 1 if (flags & SPIKE) != 0 else 0
    adapt = 1 if (flags & ADAPT) != 0 else 0
    vd = 1 if (spike and not grads) else 0
    return (
        spike + vd + adapt + (2 if grads else 0),
        vd,
        spike + vd if adapt else 0,
        spike + adapt if grads else 0,
        spike + adapt + 1 if grads else 0,
    )


@njit(inline="always", cache=True, error_model="numpy")
def _history_rows(history, t, n, flags, grads):
    """Views ``(s_or_sg, vd, b, v, j)`` of the rows of ``history[t]`` (see
    :func:`_record_rows`). Row views made outside the lane loops keep them
    vectorisable."""
    _, vd, b, v, j = _record_rows(flags, grads)
    return (
        history[t, _H_SG, :n],
        history[t, vd, :n],
        history[t, b, :n],
        history[t, v, :n],
        history[t, j, :n],
    )


@njit(cache=True, error_model="numpy")
def _replay_lane(x_row, h, lanes, k, p, flags, grads, one):
    """Lane ``k`` of one replayed step: advances the state and records what the adjoint
    needs in the rows ``h`` of ``history[t]`` (:func:`_history_rows`)."""
    am, _, vl, th, _, aa, _ = p
    h_s, h_vd, h_b, h_v, h_j = h
    v = lanes[_V, k]
    b = lanes[_B, k]
    _, j = _advance(x_row[k], lanes, k, p, flags, one)
    if grads:
        h_v[k] = v
        h_j[k] = j
    if (flags & ADAPT) != 0:
        h_b[k] = b
    if (flags & SPIKE) != 0:
        vd, _ = _membrane(v, j, am, vl, flags)
        if not grads:
            h_vd[k] = vd
        h_s[k], _ = _threshold(vd, b, th, aa, flags)


@njit(cache=True, error_model="numpy")
def _surrogate_rows(method, history, steps, n, consts):
    """Replaces the distances to the threshold in ``history[:steps, _H_SG, :n]`` by their
    surrogate derivatives (one call per chunk: its loops are compiled once per dtype,
    not in every model's kernel)."""
    for t in range(steps):
        row = history[t, _H_SG]
        _surrogate_row(method, row, row, n, consts)


@njit(cache=True, error_model="numpy")
def _adjoint_lane(lanes, k, p, h, go, gx_row, flags, grads):
    """One step of the adjoint recursion for lane ``k``: takes the adjoints ``_LV``,
    ``_LI``, ``_LB`` (of v, i, b after the step) to before it, writes ``gx_row[k]``
    and, with ``grads``, accumulates the parameter gradients (rows ``_G_*``). The step
    is replayed from its record, the rows ``h`` of ``history[t]``."""
    am, a_s, vl, th, vr, aa, beta = p
    h_sg, h_vd, h_b, h_v, h_j = h
    syn = (flags & SYN) != 0
    leak = (flags & LEAK) != 0
    spike = (flags & SPIKE) != 0
    subtract = (flags & SUBTRACT) != 0
    adapt = (flags & ADAPT) != 0
    zero = go - go
    sg = h_sg[k] if spike else zero
    b = h_b[k] if adapt else zero
    # With parameter gradients, the membrane update is replayed (they need its leak
    # term d and the current j); else v_d is recorded (spiking models) or not needed.
    j = h_j[k] if grads else zero
    if grads:
        vd, d = _membrane(h_v[k], j, am, vl, flags)
    else:
        vd, d = (h_vd[k] if spike else zero), zero
    s, _ = _threshold(vd, b, th, aa, flags)
    lv = lanes[_LV, k]
    li = lanes[_LI, k]
    lb = lanes[_LB, k] if adapt else zero
    fired = (s > 0) & spike
    # Reset v' = z ? reset : v_d: d v'/d z = reset - v_d (v_d - v_th for SUBTRACT), and
    # the jump b' = b_d + beta z (ADAPT). The output is z (surrogate sg) for spiking
    # models, v' itself otherwise.
    slope = -th if subtract else vr - vd
    g_z = go + lv * slope
    if adapt:
        g_z = g_z + lb * beta
    g_s = g_z * sg
    keep = lv if (subtract | (not fired)) else zero
    g_vd = keep + g_s + (zero if spike else go)
    # Threshold s = v_d - b_d with b_d = b + a_a (v_th - b) (ADAPT).
    g_bd = lb - g_s
    if adapt:
        lanes[_LB, k] = g_bd - g_bd * aa
    # Membrane update v_d = v + a_m d (LEAK) or v + j.
    g_d = g_vd * am
    g_j = g_d if leak else g_vd
    lanes[_LV, k] = g_vd - g_d if leak else g_vd
    if adapt:
        # The input joins the current after its decay: its gradient is lambda_i.
        gx_row[k] = li
        lanes[_LI, k] = g_j + (li - a_s * li)
    elif syn:
        g_j = g_j + (li - a_s * li)
        lanes[_LI, k] = g_j
        gx_row[k] = g_j
    else:
        # The box models take the input in d, not in a current.
        gx_row[k] = g_j
    if grads:
        if leak:
            lanes[_G_AM, k] += g_vd * d
            lanes[_G_VL, k] += g_d
        if syn | adapt:
            lanes[_G_AS, k] -= li * j
        if adapt:
            lanes[_G_TH, k] += g_bd * aa
            lanes[_G_AA, k] += g_bd * (th - b)
            lanes[_G_BETA, k] += lb if fired else zero
        else:
            lanes[_G_TH, k] -= g_s + (lv if (subtract & fired) else zero)
        lanes[_G_VR, k] += lv if (fired & (not subtract)) else zero


#: Vector iterations that LLVM's loop vectoriser interleaves in the forward kernel's
#: lane loops. Each lane's time steps form one chain of dependent operations; with
#: LLVM's own choice (one) the CPU runs out of scheduler entries before it reaches the
#: next independent lanes (measured in ``benchmarks/RESULTS.md``).
FORWARD_INTERLEAVE = 4


def _compile(function: Callable, interleave: int = 0) -> Callable:
    """``function`` compiled on first use per argument types (cached on disk); with
    ``interleave``, LLVM interleaves that many vector iterations of its loops
    (:mod:`._llvm_options`)."""
    kernel = njit(nogil=True, cache=True, fastmath=False, error_model="numpy")(function)
    return compile_interleaved(kernel, interleave)


@functools.lru_cache(maxsize=None)
def _forward_kernel(flags: int) -> Callable:
    """The forward kernel of one model, ``(x, states, params, out, state_out, start,
    stop)``; compiled per dtype on first use (cached on disk: the index key includes
    the constants of the closure)."""

    def forward_range(x, states, params, out, state_out, start, stop):
        steps = x.shape[0]
        record = state_out[0].shape[0] == steps and steps > 1
        one = np.ones(1, x.dtype)[0]
        shared, p = _shared_params(params)
        # Shared parameters and no records: longer rows per pass, only the state rows.
        tiled = shared and not record
        chunk = TILED_FORWARD_CHUNK if tiled else FORWARD_CHUNK
        chunk = max(1, min(chunk, stop - start))
        lanes = np.empty((STATE_ROWS if shared else FORWARD_LANE_ROWS, chunk), x.dtype)
        for lo in range(start, stop, chunk):
            n = min(chunk, stop - lo)
            _fill_lanes(lanes, lo, n, states, params, shared)
            first = 0
            if not record:
                # Four steps per pass over the lanes: the state stays in registers
                # between them (a quarter of the lane-buffer traffic).
                while first + TIME_TILE <= steps:
                    _forward_tile(x, out, first, lo, n, lanes, shared, p, flags, one)
                    first += TIME_TILE
            for t in range(first, steps):
                # Row slices: non-negative lane indices keep the lane loop vectorisable.
                x_row = x[t, lo : lo + n]
                out_row = out[t, lo : lo + n]
                _prefetch_row(x, t + AHEAD, lo, n, False)
                for k in range(n):
                    # LLVM unswitches the loop on ``shared``: parameters shared by all
                    # neurons stay in registers, others are read per lane.
                    p_k = p if shared else _lane_params(lanes, k)
                    _forward_lane(x_row, out_row, lanes, k, p_k, flags, one)
                if record:
                    _store_states(state_out, t, lanes, lo, n)
            if not record:
                _store_states(state_out, 0, lanes, lo, n)

    return _compile(forward_range, FORWARD_INTERLEAVE)


@functools.lru_cache(maxsize=None)
def _backward_kernel(flags: int, grads: bool) -> Callable:
    """The backward kernel of one model, with or without parameter gradients (see
    :func:`_forward_kernel`)."""

    def backward_range(
        g_out,
        g_states,
        x,
        states,
        params,
        method,
        consts,
        g_x,
        g_states0,
        g_p,
        start,
        stop,
    ):
        steps = x.shape[0]
        spike = (flags & SPIKE) != 0
        record = g_states[0].shape[0] == steps and steps > 1
        one = consts[1]
        zero = one - one
        # The lane buffer and the per-step record of the chunk in one allocation: LLVM
        # then needs no run-time alias checks between them (with two allocations it did
        # not vectorise the loops that read one and write the other).
        rows = _record_rows(flags, grads)[0]
        work = np.empty((LANE_ROWS + steps * max(rows, 1), CHUNK), x.dtype)
        lanes = work[:LANE_ROWS]
        history = work[LANE_ROWS:].reshape((steps, max(rows, 1), CHUNK))
        shared, p = _shared_params(params)
        # A (1, 1) output gradient: one value for all (e.g. from ``out.sum()``).
        broadcast = g_out.shape[0] != steps or g_out.shape[1] != x.shape[1]
        for lo in range(start, stop, CHUNK):
            n = min(CHUNK, stop - lo)
            _fill_lanes(lanes, lo, n, states, params, False)
            for t in range(steps if rows > 0 else 0):
                x_row = x[t, lo : lo + n]
                _prefetch_row(x, t + AHEAD, lo, n, False)
                h = _history_rows(history, t, n, flags, grads)
                for k in range(n):
                    p_k = p if shared else _lane_params(lanes, k)
                    _replay_lane(x_row, h, lanes, k, p_k, flags, grads, one)
            if spike:
                _surrogate_rows(method, history, steps, n, consts)
            # Adjoints of the state after the current step; parameter gradients.
            if grads:
                lanes[_G_AM:, :n] = zero
            for index in range(3):
                if record or g_states[index].shape[1] == 0:
                    lanes[_LV + index, :n] = zero
                else:
                    lanes[_LV + index, :n] = g_states[index][0, lo : lo + n]
            for back in range(steps):
                t = steps - 1 - back
                if record:
                    for index in range(3):
                        if g_states[index].shape[1] > 0:
                            _add_row(
                                lanes[_LV + index], g_states[index][t, lo : lo + n], n
                            )
                gx_row = g_x[t, lo : lo + n]
                _prefetch_row(g_x, t - AHEAD, lo, n, True)
                h = _history_rows(history, t, n, flags, grads)
                if broadcast:
                    # One value: no output-gradient row in the loop (fewer run-time
                    # alias checks; with them LSNN's loop did not vectorise).
                    go = g_out[0, 0]
                    for k in range(n):
                        p_k = p if shared else _lane_params(lanes, k)
                        _adjoint_lane(lanes, k, p_k, h, go, gx_row, flags, grads)
                else:
                    go_row = g_out[t, lo : lo + n]
                    _prefetch_row(g_out, t - AHEAD, lo, n, False)
                    for k in range(n):
                        p_k = p if shared else _lane_params(lanes, k)
                        _adjoint_lane(lanes, k, p_k, h, go_row[k], gx_row, flags, grads)
            for index in range(3):
                if g_states0[index].shape[0] > 0:
                    g_states0[index][lo : lo + n] = lanes[_LV + index, :n]
            if grads:
                g_p[:, lo : lo + n] = lanes[_G_AM:, :n]

    return _compile(backward_range)


_pool = None
_pool_pid = None


def _ranges(
    steps: int, neurons: int, threads: int, align: int = CHUNK
) -> List[Tuple[int, int]]:
    """Splits ``range(neurons)`` into parts (multiples of ``align``, but the last), one
    per worker thread."""
    if neurons == 0:
        return [(0, 0)]
    parts = max(1, min(threads, (steps * neurons) // MIN_WORK_PER_THREAD))
    per = -(-neurons // parts)
    per = -(-per // align) * align
    return [(lo, min(neurons, lo + per)) for lo in range(0, neurons, per)]


def _run(
    kernel: Callable,
    args: tuple,
    steps: int,
    neurons: int,
    threads: int,
    align: int = CHUNK,
) -> None:
    """Runs ``kernel(*args, start, stop)`` over all neurons on up to ``threads`` threads
    (ranges of :func:`_ranges`)."""
    global _pool, _pool_pid
    if threads == 1:
        kernel(*args, 0, neurons)
        return
    ranges = _ranges(steps, neurons, threads, align)
    if len(ranges) == 1:
        kernel(*args, 0, neurons)
        return
    # A forked child (e.g. a data-loader worker) does not inherit the pool's threads.
    if (
        _pool is None
        or _pool._max_workers < len(ranges) - 1
        or _pool_pid != os.getpid()
    ):
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(len(ranges) - 1, thread_name_prefix="norse-fused")
        _pool_pid = os.getpid()
    futures = [_pool.submit(kernel, *args, lo, hi) for lo, hi in ranges[1:]]
    kernel(*args, *ranges[0])
    for future in futures:
        future.result()


def forward_arrays(x, states, params, flags, out, state_out, threads=1) -> None:
    """Runs the model over time (NumPy arrays).

    Parameters:
        x: ``(T, M)`` input
        states: ``(v0, i0, b0)``, each ``(M,)``, or empty for a state the model lacks
        params: ``(a_mem, a_syn, v_leak, v_th, v_reset, a_adapt, beta)``, each of length 1
            (shared) or ``M``, in the dtype of ``x``
        flags (int): the model, :mod:`.spec` flags
        out: ``(T, M)``, written with the spikes (or voltages of non-spiking models)
        state_out: ``(v, i, b)``, each ``(T, M)`` to record every state, ``(1, M)`` for
            the final one, or ``(1, 0)`` for a state the model lacks
        threads (int): worker threads over disjoint neuron ranges
    """
    steps, neurons = x.shape
    args = (x, tuple(states), tuple(params), out, tuple(state_out))
    _run(_forward_kernel(int(flags)), args, steps, neurons, threads)


def backward_arrays(
    g_out,
    g_states,
    x,
    states,
    params,
    alpha,
    method,
    flags,
    g_x,
    g_states0,
    g_p,
    threads=1,
) -> None:
    """Backpropagation through time of :func:`forward_arrays` (NumPy arrays).

    Parameters:
        g_out: ``(T, M)`` gradient of the outputs, or ``(1, 1)`` for one value for all
        g_states: gradients of the state outputs, shaped as ``state_out``
        x, states, params, flags: as in :func:`forward_arrays`
        alpha (float): the surrogate sharpness (already rounded to the dtype of ``x``)
        method (int): surrogate code, :data:`.spec.SURROGATE_CODES`
        g_x: ``(T, M)``; g_states0: ``(M,)`` or empty, as ``states``
        g_p: ``(7, M)`` per-neuron gradients of the parameters (all written), or
            ``(0, M)`` when none is wanted (a faster kernel)
        threads (int): worker threads over disjoint neuron ranges
    """
    steps, neurons = x.shape
    consts = np.array([alpha, 1.0, 2.0, -1.5, 1.7724538509055159], dtype=x.dtype)
    args = (g_out, tuple(g_states), x, tuple(states), tuple(params), int(method))
    args += (consts, g_x, tuple(g_states0), g_p)
    kernel = _backward_kernel(int(flags), g_p.shape[0] > 0)
    _run(kernel, args, steps, neurons, threads)


def _np(tensor, rows: int = 0):
    """A NumPy view of a CPU tensor, made contiguous (``rows > 0``: as ``(-1, rows)``,
    an empty tensor as ``(1, 0)``). Outputs are allocated contiguous, so their views
    write through."""
    tensor = tensor.detach().contiguous()
    if rows:
        tensor = tensor.reshape(-1, rows) if tensor.numel() else tensor.view(1, 0)
    return tensor.numpy()


def _threads() -> int:
    """Worker threads: as many as PyTorch uses (``torch.set_num_threads``)."""
    return max(1, torch.get_num_threads())


def scan_forward(x, states, params, flags, out, state_out) -> None:
    """:func:`forward_arrays` on CPU tensors (the interface of :mod:`.autograd`; the
    state outputs may be ``(M,)`` final states or empty)."""
    neurons = x.shape[1]
    forward_arrays(
        _np(x),
        [_np(t) for t in states],
        [_np(t) for t in params],
        flags,
        _np(out),
        [_np(t, neurons) for t in state_out],
        threads=_threads(),
    )


def scan_backward(
    g_out, g_states, x, states, params, alpha, method, flags, g_x, g_states0, g_p
) -> None:
    """:func:`backward_arrays` on CPU tensors (``alpha``: a 1-element tensor; state
    gradients may be ``(M,)`` or empty; a ``g_out`` that is one broadcast value is not
    copied; ``g_p`` with no rows: no parameter gradients)."""
    neurons = x.shape[1]
    if g_out.numel() > 1 and all(stride == 0 for stride in g_out.stride()):
        g_out = g_out[:1, :1]
    backward_arrays(
        _np(g_out),
        [_np(t, neurons) for t in g_states],
        _np(x),
        [_np(t) for t in states],
        [_np(t) for t in params],
        float(alpha.item()),
        method,
        flags,
        _np(g_x),
        [_np(t) for t in g_states0],
        g_p.detach().numpy().reshape(g_p.shape[0], neurons),
        threads=_threads(),
    )
