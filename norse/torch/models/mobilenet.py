"""MobileNetV2 (Sandler et al., 2018) lifted in time, as in Norse 1.1.

torchvision's MobileNetV2 with every ReLU6 replaced by a ``LIF`` layer and every
other layer applied to all time steps (``Lift``). Input ``(T, batch, 3, H, W)``;
output ``(T, batch, num_classes)``, the currents of the final linear layer. Every call
starts the neurons from rest. ``pretrained=True`` loads torchvision's ImageNet weights
(downloaded by ``torch.hub``; nothing is downloaded otherwise).

Difference to Norse 1.1: its blocks chained the LIF layers with ``torch.nn.Sequential``,
which fails on their ``(spikes, state)`` output; here they are ``SequentialState``
(same state-dict keys).

Example:
    >>> import torch
    >>> from norse.torch.models import mobilenet_v2
    >>> model = mobilenet_v2(num_classes=10, width_mult=0.25).eval()
    >>> model(torch.zeros(2, 1, 3, 32, 32)).shape  # (T, batch, classes)
    torch.Size([2, 1, 10])
"""

from typing import Callable, List, Optional

import torch
from torch import nn

from norse.torch.models._checks import check_image_sequence, first_conv
from norse.torch.models.vgg import load_torchvision_state_dict
from norse.torch.module.lif import LIF
from norse.torch.module.lift import Lift
from norse.torch.module.neuron import check_sizes
from norse.torch.module.sequential import SequentialState

__all__ = ["MobileNetV2", "mobilenet_v2"]

model_urls = {
    "mobilenet_v2": "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
}


def _make_divisible(v: float, divisor: int) -> int:
    """``v`` rounded to a multiple of ``divisor``, never more than 10% below ``v``."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_setting(setting) -> None:
    """Rows ``[t, c, n, s]``: expansion t > 0, channels c >= 1, repeats n >= 0,
    stride s of 1 or 2."""
    rows = setting if isinstance(setting, (list, tuple)) else None
    valid = bool(rows) and all(
        isinstance(row, (list, tuple))
        and len(row) == 4
        and isinstance(row[0], (int, float))
        and not isinstance(row[0], bool)
        and row[0] > 0
        and _is_int(row[1])
        and row[1] >= 1
        and _is_int(row[2])
        and row[2] >= 0
        and row[3] in (1, 2)
        and _is_int(row[3])
        for row in rows
    )
    if not valid:
        raise ValueError(
            "inverted_residual_setting must be a non-empty list of [t, c, n, s] rows "
            "(expansion t > 0, channels c >= 1, repeats n >= 0, stride s 1 or 2), got "
            f"{setting!r}"
        )


class ConvBNReLU(SequentialState):
    """Convolution, batch norm and a LIF layer (ReLU6 in the non-spiking network)."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        norm_layer: Callable[[int], nn.Module],
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
    ):
        padding = (kernel_size - 1) // 2
        super().__init__(
            Lift(
                nn.Conv2d(
                    in_planes,
                    out_planes,
                    kernel_size,
                    stride,
                    padding,
                    groups=groups,
                    bias=False,
                )
            ),
            Lift(norm_layer(out_planes)),
            LIF(),
        )


class InvertedResidual(nn.Module):
    """Expansion (1x1), depth-wise 3x3 convolution and projection (1x1), with a skip
    connection when the shape is kept."""

    def __init__(
        self,
        inp: int,
        oup: int,
        stride: int,
        expand_ratio: float,
        norm_layer: Callable[[int], nn.Module],
    ):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: List[nn.Module] = []
        if expand_ratio != 1:
            layers.append(
                ConvBNReLU(inp, hidden_dim, kernel_size=1, norm_layer=norm_layer)
            )
        layers += [
            ConvBNReLU(
                hidden_dim,
                hidden_dim,
                stride=stride,
                groups=hidden_dim,
                norm_layer=norm_layer,
            ),
            Lift(nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False)),
            Lift(norm_layer(oup)),
        ]
        self.conv = SequentialState(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.conv(x)
        return x + out if self.use_res_connect else out


class MobileNetV2(nn.Module):
    """MobileNetV2 lifted in time.

    Parameters:
        num_classes (int): size of the output
        width_mult (float): scales the number of channels of every layer
        inverted_residual_setting: rows ``[t, c, n, s]`` (expansion, channels, repeats,
            stride); torchvision's by default
        round_nearest (int): channel counts are rounded to multiples of this
        block: the residual block class (``InvertedResidual``)
        norm_layer: the normalisation layer class (``torch.nn.BatchNorm2d``)
    """

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        inverted_residual_setting: Optional[List[List[int]]] = None,
        round_nearest: int = 8,
        block: Optional[Callable[..., nn.Module]] = None,
        norm_layer: Optional[Callable[[int], nn.Module]] = None,
    ):
        super().__init__()
        block = block if block is not None else InvertedResidual
        norm_layer = norm_layer if norm_layer is not None else nn.BatchNorm2d
        if inverted_residual_setting is None:
            inverted_residual_setting = [
                [1, 16, 1, 1],
                [6, 24, 2, 2],
                [6, 32, 3, 2],
                [6, 64, 4, 2],
                [6, 96, 3, 1],
                [6, 160, 3, 2],
                [6, 320, 1, 1],
            ]
        _check_setting(inverted_residual_setting)
        check_sizes(num_classes=num_classes, round_nearest=round_nearest)
        if not (
            isinstance(width_mult, (int, float))
            and not isinstance(width_mult, bool)
            and 0 < width_mult < float("inf")
        ):
            raise ValueError(
                f"width_mult must be a positive number, got {width_mult!r}"
            )
        input_channel = _make_divisible(32 * width_mult, round_nearest)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: List[nn.Module] = [
            ConvBNReLU(3, input_channel, stride=2, norm_layer=norm_layer)
        ]
        for t, c, n, s in inverted_residual_setting:
            output_channel = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(
                    block(
                        input_channel,
                        output_channel,
                        s if i == 0 else 1,
                        expand_ratio=t,
                        norm_layer=norm_layer,
                    )
                )
                input_channel = output_channel
        features.append(
            ConvBNReLU(
                input_channel, self.last_channel, kernel_size=1, norm_layer=norm_layer
            )
        )
        self.features = SequentialState(*features)
        self.pool = Lift(nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Sequential(
            Lift(nn.Dropout(0.2)), Lift(nn.Linear(self.last_channel, num_classes))
        )
        # torchvision's initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, batch, 3, H, W)`` images to ``(T, batch, num_classes)``."""
        check_image_sequence(x, "MobileNetV2", first_conv(self.features))
        x, _ = self.features(x)
        x = self.pool(x).flatten(2)  # (T, batch, channels), also for an empty batch
        return self.classifier(x)


def mobilenet_v2(
    pretrained: bool = False, progress: bool = True, **kwargs
) -> MobileNetV2:
    """Builds a ``MobileNetV2``; ``kwargs`` go to the class."""
    model = MobileNetV2(**kwargs)
    if pretrained:
        state_dict = torch.hub.load_state_dict_from_url(
            model_urls["mobilenet_v2"], progress=progress
        )
        load_torchvision_state_dict(model, state_dict)
    return model
