"""Ready-made spiking networks."""

from norse.torch.models.conv import ConvNet, ConvNet4

# VGG and MobileNetV2 lifted in time (weights optional, downloaded only on request)
from norse.torch.models.mobilenet import MobileNetV2, mobilenet_v2
from norse.torch.models.vgg import (
    VGG,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
)
