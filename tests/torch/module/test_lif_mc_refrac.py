import pytest
import torch

from norse.torch.functional.lif import LIFParameters
from norse.torch.functional.lif_refrac import LIFRefracParameters
from norse.torch.module.lif_mc_refrac import (
    LIFMCRefrac,
    LIFMCRefracCell,
    LIFMCRefracRecurrent,
    LIFMCRefracRecurrentCell,
)

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_equals_time_module(forms, dtype):
    torch.manual_seed(0)
    g = torch.randn(4, 4, dtype=dtype) * 10
    x = (torch.rand(20, 3, 4) * 3).to(dtype)
    out, state = forms.cell_equals_time_module(LIFMCRefracCell(g), LIFMCRefrac(g), x)
    assert out.sum() > 0 and state.rho.sum() > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_recurrent_cell_equals_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 2) * 3).to(dtype)
    cell = LIFMCRefracRecurrentCell(2, 5).to(dtype)
    layer = LIFMCRefracRecurrent(2, 5).to(dtype)
    out, _ = forms.recurrent_cell_equals_module(cell, layer, x)
    assert out.shape == (20, 3, 5) and out.sum() > 0


def test_norse_signature_and_first_state():
    p = LIFRefracParameters(LIFParameters(v_leak=torch.tensor(0.1)))
    cell = LIFMCRefracRecurrentCell(2, 3, p, g_coupling=torch.zeros(3, 3))
    state = cell.initial_state(torch.zeros(4, 2))
    torch.testing.assert_close(state.lif.v, torch.full((4, 3), 0.1))
    assert state.rho.shape == (4, 3) and not state.rho.any()
    assert isinstance(LIFMCRefracRecurrentCell(2, 3).p, LIFRefracParameters)


def test_record_states_and_backward(forms):
    x = torch.rand(10, 2, 3) * 3
    forms.record_states(LIFMCRefrac(torch.eye(3), record_states=True), x)
    forms.record_states(LIFMCRefracRecurrent(3, 4, record_states=True), x)
    forms.backward(LIFMCRefrac(torch.nn.Parameter(torch.randn(3, 3))), x)
    forms.backward(LIFMCRefracRecurrent(3, 4), x)


def test_bad_input_errors(forms):
    bad = LIFRefracParameters(LIFParameters(tau_mem_inv=torch.tensor(-1.0)))
    with pytest.warns(RuntimeWarning, match="p.lif.tau_mem_inv"):
        LIFMCRefracRecurrentCell(2, 3, bad)
    with pytest.raises(ValueError, match="p.rho_reset"):
        LIFMCRefracCell(torch.eye(2), LIFRefracParameters(rho_reset=torch.tensor(-2.0)))
    with pytest.raises(ValueError, match="p.lif.method='adjoint'"):
        LIFMCRefracRecurrent(2, 3, LIFRefracParameters(LIFParameters(method="adjoint")))
    forms.rejects_wrong_state_shape(
        LIFMCRefrac(torch.eye(3)), torch.rand(5, 2, 3), torch.rand(5, 4, 3)
    )
    forms.rejects_wrong_state_shape(
        LIFMCRefracRecurrentCell(3, 4), torch.rand(2, 3), torch.rand(4, 3)
    )
