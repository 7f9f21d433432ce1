import pytest
import torch

from norse.torch.functional.lif_ex import LIFExParameters
from norse.torch.module.lif_ex import (
    LIFEx,
    LIFExCell,
    LIFExRecurrent,
    LIFExRecurrentCell,
)

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_equals_time_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 4) * 2).to(dtype)
    out, _ = forms.cell_equals_time_module(LIFExCell(), LIFEx(), x)
    assert out.sum() > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_recurrent_cell_equals_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 2) * 2).to(dtype)
    cell, layer = LIFExRecurrentCell(2, 5).to(dtype), LIFExRecurrent(2, 5).to(dtype)
    out, _ = forms.recurrent_cell_equals_module(cell, layer, x)
    assert out.shape == (20, 3, 5) and out.sum() > 0


def test_first_state_starts_at_v_leak():
    p = LIFExParameters(v_leak=torch.tensor(-0.2))
    state = LIFExRecurrentCell(3, 4, p).initial_state(torch.zeros(2, 3))
    torch.testing.assert_close(state.v, torch.full((2, 4), -0.2))
    assert state.z.shape == state.i.shape == (2, 4) and not state.i.any()


def test_record_states_and_backward(forms):
    x = torch.rand(10, 2, 3) * 2
    forms.record_states(LIFEx(record_states=True), x)
    forms.record_states(LIFExRecurrent(3, 4, record_states=True), x)
    forms.backward(LIFEx(), x)
    forms.backward(LIFExRecurrent(3, 4), x)


def test_bad_input_errors(forms):
    with pytest.warns(RuntimeWarning, match="p.tau_mem_inv"):
        LIFExCell(LIFExParameters(tau_mem_inv=torch.tensor(-100.0)))
    with pytest.raises(ValueError, match="p.delta_T must be positive"):
        LIFEx(LIFExParameters(delta_T=torch.tensor(0.0)))
    forms.rejects_wrong_state_shape(LIFExCell(), torch.rand(2, 3), torch.rand(4, 3))
    forms.rejects_wrong_state_shape(
        LIFExRecurrent(3, 4), torch.rand(5, 2, 3), torch.rand(5, 4, 3)
    )


def test_compiled_time_module_matches_eager():
    torch.manual_seed(0)
    layer = LIFEx()
    # requires grad: with nothing to differentiate the resting voltage becomes a leaf
    # outside the graph (Norse 1.1), which fullgraph=True forbids
    x = (torch.rand(5, 2, 3) * 2).requires_grad_()
    out_eager, state_eager = layer(x)
    out_compiled, state_compiled = torch.compile(
        layer, backend="aot_eager", fullgraph=True
    )(x)
    torch.testing.assert_close(out_eager, out_compiled)
    torch.testing.assert_close(state_eager.v, state_compiled.v)
