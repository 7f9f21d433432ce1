r"""LIF over a whole sequence in parallel, by fixed-point iteration over the spike train.

Given a spike train :math:`z`, the LIF voltage of
:func:`~norse.torch.functional.lif.lif_feed_forward_step` is linear in time: with
:math:`\alpha = 1 - \Delta t/\tau_{\text{mem}}`, the current jumps :math:`j_t` (one
:func:`~.parallel_scan.linear_scan`, they do not depend on the spikes) and
:math:`c_t = \tfrac{\Delta t}{\tau_{\text{mem}}}(v_{\text{leak}} + j_t)`,

.. math::
    v_t = (1 - z_t)(\alpha v_{t-1} + c_t) + z_t v_{\text{reset}},

one :func:`~.parallel_scan.linear_scan_varying`. The spikes follow from the voltage before
the reset, :math:`z_t = \Theta(\alpha v_{t-1} + c_t - v_{\text{th}})`. Iterating

.. math::
    z^{k+1} = \Theta\big(V_{\text{pre}}(z^k) - v_{\text{th}}\big), \qquad z^0 = 0,

until :math:`z^{k+1} = z^k` gives the spike train of the sequential model: a fixed point
is the sequential solution (by induction over ``t``). Where :math:`z^{k+1}` first differs
from :math:`z^k` is where :math:`z^k` was first wrong, and :math:`z^{k+1}` is right up to
there; the next guess keeps that part and no spikes after it, so that each iteration
finds the next spike exactly. A neuron with :math:`s` spikes needs :math:`s + 1`
iterations (the last one confirms), a layer the largest of these, at most ``T + 1``.
Each iteration scans only from the earliest step still in question, and only the neurons
not settled yet.

Gradient: the surrogate gradient of the sequential model (backpropagation through time of
:func:`~norse.torch.functional.lif.lif_feed_forward_step`, the reset included), at the
converged trajectory, computed in parallel too: one differentiable step from the fixed
point for every ``t`` (autograd) and the adjoint recurrence
:math:`\lambda_t = g_t + \tfrac{\partial v_{t+1}}{\partial v_t}\lambda_{t+1}` as one
reverse linear scan (implicit differentiation of the fixed point). Without convergence
(``max_iterations`` reached) the result and its gradient are those of the last iterate.
"""

from typing import NamedTuple, Optional, Tuple

import torch

from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters
from norse.torch.functional.parallel_scan import (
    _check_sequence,
    _current_jumps,
    _decay,
    _on,
    linear_scan_varying,
)
from norse.torch.functional.threshold import (
    METHODS,
    STOCHASTIC_METHODS,
    threshold,
)


class FixedPointInfo(NamedTuple):
    """How the fixed-point iteration went.

    Parameters:
        iterations (int): voltage scans run (iterations of the spike train)
        converged (bool): whether every neuron's spike train reached its fixed point
            (then the spikes are those of the sequential model)
    """

    iterations: int
    converged: bool


def _neurons(value: torch.Tensor, shape: Tuple[int, ...]) -> torch.Tensor:
    """A parameter or state as ``(N,)`` over the flattened state shape (0-dim stays)."""
    if value.dim() == 0:
        return value
    return value.expand(shape).reshape(-1)


