import math

import pytest
import torch

from norse.torch.functional import encode
from norse.torch.functional.lif import LIFParameters

DTYPES = [torch.float32, torch.float64]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- Poisson -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_shape_dtype_and_binary_values(dtype):
    x = torch.rand(3, 4, dtype=dtype, generator=_generator(1))
    spikes = encode.poisson_encode(x, 7, f_max=500, generator=_generator())
    assert spikes.shape == (7, 3, 4)
    assert spikes.dtype == dtype
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}


def test_poisson_integer_input_is_promoted_like_norse():
    spikes = encode.poisson_encode(torch.tensor([0, 1, 2]), 5, f_max=1000)
    assert spikes.dtype == torch.get_default_dtype()
    assert torch.equal(spikes[:, 0], torch.zeros(5))
    assert torch.equal(spikes[:, 1:], torch.ones(5, 2))  # p = 1 and p = 2 -> clamped


@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_mean_rate_within_standard_errors(dtype):
    rates = torch.tensor([0.0, 0.1, 0.3, 0.7, 1.0], dtype=dtype)
    f_max, dt, steps = 200.0, 1e-3, 40_000
    spikes = encode.poisson_encode(
        rates, steps, f_max=f_max, dt=dt, generator=_generator(3)
    )
    probability = (rates * f_max * dt).double()
    mean = spikes.double().mean(0)
    standard_error = torch.sqrt(probability * (1 - probability) / steps)
    assert mean[0] == 0.0
    assert torch.all((mean[1:] - probability[1:]).abs() < 5 * standard_error[1:])


def test_poisson_spikes_are_independent_in_time():
    # The Bernoulli trains are white: successive steps are uncorrelated.
    spikes = encode.poisson_encode(
        torch.full((50,), 0.5), 4000, f_max=1000, generator=_generator(9)
    ).double()
    centred = spikes - spikes.mean()
    lag1 = (centred[1:] * centred[:-1]).mean() / centred.pow(2).mean()
    # standard error of the lag-1 autocorrelation ~ 1/sqrt(N) with N = 200k pairs
    assert abs(lag1.item()) < 5 / math.sqrt(3999 * 50)


def test_poisson_same_seed_same_spikes_other_seed_other_spikes():
    x = torch.full((20, 20), 0.5)
    first = encode.poisson_encode(x, 10, generator=_generator(45))
    again = encode.poisson_encode(x, 10, generator=_generator(45))
    other = encode.poisson_encode(x, 10, generator=_generator(1043))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_poisson_seed_reproduces_norse_1_1_spikes():
    # Recorded with Norse 1.1: poisson_encode(x, 6, f_max=1000, generator=seed 7)
    expected = torch.tensor([[0.0, 1.0, 1.0, 1.0]] * 6)
    expected[2, 1] = 0.0  # the one step in which x = 0.5 did not spike
    x = torch.tensor([0.2, 0.5, 1.0, 3.0])
    assert torch.equal(
        encode.poisson_encode(x, 6, f_max=1000, generator=_generator(7)), expected
    )


def test_poisson_probability_is_clamped_outside_the_rate_range():
    f_max, dt = 100.0, 1e-3
    top = 1 / (f_max * dt)  # rate 1/dt: a spike every step
    x = torch.tensor([-0.5, -100.0, top, 2 * top, 1e6])
    spikes = encode.poisson_encode(x, 200, f_max=f_max, dt=dt, generator=_generator())
    assert spikes[:, :2].sum() == 0
    assert torch.all(spikes[:, 2:] == 1)


