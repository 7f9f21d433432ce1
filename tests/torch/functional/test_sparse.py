import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from norse.torch.functional import sparse
from norse.torch.functional.leaky_integrator import LIState, li_step
from norse.torch.functional.sparse import (
    activity_threshold,
    column_major,
    is_column_major,
    kernel_activity_threshold,
)

_UNDER_TEST = {"spike_linear": sparse.spike_linear}


def spike_linear(*args, **kwargs):
    """The ``spike_linear`` of the backend under test (see :func:`backend`)."""
    return _UNDER_TEST["spike_linear"](*args, **kwargs)


def spikes(shape, activity, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < activity).to(dtype)


def weights(out_features, in_features, dtype=torch.float32, seed=1, layout="column"):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(out_features, in_features, generator=generator, dtype=dtype)
    return column_major(weight) if layout == "column" else weight


@pytest.fixture(params=["kernels", "torch"], autouse=True)
def backend(request, monkeypatch):
    """Every test runs with the CPU kernels (:mod:`norse.torch.fused.spike_linear`,
    Numba) and with the reference's index-tensor path (what runs without Numba, and on
    other devices)."""
    if request.param == "kernels":
        pytest.importorskip("numba")
        from norse.torch.fused import spike_linear as fused

        assert fused._cpu_kernels() is not None
        monkeypatch.setitem(_UNDER_TEST, "spike_linear", fused.spike_linear)
    else:
        monkeypatch.setitem(_UNDER_TEST, "spike_linear", sparse.spike_linear)
    return request.param


def auto_threshold(backend, weight, rows):
    """The activity up to which ``"auto"`` goes sparse (column-major weight, few rows)."""
    if backend == "kernels":
        return kernel_activity_threshold(weight)
    return activity_threshold(rows)


@pytest.fixture
def count_sparse(monkeypatch, event_driven_calls):
    """Counts the event-driven products; ``"auto"`` considers any size."""
    monkeypatch.setattr(sparse, "MIN_SPARSE_WORK", 0)
    monkeypatch.setattr(sparse, "MIN_KERNEL_WORK", 0)
    return event_driven_calls


