"""norse.torch.fused.spike_linear: the reference's product with the CPU kernels; the
layers that use it. (Results, gradients and errors against the reference for both:
tests/torch/functional/test_sparse.py.)"""

import pytest
import torch
import torch.nn.functional as F

from norse.torch.functional import sparse
from norse.torch.functional.leaky_integrator import LIState, li_step
from norse.torch.fused import spike_linear as fused
from norse.torch.module.leaky_integrator import LILinearCell
from norse.torch.module.sparse import SpikeLinear


def spikes(shape, activity, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < activity).to(dtype)


@pytest.fixture
def kernel_calls(counted_calls, monkeypatch):
    """The calls of the kernels' product (and "auto" considers any size)."""
    monkeypatch.setattr(sparse, "MIN_KERNEL_WORK", 0)
    monkeypatch.setattr(sparse, "MIN_SPARSE_WORK", 0)
    return counted_calls(fused, "_event_driven")


@pytest.fixture
def reference_calls(counted_calls):
    return counted_calls(sparse, "_event_driven")


def test_without_kernels_the_reference_runs(monkeypatch, kernel_calls, reference_calls):
    monkeypatch.setattr(fused, "_cpu_kernels", lambda: None)
    x = spikes((6, 40), 0.05)
    weight = sparse.column_major(torch.randn(8, 40))
    torch.testing.assert_close(fused.spike_linear(x, weight), F.linear(x, weight))
    assert kernel_calls == [] and len(reference_calls) == 1


def test_layers_take_the_kernels(kernel_calls):
    pytest.importorskip("numba")
    x = spikes((5, 3, 100), 0.03)
    layer = SpikeLinear(100, 64)  # (64 outputs: the kernels' threshold is 20%)
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
    assert len(kernel_calls) == 1

    cell = LILinearCell(100, 64)
    state = LIState(v=torch.randn(3, 64), i=torch.randn(3, 64))
    v, new_state = cell(x[0], state)
    assert len(kernel_calls) == 2
    v_ref, state_ref = li_step(x[0], state, cell.input_weights, cell.p, cell.dt)
    torch.testing.assert_close(v, v_ref)
    torch.testing.assert_close(new_state.i, state_ref.i)
    torch.testing.assert_close(new_state.v, state_ref.v)


def test_dense_method_and_mismatched_arguments_stay_dense(kernel_calls):
    x = spikes((4, 40), 0.05)
    weight = torch.randn(8, 40)
    fused.spike_linear_unchecked(x, weight, None, "dense")
    with pytest.raises(RuntimeError):  # F.linear's own error
        fused.spike_linear_unchecked(spikes((4, 41), 0.05), weight)
    assert kernel_calls == []
