import torch

from norse.torch.functional.correlation_sensor import (
    CorrelationSensorState,
    correlation_sensor_step,
)
from norse.torch.functional.lif import LIFParameters, LIFState, lif_step
from norse.torch.functional.lif_correlation import (
    LIFCorrelationParameters,
    LIFCorrelationState,
    lif_correlation_step,
)


def test_defaults():
    p = LIFCorrelationParameters()
    assert p.lif_parameters == LIFParameters()
    assert float(p.input_correlation_parameters.tau_c_inv) == float(
        p.recurrent_correlation_parameters.tau_c_inv
    )


def test_step_is_lif_step_plus_two_sensors_with_previous_spikes_on_recurrent_side():
    torch.manual_seed(0)
    batch, n_in, n_hidden = 2, 3, 4
    w_in, w_rec = torch.randn(n_hidden, n_in) * 3, torch.randn(n_hidden, n_hidden)

    def sensor(n_pre):
        return CorrelationSensorState(
            *(torch.rand(batch, n_pre, n_hidden).round() for _ in range(3))
        )

    s = LIFCorrelationState(
        lif_state=LIFState(
            z=torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 0]]),
            v=torch.rand(batch, n_hidden) * 1.2,
            i=torch.rand(batch, n_hidden),
        ),
        input_correlation_state=sensor(n_in),
        recurrent_correlation_state=sensor(n_hidden),
    )
    x = (torch.rand(batch, n_in) < 0.5).float()
    z, s_new = lif_correlation_step(x, s, w_in, w_rec)
    z_lif, lif_state = lif_step(x, s.lif_state, w_in, w_rec, LIFParameters())
    assert z.sum() > 0
    torch.testing.assert_close(z, z_lif)
    for a, b in zip(s_new.lif_state, lif_state):
        torch.testing.assert_close(a, b)
    expected_in = correlation_sensor_step(x, z_lif, s.input_correlation_state)
    expected_rec = correlation_sensor_step(
        s.lif_state.z, z_lif, s.recurrent_correlation_state
    )
    for a, b in zip(s_new.input_correlation_state, expected_in):
        torch.testing.assert_close(a, b)
    for a, b in zip(s_new.recurrent_correlation_state, expected_rec):
        torch.testing.assert_close(a, b)
