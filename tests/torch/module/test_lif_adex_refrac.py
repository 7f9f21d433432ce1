import pytest
import torch

from norse.torch.functional.lif_adex import LIFAdExParameters
from norse.torch.functional.lif_adex_refrac import LIFAdExRefracParameters
from norse.torch.module.lif_adex_refrac import (
    LIFAdExRefrac,
    LIFAdExRefracCell,
    LIFAdExRefracRecurrent,
    LIFAdExRefracRecurrentCell,
)

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_equals_time_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 4) * 3).to(dtype)
    out, state = forms.cell_equals_time_module(LIFAdExRefracCell(), LIFAdExRefrac(), x)
    assert out.sum() > 0 and state.rho.sum() > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_recurrent_cell_equals_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 2) * 3).to(dtype)
    cell = LIFAdExRefracRecurrentCell(2, 5).to(dtype)
    layer = LIFAdExRefracRecurrent(2, 5).to(dtype)
    out, _ = forms.recurrent_cell_equals_module(cell, layer, x)
    assert out.shape == (20, 3, 5) and out.sum() > 0


def test_nested_first_state_and_parameters():
    p = LIFAdExRefracParameters(LIFAdExParameters(v_leak=torch.tensor(-0.3)))
    cell = LIFAdExRefracCell(p)
    state = cell.initial_state(torch.zeros(2, 3))
    torch.testing.assert_close(state.lif_adex.v, torch.full((2, 3), -0.3))
    assert state.lif_adex.a.shape == state.rho.shape == (2, 3)
    assert "params.lif_adex.adaptation_current" in cell.double().state_dict()
    assert cell.p.lif_adex.adaptation_spike.dtype == torch.float64


def test_record_states_and_backward(forms):
    x = torch.rand(10, 2, 3) * 3
    forms.record_states(LIFAdExRefrac(record_states=True), x)
    forms.record_states(LIFAdExRefracRecurrent(3, 4, record_states=True), x)
    forms.backward(LIFAdExRefrac(), x)
    forms.backward(LIFAdExRefracRecurrent(3, 4), x)


def test_bad_input_errors(forms):
    bad_tau = LIFAdExParameters(tau_syn_inv=torch.tensor(-1.0))
    with pytest.warns(RuntimeWarning, match="p.lif_adex.tau_syn_inv"):
        LIFAdExRefracCell(LIFAdExRefracParameters(bad_tau))
    with pytest.raises(ValueError, match="p.lif_adex.delta_T must be positive"):
        LIFAdExRefrac(
            LIFAdExRefracParameters(LIFAdExParameters(delta_T=torch.tensor(0.0)))
        )
    with pytest.raises(ValueError, match="p.lif_adex.method='adjoint'"):
        LIFAdExRefracRecurrent(
            2, 3, LIFAdExRefracParameters(LIFAdExParameters(method="adjoint"))
        )
    forms.rejects_wrong_state_shape(
        LIFAdExRefrac(), torch.rand(5, 2, 3), torch.rand(5, 4, 3)
    )
    forms.rejects_wrong_state_shape(
        LIFAdExRefracRecurrentCell(3, 4), torch.rand(2, 3), torch.rand(4, 3)
    )
