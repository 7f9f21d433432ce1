"""VGG networks (Simonyan and Zisserman, 2015) lifted in time, as in Norse 1.1.

The layers of torchvision's VGG with every ReLU replaced by a ``LIF`` layer and
every other layer applied to all time steps (``Lift``). Input ``(T, batch, 3, H,
W)``; output ``(T, batch, num_classes)``: the currents of the last linear layer (decode
them over time, e.g. ``output.mean(0)`` or a leaky integrator). Every call starts the
neurons from rest.

``vgg11`` ... ``vgg19_bn`` build the eight configurations. ``pretrained=True`` loads
torchvision's ImageNet weights (downloaded by ``torch.hub``; nothing is downloaded
otherwise); ``load_torchvision_state_dict`` loads a state dict you already have.

Differences to Norse 1.1: its VGG chained the LIF layers with ``torch.nn.Sequential``,
which passes the ``(spikes, state)`` tuple on to the next layer and fails; here the
chains are ``SequentialState`` (same state-dict keys). ``hidden_size`` and
``pool_size`` (defaults 4096 and 7, torchvision's) make small variants possible.

Example:
    >>> import torch
    >>> from norse.torch.models import vgg11
    >>> model = vgg11(num_classes=10, hidden_size=64)
    >>> model(torch.zeros(2, 1, 3, 32, 32)).shape  # (T, batch, classes)
    torch.Size([2, 1, 10])
"""

from typing import Any, Dict, List, Mapping, Union

import torch
from torch import nn

from norse.torch.models._checks import check_image_sequence, first_conv
from norse.torch.module.lif import LIF
from norse.torch.module.lift import Lift
from norse.torch.module.neuron import check_sizes
from norse.torch.module.sequential import SequentialState

__all__ = [
    "VGG",
    "make_layers",
    "load_torchvision_state_dict",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
]

#: torchvision's ImageNet weights (used only with ``pretrained=True``)
model_urls = {
    "vgg11": "https://download.pytorch.org/models/vgg11-bbd30ac9.pth",
    "vgg13": "https://download.pytorch.org/models/vgg13-c768596a.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    "vgg11_bn": "https://download.pytorch.org/models/vgg11_bn-6002323d.pth",
    "vgg13_bn": "https://download.pytorch.org/models/vgg13_bn-abd245e5.pth",
    "vgg16_bn": "https://download.pytorch.org/models/vgg16_bn-6c64b313.pth",
    "vgg19_bn": "https://download.pytorch.org/models/vgg19_bn-c79401a0.pth",
}

