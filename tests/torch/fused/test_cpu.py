"""The Numba kernels of :mod:`norse.torch.fused.cpu`: work split over threads."""

import numpy as np
import pytest

from norse.torch.fused import cpu
from norse.torch.fused.spec import ADAPT, LEAK, SPIKE, SYN


def test_ranges_cover_all_neurons_in_chunk_aligned_parts():
    ranges = cpu._ranges(steps=100, neurons=20_000, threads=3)
    assert len(ranges) == 3
    assert ranges[0][0] == 0 and ranges[-1][1] == 20_000
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert all(lo % cpu.CHUNK == 0 for lo, _ in ranges)
    # Too little work for a second thread.
    assert cpu._ranges(steps=2, neurons=100, threads=4) == [(0, 100)]


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_the_same_result(threads):
    rng = np.random.default_rng(0)
    steps, neurons = 4, 3 * cpu.MIN_WORK_PER_THREAD // 4 + 7
    x = (3 * rng.standard_normal((steps, neurons)) + 1).astype(np.float32)
    v0 = rng.random(neurons, dtype=np.float32)
    values = (0.1, 0.2, 0.0, 1.0, 0.0, 0.01, 1.8)
    params = [np.array([value], np.float32) for value in values]
    flags = SYN | LEAK | SPIKE | ADAPT
    states = [v0, v0 / 2, v0 + 1]
    results = []
    for count in (1, threads):
        out = np.empty_like(x)
        state_out = [np.empty((1, neurons), np.float32) for _ in range(3)]
        cpu.forward_arrays(x, states, params, flags, out, state_out, threads=count)
        g_x = np.empty_like(x)
        g_states0 = [np.empty_like(v0) for _ in range(3)]
        g_p = np.empty((7, neurons), np.float32)
        ones = [np.ones((1, neurons), np.float32)] * 3
        cpu.backward_arrays(
            out, ones, x, states, params, 100.0, 1, flags, g_x, g_states0, g_p, count
        )
        results.append([out, *state_out, g_x, *g_states0, g_p])
    assert len(cpu._ranges(steps, neurons, threads)) > 1
    for single, threaded in zip(*results):
        assert np.array_equal(single, threaded)


@pytest.mark.parametrize("flags", [SYN | LEAK | SPIKE, SYN | LEAK | SPIKE | ADAPT])
@pytest.mark.parametrize("per_neuron", [False, True])
def test_backward_without_parameter_gradients_gives_the_same_gradients(
    flags, per_neuron
):
    """A ``g_p`` with no rows selects the kernel without parameter gradients; the
    gradients of the input and the initial state are the same."""
    rng = np.random.default_rng(1)
    steps, neurons = 7, 2 * cpu.CHUNK + 3
    x = 3 * rng.standard_normal((steps, neurons)) + 1
    values = (0.1, 0.2, 0.0, 1.0, 0.0, 0.01, 1.8)
    size = neurons if per_neuron else 1
    params = [value * (1 + 0.1 * rng.random(size)) for value in values]
    states = [rng.random(neurons) for _ in range(3)]
    g_out = rng.standard_normal((steps, neurons))
    g_states = [rng.standard_normal((steps, neurons)) for _ in range(3)]
    results = []
    for rows in (7, 0):
        g_x = np.empty_like(x)
        g_states0 = [np.empty(neurons) for _ in range(3)]
        g_p = np.empty((rows, neurons))
        cpu.backward_arrays(
            g_out, g_states, x, states, params, 20.0, 1, flags, g_x, g_states0, g_p
        )
        results.append([g_x, *g_states0])
    assert np.abs(results[0][0]).max() > 0
    for with_p, without_p in zip(*results):
        assert np.array_equal(with_p, without_p)


def _lif_numpy(x, v, i, values):
    """LIF in the reference order of operations, step by step in NumPy."""
    am, a_s, vl, th, vr = values[:5]
    out = np.empty_like(x)
    for t in range(x.shape[0]):
        j = i + x[t]
        vd = v + am * ((vl - v) + j)
        i = j - a_s * j
        fired = vd - th > 0
        out[t] = fired
        v = np.where(fired, vr, vd)
    return out, v, i


def test_forward_paths_agree_beyond_one_chunk():
    """Shared parameters without records run whole-row chunks in time tiles; per-neuron
    parameters and state records take the per-step path with smaller chunks. All give
    the NumPy reference, bit for bit, over more neurons than one chunk and a number of
    steps that is no multiple of the tile."""
    rng = np.random.default_rng(2)
    steps = 2 * cpu.TIME_TILE + 1
    neurons = cpu.TILED_FORWARD_CHUNK + cpu.FORWARD_CHUNK + 5
    x = (2 * rng.standard_normal((steps, neurons)) + 0.5).astype(np.float32)
    v0 = rng.random(neurons, dtype=np.float32)
    i0 = rng.random(neurons, dtype=np.float32)
    values = [np.float32(value) for value in (0.1, 0.2, 0.05, 1.0, -0.1, 0.0, 0.0)]
    expected = _lif_numpy(x, v0, i0, values)
    empty = np.empty((1, 0), np.float32)
    for per_neuron, record in ((False, False), (True, False), (False, True)):
        size = neurons if per_neuron else 1
        params = [np.full(size, value, np.float32) for value in values]
        rows = steps if record else 1
        out = np.empty_like(x)
        state_out = [np.empty((rows, neurons), np.float32) for _ in range(2)]
        cpu.forward_arrays(
            x,
            [v0, i0, np.empty(0, np.float32)],
            params,
            SYN | LEAK | SPIKE,
            out,
            [*state_out, empty],
        )
        assert expected[0].any() and not expected[0].all()
        assert np.array_equal(out, expected[0]), (per_neuron, record)
        assert np.array_equal(state_out[0][-1], expected[1]), (per_neuron, record)
        assert np.array_equal(state_out[1][-1], expected[2]), (per_neuron, record)
