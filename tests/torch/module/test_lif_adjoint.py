"""``LIFParameters(method="adjoint")`` in the four LIF module forms (Norse 1.1 raised).

The modules run the adjoint steps of :mod:`norse.torch.functional.adjoint.lif_adjoint`:
a Heaviside forward pass and the adjoint backward pass (checked there against BPTT and
the continuous-time gradients); here: selection, equality with the functional steps,
the module-form contracts, and that training a small problem works.
"""

import pytest
import torch

from norse.torch.functional.adjoint.lif_adjoint import (
    lif_adjoint_step,
    lif_feed_forward_adjoint_step,
)
from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters, LIFState
from norse.torch.module.lif import LIF, LIFCell, LIFRecurrent, LIFRecurrentCell

ADJOINT = LIFParameters(method="adjoint")


def _input(seed=0, steps=30, batch=4, features=5):
    torch.manual_seed(seed)
    return torch.rand(steps, batch, features) * 3


def test_forms_agree_and_run_backward(forms):
    x = _input()
    out, _ = forms.cell_equals_time_module(LIFCell(ADJOINT), LIF(ADJOINT), x)
    assert out.sum() > 0
    cell, layer = LIFRecurrentCell(5, 6, ADJOINT), LIFRecurrent(5, 6, ADJOINT)
    out, _ = forms.recurrent_cell_equals_module(cell, layer, x)
    assert out.sum() > 0
    forms.backward(LIF(ADJOINT), x)
    forms.backward(LIFRecurrent(5, 6, ADJOINT), x)


def test_feed_forward_module_runs_the_adjoint_step():
    x = _input().requires_grad_()
    spikes, _ = LIF(ADJOINT)(x)
    (grad,) = torch.autograd.grad((spikes * torch.arange(30.0)[:, None, None]).sum(), x)

    state, outputs = LIFFeedForwardState(torch.zeros(4, 5), torch.zeros(4, 5)), []
    for x_t in x:
        z, state = lif_feed_forward_adjoint_step(x_t, state, ADJOINT)
        outputs.append(z)
    torch.testing.assert_close(spikes, torch.stack(outputs))
    weighted = (torch.stack(outputs) * torch.arange(30.0)[:, None, None]).sum()
    (expected,) = torch.autograd.grad(weighted, x)
    assert expected.abs().sum() > 0
    torch.testing.assert_close(grad, expected)


def test_recurrent_module_runs_the_adjoint_step():
    x = _input(1)
    layer = LIFRecurrent(5, 6, ADJOINT)
    spikes, _ = layer(x)
    loss = (spikes * torch.arange(30.0)[:, None, None]).sum()
    grads = torch.autograd.grad(loss, (layer.input_weights, layer.recurrent_weights))

    w_in = layer.input_weights
    w_rec = layer.recurrent_weights * (1 - torch.eye(6))  # no autapses
    state, outputs = LIFState(*(torch.zeros(4, 6) for _ in range(3))), []
    for x_t in x:
        z, state = lif_adjoint_step(x_t, state, w_in, w_rec, ADJOINT)
        outputs.append(z)
    weighted = (torch.stack(outputs) * torch.arange(30.0)[:, None, None]).sum()
    expected = torch.autograd.grad(
        weighted, (layer.input_weights, layer.recurrent_weights)
    )
    for actual, reference in zip(grads, expected):
        assert reference.abs().sum() > 0
        torch.testing.assert_close(actual, reference)


def test_method_follows_parameter_assignment():
    x = (_input(2)[0] * 40).requires_grad_()  # one step: spikes need v_d > v_th
    cell = LIFCell(ADJOINT)
    assert cell.uses_adjoint and cell.p.method == "adjoint"
    adjoint_grad = torch.autograd.grad(cell(x)[0].sum(), x)[0]
    assert adjoint_grad.abs().sum() > 0
    cell.p = LIFParameters()  # SuperSpike
    assert not cell.uses_adjoint
    surrogate_grad = torch.autograd.grad(cell(x)[0].sum(), x)[0]
    assert not torch.allclose(adjoint_grad, surrogate_grad)
    cell.p = ADJOINT
    torch.testing.assert_close(
        torch.autograd.grad(cell(x)[0].sum(), x)[0], adjoint_grad
    )