#: channel counts of the convolutions, "M" for a 2x2 max pooling (configurations A, B,
#: D, E of the paper: VGG 11, 13, 16, 19)
cfgs: Dict[str, List[Union[int, str]]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"]
    + [512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"]
    + [512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """A VGG network lifted in time.

    Parameters:
        features (torch.nn.Module): the convolutional part (see ``make_layers``),
            ``(T, batch, 3, H, W) -> (T, batch, 512, h, w)``; may return
            ``(output, state)``
        num_classes (int): size of the output
        init_weights (bool): initialise as torchvision does (Kaiming normal for
            convolutions, N(0, 0.01) for linear layers, zero biases)
        hidden_size (int): width of the two hidden linear layers (4096 in VGG)
        pool_size (int): side of the adaptive average pooling before the classifier
    """

    def __init__(
        self,
        features: nn.Module,
        num_classes: int = 1000,
        init_weights: bool = True,
        hidden_size: int = 4096,
        pool_size: int = 7,
    ):
        super().__init__()
        check_sizes(
            num_classes=num_classes, hidden_size=hidden_size, pool_size=pool_size
        )
        self.features = features
        # every 2x2 max-pooling halves the images: they need 2**pools pixels a side
        pools = [m for m in features.modules() if isinstance(m, nn.MaxPool2d)]
        self._min_size = 2 ** len(pools)
        self.avgpool = Lift(nn.AdaptiveAvgPool2d((pool_size, pool_size)))
        self.classifier = SequentialState(
            Lift(nn.Linear(512 * pool_size * pool_size, hidden_size)),
            LIF(),
            Lift(nn.Dropout()),
            Lift(nn.Linear(hidden_size, hidden_size)),
            LIF(),
            Lift(nn.Dropout()),
            Lift(nn.Linear(hidden_size, num_classes)),
        )
        if init_weights:
            self._initialize_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, batch, 3, H, W)`` images to ``(T, batch, num_classes)``."""
        check_image_sequence(x, "VGG", first_conv(self.features), self._min_size)
        x = self.features(x)
        if isinstance(x, tuple):
            x = x[0]
        x = self.avgpool(x)
        x = torch.flatten(x, 2)
        x, _ = self.classifier(x)
        return x

    def _initialize_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)


def make_layers(
    cfg: List[Union[int, str]], batch_norm: bool = False, in_channels: int = 3
) -> SequentialState:
    """The convolutional part of a VGG: for each number ``v`` in ``cfg`` a 3x3
    convolution to ``v`` channels (then batch norm if ``batch_norm``) and a LIF layer;
    for each ``"M"`` a 2x2 max pooling. All on ``(T, batch, C, H, W)`` sequences."""
    layers: List[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(Lift(nn.MaxPool2d(kernel_size=2, stride=2)))
        elif isinstance(v, int) and v > 0:
            layers.append(Lift(nn.Conv2d(in_channels, v, kernel_size=3, padding=1)))
            if batch_norm:
                layers.append(Lift(nn.BatchNorm2d(v)))
            layers.append(LIF())
            in_channels = v
        else:
            raise ValueError(
                f"cfg entries must be positive channel counts or 'M', got {v!r}"
            )
    return SequentialState(*layers)


def load_torchvision_state_dict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True
) -> Any:
    """Loads the weights of the matching torchvision (non-spiking) network into the
    lifted ``model``: ``features.0.weight`` becomes ``features.0.lifted_module.weight``
    and so on (the neuron parameters keep their values)."""
    lifted = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        parts.insert(-1, "lifted_module")
        lifted[".".join(parts)] = value
    # the neuron parameters are not in torchvision's state dict: keep the model's
    for key, value in model.state_dict().items():
        if ".params." in f".{key}":
            lifted.setdefault(key, value)
    return model.load_state_dict(lifted, strict=strict)


def _vgg(
    arch: str, cfg: str, batch_norm: bool, pretrained: bool, progress: bool, **kwargs
) -> VGG:
    if pretrained:
        kwargs["init_weights"] = False
    model = VGG(make_layers(cfgs[cfg], batch_norm=batch_norm), **kwargs)
    if pretrained:
        state_dict = torch.hub.load_state_dict_from_url(
            model_urls[arch], progress=progress
        )
        load_torchvision_state_dict(model, state_dict)
    return model


def vgg11(pretrained: bool = False, progress: bool = True, **kwargs) -> VGG:
    """VGG 11 (configuration "A"); ``kwargs`` go to ``VGG``."""
    return _vgg("vgg11", "A", False, pretrained, progress, **kwargs)


def vgg11_bn(pretrained: bool = False, progress: bool = True, **kwargs) -> VGG:
    """VGG 11 with batch normalisation."""
    return _vgg("vgg11_bn", "A", True, pretrained, progress, **kwargs)


def vgg13(pretrained: bool = False, progress: bool = True, **kwargs) -> VGG:
    """VGG 13 (configuration "B")."""
    return _vgg("vgg13", "B", False, pretrained, progress, **kwargs)


def vgg13_bn(pretrained: bool = False, progress: bool = True, **kwargs) -> VGG:
    """VGG 13 with batch normalisation."""
    return _vgg("vgg13_bn", "B", True, pretrained, progress, **kwargs)


def vgg16(pretrained: bool = False, progress: bool = True, **kwargs) -> VGG:
    """VGG 16 (configuration "D")."""
    return _vgg("vgg16", "D", False, pretrained, progress, **kwargs)


def vgg16_bn(pretrained: bool = False, progress: bool = True, **kwargs) -> VGG:
    """VGG 16 with batch normalisation."""
    return _vgg("vgg16_bn", "D", True, pretrained, progress, **kwargs)


def vgg19(pretrained: bool = False, progress: bool = True, **kwargs) -> VGG:
    """VGG 19 (configuration "E")."""
    return _vgg("vgg19", "E", False, pretrained, progress, **kwargs)


def vgg19_bn(pretrained: bool = False, progress: bool = True, **kwargs) -> VGG:
    """VGG 19 with batch normalisation."""
    return _vgg("vgg19_bn", "E", True, pretrained, progress, **kwargs)
