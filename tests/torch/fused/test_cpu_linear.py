import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("numba")

from norse.torch.fused import cpu_linear  # noqa: E402


def spikes(rows, cols, activity, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(rows, cols, generator=generator) < activity).to(dtype)


def csr(active):
    """The CSR index as ``[(row, col), ...]``."""
    return [
        (r, int(active.index[j]))
        for r in range(active.rows)
        for j in range(active.pointer[r], active.pointer[r + 1])
    ]


@pytest.mark.parametrize("dtype", cpu_linear.INPUT_DTYPES)
@pytest.mark.parametrize("cols", [1, 63, 64, 65, 130, 784])
@pytest.mark.parametrize("activity", [0.0, 0.1, 1.0])
def test_scan_finds_every_active_input_in_order(dtype, cols, activity):
    x = spikes(5, cols, activity, dtype)
    active = cpu_linear.active_inputs(x)
    expected = [tuple(index) for index in x.nonzero().tolist()]
    assert csr(active) == expected
    assert active.count == len(expected) and (active.rows, active.cols) == (5, cols)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("value", [0.5, 2.0, -1.0, -0.0, float("nan"), float("inf")])
@pytest.mark.parametrize("column", [0, 63, 64, 69])  # in a 64-wide block, or the tail
def test_scan_rejects_anything_but_zero_and_one(dtype, value, column):
    x = spikes(3, 70, 0.2, dtype)
    x[1, column] = value
    assert cpu_linear.active_inputs(x) is None


def test_scan_of_non_contiguous_and_empty_inputs():
    x = spikes(70, 6, 0.3).t()
    assert csr(cpu_linear.active_inputs(x)) == [tuple(i) for i in x.nonzero().tolist()]
    empty = cpu_linear.active_inputs(torch.zeros(0, 8))
    assert empty.count == 0 and empty.rows == 0


@pytest.mark.parametrize("layout", ["row", "column"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_forward_and_weight_gradient_equal_dense_products(layout, with_bias):
    x = spikes(40, 100, 0.15, torch.float64)
    weight = torch.randn(70, 100, dtype=torch.float64)
    if layout == "column":
        weight = weight.t().contiguous().t()
    bias = torch.randn(70, dtype=torch.float64) if with_bias else None
    active = cpu_linear.active_inputs(x)
    out = cpu_linear.binary_linear(active, weight, bias)
    torch.testing.assert_close(out, torch.nn.functional.linear(x, weight, bias))
    grad_out = torch.randn(40, 70, dtype=torch.float64)
    grad_weight = cpu_linear.binary_weight_grad(active, grad_out)
    assert grad_weight.shape == weight.shape
    torch.testing.assert_close(grad_weight, grad_out.t() @ x)


def test_column_blocks_of_large_tables(monkeypatch):
    """Blocks of output columns (forced on a small table: 16 wide, the last partial)."""
    monkeypatch.setattr(cpu_linear, "BLOCK_BYTES", 16 * 30 * 8)
    monkeypatch.setattr(cpu_linear, "MIN_BLOCK_WIDTH", 16)
    weight = torch.randn(50, 30, dtype=torch.float64)
    assert cpu_linear._width(weight.t().contiguous()) == 16
    x = spikes(9, 30, 0.3, torch.float64)
    bias = torch.randn(50, dtype=torch.float64)
    out = cpu_linear.binary_linear(cpu_linear.active_inputs(x), weight, bias)
    torch.testing.assert_close(out, torch.nn.functional.linear(x, weight, bias))


def test_float32_sums_stay_close_to_float64():
    x = spikes(64, 784, 0.13)
    weight = torch.randn(256, 784)
    out = cpu_linear.binary_linear(cpu_linear.active_inputs(x), weight, None)
    exact = x.double() @ weight.double().t()
    assert (out.double() - exact).abs().max() < 1e-4


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 20),
    cols=st.integers(1, 200),
    out_features=st.integers(1, 40),
    activity=st.floats(0.0, 1.0),
    dtype=st.sampled_from([torch.float64, torch.bool]),
    seed=st.integers(0, 2**16),
)
def test_property_kernels_equal_dense(rows, cols, out_features, activity, dtype, seed):
    x = spikes(rows, cols, activity, dtype, seed)
    weight = torch.randn(out_features, cols, dtype=torch.float64)
    bias = torch.randn(out_features, dtype=torch.float64)
    active = cpu_linear.active_inputs(x)
    dense = x.to(torch.float64)
    assert active.count == int(dense.sum())
    torch.testing.assert_close(
        cpu_linear.binary_linear(active, weight, bias),
        torch.nn.functional.linear(dense, weight, bias),
    )
    grad_out = torch.randn(rows, out_features, dtype=torch.float64)
    torch.testing.assert_close(
        cpu_linear.binary_weight_grad(active, grad_out), grad_out.t() @ dense
    )


def test_index_arrays():
    active = cpu_linear.active_inputs(spikes(4, 10, 0.5))
    assert active.index.dtype == np.int32 and active.pointer.dtype == np.int64
    assert active.pointer[0] == 0 and np.all(np.diff(active.pointer) >= 0)


def test_rows_split_over_threads_give_the_same_sums(monkeypatch):
    """The gather-sums split their rows over threads: bit for bit the one-thread result
    (each row is summed by one thread in the same order), also for ragged splits."""
    from norse.torch.fused import cpu

    x = spikes(203, 150, 0.2, torch.float64)
    weight = torch.randn(40, 150, dtype=torch.float64)
    bias = torch.randn(40, dtype=torch.float64)
    grad_out = torch.randn(203, 40, dtype=torch.float64)
    active = cpu_linear.active_inputs(x)
    one = (
        cpu_linear.binary_linear(active, weight, bias),
        cpu_linear.binary_weight_grad(active, grad_out),
    )
    monkeypatch.setattr(cpu, "MIN_WORK_PER_THREAD", 1)
    calls = []
    run = cpu._run

    def counted(kernel, args, steps, neurons, threads, align):
        calls.append(cpu._ranges(steps, neurons, threads, align))
        return run(kernel, args, steps, neurons, threads, align)

    monkeypatch.setattr(cpu_linear, "_run", counted)
    monkeypatch.setattr(cpu_linear, "_threads", lambda: 3)
    three = (
        cpu_linear.binary_linear(active, weight, bias),
        cpu_linear.binary_weight_grad(active, grad_out),
    )
    assert [len(ranges) for ranges in calls] == [3, 3]
    for a, b in zip(one, three):
        assert torch.equal(a, b)


def test_no_rows():
    active = cpu_linear.active_inputs(torch.zeros(0, 70))
    out = cpu_linear.binary_linear(active, torch.randn(5, 70), torch.randn(5))
    assert out.shape == (0, 5)
    grad = cpu_linear.binary_weight_grad(active, torch.zeros(0, 5))
    assert torch.equal(grad, torch.zeros(5, 70))


def test_no_outputs():
    x = spikes(4, 5, 0.5)
    weight = torch.zeros(0, 5)
    active = cpu_linear.active_inputs(x)
    assert cpu_linear.binary_linear(active, weight, None).shape == (4, 0)
    assert cpu_linear.binary_weight_grad(active, torch.zeros(4, 0)).shape == (0, 5)
