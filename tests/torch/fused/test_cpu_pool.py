import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("numba")

from norse.torch.fused import cpu_pool  # noqa: E402


def assert_same_as_torch(x, window, grad=None):
    """Values and gradients bit for bit those of F.max_pool2d (NaN where it has NaN)."""
    x = x.detach().requires_grad_()
    got = cpu_pool.max_pool2d(x, *window)
    want = F.max_pool2d(x, window)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert torch.equal(got, want) or torch.allclose(
        got, want, equal_nan=True, rtol=0, atol=0
    )
    grad = torch.randn_like(want) if grad is None else grad
    (g_got,) = torch.autograd.grad(got, x, grad)
    (g_want,) = torch.autograd.grad(want, x, grad)
    assert torch.equal(g_got, g_want)


@pytest.mark.parametrize("dtype", cpu_pool.DTYPES)
@pytest.mark.parametrize("window", [(1, 1), (2, 2), (3, 3), (2, 3), (4, 1)])
@pytest.mark.parametrize("shape", [(5, 3, 12, 12), (2, 4, 13, 11), (3, 7, 9)])
def test_random_values_and_binary_ties(dtype, window, shape):
    generator = torch.Generator().manual_seed(0)
    assert_same_as_torch(torch.randn(shape, generator=generator, dtype=dtype), window)
    spikes = (torch.rand(shape, generator=generator) < 0.3).to(dtype)
    assert_same_as_torch(spikes, window)  # ties: the first maximum takes the gradient
    assert_same_as_torch(torch.zeros(shape, dtype=dtype), window)


@pytest.mark.parametrize("special", [float("nan"), float("inf"), -float("inf")])
def test_special_values_follow_pytorch(special):
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    x[0, 0, 0, 1] = special
    x[0, 0, 1, 0] = special  # two in one window: NaN takes the last one
    x[1, 2, 4:, 4:] = special  # a whole window
    assert_same_as_torch(x, (2, 2))


def test_no_grad_and_non_contiguous_input():
    x = torch.randn(4, 8, 10, 3).permute(0, 3, 1, 2)  # (4, 3, 8, 10), not contiguous
    with torch.no_grad():
        assert torch.equal(cpu_pool.max_pool2d(x, 2, 2), F.max_pool2d(x, 2))
    assert_same_as_torch(x, (2, 2))


def test_double_backward():
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64, requires_grad=True)

    def pool(x):
        return cpu_pool.max_pool2d(x, 2, 2)

    assert torch.autograd.gradcheck(pool, (x,))
    assert torch.autograd.gradgradcheck(pool, (x,))


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 3),
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    binary=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_equals_max_pool2d(batch, height, width, kh, kw, binary, seed):
    kh, kw = min(kh, height), min(kw, width)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 2, height, width, generator=generator)
    if binary:
        x = (x > 0.5).float()
    assert_same_as_torch(x, (kh, kw))


def test_planes_split_over_threads(monkeypatch):
    from norse.torch.fused import cpu

    x = torch.randn(3, 7, 9, 10, requires_grad=True)
    grad = torch.randn(3, 7, 4, 5)
    one = (
        cpu_pool.max_pool2d(x, 2, 2),
        torch.autograd.grad(cpu_pool.max_pool2d(x, 2, 2), x, grad)[0],
    )
    monkeypatch.setattr(cpu, "MIN_WORK_PER_THREAD", 1)
    monkeypatch.setattr(cpu_pool, "_threads", lambda: 4)
    four = (
        cpu_pool.max_pool2d(x, 2, 2),
        torch.autograd.grad(cpu_pool.max_pool2d(x, 2, 2), x, grad)[0],
    )
    assert cpu._ranges(90, 21, 4, 1) == [(0, 6), (6, 12), (12, 18), (18, 21)]
    for a, b in zip(one, four):
        assert torch.equal(a, b)


def test_empty_batch():
    assert_same_as_torch(torch.zeros(0, 3, 8, 8), (2, 2))
