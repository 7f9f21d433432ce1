import numpy as np
import pytest
import torch

import norse.torch as norse
from norse.torch.functional.correlation_sensor import correlation_based_update
from norse.torch.functional.lif import LIFParameters
from norse.torch.functional.lif_correlation import (
    LIFCorrelationParameters,
    LIFCorrelationState,
    lif_correlation_step,
)
from norse.torch.module.leaky_integrator import LILinearCell
from norse.torch.module.lif_correlation import LIFCorrelation


def test_exported():
    assert norse.LIFCorrelation is LIFCorrelation
    assert norse.LIFCorrelationParameters is LIFCorrelationParameters
    assert norse.LIFCorrelationState is LIFCorrelationState


def test_initial_state_and_step_match_the_functional_form():
    torch.manual_seed(0)
    p = LIFCorrelationParameters(lif_parameters=LIFParameters(v_leak=torch.tensor(0.2)))
    layer = LIFCorrelation(3, 4, p=p)
    x = torch.ones(2, 3, dtype=torch.float64)
    w_in = torch.randn(4, 3, dtype=torch.float64)
    w_rec = torch.randn(4, 4, dtype=torch.float64)
    z, s = layer(x, w_in, w_rec)
    s0 = layer.initial_state(x)
    torch.testing.assert_close(
        s0.lif_state.v, torch.full((2, 4), 0.2, dtype=torch.float64)
    )
    assert s0.input_correlation_state.post_pre.shape == (2, 3, 4)
    assert s0.recurrent_correlation_state.correlation_trace.shape == (2, 4, 4)
    assert s0.lif_state.v.dtype == torch.float64
    z_f, s_f = lif_correlation_step(x, s0, w_in, w_rec, layer.p)
    torch.testing.assert_close(z, z_f)
    torch.testing.assert_close(s.lif_state.v, s_f.lif_state.v)
    z2, s2 = layer(x, w_in, w_rec, s)  # threading the state
    assert z2.shape == (2, 4)


def test_parameters_move_with_the_module():
    layer = LIFCorrelation(3, 4).double()
    assert layer.p.lif_parameters.tau_mem_inv.dtype == torch.float64
    assert any("input_correlation_parameters" in k for k in layer.state_dict())


def test_norse_training_loop_runs_and_learns_a_gradient():
    # Norse 1.1's scenario: correlation-based updates between steps, BPTT to a readout.
    torch.manual_seed(0)
    np.random.seed(0)
    steps, batch, n_in, n_hidden = 30, 1, 10, 8
    x = (torch.rand(steps, batch, n_in) < 0.2).float()
    y = torch.tensor([1])
    w_in = torch.randn(n_hidden, n_in)
    w_rec = torch.randn(n_hidden, n_hidden)
    layer, out = LIFCorrelation(n_in, n_hidden), LILinearCell(n_hidden, 2)
    linear_update = torch.nn.Linear(2 * n_in * n_hidden, n_in * n_hidden)
    rec_update = torch.nn.Linear(2 * n_hidden * n_hidden, n_hidden * n_hidden)
    s1 = so = None
    voltages = []
    for ts in range(steps):
        z, s1 = layer(x[ts], w_in, w_rec, s1)
        w_in = correlation_based_update(
            ts, linear_update, w_in.detach(), s1.input_correlation_state, 0.01, 10
        )
        w_rec = correlation_based_update(
            ts, rec_update, w_rec.detach(), s1.recurrent_correlation_state, 0.01, 10
        )
        vo, so = out(z, so)
        voltages.append(vo)
    m, _ = torch.max(torch.stack(voltages), 0)
    loss = torch.nn.functional.nll_loss(torch.log_softmax(m, 1), y)
    loss.backward()
    assert out.input_weights.grad is not None


def test_bad_arguments():
    layer = LIFCorrelation(3, 4)
    w_in, w_rec = torch.ones(4, 3), torch.ones(4, 4)
    with pytest.raises(ValueError, match="input_weights"):
        layer(torch.ones(1, 3), torch.ones(3, 4), w_rec)
    with pytest.raises(ValueError, match="recurrent_weights"):
        layer(torch.ones(1, 3), w_in, torch.ones(4, 3))
    with pytest.raises(ValueError, match="input_size=3"):
        layer(torch.ones(1, 5), w_in, w_rec)
    with pytest.raises(TypeError, match="state"):
        layer(torch.ones(1, 3), w_in, w_rec, state=(1, 2, 3))
    with pytest.raises(ValueError, match="hidden_size"):
        LIFCorrelation(3, 0)
    with pytest.raises(TypeError, match="LIFCorrelationParameters"):
        LIFCorrelation(3, 4, p=LIFParameters())
