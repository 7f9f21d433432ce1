"""Fake-quantised synapses: integer weights, dyadic scales, exact currents, gradients."""

import pytest
import torch

from norse.torch.quantization import SPIKES, FixedPoint, QuantConv2d, QuantLinear
from norse.torch.quantization.fixed_point import dyadic_parts, round_shift

STATE = FixedPoint(bits=16, frac_bits=10)


def _linear(weight_bits=8, per_channel=True, bias=True, seed=0, inputs=12, outputs=5):
    torch.manual_seed(seed)
    layer = torch.nn.Linear(inputs, outputs, bias=bias)
    with torch.no_grad():
        layer.weight.mul_(torch.linspace(0.2, 3.0, outputs).unsqueeze(1))
    quant = QuantLinear(layer, weight_bits=weight_bits, per_channel=per_channel)
    quant.input_format, quant.output_format = SPIKES, STATE
    return layer, quant


@pytest.mark.parametrize("weight_bits", [8, 4])
def test_per_channel_scales_are_dyadic_min_max_scales(weight_bits):
    layer, quant = _linear(weight_bits)
    qmax = 2 ** (weight_bits - 1) - 1
    scale = quant.weight_scales()
    expected = layer.weight.detach().abs().amax(1) / qmax
    assert torch.allclose(scale, expected, rtol=2**-16)
    mantissa, _ = dyadic_parts(scale.double())
    assert torch.all(mantissa.abs() < 2**16)
    ints = quant.integer_parameters()["weight"]
    assert ints.abs().max() == qmax
    assert torch.all(ints.abs().amax(1) >= qmax - 1)  # every channel uses its range


def test_per_tensor_scale_is_shared():
    layer, quant = _linear(4, per_channel=False)
    scale = quant.weight_scales()
    assert torch.all(scale == scale[0])
    assert torch.allclose(scale[0], layer.weight.detach().abs().max() / 7, rtol=2**-16)
    ints = quant.integer_parameters()["weight"]
    # the small channels get few levels with a shared scale
    assert ints[0].abs().max() < 3 and ints.abs().max() == 7


def test_integer_weights_reconstruct_the_weights():
    layer, quant = _linear(8)
    ints = quant.integer_parameters()
    error = ints["weight"] * ints["weight_scale"].unsqueeze(1) - layer.weight
    assert torch.all(error.abs() <= ints["weight_scale"].unsqueeze(1) / 2 + 1e-7)


def test_current_is_the_integer_formula():
    layer, quant = _linear(8, seed=3)
    x = (torch.rand(7, 12) > 0.5).float()
    ints = quant.integer_parameters()
    acc = x.long() @ ints["weight"].T + ints["bias"]
    expected = round_shift(acc * ints["multiplier"], ints["shift"])
    expected = expected.clamp(STATE.qmin, STATE.qmax)
    current = quant(x)
    assert torch.equal(current.double(), expected.double() * STATE.scale)
    # and close to the float layer
    reference = layer(x).detach()
    assert torch.allclose(current, reference, atol=0.05 * reference.abs().max().item())


def test_bias_is_in_accumulator_units():
    layer, quant = _linear(8, seed=4)
    ints = quant.integer_parameters()
    accumulator_unit = ints["weight_scale"].double()  # input LSB = 1 for spikes
    error = ints["bias"] * accumulator_unit - layer.bias.detach().double()
    assert torch.all(error.abs() <= accumulator_unit / 2)


def test_straight_through_gradients_equal_the_float_layer():
    layer, quant = _linear(8, seed=5)
    quant.output_format = FixedPoint(bits=24, frac_bits=12)  # no saturation
    x = (torch.rand(9, 12) > 0.3).float()
    target = torch.randn(9, 5)
    ((quant(x) - target) ** 2).sum().backward()
    ((layer(x) - target) ** 2).sum().backward()
    # the gradients flow through the rounding as if it were not there: they are those
    # of the float layer at the quantised weights, so close to the float ones
    assert torch.allclose(quant.weight.grad, layer.weight.grad, rtol=0.05, atol=0.3)
    assert torch.allclose(quant.bias.grad, layer.bias.grad, rtol=0.05, atol=0.3)


