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
there; so the next guess keeps that part and no spikes after it, and the iterate after
it is right up to the next spike. Only that part is computed: each neuron keeps a
frontier (its train is final before it), and an iteration scans a window of steps after
every unsettled neuron's frontier, spike-free, up to the first threshold crossing, the
next spike (the window adapts to twice the typical way to a crossing; a neuron that finds
none goes on from the window's end in the next iteration). An iteration finds at most
one spike per neuron: a layer needs about one iteration per spike of its busiest neuron
(plus one per window without a spike), the work in all about twice that of one scan
over the sequence.

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
    _current_jumps,
    _decay,
    _on,
    linear_scan,
    linear_scan_varying,
)
from norse.torch.functional.threshold import (
    METHODS,
    STOCHASTIC_METHODS,
    threshold,
)
from norse.torch.functional.validation import check_count, check_sequence


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


#: The first window of steps searched for each neuron's next spike (it adapts).
_FIRST_WINDOW = 32


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
    (no gradient); arguments flattened to ``(T, N)`` / ``(N,)`` or 0-dim.

    Each neuron has a frontier ``p``: its spike train is final before ``p``, and the
    voltage before step ``p`` is known. The current guess has no spikes from ``p`` on,
    so the next iterate is the spike-free trajectory from ``p`` (one scan), right up to
    its first threshold crossing, the next spike, and wrong after it. Only a window of
    steps after each frontier is computed.
    """
    steps, neurons = jumps.shape
    device = jumps.device
    # Rows past the end take the window steps beyond T (written, never read), so that
    # every round writes its whole window with one flat put: a step after a neuron's
    # crossing gets a wrong value now and its right one in a later round, whose window
    # starts at or before it (the last write wins).
    written = jumps.new_empty(2 * steps, neurons)
    flat_jumps, flat_written = jumps.reshape(-1), written.view(-1)
    active = torch.arange(neurons, device=device)
    frontier = torch.zeros(neurons, dtype=torch.long, device=device)
    start = v0.expand(neurons).clone()
    window = min(steps, _FIRST_WINDOW)
    iterations = 0

    def pick(value: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return value if value.dim() == 0 else value[index]

    def spike_free(window: int) -> Tuple[torch.Tensor, ...]:
        """The voltages before and after the decay of each step in the window after
        each active neuron's frontier, without spikes."""
        positions = frontier + torch.arange(window, device=device).unsqueeze(1)
        j = flat_jumps.take(positions.clamp(max=steps - 1) * neurons + active)
        g, leak = pick(gain, active), pick(v_leak, active)
        decayed = linear_scan(pick(alpha_m, active), g * (leak + j), start)
        u = torch.cat((start.unsqueeze(0), decayed[:-1]))
        # index_put_ (unique indices): deterministic, also under
        # torch.use_deterministic_algorithms, where put_ raises
        flat_written.index_put_((positions * neurons + active,), u)
        # the decisions with the step's own operations, as the final pass makes them
        return positions, u + g * ((leak - u) + j)

    while active.numel() > 0 and iterations < max_iterations:
        iterations += 1
        positions, v_decayed = spike_free(window)
        crossing = (v_decayed - pick(v_th, active) > 0) & (positions < steps)
        found = crossing.any(0)
        # argmax along contiguous memory: twice as fast as along the window here
        first = crossing.t().contiguous().to(torch.uint8).argmax(1)
        last = torch.where(found, first, window - 1)
        at_last = v_decayed.gather(0, last.unsqueeze(0))[0]
        spiked = found.to(at_last.dtype)
        start = (1 - spiked) * at_last + spiked * pick(v_reset, active)
        frontier = frontier + last + 1
        going = frontier < steps
        # Next window: twice the typical way to a crossing (the median: a neuron that
        # needs longer goes on in the next round, from where its window ended).
        needed = torch.where(found, last + 1, window)[going]
        active, frontier, start = active[going], frontier[going], start[going]
        if active.numel() > 0:
            typical = int(needed.median())
            window = min(steps, max(_FIRST_WINDOW, 2 * typical))
    if active.numel() > 0:
        # Not converged: the rest of each neuron's sequence spike-free, the trajectory
        # of the last iterate (its spikes then follow from the final pass).
        spike_free(steps)
    before = written[:steps]
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
        max_iterations (int): at most this many iterations; default ``T``, which always
            suffices (an iteration moves every neuron's frontier on by a step at least)
        record_states (bool): return the states of every step, ``(T, ...)`` each

    Returns:
        Spikes ``(T, ...)``, the final :class:`LIFFeedForwardState` (or all states) and
        a :class:`FixedPointInfo` (iterations run, convergence).
    """
    check_sequence(input_tensor, "input_tensor", floating=True)
    check_deterministic_method(p.method)
    steps = input_tensor.shape[0]
    if max_iterations is None:
        max_iterations = steps
    max_iterations = check_count(max_iterations, "max_iterations")
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
