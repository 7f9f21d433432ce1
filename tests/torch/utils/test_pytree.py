"""norse.torch.utils.pytree: named tuples with StateTuple's methods, registered as
pytree nodes (Norse 1.1's module of the same name)."""

import pickle
from numbers import Number

import pytest
import torch
from torch.utils import _pytree

from norse.torch.utils import pytree


class MockState(pytree.StateTuple, metaclass=pytree.MultipleInheritanceNamedTupleMeta):
    """A state with a required field, a tensor default and a number."""

    x: torch.Tensor
    y: torch.Tensor = torch.ones(3, 2)
    z: float = 1.28

    def total(self) -> torch.Tensor:
        return self.x.sum() + self.y.sum()


class Mixin:
    def describe(self) -> str:
        return "mixin"


class Overriding(
    pytree.StateTuple, Mixin, metaclass=pytree.MultipleInheritanceNamedTupleMeta
):
    a: torch.Tensor = torch.zeros(1)

    def describe(self) -> str:
        return "own " + super().describe()

    def float(self):  # a method of the body wins over StateTuple's
        return "own float"


def test_fields_defaults_and_tuple_behaviour():
    x = torch.randn(3, 2)
    s = MockState(x)
    assert s.x is x and torch.equal(s.y, torch.ones(3, 2)) and s.z == 1.28
    assert MockState._fields == ("x", "y", "z")
    assert MockState._field_defaults["z"] == 1.28
    assert isinstance(s, tuple) and isinstance(s, pytree.StateTuple)
    assert len(s) == 3 and s[0] is x
    assert type(s._replace(z=2.0)) is MockState and s._replace(z=2.0).z == 2.0
    assert type(MockState._make([x, x, 0.0])) is MockState
    assert repr(MockState(torch.tensor(1.0), torch.tensor(2.0), 3)) == (
        "MockState(x=tensor(1.), y=tensor(2.), z=3)"
    )
    assert MockState.__doc__.startswith("A state")
    assert MockState.__module__ == __name__
    torch.testing.assert_close(s.total(), x.sum() + 6)


def test_missing_field_names_the_class_and_the_field():
    with pytest.raises(TypeError, match=r"MockState.__new__\(\) missing .*'x'"):
        MockState()


def test_body_methods_take_precedence_and_super_works():
    o = Overriding()
    assert o.float() == "own float"
    assert o.describe() == "own mixin"
    assert type(o.int()) is Overriding  # StateTuple's, not overridden


def test_to_int_float_keep_other_fields():
    s = MockState(torch.zeros(2, dtype=torch.int32), torch.zeros(2, dtype=torch.int32))
    f = s.float()
    assert type(f) is MockState
    assert f.x.dtype == torch.float32 and f.y.dtype == torch.float32 and f.z == 1.28
    i = MockState(torch.randn(2) + 5).int()
    assert i.x.dtype == torch.int32 and i.y.dtype == torch.int32
    d = s.to(torch.float64)
    assert d.x.dtype == torch.float64
    c = s.cpu()
    assert c.x.device.type == "cpu" and c.z == 1.28
    d = s.to("cpu", dtype=torch.float16)  # device and dtype, as Tensor.to takes them
    assert d.y.dtype == torch.float16


def test_to_keeps_requires_grad():
    leaf = torch.ones(2, requires_grad=True)
    with torch.no_grad():
        moved = MockState(leaf).to(torch.float64)
    assert moved.x.requires_grad and not moved.y.requires_grad
    # a dtype that cannot carry gradients gives a plain tensor
    assert not MockState(leaf).to(torch.int64).x.requires_grad


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda():
    s = MockState(torch.randn(2)).cuda()
    assert s.x.device.type == "cuda" and s.y.device.type == "cuda"
    assert s.cpu().x.device.type == "cpu"


def test_nested_containers_are_mapped():
    s = MockState([torch.zeros(1, dtype=torch.int64), {"k": torch.ones(1)}], "a", "b")
    f = s.float()
    assert f.x[0].dtype == torch.float32 and f.x[1]["k"].dtype == torch.float32
    assert f.y == "a" and f.z == "b"


def test_broadcast():
    template = torch.zeros(4, 3, dtype=torch.float64)
    s = MockState(torch.tensor([2.0]), torch.tensor(5.0)).broadcast(template)
    assert type(s) is MockState
    assert torch.equal(s.x, torch.full((4, 3), 2.0, dtype=torch.float64))
    assert torch.equal(s.y, torch.full((4, 3), 5.0, dtype=torch.float64))
    same = torch.randn(4, 3)
    assert MockState(same, same).broadcast(template).x is same  # already the shape
    numbers = MockState(0, 1).broadcast(template)
    assert numbers.x == 0 and isinstance(numbers.y, Number)  # numbers are kept
    with pytest.raises(
        ValueError, match=r"shape \(2,\) to the template's shape \(4, 3\)"
    ):
        MockState(torch.randn(2)).broadcast(template)
    with pytest.raises(TypeError, match="template must be a torch.Tensor, got list"):
        MockState(torch.randn(1)).broadcast([4, 3])


def test_broadcast_input():
    template = torch.zeros(2, 2)
    assert torch.equal(pytree.broadcast_input(3, template), torch.full((2, 2), 3.0))
    assert torch.equal(
        pytree.broadcast_input(torch.tensor([[7]]), template), torch.full((2, 2), 7.0)
    )
    with pytest.raises(
        TypeError, match="potential_scalar must be a tensor or a number"
    ):
        pytree.broadcast_input("a", template)


def test_registered_pytree_node():
    assert MockState in _pytree.SUPPORTED_NODES
    s = MockState(torch.zeros(2))
    leaves, spec = _pytree.tree_flatten(s)
    assert len(leaves) == 3 and leaves[2] == 1.28
    rebuilt = _pytree.tree_unflatten([leaf for leaf in leaves], spec)
    assert type(rebuilt) is MockState and rebuilt.x is s.x
    pytree.register_tuple(MockState)  # a second registration does nothing
    with pytest.raises(TypeError, match="register_tuple takes a named tuple class"):
        pytree.register_tuple(s)


def test_map_only_and_tree_map_only():
    double = pytree.map_only(torch.Tensor)(lambda t: t * 2)
    assert double("a") == "a" and torch.equal(
        double(torch.ones(1)), torch.full((1,), 2.0)
    )
    out = pytree.tree_map_only(
        torch.Tensor, lambda t: t + 1, {"a": torch.zeros(1), "b": 3}
    )
    assert torch.equal(out["a"], torch.ones(1)) and out["b"] == 3


def test_named_tuple_base_and_pickle():
    assert pytree.NamedTuple.__name__ == "NamedTuple"
    s = MockState(torch.arange(3.0))
    copy = pickle.loads(pickle.dumps(s))
    assert type(copy) is MockState and torch.equal(copy.x, s.x) and copy.z == s.z


def test_onnx_export(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")

    class Model(torch.nn.Module):
        def forward(self, x, s: MockState):
            return x + s[0] + s[1]

    path = tmp_path / "pytree.onnx"
    s = MockState(torch.randn(3, 2))
    torch.onnx.export(Model(), (torch.randn(3, 2), s), str(path))
    onnx.checker.check_model(onnx.load(str(path)))
