"""LLVM's interleave option (norse.torch.fused._llvm_options): it reaches the
compilations inside only, LLVM's default is back afterwards, and kernels compiled
inside it give the reference's results."""

import numpy as np
import pytest
import torch

pytest.importorskip("numba")

from norse.torch.functional.lif import (  # noqa: E402
    LIFFeedForwardState,
    LIFParameters,
    lif_feed_forward_step,
)
from norse.torch.fused import _llvm_options, reference_only  # noqa: E402
from norse.torch.fused.generate import numba_source  # noqa: E402
from norse.torch.module.snn import SNN  # noqa: E402


def _axpy_assembly():
    """The assembly of a fresh (uncached) ``y += a * x`` loop."""
    from numba import njit

    @njit
    def axpy(a, x, y):
        for k in range(x.shape[0]):
            y[k] = a * x[k] + y[k]

    x = np.ones(64, np.float32)
    axpy(np.float32(2), x, x.copy())
    return next(iter(axpy.inspect_asm().values()))


def _same_code(first: str, second: str) -> bool:
    return all(first.count(op) == second.count(op) for op in ("vaddps", "vmulps"))


def test_interleaving_applies_inside_only():
    """The option is process-wide: set for the compilations inside the block, LLVM's
    default before and after (other Numba code is unaffected)."""
    before = _axpy_assembly()
    with _llvm_options.interleaving(1):
        single = _axpy_assembly()
    with _llvm_options.interleaving(8):
        eightfold = _axpy_assembly()
    after = _axpy_assembly()
    assert single.count("vaddps") < eightfold.count("vaddps")  # the option acts
    assert _same_code(before, after)  # and is LLVM's default again


def test_option_restored_after_a_kernel_compiles_and_after_a_failure():
    from numba import njit

    before = _axpy_assembly()

    def scale(x, y):
        for k in range(x.shape[0]):
            y[k] = 3 * x[k]

    kernel = _llvm_options.compile_interleaved(njit(scale), 8)
    x = np.arange(64, dtype=np.float32)
    y = np.empty_like(x)
    kernel(x, y)  # compiles inside the option
    assert np.array_equal(y, 3 * x)
    assert _same_code(before, _axpy_assembly())

    def broken(x):
        return x.no_such_attribute

    failing = _llvm_options.compile_interleaved(njit(broken), 8)
    with pytest.raises(Exception):
        failing(x)  # a typing error inside the option
    assert _same_code(before, _axpy_assembly())


def test_zero_leaves_the_dispatcher_alone():
    from numba import njit

    kernel = njit(lambda x: x + 1)
    compile_for_args = kernel._compile_for_args
    assert _llvm_options.compile_interleaved(kernel, 0) is kernel
    assert kernel._compile_for_args == compile_for_args


def test_forward_kernels_compile_interleaved_and_give_the_reference(monkeypatch):
    counts = []
    original = _llvm_options.interleaving

    def counted(count):
        counts.append(count)
        return original(count)

    monkeypatch.setattr(_llvm_options, "interleaving", counted)

    # A step of its own: a new program, whose forward kernel compiles (or loads) here.
    def shifted_lif(input_tensor, state, p, dt=0.001):
        return lif_feed_forward_step(input_tensor + 0.125, state, p, dt)

    generator = torch.Generator().manual_seed(0)
    x = 2 * torch.randn(30, 4, 200, generator=generator) + 0.5
    layer = SNN(
        shifted_lif,
        lambda x: LIFFeedForwardState(torch.zeros_like(x[0]), torch.zeros_like(x[0])),
        LIFParameters(),
    )
    with torch.no_grad():
        spikes, state = layer(x)
        with reference_only():
            expected, expected_state = layer(x)
    assert counts == [numba_source.FORWARD_INTERLEAVE]
    assert expected.any() and not expected.all()
    assert torch.equal(spikes, expected)
    for value, reference in zip(state, expected_state):
        assert torch.equal(value, reference)
