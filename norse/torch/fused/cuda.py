r"""CUDA kernels (Triton) of the time-fused neuron scan used by :mod:`.autograd`.

The equations of the LIF family's step functions (:mod:`.spec` for the flags), one
Triton program per block of ``BLOCK`` neurons looping over time on the ``(T, M)``
layout, so every step reads and writes one contiguous run per program. Inputs may be
float32, float16 or bfloat16; the state, parameters and all arithmetic are float32
(``enable_fp_fusion=False``: no fused multiply-adds, so float32 results follow the
reference order of operations exactly), outputs are stored in the input dtype.

The backward kernel first replays the forward pass of its block, keeping only the state
at the start of every :data:`SEGMENT` steps (checkpoints, ``(T / SEGMENT, 3, M)``
float32). Then, one segment at a time from the last, it recomputes the segment's steps
from its checkpoint into a record held in registers, ``(SEGMENT, BLOCK)`` per field (the
voltage before each step and the current driving it, plus the adaptive threshold for
LSNN), and runs the adjoint recursion backwards over them. Where a ``(T, rows, M)``
record in memory made the backward pass move about 22 bytes per neuron-step for
float16 input, it now moves about 10 (the input read twice, the spike and input
gradients, the checkpoints); the price is the masked register writes and reads of the
record, ``O(SEGMENT)`` operations per step, and registers. Not yet timed on a GPU
(``benchmarks/gpu_lif.py``): :data:`SEGMENT` is to be tuned there. Parameters shared
by all neurons are passed as 7 values, not expanded to ``(7, M)``, and without
parameter gradients nothing is written for them. Nothing is kept between forward and
backward but the inputs.

The model flags, the surrogate method and the recording mode are ``tl.constexpr``: each
combination compiles once. This module imports Triton; :mod:`.autograd` imports it only
for CUDA inputs (when Triton is installed, see :mod:`.neurons`). With
``TRITON_INTERPRET=1`` set before Triton is imported, the kernels run on CPU tensors, as
the tests do without a GPU; ``tests/torch/fused/test_cuda_compile.py`` also compiles them
for sm_90 there (registers, no spills).
"""

import torch
import triton
import triton.language as tl

from norse.torch.fused.spec import ADAPT, BOX, LEAK, SPIKE, SUBTRACT, SYN

#: Neurons per Triton program.
BLOCK = 128
#: Warps per program.
NUM_WARPS = 4
#: Steps per segment of the backward pass: the replay keeps the state at the start of
#: every segment (``(T / SEGMENT, 3, M)``), and each program recomputes one segment at a
#: time into a record in registers (see the module doc). A power of 2. Registers per
#: thread of the LIF backward kernel compiled for sm_90 (ptxas, float16 input): 32 with
#: 4 steps, 45 with 8, 88 with 16 (the kernel with a record in memory used 32): 8 keeps
#: most of the occupancy while the checkpoints cost 2 bytes per neuron-step.
SEGMENT = 8
#: The backward kernel leaves out the parameter gradients when none is wanted.
OPTIONAL_PARAMETER_GRADIENTS = True

# The :mod:`.spec` flags as compile-time constants (a kernel may read a global only when
# it is a constexpr): the kernels take a model's flags as one ``FLAGS`` constexpr and
# test its bits, so each combination still compiles once with the other branches gone.
# The constant comes first in ``_SYN & FLAGS``: the interpreter passes ``FLAGS`` as a
# plain int, which has no ``&`` with a constexpr.
_SYN = tl.constexpr(SYN)
_LEAK = tl.constexpr(LEAK)
_SPIKE = tl.constexpr(SPIKE)
_SUBTRACT = tl.constexpr(SUBTRACT)
_BOX = tl.constexpr(BOX)
_ADAPT = tl.constexpr(ADAPT)


