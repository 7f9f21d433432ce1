"""apply_layer: the faster equivalents of torch.nn.Linear and torch.nn.MaxPool2d that
Lift and SequentialState use."""

import pytest
import torch

import norse.torch as norse
from norse.torch.fused import layers, reference_only

pytest.importorskip("numba")

from norse.torch.fused import cpu_pool  # noqa: E402


def mlp_input(activity=0.1, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(20, 16, 400, generator=generator) < activity).float()


@pytest.mark.parametrize("wrap", ["sequential", "lift"])
def test_plain_linear_layers_take_the_event_driven_path(wrap, event_driven_calls):
    """A torch.nn.Linear in SequentialState or Lift: event-driven for sparse binary
    input (320 rows >= MIN_ROWS_TO_TRANSPOSE, 400 x 200 x 320 >= MIN_KERNEL_WORK), same
    output as the layer itself."""
    pytest.importorskip("numba")
    torch.manual_seed(0)
    linear = torch.nn.Linear(400, 200)
    x = mlp_input()
    if wrap == "sequential":
        y = norse.SequentialState(linear)(x)[0]
    else:
        y = norse.Lift(linear)(x)
    assert len(event_driven_calls) == 1
    torch.testing.assert_close(y, linear(x), rtol=1e-5, atol=1e-5)
    norse.SequentialState(linear)(mlp_input(activity=0.5))  # too active: dense
    assert len(event_driven_calls) == 1


