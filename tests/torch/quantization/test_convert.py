"""Conversion of float networks: batch-norm folding, calibration, the converted chain,
quantisation-aware training and the errors that name the layer."""

import copy

import pytest
import torch

import norse.torch as norse
from norse.torch.functional.lif import LIFParameters
from norse.torch.quantization import (
    SPIKES,
    FixedPoint,
    QuantConv2d,
    QuantizationConfig,
    QuantLI,
    QuantLIF,
    QuantLinear,
    fold_batch_norm,
    quantize,
    quantized_layers,
    set_state_quantization,
)

P = LIFParameters(alpha=torch.tensor(20.0))


def _conv_network(seed=0):
    torch.manual_seed(seed)
    model = norse.SequentialState(
        norse.Lift(
            torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3), torch.nn.BatchNorm2d(6))
        ),
        norse.LIF(P),
        norse.Lift(torch.nn.MaxPool2d(2)),
        norse.Lift(torch.nn.Flatten()),
        norse.Lift(torch.nn.Linear(6 * 3 * 3, 4)),
        norse.LI(),
    )
    bn = model[0].lifted_module[1]
    with torch.no_grad():
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.1, 0.1)
    return model.eval()


@pytest.mark.parametrize("kind", ["linear", "conv", "conv-plain"])
def test_fold_batch_norm_computes_the_same(kind):
    torch.manual_seed(1)
    if kind == "linear":
        layer, bn, x = torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3), torch.randn(4, 5)
    else:
        layer = torch.nn.Conv2d(2, 3, 3, bias=kind == "conv")
        bn = torch.nn.BatchNorm2d(3, affine=kind == "conv")
        x = torch.randn(4, 2, 6, 6)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        if bn.affine:
            bn.weight.uniform_(0.5, 2)
            bn.bias.uniform_(-1, 1)
    bn.eval()
    folded = fold_batch_norm(layer, bn, gain=3.0)
    assert torch.allclose(folded(x), 3.0 * bn(layer(x)), atol=1e-5)
    assert folded is not layer and layer.bias is None or kind != "conv-plain"


def test_fold_batch_norm_errors():
    with pytest.raises(TypeError, match="layer must be"):
        fold_batch_norm(torch.nn.ReLU(), torch.nn.BatchNorm1d(2))
    with pytest.raises(TypeError, match="batch_norm must be"):
        fold_batch_norm(torch.nn.Linear(2, 2), torch.nn.ReLU())
    with pytest.raises(ValueError, match="running statistics"):
        fold_batch_norm(
            torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2, track_running_stats=False)
        )
    with pytest.raises(ValueError, match="3 features"):
        fold_batch_norm(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(3))


def test_quantize_replaces_the_layers_and_keeps_the_model():
    model = _conv_network()
    before = copy.deepcopy(model.state_dict())
    x = torch.rand(10, 8, 1, 8, 8)
    quantized = quantize(model, calibration_data=x)
    kinds = [
        type(layer.lifted_module if isinstance(layer, norse.Lift) else layer)
        for layer in quantized
    ]
    assert kinds == [
        QuantConv2d,
        QuantLIF,
        torch.nn.MaxPool2d,
        torch.nn.Flatten,
        QuantLinear,
        QuantLI,
    ]
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    conv, lif, _, _, linear, li = (
        layer.lifted_module if isinstance(layer, norse.Lift) else layer
        for layer in quantized
    )
    assert conv.output_format == lif.format and linear.output_format == li.format
    assert linear.input_format == SPIKES
    # images in [0, 1]: unsigned 8-bit input
    assert conv.input_format == FixedPoint(8, 7, signed=False)
    assert len(quantized_layers(quantized)) == 4


def test_int8_network_follows_the_float_network():
    model = _conv_network(2)
    x = torch.rand(20, 16, 1, 8, 8)
    quantized = quantize(model, calibration_data=x).eval()
    model.return_hidden = quantized.return_hidden = True
    with torch.no_grad():
        expected = model(x)[0]
        output = quantized(x)[0]
    # the currents are close, a few spikes near the threshold flip
    current_error = (output[0] - expected[0]).abs().max() / expected[0].abs().max()
    assert current_error < 0.01
    spikes, reference = output[1], expected[1]
    assert (spikes == reference).float().mean() > 0.99 and reference.mean() > 0.02
    readout_error = (output[-1] - expected[-1]).abs().mean() / expected[-1].abs().max()
    assert readout_error < 0.02


def test_calibrated_formats_hold_the_observed_values():
    model = _conv_network(3)
    x = torch.rand(20, 16, 1, 8, 8) * 2
    quantized = quantize(model, QuantizationConfig(headroom_bits=0), x)
    for layer in quantized_layers(quantized):
        if isinstance(layer, QuantLIF):
            fmt = layer.format
            largest = max(-layer.observer.min_val.item(), layer.observer.max_val.item())
            assert fmt.qmax * fmt.scale >= largest > fmt.qmax * fmt.scale / 2