@pytest.mark.parametrize("shape", [(20,), (3, 20), (4, 3, 20), (0, 20), (2, 0, 20)])
@pytest.mark.parametrize("activity", [0.0, 0.02, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["column", "row"])
def test_equals_linear(shape, activity, dtype, layout, count_sparse, backend):
    x = spikes(shape, activity, dtype)
    weight = weights(7, 20, dtype, layout=layout)
    bias = torch.randn(7, dtype=dtype)
    expected = F.linear(x, weight, bias)
    for method in ("sparse", "auto", "dense"):
        for b in (bias, None):
            result = spike_linear(x, weight, b, method=method)
            assert result.shape == expected.shape
            assert result.dtype == dtype
            tolerance = 1e-5 if dtype == torch.float32 else 1e-12
            torch.testing.assert_close(
                result, F.linear(x, weight, b), rtol=tolerance, atol=tolerance
            )
    # "sparse" twice; "auto" twice at low activity with a column-major weight (a
    # row-major one only from MIN_ROWS_TO_TRANSPOSE rows on, with the kernels)
    threshold = auto_threshold(backend, weight, x.numel() // 20)
    auto = layout == "column" and activity <= threshold
    assert len(count_sparse) == (0 if x.numel() == 0 else 2 + 2 * auto)


def test_large_layer_2_percent():
    x = spikes((3, 5, 1024), 0.02)
    weight = weights(300, 1024)
    with torch.no_grad():
        result = spike_linear(x, weight, method="sparse")
    torch.testing.assert_close(result, F.linear(x, weight), rtol=1e-5, atol=1e-4)


def test_bool_and_noncontiguous_input():
    x = spikes((20, 6), 0.3).t()  # (6, 20), not contiguous
    weight = weights(5, 20)
    for method in ("sparse", "auto", "dense"):
        torch.testing.assert_close(
            spike_linear(x, weight, method=method), x @ weight.t()
        )
        torch.testing.assert_close(
            spike_linear(x.bool(), weight, method=method), x @ weight.t()
        )


def test_auto_chooses_by_activity(count_sparse, backend):
    weight = weights(8, 100)
    rows = 4
    limit = auto_threshold(backend, weight, rows)
    low = torch.zeros(rows, 100)
    low.view(-1)[: int(limit * low.numel())] = 1.0
    spike_linear(low, weight)
    assert len(count_sparse) == 1
    high = low.clone()
    high.view(-1)[: int(limit * high.numel()) + 1] = 1.0
    spike_linear(high, weight)
    assert len(count_sparse) == 1  # dense
    spike_linear(high, weight, method="sparse")
    assert len(count_sparse) == 2


def test_auto_stays_dense_for_small_products_row_major_or_non_binary(
    count_sparse, monkeypatch, backend
):
    minimum = "MIN_KERNEL_WORK" if backend == "kernels" else "MIN_SPARSE_WORK"
    x = spikes((2, 100), 0.01)
    x[0, 3] = 2.0  # not binary
    weight = weights(8, 100)
    torch.testing.assert_close(spike_linear(x, weight), F.linear(x, weight))
    binary = spikes((2, 100), 0.02)
    spike_linear(binary, weights(8, 100, layout="row"))
    assert count_sparse == []
    monkeypatch.setattr(sparse, minimum, 8 * 100 * 16 + 1)
    spike_linear(binary, weight)
    assert count_sparse == []
    monkeypatch.setattr(sparse, minimum, 8 * 100 * 16)
    spike_linear(binary, weight)
    assert len(count_sparse) == 1


def test_non_finite_input():
    weight = weights(4, 10)
    x = spikes((3, 10), 0.2)
    x[1, 2] = float("nan")
    torch.testing.assert_close(
        spike_linear(x, weight), F.linear(x, weight), equal_nan=True
    )
    with pytest.raises(ValueError, match="binary.*nan"):
        spike_linear(x, weight, method="sparse")


def test_activity_threshold():
    values = [activity_threshold(rows) for rows in (0, 1, 4, 32, 256, 1600, 10**6)]
    assert values[0] == values[1] == sparse.SPARSE_ACTIVITY_THRESHOLD_FEW_ROWS
    assert values[-1] == sparse.SPARSE_ACTIVITY_THRESHOLD
    assert values == sorted(values, reverse=True)


def test_column_major():
    weight = torch.randn(3, 5)
    stored = column_major(weight)
    assert torch.equal(stored, weight) and stored.shape == (3, 5)
    assert is_column_major(stored) and not is_column_major(weight)
    assert not is_column_major(torch.randn(4))


@pytest.mark.parametrize("method", ["sparse", "auto"])
def test_gradients_equal_linear(method, count_sparse, monkeypatch):
    monkeypatch.setattr(sparse, "KERNEL_ACTIVITY_THRESHOLD_NARROW", 1.0)
    x = spikes((3, 2, 12), 0.1, torch.float64).requires_grad_()
    weight = weights(5, 12, torch.float64).requires_grad_()
    bias = torch.randn(5, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(3, 2, 5, dtype=torch.float64)
    result = torch.autograd.grad(
        spike_linear(x, weight, bias, method), (x, weight, bias), grad
    )
    expected = torch.autograd.grad(F.linear(x, weight, bias), (x, weight, bias), grad)
    assert len(count_sparse) == 1
    for got, want in zip(result, expected):
        torch.testing.assert_close(got, want)


def test_gradient_of_weight_only_and_no_grad():
    x = spikes((4, 12), 0.2)
    weight = weights(5, 12).requires_grad_()
    y = spike_linear(x, weight, method="sparse")
    (g,) = torch.autograd.grad(y.sum(), weight)
    torch.testing.assert_close(g, torch.ones(4, 5).t() @ x)
    with torch.no_grad():
        assert not spike_linear(x, weight, method="sparse").requires_grad


def test_gradcheck_weight_and_bias():
    x = spikes((2, 3, 6), 0.3, torch.float64)
    weight = weights(4, 6, torch.float64).requires_grad_()
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)

    def product(w, b):
        return spike_linear(x, w, b, method="sparse")

    assert torch.autograd.gradcheck(product, (weight, bias))
    assert torch.autograd.gradgradcheck(product, (weight, bias))


def test_li_step_uses_sparse_path_and_keeps_its_result(count_sparse):
    # li_step is the reference (index tensors) with either backend.
    x = spikes((3, 40), 0.03)
    weight = weights(6, 40)
    state = LIState(v=torch.randn(3, 6), i=torch.randn(3, 6))
    v, new_state = li_step(x, state, weight)
    assert len(count_sparse) == 1
    i_jump = state.i + F.linear(x, weight)
    v_expected = state.v + 0.001 * 100.0 * ((0.0 - state.v) + i_jump)
    torch.testing.assert_close(v, v_expected)
    torch.testing.assert_close(new_state.i, i_jump - 0.001 * 200.0 * i_jump)
    with pytest.raises(RuntimeError):  # mismatched shapes: F.linear's own error
        li_step(spikes((3, 41), 0.05), state, weight)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((torch.zeros(2, 5), torch.zeros(3, 4)), ValueError, "in_features=4.*input"),
        ((torch.zeros(()), torch.zeros(3, 4)), ValueError, "input"),
        ((torch.zeros(2, 4), torch.zeros(3, 4, 1)), ValueError, "weight must be 2-D"),
        ((torch.zeros(2, 4), torch.zeros(3, 4), torch.zeros(4)), ValueError, "bias"),
        (
            (torch.zeros(2, 4, dtype=torch.float64), torch.zeros(3, 4)),
            TypeError,
            "dtype",
        ),
        ((torch.zeros(2, 4, dtype=torch.int64), torch.zeros(3, 4)), TypeError, "dtype"),
        (
            (torch.zeros(2, 4), torch.zeros(3, 4, dtype=torch.int64)),
            TypeError,
            "weight",
        ),
        (
            (torch.zeros(2, 4), torch.zeros(3, 4), torch.zeros(3, dtype=torch.float64)),
            TypeError,
            "bias",
        ),
        (([0.0] * 4, torch.zeros(3, 4)), TypeError, "input must be a torch.Tensor"),
        ((torch.zeros(2, 4), None), TypeError, "weight must be a torch.Tensor"),
        ((torch.zeros(2, 4, device="meta"), torch.zeros(3, 4)), ValueError, "device"),
    ],
)
def test_errors(args, error, match):
    with pytest.raises(error, match=match):
        spike_linear(*args)


