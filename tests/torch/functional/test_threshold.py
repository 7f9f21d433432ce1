import math

import pytest
import torch

from norse.torch.functional import logical
from norse.torch.functional.heaviside import heaviside
from norse.torch.functional.superspike import super_fn as super_fn_compat
from norse.torch.functional.threshold import (
    METHODS,
    SURROGATE_GRADIENTS,
    sign,
    super_fn,
    threshold,
)

# Smooth primitives F with F' = the surrogate gradient, to check the backward pass
# against finite differences in float64.
PRIMITIVES = {
    "super": lambda x, a: x / (a * x.abs() + 1),
    "tanh": lambda x, a: torch.tanh(a * x) / a,
    "circ": lambda x, a: x / torch.sqrt(1 + (x / a) ** 2),
    "heavi_erfc": lambda x, a: torch.erf(a * x) / a,
    "logistic": lambda x, a: torch.tanh(a * x) / a,
    "circ_dist": lambda x, a: x / torch.sqrt(1 + (x / a) ** 2),
}

FORMULAS = {
    "super": lambda x, a: 1 / (a * x.abs() + 1) ** 2,
    "triangle": lambda x, a: a * torch.clamp(1 - x.abs(), min=0),
    "tanh": lambda x, a: 1 - torch.tanh(a * x) ** 2,
    "circ": lambda x, a: a**3 / (a**2 + x**2) ** 1.5,
    "heavi_erfc": lambda x, a: 2 * torch.exp(-((a * x) ** 2)) / math.sqrt(math.pi),
    "logistic": lambda x, a: 1 - torch.tanh(a * x) ** 2,
    "circ_dist": lambda x, a: a**3 / (a**2 + x**2) ** 1.5,
}

DETERMINISTIC = [m for m in METHODS if m not in ("logistic", "circ_dist")]


def test_methods_cover_the_issue_list():
    assert set(METHODS) == {
        "heaviside",
        "super",
        "triangle",
        "tanh",
        "circ",
        "heavi_erfc",
        "logistic",
        "circ_dist",
    }
    assert set(SURROGATE_GRADIENTS) == set(METHODS) - {"heaviside"}


@pytest.mark.parametrize("method", DETERMINISTIC)
def test_forward_is_strict_step(method):
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 2.0])
    assert threshold(x, method, 2.0).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64]
)
def test_forward_keeps_dtype(dtype):
    x = torch.randn(10).to(dtype)
    for method in DETERMINISTIC:
        assert threshold(x, method, 3.0).dtype == dtype


@pytest.mark.parametrize("method", sorted(FORMULAS))
@pytest.mark.parametrize("alpha", [0.5, 3.0, 100.0])
def test_surrogate_gradient_matches_formula(method, alpha):
    x = torch.linspace(-3, 3, 101, dtype=torch.float64, requires_grad=True)
    out = threshold(x, method, alpha)
    grad_out = torch.rand_like(x)
    (grad,) = torch.autograd.grad(out, x, grad_out)
    expected = grad_out * FORMULAS[method](
        x.detach(), torch.tensor(alpha, dtype=torch.float64)
    )
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", sorted(PRIMITIVES))
def test_surrogate_gradient_is_derivative_of_smooth_primitive(method):
    alpha = torch.tensor(2.5, dtype=torch.float64)
    x = torch.linspace(
        -2, 2, 40, dtype=torch.float64, requires_grad=True
    )  # avoids the kink at 0
    (grad,) = torch.autograd.grad(threshold(x, method, alpha).sum(), x)
    h = 1e-6
    primitive = PRIMITIVES[method]
    numeric = (primitive(x.detach() + h, alpha) - primitive(x.detach() - h, alpha)) / (
        2 * h
    )
    torch.testing.assert_close(grad, numeric, rtol=1e-6, atol=1e-8)


def test_superspike_honours_alpha():
    x = torch.tensor([0.5], requires_grad=True)
    (g1,) = torch.autograd.grad(threshold(x, "super", 1.0), x)
    (g100,) = torch.autograd.grad(threshold(x, "super", 100.0), x)
    assert g1.item() == pytest.approx(1 / 1.5**2)
    assert g100.item() == pytest.approx(1 / 51**2)
    # the compatibility module exposes the same function
    assert super_fn_compat is super_fn


def test_superspike_gradcheck_through_primitive():
    # gradcheck of a function whose forward is smooth but uses the surrogate backward
    class Smooth(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x / (100 * x.abs() + 1)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            with torch.enable_grad():
                xx = x.detach().requires_grad_()
                (grad,) = torch.autograd.grad(threshold(xx, "super", 100.0), xx, g)
            return grad

    x = torch.randn(20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Smooth.apply, (x,))


def test_heaviside_has_no_gradient_path():
    x = torch.randn(5, requires_grad=True)
    assert not threshold(x, "heaviside", 1.0).requires_grad
    assert heaviside(torch.tensor([0.0, 0.1])).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("method", ["logistic", "circ_dist"])
def test_stochastic_methods_sample_with_the_right_probability(method):
    torch.manual_seed(0)
    x = torch.full((20000,), 0.3)
    alpha = 2.0
    spikes = threshold(x, method, alpha)
    if method == "logistic":
        p = 0.5 + 0.5 * math.tanh(alpha * 0.3)
    else:
        p = 0.5 + 0.5 * 0.3 / math.sqrt(0.09 + alpha**2)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert spikes.mean().item() == pytest.approx(
        p, abs=4 * math.sqrt(p * (1 - p) / 20000)
    )


def test_unknown_method_names_valid_ones():
    with pytest.raises(ValueError, match="'super'.*got 'superspike'"):
        threshold(torch.zeros(1), "superspike", 1.0)


def test_sign_and_logic():
    x = torch.tensor([-1.0, 1.0])
    assert sign(x, "super", 1.0).tolist() == [-1.0, 1.0]
    a = torch.tensor([0.0, 0.0, 1.0, 1.0])
    b = torch.tensor([0.0, 1.0, 0.0, 1.0])
    assert logical.logical_and(a, b).tolist() == [0, 0, 0, 1]
    assert logical.logical_or(a, b).tolist() == [0, 1, 1, 1]
    assert logical.logical_xor(a, b).tolist() == [0, 1, 1, 0]
    assert logical.posedge_detector(b, a).tolist() == [0, 1, 0, 0]
    assert logical.muller_c(
        torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0])
    ).tolist() == [1.0, 1.0]


def test_trainable_alpha_gets_no_gradient_but_works():
    alpha = torch.nn.Parameter(torch.tensor(5.0))
    x = torch.randn(4, requires_grad=True)
    threshold(x, "super", alpha).sum().backward()
    assert x.grad is not None and alpha.grad is None
