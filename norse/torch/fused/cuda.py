r"""CUDA kernels (Triton) of the time-fused neuron scan used by :mod:`.autograd`.

The same equations as :mod:`.cpu` (see there, and :mod:`.spec` for the flags), one
Triton program per block of ``BLOCK`` neurons looping over time on the ``(T, M)``
layout, so every step reads and writes one contiguous run per program. Inputs may be
float32, float16 or bfloat16; the state, parameters and all arithmetic are float32
(``enable_fp_fusion=False``: no fused multiply-adds, so float32 results follow the
reference order of operations exactly), outputs are stored in the input dtype.

The backward kernel first replays the forward pass of its block into a scratch record
``(T, 2, M)`` (voltage before each step, current after its input jump; float32, freed
after the backward), then runs the adjoint recursion backwards in time. Nothing is kept
between forward and backward but the inputs.

The model flags, the surrogate method and the recording mode are ``tl.constexpr``: each
combination compiles once. This module imports Triton; :mod:`.autograd` imports it only
for CUDA inputs (when Triton is installed, see :mod:`.neurons`). With
``TRITON_INTERPRET=1`` set before Triton is imported, the kernels run on CPU tensors, as
the tests do without a GPU.
"""

import torch
import triton
import triton.language as tl

from norse.torch.fused.spec import BOX, LEAK, SPIKE, SUBTRACT, SYN

#: Neurons per Triton program.
BLOCK = 128
#: Warps per program.
NUM_WARPS = 4


@triton.jit
def _start(
    v0_ptr, i0_ptr, params_ptr, neurons, SYN_: tl.constexpr, BLOCK_: tl.constexpr
):
    """Lane offsets and mask of this program, its parameters and initial state."""
    offs = tl.program_id(0) * BLOCK_ + tl.arange(0, BLOCK_)
    mask = offs < neurons
    am = tl.load(params_ptr + offs, mask=mask, other=0.0)
    asy = tl.load(params_ptr + neurons + offs, mask=mask, other=0.0)
    vl = tl.load(params_ptr + 2 * neurons + offs, mask=mask, other=0.0)
    th = tl.load(params_ptr + 3 * neurons + offs, mask=mask, other=0.0)
    vr = tl.load(params_ptr + 4 * neurons + offs, mask=mask, other=0.0)
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    i = tl.zeros([BLOCK_], dtype=tl.float32)
    if SYN_:
        i = tl.load(i0_ptr + offs, mask=mask, other=0.0)
    return offs, mask, am, asy, vl, th, vr, v, i


@triton.jit
def _membrane(v, j, am, vl, LEAK_: tl.constexpr, BOX_: tl.constexpr):
    """``(v_d, d)``: the voltage before the reset and the leak term."""
    if BOX_:
        d = (j + vl) - v
    else:
        d = (vl - v) + j
    if LEAK_:
        vd = v + am * d
    else:
        vd = v + j
    return vd, d


@triton.jit
def _step(
    xt,
    v,
    i,
    am,
    asy,
    vl,
    th,
    vr,
    SYN_: tl.constexpr,
    LEAK_: tl.constexpr,
    SPIKE_: tl.constexpr,
    SUBTRACT_: tl.constexpr,
    BOX_: tl.constexpr,
):
    """One Euler step: ``(output, v', i', j)`` with ``j`` the current after the jump."""
    j = xt
    if SYN_:
        j = i + xt
    vd, _ = _membrane(v, j, am, vl, LEAK_, BOX_)
    if SYN_:
        i = j - asy * j
    if SPIKE_:
        s = vd - th
        fired = s > 0
        if SUBTRACT_:
            v = tl.where(fired, s, vd)
        else:
            v = tl.where(fired, vr, vd)
        o = fired.to(tl.float32)
    else:
        v = vd
        o = vd
    return o, v, i, j