def test_linear_gradients_equal_dense_layer(event_driven_calls):
    pytest.importorskip("numba")
    torch.manual_seed(1)
    linear = torch.nn.Linear(400, 200).double()
    x = mlp_input().double()
    grad = torch.randn(20, 16, 200, dtype=torch.float64)
    out = norse.SequentialState(linear)(x)[0]
    assert len(event_driven_calls) == 1
    got = torch.autograd.grad(out, (linear.weight, linear.bias), grad)
    want = torch.autograd.grad(linear(x), (linear.weight, linear.bias), grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_linear_layers_called_as_they_are_when_they_must(
    event_driven_calls, monkeypatch
):
    """Dense input, hooks, subclasses, tracing, autocast and NORSE_SPIKE_LINEAR=0 call
    the module itself."""
    pytest.importorskip("numba")
    x = mlp_input()
    linear = torch.nn.Linear(400, 200)
    seen = []
    norse.SequentialState(linear)(torch.randn(20, 16, 400))
    handle = linear.register_forward_hook(lambda *args: seen.append(1))
    norse.SequentialState(linear)(x)
    handle.remove()
    assert seen == [1]

    class Doubled(torch.nn.Linear):
        def forward(self, input):
            return 2 * super().forward(input)

    doubled = Doubled(400, 200)
    torch.testing.assert_close(
        norse.SequentialState(doubled)(x)[0],
        2 * torch.nn.functional.linear(x, doubled.weight, doubled.bias),
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert norse.SequentialState(linear)(x)[0].dtype == torch.bfloat16
    assert event_driven_calls == []
    traced = torch.jit.trace(norse.Lift(linear), x, check_trace=False)
    assert event_driven_calls == []
    torch.testing.assert_close(traced(x), linear(x))
    norse.SequentialState(linear)(x)
    assert len(event_driven_calls) == 1
    monkeypatch.setenv("NORSE_SPIKE_LINEAR", "0")
    norse.SequentialState(linear)(x)
    assert len(event_driven_calls) == 1


@pytest.fixture
def pool_calls(monkeypatch):
    calls = []
    max_pool2d = cpu_pool.max_pool2d

    def counted(*args):
        calls.append(args[1:])
        return max_pool2d(*args)

    monkeypatch.setattr(cpu_pool, "max_pool2d", counted)
    return calls


def conv_spikes(shape=(6, 4, 3, 10, 11), activity=0.3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < activity).float()


@pytest.mark.parametrize("kernel_size", [2, 3, (2, 3)])
def test_lifted_max_pool_takes_the_kernels(kernel_size, pool_calls):
    x = conv_spikes().requires_grad_()
    pool = torch.nn.MaxPool2d(kernel_size)
    y = norse.Lift(pool)(x)
    assert len(pool_calls) == 1
    expected = torch.stack([pool(step) for step in x])
    assert torch.equal(y, expected)
    grad = torch.randn_like(y)
    (got,) = torch.autograd.grad(y, x, grad)
    (want,) = torch.autograd.grad(expected, x, grad)
    assert torch.equal(got, want)


def test_max_pool_in_sequential_state_per_step(pool_calls):
    step = conv_spikes()[0]
    model = norse.SequentialState(
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), norse.LIFCell()
    )
    model(step)
    assert len(pool_calls) == 1


@pytest.mark.parametrize(
    "pool",
    [
        torch.nn.MaxPool2d(2, stride=1),
        torch.nn.MaxPool2d(2, padding=1),
        torch.nn.MaxPool2d(2, dilation=2),
        torch.nn.MaxPool2d(2, ceil_mode=True),
        torch.nn.MaxPool2d(20),  # larger than the input: PyTorch's error
    ],
)
def test_other_max_pools_run_as_they_are(pool, pool_calls):
    _assert_as_module(pool, conv_spikes())
    assert pool_calls == []


@pytest.mark.parametrize("shape", [(4, 0, 2, 8, 8), (4, 2, 0, 8, 8)])
def test_empty_inputs_behave_as_the_module(shape):
    """PyTorch pools an empty batch but rejects empty channels: so does Lift."""
    _assert_as_module(torch.nn.MaxPool2d(2), torch.zeros(shape))


def _assert_as_module(pool, x):
    """Lift(pool)(x) gives what pool gives step by step, or raises where it raises."""
    try:
        expected = [pool(step) for step in x]
    except RuntimeError:
        with pytest.raises(RuntimeError):
            norse.Lift(pool)(x)
        return
    result = norse.Lift(pool)(x)
    if expected:
        assert torch.equal(result, torch.stack(expected))
    else:
        assert result.shape[0] == 0


def test_max_pool_runs_as_it_is_when_it_must(pool_calls, monkeypatch):
    x = conv_spikes()
    pool = torch.nn.MaxPool2d(2)
    norse.Lift(pool)(x.half())
    indices = torch.nn.MaxPool2d(2, return_indices=True)
    assert layers._pool_window(indices, x[0]) is None
    assert layers._pool_window(pool, x[0]) == (2, 2)
    handle = pool.register_forward_hook(lambda *args: None)
    norse.Lift(pool)(x)
    handle.remove()

    class Pool(torch.nn.MaxPool2d):
        pass

    norse.Lift(Pool(2))(x)
    with reference_only():
        norse.Lift(pool)(x)
    monkeypatch.setenv("NORSE_FUSED", "0")
    norse.Lift(pool)(x)
    assert pool_calls == []
    monkeypatch.delenv("NORSE_FUSED")
    norse.Lift(pool)(x)
    assert len(pool_calls) == 1


def test_replaceable_needs_plain_eager_calls():
    linear = torch.nn.Linear(3, 2)
    x = torch.zeros(2, 3)
    assert layers._replaceable(linear, x)
    assert not layers._replaceable(linear, [x])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not layers._replaceable(linear, x)
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *a: None)
    try:
        assert not layers._replaceable(linear, x)
    finally:
        handle.remove()
    assert layers._replaceable(linear, x)


def test_linear_on_bool_input_keeps_pytorchs_error(event_driven_calls):
    """spike_linear takes bool spikes; a torch.nn.Linear does not, and stays so."""
    linear = torch.nn.Linear(400, 200)
    with pytest.raises(RuntimeError):
        norse.SequentialState(linear)(mlp_input().bool())
    assert event_driven_calls == []