def test_sparse_input():
    x = (_input(3) > 2).float()
    layer = LIFRecurrent(5, 6, ADJOINT)
    dense, _ = layer(x)
    sparse, _ = layer(x.to_sparse())
    assert sparse.is_sparse
    torch.testing.assert_close(sparse.to_dense(), dense)
    cell = LIFCell(ADJOINT)
    torch.testing.assert_close(cell(x[0].to_sparse())[0], cell(x[0])[0])


def test_other_methods_still_checked():
    with pytest.raises(ValueError, match="p.method"):
        LIF(LIFParameters(method="adjoin"))


def _train(model, lr, steps=25):
    """Trains spike counts towards 4 per neuron; returns the losses."""
    torch.manual_seed(0)
    x = (torch.rand(30, 8, 10) < 0.2).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        spikes = model(x)
        loss = ((spikes.sum(0) - 4.0) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _over_time(neurons, x, is_cell):
    """Spikes of a time module, or of a cell looped over the first dimension."""
    if not is_cell:
        return neurons(x)[0]
    state, outputs = None, []
    for x_t in x:
        z, state = neurons(x_t, state)
        outputs.append(z)
    return torch.stack(outputs)


class _FeedForward(torch.nn.Module):
    def __init__(self, use_cell: bool):
        super().__init__()
        torch.manual_seed(1)
        self.linear = torch.nn.Linear(10, 12)
        # Every neuron spikes at first: silent neurons get no gradient from spike times.
        with torch.no_grad():
            self.linear.weight.abs_()
            self.linear.bias.zero_()
        self.neurons = LIFCell(ADJOINT) if use_cell else LIF(ADJOINT)
        self.use_cell = use_cell

    def forward(self, x):
        return _over_time(self.neurons, self.linear(x) * 3, self.use_cell)


class _Recurrent(torch.nn.Module):
    def __init__(self, use_cell: bool):
        super().__init__()
        torch.manual_seed(1)
        kind = LIFRecurrentCell if use_cell else LIFRecurrent
        self.neurons = kind(10, 12, ADJOINT)
        with torch.no_grad():  # every neuron spikes at first
            self.neurons.input_weights.abs_().mul_(3)
        self.use_cell = use_cell

    def forward(self, x):
        return _over_time(self.neurons, x, self.use_cell)


@pytest.mark.parametrize(
    "model, lr",
    [
        (_FeedForward(False), 0.005),
        (_FeedForward(True), 0.005),
        (_Recurrent(False), 0.02),
        (_Recurrent(True), 0.02),
    ],
    ids=["LIF", "LIFCell", "LIFRecurrent", "LIFRecurrentCell"],
)
def test_training_with_adjoint_gradients_reduces_the_loss(model, lr):
    losses = _train(model, lr)
    assert losses[-1] < 0.3 * losses[0], losses


def test_compiled_cell_matches_eager():
    cell = LIFCell(ADJOINT)
    compiled = torch.compile(cell, backend="aot_eager", fullgraph=True)
    x = _input(4, steps=4, batch=3)
    eager_x, compiled_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    eager_state = compiled_state = cell.initial_state(torch.zeros(3, 5))
    eager_loss = compiled_loss = 0.0
    for t in range(4):
        eager_out, eager_state = cell(eager_x[t], eager_state)
        compiled_out, compiled_state = compiled(compiled_x[t], compiled_state)
        torch.testing.assert_close(compiled_out, eager_out)
        eager_loss = eager_loss + t * eager_out.sum() + eager_state.v.sum()
        compiled_loss = compiled_loss + t * compiled_out.sum() + compiled_state.v.sum()
    torch.testing.assert_close(
        torch.autograd.grad(compiled_loss, compiled_x)[0],
        torch.autograd.grad(eager_loss, eager_x)[0],
    )
