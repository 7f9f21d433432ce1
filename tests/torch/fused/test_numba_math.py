"""The vectorisable exponential of the generated CPU kernels against torch.exp."""

import numpy as np
import pytest
import torch
from numba import njit

from norse.torch.fused.generate.numba_math import exp32, exp64


@njit
def _exp64_all(x, out):
    for i in range(x.shape[0]):
        out[i] = exp64(x[i])


@njit
def _exp32_all(x, out):
    for i in range(x.shape[0]):
        out[i] = exp32(x[i])


SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-300, -1e-300, 88.72, 88.73, -87.3]
SPECIAL += [-103.97, -104.0, 709.78, 709.79, -708.4, -720.0, -745.13, -745.14]


def _inputs(dtype):
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.uniform(-750, 712, 200_000),
            rng.uniform(-5, 5, 200_000),
            rng.uniform(-1e-3, 1e-3, 10_000),
            np.array(SPECIAL),
        ]
    )
    return x.astype(dtype)


def _ulps(result, expected):
    scale = np.spacing(np.abs(expected).astype(expected.dtype))
    return np.abs(result.astype(np.float64) - expected) / scale


@pytest.mark.parametrize(
    "dtype, kernel", [(np.float64, _exp64_all), (np.float32, _exp32_all)]
)
def test_within_one_ulp_of_torch_exp_with_its_special_values(dtype, kernel):
    x = _inputs(dtype)
    result = np.empty_like(x)
    kernel(x, result)
    expected = torch.exp(torch.from_numpy(x)).numpy()
    finite = np.isfinite(expected) & (expected > np.finfo(dtype).tiny)
    assert _ulps(result[finite], expected[finite]).max() <= 1.0
    # inf for overflow, 0 for underflow, NaN for NaN, subnormals to their last bit
    rest = ~finite
    subnormal = rest & (expected > 0) & np.isfinite(expected)
    spacing = np.finfo(dtype).smallest_subnormal
    assert np.all(np.abs(result[subnormal] - expected[subnormal]) <= spacing)
    exact = rest & ~subnormal
    np.testing.assert_array_equal(result[exact], expected[exact])


def test_the_lane_loop_is_vectorised():
    x = np.linspace(-5, 5, 64)
    _exp64_all(x, np.empty_like(x))
    ir = next(iter(_exp64_all.inspect_llvm().values()))
    assert " x double>" in ir  # no per-lane libm call left
