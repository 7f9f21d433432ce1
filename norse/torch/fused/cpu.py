r"""CPU kernels (Numba) of the time-fused neuron scan used by :mod:`.autograd`.

One kernel pair serves every feed-forward model of the LIF family; ``flags`` (see
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
processed in chunks of :data:`CHUNK` contiguous lanes; each chunk loops over time with
its state in small lane arrays, so every step reads and writes one contiguous run per
chunk and the lane loop vectorises. Disjoint neuron ranges run on several threads
(the kernels release the GIL).

The backward pass stores nothing between forward and backward. Per chunk it replays the
forward pass into a chunk-local ``(T, 2, CHUNK)`` record (the voltage before each step
and the current after its input jump), then runs the adjoint recursion
(backpropagation through time) backwards, replaying each membrane update from its
record; the input is read twice, the gradient of the outputs once. Extra memory:
``O(T * CHUNK)`` per thread.

``flags`` and the surrogate ``method`` are run-time arguments, so one kernel pair per
dtype serves every model (few, short compilations): the lane code uses selects rather
than branches on ``flags``, and the surrogate is chosen once per time step, outside the
lane loops, so the lane loops still vectorise. Numba is
imported only when this module is, on the first fused CPU call; compiled kernels are
cached on disk (``cache=True``).
"""

import os
from typing import Callable, List, Tuple

import numpy as np
import torch
from numba import njit

from norse.torch.fused.spec import (
    ADAPT,
    BOX,
    LEAK,
    SPIKE,
    SUBTRACT,
    SURROGATE_CODES,
    SYN,
)

