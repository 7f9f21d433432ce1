r"""Fixed-point formats and the integer arithmetic that the fake-quantised model mirrors.

A :class:`FixedPoint` format with ``bits`` bits and ``frac_bits`` fractional bits stores
a real value :math:`x` as the integer

.. math::
    n = \operatorname{clamp}\!\left(\operatorname{round}(x \cdot 2^{f}),\;
        n_{min},\; n_{max}\right), \qquad x_q = n \cdot 2^{-f}

with :math:`f` = ``frac_bits``, :math:`[n_{min}, n_{max}] = [-2^{b-1}, 2^{b-1}-1]`
(signed) or :math:`[0, 2^b-1]` (unsigned) and ``round`` rounding half to even (the
rounding of ``torch.fake_quantize_per_tensor_affine``, which
:meth:`FixedPoint.fake_quantize` calls: its gradient is the straight-through estimator,
1 inside the range and 0 where the value saturates).

Why the float model can equal the integer one *exactly*: every quantity of the
fake-quantised forward pass is an integer times a power of two (the scale of a fixed-point
format is :math:`2^{-f}`, decay factors are :math:`A \cdot 2^{-d}`, weight scales are
rounded to ``scale_bits`` significant bits). Multiplying by a power of two is exact in
floating point, and adding or multiplying such numbers is exact as long as the integer
result fits the mantissa (24 bits in float32, 53 in float64). The modules check these
bounds and compute in float64 where float32 would not be exact
(:func:`exact_float_dtype`); under them the float result is the integer result times the
scale, and rounding it to the format (:func:`round_shift` on the integer side) gives the
same integer.
"""

import math
from dataclasses import dataclass
from typing import Tuple, Union

import torch

__all__ = [
    "FixedPoint",
    "SPIKES",
    "dyadic_round",
    "dyadic_parts",
    "exact_float_dtype",
    "round_shift",
]

#: Mantissa bits (with the implicit bit) of the float types the models compute in.
_MANTISSA = {torch.float32: 24, torch.float64: 53}


def _check_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value}")
    return value


