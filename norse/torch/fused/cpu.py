r"""Shared pieces of the hand-written Numba kernels: the LIF family's per-lane equations
used by the recurrent LIF/LSNN kernels (:mod:`.cpu_recurrent`), and the split of a
kernel's work over threads used by those of :mod:`.cpu_linear` and :mod:`.cpu_pool`.

The feed-forward neuron models run the kernels generated from their step functions
(:mod:`.generate`) on the CPU; the equations here serve the recurrent kernels only,
selected by the :mod:`.spec` flags:

.. math::
    \begin{align*}
        d &= (v_l - v) + j \quad (\text{BOX: } d = (j + v_l) - v) \\
        v_d &= v + a_m d \quad (\text{LEAK; else } v_d = v + j) \\
        s &= v_d - v_{th} \quad (\text{ADAPT: } s = v_d - b_d,\
            b_d = b + a_a (v_{th} - b))
    \end{align*}

with :math:`a_m = dt\,\tau_{mem}^{-1}`, in the order of operations of the reference
step functions, so results agree with them bit for bit. Importing this module imports
Numba (:data:`.registry._BACKEND_MODULES`: whether the CPU kernels can run at all).
"""

import os
from typing import Callable, List, Tuple

import numpy as np
import torch
from numba import njit

from norse.torch.fused.spec import ADAPT, BOX, LEAK, SURROGATE_CODES

#: Neurons per part of a split (multiples of it go to each thread, but the last).
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


def _threads() -> int:
    """Worker threads: as many as PyTorch uses (``torch.set_num_threads``)."""
    return max(1, torch.get_num_threads())
