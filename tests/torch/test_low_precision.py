"""float16 and bfloat16 on the CPU, for every time module (see docs/numerical-safety.md).

* outputs and states keep the input's dtype, spikes stay 0/1, states stay finite at the
  models' usual drive;
* a few steps below threshold agree with float64 to the precision of the dtype;
* the documented limits: bfloat16 loses increments below its resolution (a leaky
  integrator stalls short of its fixed point), float16 overflows past 65504 (a
  conductance-based layer driven hard), which anomaly mode reports.
"""

import pytest
import torch

import norse.torch as norse
from norse.torch.utils.anomaly import AnomalyError, detect_anomaly, named_tensors

LOW = [torch.bfloat16, torch.float16]
#: Relative error of a few Euler steps: a few roundings of 2^-8 (bfloat16), 2^-11.
TOLERANCE = {torch.bfloat16: 4e-2, torch.float16: 6e-3}


def _pair(cls, neurons, dtype):
    reference = neurons.build(cls, 3, 4, dtype=torch.float64, positive_weights=True)
    low = neurons.build(cls, 3, 4, dtype=dtype, positive_weights=True)
    low.load_state_dict(reference.state_dict())
    return reference, low


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_dtype_is_kept_and_spikes_are_binary(time_class, neurons, dtype):
    _, layer = _pair(time_class, neurons, dtype)
    generator = torch.Generator().manual_seed(0)
    scale = neurons.drive(time_class) / 4
    x = (scale * torch.rand(12, 2, 3, generator=generator)).to(dtype)
    out, state = layer(x)
    assert out.dtype == dtype
    if neurons.is_spiking(time_class):
        assert ((out == 0) | (out == 1)).all()
    for name, leaf in named_tensors(state):
        assert leaf.dtype == dtype, name
        assert torch.isfinite(leaf).all(), name


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_a_few_steps_agree_with_float64(time_class, neurons, dtype):
    reference, layer = _pair(time_class, neurons, dtype)
    generator = torch.Generator().manual_seed(1)
    # below threshold (no spike in float64), so that both runs follow the same branch
    x = 0.02 * neurons.drive(time_class) * torch.rand(3, 2, 3, generator=generator)
    out64, state64 = reference(x.double())
    out, state = layer(x.to(dtype))
    if neurons.is_spiking(time_class):
        assert out64.sum() == 0 and out.sum() == 0
    for (name, leaf), (_, expected) in zip(
        named_tensors(state), named_tensors(state64)
    ):
        scale = expected.abs().max().item() + 1e-3
        error = (leaf.double() - expected).abs().max().item()
        assert error <= TOLERANCE[dtype] * scale, (name, error, scale)


def test_bfloat16_loses_increments_below_its_resolution():
    """A leaky integrator approaches 1 by steps of 0.1 * (1 - v); in bfloat16 (8-bit
    significand, spacing 2^-8 just below 1) the step rounds away once it is smaller
    than half that spacing, so v stalls near 0.98; float32 gets within 1e-4."""
    layer = norse.LIBox()
    x = torch.ones(200, 1)
    _, state32 = layer(x)
    _, state16 = layer(x.bfloat16())
    assert state32.v.item() > 1 - 1e-4
    assert 0.95 < state16.v.float().item() < 0.99


def test_float16_overflow_is_reported_by_anomaly_mode():
    """float16 ends at 65504: a hard-driven conductance-based layer overflows there
    (bfloat16 and float32 have the range of float32)."""
    layer = norse.CobaLIFRecurrent(
        3, 4, input_weights=torch.full((4, 3), 50.0), autapses=True
    )
    x = torch.full((20, 1, 3), 40.0)
    _, state = layer.bfloat16()(x.bfloat16())
    assert all(torch.isfinite(leaf).all() for _, leaf in named_tensors(state))
    layer = layer.half()
    _, state = layer(x.half())
    assert not all(torch.isfinite(leaf).all() for _, leaf in named_tensors(state))
    with detect_anomaly():
        with pytest.raises(
            AnomalyError,
            match=r"CobaLIFRecurrent: state\.v is not finite .* time step 0",
        ):
            layer(x.half())
