"""lift: step functions over time (the reference loop), pickling, errors."""

import pickle

import pytest
import torch

from norse.torch.functional.leaky_integrator import LIParameters, LIState, li_step
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    LIFState,
    lif_feed_forward_step,
    lif_step,
)
from norse.torch.functional.lift import apply_folded, check_sequence, lift
from norse.torch.fused import registry


def _ff_state(shape):
    return LIFFeedForwardState(torch.zeros(shape), torch.zeros(shape))


def test_without_state_the_step_function_must_make_one():
    with pytest.raises(TypeError):
        lift(lif_feed_forward_step)(torch.ones(3, 2, 1))


def test_equals_a_loop_of_the_step_function():
    torch.manual_seed(0)
    x = torch.rand(30, 2, 3) * 4
    p = LIFParameters(v_th=torch.as_tensor(0.5))
    z, s = lift(lif_feed_forward_step)(x, state=_ff_state((2, 3)), p=p)
    state, outputs = _ff_state((2, 3)), []
    for step in x:
        out, state = lif_feed_forward_step(step, state, p)
        outputs.append(out)
    assert z.shape == (30, 2, 3) and z.sum() > 0
    torch.testing.assert_close(z, torch.stack(outputs))
    torch.testing.assert_close(s.v, state.v)
    torch.testing.assert_close(s.i, state.i)


def test_default_parameters_and_call_override():
    x = torch.ones(20, 2, 1) * 3
    low = LIFParameters(v_th=torch.as_tensor(0.1))
    lifted = lift(lif_feed_forward_step, p=low)
    z_low, _ = lifted(x, state=_ff_state((2, 1)))
    z_default, _ = lifted(x, state=_ff_state((2, 1)), p=LIFParameters())
    assert z_low.sum() > z_default.sum()


def test_recurrent_step_and_leaky_integrator_with_weights():
    x = torch.ones(3, 2, 1)
    z, s = lift(lif_step)(
        x,
        state=LIFState(z=torch.zeros(2, 1), v=torch.zeros(2, 1), i=torch.zeros(2, 1)),
        input_weights=torch.ones(1, 1),
        recurrent_weights=torch.ones(1, 1),
        p=LIFParameters(),
    )
    assert z.shape == (3, 2, 1) and s.v.shape == (2, 1)
    v, s = lift(li_step)(
        x,
        state=LIState(v=torch.zeros(2, 1), i=torch.zeros(2, 1)),
        input_weights=torch.ones(1, 1) * 2,
        p=LIParameters(),
    )
    assert v.shape == (3, 2, 1) and (v[1:] > v[:-1]).all()


def test_pickles():
    lifted = pickle.loads(pickle.dumps(lift(lif_feed_forward_step, p=LIFParameters())))
    z, _ = lifted(torch.ones(2, 1), state=_ff_state((1,)))
    assert z.shape == (2, 1)
    assert repr(lifted) == "lift(lif_feed_forward_step)"


def _double_step(x, state, p=None, dt=0.001, scale=1.0):
    return scale * x + state, state + x


def test_the_reference_loop_runs_even_with_a_registered_kernel(monkeypatch):
    """The functional lift is the reference: the fused kernels belong to the module
    forms (Lift of a cell, the time modules)."""
    calls = []

    def factory(*args):
        calls.append(args)
        return None

    monkeypatch.setitem(registry._FACTORIES, _double_step, [factory])
    x = torch.ones(4, 2)
    z, s = lift(_double_step)(x, state=torch.zeros(2), p="p")
    assert calls == []
    torch.testing.assert_close(s, torch.full((2,), 4.0))
    torch.testing.assert_close(z[-1], torch.full((2,), 4.0))


def test_errors():
    with pytest.raises(TypeError, match="callable"):
        lift("lif")
    lifted = lift(lif_feed_forward_step)
    with pytest.raises(TypeError, match="torch.Tensor"):
        lifted([1.0], state=_ff_state((1,)))
    with pytest.raises(ValueError, match="T >= 1"):
        lifted(torch.zeros(0, 2), state=_ff_state((2,)))


def test_apply_folded_and_check_sequence():
    x = torch.randn(3, 4, 5)
    torch.testing.assert_close(apply_folded(torch.nn.Linear(5, 2), x).shape, (3, 4, 2))
    with pytest.raises(ValueError, match="T \\* batch = 12"):
        apply_folded(lambda t: t.sum(0), x)
    with pytest.raises(TypeError, match="must return a torch.Tensor"):
        apply_folded(lambda t: (t, t), x)
    check_sequence(x)
    with pytest.raises(TypeError, match="spikes must be a torch.Tensor"):
        check_sequence([1.0], "spikes")
    with pytest.raises(ValueError, match="T >= 1"):
        check_sequence(torch.zeros(0, 3))


def test_public_name_is_the_function():
    import norse.torch as norse
    import norse.torch.functional as functional

    assert norse.lift is lift and functional.lift is lift