#: Neurons per chunk (contiguous lanes of the vectorised inner loop).
CHUNK = 512
#: Fewest neuron-steps (``T * neurons``) worth handing to another thread.
MIN_WORK_PER_THREAD = 1 << 19

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
    vectorises. ``consts`` holds ``alpha, 1, 2, -1.5, sqrt(pi)`` in the compute dtype
    (Numba would promote float32 arithmetic with Python float literals to float64).
    """
    alpha, one, two, power, sqrt_pi = (
        consts[0],
        consts[1],
        consts[2],
        consts[3],
        consts[4],
    )
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
            out[k] = (one + r * r) ** power
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


@njit(inline="always", cache=True, error_model="numpy")
def _step(xt, v, i, b, lanes, k, flags, one):
    """One Euler step of lane ``k``: ``(output, v', i', b', j)``, with ``j`` the current
    that drives the membrane. Parameters come from the lane buffer. Written with selects
    so that the lane loop vectorises."""
    syn = (flags & SYN) != 0
    adapt = (flags & ADAPT) != 0
    spike = (flags & SPIKE) != 0
    # LSNN (ADAPT): the input reaches the current after the decay, the voltage a step later.
    j = i if adapt else (i + xt if syn else xt)
    vd, _ = _membrane(v, j, lanes[_AM, k], lanes[_VL, k], flags)
    i_decayed = j - lanes[_AS, k] * j
    i_new = (i_decayed + xt if adapt else i_decayed) if (syn | adapt) else i
    s, bd = _threshold(vd, b, lanes[_TH, k], lanes[_AA, k], flags)
    fired = (s > 0) & spike
    v_new = (s if (flags & SUBTRACT) != 0 else lanes[_VR, k]) if fired else vd
    b_new = ((bd + lanes[_BETA, k]) if fired else bd) if adapt else b
    output = (one if fired else one - one) if spike else vd
    return output, v_new, i_new, b_new, j


# Rows of the per-thread lane buffer ``(LANE_ROWS, CHUNK)``: parameters (in the order of
# ``params``), state, adjoints, per-step temporaries and parameter gradients (in the
# order of ``params``). One buffer of constant shape (rather than one array per
# quantity) lets LLVM see a single object at constant offsets, which keeps the number of
# runtime alias checks low enough for the lane loops to vectorise.
_AM, _AS, _VL, _TH, _VR, _AA, _BETA = range(7)
_V, _I, _B = range(7, 10)
_LV, _LI, _LB = range(10, 13)
_S, _SG, _VD, _J, _D, _GO, _THB = range(13, 20)
_G_AM, _G_AS, _G_VL, _G_TH, _G_VR, _G_AA, _G_BETA = range(20, 27)
LANE_ROWS = 27
#: Parameters per model: a_mem, a_syn, v_leak, v_th, v_reset, a_adapt, beta.
PARAMETERS = 7


@njit(inline="always", cache=True, error_model="numpy")
def _fill_lanes(lanes, lo, n, states, params):
    """Loads the parameters and the initial state (empty arrays: zero) of neurons
    ``lo:lo + n``; a length-1 parameter is broadcast."""
    for row in range(PARAMETERS):
        values = params[row]
        if values.shape[0] == 1:
            lanes[row, :n] = values[0]
        else:
            lanes[row, :n] = values[lo : lo + n]
    for index in range(3):
        if states[index].shape[0] > 0:
            lanes[_V + index, :n] = states[index][lo : lo + n]
        else:
            lanes[_V + index, :n] = 0


@njit(inline="always", cache=True, error_model="numpy")
def _advance(xt, lanes, k, flags, one):
    """Advances the state of lane ``k`` (rows ``_V``, ``_I``, ``_B``) by one step with
    the input ``xt``; returns ``(output, j)`` (see :func:`_step`)."""
    output, v_new, i_new, b_new, j = _step(
        xt, lanes[_V, k], lanes[_I, k], lanes[_B, k], lanes, k, flags, one
    )
    lanes[_V, k] = v_new
    lanes[_I, k] = i_new
    lanes[_B, k] = b_new
    return output, j


@njit(nogil=True, cache=True, fastmath=False, error_model="numpy")
def _forward_range(x, states, params, flags, out, state_out, start, stop):
    """:func:`forward_arrays` for the neurons ``start:stop``."""
    steps = x.shape[0]
    record = state_out[0].shape[0] == steps and steps > 1
    one = np.ones(1, x.dtype)[0]
    lanes = np.empty((LANE_ROWS, CHUNK), x.dtype)
    for lo in range(start, stop, CHUNK):
        n = min(CHUNK, stop - lo)
        _fill_lanes(lanes, lo, n, states, params)
        for t in range(steps):
            # Row slices: non-negative lane indices keep the lane loop vectorisable.
            x_row = x[t, lo : lo + n]
            out_row = out[t, lo : lo + n]
            for k in range(n):
                out_row[k], _ = _advance(x_row[k], lanes, k, flags, one)
            if record:
                _store_states(state_out, t, lanes, lo, n)
        if not record:
            _store_states(state_out, 0, lanes, lo, n)


@njit(inline="always", cache=True, error_model="numpy")
def _store_states(state_out, t, lanes, lo, n):
    """Row ``t`` of the state outputs (empty arrays: not stored) from the lanes."""
    for index in range(3):
        if state_out[index].shape[1] > 0:
            state_out[index][t, lo : lo + n] = lanes[_V + index, :n]


@njit(nogil=True, cache=True, fastmath=False, error_model="numpy")
def _backward_range(
    g_out,
    g_states,
    x,
    states,
    params,
    flags,
    method,
    consts,
    g_x,
    g_states0,
    g_p,
    start,
    stop,
):
    """:func:`backward_arrays` for the neurons ``start:stop``."""
    steps = x.shape[0]
    adapt = (flags & ADAPT) != 0
    record = g_states[0].shape[0] == steps and steps > 1
    one = consts[1]
    zero = one - one
    lanes = np.empty((LANE_ROWS, CHUNK), x.dtype)
    # Per step of the chunk, replayed: the voltage and adaptive threshold before the step
    # and the current that drives it; all the backward pass needs of the forward one.
    history = np.empty((steps, 3, CHUNK), x.dtype)
    # A (1, 1) gradient of the outputs: one value for all (e.g. from ``out.sum()``).
    broadcast = g_out.shape[0] != steps or g_out.shape[1] != x.shape[1]
    for lo in range(start, stop, CHUNK):
        n = min(CHUNK, stop - lo)
        _fill_lanes(lanes, lo, n, states, params)
        for t in range(steps):
            x_row = x[t, lo : lo + n]
            v_row = history[t, 0, :n]
            j_row = history[t, 1, :n]
            b_row = history[t, 2, :n]
            for k in range(n):
                v_row[k] = lanes[_V, k]
                b_row[k] = lanes[_B, k]
                _, j_row[k] = _advance(x_row[k], lanes, k, flags, one)
        # Adjoints of the state after the current step; parameter gradients.
        lanes[_G_AM:, :n] = zero
        lanes[_SG, :n] = zero
        if broadcast:
            lanes[_GO, :n] = g_out[0, 0]
        for index in range(3):
            if record or g_states[index].shape[1] == 0:
                lanes[_LV + index, :n] = zero
            else:
                lanes[_LV + index, :n] = g_states[index][0, lo : lo + n]
        for t in range(steps - 1, -1, -1):
            if record:
                for index in range(3):
                    if g_states[index].shape[1] > 0:
                        lanes[_LV + index, :n] += g_states[index][t, lo : lo + n]
            go_row = lanes[_GO, :n] if broadcast else g_out[t, lo : lo + n]
            gx_row = g_x[t, lo : lo + n]
            v_row = history[t, 0, :n]
            j_row = history[t, 1, :n]
            b_row = history[t, 2, :n]
            # Replay the membrane update and threshold: pre-reset voltage, leak term.
            for k in range(n):
                vd, d = _membrane(
                    v_row[k], j_row[k], lanes[_AM, k], lanes[_VL, k], flags
                )
                s, _ = _threshold(vd, b_row[k], lanes[_TH, k], lanes[_AA, k], flags)
                lanes[_VD, k] = vd
                lanes[_J, k] = j_row[k]
                lanes[_D, k] = d
                lanes[_S, k] = s
                lanes[_THB, k] = lanes[_TH, k] - b_row[k]
            if (flags & SPIKE) != 0:
                _surrogate_row(method, lanes[_S], lanes[_SG], n, consts)
            # A loop per model family: the one with branches on ADAPT would not vectorise.
            if adapt:
                for k in range(n):
                    _adjoint_adaptive(lanes, k, go_row, gx_row)
            else:
                for k in range(n):
                    _adjoint(lanes, k, go_row, gx_row, flags, zero)
        for index in range(3):
            if g_states0[index].shape[0] > 0:
                g_states0[index][lo : lo + n] = lanes[_LV + index, :n]
        g_p[:, lo : lo + n] = lanes[_G_AM:, :n]


@njit(inline="always", cache=True, error_model="numpy")
def _adjoint(lanes, k, go_row, gx_row, flags, zero):
    """One step of the adjoint recursion for lane ``k`` of a model without ADAPT: takes
    the adjoints ``_LV``, ``_LI`` (of v and i after the step) to before it, accumulates
    the parameter gradients and writes ``gx_row[k]``. Selects rather than branches keep
    the lane loop vectorisable."""
    syn = (flags & SYN) != 0
    leak = (flags & LEAK) != 0
    spike = (flags & SPIKE) != 0
    subtract = (flags & SUBTRACT) != 0
    lv = lanes[_LV, k]
    li = lanes[_LI, k]
    vd = lanes[_VD, k]
    th = lanes[_TH, k]
    fired = (lanes[_S, k] > 0) & spike
    # Reset v' = z ? reset : v_d with d v'/d z = reset - v_d; the output z (surrogate
    # _SG, zero without SPIKE) or, for models without spikes, the output v' itself.
    slope = -th if subtract else lanes[_VR, k] - vd
    g_s = (go_row[k] + lv * slope) * lanes[_SG, k]
    keep = lv if (subtract | (not fired)) else zero
    g_vd = keep + g_s + (zero if spike else go_row[k])
    lanes[_G_TH, k] -= g_s + (lv if (subtract & fired) else zero)
    lanes[_G_VR, k] += lv if (fired & (not subtract)) else zero
    # Membrane update v_d = v + a_m d (LEAK) or v + j.
    g_d = g_vd * lanes[_AM, k]
    lanes[_G_AM, k] += g_vd * lanes[_D, k] if leak else zero
    lanes[_G_VL, k] += g_d if leak else zero
    lanes[_LV, k] = g_vd - g_d if leak else g_vd
    g_j = g_d if leak else g_vd
    # Current jump and decay (the box models take the input in d, not in j).
    g_j = g_j + (li - lanes[_AS, k] * li) if syn else g_j
    lanes[_G_AS, k] -= li * lanes[_J, k] if syn else zero
    lanes[_LI, k] = g_j if syn else zero
    gx_row[k] = g_j


@njit(inline="always", cache=True, error_model="numpy")
def _adjoint_adaptive(lanes, k, go_row, gx_row):
    """:func:`_adjoint` of the LSNN (SYN, LEAK, SPIKE, ADAPT): also takes the adjoint
    ``_LB`` of the adaptive threshold back; the input joins the current after its
    decay."""
    lv = lanes[_LV, k]
    li = lanes[_LI, k]
    lb = lanes[_LB, k]
    vd = lanes[_VD, k]
    fired = lanes[_S, k] > 0
    # The output z drives the reset v' = z ? v_reset : v_d and the jump b' = b_d + beta z.
    g_s = (go_row[k] + lv * (lanes[_VR, k] - vd) + lb * lanes[_BETA, k]) * lanes[_SG, k]
    g_vd = (lv - lv if fired else lv) + g_s
    lanes[_G_VR, k] += lv if fired else lv - lv
    lanes[_G_BETA, k] += lb if fired else lb - lb
    # Threshold s = v_d - b_d with b_d = b + a_a (v_th - b).
    g_bd = lb - g_s
    aa = lanes[_AA, k]
    lanes[_G_TH, k] += g_bd * aa
    lanes[_G_AA, k] += g_bd * lanes[_THB, k]
    lanes[_LB, k] = g_bd - g_bd * aa
    # Membrane update v_d = v + a_m ((v_leak - v) + i), current decay i - a_s i.
    g_d = g_vd * lanes[_AM, k]
    lanes[_G_AM, k] += g_vd * lanes[_D, k]
    lanes[_G_VL, k] += g_d
    lanes[_LV, k] = g_vd - g_d
    lanes[_G_AS, k] -= li * lanes[_J, k]
    lanes[_LI, k] = g_d + (li - lanes[_AS, k] * li)
    gx_row[k] = li


_pool = None
_pool_pid = None


def _ranges(steps: int, neurons: int, threads: int) -> List[Tuple[int, int]]:
    """Splits ``range(neurons)`` into chunk-aligned parts, one per worker thread."""
    parts = max(1, min(threads, (steps * neurons) // MIN_WORK_PER_THREAD))
    per = -(-neurons // parts)
    per = -(-per // CHUNK) * CHUNK
    return [(lo, min(neurons, lo + per)) for lo in range(0, neurons, per)]


def _run(kernel: Callable, args: tuple, steps: int, neurons: int, threads: int) -> None:
    """Runs ``kernel(*args, start, stop)`` over all neurons on up to ``threads`` threads."""
    global _pool, _pool_pid
    ranges = _ranges(steps, neurons, threads)
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
    args = (x, tuple(states), tuple(params), flags, out, tuple(state_out))
    _run(_forward_range, args, steps, neurons, threads)


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
        g_x: ``(T, M)``; g_states0: ``(M,)`` or empty, as ``states``; g_p: ``(7, M)``
            per-neuron gradients of the parameters (all written)
        threads (int): worker threads over disjoint neuron ranges
    """
    steps, neurons = x.shape
    consts = np.array([alpha, 1.0, 2.0, -1.5, 1.7724538509055159], dtype=x.dtype)
    args = (g_out, tuple(g_states), x, tuple(states), tuple(params), flags, method)
    args += (consts, g_x, tuple(g_states0), g_p)
    _run(_backward_range, args, steps, neurons, threads)


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
    copied)."""
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
        _np(g_p),
        threads=_threads(),
    )
