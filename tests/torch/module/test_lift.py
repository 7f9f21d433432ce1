"""Lift: stateless modules over time (fast path vs loop), stateful modules, errors."""

import pytest
import torch

from norse.torch.functional.lif import LIFFeedForwardState
from norse.torch.module.lif import LIF, LIFCell
from norse.torch.module.lift import Lift
from norse.torch.module.sequential import SequentialState


def _count_calls(module):
    calls = []
    module.register_forward_hook(lambda *args: calls.append(1))
    return calls


def _loop(module, x):
    return torch.stack([module(step) for step in x])


def test_lift_conv_shape():
    conv2d = Lift(torch.nn.Conv2d(4, 3, 5, 1))
    output = conv2d(torch.randn(6, 2, 4, 10, 12))
    assert output.shape == (6, 2, 3, 6, 8)


FOLDABLE = [
    # (module, one step's shape)
    (lambda: torch.nn.Conv2d(2, 3, 3, padding=1), (4, 2, 5, 5)),
    (lambda: torch.nn.Conv2d(2, 3, 3), (2, 5, 5)),  # unbatched steps
    (lambda: torch.nn.ConvTranspose1d(2, 3, 3, stride=2), (4, 2, 6)),
    (lambda: torch.nn.Linear(5, 3), (4, 5)),
    (lambda: torch.nn.Linear(5, 3), (5,)),  # unbatched steps
    (lambda: torch.nn.MaxPool2d(2), (4, 2, 6, 6)),
    (lambda: torch.nn.AdaptiveAvgPool2d(2), (2, 6, 6)),
    (lambda: torch.nn.Flatten(), (4, 2, 3, 3)),
    (lambda: torch.nn.Flatten(-2, -1), (4, 2, 3, 3)),
    (lambda: torch.nn.Unflatten(1, (2, 3)), (4, 6)),
    (lambda: torch.nn.Softmax(dim=1), (4, 5)),
    (lambda: torch.nn.LogSoftmax(dim=-1), (5,)),
    (lambda: torch.nn.LayerNorm(5), (4, 5)),
    (lambda: torch.nn.GroupNorm(2, 4), (3, 4, 5)),
    (lambda: torch.nn.InstanceNorm1d(3, affine=True), (4, 3, 7)),
    (lambda: torch.nn.BatchNorm2d(2).eval(), (4, 2, 3, 3)),
    (lambda: torch.nn.ReLU(), (4, 5)),
    (lambda: torch.nn.Dropout(0.5).eval(), (4, 5)),
    (lambda: torch.nn.ZeroPad2d(1), (4, 2, 3, 3)),
    (lambda: torch.nn.ReflectionPad1d(1), (4, 2, 3)),
    (lambda: torch.nn.Upsample(scale_factor=2), (4, 2, 3, 3)),
    (lambda: torch.nn.PixelShuffle(2), (4, 8, 3, 3)),
]


@pytest.mark.parametrize("make, step_shape", FOLDABLE)
def test_fast_path_equals_loop_in_one_call(make, step_shape):
    torch.manual_seed(0)
    module = make().double()
    if hasattr(module, "running_mean") and module.running_mean is not None:
        module.running_mean.uniform_(-1, 1)
        module.running_var.uniform_(0.5, 2)
    x = torch.randn(7, *step_shape, dtype=torch.float64)
    expected = _loop(module, x)
    calls = _count_calls(module)
    lifted = Lift(module)(x)
    assert len(calls) == 1  # all 7 steps in one call
    assert lifted.shape == expected.shape
    torch.testing.assert_close(lifted, expected, rtol=1e-12, atol=1e-12)
    # and the forced loop is the loop
    calls.clear()
    torch.testing.assert_close(Lift(module, fold=False)(x), expected)
    assert len(calls) == 7


def test_sequential_of_known_layers_runs_layer_by_layer():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 3),
    ).double()
    x = torch.randn(5, 2, 1, 10, 10, dtype=torch.float64)
    calls = _count_calls(net[0])
    out = Lift(net)(x)
    assert len(calls) == 1
    torch.testing.assert_close(out, _loop(net, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.nn.BatchNorm1d(3),  # training: statistics per step's batch
        lambda: torch.nn.Flatten(0),  # flattens the batch away
        lambda: torch.nn.Softmax(dim=0),  # normalises over the batch
        lambda: torch.nn.Softmax(),  # implicit dimension
    ],
)
@pytest.mark.filterwarnings("ignore:Implicit dimension choice for softmax")
def test_batch_mixing_modules_loop(make):
    torch.manual_seed(0)
    module, reference = make(), make()
    x = torch.randn(4, 5, 3)
    expected = _loop(reference, x)
    calls = _count_calls(module)
    out = Lift(module)(x)
    assert len(calls) == 4
    torch.testing.assert_close(out, expected)


