r"""CPU kernels (Numba) of one time step of the recurrent LIF and LSNN layers.

:mod:`.recurrent` drives these kernels from a Python loop over time: per step the matrix
products (the input and recurrent currents, or the adjoint of the latter) and one call
of an elementwise kernel here that updates the state of all neurons (batch included) in
place. The equations and the adjoint recursion are derived in :mod:`.recurrent`; the
membrane, threshold and surrogate formulas are those of the feed-forward kernels
(:func:`.cpu._membrane`, :func:`.cpu._threshold`, :func:`.cpu._surrogate_row`), so both
paths agree with the reference step functions bit for bit.

Arrays (all C-contiguous, of one float dtype; ``N`` batch, ``H`` neurons):

* forward: ``xp``, ``rec``: ``(N, H)`` the input current ``x_t W_in^T`` and the
  recurrent current ``z_{t-1} W_rec^T`` of this step; ``state``: ``(3, N, H)`` rows
  ``v, i, b`` (LIF leaves ``b`` alone), updated in place; ``params``: ``(7, N, H)`` rows
  of :data:`.spec.PARAMETER_ROWS` (``a_mem, a_syn, v_leak, v_th, v_reset, a_adapt,
  beta``; ``a_* = dt * tau_*_inv``); ``out``: ``(T, N, H)`` spikes; ``s_rec``:
  ``(T, N, H)`` the distance to the threshold of every step, kept for the backward pass
  (or ``(1, N, H)`` scratch when not needed);
* backward (flat, ``M = N * H``): ``g_out`` ``(T, M)`` output gradients (or ``(1,
  M)``: the same at every step), ``g_z`` ``(M,)`` the adjoint of ``z_t`` through the
  next step's recurrent current, ``s_rec`` ``(T, M)``, ``adj`` ``(3, M)`` rows
  ``lambda_v, lambda_i, lambda_b`` (in place), ``params`` ``(7, M)``, ``dc`` ``(T, M)``
  the gradient of the current that enters each step (written), ``sg`` ``(M,)`` scratch,
  ``consts`` the surrogate constants of :func:`.cpu._surrogate_row`.

Numba is imported with this module (on the first fused recurrent call); compiled
kernels are cached on disk.
"""

import numpy as np
from numba import njit

from norse.torch.fused.cpu import _membrane, _surrogate_row, _threshold
from norse.torch.fused.spec import ADAPT, LEAK

# Rows of ``params`` (the order of :data:`.spec.PARAMETER_ROWS`) and of ``state``.
_AM, _AS, _VL, _TH, _VR, _AA, _BETA = range(7)
_V, _I, _B = range(3)


@njit(nogil=True, cache=True, error_model="numpy")
def lsnn_forward_step(t, xp, rec, state, params, out, s_rec):
    """Step ``t`` of the recurrent LSNN: spikes from the state, then the current jump
    ``i' = ((i - a_s i) + xp) + rec``. Returns the largest number of spikes in a row
    (batch element)."""
    one = np.ones(1, xp.dtype)[0]
    zero = one - one
    v, i, b = state[_V], state[_I], state[_B]
    am, a_s, vl, th = params[_AM], params[_AS], params[_VL], params[_TH]
    vr, aa, beta = params[_VR], params[_AA], params[_BETA]
    out_t, s_t = out[t], s_rec[min(t, s_rec.shape[0] - 1)]
    most = 0
    for n in range(v.shape[0]):
        count = 0
        for k in range(v.shape[1]):
            vd, _ = _membrane(v[n, k], i[n, k], am[n, k], vl[n, k], LEAK)
            s, bd = _threshold(vd, b[n, k], th[n, k], aa[n, k], ADAPT)
            fired = s > 0
            count += fired
            s_t[n, k] = s
            out_t[n, k] = one if fired else zero
            v[n, k] = vr[n, k] if fired else vd
            b[n, k] = bd + beta[n, k] if fired else bd
            i[n, k] = ((i[n, k] - a_s[n, k] * i[n, k]) + xp[n, k]) + rec[n, k]
        most = max(most, count)
    return most


