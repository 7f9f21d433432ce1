import pytest
import torch

from norse.torch.functional.lif import LIFParameters
from norse.torch.functional.lif_refrac import LIFRefracParameters
from norse.torch.module.lif_refrac import (
    LIFRefrac,
    LIFRefracCell,
    LIFRefracRecurrent,
    LIFRefracRecurrentCell,
)

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_equals_time_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 4) * 3).to(dtype)
    out, state = forms.cell_equals_time_module(LIFRefracCell(), LIFRefrac(), x)
    assert out.sum() > 0 and state.rho.sum() > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_recurrent_cell_equals_module(forms, dtype):
    torch.manual_seed(0)
    x = (torch.rand(20, 3, 2) * 3).to(dtype)
    cell = LIFRefracRecurrentCell(2, 5).to(dtype)
    layer = LIFRefracRecurrent(2, 5).to(dtype)
    out, _ = forms.recurrent_cell_equals_module(cell, layer, x)
    assert out.shape == (20, 3, 5) and out.sum() > 0


def test_nested_first_state():
    p = LIFRefracParameters(LIFParameters(v_leak=torch.tensor(-0.3)))
    state = LIFRefracRecurrent(3, 4, p).initial_state(torch.zeros(6, 2, 3))
    torch.testing.assert_close(state.lif.v, torch.full((2, 4), -0.3))
    assert state.lif.z.shape == state.lif.i.shape == state.rho.shape == (2, 4)
    assert not state.rho.any()


def test_time_module_never_spikes_within_rho_reset_steps():
    out, _ = LIFRefrac()(torch.full((60, 1, 1), 5.0))
    times = out.flatten().nonzero().flatten()
    assert len(times) > 3 and (times.diff() >= 6).all()


def test_nested_parameters_move_and_save_with_the_module():
    p = LIFRefracParameters(
        LIFParameters(tau_mem_inv=torch.tensor(50.0)), torch.tensor(3.0)
    )
    layer = LIFRefracRecurrent(2, 3, p).double()
    assert layer.p.lif.tau_mem_inv.dtype == torch.float64
    assert layer.p.lif.method == "super" and float(layer.p.rho_reset) == 3.0
    keys = set(layer.state_dict())
    assert {"params.lif.tau_mem_inv", "params.rho_reset"} <= keys
    # a Norse 1.1 checkpoint has only the weights; it still loads strictly
    weights_only = {
        k: v for k, v in layer.state_dict().items() if k.endswith("weights")
    }
    fresh = LIFRefracRecurrent(2, 3, p).double()
    fresh.load_state_dict(weights_only)
    torch.testing.assert_close(fresh.input_weights, layer.input_weights)
    assert float(fresh.p.lif.tau_mem_inv) == 50.0


def test_record_states_and_backward(forms):
    x = torch.rand(10, 2, 3) * 3
    forms.record_states(LIFRefrac(record_states=True), x)
    forms.record_states(LIFRefracRecurrent(3, 4, record_states=True), x)
    forms.backward(LIFRefrac(), x)
    forms.backward(LIFRefracRecurrent(3, 4), x)


def test_bad_input_errors(forms):
    with pytest.warns(RuntimeWarning, match="p.lif.tau_mem_inv"):
        LIFRefracCell(
            LIFRefracParameters(LIFParameters(tau_mem_inv=torch.tensor(-1.0)))
        )
    with pytest.raises(ValueError, match="p.rho_reset must be non-negative"):
        LIFRefrac(LIFRefracParameters(rho_reset=torch.tensor(-1.0)))
    with pytest.raises(ValueError, match="p.lif.method"):
        LIFRefracCell(LIFRefracParameters(LIFParameters(method="nonsense")))
    forms.rejects_wrong_state_shape(LIFRefracCell(), torch.rand(2, 3), torch.rand(4, 3))
    forms.rejects_wrong_state_shape(
        LIFRefracRecurrent(3, 4), torch.rand(5, 2, 3), torch.rand(5, 4, 3)
    )