def test_explicit_formats_need_no_calibration():
    model = norse.SequentialState(torch.nn.Linear(3, 4), norse.LIFCell(P))
    config = QuantizationConfig(
        state_frac_bits=10, input_format=FixedPoint(8, 4), decay_bits=6
    )
    quantized = quantize(model, config)
    spikes, _ = quantized(torch.ones(2, 3))
    assert spikes.shape == (2, 4)
    assert quantized[1].format == FixedPoint(16, 10)


def test_cell_networks_calibrate_step_by_step():
    torch.manual_seed(4)
    model = norse.SequentialState(torch.nn.Linear(3, 8), norse.LIFCell(P))
    x = torch.rand(30, 5, 3) * 4  # (T, batch, features)
    quantized = quantize(model, calibration_data=x)
    # the voltage builds up over the steps: the observer saw more than one step
    assert quantized[1].observer.max_val > model[0](x[0]).abs().max()


def _train(model, x, target, steps=40):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        output, _ = model(x)
        loss = ((output.max(0).values - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_quantisation_aware_training_learns_as_the_float_network():
    model = _conv_network(5)
    x = torch.rand(10, 32, 1, 8, 8)
    target = torch.nn.functional.one_hot(torch.randint(0, 4, (32,)), 4).float()
    quantized = quantize(model, QuantizationConfig(weight_bits=4), x).train()
    losses = _train(quantized, x, target)
    weight = quantized[0].lifted_module.weight
    assert weight.grad is not None and torch.any(weight.grad != 0)
    # the float network with its batch norm frozen (as the quantised one folds it)
    reference = _train(model.eval(), x, target)
    assert losses[-1] < 0.8 * losses[0]
    assert losses[-1] < 1.2 * reference[-1]


def test_state_quantisation_can_be_switched_off():
    model = _conv_network(6)
    x = torch.rand(10, 4, 1, 8, 8)
    quantized = quantize(model, calibration_data=x).eval()
    on, _ = quantized(x)
    set_state_quantization(quantized, False)
    off, _ = quantized(x)
    li = quantized[-1]
    assert not torch.equal(on, off)  # off the grid
    assert torch.allclose(on, off, atol=50 * li.format.scale)
    with pytest.raises(TypeError, match="enabled must be a bool"):
        set_state_quantization(quantized, 1)


@pytest.mark.parametrize(
    "model, message",
    [
        (
            norse.SequentialState(torch.nn.Linear(2, 2), torch.nn.ReLU(), norse.LIF()),
            "layer 1 \\(ReLU\\)",
        ),
        (
            norse.SequentialState(torch.nn.BatchNorm1d(2), norse.LIFCell()),
            "layer 0 \\(BatchNorm1d\\).*folded",
        ),
        (
            norse.SequentialState(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)),
            "no LIF or LI",
        ),
        (
            norse.SequentialState(
                torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), norse.LIFCell()
            ),
            "layer 0 \\(QuantLinear\\) must feed a LIF or LI layer",
        ),
        (norse.SequentialState(norse.LIFBoxCell()), "layer 0 \\(LIFBoxCell\\)"),
        (
            norse.SequentialState(torch.nn.Linear(2, 2), torch.nn.Dropout()),
            "layer 1 \\(Dropout\\)",
        ),
    ],
)
def test_unsupported_networks_name_the_layer(model, message):
    with pytest.raises(ValueError, match=message):
        quantize(model, calibration_data=torch.ones(3, 2, 2))


def test_missing_formats_and_bad_arguments():
    model = norse.SequentialState(torch.nn.Linear(2, 2), norse.LIFCell())
    with pytest.raises(ValueError, match="calibration_data or"):
        quantize(model)
    with pytest.raises(ValueError, match="input format"):
        quantize(model, QuantizationConfig(state_frac_bits=8))
    with pytest.raises(TypeError, match="config must be"):
        quantize(model, {"weight_bits": 8})
    with pytest.raises(TypeError, match="calibration_data must be"):
        quantize(model, calibration_data=[1.0])
    with pytest.raises(TypeError, match="model must be"):
        quantize("model")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(weight_bits=1), "weight_bits must lie"),
        (dict(weight_bits=4, scale_bits=22), "scale_bits must lie"),
        (dict(state_bits=32), "state_bits must lie"),
        (dict(decay_bits=40), "decay_bits must lie"),
        (dict(state_frac_bits=200), "frac_bits must lie"),
        (dict(input_format=8), "input_format must be a FixedPoint"),
        (dict(per_channel=None), "per_channel must be a bool"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        QuantizationConfig(**kwargs)
