import pytest
import torch

from norse.torch.functional.lif_adex import LIFAdExParameters
from norse.torch.module.lif_adex import (
    LIFAdEx,
    LIFAdExCell,
    LIFAdExRecurrent,
    LIFAdExRecurrentCell,
)

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_equals_time_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 4) * 2).to(dtype)
    out, state = forms.cell_equals_time_module(LIFAdExCell(), LIFAdEx(), x)
    assert out.sum() > 0 and state.a.abs().sum() > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_recurrent_cell_equals_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 2) * 2).to(dtype)
    cell, layer = LIFAdExRecurrentCell(2, 5).to(dtype), LIFAdExRecurrent(2, 5).to(dtype)
    out, _ = forms.recurrent_cell_equals_module(cell, layer, x)
    assert out.shape == (20, 3, 5) and out.sum() > 0


def test_first_state_starts_at_v_leak_without_adaptation():
    p = LIFAdExParameters(v_leak=torch.tensor(-0.2))
    state = LIFAdExCell(p).initial_state(torch.zeros(2, 3))
    torch.testing.assert_close(state.v, torch.full((2, 3), -0.2))
    assert state.a.shape == (2, 3) and not state.a.any()


def test_record_states_and_backward(forms):
    x = torch.rand(10, 2, 3) * 2
    forms.record_states(LIFAdEx(record_states=True), x)
    forms.record_states(LIFAdExRecurrent(3, 4, record_states=True), x)
    forms.backward(LIFAdEx(), x)
    forms.backward(LIFAdExRecurrent(3, 4), x)


def test_bad_input_errors(forms):
    with pytest.warns(RuntimeWarning, match="p.tau_ada_inv"):
        LIFAdExCell(LIFAdExParameters(tau_ada_inv=torch.tensor(-2.0)))
    with pytest.raises(ValueError, match="p.delta_T must be positive"):
        LIFAdExRecurrentCell(2, 3, LIFAdExParameters(delta_T=torch.tensor(-0.5)))
    forms.rejects_wrong_state_shape(LIFAdEx(), torch.rand(5, 2, 3), torch.rand(5, 4, 3))
    forms.rejects_wrong_state_shape(
        LIFAdExRecurrentCell(3, 4), torch.rand(2, 3), torch.rand(4, 3)
    )
