"""SequentialState and RecurrentSequential: state threading, hooks, errors."""

from collections import OrderedDict
from types import MappingProxyType

import pytest
import torch

from norse.torch.functional.lif import LIFFeedForwardState
from norse.torch.module.encode import (
    ConstantCurrentLIFEncoder,
    PoissonEncoder,
    PoissonEncoderStep,
    SpikeLatencyEncoder,
    SpikeLatencyLIFEncoder,
)
from norse.torch.module.leaky_integrator import LI
from norse.torch.module.lif import LIF, LIFCell, LIFRecurrent
from norse.torch.module.lift import Lift
from norse.torch.module.sequential import (
    RecurrentSequential,
    RecurrentSequentialState,
    SequentialState,
)


def test_single_recurrent_layer():
    z, s = SequentialState(LIFRecurrent(20, 6))(torch.ones(10, 1, 20))
    assert z.shape == (10, 1, 6)
    assert s[0].v.shape == (1, 6)


def test_stateless_and_stateful_layers():
    model = SequentialState(torch.nn.Linear(1, 1), LIFCell())
    assert model.stateful_layers == [False, True]
    z, s = model(torch.ones(2, 1, 1))
    assert z.shape == (2, 1, 1)
    assert s[0] is None and isinstance(s[1], LIFFeedForwardState)
    z, s = model(torch.ones(2, 1, 1), [None, s[1]])
    assert s[1].v.shape == (2, 1, 1)


def test_two_calls_with_states_equal_one_call():
    torch.manual_seed(0)
    model = SequentialState(
        torch.nn.Linear(3, 5),
        LIF(),
        Lift(torch.nn.Linear(5, 4)),
        LIFRecurrent(4, 2),
        LI(),
    )
    x = torch.rand(24, 2, 3) * 3
    full, full_states = model(x)
    first, states = model(x[:10])
    second, states = model(x[10:], states)
    torch.testing.assert_close(torch.cat([first, second]), full)
    for a, b in zip(states, full_states):
        if a is None:
            assert b is None
        else:
            torch.testing.assert_close(a.v, b.v)


def test_state_list_is_updated_in_place():
    # Norse 1.1 writes the new states into the list passed in (its "Getting started"
    # page reads them from there) and returns that list
    model = SequentialState(torch.nn.Linear(1, 1), LIF())
    states = [None, None]
    _, returned = model(torch.ones(3, 1, 1), states)
    assert returned is states
    assert states[0] is None and isinstance(states[1], LIFFeedForwardState)
    first = states[1]
    kept = list(states)  # a copy is not touched by the next call
    model(torch.ones(3, 1, 1), states)
    assert states[1] is not first and kept[1] is first
    # a tuple cannot be updated: its states come back in a new list
    given = (None, first)
    _, returned = model(torch.ones(3, 1, 1), given)
    assert isinstance(returned, list) and given == (None, first)
    torch.testing.assert_close(returned[1].v, states[1].v)


def test_lifted_cell_threads_its_state():
    model = SequentialState(torch.nn.Linear(3, 4), Lift(LIFCell()))
    assert model.stateful_layers == [False, True]
    x = torch.rand(12, 2, 3) * 5
    full, _ = model(x)
    first, states = model(x[:5])
    second, states = model(x[5:], states)
    torch.testing.assert_close(torch.cat([first, second]), full)
    assert isinstance(states[1], LIFFeedForwardState)


def test_mix_with_torch_rnn_and_conv():
    x = torch.ones(10, 3, 20)
    state = [None, torch.randn(2, 3, 4), None]
    z, (s1, s2, s3) = SequentialState(
        LIFRecurrent(20, 10), torch.nn.RNN(10, 4, 2), LIFRecurrent(4, 1)
    )(x, state)
    assert z.shape == (10, 3, 1)
    assert s1.v.shape == (3, 10) and s2.shape == (2, 3, 4) and s3.v.shape == (3, 1)
    model = SequentialState(
        Lift(torch.nn.Conv2d(1, 8, 3)),  # (1, 2, 8, 2, 2)
        torch.nn.Flatten(2),  # (1, 2, 32)
        LIFRecurrent(32, 6),
        torch.nn.RNN(6, 4, 2),
        LIFRecurrent(4, 1),
    )
    z, _ = model(torch.ones(1, 2, 1, 4, 4))
    assert z.shape == (1, 2, 1)


