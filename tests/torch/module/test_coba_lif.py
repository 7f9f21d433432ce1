import pytest
import torch

import norse.torch as norse
from norse.torch.functional.coba_lif import CobaLIFParameters
from norse.torch.module.coba_lif import (
    CobaLIF,
    CobaLIFCell,
    CobaLIFFeedForwardCell,
    CobaLIFRecurrent,
    CobaLIFRecurrentCell,
)

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_equals_time_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 4) * 6 - 2).to(dtype)
    out, state = forms.cell_equals_time_module(CobaLIFFeedForwardCell(), CobaLIF(), x)
    assert out.sum() > 0 and state.g_i.sum() > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_recurrent_cell_equals_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 2) * 5).to(dtype)
    cell, layer = CobaLIFRecurrentCell(2, 5).to(dtype), CobaLIFRecurrent(2, 5).to(dtype)
    out, _ = forms.recurrent_cell_equals_module(cell, layer, x)
    assert out.shape == (20, 3, 5) and out.sum() > 0


def test_norse_cobalifcell_is_the_recurrent_cell():
    cell = CobaLIFCell(10, 20)
    assert isinstance(cell, CobaLIFRecurrentCell)
    spikes, state = cell(torch.randn(16, 10))
    assert spikes.shape == state.v.shape == state.g_e.shape == (16, 20)
    assert CobaLIFCell(3, 4, CobaLIFParameters(), 0.002).dt == 0.002


def test_first_state_is_at_rest_and_silent_without_input():
    # Norse 1.1 started at v = 0 > v_thresh = -10: every neuron spiked at once
    cell = CobaLIFCell(3, 4)
    state = cell.initial_state(torch.zeros(2, 3))
    torch.testing.assert_close(state.v, torch.full((2, 4), -20.0))
    spikes, state = cell(torch.zeros(2, 3))
    assert spikes.sum() == 0
    torch.testing.assert_close(state.v, torch.full((2, 4), -20.0))  # at its fixed point


def test_record_states_and_backward(forms):
    x = torch.rand(10, 2, 3) * 5
    forms.record_states(CobaLIF(record_states=True), x)
    forms.record_states(CobaLIFRecurrent(3, 4, record_states=True), x)
    forms.backward(CobaLIF(), x)
    forms.backward(CobaLIFRecurrent(3, 4), x)


def test_bad_input_errors(forms):
    with pytest.warns(RuntimeWarning, match="p.tau_syn_exc_inv"):
        CobaLIFCell(2, 3, CobaLIFParameters(tau_syn_exc_inv=torch.tensor(-0.2)))
    with pytest.raises(ValueError, match="p.c_m_inv must be positive"):
        CobaLIF(CobaLIFParameters(c_m_inv=torch.tensor(0.0)))
    with pytest.raises(ValueError, match="p.g_l must be non-negative"):
        CobaLIFFeedForwardCell(CobaLIFParameters(g_l=torch.tensor(-1.0)))
    forms.rejects_wrong_state_shape(
        CobaLIFFeedForwardCell(), torch.rand(2, 3), torch.rand(4, 3)
    )
    forms.rejects_wrong_state_shape(
        CobaLIFCell(3, 4), torch.rand(2, 3), torch.rand(4, 3)
    )


def test_compiled_recurrent_module_matches_eager():
    torch.manual_seed(0)
    layer = CobaLIFRecurrent(3, 4)
    x = torch.rand(5, 2, 3) * 5
    out_eager, state_eager = layer(x)
    out_compiled, state_compiled = torch.compile(
        layer, backend="aot_eager", fullgraph=True
    )(x)
    torch.testing.assert_close(out_eager, out_compiled)
    torch.testing.assert_close(state_eager.g_e, state_compiled.g_e)


@pytest.mark.parametrize("module", [norse.CobaLIFCell, norse.CobaLIFRecurrent])
def test_recurrent_forms_use_the_whole_recurrent_matrix_as_norse(module):
    """Norse 1.1's CobaLIFCell keeps self-connections and draws its default weights
    from N(0, 1/input_size) and N(0, 1/hidden_size); autapses=False still masks."""
    torch.manual_seed(0)
    layer = module(400, 300)
    assert layer.autapses
    assert layer.recurrent_weights.diagonal().abs().min() > 0
    assert torch.equal(layer._effective_recurrent_weights(), layer.recurrent_weights)
    assert abs(layer.input_weights.std().item() - 400**-0.5) < 0.002
    assert abs(layer.recurrent_weights.std().item() - 300**-0.5) < 0.002
    masked = module(4, 3, autapses=False)
    assert torch.all(masked._effective_recurrent_weights().diagonal() == 0)


def test_a_self_connection_drives_the_neuron_itself():
    """Only the diagonal weight couples a single neuron's spike back to itself."""
    weights = torch.tensor([[2.0]])
    cell = norse.CobaLIFCell(1, 1, input_weights=weights, recurrent_weights=weights)
    spiking = norse.CobaLIFState(
        z=torch.ones(1, 1),
        v=torch.full((1, 1), -65.0),
        g_e=torch.zeros(1, 1),
        g_i=torch.zeros(1, 1),
    )
    _, state = cell(torch.zeros(1, 1), spiking)
    assert state.g_e.item() > 0  # the spike's own recurrent conductance
