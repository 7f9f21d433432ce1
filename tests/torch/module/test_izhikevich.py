import pytest
import torch

import norse.torch as norse
from norse.torch.functional import izhikevich as izk
from norse.torch.functional.izhikevich import (
    IzhikevichRecurrentState,
    IzhikevichState,
    izhikevich_feed_forward_step,
)
from norse.torch.module.izhikevich import (
    Izhikevich,
    IzhikevichCell,
    IzhikevichRecurrent,
    IzhikevichRecurrentCell,
)

BEHAVIORS = sorted(izk.BEHAVIORS)


def test_exported_from_norse_torch():
    assert norse.Izhikevich is Izhikevich and norse.IzhikevichCell is IzhikevichCell
    assert norse.IzhikevichRecurrent is IzhikevichRecurrent
    assert norse.IzhikevichRecurrentCell is IzhikevichRecurrentCell
    assert norse.tonic_spiking is izk.tonic_spiking
    assert norse.inhibition_induced_bursting is izk.inhibition_induced_bursting
    assert norse.izhikevich_feed_forward_step is izhikevich_feed_forward_step


@pytest.mark.parametrize("name", BEHAVIORS)
def test_cell_starts_at_the_behaviour_state_and_matches_functional(name):
    behavior = izk.BEHAVIORS[name]
    x = torch.randn(5, 2)
    out, s = IzhikevichCell(behavior)(x)
    start = IzhikevichState(
        v=behavior.s.v.expand(5, 2).clone(), u=behavior.s.u.expand(5, 2).clone()
    )
    z, expected = izhikevich_feed_forward_step(x, start, behavior.p)
    assert out.shape == (5, 2) and all(t.shape == (5, 2) for t in s)
    assert torch.equal(out, z)
    torch.testing.assert_close(s.v, expected.v)
    torch.testing.assert_close(s.u, expected.u)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_time_module_equals_cell_loop_and_keeps_dtype(dtype):
    x = torch.full((80, 3, 2), 14.0, dtype=dtype)
    cell, layer = IzhikevichCell(izk.tonic_spiking), Izhikevich(izk.tonic_spiking)
    state, outs = None, []
    for step in x:
        out, state = cell(step, state)
        outs.append(out)
    out_seq, state_seq = layer(x)
    assert out_seq.dtype == dtype and state_seq.v.dtype == dtype
    assert out_seq.sum() > 0
    torch.testing.assert_close(torch.stack(outs), out_seq)
    torch.testing.assert_close(state.v, state_seq.v)


def test_state_threading_over_chunks():
    x = torch.full((120, 2, 3), 10.0)
    layer = Izhikevich(izk.mixed_mode)
    full, _ = layer(x)
    first, s = layer(x[:50])
    second, _ = layer(x[50:], s)
    torch.testing.assert_close(torch.cat([first, second]), full)


def test_record_states():
    out, states = Izhikevich(izk.tonic_spiking, record_states=True)(torch.ones(6, 2))
    assert states.v.shape == (6, 2) and states.u.shape == (6, 2)


def test_recurrent_forms_shapes_and_equivalence():
    torch.manual_seed(0)
    cell = IzhikevichRecurrentCell(2, 4, izk.tonic_spiking)
    layer = IzhikevichRecurrent(
        2,
        4,
        izk.tonic_spiking,
        input_weights=cell.input_weights.detach().clone(),
        recurrent_weights=cell.recurrent_weights.detach().clone(),
    )
    x = torch.rand(30, 5, 2) * 30
    state, outs = None, []
    for step in x:
        out, state = cell(step, state)
        outs.append(out)
    out_seq, state_seq = layer(x)
    assert out_seq.shape == (30, 5, 4)
    assert isinstance(state_seq, IzhikevichRecurrentState)
    assert all(t.shape == (5, 4) for t in state_seq)
    torch.testing.assert_close(torch.stack(outs), out_seq)


def test_recurrent_without_batch_dimension():
    out, s = IzhikevichRecurrent(6, 3, izk.tonic_spiking)(torch.ones(10, 6))
    assert out.shape == (10, 3) and s.v.shape == (3,)


def test_autapses_respected():
    s = IzhikevichRecurrentState(
        z=torch.ones(1, 2), v=torch.zeros(1, 2), u=torch.zeros(1, 2)
    )
    s_part = s._replace(z=torch.tensor([[0.0, 1.0]]))
    w = torch.ones(2, 2) * 0.01
    with_self = IzhikevichRecurrentCell(
        2, 2, izk.tonic_spiking, autapses=True, recurrent_weights=w, dt=0.0001
    )
    without = IzhikevichRecurrentCell(
        2, 2, izk.tonic_spiking, autapses=False, recurrent_weights=w.clone()
    )
    _, full = with_self(torch.zeros(1, 2), s)
    _, part = with_self(torch.zeros(1, 2), s_part)
    assert full.v[0, 0] != part.v[0, 0]
    _, full = without(torch.zeros(1, 2), s)
    _, part = without(torch.zeros(1, 2), s_part)
    assert full.v[0, 0] == part.v[0, 0]


@pytest.mark.parametrize("name", BEHAVIORS)
def test_backward_through_parameter_free_layers(name):
    behavior = izk.BEHAVIORS[name]
    out, s = Izhikevich(behavior)(torch.ones(10, 12))
    out2, _ = Izhikevich(behavior)(out, s)
    out2.sum().backward()  # the initial voltage requires grad, as in Norse 1.1
    cell = IzhikevichRecurrentCell(4, 4, behavior)
    out, s = cell(torch.randn(5, 4))
    out, _ = cell(out, s)
    out.sum().backward()
    assert cell.input_weights.grad is not None


def test_gradient_reaches_input_current():
    x = torch.full((40, 2, 3), 14.0, requires_grad=True)
    out, _ = Izhikevich(izk.tonic_spiking)(x)
    out.sum().backward()
    assert out.sum() > 0 and x.grad.abs().sum() > 0


def test_parameters_move_with_module_and_appear_in_state_dict():
    layer = Izhikevich(izk.tonic_bursting).double()
    assert isinstance(layer.p, izk.IzhikevichParameters)
    assert float(layer.p.c) == -50.0
    assert any(key.endswith(".c") for key in layer.state_dict())
    out, s = layer(torch.ones(3, 2, dtype=torch.float64))
    assert s.v.dtype == torch.float64


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="spiking_method"):
        Izhikevich(izk.tonic_spiking_p)
    with pytest.raises(TypeError, match="spiking_method"):
        IzhikevichRecurrentCell(2, 3, "tonic")
    layer = Izhikevich(izk.tonic_spiking)
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(3, 2, dtype=torch.complex64))
    _, s = layer(torch.ones(3, 2, 4))
    with pytest.raises(ValueError, match="shape"):
        layer(torch.ones(3, 5, 4), s)
    with pytest.raises(ValueError, match="input_size"):
        IzhikevichRecurrent(3, 2, izk.tonic_spiking)(torch.ones(4, 1, 5))
    with pytest.warns(RuntimeWarning, match="tau_inv"):
        Izhikevich(
            izk.create_izhikevich_spiking_behavior(
                0.02, 0.2, -65, 6, -70, -70, tau_inv=-1
            )
        )
