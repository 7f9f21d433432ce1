r"""e-prop: eligibility propagation for recurrent networks of LIF and LSNN neurons.

After G. Bellec, F. Scherr, A. Subramoney, E. Hajek, D. Salaj, R. Legenstein and
W. Maass, "A solution to the learning dilemma for recurrent networks of spiking
neurons", Nat. Commun. 11, 3625 (2020).

A neuron :math:`j` has a hidden state :math:`h_j^t` (``v``, ``i`` and, for LSNN, the
threshold ``b``) and spikes :math:`z_j^t = \Theta(v_j - b_j)`; its input current is
:math:`I_j^t = \sum_i W_{ji} x_i^t` over the *presynaptic* vector
:math:`x^t = (\text{input}^t, z^{t-1})` (input and recurrent weights side by side).
BPTT's gradient factorises exactly as

.. math::
    \frac{dE}{dW_{ji}} = \sum_t \frac{dE}{dz_j^t}\, e_{ji}^t, \qquad
    e_{ji}^t = \frac{\partial z_j^t}{\partial h_j^t}\, \epsilon_{ji}^t, \qquad
    \epsilon_{ji}^t = \frac{\partial h_j^t}{\partial h_j^{t-1}}\, \epsilon_{ji}^{t-1}
        + \frac{\partial h_j^t}{\partial W_{ji}},

where the *eligibility vector* :math:`\epsilon_{ji}^t = \partial h_j^t/\partial W_{ji}`
follows neuron :math:`j`'s own dynamics forward in time and the *eligibility trace*
:math:`e_{ji}^t` is the derivative of the spike through the surrogate
(pseudo-derivative) :math:`\psi_j^t`. e-prop replaces the total derivative
:math:`dE/dz_j^t` by the partial :math:`\partial E/\partial z_j^t` -- the error that
reaches the readout, broadcast back to the neurons -- and so drops the paths through
other neurons' recurrent input. Where those paths are zero (no recurrent weights, or
recurrent spikes that carry no gradient) e-prop *is* BPTT.

The equations here are those of this package's steps, including the reset:

**LIF** (:func:`.lif_step`, :func:`.lif_feed_forward_step`; :math:`a = dt\,\tau_{\text{mem}}^{-1}`,
:math:`c = dt\,\tau_{\text{syn}}^{-1}`), with :math:`\epsilon = (\epsilon^v, \epsilon^i)`:

.. math::
    \begin{align*}
        \delta^i &= \epsilon^i + x^t, &
        \delta^v &= (1 - a)\,\epsilon^v + a\,\delta^i, &
        e^t &= \psi^t \delta^v, \\
        \epsilon^i &\leftarrow (1 - c)\,\delta^i, &
        \epsilon^v &\leftarrow (1 - z^t)\,\delta^v + [(v_{\text{reset}} - v_{\text{dec}})\, e^t]
    \end{align*}

**LSNN** (:func:`.lsnn_step`, :func:`.lsnn_feed_forward_step`; the input reaches ``i``
at the end of the step; :math:`\rho = 1 - dt\,\tau_{\text{adapt}}^{-1}`), with the
*adaptive* eligibility vector :math:`\epsilon^b = \partial b/\partial W`:

.. math::
    \begin{align*}
        \delta^v &= (1 - a)\,\epsilon^v + a\,\epsilon^i, &
        \delta^b &= \rho\,\epsilon^b, &
        e^t &= \psi^t (\delta^v - \delta^b), \\
        \epsilon^v &\leftarrow (1 - z^t)\,\delta^v + [(v_{\text{reset}} - v_{\text{dec}})\, e^t], &
        \epsilon^b &\leftarrow \delta^b + [\beta\, e^t], &
        \epsilon^i &\leftarrow (1 - c)\,\epsilon^i + x^t
    \end{align*}

The bracketed terms are the gradient through the spike in the reset and the threshold
jump: present for the feed-forward steps (``detach_reset=False``), absent for the
recurrent steps, which reset with detached spikes (``detach_reset=True``; there
:math:`\epsilon^b` stays zero). :math:`\psi^t = \sigma'(v_{\text{dec}} - b_{\text{dec}})` is
the surrogate gradient of ``p.method`` at the step's distance to threshold.

:math:`\epsilon^i` is the same for every postsynaptic neuron (shape ``(batch, N)``);
:math:`\epsilon^v`, :math:`\epsilon^b` and :math:`e` are ``(batch, hidden, N)``: memory
that grows with the number of synapses, not with time.

A leaky-integrator readout :math:`y = \mathrm{LI}(W_{\text{out}} z + b_{\text{out}})`
filters the spikes; the partial derivative of its output is the same filter applied to
the eligibility trace, :math:`\partial y_k^t/\partial W_{ji} = W^{\text{out}}_{kj}\,
\bar e_{ji}^t` with :math:`\bar e = \mathrm{LI}(e)` (:func:`li_trace_step`), so

.. math::
    \frac{\partial E}{\partial W_{ji}} = \sum_t \sum_k
        \frac{\partial E}{\partial y_k^t} B_{kj}\, \bar e_{ji}^t

with the feedback :math:`B = W_{\text{out}}` (symmetric e-prop) or a fixed random matrix
(random e-prop); :func:`learning_signal` and :func:`eprop_gradient` compute it.
"""

