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

from norse.torch.fused.spec import BOX, LEAK, SPIKE, SUBTRACT, SURROGATE_CODES, SYN

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
    current ``j`` after the input jump (for models without SYN, ``j`` is the input)."""
    d = (j + vl) - v if (flags & BOX) != 0 else (vl - v) + j
    vd = v + am * d if (flags & LEAK) != 0 else v + j
    return vd, d


@njit(inline="always", cache=True, error_model="numpy")
def _step(xt, v, i, am, asy, vl, th, vr, flags, one):
    """One Euler step of one neuron: ``(output, v', i', j)``, with ``j`` the current
    after the input jump. Written with selects so that the lane loop vectorises."""
    syn = (flags & SYN) != 0
    spike = (flags & SPIKE) != 0
    j = i + xt if syn else xt
    vd, _ = _membrane(v, j, am, vl, flags)
    i_new = j - asy * j if syn else i
    s = vd - th
    fired = (s > 0) & spike
    v_new = (s if (flags & SUBTRACT) != 0 else vr) if fired else vd
    output = (one if fired else one - one) if spike else vd
    return output, v_new, i_new, j


# Rows of the per-thread lane buffer ``(LANE_ROWS, CHUNK)``. One buffer of constant shape
# (rather than one array per quantity) lets LLVM see a single object at constant offsets,
# which keeps the number of runtime alias checks low enough for the lane loops to
# vectorise.
_AM, _AS, _VL, _TH, _VR, _V, _I, _LV, _LI, _S, _SG, _VD, _J, _D, _GO = range(15)
_G_AM, _G_AS, _G_VL, _G_TH, _G_VR = range(15, 20)
LANE_ROWS = 20


@njit(inline="always", cache=True, error_model="numpy")
def _fill_row(lanes, row, values, lo, n):
    """``lanes[row, :n] = values[lo:lo + n]``; a length-1 ``values`` is broadcast."""
    if values.shape[0] == 1:
        lanes[row, :n] = values[0]
    else:
        lanes[row, :n] = values[lo : lo + n]


@njit(inline="always", cache=True, error_model="numpy")
def _fill_lanes(lanes, lo, n, v0, i0, params, syn):
    """Loads the parameters (rows ``_AM`` to ``_VR``) and the initial state of neurons
    ``lo:lo + n``."""
    for row in range(_VR + 1):
        _fill_row(lanes, row, params[row], lo, n)
    lanes[_V, :n] = v0[lo : lo + n]
    if syn:
        lanes[_I, :n] = i0[lo : lo + n]
    else:
        lanes[_I, :n] = 0


@njit(inline="always", cache=True, error_model="numpy")
def _lane_step(xt, v, i, lanes, k, flags, one):
    """:func:`_step` of lane ``k`` with its parameters from the lane buffer."""
    return _step(
        xt,
        v,
        i,
        lanes[_AM, k],
        lanes[_AS, k],
        lanes[_VL, k],
        lanes[_TH, k],
        lanes[_VR, k],
        flags,
        one,
    )


@njit(nogil=True, cache=True, fastmath=False, error_model="numpy")
def _forward_range(x, v0, i0, params, flags, out, v_out, i_out, start, stop):
    """:func:`scan_forward` for the neurons ``start:stop``."""
    steps = x.shape[0]
    syn = (flags & SYN) != 0
    record = v_out.shape[0] == steps and steps > 1
    one = np.ones(1, x.dtype)[0]
    lanes = np.empty((LANE_ROWS, CHUNK), x.dtype)
    for lo in range(start, stop, CHUNK):
        n = min(CHUNK, stop - lo)
        _fill_lanes(lanes, lo, n, v0, i0, params, syn)
        for t in range(steps):
            # Row slices: non-negative lane indices keep the lane loop vectorisable.
            x_row = x[t, lo : lo + n]
            out_row = out[t, lo : lo + n]
            for k in range(n):
                o, v_new, i_new, _ = _lane_step(
                    x_row[k], lanes[_V, k], lanes[_I, k], lanes, k, flags, one
                )
                out_row[k] = o
                lanes[_V, k] = v_new
                lanes[_I, k] = i_new
            if record:
                v_out[t, lo : lo + n] = lanes[_V, :n]
                if syn:
                    i_out[t, lo : lo + n] = lanes[_I, :n]
        if not record:
            v_out[0, lo : lo + n] = lanes[_V, :n]
            if syn:
                i_out[0, lo : lo + n] = lanes[_I, :n]


@njit(nogil=True, cache=True, fastmath=False, error_model="numpy")
def _backward_range(
    g_out,
    g_v,
    g_i,
    x,
    v0,
    i0,
    params,
    flags,
    method,
    consts,
    g_x,
    g_v0,
    g_i0,
    g_p,
    start,
    stop,
):
    """:func:`scan_backward` for the neurons ``start:stop``."""
    steps = x.shape[0]
    syn = (flags & SYN) != 0
    leak = (flags & LEAK) != 0
    spike = (flags & SPIKE) != 0
    subtract = (flags & SUBTRACT) != 0
    record = g_v.shape[0] == steps and steps > 1
    one = consts[1]
    zero = one - one
    lanes = np.empty((LANE_ROWS, CHUNK), x.dtype)
    # The voltage before every step of the chunk and the current after its input jump,
    # replayed: all the backward pass needs of the forward one.
    history = np.empty((steps, 2, CHUNK), x.dtype)
    # A (1, 1) gradient of the outputs: one value for all (e.g. from ``out.sum()``).
    broadcast = g_out.shape[0] != steps or g_out.shape[1] != x.shape[1]
    for lo in range(start, stop, CHUNK):
        n = min(CHUNK, stop - lo)
        _fill_lanes(lanes, lo, n, v0, i0, params, syn)
        for t in range(steps):
            x_row = x[t, lo : lo + n]
            v_row = history[t, 0, :n]
            j_row = history[t, 1, :n]
            for k in range(n):
                v_row[k] = lanes[_V, k]
                _, v_new, i_new, j = _lane_step(
                    x_row[k], lanes[_V, k], lanes[_I, k], lanes, k, flags, one
                )
                j_row[k] = j
                lanes[_V, k] = v_new
                lanes[_I, k] = i_new
        # Adjoints of v and i after the current step; parameter gradients.
        lanes[_G_AM:, :n] = zero
        lanes[_SG, :n] = zero
        if broadcast:
            lanes[_GO, :n] = g_out[0, 0]
        if record:
            lanes[_LV, :n] = zero
            lanes[_LI, :n] = zero
        else:
            lanes[_LV, :n] = g_v[0, lo : lo + n]
            if syn:
                lanes[_LI, :n] = g_i[0, lo : lo + n]
            else:
                lanes[_LI, :n] = zero
        for t in range(steps - 1, -1, -1):
            if record:
                lanes[_LV, :n] += g_v[t, lo : lo + n]
                if syn:
                    lanes[_LI, :n] += g_i[t, lo : lo + n]
            go_row = lanes[_GO, :n] if broadcast else g_out[t, lo : lo + n]
            gx_row = g_x[t, lo : lo + n]
            v_row = history[t, 0, :n]
            j_row = history[t, 1, :n]
            # Replay the membrane update: pre-reset voltage and leak term.
            for k in range(n):
                vd, d = _membrane(
                    v_row[k], j_row[k], lanes[_AM, k], lanes[_VL, k], flags
                )
                lanes[_VD, k] = vd
                lanes[_J, k] = j_row[k]
                lanes[_D, k] = d
                lanes[_S, k] = vd - lanes[_TH, k]
            if spike:
                _surrogate_row(method, lanes[_S], lanes[_SG], n, consts)
            for k in range(n):
                _adjoint(lanes, k, go_row, gx_row, syn, leak, spike, subtract, zero)
        g_v0[lo : lo + n] = lanes[_LV, :n]
        if syn:
            g_i0[lo : lo + n] = lanes[_LI, :n]
        g_p[:, lo : lo + n] = lanes[_G_AM:, :n]


@njit(inline="always", cache=True, error_model="numpy")
def _adjoint(lanes, k, go_row, gx_row, syn, leak, spike, subtract, zero):
    """One step of the adjoint recursion for lane ``k``: updates the adjoints ``_LV``,
    ``_LI`` (of v and i after the step, to before it), the parameter gradients and
    ``gx_row[k]``. Selects rather than branches keep the lane loop vectorisable."""
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


def forward_arrays(x, v0, i0, params, flags, out, v_out, i_out, threads=1) -> None:
    """Runs the model over time (NumPy arrays).

    Parameters:
        x: ``(T, M)`` input; ``v0``, ``i0``: ``(M,)`` initial state (``i0`` unused without
            SYN)
        params: ``(a_mem, a_syn, v_leak, v_th, v_reset)``, each of length 1 (shared) or
            ``M``, in the dtype of ``x``
        flags (int): the model, :mod:`.spec` flags
        out: ``(T, M)``, written with the spikes (or voltages of non-spiking models)
        v_out, i_out: ``(T, M)`` to record every state, or ``(1, M)`` for the final one
        threads (int): worker threads over disjoint neuron ranges
    """
    steps, neurons = x.shape
    args = (x, v0, i0, tuple(params), flags, out, v_out, i_out)
    _run(_forward_range, args, steps, neurons, threads)


def backward_arrays(grads, x, v0, i0, params, alpha, method, flags, results, threads=1):
    """Backpropagation through time of :func:`forward_arrays` (NumPy arrays).

    Parameters:
        grads: ``(g_out, g_v, g_i)``: the ``(T, M)`` gradient of the outputs (or ``(1, 1)``
            when it is one value for all) and those of the recorded states ``(T, M)`` or
            of the final state ``(1, M)``
        x, v0, i0, params, flags: as in :func:`forward_arrays`
        alpha (float): the surrogate sharpness (already rounded to the dtype of ``x``)
        method (int): surrogate code, :data:`.spec.SURROGATE_CODES`
        results: ``(g_x, g_v0, g_i0, g_p)`` to write: ``(T, M)``, ``(M,)``, ``(M,)`` and the
            ``(5, M)`` per-neuron gradients of the parameters
        threads (int): worker threads over disjoint neuron ranges
    """
    steps, neurons = x.shape
    consts = np.array([alpha, 1.0, 2.0, -1.5, 1.7724538509055159], dtype=x.dtype)
    args = (*grads, x, v0, i0, tuple(params), flags, method, consts, *results)
    _run(_backward_range, args, steps, neurons, threads)


def _np(tensor, rows: int = 0):
    """A NumPy view of a CPU tensor, made contiguous (``rows > 0``: as ``(-1, rows)``).

    Outputs are allocated contiguous, so their views write through.
    """
    tensor = tensor.detach().contiguous()
    if rows:
        tensor = tensor.reshape(-1, rows) if tensor.numel() else tensor.view(1, 0)
    return tensor.numpy()


def _threads() -> int:
    """Worker threads: as many as PyTorch uses (``torch.set_num_threads``)."""
    return max(1, torch.get_num_threads())


def scan_forward(x, v0, i0, params, flags, out, v_out, i_out) -> None:
    """:func:`forward_arrays` on CPU tensors (the interface of :mod:`.autograd`; ``v_out``
    and ``i_out`` may be ``(M,)`` final states)."""
    neurons = x.shape[1]
    forward_arrays(
        *(_np(t) for t in (x, v0, i0)),
        [_np(t) for t in params],
        flags,
        _np(out),
        _np(v_out, neurons),
        _np(i_out, neurons),
        threads=_threads(),
    )


def scan_backward(grads, x, v0, i0, params, alpha, method, flags, results) -> None:
    """:func:`backward_arrays` on CPU tensors (``alpha``: a 1-element tensor; ``g_v``,
    ``g_i`` may be ``(M,)``; a ``g_out`` that is one broadcast value is not copied)."""
    g_out, g_v, g_i = grads
    neurons = x.shape[1]
    if g_out.numel() > 1 and all(stride == 0 for stride in g_out.stride()):
        g_out = g_out[:1, :1]
    backward_arrays(
        (_np(g_out), _np(g_v, neurons), _np(g_i, neurons)),
        *(_np(t) for t in (x, v0, i0)),
        [_np(t) for t in params],
        float(alpha.item()),
        method,
        flags,
        [_np(t) for t in results],
        threads=_threads(),
    )
