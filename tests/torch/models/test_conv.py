"""ConvNet and ConvNet4: shapes, equality with the step-by-step network of Norse 1.1,
checkpoint names, gradients, errors."""

import pytest
import torch
import torch.nn.functional as F

from norse.torch.models import ConvNet as ExportedConvNet
from norse.torch.models.conv import ConvNet, ConvNet4
from norse.torch.module.leaky_integrator import LILinearCell
from norse.torch.module.lif import LIFCell


def _stepwise(model, x):
    """The forward pass of Norse 1.1: one time step after the other, with cells."""
    lif = [LIFCell(p=layer.p) for layer in (model.lif0, model.lif1, model.lif2)]
    out = LILinearCell(model.fc1.out_features, 10, p=model.out.p).to(x.dtype)
    out.input_weights.data.copy_(model.out.input_weights)
    s0 = s1 = s2 = so = None
    voltages = []
    for step in x:
        z = model.conv1(step)
        z, s0 = lif[0](z, s0)
        z = F.max_pool2d(z, 2, 2)
        z = 10 * model.conv2(z)
        z, s1 = lif[1](z, s1)
        z = F.max_pool2d(z, 2, 2)
        z = z.view(-1, model.fc1.in_features)
        z, s2 = lif[2](model.fc1(z), s2)
        v, so = out(F.relu(z), so)
        voltages.append(v)
    return torch.stack(voltages)


@pytest.mark.parametrize("cls", [ConvNet, ConvNet4])
def test_shape(cls):
    model = cls()
    out = model(torch.randn(3, 2, 1, 28, 28))
    assert out.shape == (3, 2, 10) and out.dtype == torch.float32


@pytest.mark.parametrize("cls", [ConvNet, ConvNet4])
def test_equals_stepwise_network(cls):
    torch.manual_seed(0)
    model = cls(num_channels=2, feature_size=16, dtype=torch.float64).double()
    # strong enough input that every layer spikes
    x = (torch.rand(12, 3, 2, 16, 16, dtype=torch.float64) < 0.5).double() * 4
    with torch.no_grad():
        model.fc1.weight.mul_(20)
    voltages = model(x)
    with torch.no_grad():
        z0, _ = model.lif0(model.conv1(x.flatten(0, 1)).unflatten(0, (12, 3)))
    assert z0.sum() > 0
    expected = _stepwise(model, x)
    assert expected.abs().sum() > 0
    torch.testing.assert_close(voltages, expected, rtol=1e-12, atol=1e-12)


def test_architecture_as_norse():
    net = ConvNet()
    assert (net.conv1.out_channels, net.conv2.out_channels, net.fc1.out_features) == (
        20,
        50,
        500,
    )
    assert net.fc1.in_features == 4 * 4 * 50 and net.features == 4
    net4 = ConvNet4(num_channels=3, feature_size=32, method="tanh")
    assert (net4.conv1.in_channels, net4.conv1.out_channels) == (3, 32)
    assert (net4.conv2.out_channels, net4.fc1.out_features) == (64, 1024)
    assert net4.fc1.in_features == 5 * 5 * 64
    assert float(net4.lif0.p.v_th) == pytest.approx(0.7)
    assert float(net4.lif1.p.v_th) == pytest.approx(0.7)
    assert float(net4.lif2.p.v_th) == 1.0
    assert all(
        layer.p.method == "tanh" and float(layer.p.alpha) == 100.0
        for layer in (net4.lif0, net4.lif1, net4.lif2)
    )
    assert net4.out.input_weights.shape == (10, 1024)


def test_loads_norse_checkpoint_names():
    """Norse 1.1 stores only the weights (its neuron parameters are plain attributes)."""
    source = ConvNet4()
    names = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]
    names += ["fc1.weight", "fc1.bias", "out.input_weights"]
    checkpoint = {
        name: tensor for name, tensor in source.state_dict().items() if name in names
    }
    assert len(checkpoint) == len(names)
    target = ConvNet4()
    target.load_state_dict(checkpoint, strict=True)
    torch.testing.assert_close(target.out.input_weights, source.out.input_weights)


def test_backward_reaches_every_weight():
    torch.manual_seed(0)
    model = ConvNet()
    with torch.no_grad():
        model.fc1.weight.mul_(20)
    x = (torch.rand(8, 2, 1, 28, 28) < 0.5).float() * 4
    model(x).max(0).values.sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert model.out.input_weights.grad.abs().sum() > 0
    assert model.conv1.weight.grad.abs().sum() > 0


def test_output_dtype_and_exports():
    import norse.torch.models as models

    assert ExportedConvNet is ConvNet and models.ConvNet4 is ConvNet4
    model = ConvNet(dtype=torch.float64)
    assert model(torch.zeros(1, 1, 1, 28, 28)).dtype == torch.float64


def test_errors():
    with pytest.raises(ValueError, match="feature_size must be at least 16"):
        ConvNet(feature_size=15)
    with pytest.raises(ValueError, match="num_channels must be a positive int"):
        ConvNet4(num_channels=0)
    with pytest.raises(ValueError, match="method"):
        ConvNet(method="nonsense")
    model = ConvNet()
    with pytest.raises(ValueError, match=r"\(T, batch, 1, H, W\)"):
        model(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="1 channels"):
        model(torch.zeros(2, 1, 3, 28, 28))
    with pytest.raises(ValueError, match="feature_size"):
        model(torch.zeros(2, 1, 1, 32, 32))
    with pytest.raises(ValueError, match="T >= 1"):
        model(torch.zeros(0, 1, 1, 28, 28))


def test_input_type_dtype_and_size_are_checked_before_the_convolutions():
    model = ConvNet()
    with pytest.raises(TypeError, match=r"ConvNet takes a tensor .*got list"):
        model([[0.0]])
    with pytest.raises(TypeError, match="dtype of ConvNet's weights, torch.float32"):
        model(torch.zeros(1, 1, 1, 28, 28, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 16x16 pixels"):
        model(torch.zeros(1, 1, 1, 12, 12))
