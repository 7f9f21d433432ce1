r"""Spike thresholds with surrogate gradients.

The forward pass of every deterministic method is the strict Heaviside step

.. math::
    H(x) = \begin{cases} 0, & x \le 0 \\ 1, & x > 0 \end{cases}

whose true derivative is zero almost everywhere. The backward pass replaces it by a
*surrogate* :math:`\partial H / \partial x \approx \sigma'(x; \alpha)` so that gradient
descent can train spiking networks. Registered surrogates (``method`` names):

==============  ===================================================  =================
method          surrogate gradient :math:`\sigma'(x; \alpha)`         forward
==============  ===================================================  =================
``heaviside``   none (no gradient flows)                             step
``super``       :math:`1 / (\alpha |x| + 1)^2` (SuperSpike)          step
``triangle``    :math:`\alpha \max(0, 1 - |x|)`                      step
``tanh``        :math:`1 - \tanh^2(\alpha x)`                        step
``circ``        :math:`(1 + x^2/\alpha^2)^{-3/2}`                    step
``heavi_erfc``  :math:`2 e^{-(\alpha x)^2} / \sqrt{\pi}`             step
``logistic``    :math:`1 - \tanh^2(\alpha x)`                        Bernoulli
``circ_dist``   :math:`(1 + x^2/\alpha^2)^{-3/2}`                    Bernoulli
==============  ===================================================  =================

``logistic`` samples spikes with probability :math:`\frac12 + \frac12\tanh(\alpha x)`;
``circ_dist`` with :math:`\frac12 + \frac12 x / \sqrt{x^2 + \alpha^2}`.
Unlike Norse 1.1.0, SuperSpike honours ``alpha`` (as later Norse releases do).
"""

from typing import Callable, Dict, Sequence, Union

import torch

from norse.torch.functional.heaviside import heaviside

