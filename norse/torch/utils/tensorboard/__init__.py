"""TensorBoard hooks that log the spikes of a layer.

Norse 1.1 keeps them in the submodule :mod:`norse.torch.utils.tensorboard.tensorboard`
(``from norse.torch.utils.tensorboard import tensorboard``); they are also importable
from here and from :mod:`norse.torch`.
"""

from norse.torch.utils.tensorboard import tensorboard
from norse.torch.utils.tensorboard.tensorboard import (
    hook_spike_activity_mean,
    hook_spike_activity_sum,
    hook_spike_histogram_mean,
    hook_spike_histogram_sum,
    hook_spike_image,
)

__all__ = [*tensorboard.__all__, "tensorboard"]
