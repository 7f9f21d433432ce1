"""Named tuples of tensors that PyTorch treats as pytrees, at Norse 1.1's import path
``norse.torch.utils.pytree``.

The implementation lives in :mod:`norse.torch.functional.state_tuple`, because the
parameter tuples of :mod:`norse.torch.functional` (``LIFParameters``,
``LIFBoxParameters``) are :class:`StateTuple` classes, as in Norse 1.1.
"""

# The names of ``state_tuple.__all__``, and that list as this module's ``__all__``.
from norse.torch.functional.state_tuple import *  # noqa: F403
from norse.torch.functional.state_tuple import __all__  # noqa: F401