Alpha = Union[float, torch.Tensor]
SurrogateGradient = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _super_grad(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return (alpha * x.abs() + 1.0).pow(-2)


def _triangle_grad(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return alpha * torch.relu(1.0 - x.abs())


def _tanh_grad(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.tanh(alpha * x).pow(2)


def _circ_grad(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    # Norse's expression 2a(1/(2s) - x^2/(2s^3)) with s = sqrt(a^2 + x^2), simplified.
    return (1.0 + (x / alpha).pow(2)).pow(-1.5)


def _erfc_grad(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return 2.0 * torch.exp(-(alpha * x).pow(2)) / 1.7724538509055159


def _step_forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return heaviside(x)


def _logistic_forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return torch.bernoulli(0.5 + 0.5 * torch.tanh(alpha * x))


def _circ_dist_forward(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return torch.bernoulli(0.5 + 0.5 * x / torch.sqrt(x * x + alpha * alpha))


def _surrogate_function(
    name: str,
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    gradient: SurrogateGradient,
) -> type:
    """Builds an autograd function with the given forward and surrogate gradient."""

    # forward(ctx, ...) rather than a separate setup_context: with setup_context,
    # Function.apply binds the arguments through inspect.signature on every call, which
    # costs more than the step itself for small layers.
    def _forward(ctx, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, alpha)
        return forward(x, alpha)

    def _backward(ctx, grad_output: torch.Tensor):
        x, alpha = ctx.saved_tensors
        grad = None
        if ctx.needs_input_grad[0]:
            grad = grad_output * gradient(x, alpha.to(x.dtype))
        return grad, None

    return type(
        name,
        (torch.autograd.Function,),
        {
            "forward": staticmethod(_forward),
            "backward": staticmethod(_backward),
        },
    )


SuperSpike = _surrogate_function("SuperSpike", _step_forward, _super_grad)
Triangle = _surrogate_function("Triangle", _step_forward, _triangle_grad)
HeaviTanh = _surrogate_function("HeaviTanh", _step_forward, _tanh_grad)
HeaviCirc = _surrogate_function("HeaviCirc", _step_forward, _circ_grad)
HeaviErfc = _surrogate_function("HeaviErfc", _step_forward, _erfc_grad)
Logistic = _surrogate_function("Logistic", _logistic_forward, _tanh_grad)
CircDist = _surrogate_function("CircDist", _circ_dist_forward, _circ_grad)

#: Surrogate gradient formulas by method name (used by the fused kernels too).
SURROGATE_GRADIENTS: Dict[str, SurrogateGradient] = {
    "super": _super_grad,
    "triangle": _triangle_grad,
    "tanh": _tanh_grad,
    "circ": _circ_grad,
    "heavi_erfc": _erfc_grad,
    "logistic": _tanh_grad,
    "circ_dist": _circ_grad,
}

_FUNCTIONS: Dict[str, type] = {
    "super": SuperSpike,
    "triangle": Triangle,
    "tanh": HeaviTanh,
    "circ": HeaviCirc,
    "heavi_erfc": HeaviErfc,
    "logistic": Logistic,
    "circ_dist": CircDist,
}

#: Every valid ``method`` for :func:`threshold`.
METHODS = ("heaviside", *_FUNCTIONS.keys())
#: Methods whose forward pass samples spikes instead of the deterministic step.
STOCHASTIC_METHODS = ("logistic", "circ_dist")


def check_method(
    method: str, argument: str = "method", extra: Sequence[str] = ()
) -> None:
    """Raises a ``ValueError`` naming the valid methods if ``method`` is unknown;
    ``extra`` are further valid names (e.g. ``"adjoint"`` where a model supports it)."""
    if method not in METHODS and method not in extra:
        valid = (*METHODS, *extra)
        raise ValueError(
            f"{argument} must be one of {', '.join(repr(m) for m in valid)}, "
            f"got {method!r}"
        )


def _as_alpha(alpha: Alpha, x: torch.Tensor) -> torch.Tensor:
    if isinstance(alpha, torch.Tensor):
        return alpha.detach()
    return torch.tensor(float(alpha), dtype=x.dtype, device=x.device)


def threshold(x: torch.Tensor, method: str, alpha: Alpha) -> torch.Tensor:
    """Spikes (``1.0`` where ``x > 0``, else ``0.0``) with the surrogate gradient ``method``.

    Parameters:
        x (torch.Tensor): distance to threshold, e.g. ``v - v_th``; any shape.
        method (str): surrogate name, one of :data:`METHODS`.
        alpha (float or torch.Tensor): surrogate sharpness (a scalar).

    Returns:
        A tensor of the shape and dtype of ``x`` holding 0s and 1s.

    Raises:
        ValueError: if ``method`` is unknown.
    """
    if torch.overrides.has_torch_function_unary(x):
        # Lets a TorchFunctionMode see the threshold as one operation (as
        # torch.nn.functional does), e.g. to compile a step into a fused kernel.
        return torch.overrides.handle_torch_function(threshold, (x,), x, method, alpha)
    function = _FUNCTIONS.get(method)
    if function is None:
        if method == "heaviside":
            return heaviside(x)
        check_method(method)
    return function.apply(x, _as_alpha(alpha, x))


def super_fn(x: torch.Tensor, alpha: Alpha = 100.0) -> torch.Tensor:
    """Heaviside step with the SuperSpike surrogate gradient :math:`1/(\\alpha|x|+1)^2`."""
    return SuperSpike.apply(x, _as_alpha(alpha, x))


superspike_fn = super_fn


def triangle_fn(x: torch.Tensor, alpha: Alpha = 0.3) -> torch.Tensor:
    """Heaviside step with the triangular surrogate gradient :math:`\\alpha\\max(0, 1-|x|)`."""
    return Triangle.apply(x, _as_alpha(alpha, x))


def heavi_tanh_fn(x: torch.Tensor, k: Alpha) -> torch.Tensor:
    """Heaviside step with the surrogate gradient :math:`1 - \\tanh^2(kx)`."""
    return HeaviTanh.apply(x, _as_alpha(k, x))


def heavi_circ_fn(x: torch.Tensor, k: Alpha) -> torch.Tensor:
    """Heaviside step with the surrogate gradient :math:`(1 + x^2/k^2)^{-3/2}`."""
    return HeaviCirc.apply(x, _as_alpha(k, x))


def heavi_erfc_fn(x: torch.Tensor, k: Alpha) -> torch.Tensor:
    """Heaviside step with the surrogate gradient :math:`2e^{-(kx)^2}/\\sqrt\\pi`."""
    return HeaviErfc.apply(x, _as_alpha(k, x))


def logistic_fn(x: torch.Tensor, k: Alpha) -> torch.Tensor:
    """Bernoulli spikes with probability :math:`\\frac12 + \\frac12\\tanh(kx)`."""
    return Logistic.apply(x, _as_alpha(k, x))


def circ_dist_fn(x: torch.Tensor, k: Alpha) -> torch.Tensor:
    """Bernoulli spikes with probability :math:`\\frac12 + \\frac12 x/\\sqrt{x^2+k^2}`."""
    return CircDist.apply(x, _as_alpha(k, x))


def sign(x: torch.Tensor, method: str, alpha: Alpha) -> torch.Tensor:
    """``2 * threshold(x, method, alpha) - 1``: -1 where ``x <= 0``, +1 where ``x > 0``."""
    return 2 * threshold(x, method, alpha) - 1
