"""The integer-only network reproduces the fake-quantised float network spike for spike:
random networks, random inputs, many steps, every layer compared exactly."""

import pytest
import torch

import norse.torch as norse
from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.lif import LIFParameters
from norse.torch.quantization import (
    IntegerNetwork,
    QuantizationConfig,
    quantize,
    set_state_quantization,
    to_integer,
)


def _random_parameters(generator: torch.Generator, shape=()):
    """LIF parameters with random time constants (dt * tau_inv in [0.05, 0.6])."""

    def uniform(low, high):
        return low + (high - low) * torch.rand(shape, generator=generator)

    return LIFParameters(
        tau_syn_inv=uniform(50.0, 600.0),
        tau_mem_inv=uniform(50.0, 300.0),
        v_leak=uniform(-0.2, 0.1),
        v_th=uniform(0.4, 1.2),
        v_reset=uniform(-0.3, 0.0),
        alpha=torch.tensor(20.0),
    )


def _time_network(seed: int) -> torch.nn.Module:
    """A random conv + linear network over time (time modules and Lift)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    channels = int(torch.randint(2, 6, (1,), generator=generator))
    hidden = int(torch.randint(5, 20, (1,), generator=generator))
    model = norse.SequentialState(
        norse.Lift(torch.nn.Conv2d(2, channels, 3, padding=1)),
        norse.LIF(_random_parameters(generator)),
        norse.Lift(torch.nn.MaxPool2d(2)),
        torch.nn.Flatten(2),
        norse.Lift(torch.nn.Linear(channels * 16, hidden)),
        # per-neuron parameters
        norse.LIF(_random_parameters(generator, (hidden,))),
        norse.Lift(torch.nn.Linear(hidden, 3, bias=False)),
        norse.LI(LIParameters(tau_syn_inv=torch.tensor(300.0))),
    )
    with torch.no_grad():
        model[0].lifted_module.weight.mul_(3.0)
        model[4].lifted_module.weight.mul_(5.0)
    return model


def _cell_network(seed: int) -> torch.nn.Module:
    """A random network of cells, called once per step; ends in spikes."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = norse.SequentialState(
        torch.nn.Linear(6, 12),
        norse.LIFCell(_random_parameters(generator)),
        torch.nn.Linear(12, 12),
        norse.LICell(LIParameters(tau_mem_inv=torch.tensor(300.0))),
        torch.nn.Linear(12, 4),
        norse.LIFCell(_random_parameters(generator)),
    )
    with torch.no_grad():
        model[0].weight.mul_(2.0)
        model[4].weight.mul_(4.0)
    return model


def _assert_identical(float_outputs, integer_outputs, integer: IntegerNetwork):
    assert len(float_outputs) == len(integer_outputs) == len(integer.formats)
    for index, (value, ints, fmt) in enumerate(
        zip(float_outputs, integer_outputs, integer.formats)
    ):
        assert not ints.is_floating_point(), index
        expected = ints.double() * fmt.scale
        assert torch.equal(value.double(), expected), f"layer {index} differs"


CONFIGS = [
    QuantizationConfig(),
    QuantizationConfig(weight_bits=4, per_channel=False),
    QuantizationConfig(weight_bits=4, state_bits=10, decay_bits=5),
    QuantizationConfig(weight_bits=6, state_bits=24, decay_bits=16, scale_bits=8),
    QuantizationConfig(weight_bits=8, state_bits=8, decay_bits=8, headroom_bits=0),
]


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: f"w{c.weight_bits}s{c.state_bits}d{c.decay_bits}"
)
@pytest.mark.parametrize("seed", [0, 1])
def test_time_network_spike_for_spike(config, seed):
    model = _time_network(seed)
    x = torch.rand(80, 6, 2, 8, 8) * 2 - 0.5
    quantized = quantize(model, config, calibration_data=x[:40]).eval()
    integer = to_integer(quantized)
    quantized.return_hidden = integer.return_hidden = True
    with torch.no_grad():
        float_outputs, _ = quantized(x)
    integer_outputs, _ = integer(x)
    _assert_identical(float_outputs, integer_outputs, integer)
    # the comparison means something: the layers spike, not always
    for index in (1, 5):
        rate = float_outputs[index].mean()
        assert 0.005 < rate < 0.7, (index, rate)


