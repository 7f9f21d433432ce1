import pytest
import torch

from norse.torch.functional.lsnn import LSNNParameters
from norse.torch.module.lsnn import LSNN, LSNNCell, LSNNRecurrent, LSNNRecurrentCell

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_equals_time_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 4) * 3).to(dtype)
    out, state = forms.cell_equals_time_module(LSNNCell(), LSNN(), x)
    assert out.sum() > 0 and (state.b > 1.0).any()  # spikes raised some thresholds


@pytest.mark.parametrize("dtype", DTYPES)
def test_recurrent_cell_equals_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 2) * 3).to(dtype)
    cell, layer = LSNNRecurrentCell(2, 5).to(dtype), LSNNRecurrent(2, 5).to(dtype)
    out, state = forms.recurrent_cell_equals_module(cell, layer, x)
    assert out.shape == (20, 3, 5) and out.sum() > 0


def test_first_state_starts_at_rest_with_threshold_v_th():
    p = LSNNParameters(v_leak=torch.tensor(0.1), v_th=torch.tensor(0.7))
    state = LSNNCell(p).initial_state(torch.zeros(2, 3))
    torch.testing.assert_close(state.v, torch.full((2, 3), 0.1))
    torch.testing.assert_close(state.b, torch.full((2, 3), 0.7))
    recurrent = LSNNRecurrent(4, 3, p).initial_state(torch.zeros(5, 2, 4))
    assert recurrent.z.shape == recurrent.b.shape == (2, 3)


def test_record_states_and_backward(forms):
    x = torch.rand(10, 2, 3) * 3
    forms.record_states(LSNN(record_states=True), x)
    forms.record_states(LSNNRecurrent(3, 4, record_states=True), x)
    forms.backward(LSNN(), x)
    forms.backward(LSNNRecurrent(3, 4), x)


def test_bad_input_errors(forms):
    with pytest.warns(RuntimeWarning, match="p.tau_adapt_inv"):
        LSNNCell(LSNNParameters(tau_adapt_inv=torch.tensor(-1.0)))
    with pytest.raises(ValueError, match="p.method"):
        LSNN(LSNNParameters(method="adjoint_typo"))
    forms.rejects_wrong_state_shape(LSNN(), torch.rand(5, 2, 3), torch.rand(5, 4, 3))
    forms.rejects_wrong_state_shape(
        LSNNRecurrentCell(3, 4), torch.rand(2, 3), torch.rand(4, 3)
    )


def test_compiled_cell_matches_eager():
    torch.manual_seed(0)
    cell = LSNNCell()
    compiled = torch.compile(cell, backend="aot_eager", fullgraph=True)
    x = torch.rand(4, 3, 5) * 3
    # start from a state, so that one graph serves every step
    state_eager = state_compiled = cell.initial_state(torch.zeros(3, 5))
    for step in x:
        out_eager, state_eager = cell(step, state_eager)
        out_compiled, state_compiled = compiled(step, state_compiled)
        torch.testing.assert_close(out_eager, out_compiled)
    torch.testing.assert_close(state_eager.b, state_compiled.b)


def test_adjoint_flag_and_method_select_adjoint_gradients(forms):
    """``adjoint=True`` (Norse 1.1's argument) or ``p.method="adjoint"`` run the steps of
    :mod:`norse.torch.functional.adjoint.lsnn_adjoint` (validated there)."""
    from norse.torch.functional.adjoint.lsnn_adjoint import (
        lsnn_adjoint_step,
        lsnn_feed_forward_adjoint_step,
    )
    from norse.torch.functional.lsnn import LSNNFeedForwardState, LSNNState

    torch.manual_seed(0)
    x = (torch.rand(20, 3, 4) * 3).requires_grad_()
    heaviside, _ = LSNN(LSNNParameters(method="heaviside"))(x)
    state = LSNNFeedForwardState(torch.zeros(3, 4), torch.zeros(3, 4), torch.ones(3, 4))
    expected = _weighted_spike_gradient(lsnn_feed_forward_adjoint_step, state, x)
    for layer in (LSNN(adjoint=True), LSNN(LSNNParameters(method="adjoint"))):
        assert layer.uses_adjoint
        spikes, _ = layer(x)
        torch.testing.assert_close(spikes, heaviside)
        weighted = (spikes * torch.arange(20.0)[:, None, None]).sum()
        torch.testing.assert_close(torch.autograd.grad(weighted, x)[0], expected)
    assert not LSNN().uses_adjoint

    layer = LSNNRecurrent(4, 5, adjoint=True)
    spikes, _ = layer(x)
    weights = (layer.input_weights, layer.recurrent_weights)
    grads = torch.autograd.grad(spikes.sum(), weights)
    w_rec = layer.recurrent_weights * (1 - torch.eye(5))
    state = LSNNState(
        torch.zeros(3, 5), torch.zeros(3, 5), torch.zeros(3, 5), torch.ones(3, 5)
    )
    total = 0.0
    for x_t in x:
        z, state = lsnn_adjoint_step(x_t, state, layer.input_weights, w_rec, layer.p)
        total = total + z.sum()
    for actual, reference in zip(grads, torch.autograd.grad(total, weights)):
        assert reference.abs().sum() > 0
        torch.testing.assert_close(actual, reference)

    forms.cell_equals_time_module(
        LSNNCell(adjoint=True), LSNN(adjoint=True), x.detach()
    )
    forms.recurrent_cell_equals_module(
        LSNNRecurrentCell(4, 5, adjoint=True),
        LSNNRecurrent(4, 5, adjoint=True),
        x.detach(),
    )
    forms.backward(LSNNRecurrent(4, 5, adjoint=True), x.detach())


def _weighted_spike_gradient(step, state, x):
    """d/dx of the time-weighted spike count of ``step`` unrolled over ``x``."""
    total = 0.0
    for t, x_t in enumerate(x):
        z, state = step(x_t, state)
        total = total + t * z.sum()
    return torch.autograd.grad(total, x)[0]
