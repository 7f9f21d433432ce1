r"""Parallel (associative) scans over time for dynamics that are linear between events.

A first-order linear recurrence

.. math::
    h_t = a_t\, h_{t-1} + b_t, \qquad t = 0, \dots, T-1, \qquad h_{-1} = h_{\text{init}}

is an associative scan: the pairs :math:`(a, b)` compose as
:math:`(a_2, b_2) \circ (a_1, b_1) = (a_2 a_1,\; a_2 b_1 + b_2)`. :func:`linear_scan`
(a decay constant in time) and :func:`linear_scan_varying` (a decay per time step) solve it
with the odd-even recursion (a work-efficient Blelloch-style scan): combine neighbouring
pairs, solve the half-length recurrence of the odd steps recursively, then fill in the even
steps. That is :math:`\lceil \log_2 T \rceil` levels of element-wise tensor operations on
``(T, ...)`` tensors and :math:`O(T)` work in all, instead of :math:`T` dependent steps.
The backward pass is the adjoint recurrence, the same scan over the reversed gradient
(differentiable again).

The result equals the sequential recurrence up to rounding (the additions run in another
order): about 1e-15 relative in float64, a few float32 ulps times :math:`\log_2 T` in
float32.

Built on them, exact parallel forms of the neuron models whose dynamics are linear
between spikes:

* :func:`li_feed_forward_scan`: the leaky integrator (two scans: current, voltage);
* :func:`li_box_feed_forward_scan`: the box leaky integrator (one scan);
* :func:`lif_feed_forward_scan`: LIF with the synaptic current scanned (it does not depend
  on the spikes) and the voltage with its reset run step by step.

:mod:`.lif_fixed_point` runs the LIF voltage in parallel too, by fixed-point iteration
over the spike train.
"""

from typing import Optional, Tuple, Union

import torch

from norse.torch.functional.leaky_integrator import LIParameters, LIState
from norse.torch.functional.leaky_integrator_box import LIBoxParameters, LIBoxState
from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters
from norse.torch.functional.threshold import threshold
from norse.torch.functional.validation import check_sequence, check_shape

Decay = Union[float, torch.Tensor]


def _interleave(
    first: torch.Tensor, later_even: torch.Tensor, odd: torch.Tensor
) -> torch.Tensor:
    """``[first, odd[0], later_even[0], odd[1], later_even[1], ...]``."""
    # Slice assignment into a new tensor: each value is written once (stack and cat
    # would copy twice); autograd records the writes (CopySlices).
    length = 1 + later_even.shape[0] + odd.shape[0]
    dtype = torch.promote_types(later_even.dtype, odd.dtype)
    woven = odd.new_empty((length, *odd.shape[1:]), dtype=dtype)
    woven[0] = first
    woven[1::2] = odd
    woven[2::2] = later_even
    return woven