def test_compiled_recurrent_cell_matches_eager():
    torch.manual_seed(0)
    cell = LIFRefracRecurrentCell(3, 4)
    compiled = torch.compile(cell, backend="aot_eager", fullgraph=True)
    # start from a state, so that one graph serves every step
    state_eager = state_compiled = cell.initial_state(torch.zeros(2, 3))
    for step in torch.rand(4, 2, 3) * 3:
        out_eager, state_eager = cell(step, state_eager)
        out_compiled, state_compiled = compiled(step, state_compiled)
        torch.testing.assert_close(out_eager, out_compiled)
    torch.testing.assert_close(state_eager.rho, state_compiled.rho)
    torch.testing.assert_close(state_eager.lif.v, state_compiled.lif.v)


def test_adjoint_method_selects_adjoint_gradients(forms):
    """``p.lif.method="adjoint"`` runs the steps of
    :mod:`norse.torch.functional.adjoint.lif_refrac_adjoint` (validated there)."""
    from norse.torch.functional.adjoint.lif_refrac_adjoint import (
        lif_refrac_adjoint_step,
        lif_refrac_feed_forward_adjoint_step,
    )
    from norse.torch.functional.lif import LIFFeedForwardState, LIFState
    from norse.torch.functional.lif_refrac import (
        LIFRefracFeedForwardState,
        LIFRefracState,
    )

    adjoint = LIFRefracParameters(LIFParameters(method="adjoint"), torch.tensor(3.0))
    torch.manual_seed(0)
    x = (torch.rand(30, 3, 4) * 4).requires_grad_()
    time_weights = torch.arange(30.0)[:, None, None]
    layer = LIFRefrac(adjoint)
    assert layer.uses_adjoint and not LIFRefrac().uses_adjoint
    spikes, _ = layer(x)
    heaviside = adjoint._replace(lif=adjoint.lif._replace(method="heaviside"))
    torch.testing.assert_close(spikes, LIFRefrac(heaviside)(x)[0])
    (grad,) = torch.autograd.grad((spikes * time_weights).sum(), x)
    state = LIFRefracFeedForwardState(
        LIFFeedForwardState(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3, 4)
    )
    total = 0.0
    for t, x_t in enumerate(x):
        z, state = lif_refrac_feed_forward_adjoint_step(x_t, state, adjoint)
        total = total + t * z.sum()
    (expected,) = torch.autograd.grad(total, x)
    assert expected.abs().sum() > 0
    torch.testing.assert_close(grad, expected)

    layer = LIFRefracRecurrent(4, 5, adjoint)
    spikes, _ = layer(x)
    weights = (layer.input_weights, layer.recurrent_weights)
    grads = torch.autograd.grad((spikes * time_weights).sum(), weights)
    w_rec = layer.recurrent_weights * (1 - torch.eye(5))
    zeros = torch.zeros(3, 5)
    state, total = LIFRefracState(LIFState(zeros, zeros, zeros), zeros), 0.0
    for t, x_t in enumerate(x):
        z, state = lif_refrac_adjoint_step(
            x_t, state, layer.input_weights, w_rec, adjoint
        )
        total = total + t * z.sum()
    for actual, reference in zip(grads, torch.autograd.grad(total, weights)):
        assert reference.abs().sum() > 0
        torch.testing.assert_close(actual, reference)

    x = x.detach()
    forms.cell_equals_time_module(LIFRefracCell(adjoint), LIFRefrac(adjoint), x)
    forms.recurrent_cell_equals_module(
        LIFRefracRecurrentCell(4, 5, adjoint), LIFRefracRecurrent(4, 5, adjoint), x
    )
    forms.backward(LIFRefracRecurrent(4, 5, adjoint), x)
    forms.backward(LIFRefrac(adjoint), x)
