"""Norse's public PyTorch API, with the names of Norse 1.1.

``import norse.torch as norse`` gives every neuron model, encoder, decoder and composition
tool; the equations are in :mod:`norse.torch.functional`, the modules in
:mod:`norse.torch.module`. This file only re-exports.
"""

from norse.torch import functional, fused, module  # noqa: F401
from norse.torch.functional import *  # noqa: F401,F403
from norse.torch.module import *  # noqa: F401,F403
