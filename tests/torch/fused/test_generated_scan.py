"""The generated CPU scan kernels of the LIF family over many neurons: threads, the
forward pass's time tiles and chunks, the backward kernels with and without parameter
gradients; against the reference step loop."""

import pytest
import torch

from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    lif_feed_forward_step,
)
from norse.torch.functional.lsnn import (
    LSNNFeedForwardState,
    LSNNParameters,
    lsnn_feed_forward_step,
)
from norse.torch.fused import generate
from norse.torch.fused.generate import numba_source

pytest.importorskip("numba")


def _scan(step, p, x, state, record=False):
    kernel = generate.kernel_for(step, p, x, state, record, 1e-3)
    assert kernel is not None
    return kernel(x, state, p, 1e-3, record)


def _loop(step, p, x, state):
    outputs = []
    for x_t in x:
        out, state = step(x_t, state, p, 1e-3)
        outputs.append(out)
    return torch.stack(outputs), state


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_the_same_result(threads):
    generator = torch.Generator().manual_seed(0)
    steps, neurons = 4, 3 * 65536 // 4 + 7
    x = 3 * torch.randn(steps, neurons, generator=generator) + 1
    v0 = torch.rand(neurons, generator=generator)
    state = LSNNFeedForwardState(v0, v0 / 2, v0 + 1)
    p = LSNNParameters(tau_syn_inv=torch.tensor(200.0).requires_grad_())
    results = []
    before = torch.get_num_threads()
    try:
        for count in (1, threads):
            torch.set_num_threads(count)
            xc = x.clone().requires_grad_()
            out, final = _scan(lsnn_feed_forward_step, p, xc, state)
            grads = torch.autograd.grad(out.sum() + final.v.sum(), [xc, p.tau_syn_inv])
            results.append([out, *final, *grads])
    finally:
        torch.set_num_threads(before)
    for single, threaded in zip(*results):
        assert torch.equal(single, threaded)


def test_backward_without_parameter_gradients_gives_the_same_gradients():
    generator = torch.Generator().manual_seed(1)
    steps, neurons = 7, 2 * numba_source.BACKWARD_CHUNK_MAX + 3
    x = 3 * torch.randn(steps, neurons, generator=generator, dtype=torch.float64) + 1
    state = LIFFeedForwardState(
        torch.rand(neurons, generator=generator, dtype=torch.float64),
        torch.rand(neurons, generator=generator, dtype=torch.float64),
    )
    g_out = torch.randn(steps, neurons, generator=generator, dtype=torch.float64)
    results = []
    for grad in (True, False):
        v_th = torch.tensor(1.0, dtype=torch.float64).requires_grad_(grad)
        p = LIFParameters(v_th=v_th)
        xc = x.clone().requires_grad_()
        out, final = _scan(lif_feed_forward_step, p, xc, state)
        results.append(torch.autograd.grad((out * g_out).sum() + final.i.sum(), [xc]))
    assert results[0][0].abs().max() > 0
    assert torch.equal(results[0][0], results[1][0])


def test_forward_paths_agree_beyond_one_chunk():
    """Shared parameters without records run long chunks in time tiles; per-neuron
    parameters and state records take the per-step path with shorter chunks. All give
    the reference loop, bit for bit, over more neurons than one chunk and a number of
    steps that is no multiple of the tile."""
    generator = torch.Generator().manual_seed(2)
    steps = 2 * numba_source.TIME_TILE + 1
    neurons = numba_source.TILED_FORWARD_CHUNK + numba_source.FORWARD_CHUNK + 5
    x = 2 * torch.randn(steps, neurons, generator=generator) + 0.5
    state = LIFFeedForwardState(
        torch.rand(neurons, generator=generator),
        torch.rand(neurons, generator=generator),
    )
    for per_neuron, record in ((False, False), (True, False), (False, True)):
        v_leak = torch.full((neurons,) if per_neuron else (), 0.05)
        p = LIFParameters(v_leak=v_leak, v_reset=torch.tensor(-0.1))
        out, final = _scan(lif_feed_forward_step, p, x, state, record)
        expected, expected_final = _loop(lif_feed_forward_step, p, x, state)
        assert expected.any() and not expected.all()
        assert torch.equal(out, expected), (per_neuron, record)
        v = final.v[-1] if record else final.v
        assert torch.equal(v, expected_final.v), (per_neuron, record)