def test_return_hidden():
    model = SequentialState(
        torch.nn.Linear(2, 3), LIF(), torch.nn.ReLU(), return_hidden=True
    )
    hidden, states = model(torch.ones(4, 1, 2))
    assert [tuple(h.shape) for h in hidden] == [(4, 1, 3)] * 3
    torch.testing.assert_close(hidden[2], hidden[1].relu())
    assert "return_hidden=True" in repr(model)


def test_ordered_dict_and_flags_follow_changes():
    named = SequentialState(OrderedDict(linear=torch.nn.Linear(2, 2), lif=LIF()))
    assert named.stateful_layers == [False, True]
    assert isinstance(named(torch.ones(3, 1, 2))[1][1], LIFFeedForwardState)
    model = SequentialState(torch.nn.Linear(2, 2), LIF())
    model.append(torch.nn.ReLU())
    model.insert(0, LIF())
    assert model.stateful_layers == [True, False, True, False]
    model[2] = torch.nn.Tanh()
    del model[0]
    assert model.stateful_layers == [False, False, False]
    out, states = model(torch.ones(3, 1, 2))
    assert states == [None, None, None]


def test_backprop_through_time():
    model = SequentialState(
        torch.nn.Linear(1, 4), LIFCell(), torch.nn.Linear(4, 1), LIFCell()
    )
    state = None
    for x in torch.ones(6, 2, 1) * 5:
        out, state = model(x, state)
    state[1].v.sum().backward()
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0


def test_forward_state_hooks():
    model = SequentialState(
        torch.nn.Linear(1, 10, bias=False), LIFRecurrent(10, 10), LIF(), LIF()
    )
    inputs, states = [], []

    def hook(module, inp, output):
        inputs.append(inp[0])
        states.append(inp[1])

    model.register_forward_state_hooks(hook)
    data = torch.ones(10, 2, 8, 1)
    _, s = model(data)
    assert len(inputs) == 3 and states == [None] * 3
    assert torch.stack(inputs).shape == (3, 10, 2, 8, 10)
    states.clear()
    model(data, s)
    assert all(hasattr(state, "v") for state in states)
    with pytest.raises(ValueError, match="already in place"):
        model.register_forward_state_hooks(hook)
    model.remove_forward_state_hooks()
    assert model.forward_state_hooks == []
    states.clear()
    model(data, s)
    assert states == []
    with pytest.raises(TypeError, match="callable"):
        model.register_forward_state_hooks("hook")


def test_state_lists_norse_accepts():
    model = SequentialState(torch.nn.Linear(1, 1), LIF(), torch.nn.ReLU())
    x = torch.ones(2, 1, 1)
    # entries of stateless layers are ignored and kept, as in Norse 1.1
    marker = object()
    _, states = model(x, [marker, None, "kept"])
    assert states[0] is marker and states[2] == "kept"
    # a list without entries for trailing stateless layers, or with extra entries
    _, states = model(x, [None, None])
    assert len(states) == 2 and isinstance(states[1], LIFFeedForwardState)
    _, states = model(x, [None, None, None, "extra"])
    assert states[3] == "extra"
    # without stateful layers the state is not read at all
    stateless = SequentialState(torch.nn.Linear(1, 1))
    assert stateless(x, ("anything",))[1] == ("anything",)


def test_errors():
    with pytest.raises(TypeError, match="argument 1 is function"):
        SequentialState(torch.nn.ReLU(), lambda x: x)
    model = SequentialState(torch.nn.Linear(1, 1), LIF())
    x = torch.ones(2, 1, 1)
    with pytest.raises(
        IndexError, match="state has 1 entries, but layer 1 \\(LIF\\) takes a state"
    ):
        model(x, [None])
    with pytest.raises(
        TypeError, match="list with one entry per layer.*LIFFeedForward"
    ):
        model(x, LIFFeedForwardState(torch.zeros(1, 1), torch.zeros(1, 1)))
    with pytest.raises(TypeError, match="list with one entry per layer.*got int"):
        model(x, 3)
    with pytest.raises(TypeError, match="written into it; got mappingproxy"):
        model(x, MappingProxyType({0: None, 1: None}))  # read-only

    class Bad(torch.nn.Module):
        def forward(self, x, state=None):
            return x

    with pytest.raises(TypeError, match="layer 0 \\(Bad\\)"):
        SequentialState(Bad())(x)
    with pytest.raises(ValueError, match="one flag per layer \\(2\\), got 1"):
        model.stateful_layers = [True]