def test_batch_norm_training_keeps_per_step_statistics_and_updates():
    torch.manual_seed(0)
    norm = torch.nn.BatchNorm1d(3)
    x = torch.randn(4, 8, 3) * torch.arange(1.0, 5.0).view(4, 1, 1)
    out = Lift(norm)(x)
    # every step normalised with its own batch statistics
    torch.testing.assert_close(out.mean(1), torch.zeros(4, 3), atol=1e-5, rtol=0)
    assert int(norm.num_batches_tracked) == 4
    # in a known Sequential, the batch norm child alone loops
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    reference = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    reference.load_state_dict(net.state_dict())
    torch.testing.assert_close(Lift(net)(x), _loop(reference, x))
    torch.testing.assert_close(net[1].running_mean, reference[1].running_mean)


class _Scale(torch.nn.Module):
    def forward(self, x):
        return 2 * x


def test_unknown_module_loops_unless_told_to_fold():
    module = _Scale()
    x = torch.randn(3, 2, 4)
    calls = _count_calls(module)
    torch.testing.assert_close(Lift(module)(x), 2 * x)
    assert len(calls) == 3
    calls.clear()
    torch.testing.assert_close(Lift(module, fold=True)(x), 2 * x)
    assert len(calls) == 1


def test_subclass_of_known_module_is_not_trusted():
    class Counting(torch.nn.Linear):
        def forward(self, x):
            return super().forward(x) + x.shape[0]

    module = Counting(2, 2)
    x = torch.zeros(3, 4, 2)
    out = Lift(module)(x)
    torch.testing.assert_close(out, _loop(module, x))  # + 4 per step, not + 12


def test_fast_path_backward_matches_loop():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 2, 3).double()
    x = torch.randn(3, 2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(Lift(conv), (x,))
    Lift(conv)(x).pow(2).sum().backward()
    fast = (x.grad.clone(), conv.weight.grad.clone())
    x.grad = None
    conv.weight.grad = None
    _loop(conv, x).pow(2).sum().backward()
    torch.testing.assert_close(fast[0], x.grad)
    torch.testing.assert_close(fast[1], conv.weight.grad)


def test_state_dict_names_as_norse():
    lifted = Lift(torch.nn.Linear(2, 3))
    assert set(lifted.state_dict()) == {"lifted_module.weight", "lifted_module.bias"}


def test_lift_in_nn_sequential_with_time_module():
    module = torch.nn.Sequential(Lift(torch.nn.Conv2d(2, 3, 3)), LIF())
    output, state = module(torch.randn(4, 2, 2, 6, 6))
    assert output.shape == (4, 2, 3, 4, 4)
    assert state.v.shape == (2, 3, 4, 4)


def test_lift_stateful_cell_equals_time_module():
    x = torch.rand(20, 3, 4) * 4
    out, state = Lift(LIFCell())(x)
    assert isinstance(state, LIFFeedForwardState)
    expected, expected_state = LIF()(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(state.v, expected_state.v)
    assert out.sum() > 0


def test_lift_stateful_threads_given_state():
    x = torch.rand(20, 3, 4) * 4
    lifted = Lift(LIFCell())
    full, full_state = lifted(x)
    first, state = lifted(x[:8])
    second, state = lifted((x[8:], state))  # Norse 1.1's tuple input
    torch.testing.assert_close(torch.cat([first, second]), full)
    torch.testing.assert_close(state.i, full_state.i)
    _, state_kw = lifted(x[8:], state=lifted(x[:8])[1])
    torch.testing.assert_close(state_kw.v, full_state.v)


def test_lift_sequential_state():
    out, state = Lift(SequentialState(LIFCell()))(torch.randn(5, 2))
    assert out.shape == (5, 2)
    assert isinstance(state, list) and isinstance(state[0], LIFFeedForwardState)


def test_lift_stateless_ignores_tuple_state_as_norse():
    x = torch.randn(3, 2, 4)
    out = Lift(torch.nn.ReLU())((x, "anything"))
    torch.testing.assert_close(out, x.relu())


def test_errors():
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        Lift(lambda x: x)
    with pytest.raises(TypeError, match="fold"):
        Lift(torch.nn.ReLU(), fold="yes")
    with pytest.raises(ValueError, match="stateless"):
        Lift(LIFCell(), fold=True)
    lifted = Lift(torch.nn.ReLU())
    with pytest.raises(TypeError, match="torch.Tensor"):
        lifted([1.0, 2.0])
    with pytest.raises(ValueError, match="T >= 1"):
        lifted(torch.zeros(0, 2))
    with pytest.raises(ValueError, match="time dimension"):
        lifted(torch.tensor(1.0))
    with pytest.raises(ValueError, match="tuple of 3"):
        lifted((torch.zeros(2, 2), None, None))
    with pytest.raises(ValueError, match="takes no state"):
        lifted(torch.zeros(2, 2), state=torch.zeros(2))


def test_error_for_tuple_returning_stateless_and_bad_stateful():
    class Pair(torch.nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(TypeError, match="must take a `state` argument"):
        Lift(Pair())(torch.zeros(3, 2))

    class NoTuple(torch.nn.Module):
        def forward(self, x, state=None):
            return x

    with pytest.raises(TypeError, match=r"must return \(output, state\)"):
        Lift(NoTuple())(torch.zeros(3, 2))