from typing import NamedTuple, Tuple, Union

import torch

from norse.torch.functional.leaky_integrator import (
    LIParameters,
    LIState,
    li_feed_forward_step,
)
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    _lif_dynamics,
)
from norse.torch.functional.lsnn import (
    LSNNFeedForwardState,
    LSNNParameters,
    _lsnn_dynamics,
)
from norse.torch.functional.threshold import SURROGATE_GRADIENTS, check_method
from norse.torch.functional.validation import check_scalar, check_shape

__all__ = [
    "LIFEligibility",
    "LSNNEligibility",
    "pseudo_derivative",
    "lif_eligibility_zeros",
    "lsnn_eligibility_zeros",
    "lif_eprop_step",
    "lsnn_eprop_step",
    "li_trace_step",
    "learning_signal",
    "eprop_gradient",
]


class LIFEligibility(NamedTuple):
    r"""Eligibility vectors of a LIF population.

    Parameters:
        i (torch.Tensor): :math:`\partial i_j/\partial W_{ji}`, ``(batch, N)`` (the same
            for every postsynaptic neuron :math:`j`)
        v (torch.Tensor): :math:`\partial v_j/\partial W_{ji}`, ``(batch, hidden, N)``
    """

    i: torch.Tensor
    v: torch.Tensor


class LSNNEligibility(NamedTuple):
    r"""Eligibility vectors of an LSNN population.

    Parameters:
        i (torch.Tensor): :math:`\partial i_j/\partial W_{ji}`, ``(batch, N)``
        v (torch.Tensor): :math:`\partial v_j/\partial W_{ji}`, ``(batch, hidden, N)``
        b (torch.Tensor): :math:`\partial b_j/\partial W_{ji}` (the adaptive
            eligibility vector), ``(batch, hidden, N)``
    """

    i: torch.Tensor
    v: torch.Tensor
    b: torch.Tensor


Eligibility = Union[LIFEligibility, LSNNEligibility]


def pseudo_derivative(x: torch.Tensor, method: str, alpha) -> torch.Tensor:
    r"""The surrogate gradient :math:`\psi = \sigma'(x; \alpha)` of ``method`` at ``x``.

    The same function the threshold's backward pass multiplies by (see
    :mod:`.threshold`); zero for ``"heaviside"``, which passes no gradient.

    Raises:
        ValueError: if ``method`` is not a threshold method.
    """
    check_method(method, "p.method")
    if method == "heaviside":
        return torch.zeros_like(x)
    alpha = torch.as_tensor(alpha, dtype=x.dtype, device=x.device)
    return SURROGATE_GRADIENTS[method](x, alpha)


def _post(coefficient, like: torch.Tensor) -> torch.Tensor:
    """A per-neuron coefficient (scalar, ``(hidden,)`` or ``(batch, hidden)``) in the
    dtype of ``like`` (so that ``1 - a`` is not rounded in a lower precision), broadcast
    against ``(batch, hidden, N)`` traces."""
    coefficient = torch.as_tensor(coefficient).to(like)
    return coefficient.unsqueeze(-1) if coefficient.dim() > 0 else coefficient


#: Why the synaptic time constant must be a scalar (for :func:`.check_scalar`).
_SHARED_TRACE = "here (the synaptic trace is shared by all postsynaptic neurons)"


def _check_shapes(
    input_current: torch.Tensor, presynaptic: torch.Tensor, traces: Eligibility
) -> None:
    if input_current.dim() != 2 or presynaptic.dim() != 2:
        raise ValueError(
            "input_current and presynaptic must be (batch, hidden) and (batch, N), got "
            f"{tuple(input_current.shape)} and {tuple(presynaptic.shape)}"
        )
    trace_shape = (*input_current.shape, presynaptic.shape[1])
    check_shape(traces.v, trace_shape, "traces.v", "(batch, hidden, N)")
    check_shape(traces.i, presynaptic.shape, "traces.i", "(batch, N)")


def lif_eligibility_zeros(
    batch_size: int,
    hidden_size: int,
    presynaptic_size: int,
    dtype: torch.dtype = torch.float32,
    device: Union[str, torch.device, None] = None,
) -> LIFEligibility:
    """Zero eligibility vectors of a LIF population (the network at rest)."""
    return LIFEligibility(
        i=torch.zeros(batch_size, presynaptic_size, dtype=dtype, device=device),
        v=torch.zeros(
            batch_size, hidden_size, presynaptic_size, dtype=dtype, device=device
        ),
    )