def test_poisson_zero_f_max_is_silent():
    assert encode.poisson_encode(torch.ones(4), 10, f_max=0).sum() == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_step(dtype):
    x = torch.full((100_000,), 0.3, dtype=dtype)
    spikes = encode.poisson_encode_step(
        x, generator=_generator(5)
    )  # f_max 1000: p = 0.3
    assert spikes.shape == x.shape and spikes.dtype == dtype
    standard_error = math.sqrt(0.3 * 0.7 / x.numel())
    assert abs(spikes.double().mean().item() - 0.3) < 5 * standard_error
    assert torch.equal(encode.poisson_encode_step(torch.ones(10)), torch.ones(10))
    assert torch.equal(
        encode.poisson_encode_step(x, generator=_generator(5)),
        encode.poisson_encode_step(x, generator=_generator(5)),
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_signed_poisson_signs_and_rates(dtype):
    x = torch.tensor([-1.0, -0.4, 0.0, 0.4, 1.0], dtype=dtype)
    steps = 20_000
    events = encode.signed_poisson_encode(x, steps, f_max=500, generator=_generator(2))
    assert events.shape == (steps, 5) and events.dtype == dtype
    assert set(events.unique().tolist()) <= {-1.0, 0.0, 1.0}
    # every event carries the sign of its input
    assert torch.all(events * torch.sign(x) >= 0)
    assert torch.all(events[:, 2] == 0)
    probability = 0.5 * x.abs().double()
    mean = events.abs().double().mean(0)
    standard_error = torch.sqrt(probability * (1 - probability) / steps)
    firing = [0, 1, 3, 4]
    assert torch.all(
        (mean[firing] - probability[firing]).abs() < 5 * standard_error[firing]
    )


def test_signed_poisson_step_and_seed():
    x = torch.linspace(-1, 1, 11)
    events = encode.signed_poisson_encode_step(x)  # f_max 1000: |x| = 1 always fires
    assert events.shape == x.shape
    assert events[0] == -1 and events[-1] == 1 and events[5] == 0
    assert torch.equal(
        encode.signed_poisson_encode(x, 10, generator=_generator(4)),
        encode.signed_poisson_encode(x, 10, generator=_generator(4)),
    )
    # Recorded with Norse 1.1 (seed 7, f_max 1000)
    expected = torch.tensor(
        [[0.0, 1.0, -1.0], [0.0, 1.0, -1.0], [-1.0, 0.0, -1.0], [0.0, 0.0, -1.0]]
    )
    actual = encode.signed_poisson_encode(
        torch.tensor([-0.5, 0.5, -1.0]), 4, f_max=1000, generator=_generator(7)
    )
    assert torch.equal(actual, expected)


@pytest.mark.parametrize(
    "encoder",
    [
        lambda x, **kw: encode.poisson_encode(x, 3, **kw),
        lambda x, **kw: encode.signed_poisson_encode(x, 3, **kw),
        encode.poisson_encode_step,
        encode.signed_poisson_encode_step,
    ],
)
def test_poisson_bad_arguments(encoder):
    x = torch.rand(2)
    with pytest.raises(ValueError, match="f_max"):
        encoder(x, f_max=-1.0)
    with pytest.raises(ValueError, match="f_max"):
        encoder(x, f_max=float("nan"))
    with pytest.raises(ValueError, match="dt"):
        encoder(x, dt=0.0)
    with pytest.raises(ValueError, match="dt"):
        encoder(x, dt=-1e-3)
    with pytest.raises(TypeError, match="input_values"):
        encoder([0.5, 0.5])
    with pytest.raises(TypeError, match="input_values"):
        encoder(torch.ones(2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="NaN"):
        encoder(torch.tensor([0.5, float("nan")]))
    with pytest.raises(TypeError, match="generator"):
        encoder(x, generator=0)


@pytest.mark.parametrize("seq_length", [0, -3])
def test_seq_length_must_be_positive(seq_length):
    for encoder in (
        encode.poisson_encode,
        encode.signed_poisson_encode,
        encode.constant_current_lif_encode,
        encode.spike_latency_lif_encode,
    ):
        with pytest.raises(ValueError, match="seq_length"):
            encoder(torch.ones(2), seq_length)


@pytest.mark.parametrize("seq_length", [2.5, True, "3", None])
def test_seq_length_must_be_an_int(seq_length):
    with pytest.raises(TypeError, match="seq_length"):
        encode.poisson_encode(torch.ones(2), seq_length)
    with pytest.raises(TypeError, match="seq_length"):
        encode.constant_current_lif_encode(torch.ones(2), seq_length)


def test_seq_length_accepts_integer_tensors():
    assert encode.poisson_encode(torch.ones(2), torch.tensor(4)).shape == (4, 2)


@cuda
def test_poisson_on_cuda_with_cuda_generator():
    x = torch.full((1000,), 0.5, device="cuda")
    generator = torch.Generator(device="cuda").manual_seed(0)
    spikes = encode.poisson_encode(x, 100, generator=generator)
    assert spikes.device == x.device
    assert encode.signed_poisson_encode(-x, 3).device == x.device
    with pytest.raises(ValueError, match="generator"):
        encode.poisson_encode(x, 3, generator=_generator())


# --- LIF encoders ---------------------------------------------------------------------


def _euler_period(current: float, p: LIFParameters = LIFParameters(), dt=1e-3) -> int:
    """Steps between spikes of the Euler recursion v <- v + a (I - v) from v = 0
    (v_leak = v_reset = 0): v_n = I (1 - (1 - a)^n) > v_th first at n* = floor(r) + 1."""
    a = dt * float(p.tau_mem_inv)
    r = math.log(1 - float(p.v_th) / current) / math.log(1 - a)
    assert abs(r - round(r)) > 1e-6, "too close to a step boundary to be a fair test"
    return math.floor(r) + 1


def test_constant_current_lif_norse_docstring_example():
    spikes = encode.constant_current_lif_encode(torch.as_tensor([2, 4, 8, 16]), 2)
    expected = torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    assert torch.equal(spikes, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_current_lif_spike_trains_match_the_euler_solution(dtype):
    currents = [1.5, 2.0, 3.0, 5.0, 12.0]
    steps = 60
    spikes = encode.constant_current_lif_encode(
        torch.tensor(currents, dtype=dtype), steps
    )
    assert spikes.shape == (steps, 5) and spikes.dtype == dtype
    for column, current in enumerate(currents):
        period = _euler_period(current)
        expected = torch.zeros(steps, dtype=dtype)
        expected[period - 1 :: period] = 1.0  # resets to 0, so the train is periodic
        assert torch.equal(spikes[:, column], expected), current
    assert [_euler_period(c) for c in currents] == [11, 7, 4, 3, 1]


def test_constant_current_lif_subthreshold_currents_never_spike():
    spikes = encode.constant_current_lif_encode(
        torch.tensor([-2.0, 0.0, 0.5, 1.0]), 500
    )
    assert spikes.sum() == 0


def test_constant_current_lif_custom_parameters():
    p = LIFParameters(tau_mem_inv=torch.tensor(50.0), v_th=torch.tensor(0.5))
    currents = [0.8, 2.0]
    spikes = encode.constant_current_lif_encode(
        torch.tensor(currents), 40, p=p, dt=2e-3
    )
    for column, current in enumerate(currents):
        period = _euler_period(current, p, dt=2e-3)
        assert torch.nonzero(spikes[:, column]).flatten().tolist() == list(
            range(period - 1, 40, period)
        )


def test_constant_current_lif_period_approaches_the_ode_for_small_dt():
    tau_mem = 0.01
    dt = 1e-5
    currents = torch.tensor([1.2, 2.0, 5.0], dtype=torch.float64)
    spikes = encode.constant_current_lif_encode(currents, 4000, dt=dt)
    for column, current in enumerate(currents.tolist()):
        times = torch.nonzero(spikes[:, column]).flatten()
        assert len(times) >= 2
        interval = (times[1] - times[0]).item() * dt
        ode = tau_mem * math.log(current / (current - 1.0))
        assert interval == pytest.approx(ode, rel=5e-3)
        # and exactly the period of the Euler recursion
        assert (times[1] - times[0]).item() == _euler_period(current, dt=dt)


def test_constant_current_lif_gradient_flows_through_the_surrogate():
    x = torch.tensor([1.5, 3.0, 6.0], requires_grad=True)
    encode.constant_current_lif_encode(x, 20).sum().backward()
    assert torch.all(torch.isfinite(x.grad)) and torch.all(x.grad != 0)


def test_constant_current_lif_bad_arguments():
    with pytest.raises(ValueError, match="NaN"):
        encode.constant_current_lif_encode(torch.tensor([1.0, float("nan")]), 3)
    with pytest.raises(TypeError, match="input_current"):
        encode.constant_current_lif_encode([1.0], 3)
    with pytest.raises(ValueError, match="dt"):
        encode.constant_current_lif_encode(torch.ones(2), 3, dt=0)
    with pytest.raises(ValueError, match="tau_mem_inv"):
        encode.constant_current_lif_encode(
            torch.ones(2), 3, p=LIFParameters(tau_mem_inv=torch.tensor(float("nan")))
        )


@pytest.mark.parametrize("dtype", DTYPES)
def test_spike_latency_lif_one_spike_at_the_first_crossing(dtype):
    currents = [1.1, 1.5, 2.0, 3.0, 12.0, 0.9, 0.0]
    steps = 40
    spikes = encode.spike_latency_lif_encode(torch.tensor(currents, dtype=dtype), steps)
    assert spikes.shape == (steps, len(currents)) and spikes.dtype == dtype
    for column, current in enumerate(currents):
        fired = torch.nonzero(spikes[:, column]).flatten().tolist()
        if current > 1.0:
            assert fired == [_euler_period(current) - 1], current
        else:
            assert fired == []


def test_spike_latency_lif_norse_example():
    # Norse 1.1's test: 1.1 fires first at step 23 of 128 -> one spike per element
    assert (
        encode.spike_latency_lif_encode(1.1 * torch.ones(10), seq_length=128).sum()
        == 10
    )


def test_spike_latency_lif_too_short_sequence_is_silent():
    assert (
        encode.spike_latency_lif_encode(torch.tensor([1.5]), 10).sum() == 0
    )  # n* = 11


def test_spike_latency_encode_keeps_first_spikes():
    spikes = torch.as_tensor([[0, 1, 1, 0], [1, 1, 1, 0], [1, 0, 1, 1]])
    expected = torch.as_tensor([[0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    actual = encode.spike_latency_encode(spikes)
    assert actual.dtype == spikes.dtype
    assert torch.equal(actual, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_spike_latency_encode_random_trains(dtype):
    spikes = (torch.rand(30, 4, 5, generator=_generator(8)) < 0.2).to(dtype)
    actual = encode.spike_latency_encode(spikes)
    assert actual.dtype == dtype and actual.shape == spikes.shape
    assert torch.all(actual.sum(0) == (spikes.sum(0) > 0).to(dtype))
    first = torch.argmax(spikes, dim=0)  # first index of the maximum (1)
    has_spike = spikes.sum(0) > 0
    assert torch.equal(torch.argmax(actual, dim=0)[has_spike], first[has_spike])


def test_spike_latency_encode_keeps_signed_events():
    spikes = torch.tensor([[-1.0, 0.0], [1.0, 1.0], [1.0, -1.0]])
    expected = torch.tensor([[-1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert torch.equal(encode.spike_latency_encode(spikes), expected)


def test_spike_latency_encode_gradient_passes_up_to_the_first_spike():
    """As in Norse 1.1: every step up to and including the first spike (where the
    output is the input) passes the gradient; later steps do not."""
    spikes = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], requires_grad=True)
    encode.spike_latency_encode(spikes).sum().backward()
    assert torch.equal(spikes.grad, torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]))


def test_spike_latency_lif_gradient_reaches_silent_inputs():
    """Norse 1.1: the surrogate gradient of every step up to the first spike reaches the
    current, also for a current that never spikes (the rate code's gradient, masked
    after the first spike)."""
    currents = torch.tensor([0.5, 1.5, 3.0], dtype=torch.float64, requires_grad=True)
    weights = torch.linspace(1.0, 2.0, 30, dtype=torch.float64)[:, None]
    (encode.spike_latency_lif_encode(currents, 30) * weights).sum().backward()
    latency_grad = currents.grad.clone()
    currents.grad = None
    rate = encode.constant_current_lif_encode(currents, 30)
    no_earlier = (torch.cumsum(rate, 0) - rate == 0).detach()
    (rate * weights * no_earlier).sum().backward()
    assert latency_grad[0] != 0  # 0.5 < v_th: never spikes
    torch.testing.assert_close(latency_grad, currents.grad, rtol=0, atol=0)


def test_spike_latency_encode_bad_input():
    with pytest.raises(ValueError, match="time"):
        encode.spike_latency_encode(torch.tensor(1.0))
    with pytest.raises(TypeError, match="input_spikes"):
        encode.spike_latency_encode([[1, 0]])
    with pytest.raises(ValueError, match="NaN"):
        encode.spike_latency_encode(torch.tensor([[float("nan")]]))


# --- population code ------------------------------------------------------------------


def test_gaussian_rbf_and_euclidean_distance():
    assert torch.allclose(
        encode.gaussian_rbf(torch.tensor([0.0, 1.0, 4.0])),
        torch.tensor([1.0, math.exp(-0.5), math.exp(-2.0)]),
    )
    assert torch.allclose(
        encode.gaussian_rbf(torch.tensor([2.0]), sigma=2.0),
        torch.tensor([math.exp(-0.25)]),
    )
    assert torch.equal(
        encode.euclidean_distance(torch.tensor([1.0, -2.0]), torch.tensor([4.0, 0.0])),
        torch.tensor([9.0, 4.0]),
    )
    with pytest.raises(ValueError, match="sigma"):
        encode.gaussian_rbf(torch.ones(1), sigma=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_population_encode_hand_computed(dtype):
    # centres 0, 0.5, 1 (scale = max = 1): y = exp(-(x - c)^2 / 2)
    e1, e2 = math.exp(-0.125), math.exp(-0.5)
    actual = encode.population_encode(torch.tensor([0.0, 0.5, 1.0], dtype=dtype), 3)
    expected = torch.tensor([[1, e1, e2], [e1, 1, e1], [e2, e1, 1]], dtype=dtype)
    assert actual.dtype == dtype
    assert torch.allclose(actual, expected)


def test_population_encode_distance_is_multiplied_by_scale():
    # scale 2 -> centres 0, 1, 2 and y = exp(-2 (x - c)^2 / 2) = exp(-(x - c)^2)
    actual = encode.population_encode(torch.tensor([0.0, 1.0, 2.0]), 3, scale=2.0)
    e1, e4 = math.exp(-1.0), math.exp(-4.0)
    expected = torch.tensor([[1, e1, e4], [e1, 1, e1], [e4, e1, 1]])
    assert torch.allclose(actual, expected)
    # Recorded with Norse 1.1 for scale=4 (centres 0, 2, 4)
    norse = torch.tensor(
        [[1.0, 3.3546e-04, 1.2664e-14], [1.3534e-01, 1.3534e-01, 1.5230e-08]]
    )
    actual = encode.population_encode(
        torch.tensor([0.0, 1.0]), 3, scale=torch.tensor(4.0)
    )
    assert torch.allclose(actual, norse, rtol=1e-4, atol=0)


def test_population_encode_shapes_and_custom_functions():
    data = torch.rand(10, 2, 3, generator=_generator()) + 0.1
    assert encode.population_encode(data, 8).shape == (10, 2, 3, 8)
    counted = encode.population_encode(
        torch.tensor([1.0, 3.0]),
        4,
        scale=3.0,
        kernel=lambda d: d,
        distance_function=lambda x, c: (x - c).abs(),
    )
    # centres 0, 1, 2, 3; |x - c| * 3
    assert torch.equal(
        counted, torch.tensor([[3.0, 0.0, 3.0, 6.0], [9.0, 6.0, 3.0, 0.0]])
    )


def test_population_encode_per_sample_scale():
    data = torch.tensor([[0.0, 0.5, 1.0], [0.0, 1.0, 2.0]])
    scale = torch.tensor([[1.0], [2.0]])
    actual = encode.population_encode(data, 5, scale=scale)
    assert torch.allclose(actual[0], encode.population_encode(data[0], 5, scale=1.0))
    assert torch.allclose(actual[1], encode.population_encode(data[1], 5, scale=2.0))


def test_population_encode_gradcheck():
    x = torch.tensor([0.1, 0.4, 0.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda v: encode.population_encode(v, 4, scale=1.5), (x,)
    )
    assert torch.autograd.gradcheck(lambda v: encode.population_encode(v, 4), (x,))


def test_population_encode_bad_arguments():
    x = torch.tensor([0.2, 0.8])
    with pytest.raises(ValueError, match="out_features"):
        encode.population_encode(x, 0)
    with pytest.raises(TypeError, match="out_features"):
        encode.population_encode(x, 2.0)
    with pytest.raises(ValueError, match="scale"):
        encode.population_encode(x, 3, scale=0.0)
    with pytest.raises(ValueError, match="scale"):
        encode.population_encode(x, 3, scale=-1.0)
    with pytest.raises(ValueError, match="largest input value"):
        encode.population_encode(-x, 3)
    with pytest.raises(ValueError, match="NaN"):
        encode.population_encode(torch.tensor([float("nan")]), 3)
