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
    with pytest.raises(ValueError, match="p.tau_adapt_inv"):
        LSNNCell(LSNNParameters(tau_adapt_inv=torch.tensor(-1.0)))
    with pytest.raises(ValueError, match="adjoint=True .*LSNNRecurrent"):
        LSNNRecurrent(2, 3, adjoint=True)
    with pytest.raises(ValueError, match="p.method='adjoint'"):
        LSNN(LSNNParameters(method="adjoint"))
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
