"""Shared fixtures of the functional (equation) tests."""

from types import SimpleNamespace
from typing import Callable, Sequence

import numpy as np
import pytest
from scipy.integrate import solve_ivp

#: Euler steps of the convergence checks: halved three times.
DTS = (1e-4, 5e-5, 2.5e-5, 1.25e-5)


def _reference_solution(
    rhs: Callable[[float, np.ndarray], np.ndarray], y0: Sequence[float], t_end: float
) -> np.ndarray:
    """The state at ``t_end`` from scipy's ``solve_ivp`` (rtol 1e-8)."""
    solution = solve_ivp(
        rhs, (0.0, t_end), np.asarray(y0, dtype=float), rtol=1e-8, atol=1e-12
    )
    assert solution.success, solution.message
    return solution.y[:, -1]


def _assert_first_order(
    simulate: Callable[[float], np.ndarray],
    reference: np.ndarray,
    dts: Sequence[float] = DTS,
    final_tolerance: float = 5e-3,
) -> None:
    """``simulate(dt)`` returns the state at ``t_end``; its error against ``reference``
    must halve with ``dt`` (ratios ~2: first order) and be small at the finest ``dt``."""
    errors = [float(np.max(np.abs(simulate(dt) - reference))) for dt in dts]
    scale = max(1.0, float(np.max(np.abs(reference))))
    assert errors[-1] < final_tolerance * scale, errors
    ratios = [errors[k] / errors[k + 1] for k in range(len(errors) - 1)]
    assert all(1.8 < r < 2.2 for r in ratios), (errors, ratios)


@pytest.fixture
def ode():
    """``ode.reference(rhs, y0, t_end)``: solve_ivp solution at ``t_end``;
    ``ode.assert_first_order(simulate, reference)``: an Euler-stepped model converges to
    it at first order in ``dt`` (see :data:`DTS`)."""
    return SimpleNamespace(
        reference=_reference_solution, assert_first_order=_assert_first_order
    )