def _step(
    u: torch.Tensor,
    jumps: torch.Tensor,
    gain: torch.Tensor,
    v_leak: torch.Tensor,
    v_th: torch.Tensor,
    v_reset: torch.Tensor,
    method: str,
    alpha,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Spikes and voltage after each step from the voltages ``u`` before it: the
    operations of ``lif_feed_forward_step`` in its order (so the spikes decided here are
    the ones the sequential model decides from the same ``u``)."""
    v_decayed = u + gain * ((v_leak - u) + jumps)
    z = threshold(v_decayed - v_th, method, alpha)
    return z, (1 - z) * v_decayed + z * v_reset


def _iterate(
    jumps: torch.Tensor,
    v0: torch.Tensor,
    gain: torch.Tensor,
    alpha_m: torch.Tensor,
    v_leak: torch.Tensor,
    v_th: torch.Tensor,
    v_reset: torch.Tensor,
    max_iterations: int,
) -> Tuple[torch.Tensor, FixedPointInfo]:
    """The voltages before each step, ``(T, N)``, at the fixed point of the spike train
    (no gradient); arguments flattened to ``(T, N)`` / ``(N,)`` or 0-dim."""
    steps, neurons = jumps.shape
    spikes = jumps.new_zeros(steps, neurons)
    before = jumps.new_empty(steps, neurons)
    active = torch.arange(neurons, device=jumps.device)
    # Steps before `first` are final for every active neuron: an iteration changes a
    # spike train first where the previous one was wrong, and is right up to there.
    first = 0
    iterations = 0
    while active.numel() > 0 and iterations < max_iterations:
        iterations += 1
        everyone = active.numel() == neurons

        def pick(value: torch.Tensor) -> torch.Tensor:
            if everyone or value.dim() == 0:
                return value
            return value[..., active]

        z = pick(spikes[first:])
        j = pick(jumps[first:])
        v_start = pick(v0) if first == 0 else pick(before[first])
        g, a, leak, th = pick(gain), pick(alpha_m), pick(v_leak), pick(v_th)
        reset = pick(v_reset)
        keep = 1 - z
        # v_t = (1 - z_t)(alpha v_{t-1} + c_t) + z_t v_reset, c_t = gain (v_leak + j_t)
        voltages = linear_scan_varying(
            keep * a, keep * (g * (leak + j)) + z * reset, v_start
        )
        u = torch.cat((v_start.expand(voltages.shape[1:]).unsqueeze(0), voltages[:-1]))
        z_next = (u + g * ((leak - u) + j) - th > 0).to(z.dtype)
        differs = z_next != z
        changed = differs.any(0)
        # The first difference is the first error of z: z_next is right up to there and
        # was computed from a wrong trajectory after it. The next guess keeps the right
        # part and no spikes after, so that the next iteration finds the next spike
        # exactly (one iteration per spike; the unchanged tail would cost two).
        frontier = differs.to(torch.uint8).argmax(0)
        steps_after = torch.arange(z.shape[0], device=z.device).unsqueeze(1)
        guess = torch.where(steps_after <= frontier, z_next, 0.0)
        if everyone:
            spikes[first:], before[first:] = guess, u
        else:
            spikes[first:, active] = guess
            before[first:, active] = u
        active = active[changed]
        if active.numel() > 0:
            first += int(frontier[changed].min())
    return before, FixedPointInfo(iterations, active.numel() == 0)


def check_deterministic_method(method: str) -> None:
    """Raises a ``ValueError`` unless ``method`` is a deterministic threshold (the
    iteration compares spike trains; a sampled one never settles)."""
    if method not in METHODS or method in STOCHASTIC_METHODS:
        valid = ", ".join(repr(m) for m in METHODS if m not in STOCHASTIC_METHODS)
        raise ValueError(
            f"p.method must be a deterministic threshold for the fixed-point iteration "
            f"(one of {valid}), got {method!r}"
        )


def _adjoint(gradient: torch.Tensor, jacobian: torch.Tensor) -> torch.Tensor:
    """``lambda_t = g_t + D_t lambda_{t+1}`` (``lambda_T = 0``): a reverse scan."""
    if gradient is None:  # an undefined gradient (autograd checks this case)
        return None
    return linear_scan_varying(jacobian.flip(0), gradient.flip(0)).flip(0)


def lif_feed_forward_fixed_point(
    input_tensor: torch.Tensor,
    state: LIFFeedForwardState,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
    max_iterations: Optional[int] = None,
    record_states: bool = False,
) -> Tuple[torch.Tensor, LIFFeedForwardState, FixedPointInfo]:
    """A feed-forward LIF layer over a whole sequence by fixed-point iteration.

    The same spikes and states as ``T`` steps of
    :func:`~norse.torch.functional.lif.lif_feed_forward_step` once converged (up to
    rounding: the scans add in another order, so a voltage within rounding of the
    threshold may decide otherwise). See the module documentation for the method and
    the gradient.

    Parameters:
        input_tensor (torch.Tensor): input currents ``(T, ...)``
        state (LIFFeedForwardState): ``v``, ``i`` of shape ``(...)`` (or scalars)
        p (LIFParameters): parameters; ``method`` a deterministic surrogate
        dt (float): time step (s)
        max_iterations (int): at most this many iterations; default ``T + 1``, which
            always converges
        record_states (bool): return the states of every step, ``(T, ...)`` each

    Returns:
        Spikes ``(T, ...)``, the final :class:`LIFFeedForwardState` (or all states) and
        a :class:`FixedPointInfo` (iterations run, convergence).
    """
    _check_sequence(input_tensor, "input_tensor")
    check_deterministic_method(p.method)
    steps = input_tensor.shape[0]
    if max_iterations is None:
        max_iterations = steps + 1
    if (
        isinstance(max_iterations, bool)
        or not isinstance(max_iterations, int)
        or max_iterations < 1
    ):
        raise ValueError(
            f"max_iterations must be a positive int (or None for T + 1), "
            f"got {max_iterations!r}"
        )
    shape = tuple(input_tensor.shape[1:])
    jumps, beta = _current_jumps(input_tensor, state.i, p.tau_syn_inv, dt)
    gain, alpha_m = _decay(p.tau_mem_inv, dt, input_tensor)
    v_leak, v_th = _on(p.v_leak, input_tensor), _on(p.v_th, input_tensor)
    v_reset = _on(p.v_reset, input_tensor)
    v0 = torch.as_tensor(state.v)
    with torch.no_grad():
        flat = [_neurons(value, shape) for value in (gain, alpha_m, v_leak, v_th)]
        before, info = _iterate(
            jumps.reshape(steps, -1),
            _neurons(v0, shape),
            *flat,
            _neurons(v_reset, shape),
            max_iterations,
        )
        before = before.reshape(steps, *shape)
    parts = (input_tensor, v0, state.i, *p)
    if torch.is_grad_enabled() and any(
        isinstance(part, torch.Tensor) and part.requires_grad for part in parts
    ):
        before = _differentiable_before(
            before, v0, jumps, gain, v_leak, v_th, v_reset, p
        )
    z, v = _step(before, jumps, gain, v_leak, v_th, v_reset, p.method, p.alpha)
    if record_states:
        return z, LIFFeedForwardState(v, beta * jumps), info
    return z, LIFFeedForwardState(v[-1], beta * jumps[-1]), info


def _differentiable_before(
    before: torch.Tensor,
    v0: torch.Tensor,
    jumps: torch.Tensor,
    gain: torch.Tensor,
    v_leak: torch.Tensor,
    v_th: torch.Tensor,
    v_reset: torch.Tensor,
    p: LIFParameters,
) -> torch.Tensor:
    """``before`` (the fixed point's voltages before each step) with the gradient of the
    sequential model: ``u = f(u)``, ``f(u)_0 = v0``, ``f(u)_t = F(u_{t-1})`` (one step),
    differentiated implicitly, ``du = (I - df/du)^{-1} (df/dv0 dv0 + df/dtheta dtheta)``."""
    method, alpha = p.method, p.alpha
    # df/du: lower bidiagonal with the step's derivative dF/du on the subdiagonal,
    # element-wise (each neuron's step depends on its own voltage only).
    with torch.enable_grad():
        probe = before.detach().requires_grad_(True)
        _, after = _step(
            probe,
            jumps.detach(),
            gain.detach(),
            v_leak.detach(),
            v_th.detach(),
            v_reset.detach(),
            method,
            alpha,
        )
        (jacobian,) = torch.autograd.grad(after, probe, torch.ones_like(after))
    # f at the fixed point, with the graph to the input, parameters and v0
    _, after = _step(before, jumps, gain, v_leak, v_th, v_reset, method, alpha)
    start = v0.expand(before.shape[1:]).unsqueeze(0)
    recurrence = torch.cat((start.to(after.dtype), after[:-1]))
    if recurrence.requires_grad:
        recurrence.register_hook(lambda gradient: _adjoint(gradient, jacobian))
    # The values of the fixed point itself (so the spikes below are the iteration's),
    # the gradient of f.
    return before + (recurrence - recurrence.detach())
