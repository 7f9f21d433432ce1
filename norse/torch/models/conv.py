"""Convolutional spiking networks for small images (MNIST-like), as in Norse 1.1.

Both networks map a sequence of images ``(T, batch, num_channels, feature_size,
feature_size)`` to the read-out voltages ``(T, batch, 10)`` of ten leaky integrators:

.. code-block:: text

    conv1 (5x5) -> LIF -> max-pool 2 -> 10 * conv2 (5x5) -> LIF -> max-pool 2
    -> flatten -> fc1 -> LIF -> ReLU -> linear weights -> leaky integrator (LI)

A typical classifier takes the maximum voltage over time,
``voltages.max(0).values``, as the class scores.

Every call starts all neurons from rest (``v = v_leak``, no current), as in Norse 1.1.

The convolutions, poolings and linear layers process all time steps in one call (time
folded into the batch), and the neuron layers are time modules (:class:`.LIF`, a
leaky integrator), so only the neuron dynamics step through time. This computes
exactly what the step-by-step network of Norse 1.1 computes (same layers, parameters
and update order), just faster. The difference to Norse 1.1 visible from outside is
that ``lif0``, ``lif1``, ``lif2`` are :class:`.LIF` modules instead of ``LIFCell`` and
``out`` takes a whole sequence; the names and shapes of all weights are unchanged, so
Norse 1.1 checkpoints load.
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.lif import LIFParameters
from norse.torch.functional.lift import apply_folded
from norse.torch.models._checks import check_image_sequence
from norse.torch.module.leaky_integrator import LI
from norse.torch.module.lif import LIF
from norse.torch.module.neuron import check_sizes


class _LILinearReadout(LI):
    """The time form of ``LILinearCell``: ``input_weights`` then a leaky integrator.

    ``li_step`` adds ``input @ input_weights.T`` to the synaptic current; computing that
    product for all steps first and feeding it to :class:`.LI` is the same update.
    Input ``(T, batch, input_size)``; voltages ``(T, batch, hidden_size)``.
    """

    def __init__(self, input_size: int, hidden_size: int, p=LIParameters(), dt=0.001):
        super().__init__(p=p, dt=dt)
        # Initialised as LILinearCell's weights: N(0, 1 / input_size).
        weights = torch.randn(hidden_size, input_size) / input_size**0.5
        self.input_weights = torch.nn.Parameter(weights)

    def extra_repr(self) -> str:
        hidden_size, input_size = self.input_weights.shape
        return f"input_size={input_size}, hidden_size={hidden_size}, dt={self.dt}"

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[object] = None
    ) -> Tuple[torch.Tensor, object]:
        return super().forward(F.linear(input_tensor, self.input_weights), state)


def _max_pool(images: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(images, 2, 2)


class _ConvLIFNet(torch.nn.Module):
    """The architecture shared by :class:`ConvNet` and :class:`ConvNet4`; subclasses
    set the channels of the two convolutions, the hidden LIF layer's size and the
    threshold of the convolutional LIF layers (``None``: the default 1.0)."""

    _channels: Tuple[int, int]
    _hidden: int
    _conv_v_th: Optional[float]

    def __init__(
        self,
        num_channels: int = 1,
        feature_size: int = 28,
        method: str = "super",
        dtype: torch.dtype = torch.float,
    ):
        super().__init__()
        check_sizes(num_channels=num_channels, feature_size=feature_size)
        # Each 5x5 convolution (no padding) removes 4 pixels, each pooling halves.
        self.features = int(((feature_size - 4) / 2 - 4) / 2)
        if self.features < 1:
            raise ValueError(
                f"feature_size must be at least 16 (two 5x5 convolutions and two 2x2 "
                f"poolings leave no pixel otherwise), got {feature_size}"
            )
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"dtype must be a torch.dtype, got {dtype!r}")
        channels, hidden = self._channels, self._hidden
        self.conv1 = torch.nn.Conv2d(num_channels, channels[0], 5, 1)
        self.conv2 = torch.nn.Conv2d(channels[0], channels[1], 5, 1)
        self.fc1 = torch.nn.Linear(self.features * self.features * channels[1], hidden)
        conv_p = LIFParameters(method=method, alpha=torch.tensor(100.0))
        if self._conv_v_th is not None:
            conv_p = conv_p._replace(v_th=torch.as_tensor(self._conv_v_th))
        self.lif0 = LIF(p=conv_p)
        self.lif1 = LIF(p=conv_p)
        self.lif2 = LIF(p=LIFParameters(method=method, alpha=torch.tensor(100.0)))
        self.out = _LILinearReadout(hidden, 10)
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Read-out voltages ``(T, batch, 10)`` (in ``dtype``) for images ``x`` of shape
        ``(T, batch, num_channels, feature_size, feature_size)``."""
        # two 5x5 convolutions, each followed by 2x2 pooling, need 16 pixels a side
        check_image_sequence(x, type(self).__name__, self.conv1, min_size=16)
        z, _ = self.lif0(apply_folded(self.conv1, x))
        z = apply_folded(_max_pool, z)
        z, _ = self.lif1(10 * apply_folded(self.conv2, z))
        z = apply_folded(_max_pool, z).flatten(2)
        if z.shape[2] != self.fc1.in_features:
            raise ValueError(
                f"images of size {x.shape[3]}x{x.shape[4]} leave {z.shape[2]} features "
                f"before fc1, which expects {self.fc1.in_features} ({self.features}x"
                f"{self.features} pooled maps); build the network with the images' "
                "feature_size"
            )
        z, _ = self.lif2(self.fc1(z))
        voltages, _ = self.out(F.relu(z))
        return voltages.to(self.dtype)


class ConvNet(_ConvLIFNet):
    """A convolutional network with LIF dynamics: 20 and 50 channels, 500 hidden LIF
    neurons, 10 leaky-integrator outputs (see the module documentation).

    Parameters:
        num_channels (int): number of input channels
        feature_size (int): height and width of the input images (at least 16)
        method (str): surrogate gradient of the LIF thresholds
        dtype (torch.dtype): dtype of the returned voltages

    Example:
        >>> model = ConvNet()
        >>> model(torch.zeros(4, 2, 1, 28, 28)).shape
        torch.Size([4, 2, 10])
    """

    _channels = (20, 50)
    _hidden = 500
    _conv_v_th = None


class ConvNet4(_ConvLIFNet):
    """A wider convolutional network with LIF dynamics: 32 and 64 channels (whose LIF
    neurons have ``v_th = 0.7``), 1024 hidden LIF neurons, 10 leaky-integrator outputs
    (see the module documentation).

    Parameters: as :class:`ConvNet`.

    Example:
        >>> model = ConvNet4()
        >>> model(torch.zeros(4, 2, 1, 28, 28)).shape
        torch.Size([4, 2, 10])
    """

    _channels = (32, 64)
    _hidden = 1024
    _conv_v_th = 0.7
