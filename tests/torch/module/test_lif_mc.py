import pytest
import torch

from norse.torch.functional.lif import LIFParameters
from norse.torch.module.lif_mc import (
    LIFMC,
    LIFMCCell,
    LIFMCRecurrent,
    LIFMCRecurrentCell,
)

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_equals_time_module(forms, dtype):
    torch.manual_seed(0)
    g = torch.randn(4, 4, dtype=dtype) * 10
    x = (torch.rand(20, 3, 4) * 3).to(dtype)
    out, _ = forms.cell_equals_time_module(LIFMCCell(g), LIFMC(g), x)
    assert out.sum() > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_recurrent_cell_equals_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 2) * 3).to(dtype)
    cell, layer = LIFMCRecurrentCell(2, 5).to(dtype), LIFMCRecurrent(2, 5).to(dtype)
    out, _ = forms.recurrent_cell_equals_module(cell, layer, x)
    torch.testing.assert_close(layer.g_coupling, cell.g_coupling)
    assert out.shape == (20, 3, 5) and out.sum() > 0


def test_norse_signature_and_coupling_storage():
    # Norse 1.1: LIFMCRecurrentCell(input_size, hidden_size, p, g_coupling=None)
    cell = LIFMCRecurrentCell(2, 3, LIFParameters(v_leak=torch.tensor(0.1)))
    assert isinstance(
        cell.g_coupling, torch.nn.Parameter
    ) and cell.g_coupling.shape == (3, 3)
    assert "g_coupling" in dict(cell.named_parameters())
    state = cell.initial_state(torch.zeros(4, 2))
    torch.testing.assert_close(state.v, torch.full((4, 3), 0.1))
    fixed = LIFMCRecurrentCell(2, 3, g_coupling=torch.eye(3))
    assert "g_coupling" in dict(fixed.named_buffers())
    assert fixed.double().g_coupling.dtype == torch.float64


def test_zero_coupling_equals_lif():
    from norse.torch.module.lif import LIF

    x = torch.rand(15, 2, 3) * 3
    out_mc, state_mc = LIFMC(torch.zeros(3, 3))(x)
    out_lif, state_lif = LIF()(x)
    torch.testing.assert_close(out_mc, out_lif)
    torch.testing.assert_close(state_mc.v, state_lif.v)


def test_record_states_and_backward(forms):
    x = torch.rand(10, 2, 3) * 3
    forms.record_states(LIFMC(torch.eye(3), record_states=True), x)
    forms.record_states(LIFMCRecurrent(3, 4, record_states=True), x)
    forms.backward(LIFMC(torch.nn.Parameter(torch.randn(3, 3))), x)
    forms.backward(LIFMCRecurrent(3, 4), x)


def test_bad_input_errors(forms):
    with pytest.warns(RuntimeWarning, match="p.tau_syn_inv"):
        LIFMCRecurrentCell(2, 3, LIFParameters(tau_syn_inv=torch.tensor(-1.0)))
    with pytest.raises(ValueError, match=r"g_coupling must have shape \(3, 3\)"):
        LIFMCRecurrentCell(2, 3, g_coupling=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"g_coupling must have shape \(n, n\)"):
        LIFMCCell(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="needs g_coupling"):
        LIFMC(None)
    with pytest.raises(ValueError, match="must end in 3 compartments"):
        LIFMC(torch.eye(3))(torch.rand(5, 2, 4))
    forms.rejects_wrong_state_shape(
        LIFMCCell(torch.eye(3)), torch.rand(2, 3), torch.rand(4, 3)
    )
    forms.rejects_wrong_state_shape(
        LIFMCRecurrent(3, 4), torch.rand(5, 2, 3), torch.rand(5, 4, 3)
    )


def test_copy_and_save_keep_the_coupling_bound_to_the_copy(tmp_path):
    import copy

    layer = LIFMCRecurrent(3, 4)
    x = torch.rand(6, 2, 3) * 3
    before = layer(x)[0]
    clone = copy.deepcopy(layer)
    assert clone.activation.__self__ is clone
    with torch.no_grad():
        clone.g_coupling.zero_()
    torch.testing.assert_close(layer(x)[0], before)  # the original keeps its coupling
    uncoupled = LIFMCRecurrent(
        3,
        4,
        g_coupling=torch.zeros(4, 4),
        input_weights=layer.input_weights.detach(),
        recurrent_weights=layer.recurrent_weights.detach(),
    )
    torch.testing.assert_close(clone(x)[0], uncoupled(x)[0])
    torch.save(layer, tmp_path / "layer.pt")
    loaded = torch.load(tmp_path / "layer.pt", weights_only=False)
    torch.testing.assert_close(loaded(x)[0], before)
