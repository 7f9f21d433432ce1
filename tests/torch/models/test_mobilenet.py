"""MobileNetV2 lifted in time: torchvision's architecture, spiking, weights load."""

import pytest
import torch

import norse.torch as norse
from norse.torch.models import mobilenet
from norse.torch.models.vgg import load_torchvision_state_dict


def test_same_layers_as_torchvision():
    model = mobilenet.mobilenet_v2()  # 3.5 million parameters: cheap to build
    assert sum(p.numel() for p in model.parameters()) == 3_504_872  # torchvision's
    blocks = [m for m in model.features if isinstance(m, mobilenet.InvertedResidual)]
    assert len(blocks) == 17
    assert sum(b.use_res_connect for b in blocks) == 10
    assert not any(isinstance(m, torch.nn.ReLU6) for m in model.modules())
    assert sum(isinstance(m, norse.LIF) for m in model.modules()) == 35


def _tiny(seed=0):
    torch.manual_seed(seed)
    return mobilenet.mobilenet_v2(
        num_classes=4,
        width_mult=0.25,
        inverted_residual_setting=[[1, 16, 1, 1], [6, 24, 2, 2]],
    )


def test_forward_and_backward():
    model = _tiny()
    images = torch.rand(2, 2, 3, 8, 8) * 4
    output = model(images)
    assert output.shape == (2, 2, 4) and torch.isfinite(output).all()
    output.sum().backward()
    first = model.features[0][0].lifted_module.weight
    assert first.grad is not None and first.grad.abs().sum() > 0


def test_residual_block_adds_its_input():
    block = mobilenet.InvertedResidual(8, 8, 1, 6, torch.nn.BatchNorm2d).eval()
    x = torch.rand(2, 1, 8, 4, 4)
    inner, _ = block.conv(x)
    torch.testing.assert_close(block(x), x + inner)
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        mobilenet.InvertedResidual(8, 8, 3, 6, torch.nn.BatchNorm2d)


def test_torchvision_weights_load():
    source, target = _tiny(0).eval(), _tiny(1).eval()
    state = {
        k.replace("lifted_module.", ""): v
        for k, v in source.state_dict().items()
        if ".params." not in k
    }
    load_torchvision_state_dict(target, state)
    images = torch.rand(2, 1, 3, 16, 16) * 4
    torch.testing.assert_close(target(images), source(images))


def test_clear_errors():
    with pytest.raises(ValueError, match="inverted_residual_setting"):
        mobilenet.MobileNetV2(inverted_residual_setting=[[1, 16, 1]])
    with pytest.raises(ValueError, match=r"\(T, batch, channels, height, width\)"):
        _tiny()(torch.rand(2, 3, 16, 16))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 0}, "num_classes must be a positive int"),
        ({"round_nearest": 0}, "round_nearest must be a positive int"),
        ({"width_mult": -1.0}, "width_mult must be a positive number"),
        ({"width_mult": float("nan")}, "width_mult must be a positive number"),
        ({"inverted_residual_setting": [[1, 16, 1, 3]]}, "stride s 1 or 2"),
        ({"inverted_residual_setting": [[1, 0, 1, 1]]}, "channels c >= 1"),
        ({"inverted_residual_setting": [[0, 16, 1, 1]]}, "expansion t > 0"),
    ],
)
def test_constructor_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mobilenet.MobileNetV2(**kwargs)


def test_inputs_are_checked_and_an_empty_batch_works():
    model = _tiny().eval()
    with pytest.raises(ValueError, match="3 channels in dimension 2"):
        model(torch.rand(1, 1, 1, 8, 8))
    with pytest.raises(TypeError, match="dtype of MobileNetV2's weights"):
        model(torch.zeros(1, 1, 3, 8, 8, dtype=torch.int64))
    assert model(torch.rand(2, 0, 3, 8, 8)).shape == (2, 0, 4)
