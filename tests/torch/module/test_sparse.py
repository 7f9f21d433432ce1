import copy
import io

import pytest
import torch
import torch.nn.functional as F

import norse.torch as norse
from norse.torch.functional import sparse
from norse.torch.functional.sparse import is_column_major
from norse.torch.module.leaky_integrator import LILinearCell
from norse.torch.module.sparse import SpikeLinear


def spikes(shape, activity, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < activity).to(dtype)


def test_exported_and_a_linear():
    assert norse.SpikeLinear is SpikeLinear
    layer = SpikeLinear(6, 4)
    assert isinstance(layer, torch.nn.Linear)
    assert "method='auto'" in repr(layer) and "in_features=6" in repr(layer)


def test_same_initialisation_and_state_dict_as_linear():
    torch.manual_seed(3)
    linear = torch.nn.Linear(6, 4)
    torch.manual_seed(3)
    layer = SpikeLinear(6, 4, method="sparse")
    assert layer.state_dict().keys() == linear.state_dict().keys()
    for key, value in linear.state_dict().items():
        assert torch.equal(layer.state_dict()[key], value)
    assert is_column_major(layer.weight)
    assert SpikeLinear(6, 4, bias=False).bias is None


@pytest.mark.parametrize("shape", [(6,), (5, 6), (7, 5, 6), (0, 6)])
@pytest.mark.parametrize("method", ["auto", "sparse", "dense"])
def test_forward_equals_linear(shape, method, monkeypatch):
    monkeypatch.setattr(sparse, "MIN_SPARSE_WORK", 0)
    monkeypatch.setattr(sparse, "MIN_KERNEL_WORK", 0)
    layer = SpikeLinear(6, 4, method=method, dtype=torch.float64)
    linear = torch.nn.Linear(6, 4, dtype=torch.float64)
    linear.load_state_dict(layer.state_dict())
    x = spikes(shape, 0.1, torch.float64)
    torch.testing.assert_close(layer(x), linear(x))


def test_training_step_equals_linear():
    layer = SpikeLinear(12, 5, method="sparse", dtype=torch.float64)
    linear = torch.nn.Linear(12, 5, dtype=torch.float64)
    linear.load_state_dict(layer.state_dict())
    x = spikes((10, 3, 12), 0.1, torch.float64)
    for module in (layer, linear):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
        for _ in range(2):
            optimizer.zero_grad()
            (module(x) ** 2).sum().backward()
            optimizer.step()
    torch.testing.assert_close(layer.weight, linear.weight)
    torch.testing.assert_close(layer.bias, linear.bias)
    assert is_column_major(layer.weight)  # optimizer steps keep the layout
    torch.testing.assert_close(layer(x), linear(x))


def test_layout_survives_copies_moves_and_loading():
    layer = SpikeLinear(6, 4)
    assert is_column_major(copy.deepcopy(layer).weight)
    assert is_column_major(layer.double().weight)
    assert layer.weight.dtype == torch.float64
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    assert is_column_major(torch.load(buffer, weights_only=False).weight)
    other = SpikeLinear(6, 4, dtype=torch.float64)
    other.load_state_dict(torch.nn.Linear(6, 4, dtype=torch.float64).state_dict())
    assert is_column_major(other.weight)


def test_row_major_weight_still_correct():
    layer = SpikeLinear(6, 4, method="sparse")
    layer.weight = torch.nn.Parameter(torch.randn(4, 6))
    x = spikes((3, 6), 0.3)
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))


def test_from_linear():
    linear = torch.nn.Linear(6, 4, bias=False, dtype=torch.float64)
    layer = SpikeLinear.from_linear(linear, method="dense")
    assert layer.method == "dense" and layer.bias is None
    assert layer.weight.dtype == torch.float64 and is_column_major(layer.weight)
    assert torch.equal(layer.weight, linear.weight)
    with pytest.raises(TypeError, match="linear"):
        SpikeLinear.from_linear(torch.nn.Conv1d(1, 1, 1))


def test_errors():
    with pytest.raises(ValueError, match="method must be one of"):
        SpikeLinear(6, 4, method="csr")
    layer = SpikeLinear(6, 4)
    with pytest.raises(ValueError, match="in_features=6"):
        layer(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="dtype"):
        layer(torch.zeros(2, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="binary"):
        SpikeLinear(6, 4, method="sparse")(torch.full((2, 6), 0.5))


def test_li_linear_cell_keeps_norse_1_1_weights_column_major():
    torch.manual_seed(5)
    expected = torch.randn(3, 8) / 8**0.5
    torch.manual_seed(5)
    cell = LILinearCell(8, 3)
    assert torch.equal(cell.input_weights, expected)
    assert is_column_major(cell.input_weights)
    x = spikes((4, 8), 0.2)
    v, state = cell(x)
    i_jump = F.linear(x, expected)
    torch.testing.assert_close(v, 0.001 * 100.0 * i_jump)
    torch.testing.assert_close(state.i, i_jump - 0.001 * 200.0 * i_jump)