def _scan_constant(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``h_t = a h_{t-1} + b_t`` from ``h_{-1} = 0``; ``a`` broadcasts to ``b[0]``."""
    length = b.shape[0]
    if length == 1:
        return b
    pairs = length // 2
    even, odd = b[0 : 2 * pairs : 2], b[1 : 2 * pairs : 2]
    # h at the odd steps obeys the same recurrence over pairs, with decay a^2
    odd_h = _scan_constant(torch.addcmul(odd, even, a), a * a)
    later_even = torch.addcmul(b[2::2], odd_h[: (length - 1) // 2], a)
    return _interleave(b[0], later_even, odd_h)


def _scan_varying(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``h_t = a_t h_{t-1} + b_t`` from ``h_{-1} = 0``; ``a`` and ``b`` are ``(T, ...)``."""
    length = b.shape[0]
    if length == 1:
        return b
    pairs = length // 2
    a_even, a_odd = a[0 : 2 * pairs : 2], a[1 : 2 * pairs : 2]
    b_even, b_odd = b[0 : 2 * pairs : 2], b[1 : 2 * pairs : 2]
    odd_h = _scan_varying(torch.addcmul(b_odd, a_odd, b_even), a_odd * a_even)
    later_even = torch.addcmul(b[2::2], a[2::2], odd_h[: (length - 1) // 2])
    return _interleave(b[0], later_even, odd_h)


def _sum_to(value: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``value`` summed over the dimensions that broadcasting added or expanded."""
    return value.sum_to_size(shape) if value.shape != shape else value


class _Scan(torch.autograd.Function):
    """What the two scans share: ``apply(decay, drive) -> h``, vmap support, and the
    context of the backward (``decay`` and ``h``). Their ``forward`` returns a copy of
    the drive for ``T = 1`` (a new tensor, which the backward may save)."""

    generate_vmap_rule = True

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        decay, _ = inputs
        ctx.save_for_backward(decay, output)


class _ConstantScan(_Scan):
    """``h_t = a h_{t-1} + b_t`` from ``h_{-1} = 0`` with its adjoint as the backward:
    ``lambda_t = g_t + a lambda_{t+1}`` (the same scan on the reversed gradient),
    ``db = lambda``, ``da = sum_t lambda_t h_{t-1}``. One scan backward instead of
    autograd through every level's slicing (several times the cost), and differentiable
    again (it is built of the same operations)."""

    @staticmethod
    def forward(decay: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
        return _scan_constant(drive, decay) if drive.shape[0] > 1 else drive.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        decay, h = ctx.saved_tensors
        adjoint = _ConstantScan.apply(decay, grad.flip(0)).flip(0)
        grad_decay = None
        if ctx.needs_input_grad[0]:
            grad_decay = _sum_to((adjoint[1:] * h[:-1]).sum(0), decay.shape)
        return grad_decay, adjoint


class _VaryingScan(_Scan):
    """``h_t = a_t h_{t-1} + b_t`` from ``h_{-1} = 0`` with its adjoint as the backward:
    ``lambda_t = g_t + a_{t+1} lambda_{t+1}``, ``db = lambda``,
    ``da_t = lambda_t h_{t-1}`` (0 for ``t = 0``)."""

    @staticmethod
    def forward(decay: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
        return _scan_varying(drive, decay) if drive.shape[0] > 1 else drive.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        decay, h = ctx.saved_tensors
        # reversed in time, step r is multiplied by a_{T-r} (a_0 never: h_{-1} = 0)
        reversed_decay = torch.cat((torch.zeros_like(decay[:1]), decay.flip(0)[:-1]))
        adjoint = _VaryingScan.apply(reversed_decay, grad.flip(0)).flip(0)
        grad_decay = None
        if ctx.needs_input_grad[0]:
            grad_decay = torch.cat((torch.zeros_like(h[:1]), adjoint[1:] * h[:-1]))
        return grad_decay, adjoint


def _with_initial(
    drive: torch.Tensor, decay: torch.Tensor, initial: Optional[torch.Tensor]
) -> torch.Tensor:
    """``drive`` with ``decay * initial`` added to its first step (out of place)."""
    if initial is None:
        return drive
    first = torch.addcmul(drive[0], decay, initial)
    if first.shape != drive.shape[1:]:
        raise ValueError(
            f"initial of shape {tuple(torch.as_tensor(initial).shape)} does not "
            f"broadcast to the step shape {tuple(drive.shape[1:])} of drive"
        )
    return torch.cat((first.unsqueeze(0), drive[1:]))


def linear_scan(
    decay: Decay, drive: torch.Tensor, initial: Optional[torch.Tensor] = None
) -> torch.Tensor:
    r"""Solves :math:`h_t = a\, h_{t-1} + b_t` for all ``t`` at once (log-depth scan).

    Parameters:
        decay (float or torch.Tensor): :math:`a`, constant in time; a number or a tensor
            that broadcasts to the step shape ``(...)`` (e.g. one decay per neuron)
        drive (torch.Tensor): :math:`b`, shape ``(T, ...)``
        initial (torch.Tensor): :math:`h_{-1}`, broadcastable to ``(...)``; default 0

    Returns:
        :math:`h`, shape ``(T, ...)``, differentiable in ``decay``, ``drive`` and
        ``initial``.
    """
    check_sequence(drive, "drive", floating=True)
    if isinstance(decay, torch.Tensor):
        # the dtype of the sequential product decay * h (a float32 decay with float64
        # drive: float64, so that its powers are not rounded to float32)
        decay = decay.to(_product_dtype(decay, drive)).to(drive.device)
    else:
        decay = torch.tensor(decay, dtype=drive.dtype, device=drive.device)
    if decay.dim() > drive.dim() - 1 or not _broadcasts(decay.shape, drive.shape[1:]):
        raise ValueError(
            f"decay of shape {tuple(decay.shape)} must broadcast to the step shape "
            f"{tuple(drive.shape[1:])} of drive (a decay constant in time; use "
            f"linear_scan_varying for one per step)"
        )
    return _ConstantScan.apply(decay, _with_initial(drive, decay, initial))


def linear_scan_varying(
    decay: torch.Tensor, drive: torch.Tensor, initial: Optional[torch.Tensor] = None
) -> torch.Tensor:
    r"""Solves :math:`h_t = a_t\, h_{t-1} + b_t` for all ``t`` at once (log-depth scan).

    Parameters:
        decay (torch.Tensor): :math:`a_t`, shape ``(T, ...)`` (one decay per step)
        drive (torch.Tensor): :math:`b_t`, shape ``(T, ...)``
        initial (torch.Tensor): :math:`h_{-1}`, broadcastable to ``(...)``; default 0

    Returns:
        :math:`h`, shape ``(T, ...)``, differentiable in all arguments.
    """
    check_sequence(drive, "drive", floating=True)
    check_sequence(decay, "decay", floating=True)
    check_shape(decay, drive.shape, "decay", "(T, ...) of drive")
    return _VaryingScan.apply(decay, _with_initial(drive, decay[0], initial))


def _broadcasts(shape, target) -> bool:
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(target)))


def _product_dtype(value: torch.Tensor, reference: torch.Tensor) -> torch.dtype:
    """The dtype of ``value * reference`` (``torch.result_type``, which
    :func:`torch.compile` cannot trace): a 0-dim float ``value`` takes the dtype of a
    float ``reference`` with dimensions."""
    if (
        value.dim() == 0
        and reference.dim() > 0
        and value.is_floating_point()
        and reference.is_floating_point()
    ):
        return reference.dtype
    return torch.promote_types(value.dtype, reference.dtype)


def _decay(
    rate: torch.Tensor, dt: float, reference: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(dt * rate, 1 - dt * rate)``: the Euler step's gain and decay factor, in the
    dtype that the step's arithmetic with ``reference`` has (a float32 rate with float64
    input: the float32 gain, then float64 arithmetic, as in the step function)."""
    gain = dt * _on(rate, reference)
    gain = gain.to(_product_dtype(gain, reference))
    return gain, 1.0 - gain


def _on(value, reference: torch.Tensor) -> torch.Tensor:
    """A parameter as a tensor on the device of ``reference`` (0-dim ones keep their
    dtype: they do not promote the input's)."""
    value = torch.as_tensor(value)
    if value.device != reference.device:
        value = value.to(reference.device)
    return value


def _current_jumps(
    input_tensor: torch.Tensor, i0: torch.Tensor, tau_syn_inv, dt: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The current after each step's jump, ``i_jump_t = (1 - dt/tau_syn) i_jump_{t-1} +
    x_t`` with ``i_jump_0 = i0 + x_0``, and the decay factor ``1 - dt/tau_syn``."""
    _, beta = _decay(tau_syn_inv, dt, input_tensor)
    first = (input_tensor[0] + i0).unsqueeze(0)
    if first.shape[1:] != input_tensor.shape[1:]:
        raise ValueError(
            f"state.i of shape {tuple(torch.as_tensor(i0).shape)} does not broadcast "
            f"to the input step shape {tuple(input_tensor.shape[1:])}"
        )
    drive = torch.cat((first, input_tensor[1:]))
    return linear_scan(beta, drive), beta


def li_feed_forward_scan(
    input_tensor: torch.Tensor,
    state: LIState,
    p: LIParameters = LIParameters(),
    dt: float = 0.001,
    record_states: bool = False,
) -> Tuple[torch.Tensor, LIState]:
    r"""The leaky integrator over a whole sequence by two parallel scans.

    :func:`~norse.torch.functional.leaky_integrator.li_feed_forward_step` applied ``T``
    times is, with :math:`\beta = 1 - \Delta t/\tau_{\text{syn}}` and
    :math:`\alpha = 1 - \Delta t/\tau_{\text{mem}}`,

    .. math::
        \begin{align*}
            j_t &= \beta\, j_{t-1} + x_t, \quad j_0 = i_0 + x_0
                && \text{(current after the input jump)} \\
            v_t &= \alpha\, v_{t-1} + \tfrac{\Delta t}{\tau_{\text{mem}}}
                (v_{\text{leak}} + j_t) && \text{(voltage, the output)}
        \end{align*}

    and the final current :math:`\beta j_{T-1}`: two :func:`linear_scan` calls.

    Parameters:
        input_tensor (torch.Tensor): input currents ``(T, ...)``
        state (LIState): ``v``, ``i`` of shape ``(...)`` (or broadcastable scalars)
        p (LIParameters): parameters (time constants in 1/s; tensors broadcastable to
            ``(...)``)
        dt (float): time step (s)
        record_states (bool): return the states of every step, ``(T, ...)`` each,
            instead of the final state

    Returns:
        Voltages ``(T, ...)`` and the final :class:`LIState` (or all states).
    """
    check_sequence(input_tensor, "input_tensor", floating=True)
    jumps, beta = _current_jumps(input_tensor, state.i, p.tau_syn_inv, dt)
    gain, alpha = _decay(p.tau_mem_inv, dt, input_tensor)
    drive = gain * (_on(p.v_leak, input_tensor) + jumps)
    voltages = linear_scan(alpha, drive, state.v)
    if record_states:
        return voltages, LIState(voltages, beta * jumps)
    return voltages, LIState(voltages[-1], beta * jumps[-1])


def li_box_feed_forward_scan(
    input_tensor: torch.Tensor,
    state: LIBoxState,
    p: LIBoxParameters = LIBoxParameters(),
    dt: float = 0.001,
    record_states: bool = False,
) -> Tuple[torch.Tensor, LIBoxState]:
    r"""The box leaky integrator over a whole sequence by one parallel scan:
    :math:`v_t = \alpha v_{t-1} + \tfrac{\Delta t}{\tau_{\text{mem}}}(v_{\text{leak}} + x_t)`,
    :math:`\alpha = 1 - \Delta t/\tau_{\text{mem}}` (``T`` steps of
    :func:`~norse.torch.functional.leaky_integrator_box.li_box_feed_forward_step`).

    Shapes: input and returned voltages ``(T, ...)``; state ``(...)`` (all ``(T, ...)``
    with ``record_states``).
    """
    check_sequence(input_tensor, "input_tensor", floating=True)
    gain, alpha = _decay(p.tau_mem_inv, dt, input_tensor)
    drive = gain * (_on(p.v_leak, input_tensor) + input_tensor)
    voltages = linear_scan(alpha, drive, state.v)
    return voltages, LIBoxState(voltages if record_states else voltages[-1])


def lif_feed_forward_scan(
    input_tensor: torch.Tensor,
    state: LIFFeedForwardState,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
    record_states: bool = False,
) -> Tuple[torch.Tensor, LIFFeedForwardState]:
    r"""LIF over a sequence with the synaptic current scanned in parallel.

    The current does not depend on the spikes, so the jumps
    :math:`j_t = \beta j_{t-1} + x_t` of all ``T`` steps come from one
    :func:`linear_scan`; the voltage with its threshold and reset then runs step by step
    (the update of :func:`~norse.torch.functional.lif.lif_feed_forward_step`, the same
    operations in the same order, given :math:`j_t`).

    Shapes: input and spikes ``(T, ...)``; state ``(...)`` (``(T, ...)`` each with
    ``record_states``).
    """
    check_sequence(input_tensor, "input_tensor", floating=True)
    jumps, beta = _current_jumps(input_tensor, state.i, p.tau_syn_inv, dt)
    # dt * tau_mem_inv once: the value that the step computes at every step
    gain = dt * _on(p.tau_mem_inv, input_tensor)
    v_leak, v_th = _on(p.v_leak, input_tensor), _on(p.v_th, input_tensor)
    v_reset = _on(p.v_reset, input_tensor)
    v = state.v
    spikes, voltages = [], []
    for jump in jumps.unbind(0):
        v_decayed = v + gain * ((v_leak - v) + jump)
        z = threshold(v_decayed - v_th, p.method, p.alpha)
        v = (1 - z) * v_decayed + z * v_reset
        spikes.append(z)
        voltages.append(v)
    if record_states:
        return torch.stack(spikes), LIFFeedForwardState(
            torch.stack(voltages), beta * jumps
        )
    return torch.stack(spikes), LIFFeedForwardState(v, beta * jumps[-1])