@pytest.mark.parametrize("config", CONFIGS[:3], ids=["int8", "int4-tensor", "int4-s10"])
def test_cell_network_spike_for_spike_with_states(config):
    model = _cell_network(3)
    x = torch.rand(100, 5, 6) * 2
    quantized = quantize(model, config, calibration_data=x[:50])
    integer = to_integer(quantized)
    quantized.return_hidden = integer.return_hidden = True
    float_state, integer_state = None, None
    spikes = 0.0
    for step in x:
        with torch.no_grad():
            float_outputs, float_state = quantized(step, float_state)
        integer_outputs, integer_state = integer(step, integer_state)
        _assert_identical(float_outputs, integer_outputs, integer)
        for index in (1, 3, 5):
            fmt = integer.layers[index].format  # of the state
            assert torch.equal(
                float_state[index].v.double(),
                integer_state[index].v.double() * fmt.scale,
            )
        spikes += float_outputs[5].mean().item() / len(x)
    assert 0.01 < spikes < 0.7


def test_the_comparison_detects_one_changed_weight():
    model = _time_network(4)
    x = torch.rand(40, 4, 2, 8, 8) * 2
    quantized = quantize(model, calibration_data=x).eval()
    integer = to_integer(quantized)
    quantized.return_hidden = integer.return_hidden = True
    with torch.no_grad():
        integer.layers[0].weight[0, 0, 1, 1] += 1  # one LSB of one weight
        float_outputs, _ = quantized(x)
    integer_outputs, _ = integer(x)
    with pytest.raises(AssertionError, match="layer 0 differs"):
        _assert_identical(float_outputs, integer_outputs, integer)


def test_after_training_the_integer_network_follows():
    model = _time_network(5)
    x = torch.rand(30, 8, 2, 8, 8)
    quantized = quantize(model, QuantizationConfig(weight_bits=4), x).train()
    optimizer = torch.optim.SGD(quantized.parameters(), lr=0.5)
    for _ in range(3):
        output, _ = quantized(x)
        loss = output.max(0).values.pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    quantized.eval()
    integer = to_integer(quantized)
    with torch.no_grad():
        output, _ = quantized(x)
    assert torch.equal(
        output.double(), integer(x)[0].double() * integer.output_format.scale
    )


def test_integer_network_takes_integers_and_checks_them():
    model = _cell_network(6)
    x = torch.rand(20, 5, 6)
    integer = to_integer(quantize(model, calibration_data=x))
    step = x[0]
    a, _ = integer(step)
    b, _ = integer(integer.quantize_input(step))
    assert torch.equal(a, b)
    assert integer.to_float(a).dtype == torch.float32
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        integer([1, 2])
    with pytest.raises(ValueError, match="one entry per layer"):
        integer(step, [None])
    with pytest.raises(TypeError, match="integer tensor"):
        integer.layers[0](step)


def test_to_integer_refuses_what_it_cannot_run():
    model = _cell_network(7)
    x = torch.rand(10, 2, 6)
    quantized = quantize(model, calibration_data=x)
    set_state_quantization(quantized, False)
    with pytest.raises(ValueError, match="without state quantisation"):
        to_integer(quantized)
    with pytest.raises(ValueError, match="to_integer cannot convert layer 0"):
        to_integer(model)
    with pytest.raises(TypeError, match="SequentialState returned by quantize"):
        to_integer(torch.nn.Linear(2, 2))


def test_accumulator_overflow_is_refused():
    model = norse.SequentialState(torch.nn.Linear(20000, 2), norse.LIFCell())
    from norse.torch.quantization import FixedPoint

    config = QuantizationConfig(
        input_format=FixedPoint(16, 4), state_frac_bits=0, state_bits=24
    )
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    with pytest.raises(ValueError, match="32-bit accumulator"):
        to_integer(quantize(model, config))