@njit(nogil=True, cache=True, error_model="numpy")
def lsnn_backward_step(t, g_out, g_z, s_rec, adj, params, dc, sg, consts, method):
    """The adjoint of :func:`lsnn_forward_step`: takes ``adj`` from after step ``t`` to
    before it and writes ``dc[t]`` (the gradient of the current that enters at step
    ``t``, which is ``lambda_i`` after the step)."""
    lv, li, lb = adj[_V], adj[_I], adj[_B]
    # v_reset and beta act through the detached spikes only: they carry no gradient.
    am, a_s, aa = params[_AM], params[_AS], params[_AA]
    s_row, dc_row = s_rec[t], dc[t]
    go_row = g_out[min(t, g_out.shape[0] - 1)]
    n = lv.shape[0]
    _surrogate_row(method, s_row, sg, n, consts)
    for k in range(n):
        dc_row[k] = li[k]
        g_s = (go_row[k] + g_z[k]) * sg[k]
        # Reset and threshold jump take the detached spike: v' = v_d or v_reset.
        g_vd = (lv[k] - lv[k] if s_row[k] > 0 else lv[k]) + g_s
        g_bd = lb[k] - g_s
        lv[k] = g_vd - am[k] * g_vd
        li[k] = am[k] * g_vd + (li[k] - a_s[k] * li[k])
        lb[k] = g_bd - aa[k] * g_bd


@njit(nogil=True, cache=True, error_model="numpy")
def lif_forward_step(t, xp, rec, state, params, out, s_rec):
    """Step ``t`` of the recurrent LIF: the current jump ``j = (i + xp) + rec`` first,
    then the membrane, the current decay and the spikes. Returns the largest number of
    spikes in a row (batch element)."""
    one = np.ones(1, xp.dtype)[0]
    zero = one - one
    v, i = state[_V], state[_I]
    am, a_s, vl, th, vr = (
        params[_AM],
        params[_AS],
        params[_VL],
        params[_TH],
        params[_VR],
    )
    out_t, s_t = out[t], s_rec[min(t, s_rec.shape[0] - 1)]
    most = 0
    for n in range(v.shape[0]):
        count = 0
        for k in range(v.shape[1]):
            j = (i[n, k] + xp[n, k]) + rec[n, k]
            vd, _ = _membrane(v[n, k], j, am[n, k], vl[n, k], LEAK)
            s = vd - th[n, k]
            fired = s > 0
            count += fired
            s_t[n, k] = s
            out_t[n, k] = one if fired else zero
            v[n, k] = vr[n, k] if fired else vd
            i[n, k] = j - a_s[n, k] * j
        most = max(most, count)
    return most


@njit(nogil=True, cache=True, error_model="numpy")
def lif_backward_step(t, g_out, g_z, s_rec, adj, params, dc, sg, consts, method):
    """The adjoint of :func:`lif_forward_step`: takes ``adj`` from after step ``t`` to
    before it and writes ``dc[t]`` (the gradient of the jumped current ``j``, which is
    ``lambda_i`` before the step)."""
    lv, li = adj[_V], adj[_I]
    am, a_s = params[_AM], params[_AS]
    s_row, dc_row = s_rec[t], dc[t]
    go_row = g_out[min(t, g_out.shape[0] - 1)]
    n = lv.shape[0]
    _surrogate_row(method, s_row, sg, n, consts)
    for k in range(n):
        g_s = (go_row[k] + g_z[k]) * sg[k]
        g_vd = (lv[k] - lv[k] if s_row[k] > 0 else lv[k]) + g_s
        g_j = am[k] * g_vd + (li[k] - a_s[k] * li[k])
        lv[k] = g_vd - am[k] * g_vd
        li[k] = g_j
        dc_row[k] = g_j


@njit(nogil=True, cache=True, error_model="numpy")
def spike_current(z, w_t, rec):
    """``rec = z @ w_t`` for sparse ``z`` ``(N, H)`` (spikes): the rows of ``w_t``
    ``(H, H')`` (the transposed recurrent weights) of the active neurons, summed in
    index order. (Two-dimensional indexing rather than row views: no reference counting
    in the loops.)"""
    rec[:] = 0
    for n in range(z.shape[0]):
        for j in range(z.shape[1]):
            if z[n, j] != 0:
                weight = z[n, j]
                for k in range(rec.shape[1]):
                    rec[n, k] += weight * w_t[j, k]


@njit(nogil=True, cache=True, error_model="numpy")
def spike_weight_grad(s_prev, dc, g_t, limit):
    """``g_t += z^T @ dc`` with the spikes ``z = s_prev > 0``: for every spike ``(r,
    j)``, row ``r`` of ``dc`` ``(R, H')`` is added to row ``j`` of ``g_t`` ``(H, H')``
    (the transposed recurrent weight gradient). ``s_prev``: ``(R, H)`` distances to the
    threshold. Does nothing and returns False if there are more than ``limit`` spikes
    (a dense product is faster then)."""
    count = 0
    for r in range(s_prev.shape[0]):
        for j in range(s_prev.shape[1]):
            count += s_prev[r, j] > 0
    if count > limit:
        return False
    for r in range(s_prev.shape[0]):
        for j in range(s_prev.shape[1]):
            if s_prev[r, j] > 0:
                for k in range(dc.shape[1]):
                    g_t[j, k] += dc[r, k]
    return True
