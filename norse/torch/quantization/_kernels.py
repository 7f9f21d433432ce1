"""Numba kernels of the fixed-point LIF/LI dynamics over a whole sequence (CPU).

The forward kernel runs the step of :mod:`.neurons` for ``T`` steps in one pass over
memory, with the same float operations (``rint`` rounds half to even, as
``torch.fake_quantize_per_tensor_affine``), so it gives the same values. It records,
per step and neuron, the straight-through masks (bits of ``flags``), and for LIF the
distance to the threshold and ``v_reset - v_dec``; the backward kernel runs the
hand-written gradient of :class:`~.neurons._FixedPointStep` backwards in time.
Trainable neuron parameters are not supported here (the modules then run the step
function).
"""

from typing import Any, Callable, Optional, Tuple

import numpy as np
import torch

try:  # numba is optional: the modules fall back to the per-step function
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a dependency where it has wheels
    njit = None

#: Bits of ``flags``.
_X, _I_JUMP, _V_DEC, _I_DEC, _SPIKE = 1, 2, 4, 8, 16

AVAILABLE = njit is not None

if AVAILABLE:

    @njit(cache=True, inline="always")
    def _quantize(value, inv_scale, scale, low, high):
        """torch's fake quantisation: (rounded, clamped) * scale, in range."""
        n = np.rint(value * inv_scale)
        inside = low <= n <= high
        if n < low:
            n = low
        elif n > high:
            n = high
        return n * scale, inside

    @njit(cache=True, parallel=True)
    def _forward(
        x, v0, i0, a_syn, a_mem, v_leak, v_th, v_reset, fmt, spiking,
        out, v_out, i_out, flags, distance, gap,
    ):  # fmt: skip
        inv_scale, scale, low, high, wide = fmt[0], fmt[1], fmt[2], fmt[3], fmt[4]
        steps, size = x.shape
        for n in prange(size):
            v = v0[n]
            i = i0[n]
            for t in range(steps):
                flag = 0
                xq, inside = _quantize(x[t, n], inv_scale, scale, low, high)
                if inside:
                    flag |= _X
                i_jump, inside = _quantize(i + xq, inv_scale, scale, low, high)
                if inside:
                    flag |= _I_JUMP
                drive = (v_leak[n] - v) + i_jump
                step, _ = _quantize(a_mem[n] * drive, inv_scale, scale, -wide, wide)
                v_dec, inside = _quantize(step + v, inv_scale, scale, low, high)
                if inside:
                    flag |= _V_DEC
                leak, _ = _quantize(a_syn[n] * i_jump, inv_scale, scale, -wide, wide)
                i, inside = _quantize(i_jump - leak, inv_scale, scale, low, high)
                if inside:
                    flag |= _I_DEC
                if spiking:
                    distance[t, n] = v_dec - v_th[n]
                    gap[t, n] = v_reset[n] - v_dec
                    if v_dec - v_th[n] > 0:
                        flag |= _SPIKE
                        out[t, n] = 1.0
                        v = v_reset[n]
                    else:
                        out[t, n] = 0.0
                        v = v_dec
                else:
                    out[t, n] = v_dec
                    v = v_dec
                flags[t, n] = flag
            v_out[n] = v
            i_out[n] = i

    @njit(cache=True, parallel=True)
    def _backward(
        grad_out, grad_v, grad_i, flags, surrogate, gap, a_syn, a_mem, spiking,
        grad_x, grad_v0, grad_i0,
    ):  # fmt: skip
        steps, size = grad_out.shape
        for n in prange(size):
            gv = grad_v[n]
            gi = grad_i[n]
            for t in range(steps - 1, -1, -1):
                flag = flags[t, n]
                if spiking:
                    spike = 1.0 if flag & _SPIKE else 0.0
                    grad_spike = grad_out[t, n] + gv * gap[t, n]
                    gv_dec = gv * (1.0 - spike) + grad_spike * surrogate[t, n]
                else:
                    gv_dec = grad_out[t, n] + gv
                g_step = gv_dec if flag & _V_DEC else 0.0 * gv_dec
                g_leak = gi if flag & _I_DEC else 0.0 * gi
                g_drive = g_step * a_mem[n]
                g_jump = g_drive + g_leak * (1.0 - a_syn[n])
                if not flag & _I_JUMP:
                    g_jump = 0.0 * g_jump
                grad_x[t, n] = g_jump if flag & _X else 0.0 * g_jump
                gv = g_step - g_drive
                gi = g_jump
            grad_v0[n] = gv
            grad_i0[n] = gi


if AVAILABLE:

    @njit(cache=True, parallel=True)
    def _requantize(acc, bias, multiplier, fmt, out, mask):
        inv_scale, scale, low, high = fmt[0], fmt[1], fmt[2], fmt[3]
        leading, channels, inner = acc.shape
        for outer in prange(leading):
            for c in range(channels):
                for k in range(inner):
                    total = (np.float64(acc[outer, c, k]) + bias[c]) * multiplier[c]
                    value, inside = _quantize(total, inv_scale, scale, low, high)
                    out[outer, c, k] = value
                    mask[outer, c, k] = inside