@triton.jit
def _start(
    v0_ptr,
    i0_ptr,
    b0_ptr,
    params_ptr,
    neurons,
    FLAGS: tl.constexpr,
    SHARED: tl.constexpr,
    BLOCK_: tl.constexpr,
):
    """Lane offsets and mask of this program, its initial state and parameters
    (``SHARED``: ``params_ptr`` holds one value per parameter, else ``(7, M)``)."""
    offs = tl.program_id(0) * BLOCK_ + tl.arange(0, BLOCK_)
    mask = offs < neurons
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    i = tl.zeros([BLOCK_], dtype=tl.float32)
    if _SYN & FLAGS:
        i = tl.load(i0_ptr + offs, mask=mask, other=0.0)
    b = tl.zeros([BLOCK_], dtype=tl.float32)
    if _ADAPT & FLAGS:
        b = tl.load(b0_ptr + offs, mask=mask, other=0.0)
    if SHARED:
        zero = tl.zeros([BLOCK_], dtype=tl.float32)
        am = zero + tl.load(params_ptr)
        asy = zero + tl.load(params_ptr + 1)
        vl = zero + tl.load(params_ptr + 2)
        th = zero + tl.load(params_ptr + 3)
        vr = zero + tl.load(params_ptr + 4)
        aa = zero + tl.load(params_ptr + 5)
        beta = zero + tl.load(params_ptr + 6)
    else:
        am = tl.load(params_ptr + offs, mask=mask, other=0.0)
        asy = tl.load(params_ptr + neurons + offs, mask=mask, other=0.0)
        vl = tl.load(params_ptr + 2 * neurons + offs, mask=mask, other=0.0)
        th = tl.load(params_ptr + 3 * neurons + offs, mask=mask, other=0.0)
        vr = tl.load(params_ptr + 4 * neurons + offs, mask=mask, other=0.0)
        aa = tl.load(params_ptr + 5 * neurons + offs, mask=mask, other=0.0)
        beta = tl.load(params_ptr + 6 * neurons + offs, mask=mask, other=0.0)
    return offs, mask, v, i, b, am, asy, vl, th, vr, aa, beta


@triton.jit
def _membrane(v, j, b, am, vl, th, aa, FLAGS: tl.constexpr):
    """``(v_d, d, s, b_d)``: the voltage before the reset, the leak term, the distance
    to the threshold and the decayed adaptive threshold."""
    if _BOX & FLAGS:
        d = (j + vl) - v
    else:
        d = (vl - v) + j
    if _LEAK & FLAGS:
        vd = v + am * d
    else:
        vd = v + j
    bd = b
    if _ADAPT & FLAGS:
        bd = b + aa * (th - b)
        s = vd - bd
    else:
        s = vd - th
    return vd, d, s, bd


@triton.jit
def _step(
    xt,
    v,
    i,
    b,
    am,
    asy,
    vl,
    th,
    vr,
    aa,
    beta,
    FLAGS: tl.constexpr,
):
    """One Euler step: ``(output, v', i', b', j)`` with ``j`` the current that drives
    the membrane."""
    j = xt
    if _ADAPT & FLAGS:
        j = i  # LSNN: the input reaches the current after the decay
    elif _SYN & FLAGS:
        j = i + xt
    vd, _, s, bd = _membrane(v, j, b, am, vl, th, aa, FLAGS)
    if _SYN & FLAGS:
        i = j - asy * j
        if _ADAPT & FLAGS:
            i = i + xt
    if _SPIKE & FLAGS:
        fired = s > 0
        if _SUBTRACT & FLAGS:
            v = tl.where(fired, s, vd)
        else:
            v = tl.where(fired, vr, vd)
        if _ADAPT & FLAGS:
            b = tl.where(fired, bd + beta, bd)
        o = fired.to(tl.float32)
    else:
        v = vd
        o = vd
    return o, v, i, b, j


