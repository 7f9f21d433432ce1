"""Fast paths: time-fused multi-step kernels, kept apart from the reference equations.

The time modules (:class:`norse.torch.module.snn.SNN`) ask :mod:`.registry` for a kernel
for their step function and configuration, and run the reference per-step loop when
there is none. :func:`reference_only` (or ``NORSE_FUSED=0`` in the environment) forces the
reference loop, e.g. to compare results; :func:`generated_only` skips the hand-written
kernels, to compare them with the generated ones.
"""

from norse.torch.fused.registry import find, generated_only, reference_only, register

# Registers the fused kernels of the feed-forward and recurrent models (imports neither
# Numba nor Triton; they load on the first fused call).
from norse.torch.fused import neurons as _neurons  # noqa: E402,F401
from norse.torch.fused import coba_lif as _coba_lif  # noqa: E402,F401
from norse.torch.fused import recurrent as _recurrent  # noqa: E402,F401

__all__ = ["find", "generated_only", "reference_only", "register"]
