import pytest
import torch

import norse.torch as norse
from norse.torch.functional.delay import DelayState, delay_sequence
from norse.torch.module.delay import Delay, DelayCell


def test_exported():
    assert norse.Delay is Delay and norse.DelayCell is DelayCell
    assert norse.DelayState is DelayState


def test_shifts_each_neuron_and_keeps_dtype():
    spikes = torch.zeros(10, 1, 3, dtype=torch.float64)
    spikes[0] = 1
    out, state = Delay(torch.tensor([0, 2, 5]))(spikes)
    assert out.dtype == torch.float64 and out.shape == (10, 1, 3)
    assert out[:, 0].nonzero().tolist() == [[0, 0], [2, 1], [5, 2]]
    assert state.buffer.shape == (7, 1, 3)


def test_cell_loop_equals_time_module_and_threads_state():
    torch.manual_seed(0)
    x = (torch.rand(20, 2, 2, 3) < 0.3).float()
    delays = torch.tensor([[1.5, 0.0, 2.25], [3.0, 0.7, 1.0]])
    layer = Delay(delays, learnable=True, max_delay=4)
    cell = DelayCell(delays, learnable=True, max_delay=4)
    full, _ = layer(x)
    state, outs = None, []
    for step in x:
        out, state = cell(step, state)
        outs.append(out)
    torch.testing.assert_close(torch.stack(outs), full)
    first, s = layer(x[:7])
    second, _ = layer(x[7:], s)
    torch.testing.assert_close(torch.cat([first, second]), full)


def test_fixed_delays_are_buffers_learnable_ones_parameters():
    fixed = Delay(torch.tensor([1, 2]))
    assert "delays" in dict(fixed.named_buffers()) and not list(fixed.parameters())
    assert fixed.delays.dtype == torch.int64 and fixed.max_delay == 2
    learnable = Delay(torch.tensor([1.0, 2.5]), learnable=True, max_delay=6)
    assert [name for name, _ in learnable.named_parameters()] == ["delays"]
    assert "delays" in learnable.state_dict()
    assert learnable.double().delays.dtype == torch.float64


def test_learned_delay_converges_to_the_target_delay():
    # A smooth bump delayed by an unknown 4.3 steps; gradient descent on the delay finds it.
    t = torch.arange(40.0)
    bump = torch.exp(-0.5 * ((t - 8) / 2.0) ** 2).reshape(40, 1, 1)
    target, _ = delay_sequence(bump, torch.tensor([4.3]), max_delay=10)
    layer = Delay(torch.tensor([1.0]), learnable=True, max_delay=10)
    optimizer = torch.optim.SGD(layer.parameters(), lr=2.0)
    for _ in range(150):
        optimizer.zero_grad()
        out, _ = layer(bump)
        loss = ((out - target) ** 2).sum()
        loss.backward()
        optimizer.step()
    assert layer.delays.item() == pytest.approx(4.3, abs=1e-3)


def test_gradient_reaches_the_input():
    x = torch.rand(6, 2, 3, requires_grad=True)
    out, _ = Delay(torch.tensor([0, 1, 2]))(x)
    out.sum().backward()
    # the last d steps of a channel delayed by d never reach the output
    assert x.grad[:, 0, 2].tolist() == [1, 1, 1, 1, 0, 0]


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match=">= 0"):
        Delay(torch.tensor([1, -1]))
    with pytest.raises(ValueError, match="whole numbers"):
        Delay(torch.tensor([1.5]))
    with pytest.raises(ValueError, match="max_delay"):
        Delay(torch.tensor([1.5]), learnable=True)
    with pytest.raises(ValueError, match="exceed max_delay"):
        Delay(torch.tensor([5.0]), learnable=True, max_delay=3)
    with pytest.raises(ValueError, match="max_delay"):
        Delay(torch.tensor([1]), max_delay=-2)
    layer = Delay(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="broadcast"):
        layer(torch.zeros(4, 2, 5))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.zeros(4, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="T >= 1"):
        layer(torch.zeros(0, 2, 3))
    _, state = layer(torch.zeros(4, 2, 3))
    with pytest.raises(ValueError, match="state.buffer"):
        layer(torch.zeros(4, 5, 3), state)
    with pytest.raises(TypeError, match="DelayState"):
        layer(torch.zeros(4, 2, 3), (state.buffer, state.index))
    with pytest.raises(TypeError, match="dtype"):
        DelayCell(torch.tensor([1, 2, 3]))(
            torch.zeros(2, 3, dtype=torch.float64), state
        )
