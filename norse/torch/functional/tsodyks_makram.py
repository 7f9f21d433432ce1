r"""Tsodyks-Markram short-term synaptic plasticity (depression and facilitation).

Dynamics (Tsodyks & Markram 1997; Scholarpedia "Short-term synaptic plasticity"):

.. math::
    \begin{align*}
        \dot u &= -\tau_f^{-1} u + U (1 - u^-) \sum_k \delta(t - t_k) \\
        \dot x &= \tau_d^{-1} (1 - x) - u^+ x^- \sum_k \delta(t - t_k)
    \end{align*}

``u`` is the utilisation (release probability), ``x`` the fraction of available
resources; a presynaptic spike releases :math:`u^+ x^-` (the returned synaptic efficacy;
feed it into a synaptic current with time constant :math:`\tau_s`).

One Euler step (the update order of Norse 1.1):

1. ``u_new = u - dt * tau_f_inv * u + U * (1 - u) * z``
2. ``x_new = x + dt * tau_d_inv * (1 - x) - u_new * x * z``
3. output ``u_new * x * z``

Steady state for a periodic train with interval :math:`\Delta` (continuous time):
:math:`u^+_\infty = U / (1 - (1 - U) e^{-\Delta/\tau_f})`,
:math:`x^-_\infty = (1 - e^{-\Delta/\tau_d}) / (1 - (1 - u^+_\infty) e^{-\Delta/\tau_d})`.

The defaults (:math:`\tau_f` = 50 ms, :math:`\tau_d` = 750 ms, U = 0.45) are the
depression-dominated set of Tsodyks & Markram; the facilitation-dominated set is
:math:`\tau_f` = 750 ms, :math:`\tau_d` = 50 ms, U = 0.15.
"""

from typing import NamedTuple, Tuple

import torch


class TsodyksMakramState(NamedTuple):
    """State of a Tsodyks-Markram synapse (the synaptic current is tracked elsewhere).

    Parameters:
        u (torch.Tensor): utilisation (release probability), in [0, 1]
        x (torch.Tensor): fraction of available resources, in [0, 1]
    """

    u: torch.Tensor
    x: torch.Tensor


class TsodyksMakramParameters(NamedTuple):
    """Parameters of the Tsodyks-Markram model.

    Parameters:
        tau_f_inv (float): inverse facilitation time constant (1/s)
        tau_s_inv (float): inverse synaptic current time constant (1/s); not used by
            :func:`stp_step`, kept for the synapse that receives its output
        tau_d_inv (float): inverse depression (recovery) time constant (1/s)
        U (float): increment of the utilisation per spike
    """

    tau_f_inv: float = 1 / (50.0e-3)
    tau_s_inv: float = 1 / (20.0e-3)
    tau_d_inv: float = 1 / (750.0e-3)
    U: float = 0.45


def stp_step(
    z: torch.Tensor,
    s: TsodyksMakramState,
    p: TsodyksMakramParameters,
    dt: float = 0.001,
) -> Tuple[torch.Tensor, TsodyksMakramState]:
    """One Euler step of the Tsodyks-Markram model.

    Parameters:
        z (torch.Tensor): presynaptic spikes, any shape
        s (TsodyksMakramState): ``u`` and ``x`` (broadcast against ``z``)
        p (TsodyksMakramParameters): parameters
        dt (float): integration step (s)

    Returns:
        The released efficacy ``u_new * x * z`` and the new :class:`TsodyksMakramState`.
    """
    u_new = s.u - dt * p.tau_f_inv * s.u + p.U * (1 - s.u) * z
    released = u_new * s.x * z
    x_new = s.x + dt * p.tau_d_inv * (1 - s.x) - released
    return released, TsodyksMakramState(u=u_new, x=x_new)
