"""Named tuples of tensors that PyTorch treats as pytrees, at Norse 1.1's import path
``norse.torch.utils.pytree``.

The implementation lives in :mod:`norse.torch.functional.state_tuple`, because the
parameter tuples of :mod:`norse.torch.functional` (``LIFParameters``,
``LIFBoxParameters``) are :class:`StateTuple` classes, as in Norse 1.1.
"""

from norse.torch.functional.state_tuple import (
    MultipleInheritanceNamedTupleMeta,
    NamedTuple,
    PyTree,
    StateTuple,
    broadcast_input,
    map_only,
    register_pytree_node,
    register_tuple,
    tree_map,
    tree_map_only,
)

__all__ = [
    "MultipleInheritanceNamedTupleMeta",
    "NamedTuple",
    "PyTree",
    "StateTuple",
    "broadcast_input",
    "map_only",
    "register_pytree_node",
    "register_tuple",
    "tree_map",
    "tree_map_only",
]