@triton.jit
def _forward_kernel(
    x_ptr,
    v0_ptr,
    i0_ptr,
    params_ptr,
    out_ptr,
    v_out_ptr,
    i_out_ptr,
    steps,
    neurons,
    SYN_: tl.constexpr,
    LEAK_: tl.constexpr,
    SPIKE_: tl.constexpr,
    SUBTRACT_: tl.constexpr,
    BOX_: tl.constexpr,
    RECORD: tl.constexpr,
    BLOCK_: tl.constexpr,
):
    offs, mask, am, asy, vl, th, vr, v, i = _start(
        v0_ptr, i0_ptr, params_ptr, neurons, SYN_, BLOCK_
    )
    # Element offsets of the current row, 64-bit (T * M may exceed 2**31).
    row = offs.to(tl.int64)
    for _ in range(steps):
        xt = tl.load(x_ptr + row, mask=mask, other=0.0).to(tl.float32)
        o, v, i, _ = _step(
            xt, v, i, am, asy, vl, th, vr, SYN_, LEAK_, SPIKE_, SUBTRACT_, BOX_
        )
        tl.store(out_ptr + row, o.to(out_ptr.dtype.element_ty), mask=mask)
        if RECORD:
            tl.store(v_out_ptr + row, v, mask=mask)
            if SYN_:
                tl.store(i_out_ptr + row, i, mask=mask)
        row += neurons
    if not RECORD:
        tl.store(v_out_ptr + offs, v, mask=mask)
        if SYN_:
            tl.store(i_out_ptr + offs, i, mask=mask)


