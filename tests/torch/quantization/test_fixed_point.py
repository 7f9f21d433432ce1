"""Fixed-point formats, dyadic scales and the integer rounding shift."""

from fractions import Fraction

import pytest
import torch

from norse.torch.quantization.fixed_point import (
    SPIKES,
    FixedPoint,
    dyadic_parts,
    dyadic_round,
    exact_float_dtype,
    mantissa_bits,
    round_shift,
)


def _round_half_even(value: Fraction) -> int:
    floor = value.numerator // value.denominator
    rest = value - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        return floor + 1
    return floor


def test_format_range_and_scale():
    fmt = FixedPoint(bits=8, frac_bits=4)
    assert (fmt.qmin, fmt.qmax, fmt.scale) == (-128, 127, 1 / 16)
    unsigned = FixedPoint(bits=8, frac_bits=8, signed=False)
    assert (unsigned.qmin, unsigned.qmax) == (0, 255)
    assert (SPIKES.qmin, SPIKES.qmax, SPIKES.scale) == (0, 1, 1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(bits=0, frac_bits=0), "bits must lie"),
        (dict(bits=25, frac_bits=0), "bits must lie"),
        (dict(bits=1, frac_bits=0, signed=True), "bits must lie"),
        (dict(bits=8.0, frac_bits=0), "bits must be an int"),
        (dict(bits=8, frac_bits=100), "frac_bits must lie"),
        (dict(bits=8, frac_bits=0, signed=1), "signed must be a bool"),
    ],
)
def test_format_rejects_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        FixedPoint(**kwargs)


def test_fake_quantize_rounds_half_to_even_and_saturates():
    fmt = FixedPoint(bits=4, frac_bits=1)  # steps of 0.5 in [-4, 3.5]
    x = torch.tensor([0.25, 0.75, -0.25, 1.2, 10.0, -10.0])
    assert fmt.fake_quantize(x).tolist() == [0.0, 1.0, -0.0, 1.0, 3.5, -4.0]
    assert fmt.to_integer(x).tolist() == [0, 2, 0, 2, 7, -8]


def test_fake_quantize_and_to_integer_agree():
    torch.manual_seed(0)
    fmt = FixedPoint(bits=12, frac_bits=7)
    # values on and between the grid points, ties included
    x = torch.cat([torch.randn(1000) * 20, torch.arange(-100, 100) / 256.0])
    fake = fmt.fake_quantize(x)
    assert torch.equal(fake, fmt.from_integer(fmt.to_integer(x)))
    assert torch.equal(fmt.to_integer(fake), fmt.to_integer(x))


def test_fake_quantize_has_a_clipped_straight_through_gradient():
    fmt = FixedPoint(bits=4, frac_bits=1)
    x = torch.tensor([0.3, 1.1, 100.0, -100.0], requires_grad=True)
    fmt.fake_quantize(x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("max_abs", [0.0, 0.3, 1.0, 2.0, 3.7, 1000.0])
@pytest.mark.parametrize("signed", [True, False])
def test_calibrated_format_holds_the_largest_value(max_abs, signed):
    fmt = FixedPoint.calibrated(10, max_abs, signed=signed)
    assert fmt.qmax * fmt.scale >= max_abs
    if max_abs > 0:  # and one more fractional bit would not
        assert fmt.qmax * fmt.scale / 2 < max_abs
    roomy = FixedPoint.calibrated(10, max_abs, signed=signed, headroom_bits=2)
    assert roomy.frac_bits == fmt.frac_bits - 2


def test_calibrated_rejects_negative_range():
    with pytest.raises(ValueError, match="max_abs"):
        FixedPoint.calibrated(8, -1.0)


def test_round_shift_matches_exact_rational_rounding():
    torch.manual_seed(1)
    x = torch.randint(-(2**40), 2**40, (500,))
    x = torch.cat([x, torch.tensor([-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7])])
    for shift in (-3, 0, 1, 2, 5, 17):
        result = round_shift(x, shift)
        expected = [_round_half_even(int(n) / Fraction(2) ** shift) for n in x]
        assert result.tolist() == expected, shift


def test_round_shift_per_channel_shifts():
    x = torch.tensor([[7, 7, 7], [-9, -9, -9]])
    shift = torch.tensor([0, 1, -2])
    assert round_shift(x, shift).tolist() == [[7, 4, 28], [-9, -4, -36]]


def test_round_shift_needs_integers():
    with pytest.raises(TypeError, match="integer tensor"):
        round_shift(torch.ones(2), 1)


def test_dyadic_round_keeps_the_significant_bits():
    values = torch.tensor([0.1, 1 / 3, 7.0, 1e-5, 123.456], dtype=torch.float64)
    for bits in (1, 4, 16):
        rounded = dyadic_round(values, bits)
        mantissa, shift = dyadic_parts(rounded)
        assert torch.all(mantissa.abs() < 2**bits + 1)
        assert torch.equal(mantissa.double() * torch.pow(2.0, -shift.double()), rounded)
        assert torch.all((rounded - values).abs() <= values * 2.0**-bits)
        # exact in float32 too
        assert torch.equal(rounded.float().double(), rounded)


def test_dyadic_round_rejects_non_positive():
    with pytest.raises(ValueError, match="positive"):
        dyadic_round(torch.tensor([0.0]), 8)


def test_dyadic_parts_are_exact_and_odd():
    values = torch.tensor([0.375, 12.0, -0.75, 0.0, 3.0 * 2**-30], dtype=torch.float64)
    mantissa, shift = dyadic_parts(values)
    assert mantissa.tolist() == [3, 3, -3, 0, 3]
    assert shift.tolist() == [3, -2, 2, 0, 30]


def test_exact_float_dtype():
    assert exact_float_dtype(24, "x") is torch.float32
    assert exact_float_dtype(25, "x") is torch.float64
    with pytest.raises(ValueError, match="state_bits=40"):
        exact_float_dtype(60, "state_bits=40")
    assert mantissa_bits(torch.float32) == 24
    assert mantissa_bits(torch.float64) == 53
    assert mantissa_bits(torch.float16) == 11
