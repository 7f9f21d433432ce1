"""The validation helpers, and the module-boundary checks built on them."""

import warnings

import pytest
import torch

import norse.torch as norse
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    LIFState,
    lif_feed_forward_step,
)
from norse.torch.functional.lif_refrac import LIFRefracParameters
from norse.torch.functional.validation import (
    check_count,
    check_parameter_shapes,
    check_parameter_type,
    check_sequence,
    check_shape,
    check_step_arguments,
    check_tensors_match,
    parameter_shapes,
    validate_parameters,
)


def test_every_numeric_parameter_is_checked():
    with pytest.raises(TypeError, match=r"p.v_th must be a number.*got str \('1'\)"):
        validate_parameters(LIFParameters(v_th="1"))
    with pytest.raises(TypeError, match="p.v_reset must be a number.*NoneType"):
        validate_parameters(LIFParameters(v_reset=None))
    with pytest.raises(ValueError, match="p.v_leak must not be NaN, got nan"):
        validate_parameters(LIFParameters(v_leak=float("nan")))
    with pytest.raises(TypeError, match="p.v_th must be a real tensor.*complex64"):
        validate_parameters(LIFParameters(v_th=torch.ones(2, dtype=torch.complex64)))
    with pytest.raises(
        ValueError, match="p.alpha must be non-negative and finite, got -1"
    ):
        validate_parameters(LIFParameters(alpha=-1.0))
    # Norse 1.1 accepts alpha = 0 (LIFBoxParameters(alpha=torch.zeros(1)) in its tests)
    validate_parameters(LIFParameters(alpha=torch.tensor(0.0)))
    with pytest.raises(TypeError, match="p.reset_method must be a reset function"):
        validate_parameters(norse.LIFBoxParameters(reset_method="subtract"))
    # an infinite threshold is a neuron that never fires: allowed
    validate_parameters(LIFParameters(v_th=float("inf")))


def test_parameter_type_is_compared_field_by_field_and_level_by_level():
    check_parameter_type(LIFParameters(), LIFParameters)
    with pytest.raises(TypeError, match="p must be a LIFParameters with the fields"):
        check_parameter_type(norse.LIParameters(), LIFParameters)
    with pytest.raises(TypeError, match="p must be a LIFParameters.*got dict"):
        check_parameter_type({"v_th": 1.0}, LIFParameters)
    nested = LIFRefracParameters(lif=norse.LIParameters())
    with pytest.raises(TypeError, match="p.lif must be a LIFParameters"):
        check_parameter_type(nested, LIFRefracParameters)


def test_per_neuron_parameters_must_broadcast_without_enlarging_the_state():
    p = LIFParameters(v_th=torch.ones(3), tau_mem_inv=torch.full((2, 1, 3), 100.0))
    shapes = parameter_shapes(p)
    assert [label for label, *_ in shapes] == ["p.tau_mem_inv", "p.v_th"]
    check_parameter_shapes(shapes[1:], (5, 3))
    with pytest.raises(
        ValueError, match=r"p.tau_mem_inv has shape \(2, 1, 3\).*\(2, 3\)"
    ):
        check_parameter_shapes(shapes, (2, 3))
    with pytest.raises(TypeError, match="p.v_th has dtype torch.float32.*float64"):
        check_parameter_shapes(shapes[1:], (5, 3), torch.float64)
    with pytest.raises(ValueError, match="p.v_th is on device cpu but the input is on"):
        check_parameter_shapes(shapes[1:], (5, 3), device=torch.device("meta"))


def test_tensors_must_match_the_input_dtype_and_device():
    x = torch.zeros(2, 3, dtype=torch.float64)
    check_tensors_match(x, [("input_weights", torch.zeros(4, 3, dtype=torch.float64))])
    with pytest.raises(TypeError, match="input_weights has torch.float32"):
        check_tensors_match(x, [("input_weights", torch.zeros(4, 3))])
    with pytest.raises(ValueError, match="input_weights is on meta"):
        check_tensors_match(
            x, [("input_weights", torch.zeros(4, 3, dtype=x.dtype, device="meta"))]
        )


