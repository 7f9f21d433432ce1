"""The shared pieces of the hand-written Numba kernels (:mod:`norse.torch.fused.cpu`):
work split over threads."""

import pytest

pytest.importorskip("numba")

from norse.torch.fused import cpu  # noqa: E402


def test_ranges_cover_all_neurons_in_chunk_aligned_parts():
    ranges = cpu._ranges(steps=100, neurons=20_000, threads=3)
    assert len(ranges) == 3
    assert ranges[0][0] == 0 and ranges[-1][1] == 20_000
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert all(lo % cpu.CHUNK == 0 for lo, _ in ranges)
    # Too little work for a second thread.
    assert cpu._ranges(steps=2, neurons=100, threads=4) == [(0, 100)]
