"""Delays: exact shifts, interpolation, gradient w.r.t. the delay, step = sequence."""

import numpy as np
import pytest
import torch

from norse.torch.functional.delay import (
    DelayState,
    delay_initial_state,
    delay_sequence,
    delay_step,
)


def reference(x, delays):
    """Loops: y[t, b, *s] = interpolation of x at t - d (zeros before the start)."""
    x = x.detach().numpy()
    d = np.broadcast_to(
        delays.detach().double().numpy(), np.broadcast_shapes(x.shape[2:], delays.shape)
    )
    steps, batch = x.shape[:2]
    xs = np.broadcast_to(
        x.reshape(steps, batch, *([1] * (d.ndim - x.ndim + 2)), *x.shape[2:]),
        (steps, batch, *d.shape),
    )
    y = np.zeros((steps, batch, *d.shape))
    for index in np.ndindex(*d.shape):
        k = int(np.floor(d[index]))
        f = d[index] - k
        for t in range(steps):
            a = xs[(t - k, slice(None), *index)] if t - k >= 0 else 0.0
            b = xs[(t - k - 1, slice(None), *index)] if t - k - 1 >= 0 else 0.0
            y[(t, slice(None), *index)] = (1 - f) * a + f * b
    return torch.as_tensor(y)


def spikes(*shape, p=0.3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=generator) < p).double()


def test_integer_delays_per_neuron_are_exact_shifts():
    x = spikes(20, 3, 4)
    delays = torch.tensor([0, 1, 5, 19])
    y, _ = delay_sequence(x, delays, max_delay=19)
    assert y.shape == x.shape and y.dtype == x.dtype
    for n, d in enumerate(delays.tolist()):
        expected = torch.cat([torch.zeros(d, 3, dtype=x.dtype), x[: 20 - d, :, n]])
        assert torch.equal(y[:, :, n], expected)


def test_delays_longer_than_the_sequence_give_silence():
    y, _ = delay_sequence(spikes(5, 2, 3), torch.tensor([7, 7, 7]), max_delay=7)
    assert torch.all(y == 0)


def test_per_synapse_delays_broadcast_to_post_pre():
    x = spikes(15, 2, 3)
    delays = torch.tensor([[0, 2, 4], [1, 3, 5]])
    y, _ = delay_sequence(x, delays, max_delay=5)
    assert y.shape == (15, 2, 2, 3)
    torch.testing.assert_close(y, reference(x, delays))
    # the weighted sum over the presynaptic axis is the delayed synaptic input
    w = torch.randn(2, 3, dtype=torch.float64)
    current = (y * w).sum(-1)
    assert current.shape == (15, 2, 2)


def test_fractional_delays_interpolate_and_conserve_spike_mass():
    x = torch.zeros(12, 1, 2, dtype=torch.float64)
    x[1] = 1.0
    delays = torch.tensor([2.25, 0.5], dtype=torch.float64)
    y, _ = delay_sequence(x, delays, max_delay=6)
    assert y[3, 0, 0].item() == pytest.approx(0.75) and y[
        4, 0, 0
    ].item() == pytest.approx(0.25)
    assert y[1, 0, 1].item() == pytest.approx(0.5) and y[
        2, 0, 1
    ].item() == pytest.approx(0.5)
    torch.testing.assert_close(y.sum(0), x.sum(0))
    x = spikes(20, 2, 3)
    delays = torch.tensor([0.3, 2.0, 4.7], dtype=torch.float64)
    torch.testing.assert_close(
        delay_sequence(x, delays, max_delay=6)[0], reference(x, delays)
    )


def test_gradient_wrt_delay_matches_finite_differences():
    torch.manual_seed(0)
    x = torch.randn(25, 2, 4, dtype=torch.float64)
    upstream = torch.randn(25, 2, 4, dtype=torch.float64)
    delays = torch.tensor(
        [0.3, 1.6, 3.45, 7.9], dtype=torch.float64, requires_grad=True
    )

    def loss(d):
        return (delay_sequence(x, d, max_delay=10)[0] * upstream).sum()

    (grad,) = torch.autograd.grad(loss(delays), delays)
    eps = 1e-6
    for n in range(4):
        shift = torch.zeros(4, dtype=torch.float64)
        shift[n] = eps
        numeric = (loss(delays + shift) - loss(delays - shift)) / (2 * eps)
        assert grad[n].item() == pytest.approx(numeric.item(), rel=1e-6, abs=1e-9)
    # and it is the difference of the two neighbouring integer shifts
    k = delays.detach().floor().long()
    expected = (
        (
            delay_sequence(x, k + 1, max_delay=10)[0]
            - delay_sequence(x, k, max_delay=10)[0]
        )
        * upstream
    ).sum((0, 1))
    torch.testing.assert_close(grad, expected)


def test_gradcheck_input_and_delays():
    x = torch.randn(8, 2, 3, dtype=torch.float64, requires_grad=True)
    d = torch.tensor([[0.4, 1.3, 2.7]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, d: delay_sequence(x, d, max_delay=4)[0], (x, d)
    )


def test_delays_are_clamped_to_zero_and_max_delay():
    x = spikes(10, 1, 2)
    d = torch.tensor([-1.5, 9.0], dtype=torch.float64, requires_grad=True)
    y, _ = delay_sequence(x, d, max_delay=3)
    torch.testing.assert_close(y, reference(x, torch.tensor([0.0, 3.0])))
    y.sum().backward()
    assert torch.all(d.grad == 0)


@pytest.mark.parametrize(
    "delays",
    [
        torch.tensor([0, 3, 1]),
        torch.tensor([0.5, 2.7, 3.0], dtype=torch.float64),
        torch.tensor([[1, 0, 2], [3, 3, 0]]),
    ],
    ids=["integer", "fractional", "per-synapse"],
)
def test_step_form_equals_sequence_and_states_continue_each_other(delays):
    x = spikes(16, 2, 3)
    full, _ = delay_sequence(x, delays, max_delay=3)
    state, outputs = delay_initial_state(x[0], 3), []
    for step in x:
        out, state = delay_step(step, state, delays, 3)
        outputs.append(out)
    torch.testing.assert_close(torch.stack(outputs), full)
    # sequence chunk -> steps -> sequence chunk
    first, s = delay_sequence(x[:5], delays, 3)
    middle = []
    for step in x[5:9]:
        out, s = delay_step(step, s, delays, 3)
        middle.append(out)
    last, s = delay_sequence(x[9:], delays, 3, s)
    torch.testing.assert_close(torch.cat([first, torch.stack(middle), last]), full)
    assert isinstance(s, DelayState) and s.buffer.shape == (5, 2, 3)


def test_step_does_not_modify_the_given_state():
    state = delay_initial_state(torch.zeros(2, 3), 2)
    delay_step(torch.ones(2, 3), state, torch.tensor([1, 1, 1]), 2)
    assert torch.all(state.buffer == 0) and state.index.item() == 3


def test_broadcast_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        delay_sequence(torch.zeros(5, 2, 3), torch.tensor([1, 2, 3, 4]), max_delay=4)