def test_check_step_arguments_for_direct_users_of_the_step_functions():
    x = torch.rand(2, 3)
    state = LIFFeedForwardState(torch.zeros(2, 3), torch.zeros(2, 3))
    check_step_arguments(x, state, LIFParameters(), 0.001, LIFFeedForwardState)
    lif_feed_forward_step(x, state, LIFParameters())
    with pytest.raises(ValueError, match=r"state.v has shape \(4, 3\)"):
        bad = LIFFeedForwardState(torch.zeros(4, 3), torch.zeros(2, 3))
        check_step_arguments(x, bad, LIFParameters(), 0.001, LIFFeedForwardState)
    with pytest.raises(TypeError, match="state must be a LIFFeedForwardState"):
        check_step_arguments(
            x, LIFState(*state, state.v), LIFParameters(), 0.001, LIFFeedForwardState
        )
    with pytest.raises(ValueError, match="p.lif.tau_mem_inv must be an inverse time"):
        check_step_arguments(
            x, None, LIFRefracParameters(lif=LIFParameters(tau_mem_inv=float("nan")))
        )
    with pytest.raises(TypeError, match="p must be a LIFParameters"):
        check_step_arguments(
            x, None, norse.LIParameters(), parameter_type=LIFParameters
        )
    with pytest.raises(ValueError, match="p.method must be one of"):
        check_step_arguments(x, None, LIFParameters(method="superspike"))
    with pytest.raises(ValueError, match=r"p.v_th has shape \(4,\)"):
        check_step_arguments(x, None, LIFParameters(v_th=torch.ones(4)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_step_arguments(x, None, LIFParameters(), dt=0.01)
    assert any("unstable" in str(w.message) for w in caught)


# --- the same checks at the module boundary ------------------------------------------


def test_modules_reject_parameters_of_another_model():
    with pytest.raises(TypeError, match="p must be a LIFParameters"):
        norse.LIFCell(norse.LIParameters())
    with pytest.raises(TypeError, match="p.lif must be a LIFParameters"):
        norse.LIFRefrac(LIFRefracParameters(lif=norse.LIParameters()))
    with pytest.raises(TypeError, match="p must be a CobaLIFParameters"):
        norse.CobaLIFRecurrentCell(2, 3, p=LIFParameters())
    behaviour = norse.IzhikevichSpikingBehavior(
        p=LIFParameters(), s=norse.tonic_spiking.s
    )
    with pytest.raises(TypeError, match="p must be an IzhikevichParameters"):
        norse.Izhikevich(behaviour)
    layer = norse.LIF()
    with pytest.raises(TypeError, match="p must be a LIFParameters"):
        layer.p = norse.LIBoxParameters()


def test_modules_reject_a_state_of_another_model():
    cell = norse.LIFCell()
    x = torch.rand(2, 3)
    _, state = norse.LIFRecurrentCell(3, 3)(x)
    with pytest.raises(
        TypeError, match=r"state must have the fields \(v, i\).*LIFState"
    ):
        cell(x, state)
    _, own = cell(x)
    with pytest.raises(TypeError, match="state.v must be a real tensor.*torch.bool"):
        cell(x, own._replace(v=torch.ones(2, 3, dtype=torch.bool)))
    _, refrac_state = norse.LIFRefracCell()(x)
    wrong = refrac_state._replace(lif=LIFState(refrac_state.lif.v, *refrac_state.lif))
    with pytest.raises(TypeError, match=r"state.lif must have the fields \(v, i\)"):
        norse.LIFRefracCell()(x, wrong)


def test_per_neuron_parameters_are_checked_against_the_state_shape():
    layer = norse.LIF(LIFParameters(v_th=torch.ones(2, 1, 3)))
    with pytest.raises(ValueError, match=r"p.v_th has shape \(2, 1, 3\).*\(2, 3\)"):
        layer(torch.rand(5, 2, 3))  # would silently give (2, 2, 3) states
    layer = norse.LIF(LIFParameters(v_th=torch.ones(7)))
    with pytest.raises(ValueError, match=r"p.v_th has shape \(7,\)"):
        layer(torch.rand(5, 2, 3))
    out, state = norse.LIF(LIFParameters(v_th=torch.ones(3)))(torch.rand(5, 2, 3))
    assert state.v.shape == (2, 3)
    # per-neuron parameters on another device than the input
    layer = norse.LIF(LIFParameters(v_th=torch.ones(3))).to("meta")
    with pytest.raises(
        ValueError, match="p.v_th is on device meta but the input is on cpu"
    ):
        layer(torch.rand(5, 2, 3))


def test_weights_fix_the_dtype_of_input_state_and_parameters():
    layer = norse.LIFRecurrent(3, 4)
    with pytest.raises(TypeError, match="input_tensor has dtype torch.float64 but "):
        layer(torch.rand(5, 2, 3, dtype=torch.float64))
    _, state = layer.double()(torch.rand(5, 2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="state.z has dtype torch.float64"):
        layer.float()(torch.rand(5, 2, 3), state)
    cell = norse.LIFRecurrentCell(
        3, 4, p=LIFParameters(v_th=torch.ones(4, dtype=torch.float64))
    )
    with pytest.raises(TypeError, match="p.v_th has dtype torch.float64"):
        cell(torch.rand(2, 3))
    integer_spikes = state._replace(z=state.z.long())
    with pytest.raises(TypeError, match="state.z has dtype torch.int64"):
        layer.double()(torch.rand(5, 2, 3, dtype=torch.float64), integer_spikes)
    with pytest.raises(ValueError, match=r"state.z must have shape \(2, 4\).*scalar"):
        layer(
            torch.rand(5, 2, 3, dtype=torch.float64),
            state._replace(z=torch.tensor(0.0)),
        )
    coupled = norse.LIFMCCell(torch.zeros(3, 3))
    with pytest.raises(TypeError, match="g_coupling has torch.float32"):
        coupled(torch.rand(2, 3, dtype=torch.float64))
    # feed-forward layers without weights keep PyTorch's type promotion (Norse 1.1)
    _, state = norse.LIFCell()(torch.rand(2, 3, dtype=torch.float64))
    assert state.v.dtype == torch.float64


def test_sequence_shape_and_count_checks_name_the_argument():
    check_sequence(torch.zeros(3, 2))
    with pytest.raises(TypeError, match=r"drive must be a torch.Tensor of shape \(T"):
        check_sequence([1.0], "drive")
    with pytest.raises(
        ValueError, match=r"x must have shape \(T, \.\.\.\) with T >= 1"
    ):
        check_sequence(torch.zeros(0, 2), "x")
    with pytest.raises(
        ValueError,
        match=r"\(T, batch, \.\.\.\) with T >= 1 \(a time dimension first\), got",
    ):
        check_sequence(torch.zeros(3), min_dim=2)
    check_sequence(torch.zeros(3, dtype=torch.long))  # any dtype unless floating
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        check_sequence(torch.zeros(3, dtype=torch.long), "x", floating=True)
    check_shape(torch.zeros(2, 2), (2, 2), "w")
    with pytest.raises(ValueError, match=r"w must have shape \(T, T\) = \(3, 3\), got"):
        check_shape(torch.zeros(2, 2), (3, 3), "w", "(T, T)")
    with pytest.raises(ValueError, match=r"w must have shape \(3,\), got \(2, 2\)"):
        check_shape(torch.zeros(2, 2), (3,), "w")
    assert check_count(torch.tensor(3), "k") == 3
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        check_count(0, "k")
    with pytest.raises(TypeError, match="k must be a positive int, got True"):
        check_count(True, "k")