@triton.jit
def _backward_kernel(
    g_out_ptr,
    g_v_ptr,
    g_i_ptr,
    x_ptr,
    v0_ptr,
    i0_ptr,
    params_ptr,
    alpha_ptr,
    history_ptr,
    g_x_ptr,
    g_v0_ptr,
    g_i0_ptr,
    g_p_ptr,
    steps,
    neurons,
    SYN_: tl.constexpr,
    LEAK_: tl.constexpr,
    SPIKE_: tl.constexpr,
    SUBTRACT_: tl.constexpr,
    BOX_: tl.constexpr,
    RECORD: tl.constexpr,
    METHOD: tl.constexpr,
    GO_BROADCAST: tl.constexpr,
    BLOCK_: tl.constexpr,
):
    offs, mask, am, asy, vl, th, vr, v, i = _start(
        v0_ptr, i0_ptr, params_ptr, neurons, SYN_, BLOCK_
    )
    alpha = tl.load(alpha_ptr)
    # Replay: the voltage before each step and the current after its input jump.
    # Element offsets (64-bit) of the current row of the (T, M) tensors and of the
    # (T, 2, M) record.
    row = offs.to(tl.int64)
    h_row = offs.to(tl.int64)
    for _ in range(steps):
        xt = tl.load(x_ptr + row, mask=mask, other=0.0).to(tl.float32)
        tl.store(history_ptr + h_row, v, mask=mask)
        _, v, i, j = _step(
            xt, v, i, am, asy, vl, th, vr, SYN_, LEAK_, SPIKE_, SUBTRACT_, BOX_
        )
        tl.store(history_ptr + h_row + neurons, j, mask=mask)
        row += neurons
        h_row += 2 * neurons
    # Adjoints of v and i after the current step, and per-neuron parameter gradients.
    zero = tl.zeros([BLOCK_], dtype=tl.float32)
    lv = zero
    li = zero
    if not RECORD:
        lv = tl.load(g_v_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        if SYN_:
            li = tl.load(g_i_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    g_am = zero
    g_as = zero
    g_vl = zero
    g_th = zero
    g_vr = zero
    go_all = zero
    if GO_BROADCAST:
        go_all = zero + tl.load(g_out_ptr).to(tl.float32)
    # Backwards in time: the offsets are one row past the end after the replay.
    for _ in range(steps):
        row -= neurons
        h_row -= 2 * neurons
        if RECORD:
            lv += tl.load(g_v_ptr + row, mask=mask, other=0.0).to(tl.float32)
            if SYN_:
                li += tl.load(g_i_ptr + row, mask=mask, other=0.0).to(tl.float32)
        if GO_BROADCAST:
            go = go_all
        else:
            go = tl.load(g_out_ptr + row, mask=mask, other=0.0).to(tl.float32)
        v = tl.load(history_ptr + h_row, mask=mask, other=0.0)
        j = tl.load(history_ptr + h_row + neurons, mask=mask, other=0.0)
        vd, d = _membrane(v, j, am, vl, LEAK_, BOX_)
        if SPIKE_:
            s = vd - th
            fired = s > 0
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
                sg = zero
            # Reset v' = z ? reset : v_d, with d v'/d z = reset - v_d.
            if SUBTRACT_:
                g_s = (go - lv * th) * sg
                g_vd = lv + g_s
                g_th -= g_s + tl.where(fired, lv, 0.0)
            else:
                g_s = (go + lv * (vr - vd)) * sg
                g_vd = tl.where(fired, 0.0, lv) + g_s
                g_th -= g_s
                g_vr += tl.where(fired, lv, 0.0)
        else:
            g_vd = lv + go
        if LEAK_:
            g_d = g_vd * am
            g_am += g_vd * d
            g_vl += g_d
            lv = g_vd - g_d
            g_j = g_d
        else:
            lv = g_vd
            g_j = g_vd
        if SYN_:
            g_j = g_j + (li - asy * li)
            g_as -= li * j
            li = g_j
        tl.store(g_x_ptr + row, g_j.to(g_x_ptr.dtype.element_ty), mask=mask)
    tl.store(g_v0_ptr + offs, lv, mask=mask)
    if SYN_:
        tl.store(g_i0_ptr + offs, li, mask=mask)
    tl.store(g_p_ptr + offs, g_am, mask=mask)
    tl.store(g_p_ptr + neurons + offs, g_as, mask=mask)
    tl.store(g_p_ptr + 2 * neurons + offs, g_vl, mask=mask)
    tl.store(g_p_ptr + 3 * neurons + offs, g_th, mask=mask)
    tl.store(g_p_ptr + 4 * neurons + offs, g_vr, mask=mask)


def _flags(flags: int) -> dict:
    return dict(
        SYN_=bool(flags & SYN),
        LEAK_=bool(flags & LEAK),
        SPIKE_=bool(flags & SPIKE),
        SUBTRACT_=bool(flags & SUBTRACT),
        BOX_=bool(flags & BOX),
    )


def _packed(params, neurons: int) -> torch.Tensor:
    """The parameters as one ``(5, M)`` float32 tensor (shared values expanded)."""
    return torch.stack([p.to(torch.float32).expand(neurons) for p in params])


def _grid(neurons: int):
    return ((neurons + BLOCK - 1) // BLOCK,)


def scan_forward(x, v0, i0, params, flags, out, v_out, i_out) -> None:
    """Runs the model over time; arguments as :func:`.cpu.scan_forward` (tensors)."""
    steps, neurons = x.shape
    syn = bool(flags & SYN)
    _forward_kernel[_grid(neurons)](
        x,
        v0,
        i0 if syn else v0,
        _packed(params, neurons),
        out,
        v_out,
        i_out if syn else v_out,
        steps,
        neurons,
        RECORD=v_out.dim() == 2,
        BLOCK_=BLOCK,
        num_warps=NUM_WARPS,
        enable_fp_fusion=False,
        **_flags(flags),
    )


def scan_backward(grads, x, v0, i0, params, alpha, method, flags, results) -> None:
    """Backpropagation through time; arguments as :func:`.cpu.scan_backward` (tensors;
    ``alpha`` a ``(1,)`` float32 tensor)."""
    g_out, g_v, g_i = grads
    g_x, g_v0, g_i0, g_p = results
    steps, neurons = x.shape
    syn = bool(flags & SYN)
    broadcast = g_out.numel() > 1 and all(stride == 0 for stride in g_out.stride())
    g_out = g_out[:1, :1].contiguous() if broadcast else g_out.contiguous()
    history = torch.empty((steps, 2, neurons), dtype=torch.float32, device=x.device)
    _backward_kernel[_grid(neurons)](
        g_out,
        g_v.contiguous(),
        g_i.contiguous() if syn else g_v,
        x,
        v0,
        i0 if syn else v0,
        _packed(params, neurons),
        alpha.to(torch.float32),
        history,
        g_x,
        g_v0,
        g_i0 if syn else g_v0,
        g_p,
        steps,
        neurons,
        RECORD=g_v.dim() == 2,
        METHOD=method,
        GO_BROADCAST=broadcast,
        BLOCK_=BLOCK,
        num_warps=NUM_WARPS,
        enable_fp_fusion=False,
        **_flags(flags),
    )
