"""Gradient checks (``torch.autograd.gradcheck``, float64) that the per-model tests in
``tests/torch/functional`` do not already make:

* every surrogate gradient, through a smooth primitive whose derivative is the
  surrogate (``test_threshold.py`` gradchecks only SuperSpike and compares the others
  with finite differences);
* every time module's differentiable path (``method="heaviside"``: the spikes carry no
  gradient, the dynamics and resets do), with respect to the input, every parameter
  tensor and the weights: this covers the models without a functional gradcheck (IAF,
  box LIF, box LI, the LI feed-forward step) and the fused kernels' hand-written backward
  with spikes and resets in the sequence (``tests/torch/fused`` gradchecks them below
  threshold and for the LIF parameters only).
"""

import pytest
import torch
from torch.func import functional_call

from norse.torch.functional.threshold import METHODS, threshold
from norse.torch.fused import registry

#: Smooth primitives ``F`` with ``F'`` = the surrogate gradient of each method.
PRIMITIVES = {
    "super": lambda x, a: x / (a * x.abs() + 1),
    "triangle": lambda x, a: (
        a * torch.where(x.abs() <= 1, x - x * x.abs() / 2, torch.sign(x) / 2)
    ),
    "tanh": lambda x, a: torch.tanh(a * x) / a,
    "circ": lambda x, a: x / torch.sqrt(1 + (x / a) ** 2),
    "heavi_erfc": lambda x, a: torch.erf(a * x) / a,
    "logistic": lambda x, a: torch.tanh(a * x) / a,
    "circ_dist": lambda x, a: x / torch.sqrt(1 + (x / a) ** 2),
}


#: Parameters the dynamics are not differentiable in at the checked points: the
#: refractory countdown ``relu(rho - 1)`` passes its kink at 0 after every spike.
NOT_DIFFERENTIABLE = ("rho_reset",)


def test_every_surrogate_has_a_primitive():
    assert set(PRIMITIVES) == set(METHODS) - {"heaviside"}


def _smooth_with_surrogate_backward(method, alpha):
    """Forward: the primitive; backward: the surrogate of :func:`threshold`."""

    class Smooth(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return PRIMITIVES[method](x, alpha)

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            with torch.enable_grad():
                leaf = x.detach().requires_grad_()
                (grad,) = torch.autograd.grad(
                    threshold(leaf, method, alpha), leaf, grad_output
                )
            return grad

    return Smooth.apply


@pytest.mark.parametrize("method", sorted(PRIMITIVES))
@pytest.mark.parametrize("alpha", [0.7, 2.5, torch.tensor(10.0, dtype=torch.float64)])
def test_surrogate_gradcheck(method, alpha):
    generator = torch.Generator().manual_seed(3)
    x = (
        6 * torch.rand(40, generator=generator, dtype=torch.float64) - 3
    ).requires_grad_()
    assert torch.autograd.gradcheck(
        _smooth_with_surrogate_backward(method, alpha), (x,)
    )


def _heaviside(p):
    """``p`` with every (nested) ``method`` set to ``"heaviside"``."""
    values = {}
    for field, value in zip(p._fields, p):
        if field == "method":
            value = "heaviside"
        elif isinstance(value, tuple) and hasattr(value, "_fields"):
            value = _heaviside(value)
        values[field] = value
    return type(p)(**values)


def _gradcheck_layer(layer, x, names):
    """gradcheck of the final state (and output) of ``layer(x)`` with respect to ``x``
    and the module tensors ``names`` (passed in with ``functional_call``)."""
    tensors = [
        dict(layer.named_parameters(), **dict(layer.named_buffers()))[name]
        .detach()
        .clone()
        .requires_grad_()
        for name in names
    ]

    # An explicit initial state: the default one starts at parameters (v = v_leak),
    # detached as in Norse 1.1, which finite differences would see but gradients not.
    start = layer.initial_state(x)

    def run(x, *values):
        out, state = functional_call(layer, dict(zip(names, values)), (x, start))
        leaves = [out] if out.requires_grad else []
        stack = [state]
        while stack:
            item = stack.pop()
            if isinstance(item, tuple):
                stack.extend(item)
            elif item.is_floating_point():
                leaves.append(item)
        return tuple(leaves)

    return torch.autograd.gradcheck(run, (x.requires_grad_(), *tensors))


def test_time_module_differentiable_path(time_class, neurons):
    """Input, parameter and weight gradients of every time module, spikes included."""
    p = _heaviside(neurons.default_parameters(time_class))
    layer = neurons.build(
        time_class, 3, 2, p=p, dtype=torch.float64, positive_weights=True
    )
    generator = torch.Generator().manual_seed(5)
    x = neurons.drive(time_class) * torch.rand(
        6, 2, 3, generator=generator, dtype=torch.float64
    )
    # (not exactly the drive: LIF would reach v = v_th exactly, where a finite difference
    # flips the spike)
    x[:, 0, 0] = 1.07 * neurons.drive(time_class)
    if neurons.is_spiking(time_class):
        out, _ = layer(x)
        assert out.sum() > 0  # resets happen inside the checked sequence
    names = [
        name
        for name, tensor in (*layer.named_parameters(), *layer.named_buffers())
        if tensor.is_floating_point() and not name.endswith(NOT_DIFFERENTIABLE)
    ]
    assert any(name.startswith("params.") for name in names)
    assert _gradcheck_layer(layer, x, names)


def test_fused_backward_is_checked_above():
    """The time modules with fused kernels take the fast path in the gradcheck above."""
    import norse.torch as norse

    for cls in (norse.LIF, norse.LI, norse.LIFBox, norse.LIBox, norse.IAF):
        layer = cls(_heaviside(cls().p)).double()
        x = torch.rand(6, 2, 3, dtype=torch.float64)
        state = layer.initial_state(x)
        assert (
            registry.find(layer.activation, layer.p, x, state, False, dt=layer.dt)
            is not None
        )
