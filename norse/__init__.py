"""Norse: deep learning with spiking neural networks (SNNs) on PyTorch.

The public API lives in :mod:`norse.torch` (``import norse.torch as norse``).
"""

__version__ = "0.1.0"
