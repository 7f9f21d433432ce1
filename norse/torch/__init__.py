"""Norse's public PyTorch API, with the names of Norse 1.1.

``import norse.torch as norse`` gives every neuron model, encoder, decoder and composition
tool; the equations are in :mod:`norse.torch.functional`, the modules in
:mod:`norse.torch.module`. This file only re-exports.
"""

from norse.torch import functional, fused, module  # noqa: F401
from norse.torch.functional import *  # noqa: F401,F403
from norse.torch.module import *  # noqa: F401,F403

# The star import of norse.torch.module binds its submodule `lift` to this name; the
# Norse 1.1 name is the function.
from norse.torch.functional.lift import lift  # noqa: E402,F401

# Ready-made networks (Norse 1.1 exports them here too)
from norse.torch import models  # noqa: E402,F401
from norse.torch.models import (  # noqa: E402,F401
    VGG,
    ConvNet,
    ConvNet4,
    MobileNetV2,
    mobilenet_v2,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
)
from norse.torch.functional.reset import ResetMethod  # noqa: E402,F401

# Whether the optional plotting and TensorBoard packages are installed (Norse 1.1 names)
import importlib.util as _importlib_util  # noqa: E402

HAS_MATPLOTLIB = _importlib_util.find_spec("matplotlib") is not None
HAS_TENSORBOARD = _importlib_util.find_spec("tensorboard") is not None

# Plotting helpers (Norse 1.1 exports them here; matplotlib is imported on first use)
from norse.torch.utils.plot import (  # noqa: E402,F401
    plot_heatmap_2d,
    plot_heatmap_3d,
    plot_histogram_2d,
    plot_izhikevich,
    plot_neuron_states,
    plot_raster,
    plot_scatter_3d,
    plot_spikes_2d,
)

# TensorBoard hooks (Norse 1.1 exports them here; they import nothing from TensorBoard)
from norse.torch.utils.tensorboard import (  # noqa: E402,F401
    hook_spike_activity_mean,
    hook_spike_activity_sum,
    hook_spike_histogram_mean,
    hook_spike_histogram_sum,
    hook_spike_image,
)

# NIR export and import (the nir and nirtorch packages are imported on first use)
from norse.torch.utils.export_nir import to_nir  # noqa: E402,F401
from norse.torch.utils.import_nir import from_nir  # noqa: E402,F401

# ONNX export of one time step (torch.onnx and onnxscript are used on the first call)
from norse.torch.utils.export_onnx import to_onnx  # noqa: E402,F401
