"""Named tuples of tensors that PyTorch treats as pytrees (Norse 1.1's
``norse.torch.utils.pytree``, which re-exports this module; it lives here because the
parameter tuples ``LIFParameters`` and ``LIFBoxParameters`` are :class:`StateTuple`
classes, as in Norse 1.1).

Norse declares parameter and state tuples as::

    class MyParameters(pytree.StateTuple, metaclass=pytree.MultipleInheritanceNamedTupleMeta):
        tau_mem_inv: torch.Tensor = torch.as_tensor(100.0)
        method: str = "super"

The class body is read like that of a ``typing.NamedTuple`` (fields from the annotations,
defaults from the assignments), and the class also inherits the other bases, here
:class:`StateTuple`, whose ``to``, ``cuda``, ``cpu``, ``int``, ``float`` and ``broadcast``
apply to every tensor in the tuple and leave the other fields (strings, numbers) as they
are. The class is registered as a pytree node, so ``torch.utils._pytree``, ``torch.export``
and ``torch.onnx.export`` see its tensors.

Example:
    >>> import torch
    >>> from norse.torch.utils import pytree
    >>> class Decay(pytree.StateTuple, metaclass=pytree.MultipleInheritanceNamedTupleMeta):
    ...     tau: torch.Tensor = torch.tensor([0.5])
    ...     method: str = "super"
    >>> Decay().broadcast(torch.zeros(2, 3)).tau.shape
    torch.Size([2, 3])
    >>> Decay(torch.tensor([1.5])).int()
    Decay(tau=tensor([1], dtype=torch.int32), method='super')
"""

import functools
import types
import typing
from numbers import Number
from typing import Any, Callable, Iterable, List, Tuple, Type, TypeVar

import torch
from torch.utils import _pytree
from torch.utils._pytree import PyTree, register_pytree_node, tree_map

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

T = TypeVar("T")

#: The class that ``class X(typing.NamedTuple)`` really inherits (``typing.NamedTuple``
#: is a function whose ``__mro_entries__`` substitutes it); Norse 1.1 exports it under
#: this name.
NamedTuple = types.resolve_bases((typing.NamedTuple,))[0]

# Keys of a class body that describe the tuple's fields; they stay on the tuple base and
# are not repeated on the class built on top of it.
_FIELD_KEYS = frozenset(
    {
        "__annotations__",
        "__annotate__",  # Python 3.14: annotations are evaluated lazily
        "__annotate_func__",
        "__annotations_cache__",
        "__orig_bases__",
        "__slots__",
    }
)


def map_only(ty: Type[T]) -> Callable[[Callable[[T], Any]], Callable[[Any], Any]]:
    """Restricts a function to the leaves of one type.

    ``map_only(ty)(fn)`` is a function that applies ``fn`` to instances of ``ty`` (a type
    or a tuple of types, as ``isinstance`` takes) and returns everything else unchanged.

    Example:
        >>> import torch
        >>> from torch.utils._pytree import tree_map
        >>> tree_map(map_only(torch.Tensor)(lambda t: t * 2), (torch.ones(1), "a"))
        (tensor([2.]), 'a')
    """

    def restrict(fn: Callable[[T], Any]) -> Callable[[Any], Any]:
        @functools.wraps(fn)
        def apply(leaf: Any) -> Any:
            return fn(leaf) if isinstance(leaf, ty) else leaf

        return apply

    return restrict


def tree_map_only(ty: Type[T], fn: Callable[[T], Any], pytree: PyTree) -> PyTree:
    """Applies ``fn`` to the leaves of ``pytree`` that are instances of ``ty``.

    Returns a pytree of the same structure (the same named tuple classes, lists, dicts)
    with the other leaves unchanged.
    """
    return tree_map(map_only(ty)(fn), pytree)


def _fields_flatten(values: tuple) -> Tuple[List[Any], Any]:
    return list(values), type(values)


def _fields_unflatten(values: Iterable[Any], cls: Any) -> Any:
    return cls(*values)


def register_tuple(typ: type) -> None:
    """Registers a named tuple class as a pytree node (its fields are the children).

    Classes made by :class:`MultipleInheritanceNamedTupleMeta` are registered when they
    are created. Registering a class again does nothing.

    Raises:
        TypeError: if ``typ`` is not a class.
    """
    if not isinstance(typ, type):
        raise TypeError(
            f"register_tuple takes a named tuple class, got {type(typ).__name__} {typ!r}"
        )
    if typ in _pytree.SUPPORTED_NODES:
        return
    register_pytree_node(
        typ,
        _fields_flatten,
        _fields_unflatten,
        # a stable name lets torch.export serialize trees that contain the class
        serialized_type_name=f"{typ.__module__}.{typ.__qualname__}",
    )