def test_encoders_are_called_without_a_state():
    """Norse 1.1's rule: a layer is stateful when its forward takes ``state``; the
    encoders' forward takes only the input (Norse's high-performance-computing
    notebook chains ConstantCurrentLIFEncoder with neuron layers)."""
    torch.manual_seed(0)
    model = SequentialState(
        ConstantCurrentLIFEncoder(8),
        torch.nn.Linear(3, 2),
        LIF(),
    )
    assert model.stateful_layers == [False, False, True]
    out, states = model(torch.rand(4, 3) * 10)
    assert out.shape == (8, 4, 2) and states[0] is None
    for encoder in (
        PoissonEncoder(5),
        PoissonEncoderStep(),
        SpikeLatencyLIFEncoder(5),
        SpikeLatencyEncoder(),
    ):
        assert SequentialState(encoder).stateful_layers == [False], encoder


def test_stateful_rule_of_norse_and_its_extensions():
    class WithState(torch.nn.Module):
        def forward(self, x, state=None):
            return [x + 1, "new"]  # a list is unpacked like a tuple

    class CellWithoutState(LIFCell):
        def forward(self, x):
            return x * 2

    model = SequentialState(
        WithState(),
        CellWithoutState(),
        Lift(LIFCell()),
        Lift(torch.nn.Linear(1, 1)),
        torch.nn.GRU(1, 1),
    )
    assert model.stateful_layers == [True, False, True, False, True]
    out, states = model(torch.ones(3, 2, 1))
    assert states[0] == "new" and states[1] is None and states[3] is None
    assert states[4].shape == (1, 2, 1)

    # assigning the flags overrides the detection (a plain list in Norse 1.1)
    model = SequentialState(WithState(), torch.nn.ReLU())
    model.stateful_layers = [False, False]
    with pytest.raises(TypeError):  # now called as layer(x) and returns a list
        model(torch.ones(1))
    model.stateful_layers[0] = True
    out, states = model(torch.ones(1))
    assert states == ["new", None]


def test_recurrent_sequential_stateful():
    v = SequentialState(torch.nn.Linear(1, 1, bias=False))
    m = RecurrentSequential(v)
    data = torch.ones(10, 1, 1)
    actual, _ = v(v(data)[0] + v(data)[0])
    pred, state = m(*m(data))
    assert isinstance(state, RecurrentSequentialState)
    torch.testing.assert_close(actual, pred)


def test_recurrent_sequential_stateless_and_output_index():
    l1 = torch.nn.Linear(1, 1, bias=False)
    l2 = torch.nn.Linear(1, 1, bias=False)
    data = torch.ones(10, 1, 1)
    m = RecurrentSequential(l1, l2, output_modules=0)
    pred, state = m(data)
    torch.testing.assert_close(pred, l1(data))
    pred, _ = m(pred, state)
    torch.testing.assert_close(pred, l1(l1(data) + l1(data)))
    m = RecurrentSequential(l1, output_modules=[0, -1])
    outputs, state = m(data)
    assert len(outputs) == 2
    pred, _ = m(data, state)
    torch.testing.assert_close(pred[0], l1(data + 2 * l1(data)))


def test_recurrent_sequential_threads_neuron_state():
    torch.manual_seed(0)
    m = RecurrentSequential(torch.nn.Linear(2, 2), LIFCell())
    state, count = None, 0
    for x in torch.ones(10, 3, 2) * 4:
        z, state = m(x, state)
        count += z.sum()
    assert isinstance(state.state[1], LIFFeedForwardState) and count > 0


def test_recurrent_sequential_errors():
    with pytest.raises(ValueError, match="out of range"):
        RecurrentSequential(torch.nn.ReLU(), output_modules=1)
    with pytest.raises(TypeError, match="output_modules"):
        RecurrentSequential(torch.nn.ReLU(), output_modules="last")
    assert RecurrentSequential(torch.nn.ReLU(), torch.nn.ReLU(), output_modules=True)
    m = RecurrentSequential(torch.nn.Linear(2, 3))
    _, state = m(torch.ones(1, 2))
    with pytest.raises(ValueError, match="fed-back output has shape"):
        m(torch.ones(1, 2), state)
    with pytest.raises(TypeError, match="RecurrentSequentialState"):
        m(torch.ones(1, 2), [None])


def test_state_list_is_updated_in_place_when_compiled():
    model = SequentialState(torch.nn.Linear(3, 4), LIF())
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    states = [None, None]
    _, returned = compiled(torch.rand(4, 2, 3), states)
    assert returned is states and isinstance(states[1], LIFFeedForwardState)