@dataclass(frozen=True)
class FixedPoint:
    """A fixed-point number format: integers ``n`` in ``bits`` bits meaning
    ``n * 2**-frac_bits``.

    Parameters:
        bits (int): total bits, the sign bit included when ``signed`` (1 to 24: a float32
            holds every such integer exactly)
        frac_bits (int): fractional bits ``f``, the resolution is ``2**-f`` (negative
            values give steps coarser than 1)
        signed (bool): two's complement range ``[-2**(bits-1), 2**(bits-1) - 1]``, or
            unsigned ``[0, 2**bits - 1]``

    Example:
        >>> fmt = FixedPoint(bits=8, frac_bits=4)
        >>> fmt.fake_quantize(torch.tensor([0.1, 1.03, 100.0])).tolist()
        [0.125, 1.0, 7.9375]
        >>> fmt.to_integer(torch.tensor([0.1, 1.03, 100.0])).tolist()
        [2, 16, 127]
    """

    bits: int
    frac_bits: int
    signed: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be a bool, got {self.signed!r}")
        _check_int(self.bits, "bits", 2 if self.signed else 1, 24)
        _check_int(self.frac_bits, "frac_bits", -64, 64)

    @property
    def scale(self) -> float:
        """The value of one least significant bit, ``2**-frac_bits``."""
        return 2.0**-self.frac_bits

    @property
    def qmin(self) -> int:
        """The smallest integer of the format."""
        return -(2 ** (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        """The largest integer of the format."""
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    def fake_quantize(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` rounded (half to even) to the format and saturated, as a float tensor of
        ``x``'s dtype; straight-through gradient inside the range, zero outside."""
        return torch.fake_quantize_per_tensor_affine(
            x, self.scale, 0, self.qmin, self.qmax
        )

    def to_integer(self, x: torch.Tensor) -> torch.Tensor:
        """The integers (int64) that :meth:`fake_quantize` represents ``x`` by."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            return x.to(torch.int64).clamp(self.qmin, self.qmax)
        return torch.round(x * 2.0**self.frac_bits).clamp(self.qmin, self.qmax).long()

    def from_integer(
        self, n: torch.Tensor, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """The real values ``n * 2**-frac_bits`` of the integers ``n``."""
        return n.to(dtype) * self.scale

    @classmethod
    def calibrated(
        cls, bits: int, max_abs: float, signed: bool = True, headroom_bits: int = 0
    ) -> "FixedPoint":
        """The format of ``bits`` bits with the most fractional bits whose range holds
        ``max_abs * 2**headroom_bits``.

        Parameters:
            bits (int): total bits
            max_abs (float): the largest magnitude to represent (0 gives the range
                ``[-1, 1)`` for signed formats, ``[0, 2)`` for unsigned ones)
            signed (bool): signed or unsigned format
            headroom_bits (int): extra integer bits, for values beyond those observed
        """
        if not math.isfinite(max_abs) or max_abs < 0:
            raise ValueError(f"max_abs must be finite and >= 0, got {max_abs}")
        _check_int(headroom_bits, "headroom_bits", 0, 32)
        largest = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
        if max_abs == 0:
            frac = bits - 1
        else:
            frac = math.floor(math.log2(largest / max_abs))
            # log2 may round up across an integer: the range must hold max_abs
            while largest * 2.0**-frac < max_abs:
                frac -= 1
        return cls(bits, frac - headroom_bits, signed)


#: The format of spikes: one unsigned bit, 0 or 1.
SPIKES = FixedPoint(bits=1, frac_bits=0, signed=False)


def exact_float_dtype(integer_bits: int, what: str) -> torch.dtype:
    """The float type whose mantissa holds integers of ``integer_bits`` bits (sign
    excluded) exactly: float32 up to 24 bits, float64 up to 53.

    Raises:
        ValueError: naming ``what`` when not even float64 is exact.
    """
    for dtype in (torch.float32, torch.float64):
        if integer_bits <= _MANTISSA[dtype]:
            return dtype
    raise ValueError(
        f"{what} needs {integer_bits}-bit integers, more than a float64 holds exactly "
        "(53); use fewer bits"
    )


def mantissa_bits(dtype: torch.dtype) -> int:
    """The bits of the integers that the float type ``dtype`` holds exactly (24 for
    float32, 53 for float64, 11 for float16, 8 for bfloat16)."""
    return 1 - int(math.log2(torch.finfo(dtype).eps))


def dyadic_round(value: torch.Tensor, bits: int) -> torch.Tensor:
    r"""``value`` (positive) rounded to ``bits`` significant bits: the nearest
    :math:`m \cdot 2^{e}` with an integer :math:`m < 2^{bits}` (ties to even).

    Returns float64 values, exactly representable in float32 too when ``bits <= 24``.
    """
    _check_int(bits, "bits", 1, 52)
    value = torch.as_tensor(value, dtype=torch.float64)
    if not bool(torch.all(torch.isfinite(value) & (value > 0))):
        raise ValueError(f"value must be positive and finite, got {value}")
    mantissa, exponent = torch.frexp(value)  # value = mantissa * 2**exponent
    return torch.ldexp(torch.round(mantissa * 2.0**bits), exponent - bits)


def dyadic_parts(value: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Integers ``(m, r)`` (int64) with ``value == m * 2**-r`` exactly and ``m`` odd
    (``m = r = 0`` for zeros): a float's mantissa and shift."""
    value = torch.as_tensor(value, dtype=torch.float64)
    if not bool(torch.all(torch.isfinite(value))):
        raise ValueError(f"value must be finite, got {value}")
    fraction, exponent = torch.frexp(value)
    mantissa = torch.ldexp(fraction, torch.full_like(exponent, 53)).long()
    shift = 53 - exponent.long()
    # strip the trailing zeros of the mantissa
    for _ in range(53):
        even = (mantissa % 2 == 0) & (mantissa != 0)
        if not bool(even.any()):
            break
        mantissa = torch.where(even, mantissa // 2, mantissa)
        shift = torch.where(even, shift - 1, shift)
    shift = torch.where(mantissa == 0, torch.zeros_like(shift), shift)
    return mantissa, shift


def round_shift(x: torch.Tensor, shift: Union[int, torch.Tensor]) -> torch.Tensor:
    r"""``x / 2**shift`` rounded half to even, in integer arithmetic (int64).

    For ``shift > 0``: :math:`q = \lfloor x / 2^s \rfloor` (an arithmetic right shift),
    :math:`r = x - q 2^s`, and :math:`q + 1` where :math:`r > 2^{s-1}`, or
    :math:`r = 2^{s-1}` and :math:`q` is odd. For ``shift <= 0``: ``x << -shift``
    (exact). ``shift`` may be a tensor that broadcasts against ``x`` (a shift per
    channel).
    """
    if x.is_floating_point() or x.is_complex():
        raise TypeError(f"x must be an integer tensor, got {x.dtype}")
    x = x.to(torch.int64)
    shift = torch.as_tensor(shift, dtype=torch.int64, device=x.device)
    right = shift.clamp(min=0)
    left = (-shift).clamp(min=0)
    x = torch.bitwise_left_shift(x, left)
    q = torch.bitwise_right_shift(x, right)
    remainder = x - torch.bitwise_left_shift(q, right)
    half = torch.where(
        right > 0,
        torch.bitwise_left_shift(torch.ones_like(right), (right - 1).clamp(min=0)),
        torch.zeros_like(right),
    )
    up = (right > 0) & ((remainder > half) | ((remainder == half) & (q % 2 == 1)))
    return q + up.long()