def requantize(
    acc: torch.Tensor,
    bias: Optional[torch.Tensor],
    multiplier: torch.Tensor,
    channel_dim: int,
    scale: float,
    low: int,
    high: int,
    dtype: torch.dtype,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``fake_quantize((acc + bias) * multiplier)`` per channel (float64 arithmetic, the
    values of the torch operations) in one pass: the result in ``dtype`` and the
    straight-through mask. ``acc`` has its channels at ``channel_dim``."""
    channels = acc.shape[channel_dim]
    view = (
        acc.detach()
        .contiguous()
        .view(int(np.prod(acc.shape[:channel_dim], dtype=np.int64)), channels, -1)
    )
    out = torch.empty(view.shape, dtype=dtype)
    mask = torch.empty(view.shape, dtype=torch.bool)
    zero = torch.zeros(channels, dtype=torch.float64)
    _requantize(
        view.numpy(),
        (zero if bias is None else bias.detach().to(torch.float64)).numpy(),
        multiplier.detach().to(torch.float64).contiguous().numpy(),
        np.array([1.0 / scale, scale, low, high], dtype=np.float64),
        out.numpy(),
        mask.numpy(),
    )
    return out.view(acc.shape), mask.view(acc.shape)


def usable_for_requantize(acc: torch.Tensor) -> bool:
    """Whether :func:`requantize` can run on ``acc``."""
    return (
        AVAILABLE
        and acc.device.type == "cpu"
        and acc.dtype in (torch.float32, torch.float64)
        and acc.dim() >= 1
        and not torch.compiler.is_compiling()
    )


def _flat(tensor: torch.Tensor, shape: torch.Size) -> np.ndarray:
    """A parameter broadcast to one step's ``shape``, flattened, as a numpy array."""
    return tensor.detach().expand(shape).contiguous().view(-1).numpy()


class FixedPointSequence(torch.autograd.Function):
    """``T`` fixed-point steps through the Numba kernels (see the module doc).

    Inputs: ``x (T, ...)``, ``v0``, ``i0`` (one step's shape), the quantised parameters
    ``a_syn, a_mem, v_leak, v_th, v_reset`` (``v_th, v_reset`` None for LI, nothing
    requiring a gradient) and the static ``(scale, low, high, wide, spiking, surrogate,
    alpha)``. Outputs: spikes or voltages ``(T, ...)``, and the last ``v`` and ``i``.
    """

    @staticmethod
    def forward(ctx, x, v0, i0, a_syn, a_mem, v_leak, v_th, v_reset, static):
        scale, low, high, wide, spiking, surrogate, alpha = static
        shape = x.shape[1:]
        steps = x.shape[0]
        dtype = v0.dtype  # of the state; x and the outputs keep x's dtype
        x_flat = x.detach().contiguous().view(steps, -1)
        size = x_flat.shape[1]
        zero = torch.zeros((), dtype=dtype)
        params = [
            _flat((p if p is not None else zero).to(dtype), shape)
            for p in (a_syn, a_mem, v_leak, v_th, v_reset)
        ]
        out = torch.empty_like(x_flat)
        v_out = torch.empty(size, dtype=dtype)
        i_out = torch.empty(size, dtype=dtype)
        flags = torch.empty((steps, size), dtype=torch.uint8)
        extra = (steps, size) if spiking else (1, 1)
        distance = torch.empty(extra, dtype=dtype)
        gap = torch.empty(extra, dtype=dtype)
        fmt = np.array([1.0 / scale, scale, low, high, wide], dtype=np.float64)
        _forward(
            x_flat.numpy(),
            _flat(v0.to(dtype), shape),
            _flat(i0.to(dtype), shape),
            *params,
            fmt,
            spiking,
            out.numpy(),
            v_out.numpy(),
            i_out.numpy(),
            flags.numpy(),
            distance.numpy(),
            gap.numpy(),
        )
        ctx.spiking, ctx.surrogate, ctx.alpha = spiking, surrogate, alpha
        ctx.shapes = (v0.shape, i0.shape)
        ctx.save_for_backward(flags, distance, gap, a_syn, a_mem)
        ctx.step_shape = shape
        return out.view(x.shape), v_out.view(shape), i_out.view(shape)

    @staticmethod
    def backward(ctx, grad_out, grad_v, grad_i):
        flags, distance, gap, a_syn, a_mem = ctx.saved_tensors
        shape = ctx.step_shape
        steps = grad_out.shape[0]
        dtype = distance.dtype
        if ctx.spiking and ctx.surrogate is not None:
            alpha = torch.as_tensor(ctx.alpha, dtype=dtype)
            surrogate = ctx.surrogate(distance, alpha).contiguous()
        else:
            surrogate = torch.zeros_like(gap)
        grad_x = torch.empty((steps, flags.shape[1]), dtype=grad_out.dtype)
        grad_v0 = torch.empty(flags.shape[1], dtype=dtype)
        grad_i0 = torch.empty(flags.shape[1], dtype=dtype)
        _backward(
            grad_out.contiguous().view(steps, -1).numpy(),
            _flat(grad_v.to(dtype), shape),
            _flat(grad_i.to(dtype), shape),
            flags.numpy(),
            surrogate.numpy(),
            gap.numpy(),
            _flat(a_syn.to(dtype), shape),
            _flat(a_mem.to(dtype), shape),
            ctx.spiking,
            grad_x.numpy(),
            grad_v0.numpy(),
            grad_i0.numpy(),
        )
        grad_v0 = grad_v0.view(shape).sum_to_size(ctx.shapes[0])
        grad_i0 = grad_i0.view(shape).sum_to_size(ctx.shapes[1])
        return (grad_x.view(grad_out.shape), grad_v0, grad_i0, *([None] * 6))


def usable(x: torch.Tensor, parameters: Tuple[Optional[torch.Tensor], ...]) -> bool:
    """Whether the kernels can run this sequence: numba, a CPU float32/float64 tensor,
    eager mode, and no trainable neuron parameter."""
    if not AVAILABLE or x.device.type != "cpu":
        return False
    if x.dtype not in (torch.float32, torch.float64) or x.dim() < 2:
        return False
    if torch.compiler.is_compiling():
        return False
    return not any(p is not None and p.requires_grad for p in parameters)


def run(*args: Any) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``FixedPointSequence.apply`` (typed for callers)."""
    apply: Callable = FixedPointSequence.apply
    return apply(*args)
