"""Elementary functions for the generated CPU kernels that LLVM can vectorise.

Numba compiles ``np.exp`` on a scalar to a call of the C library's ``exp``, which the
loop vectoriser cannot widen (the PyPI builds of llvmlite carry no vector math library),
so a lane loop with one exponential ran one lane at a time. :func:`exp64` computes the
exponential with arithmetic alone: range reduction :math:`x = k \\ln 2 + r`,
:math:`|r| \\le \\ln 2 / 2`, a Taylor polynomial for :math:`e^r` and the scale
:math:`2^k` built from its exponent bits. Its error is below 1 ulp in float64 over the
whole range, :func:`exp32` rounds a float64 result of the same kind once
(``tests/torch/fused/test_numba_math.py`` compares both with ``torch.exp``); overflow
gives ``inf``, underflow ``0`` or a subnormal, NaN stays NaN.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_LOG2E = 1.4426950408889634
# ln 2 split so that k * _LN2_HI is exact for |k| < 2**11
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_OVERFLOW = 709.782712893384
_UNDERFLOW = -745.1332191019412


@intrinsic
def _float64_from_bits(typingctx, bits):
    """The float64 whose IEEE 754 bit pattern is the int64 ``bits``."""
    signature = types.float64(types.int64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return signature, codegen


@njit(inline="always", nogil=True, error_model="numpy")
def _power_of_two(k):
    """``2**k`` for an integral float64 ``k`` in [-1022, 1023]."""
    return _float64_from_bits(np.int64(k + 1023.0) << 52)


@njit(inline="always", nogil=True, error_model="numpy")
def _reduce(x):
    """``(k, r)`` with ``x = k ln 2 + r``, ``|r| <= ln 2 / 2`` (``x`` clamped to the
    range where ``exp`` is finite and nonzero)."""
    clamped = min(max(x, -746.0), 710.0)
    k = np.floor(clamped * _LOG2E + 0.5)
    return k, (clamped - k * _LN2_HI) - k * _LN2_LO


@njit(inline="always", nogil=True, error_model="numpy")
def _scale(x, k, expm1_r):
    """``(1 + expm1_r) 2**k``, with ``exp``'s results for overflow, underflow and NaN;
    ``2**k`` in two factors, so that subnormal results (k < -1022) come out right."""
    half = np.floor(k * 0.5)
    value = (1.0 + expm1_r) * _power_of_two(half) * _power_of_two(k - half)
    value = np.inf if x > _OVERFLOW else value
    value = 0.0 if x < _UNDERFLOW else value
    return x if x != x else value


@njit(inline="always", nogil=True, error_model="numpy")
def exp64(x):
    """``exp(x)`` of a float64 ``x`` (< 1 ulp), in operations LLVM vectorises."""
    k, r = _reduce(x)
    # e^r - 1 - r by its Taylor polynomial to r^13 (truncation < 1e-17), in Estrin's
    # scheme: short dependency chains keep the vector units busy
    r2 = r * r
    r4 = r2 * r2
    a = (1.0 / 2 + r * (1.0 / 6)) + r2 * (1.0 / 24 + r * (1.0 / 120))
    b = (1.0 / 720 + r * (1.0 / 5040)) + r2 * (1.0 / 40320 + r * (1.0 / 362880))
    c = (1.0 / 3628800 + r * (1.0 / 39916800)) + r2 * (
        1.0 / 479001600 + r * (1.0 / 6227020800)
    )
    return _scale(x, k, (a + r4 * (b + r4 * c)) * r2 + r)


@njit(inline="always", nogil=True, error_model="numpy")
def exp32(x):
    """``exp(x)`` of a float32 ``x``: computed in float64 with the Taylor polynomial to
    r^8 (truncation < 3e-10, far below float32's precision) and rounded once."""
    x64 = np.float64(x)
    k, r = _reduce(x64)
    r2 = r * r
    a = (1.0 / 2 + r * (1.0 / 6)) + r2 * (1.0 / 24 + r * (1.0 / 120))
    b = (1.0 / 720 + r * (1.0 / 5040)) + r2 * (1.0 / 40320)
    return np.float32(_scale(x64, k, (a + (r2 * r2) * b) * r2 + r))
