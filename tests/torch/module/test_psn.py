"""PSN, MaskedPSN, SlidingPSN and SlidingPSNCell layers."""

import math

import pytest
import torch

import norse.torch as norse
from norse.torch.functional.psn import (
    PSNParameters,
    SlidingPSNState,
    masked_psn_mask,
    psn_feed_forward,
)


def test_psn_initialisation_and_forward():
    torch.manual_seed(0)
    layer = norse.PSN(T=6)
    assert layer.weight.shape == (6, 6) and torch.equal(layer.bias, -torch.ones(6))
    # Kaiming-uniform with a = sqrt(5): bound 1 / sqrt(fan_in)
    assert layer.weight.abs().max() <= 1 / math.sqrt(6)
    x = torch.randn(6, 2, 3, 4)
    z, state = layer(x)
    assert state is None and z.shape == x.shape
    assert torch.equal(z, psn_feed_forward(x, layer.weight, layer.bias, layer.p))


def test_psn_trains_its_weights_and_bias():
    layer = norse.PSN(T=4, p=PSNParameters(alpha=torch.tensor(2.0)))
    z, _ = layer(torch.randn(4, 8, 5) * 3)
    z.sum().backward()
    assert layer.weight.grad.abs().sum() > 0 and layer.bias.grad.abs().sum() > 0


def test_psn_errors_name_the_argument():
    with pytest.raises(ValueError, match="T must be a positive int"):
        norse.PSN(T=0)
    with pytest.raises(ValueError, match="p.method must be one of"):
        norse.PSN(T=3, p=PSNParameters(method="nope"))
    layer = norse.PSN(T=3)
    with pytest.raises(ValueError, match="must have T=3 time steps"):
        layer(torch.ones(4, 2))
    with pytest.raises(ValueError, match="state must be None"):
        layer(torch.ones(3, 2), torch.ones(2))


def test_masked_psn_lambda_blends_the_band():
    layer = norse.MaskedPSN(k=2, T=5)
    assert float(layer.lambda_) == 0.0
    torch.testing.assert_close(layer.masked_weight(), layer.weight)
    layer.lambda_ = 1.0
    expected = layer.weight * masked_psn_mask(5, 2)
    torch.testing.assert_close(layer.masked_weight(), expected)
    layer.lambda_ = 0.5
    torch.testing.assert_close(
        layer.masked_weight(), layer.weight * (0.5 * masked_psn_mask(5, 2) + 0.5)
    )
    assert float(layer.state_dict()["_lambda"]) == 0.5
    with pytest.raises(ValueError, match=r"lambda_ must lie in \[0, 1\]"):
        layer.lambda_ = 1.5


def test_masked_psn_forward_uses_the_masked_weight():
    layer = norse.MaskedPSN(k=3, T=7, lambda_init=1.0).double()
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    z, state = layer(x)
    assert state is None
    assert torch.equal(
        z,
        psn_feed_forward(
            x,
            layer.weight * masked_psn_mask(7, 3, dtype=torch.float64),
            layer.bias,
            layer.p,
        ),
    )


def test_sliding_psn_initialisation():
    layer = norse.SlidingPSN(k=4)
    torch.testing.assert_close(
        layer.weight.detach(), torch.tensor([0.125, 0.25, 0.5, 1.0])
    )
    assert layer.bias.item() == -1.0
    torch.manual_seed(0)
    kaiming = norse.SlidingPSN(k=4, exp_init=False)
    assert kaiming.weight.abs().max() <= 1 / math.sqrt(4)


def test_sliding_psn_cell_equals_time_module():
    torch.manual_seed(0)
    layer = norse.SlidingPSN(k=3, exp_init=False)
    with torch.no_grad():
        layer.weight.add_(0.5)
    cell = norse.SlidingPSNCell(k=3)
    cell.load_state_dict(layer.state_dict())
    x = torch.randn(12, 2, 5) + 0.8
    z, state = layer(x)
    assert isinstance(state, SlidingPSNState) and state.history.shape == (2, 2, 5)
    cell_state, outputs = None, []
    for x_t in x:
        out, cell_state = cell(x_t, cell_state)
        outputs.append(out)
    assert torch.equal(torch.stack(outputs), z) and z.sum() > 0
    # a sequence in two pieces
    first, state = layer(x[:5])
    second, _ = layer(x[5:], state)
    assert torch.equal(torch.cat((first, second)), z)


def test_sliding_psn_errors():
    with pytest.raises(ValueError, match="k must be a positive int"):
        norse.SlidingPSN(k=0)
    layer = norse.SlidingPSN(k=2)
    with pytest.raises(TypeError, match="state must be a SlidingPSNState"):
        layer(torch.ones(3, 2), (torch.zeros(1, 2),))
    with pytest.raises(
        ValueError, match=r"input_tensor must have shape \(T, batch, \.\.\.\)"
    ):
        layer(torch.ones(3))


def test_psn_layers_in_sequential_state():
    model = norse.SequentialState(
        torch.nn.Linear(4, 6),
        norse.SlidingPSN(k=2),
        torch.nn.Linear(6, 6),
        norse.MaskedPSN(k=2, T=10),
        torch.nn.Linear(6, 3),
        norse.PSN(T=10),
    )
    out, states = model(torch.randn(10, 2, 4))
    assert out.shape == (10, 2, 3)
    assert isinstance(states[1], SlidingPSNState) and states[3] is None
    out.sum().backward()
    assert model[0].weight.grad is not None
