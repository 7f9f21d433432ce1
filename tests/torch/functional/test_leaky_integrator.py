import math

import pytest
import torch

from norse.torch.functional import leaky_integrator as li
from norse.torch.functional import leaky_integrator_box as li_box


def test_li_hand_computed():
    state = li.LIState(v=torch.zeros(1), i=torch.zeros(1))
    v = []
    for _ in range(3):
        out, state = li.li_feed_forward_step(torch.ones(1), state)
        v.append(out.item())
    assert v == pytest.approx([0.1, 0.27, 0.487], abs=1e-6)


def test_li_converges_to_ode_at_first_order():
    p = li.LIParameters(v_leak=torch.tensor(0.1))
    a, b, v0, i0, t_end = 100.0, 200.0, 0.5, 2.0, 0.03
    exact = (
        0.1
        + (v0 - 0.1) * math.exp(-a * t_end)
        + a * i0 * (math.exp(-b * t_end) - math.exp(-a * t_end)) / (a - b)
    )
    errors = []
    for dt in (1e-4, 5e-5, 2.5e-5):
        s = li.LIState(
            torch.tensor(v0, dtype=torch.float64), torch.tensor(i0, dtype=torch.float64)
        )
        for _ in range(round(t_end / dt)):
            _, s = li.li_feed_forward_step(
                torch.tensor(0.0, dtype=torch.float64), s, p, dt
            )
        errors.append(abs(s.v.item() - exact))
    assert errors[0] / errors[1] == pytest.approx(2, rel=0.1)
    assert errors[1] / errors[2] == pytest.approx(2, rel=0.1)


def test_li_step_gradcheck():
    x = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    v = torch.rand(2, 4, dtype=torch.float64, requires_grad=True)

    def run(x, w, v):
        out, s = li.li_step(x, li.LIState(v, torch.zeros(2, 4, dtype=torch.float64)), w)
        return out, s.i

    assert torch.autograd.gradcheck(run, (x, w, v))


def test_li_box_exact_exponential_relaxation():
    # constant input I: v_n = I (1 - (1 - dt/tau)^n)
    s = li_box.LIBoxState(torch.zeros(1))
    for n in range(1, 6):
        v, s = li_box.li_box_feed_forward_step(
            torch.tensor([3.0]), s, li_box.LIBoxParameters()
        )
        assert v.item() == pytest.approx(3 * (1 - 0.9**n), rel=1e-6)
    v, _ = li_box.li_box_step(
        torch.ones(1, 2), li_box.LIBoxState(torch.zeros(1, 1)), torch.ones(1, 2)
    )
    assert v.item() == pytest.approx(0.2)
