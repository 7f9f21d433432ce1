"""VGG lifted in time: torchvision's architecture, spiking, and its weights load."""

import pytest
import torch

import norse.torch as norse
from norse.torch.models import vgg

# parameter counts of torchvision's VGG networks (1000 classes)
TORCHVISION_PARAMETERS = {
    "vgg11": 132_863_336,
    "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248,
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMETERS))
def test_same_layers_as_torchvision(name):
    with torch.device("meta"):  # no memory, no initialisation cost
        model = getattr(vgg, name)(init_weights=False)
    count = sum(p.numel() for p in model.parameters())
    assert count == TORCHVISION_PARAMETERS[name]
    lifs = [m for m in model.modules() if isinstance(m, norse.LIF)]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(lifs) == len(convs) + 2  # one per convolution, two in the classifier
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == (
        name.endswith("_bn")
    )


def _tiny_vgg(**kwargs):
    return vgg.vgg11(num_classes=5, hidden_size=16, pool_size=1, **kwargs)


def test_forward_spikes():
    torch.manual_seed(0)
    model = _tiny_vgg()
    images = torch.rand(3, 2, 3, 32, 32) * 8  # (T, batch, C, H, W)
    spikes = []
    model.features[1].register_forward_hook(lambda m, i, o: spikes.append(o[0]))
    output = model(images)
    assert output.shape == (3, 2, 5)
    assert spikes[0].sum() > 0  # the first LIF layer fires


def test_gradients_reach_the_first_convolution():
    # a shallow VGG: in deep untrained ones the spikes (and surrogate gradients) die
    # out after a few layers, as in any untuned deep SNN
    torch.manual_seed(0)
    model = vgg.VGG(vgg.make_layers([16, "M", 512]), num_classes=5, hidden_size=16)
    output = model(torch.rand(4, 2, 3, 16, 16) * 8)
    output.sum().backward()
    assert model.features[0].lifted_module.weight.grad.abs().sum() > 0


def test_batch_norm_variant_in_eval_mode():
    model = vgg.vgg13_bn(num_classes=3, hidden_size=8, pool_size=1).eval()
    output = model(torch.rand(2, 1, 3, 32, 32))
    assert output.shape == (2, 1, 3) and torch.isfinite(output).all()


def _torchvision_style(model):
    """The state dict a non-spiking torchvision model with the same layers has."""
    return {
        key.replace("lifted_module.", ""): value.clone()
        for key, value in model.state_dict().items()
        if ".params." not in key
    }


def _small_vgg():
    return vgg.VGG(vgg.make_layers([8, "M", 512]), num_classes=5, hidden_size=16)


def test_torchvision_weights_load():
    source, target = _small_vgg().eval(), _small_vgg().eval()  # eval: no dropout
    vgg.load_torchvision_state_dict(target, _torchvision_style(source))
    images = torch.rand(2, 1, 3, 8, 8) * 8
    torch.testing.assert_close(target(images), source(images))


def test_pretrained_loads_torchvisions_file(monkeypatch):
    source = _tiny_vgg()
    urls = []

    def fake_download(url, progress=True):  # torch.hub would download the file
        urls.append(url)
        return _torchvision_style(source)

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    model = vgg.vgg11(pretrained=True, num_classes=5, hidden_size=16, pool_size=1)
    assert urls == [vgg.model_urls["vgg11"]]
    loaded = model.state_dict()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(loaded[key], value)


def test_exported_from_norse_torch_models():
    from norse.torch import models

    for name in ["VGG", "vgg11", "vgg11_bn", "vgg16", "vgg19_bn"]:
        assert getattr(models, name) is getattr(vgg, name)


def test_clear_errors():
    with pytest.raises(ValueError, match=r"\(T, batch, channels, height, width\)"):
        _tiny_vgg()(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="cfg entries"):
        vgg.make_layers([64, "X"])
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        vgg.VGG(vgg.make_layers([8]), hidden_size=0)


def test_input_channels_dtype_and_size_are_checked():
    model = vgg.VGG(vgg.make_layers([512, "M", "M"]), num_classes=2, hidden_size=4)
    with pytest.raises(ValueError, match="3 channels in dimension 2"):
        model(torch.rand(1, 1, 4, 8, 8))
    with pytest.raises(ValueError, match="at least 4x4 pixels"):  # two poolings
        model(torch.rand(1, 1, 3, 2, 2))
    with pytest.raises(TypeError, match="dtype of VGG's weights"):
        model(torch.rand(1, 1, 3, 8, 8).half())
    with pytest.raises(TypeError, match="VGG takes a tensor"):
        model(None)
