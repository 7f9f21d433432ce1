import math

import pytest
import torch

from norse.torch.functional.encode import (
    constant_current_lif_encode,
    population_encode,
    spike_latency_lif_encode,
)
from norse.torch.functional.lif import LIFParameters
from norse.torch.module import encode
from norse.torch.module.lif import LIF, LIFRecurrent


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_norse_defaults():
    poisson = encode.PoissonEncoder(5)
    assert poisson.f_max == 100 and poisson.dt == 0.001
    assert encode.PoissonEncoderStep().f_max == 1000
    assert encode.SignedPoissonEncoder(5).f_max == 100
    assert encode.SignedPoissonEncoderStep().f_max == 1000
    encoder = encode.ConstantCurrentLIFEncoder(5)
    assert encoder.seq_length == 5 and encoder.dt == 0.001
    assert float(encoder.p.v_th) == 1.0 and float(encoder.p.tau_mem_inv) == 100.0
    assert encode.PopulationEncoder(4).scale is None


@pytest.mark.parametrize(
    "encoder, shape",
    [
        (encode.PoissonEncoder(9), (9, 3, 4)),
        (encode.PoissonEncoderStep(), (3, 4)),
        (encode.SignedPoissonEncoder(9), (9, 3, 4)),
        (encode.SignedPoissonEncoderStep(), (3, 4)),
        (encode.ConstantCurrentLIFEncoder(9), (9, 3, 4)),
        (encode.SpikeLatencyLIFEncoder(9), (9, 3, 4)),
        (encode.PopulationEncoder(5), (3, 4, 5)),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_and_dtypes(encoder, shape, dtype):
    out = encoder(torch.rand(3, 4, dtype=dtype) + 0.01)
    assert out.shape == shape and out.dtype == dtype


def test_poisson_encoders_with_a_generator_are_reproducible():
    x = torch.rand(6, 5)
    first = encode.PoissonEncoder(20, f_max=300, generator=_generator(3))(x)
    again = encode.PoissonEncoder(20, f_max=300, generator=_generator(3))(x)
    assert torch.equal(first, again)
    signed = encode.SignedPoissonEncoder(20, generator=_generator(1))(x - 0.5)
    assert torch.equal(
        signed, encode.SignedPoissonEncoder(20, generator=_generator(1))(x - 0.5)
    )
    assert torch.equal(
        encode.PoissonEncoderStep(generator=_generator(2))(x),
        encode.PoissonEncoderStep(generator=_generator(2))(x),
    )


def test_poisson_encoder_rate():
    steps = 20_000
    spikes = encode.PoissonEncoder(steps, f_max=250, generator=_generator(4))(
        torch.tensor([0.4])
    )
    probability = 0.1
    standard_error = math.sqrt(probability * (1 - probability) / steps)
    assert abs(spikes.mean().item() - probability) < 5 * standard_error


def test_tensor_f_max_is_a_buffer():
    encoder = encode.PoissonEncoder(3, f_max=torch.tensor([0.0, 1000.0]))
    assert "f_max" in dict(encoder.named_buffers())
    spikes = encoder(torch.ones(2))
    assert torch.equal(spikes, torch.tensor([[0.0, 1.0]] * 3))


def test_lif_encoders_match_the_functions():
    p = LIFParameters(v_th=torch.tensor(0.8))
    x = torch.tensor([0.5, 1.0, 2.0, 5.0])
    assert torch.equal(
        encode.ConstantCurrentLIFEncoder(30, p=p, dt=5e-4)(x),
        constant_current_lif_encode(x, 30, p=p, dt=5e-4),
    )
    assert torch.equal(
        encode.SpikeLatencyLIFEncoder(30, p=p, dt=5e-4)(x),
        spike_latency_lif_encode(x, 30, p=p, dt=5e-4),
    )


def test_constant_current_encoder_spike_count_matches_the_euler_period():
    # I = 2, a = 0.1: v_n = 2 (1 - 0.9^n) > 1 first at n* = 7 -> 14 spikes in 100 steps
    spikes = encode.ConstantCurrentLIFEncoder(100)(torch.tensor([2.0]))
    assert spikes.sum() == 100 // 7
    assert torch.nonzero(spikes[:, 0]).flatten().tolist() == list(range(6, 100, 7))


def test_spike_latency_lif_encoder_one_spike_per_input():
    spikes = encode.SpikeLatencyLIFEncoder(128)(1.1 * torch.ones(10))
    assert spikes.sum() == 10
    assert torch.all(spikes[22] == 1)  # 1.1 (1 - 0.9^n) > 1 first at n = 23


def test_lif_encoder_parameters_move_with_the_module():
    encoder = encode.ConstantCurrentLIFEncoder(
        10, p=LIFParameters(v_th=torch.tensor(0.5))
    )
    keys = {key.split(".")[-1] for key in encoder.state_dict()}
    assert {"v_th", "tau_mem_inv", "v_leak", "v_reset"} <= keys
    encoder = encoder.double()
    assert encoder.p.v_th.dtype == torch.float64
    restored = encode.ConstantCurrentLIFEncoder(10)
    restored.load_state_dict(encoder.float().state_dict())
    assert float(restored.p.v_th) == 0.5
    assert torch.equal(restored(torch.tensor([0.7])), encoder(torch.tensor([0.7])))


def test_lif_encoder_parameter_and_dt_validation():
    with pytest.raises(ValueError, match="tau_mem_inv"):
        encode.ConstantCurrentLIFEncoder(
            5, p=LIFParameters(tau_mem_inv=torch.tensor(float("nan")))
        )
    with pytest.raises(ValueError, match="method"):
        encode.SpikeLatencyLIFEncoder(5, p=LIFParameters(method="nope"))
    with pytest.raises(ValueError, match="dt"):
        encode.ConstantCurrentLIFEncoder(5, dt=0.0)
    with pytest.raises(ValueError, match="seq_length"):
        encode.SpikeLatencyLIFEncoder(0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: encode.PoissonEncoder(0),
        lambda: encode.SignedPoissonEncoder(-1),
        lambda: encode.PoissonEncoder(5, f_max=-1.0),
        lambda: encode.PoissonEncoderStep(dt=0.0),
        lambda: encode.SignedPoissonEncoderStep(f_max=float("inf")),
        lambda: encode.PopulationEncoder(0),
        lambda: encode.PopulationEncoder(3, scale=-2.0),
    ],
)
def test_construction_errors(make):
    with pytest.raises(ValueError):
        make()


def test_construction_type_errors():
    with pytest.raises(TypeError, match="seq_length"):
        encode.PoissonEncoder(2.5)
    with pytest.raises(TypeError, match="generator"):
        encode.PoissonEncoder(3, generator=42)
    with pytest.raises(TypeError, match="kernel"):
        encode.PopulationEncoder(3, kernel=1.0)


def test_forward_rejects_nan_and_non_tensors():
    with pytest.raises(ValueError, match="NaN"):
        encode.PoissonEncoder(3)(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="NaN"):
        encode.ConstantCurrentLIFEncoder(3)(torch.tensor([float("nan")]))
    with pytest.raises(TypeError, match="input_current"):
        encode.SpikeLatencyLIFEncoder(3)([1.0])


def test_spike_latency_encoder_after_constant_current():
    data = torch.as_tensor([[0, 100, 100], [100, 100, 100]])
    encoder = torch.nn.Sequential(
        encode.ConstantCurrentLIFEncoder(2), encode.SpikeLatencyEncoder()
    )
    expected = torch.zeros(2, 2, 3)
    expected[0] = torch.as_tensor([[0, 1, 1], [1, 1, 1]])
    assert torch.equal(encoder(data), expected)


def test_population_encoder():
    e1, e2 = math.exp(-0.125), math.exp(-0.5)
    actual = encode.PopulationEncoder(3)(torch.tensor([0.0, 0.5, 1.0]))
    expected = torch.tensor([[1, e1, e2], [e1, 1, e1], [e2, e1, 1]])
    assert torch.allclose(actual, expected)
    encoder = encode.PopulationEncoder(4, scale=torch.tensor(2.0))
    assert "scale" in dict(encoder.named_buffers())
    x = torch.tensor([0.3, 1.7])
    assert torch.equal(encoder(x), population_encode(x, 4, scale=2.0))


def test_encoders_feed_lif_layers_and_backpropagate():
    data = torch.randn(7, 5) + 10
    encoded = torch.nn.Sequential(
        encode.ConstantCurrentLIFEncoder(seq_length=20), encode.SpikeLatencyEncoder()
    )(data)
    layer = LIFRecurrent(5, 2)
    out, _ = layer(encoded)
    out.sum().backward()
    assert layer.input_weights.grad is not None
    spikes, state = torch.nn.Sequential(encode.PoissonEncoder(15, f_max=300), LIF())(
        torch.rand(4, 3)
    )
    assert spikes.shape == (15, 4, 3) and state.v.shape == (4, 3)


def test_reprs():
    assert "seq_length=4" in repr(encode.PoissonEncoder(4))
    assert "f_max=1000" in repr(encode.PoissonEncoderStep())
    assert "seq_length=4" in repr(encode.ConstantCurrentLIFEncoder(4))
    assert "out_features=3" in repr(encode.PopulationEncoder(3))