class MultipleInheritanceNamedTupleMeta(type(NamedTuple)):
    """A metaclass that makes a ``typing.NamedTuple`` which also inherits other classes.

    ``typing.NamedTuple`` allows no base classes besides itself. With this metaclass the
    class body becomes a named tuple (fields from the annotations, defaults from the
    assignments, methods kept) and the class inherits the listed bases *and* that tuple:
    ``class S(StateTuple, metaclass=MultipleInheritanceNamedTupleMeta)`` is a tuple with
    :class:`StateTuple`'s methods. Methods defined in the body take precedence over those
    of the bases. The class is registered as a pytree node.
    """

    def __new__(
        mcls, typename: str, bases: Tuple[type, ...], namespace: dict, **kwargs: Any
    ) -> type:
        namespace = dict(namespace)
        # the cell behind super() and __class__ belongs to the class returned here
        class_cell = namespace.pop("__classcell__", None)
        fields = types.new_class(
            typename,
            (typing.NamedTuple,),
            kwargs,
            lambda body: body.update(namespace),
        )
        fields.__qualname__ = f"{namespace.get('__qualname__', typename)}.<fields>"

        body = {
            key: value
            for key, value in namespace.items()
            if key not in _FIELD_KEYS and key not in fields._fields
        }
        if class_cell is not None:
            body["__classcell__"] = class_cell
        cls = type(typename, tuple(bases) + (fields,), body)
        register_tuple(cls)
        return cls


class StateTuple:
    """Methods that act on every tensor of a named tuple (other fields are kept).

    Mix it into a class made by :class:`MultipleInheritanceNamedTupleMeta`; each method
    returns a new tuple of the same class. Fields that hold lists, dicts or tuples of
    tensors are traversed too.

    Example:
        >>> import torch
        >>> from norse.torch.utils import pytree
        >>> class S(pytree.StateTuple, metaclass=pytree.MultipleInheritanceNamedTupleMeta):
        ...     x: torch.Tensor = torch.zeros(2)
        >>> S().to(torch.float64).x.dtype
        torch.float64
    """

    def broadcast(self, template: torch.Tensor) -> Any:
        """Expands every single-value tensor to the shape, dtype and device of ``template``.

        Tensors with one element become ``torch.full_like(template, value)`` (a new
        tensor, detached from the original); tensors of ``template``'s shape are kept;
        non-tensor fields (numbers, strings) are kept.

        Arguments:
            template (torch.Tensor): the tensor whose shape, dtype and device to take

        Raises:
            ValueError: for a tensor with several elements whose shape differs from
                ``template``'s.
        """
        if not isinstance(template, torch.Tensor):
            raise TypeError(
                f"template must be a torch.Tensor, got {type(template).__name__}"
            )
        return tree_map_only(
            torch.Tensor, functools.partial(broadcast_input, template=template), self
        )

    def cuda(self) -> Any:
        """The tuple with every tensor moved to the current CUDA device."""
        return self.to("cuda")

    def cpu(self) -> Any:
        """The tuple with every tensor moved to the CPU."""
        return self.to("cpu")

    def int(self) -> Any:
        """The tuple with every tensor converted to ``torch.int32``."""
        return tree_map_only(torch.Tensor, lambda tensor: tensor.int(), self)

    def float(self) -> Any:
        """The tuple with every tensor converted to ``torch.float32``."""
        return tree_map_only(torch.Tensor, lambda tensor: tensor.float(), self)

    def to(self, *args: Any, **kwargs: Any) -> Any:
        """The tuple with ``tensor.to(*args, **kwargs)`` applied to every tensor (a
        device, a dtype or both, as ``torch.Tensor.to`` takes them).

        A tensor that requires gradients gives one that requires them too (also when
        converted under ``torch.no_grad``), unless its new dtype cannot carry gradients.
        """

        def move(tensor: torch.Tensor) -> torch.Tensor:
            moved = tensor.to(*args, **kwargs)
            if (
                tensor.requires_grad
                and not moved.requires_grad
                and (moved.is_floating_point() or moved.is_complex())
            ):
                moved.requires_grad_(True)
            return moved

        return tree_map_only(torch.Tensor, move, self)


def broadcast_input(potential_scalar: Any, template: torch.Tensor) -> Any:
    """Expands a single value to the shape of ``template`` (see :meth:`StateTuple.broadcast`).

    Arguments:
        potential_scalar: a tensor with one element or a number (returned as
            ``torch.full_like(template, value)``, with ``template``'s shape, dtype and
            device), or a tensor of ``template``'s shape (returned as it is)
        template (torch.Tensor): the tensor to take the shape, dtype and device from

    Raises:
        ValueError: for a tensor with several elements whose shape differs from
            ``template``'s.
        TypeError: for anything else.
    """
    if isinstance(potential_scalar, torch.Tensor):
        if potential_scalar.numel() == 1:
            return torch.full_like(template, potential_scalar.item())
        if potential_scalar.shape == template.shape:
            return potential_scalar
        raise ValueError(
            "Cannot broadcast a tensor of shape "
            f"{tuple(potential_scalar.shape)} to the template's shape "
            f"{tuple(template.shape)}: only single-value tensors and tensors of the "
            "template's shape can be broadcast"
        )
    if isinstance(potential_scalar, Number):
        return torch.full_like(template, potential_scalar)
    raise TypeError(
        "potential_scalar must be a tensor or a number, "
        f"got {type(potential_scalar).__name__}"
    )