def test_input_gradient_is_zero_where_the_input_saturates():
    _, quant = _linear(8)
    quant.input_format = FixedPoint(bits=4, frac_bits=2, signed=False)  # [0, 3.75]
    x = torch.tensor([[0.5] * 6 + [10.0] * 6], requires_grad=True)
    quant(x).sum().backward()
    assert torch.all(x.grad[0, 6:] == 0) and torch.all(x.grad[0, :6] != 0)


def test_conv_folds_leading_dimensions_and_is_exact():
    torch.manual_seed(6)
    layer = torch.nn.Conv2d(3, 4, 3, padding=1, stride=2)
    quant = QuantConv2d(layer, weight_bits=4)
    quant.input_format = FixedPoint(bits=8, frac_bits=5)
    quant.output_format = STATE
    x = torch.randn(5, 2, 3, 9, 9)  # (T, batch, C, H, W)
    current = quant(x)
    assert current.shape == (5, 2, 4, 5, 5)
    ints = quant.integer_parameters()
    x_int = quant.input_format.to_integer(x).flatten(0, 1)
    acc = torch.nn.functional.conv2d(x_int, ints["weight"], None, 2, 1)
    acc = acc + ints["bias"].view(-1, 1, 1)
    y = round_shift(
        acc * ints["multiplier"].view(-1, 1, 1), ints["shift"].view(-1, 1, 1)
    )
    y = y.clamp(STATE.qmin, STATE.qmax).view(5, 2, 4, 5, 5)
    assert torch.equal(current.double(), y.double() * STATE.scale)


def test_large_accumulators_compute_in_float64_and_stay_exact():
    torch.manual_seed(7)
    layer = torch.nn.Linear(4096, 3, bias=False)
    quant = QuantLinear(layer, weight_bits=8)
    quant.input_format = FixedPoint(bits=12, frac_bits=4)  # |x_int| up to 2048
    quant.output_format = FixedPoint(bits=24, frac_bits=-4)
    assert quant.accumulator_bound() >= 2**24  # beyond float32's exact integers
    x = torch.full((2, 4096), 127.0)
    x[1] = -128.0
    ints = quant.integer_parameters()
    acc = quant.input_format.to_integer(x) @ ints["weight"].T
    expected = round_shift(acc * ints["multiplier"], ints["shift"])
    expected = expected.clamp(quant.output_format.qmin, quant.output_format.qmax)
    assert torch.equal(quant(x).double(), expected.double() * quant.output_format.scale)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(weight_bits=1), ValueError, "weight_bits must lie"),
        (dict(weight_bits=9), ValueError, "weight_bits must lie"),
        (dict(weight_bits=8, scale_bits=20), ValueError, "scale_bits must lie"),
        (dict(per_channel="yes"), TypeError, "per_channel must be a bool"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, message):
    with pytest.raises(error, match=message):
        QuantLinear(torch.nn.Linear(3, 2), **kwargs)


def test_wrong_layer_type_and_padding_mode():
    with pytest.raises(TypeError, match="torch.nn.Linear"):
        QuantLinear(torch.nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="padding_mode"):
        QuantConv2d(torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"))


def test_unconverted_layer_explains_itself():
    quant = QuantLinear(torch.nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match="quantize"):
        quant(torch.ones(1, 3))


def test_requantisation_kernel_equals_the_torch_operations(monkeypatch):
    from norse.torch.quantization import _kernels

    torch.manual_seed(8)
    layer = torch.nn.Conv2d(2, 3, 3)
    quant = QuantConv2d(layer, weight_bits=6)
    quant.input_format = FixedPoint(bits=8, frac_bits=4)
    quant.output_format = FixedPoint(bits=8, frac_bits=6)  # [-2, 2): some saturate
    x = torch.randn(4, 2, 7, 7) * 3
    results = []
    for available in (True, False):
        monkeypatch.setattr(_kernels, "AVAILABLE", available)
        quant.zero_grad()
        output = quant(x)
        (
            output
            * torch.randn(output.shape, generator=torch.Generator().manual_seed(0))
        ).sum().backward()
        results.append((output, quant.weight.grad.clone(), quant.bias.grad.clone()))
    kernel, reference = results
    assert torch.equal(kernel[0], reference[0])
    assert (kernel[0] == 2 - 2**-6).any() and (kernel[0] == -2).any()
    for got, expected in zip(kernel[1:], reference[1:]):
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5)
