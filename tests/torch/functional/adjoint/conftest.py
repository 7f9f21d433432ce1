"""Shared helpers of the adjoint-gradient tests."""

from types import SimpleNamespace
from typing import Callable, Sequence

import numpy as np
import pytest
import torch

#: Euler steps of the spike-time convergence checks (halved three times).
DTS = (1e-4, 5e-5, 2.5e-5, 1.25e-5)


def _central_difference(
    function: Callable[[np.ndarray], float], x: Sequence[float], h: float = 1e-6
) -> np.ndarray:
    """Central finite differences of a smooth scalar ``function`` at ``x``."""
    x = np.asarray(x, dtype=float)
    gradient = np.zeros_like(x)
    for k in range(x.size):
        step = np.zeros_like(x)
        step[k] = h
        gradient[k] = (function(x + step) - function(x - step)) / (2 * h)
    return gradient


def _assert_first_order(
    gradient: Callable[[float], np.ndarray],
    exact: np.ndarray,
    dts: Sequence[float] = DTS,
    constant: float = 400.0,
) -> None:
    """``gradient(dt)`` (a discretised gradient) approaches ``exact`` at first order:
    its relative error stays below ``constant * dt`` and falls at least four-fold from
    the coarsest to the finest ``dt`` (the discrete spike times make it saw-toothed, so
    single halvings need not halve it)."""
    errors = [float(np.max(np.abs(gradient(dt) - exact) / np.abs(exact))) for dt in dts]
    assert all(error < constant * dt for error, dt in zip(errors, dts)), errors
    assert errors[-1] < errors[0] / 4, errors


def _unroll(step: Callable, state, inputs: torch.Tensor, *args):
    """Runs ``step(input, state, *args)`` over the first dimension of ``inputs``; returns
    the stacked outputs and the final state."""
    outputs = []
    for x in inputs:
        out, state = step(x, state, *args)
        outputs.append(out.to_dense() if out.is_sparse else out)
    return torch.stack(outputs), state


@pytest.fixture
def adjoint():
    """``adjoint.central_difference(f, x)``, ``adjoint.assert_first_order(gradient,
    exact)``, ``adjoint.unroll(step, state, inputs, *args)`` and ``adjoint.DTS``."""
    return SimpleNamespace(
        central_difference=_central_difference,
        assert_first_order=_assert_first_order,
        unroll=_unroll,
        DTS=DTS,
    )
