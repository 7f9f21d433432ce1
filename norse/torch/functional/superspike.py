"""SuperSpike surrogate gradient (Zenke & Ganguli, Neural Computation 30, 2018).

Kept as its own module so that Norse 1.1 import paths keep working.
"""

from norse.torch.functional.threshold import SuperSpike, super_fn

__all__ = ["SuperSpike", "super_fn"]