def lsnn_eligibility_zeros(
    batch_size: int,
    hidden_size: int,
    presynaptic_size: int,
    dtype: torch.dtype = torch.float32,
    device: Union[str, torch.device, None] = None,
) -> LSNNEligibility:
    """Zero eligibility vectors of an LSNN population (the network at rest)."""
    shape = (batch_size, hidden_size, presynaptic_size)
    return LSNNEligibility(
        i=torch.zeros(batch_size, presynaptic_size, dtype=dtype, device=device),
        v=torch.zeros(shape, dtype=dtype, device=device),
        b=torch.zeros(shape, dtype=dtype, device=device),
    )


def lif_eprop_step(
    input_current: torch.Tensor,
    presynaptic: torch.Tensor,
    state: LIFFeedForwardState,
    traces: LIFEligibility,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
    detach_reset: bool = True,
) -> Tuple[torch.Tensor, LIFFeedForwardState, LIFEligibility, torch.Tensor]:
    r"""One step of a LIF population and of its eligibility vectors (module docstring).

    The neuron is :func:`.lif_feed_forward_step` driven by ``input_current``
    :math:`I_j = \sum_i W_{ji} x_i`; with the current of :func:`.lif_step` (input and
    recurrent products) its spikes and state are that step's.

    Parameters:
        input_current (torch.Tensor): :math:`I`, ``(batch, hidden)``
        presynaptic (torch.Tensor): :math:`x` with :math:`\partial I_j/\partial W_{ji}
            = x_i`, ``(batch, N)`` (e.g. the input and the previous spikes side by side)
        state (LIFFeedForwardState): ``v``, ``i`` of shape ``(batch, hidden)``
        traces (LIFEligibility): the eligibility vectors before the step
        p (LIFParameters): neuron parameters (``tau_syn_inv`` a scalar)
        dt (float): time step (s)
        detach_reset (bool): True: the reset uses detached spikes (:func:`.lif_step`);
            False: its gradient passes the surrogate (:func:`.lif_feed_forward_step`)

    Returns:
        ``(z, state, traces, e)``: spikes ``(batch, hidden)``, the new state and
        eligibility vectors, and the eligibility trace :math:`e^t_{ji} = \partial
        z_j^t/\partial W_{ji}` of shape ``(batch, hidden, N)``.
    """
    _check_shapes(input_current, presynaptic, traces)
    i_jump = state.i + input_current
    z, v_decayed, i_decayed = _lif_dynamics(i_jump, state.v, p, dt)
    psi = pseudo_derivative(v_decayed - p.v_th, p.method, p.alpha)
    a = _post(dt * p.tau_mem_inv, traces.v)
    c = check_scalar(dt * p.tau_syn_inv, "p.tau_syn_inv", traces.i, _SHARED_TRACE)
    delta_i = traces.i + presynaptic
    delta_v = (1 - a) * traces.v + a * delta_i.unsqueeze(1)
    e = psi.unsqueeze(-1) * delta_v
    v_trace = (1 - z).unsqueeze(-1) * delta_v
    if not detach_reset:
        v_trace = v_trace + (p.v_reset - v_decayed).unsqueeze(-1) * e
    v_new = (1 - z) * v_decayed + z * p.v_reset
    return (
        z,
        LIFFeedForwardState(v=v_new, i=i_decayed),
        LIFEligibility(i=(1 - c) * delta_i, v=v_trace),
        e,
    )