@triton.jit
def _forward_kernel(
    x_ptr,
    v0_ptr,
    i0_ptr,
    b0_ptr,
    params_ptr,
    out_ptr,
    v_out_ptr,
    i_out_ptr,
    b_out_ptr,
    steps,
    neurons,
    FLAGS: tl.constexpr,
    RECORD: tl.constexpr,
    SHARED: tl.constexpr,
    BLOCK_: tl.constexpr,
):
    offs, mask, v, i, b, am, asy, vl, th, vr, aa, beta = _start(
        v0_ptr, i0_ptr, b0_ptr, params_ptr, neurons, FLAGS, SHARED, BLOCK_
    )
    # Element offsets of the current row, 64-bit (T * M may exceed 2**31).
    row = offs.to(tl.int64)
    for _ in range(steps):
        xt = tl.load(x_ptr + row, mask=mask, other=0.0).to(tl.float32)
        o, v, i, b, _ = _step(xt, v, i, b, am, asy, vl, th, vr, aa, beta, FLAGS)
        tl.store(out_ptr + row, o.to(out_ptr.dtype.element_ty), mask=mask)
        if RECORD:
            _store_state(v_out_ptr, i_out_ptr, b_out_ptr, row, v, i, b, mask, FLAGS)
        row += neurons
    if not RECORD:
        _store_state(v_out_ptr, i_out_ptr, b_out_ptr, offs, v, i, b, mask, FLAGS)


@triton.jit
def _store_state(v_ptr, i_ptr, b_ptr, row, v, i, b, mask, FLAGS: tl.constexpr):
    tl.store(v_ptr + row, v, mask=mask)
    if _SYN & FLAGS:
        tl.store(i_ptr + row, i, mask=mask)
    if _ADAPT & FLAGS:
        tl.store(b_ptr + row, b, mask=mask)


@triton.jit
def _surrogate(s, alpha, METHOD: tl.constexpr):
    """The surrogate derivative of the threshold (:mod:`.spec` codes; 0: Heaviside)."""
    if METHOD == 1:  # super
        q = alpha * tl.abs(s) + 1.0
        sg = 1.0 / (q * q)
    elif METHOD == 2:  # triangle
        tri = 1.0 - tl.abs(s)
        sg = tl.where(tri > 0, alpha * tri, 0.0)
    elif METHOD == 3:  # tanh, via exp (overflow gives the limits 1 and -1)
        tanh = 1.0 - 2.0 / (tl.exp(2.0 * alpha * s) + 1.0)
        sg = 1.0 - tanh * tanh
    elif METHOD == 4:  # circ
        ratio = s / alpha
        q = 1.0 + ratio * ratio
        sg = 1.0 / (q * tl.sqrt(q))
    elif METHOD == 5:  # heavi_erfc
        scaled = alpha * s
        sg = 2.0 * tl.exp(-(scaled * scaled)) / 1.7724538509055159
    else:  # heaviside
        sg = s * 0.0
    return sg


