"""Shared fixtures of the module tests."""

from types import SimpleNamespace

import pytest
import torch


def _leaves(state):
    """The tensors of a (possibly nested) state tuple, depth first, with dotted names."""
    for field, value in zip(state._fields, state):
        if isinstance(value, tuple):
            for name, leaf in _leaves(value):
                yield f"{field}.{name}", leaf
        else:
            yield field, value


def _assert_states_close(a, b):
    assert type(a) is type(b)
    for (name, x), (_, y) in zip(_leaves(a), _leaves(b)):
        torch.testing.assert_close(x, y, msg=lambda m: f"state.{name}: {m}")


def _check_cell_equals_time_module(cell, layer, x):
    """Threading the state through ``cell`` step by step equals ``layer(x)``; output and
    every state leaf have the input's dtype and the expected shapes."""
    state, outputs = None, []
    for step in x:
        out, state = cell(step, state)
        outputs.append(out)
    out_seq, state_seq = layer(x)
    torch.testing.assert_close(torch.stack(outputs), out_seq)
    _assert_states_close(state, state_seq)
    assert out_seq.dtype == x.dtype
    for name, leaf in _leaves(state_seq):
        assert leaf.dtype == x.dtype, name
        assert leaf.shape == out_seq.shape[1:], name
    return out_seq, state_seq


def _check_recurrent_cell_equals_module(cell, layer, x):
    """The same for the recurrent forms (``layer`` gets the weights of ``cell``)."""
    layer.load_state_dict(cell.state_dict())
    return _check_cell_equals_time_module(cell, layer, x)


def _check_record_states(layer, x):
    out, states = layer(x)
    for name, leaf in _leaves(states):
        assert leaf.shape == out.shape, name


def _check_backward(module, x):
    """Gradients reach the input and every trainable parameter, and are finite."""
    x = x.clone().requires_grad_()
    out, state = module(x)
    loss = out.sum() + sum(leaf.sum() for _, leaf in _leaves(state))
    loss.backward()
    assert (
        x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    )
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


def _check_rejects_wrong_state_shape(module, x, x_other_batch):
    """A state computed for another batch size raises a ValueError naming the field."""
    _, state = module(x_other_batch)
    with pytest.raises(ValueError, match=r"state\..* has shape"):
        module(x, state)


@pytest.fixture
def forms():
    """Checks shared by the module tests of every neuron model (see the functions)."""
    return SimpleNamespace(
        cell_equals_time_module=_check_cell_equals_time_module,
        recurrent_cell_equals_module=_check_recurrent_cell_equals_module,
        record_states=_check_record_states,
        backward=_check_backward,
        rejects_wrong_state_shape=_check_rejects_wrong_state_shape,
        leaves=_leaves,
    )
