"""Ready-made spiking networks."""

from norse.torch.models.conv import ConvNet, ConvNet4