def test_unknown_method_and_non_binary_sparse():
    with pytest.raises(ValueError, match="method must be one of"):
        spike_linear(torch.zeros(2, 4), torch.zeros(3, 4), method="fast")
    x = torch.tensor([[0.0, 1.0, 0.5, 0.0]])
    with pytest.raises(ValueError, match="binary.*0.5"):
        spike_linear(x, torch.zeros(3, 4), method="sparse")


@settings(max_examples=60, deadline=None)
@given(
    lead=st.lists(st.integers(0, 4), min_size=0, max_size=3),
    in_features=st.integers(1, 16),
    out_features=st.integers(1, 8),
    activity=st.floats(0.0, 1.0),
    method=st.sampled_from(["auto", "sparse", "dense"]),
    layout=st.sampled_from(["column", "row"]),
    with_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_equals_linear(
    lead, in_features, out_features, activity, method, layout, with_bias, seed
):
    x = spikes((*lead, in_features), activity, torch.float64, seed)
    weight = weights(out_features, in_features, torch.float64, seed + 1, layout)
    bias = torch.randn(out_features, dtype=torch.float64) if with_bias else None
    old = sparse.MIN_SPARSE_WORK, sparse.MIN_KERNEL_WORK
    # let "auto" pick the sparse path on tiny layers
    sparse.MIN_SPARSE_WORK = sparse.MIN_KERNEL_WORK = 0
    try:
        result = spike_linear(x, weight, bias, method)
    finally:
        sparse.MIN_SPARSE_WORK, sparse.MIN_KERNEL_WORK = old
    torch.testing.assert_close(result, F.linear(x, weight, bias))


@pytest.mark.parametrize("out_features", [48, 50])
def test_blocked_gather_equals_linear(out_features, monkeypatch, backend):
    """The output-column blocks of large weights (forced here on a small one: blocks of
    16 columns, the last one partial for 50), index-tensor path."""
    if backend == "kernels":
        pytest.skip("the index-tensor path's blocks (the kernels': test_cpu_linear.py)")
    monkeypatch.setattr(sparse, "BLOCK_MIN_WEIGHT_BYTES", 0)
    monkeypatch.setattr(sparse, "BLOCK_BYTES", 16 * 30 * 8)
    blocks = []
    embedding_bag = F.embedding_bag

    def counted(indices, table, *args, **kwargs):
        blocks.append(table.shape)
        return embedding_bag(indices, table, *args, **kwargs)

    monkeypatch.setattr(F, "embedding_bag", counted)
    x = spikes((9, 30), 0.3, torch.float64)
    weight = weights(out_features, 30, torch.float64)
    bias = torch.randn(out_features, dtype=torch.float64)
    torch.testing.assert_close(
        spike_linear(x, weight, bias, method="sparse"), F.linear(x, weight, bias)
    )
    assert blocks[:3] == [(30, 16)] * 3 and len(blocks) == -(-out_features // 16)


def test_tracing_and_dispatch_modes_see_pytorch_operations(count_sparse, recorded_ops):
    """jit.trace and dispatch modes record operations: the CPU kernels (NumPy) would be
    invisible to them, so the index-tensor path runs (still event-driven)."""
    x = spikes((6, 30), 0.1)
    weight = weights(8, 30)
    with recorded_ops() as ops:
        result = spike_linear(x, weight, method="sparse")
    assert any("embedding_bag" in name for name in ops.names)
    torch.testing.assert_close(result, F.linear(x, weight))
    traced = torch.jit.trace(
        lambda x: spike_linear(x, weight, method="sparse"), x, check_trace=False
    )
    other = spikes((6, 30), 0.1, seed=3)
    torch.testing.assert_close(traced(other), F.linear(other, weight))


def test_layer_without_outputs():
    x = spikes((4, 5), 0.5)
    weight = weights(0, 5).requires_grad_()
    for method in ("sparse", "auto", "dense"):
        out = spike_linear(x, weight, method=method)
        assert out.shape == (4, 0)
        (grad,) = torch.autograd.grad(out.sum(), weight)
        assert grad.shape == (0, 5)