@triton.jit
def _backward_kernel(
    g_out_ptr,
    g_v_ptr,
    g_i_ptr,
    g_b_ptr,
    x_ptr,
    v0_ptr,
    i0_ptr,
    b0_ptr,
    params_ptr,
    alpha_ptr,
    checkpoint_ptr,
    g_x_ptr,
    g_v0_ptr,
    g_i0_ptr,
    g_b0_ptr,
    g_p_ptr,
    steps,
    neurons,
    FLAGS: tl.constexpr,
    RECORD: tl.constexpr,
    METHOD: tl.constexpr,
    GO_BROADCAST: tl.constexpr,
    SEGMENT_: tl.constexpr,
    SHARED: tl.constexpr,
    PARAM_GRADS: tl.constexpr,
    BLOCK_: tl.constexpr,
):
    offs, mask, v, i, b, am, asy, vl, th, vr, aa, beta = _start(
        v0_ptr, i0_ptr, b0_ptr, params_ptr, neurons, FLAGS, SHARED, BLOCK_
    )
    alpha = tl.load(alpha_ptr)
    segments = (steps + SEGMENT_ - 1) // SEGMENT_
    # Replay: the state (v, i, b) at the start of every segment into the checkpoints
    # (segments, 3, M). Element offsets (64-bit) of the current row of the (T, M) tensors.
    row = offs.to(tl.int64)
    c_row = offs.to(tl.int64)
    for segment in range(segments):
        _store_state(checkpoint_ptr, checkpoint_ptr + neurons,
                     checkpoint_ptr + 2 * neurons, c_row, v, i, b, mask, FLAGS)  # fmt: skip
        c_row += 3 * neurons
        for _ in range(tl.minimum(SEGMENT_, steps - segment * SEGMENT_)):
            xt = tl.load(x_ptr + row, mask=mask, other=0.0).to(tl.float32)
            _, v, i, b, _ = _step(xt, v, i, b, am, asy, vl, th, vr, aa, beta, FLAGS)
            row += neurons
    # The record of one segment is held in registers, (SEGMENT, BLOCK) per field: v (and
    # b) before each step and the current j driving it, written and read by masking the
    # row of the step (each thread holds the SEGMENT values of its neurons).
    steps_of_segment = tl.arange(0, SEGMENT_)[:, None]
    record_v = tl.zeros([SEGMENT_, BLOCK_], dtype=tl.float32)
    record_j = tl.zeros([SEGMENT_, BLOCK_], dtype=tl.float32)
    record_b = tl.zeros([SEGMENT_, BLOCK_], dtype=tl.float32)
    # Adjoints of v, i, b after the current step, and per-neuron parameter gradients.
    zero = tl.zeros([BLOCK_], dtype=tl.float32)
    lv = zero
    li = zero
    lb = zero
    if not RECORD:
        lv = tl.load(g_v_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        if _SYN & FLAGS:
            li = tl.load(g_i_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        if _ADAPT & FLAGS:
            lb = tl.load(g_b_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    g_am = zero
    g_as = zero
    g_vl = zero
    g_th = zero
    g_vr = zero
    g_aa = zero
    g_beta = zero
    go_all = zero
    if GO_BROADCAST:
        go_all = zero + tl.load(g_out_ptr).to(tl.float32)
    # Backwards in time, a segment at a time: recompute its steps from the checkpoint
    # into the record, then run the adjoint over them. ``row`` is one row past
    # the end after the replay.
    for back_segment in range(segments):
        segment = segments - 1 - back_segment
        c_row = offs.to(tl.int64) + segment * 3 * neurons
        v = tl.load(checkpoint_ptr + c_row, mask=mask, other=0.0)
        if _SYN & FLAGS:
            i = tl.load(checkpoint_ptr + c_row + neurons, mask=mask, other=0.0)
        if _ADAPT & FLAGS:
            b = tl.load(checkpoint_ptr + c_row + 2 * neurons, mask=mask, other=0.0)
        length = tl.minimum(SEGMENT_, steps - segment * SEGMENT_)
        row -= length * neurons
        for k in range(length):
            xt = tl.load(x_ptr + row, mask=mask, other=0.0).to(tl.float32)
            at = steps_of_segment == k
            record_v = tl.where(at, v[None, :], record_v)
            if _ADAPT & FLAGS:
                record_b = tl.where(at, b[None, :], record_b)
            _, v, i, b, j = _step(xt, v, i, b, am, asy, vl, th, vr, aa, beta, FLAGS)
            record_j = tl.where(at, j[None, :], record_j)
            row += neurons
        for back in range(length):
            k = length - 1 - back
            row -= neurons
            at = steps_of_segment == k
            v = tl.sum(tl.where(at, record_v, 0.0), axis=0)
            j = tl.sum(tl.where(at, record_j, 0.0), axis=0)
            b = zero
            if _ADAPT & FLAGS:
                b = tl.sum(tl.where(at, record_b, 0.0), axis=0)
            lv, li, lb, g_x, g_am, g_as, g_vl, g_th, g_vr, g_aa, g_beta = _adjoint(
                row, v, j, b, lv, li, lb, g_am, g_as, g_vl, g_th, g_vr, g_aa, g_beta,
                go_all, g_out_ptr, g_v_ptr, g_i_ptr, g_b_ptr, mask,
                am, asy, vl, th, vr, aa, beta, alpha,
                FLAGS, RECORD, METHOD, GO_BROADCAST,
            )  # fmt: skip
            tl.store(g_x_ptr + row, g_x.to(g_x_ptr.dtype.element_ty), mask=mask)
        # row is back at the segment's first step: the previous segment ends there
    _store_state(g_v0_ptr, g_i0_ptr, g_b0_ptr, offs, lv, li, lb, mask, FLAGS)
    if PARAM_GRADS:
        tl.store(g_p_ptr + offs, g_am, mask=mask)
        tl.store(g_p_ptr + neurons + offs, g_as, mask=mask)
        tl.store(g_p_ptr + 2 * neurons + offs, g_vl, mask=mask)
        tl.store(g_p_ptr + 3 * neurons + offs, g_th, mask=mask)
        tl.store(g_p_ptr + 4 * neurons + offs, g_vr, mask=mask)
        tl.store(g_p_ptr + 5 * neurons + offs, g_aa, mask=mask)
        tl.store(g_p_ptr + 6 * neurons + offs, g_beta, mask=mask)


@triton.jit
def _adjoint(
    row, v, j, b, lv, li, lb, g_am, g_as, g_vl, g_th, g_vr, g_aa, g_beta,
    go_all, g_out_ptr, g_v_ptr, g_i_ptr, g_b_ptr, mask,
    am, asy, vl, th, vr, aa, beta, alpha,
    FLAGS: tl.constexpr, RECORD: tl.constexpr, METHOD: tl.constexpr,
    GO_BROADCAST: tl.constexpr,
):  # fmt: skip
    """One step of the adjoint recursion, the step whose output row is ``row`` and
    whose record is ``v``, ``j``, ``b``: the new adjoints, the input gradient and the
    accumulated parameter gradients."""
    if RECORD:
        lv += tl.load(g_v_ptr + row, mask=mask, other=0.0).to(tl.float32)
        if _SYN & FLAGS:
            li += tl.load(g_i_ptr + row, mask=mask, other=0.0).to(tl.float32)
        if _ADAPT & FLAGS:
            lb += tl.load(g_b_ptr + row, mask=mask, other=0.0).to(tl.float32)
    if GO_BROADCAST:
        go = go_all
    else:
        go = tl.load(g_out_ptr + row, mask=mask, other=0.0).to(tl.float32)
    vd, d, s, _ = _membrane(v, j, b, am, vl, th, aa, FLAGS)
    if _SPIKE & FLAGS:
        fired = s > 0
        sg = _surrogate(s, alpha, METHOD)
        # The output z drives the reset v' = z ? reset : v_d (d v'/d z = reset - v_d)
        # and, with ADAPT, the threshold jump b' = b_d + beta z.
        if _SUBTRACT & FLAGS:
            g_s = (go - lv * th) * sg
            g_vd = lv + g_s
            g_th -= g_s + tl.where(fired, lv, 0.0)
        else:
            g_z = go + lv * (vr - vd)
            if _ADAPT & FLAGS:
                g_z += lb * beta
            g_s = g_z * sg
            g_vd = tl.where(fired, 0.0, lv) + g_s
            g_vr += tl.where(fired, lv, 0.0)
            if _ADAPT & FLAGS:
                g_bd = lb - g_s
                g_th += g_bd * aa
                g_aa += g_bd * (th - b)
                g_beta += tl.where(fired, lb, 0.0)
                lb = g_bd - g_bd * aa
            else:
                g_th -= g_s
    else:
        g_vd = lv + go
    if _LEAK & FLAGS:
        g_d = g_vd * am
        g_am += g_vd * d
        g_vl += g_d
        lv = g_vd - g_d
        g_j = g_d
    else:
        lv = g_vd
        g_j = g_vd
    g_x = g_j
    if _SYN & FLAGS:
        if _ADAPT & FLAGS:
            g_x = li  # the input joins the current after its decay
        g_j = g_j + (li - asy * li)
        g_as -= li * j
        li = g_j
        if not _ADAPT & FLAGS:
            g_x = g_j
    return lv, li, lb, g_x, g_am, g_as, g_vl, g_th, g_vr, g_aa, g_beta


def _launch_options(flags: int, shared: bool) -> dict:
    """The compile-time arguments both kernels take: the model flags, the parameter
    layout, the block size and Triton's options (no fused multiply-adds, see the module
    doc)."""
    return dict(
        FLAGS=flags,
        SHARED=shared,
        BLOCK_=BLOCK,
        num_warps=NUM_WARPS,
        enable_fp_fusion=False,
    )


def _packed(params, neurons: int):
    """``(shared, values)``: the parameters as one float32 tensor, ``(7,)`` when every
    parameter is one value for all neurons (``shared``), else ``(7, M)``."""
    shared = all(p.numel() == 1 for p in params)
    if shared:
        return True, torch.cat([p.reshape(1).to(torch.float32) for p in params])
    return False, torch.stack([p.to(torch.float32).expand(neurons) for p in params])


def _pointers(tensors, fallback):
    """The tensors, with ``fallback`` in place of empty ones (absent states: never read
    or written by the kernels)."""
    return [t if t.numel() else fallback for t in tensors]


def _grid(neurons: int):
    return ((neurons + BLOCK - 1) // BLOCK,)


def scan_forward(x, states, params, flags, out, state_out) -> None:
    """Runs the model over time; arguments as :func:`.cpu.scan_forward` (CUDA tensors;
    the states and parameters are float32)."""
    steps, neurons = x.shape
    shared, packed = _packed(params, neurons)
    _forward_kernel[_grid(neurons)](
        x,
        *_pointers(states, states[0]),
        packed,
        out,
        *_pointers(state_out, state_out[0]),
        steps,
        neurons,
        RECORD=state_out[0].dim() == 2,
        **_launch_options(flags, shared),
    )


def scan_backward(
    g_out, g_states, x, states, params, alpha, method, flags, g_x, g_states0, g_p
) -> None:
    """Backpropagation through time; arguments as :func:`.cpu.scan_backward`."""
    steps, neurons = x.shape
    broadcast = g_out.numel() > 1 and all(stride == 0 for stride in g_out.stride())
    g_out = g_out[:1, :1].contiguous() if broadcast else g_out.contiguous()
    g_states = [g.contiguous() for g in g_states]
    param_grads = g_p.shape[0] > 0
    if not param_grads:  # a pointer the kernel never writes through
        g_p = torch.empty(1, dtype=torch.float32, device=x.device)
    grid = _grid(neurons)
    segments = -(-steps // SEGMENT)
    device = x.device
    checkpoints = torch.empty(
        (segments, 3, neurons), dtype=torch.float32, device=device
    )
    shared, packed = _packed(params, neurons)
    _backward_kernel[grid](
        g_out,
        *_pointers(g_states, g_states[0]),
        x,
        *_pointers(states, states[0]),
        packed,
        alpha.to(torch.float32),
        checkpoints,
        g_x,
        *_pointers(g_states0, g_states0[0]),
        g_p,
        steps,
        neurons,
        RECORD=g_states[0].dim() == 2,
        METHOD=method,
        GO_BROADCAST=broadcast,
        SEGMENT_=SEGMENT,
        PARAM_GRADS=param_grads,
        **_launch_options(flags, shared),
    )