def lsnn_eprop_step(
    input_current: torch.Tensor,
    presynaptic: torch.Tensor,
    state: LSNNFeedForwardState,
    traces: LSNNEligibility,
    p: LSNNParameters = LSNNParameters(),
    dt: float = 0.001,
    detach_reset: bool = True,
) -> Tuple[torch.Tensor, LSNNFeedForwardState, LSNNEligibility, torch.Tensor]:
    r"""One step of an LSNN population and of its eligibility vectors (module docstring).

    The neuron is :func:`.lsnn_feed_forward_step` driven by ``input_current`` (which
    reaches ``i`` at the end of the step); with the current of :func:`.lsnn_step` its
    spikes and state are that step's.

    Parameters:
        input_current (torch.Tensor): :math:`I`, ``(batch, hidden)``
        presynaptic (torch.Tensor): :math:`x` with :math:`\partial I_j/\partial W_{ji}
            = x_i`, ``(batch, N)``
        state (LSNNFeedForwardState): ``v``, ``i``, ``b`` of shape ``(batch, hidden)``
        traces (LSNNEligibility): the eligibility vectors before the step
        p (LSNNParameters): neuron parameters (``tau_syn_inv`` a scalar)
        dt (float): time step (s)
        detach_reset (bool): True: reset and threshold jump use detached spikes
            (:func:`.lsnn_step`; the adaptive eligibility vector stays zero); False:
            their gradient passes the surrogate (:func:`.lsnn_feed_forward_step`)

    Returns:
        ``(z, state, traces, e)`` as :func:`lif_eprop_step`.
    """
    _check_shapes(input_current, presynaptic, traces)
    z, v_decayed, i_decayed, b_decayed = _lsnn_dynamics(
        state.v, state.i, state.b, p, dt
    )
    psi = pseudo_derivative(v_decayed - b_decayed, p.method, p.alpha)
    a = _post(dt * p.tau_mem_inv, traces.v)
    rho = 1 - _post(dt * p.tau_adapt_inv, traces.v)
    c = check_scalar(dt * p.tau_syn_inv, "p.tau_syn_inv", traces.i, _SHARED_TRACE)
    delta_v = (1 - a) * traces.v + a * traces.i.unsqueeze(1)
    delta_b = rho * traces.b
    e = psi.unsqueeze(-1) * (delta_v - delta_b)
    v_trace = (1 - z).unsqueeze(-1) * delta_v
    b_trace = delta_b
    if not detach_reset:
        v_trace = v_trace + (p.v_reset - v_decayed).unsqueeze(-1) * e
        b_trace = b_trace + _post(p.beta, e) * e
    v_new = (1 - z) * v_decayed + z * p.v_reset
    b_new = b_decayed + z * p.beta
    return (
        z,
        LSNNFeedForwardState(v=v_new, i=i_decayed + input_current, b=b_new),
        LSNNEligibility(i=(1 - c) * traces.i + presynaptic, v=v_trace, b=b_trace),
        e,
    )


def li_trace_step(
    trace: torch.Tensor,
    state: LIState,
    p: LIParameters = LIParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, LIState]:
    r"""The leaky-integrator readout's linear response to a derivative.

    :math:`\bar e^t = \mathrm{LI}(e)^t`: one :func:`.li_feed_forward_step` with
    ``trace`` as input and the leak potential dropped (the derivative of a constant is
    zero). With ``trace`` the eligibility trace :math:`e` it gives :math:`\bar e` with
    :math:`\partial y_k^t/\partial W_{ji} = W^{\text{out}}_{kj}\bar e^t_{ji}`; with the
    spikes :math:`z` it gives :math:`\partial y_k^t/\partial W^{\text{out}}_{kj}`.

    Parameters:
        trace (torch.Tensor): the step's input derivative, any shape
        state (LIState): the filter's ``v`` and ``i`` (zero at rest), shape of ``trace``
        p (LIParameters): the readout's parameters (scalars: one filter for all outputs)
        dt (float): time step (s)

    Returns:
        The filtered derivative and the new filter state.
    """
    for name in ("tau_syn_inv", "tau_mem_inv"):
        check_scalar(getattr(p, name), f"p.{name}", trace, _SHARED_TRACE)
    return li_feed_forward_step(
        trace, state, p._replace(v_leak=torch.zeros_like(torch.as_tensor(p.v_leak))), dt
    )


def learning_signal(error: torch.Tensor, feedback: torch.Tensor) -> torch.Tensor:
    r"""The learning signal :math:`L_{bj} = \sum_k \text{error}_{bk} B_{kj}`.

    Parameters:
        error (torch.Tensor): :math:`\partial E/\partial y`, ``(batch, outputs)``
        feedback (torch.Tensor): :math:`B`, ``(outputs, hidden)``: the readout weights
            (symmetric e-prop) or a fixed random matrix (random e-prop)

    Returns:
        ``(batch, hidden)``.
    """
    if error.dim() != 2 or feedback.dim() != 2 or error.shape[1] != feedback.shape[0]:
        raise ValueError(
            "error and feedback must be (batch, outputs) and (outputs, hidden), got "
            f"{tuple(error.shape)} and {tuple(feedback.shape)}"
        )
    return error @ feedback


def eprop_gradient(signal: torch.Tensor, trace: torch.Tensor) -> torch.Tensor:
    r""":math:`\Delta W_{ji} = \sum_b L_{bj}\, e_{bji}`, summed over the batch.

    Parameters:
        signal (torch.Tensor): learning signal ``(batch, hidden)``
        trace (torch.Tensor): (filtered) eligibility trace ``(batch, hidden, N)``

    Returns:
        The weight gradient ``(hidden, N)``.
    """
    if trace.dim() != 3 or tuple(signal.shape) != tuple(trace.shape[:2]):
        raise ValueError(
            "signal and trace must be (batch, hidden) and (batch, hidden, N), got "
            f"{tuple(signal.shape)} and {tuple(trace.shape)}"
        )
    return torch.einsum("bh,bhn->hn", signal, trace)
