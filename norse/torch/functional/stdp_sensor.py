r"""STDP sensor: exponentially decaying traces of pre- and postsynaptic spikes.

.. math::
    \begin{align*}
        \dot a_{pre} &= -\tau_c^{-1} a_{pre} + \eta_p \sum_k \delta(t - t^k_{pre}) \\
        \dot a_{post} &= -\tau_{ac}^{-1} a_{post} + \eta_m \sum_k \delta(t - t^k_{post})
    \end{align*}

One Euler step: decay (``a -= dt * tau_inv * a``), then add the spikes of this step
(``a_pre += eta_p * z_pre``, ``a_post += eta_m * z_post``). The traces read out the
pairing term of an STDP rule: at a postsynaptic spike ``a_pre`` is
:math:`\eta_p e^{-\Delta t/\tau_c}` for a presynaptic spike :math:`\Delta t` earlier.

Norse 1.1 decayed *both* traces with ``tau_c_inv`` and ignored ``tau_ac_inv``; here
``a_post`` uses ``tau_ac_inv`` as documented. The defaults are equal, so default results
are unchanged.

Shapes: ``z_pre`` broadcasts against ``a_pre``, ``z_post`` against ``a_post``.
"""

from typing import NamedTuple

import torch


class STDPSensorParameters(NamedTuple):
    """Parameters of an STDP sensor.

    Parameters:
        eta_p (torch.Tensor): jump of the presynaptic trace per presynaptic spike
        eta_m (torch.Tensor): jump of the postsynaptic trace per postsynaptic spike
        tau_ac_inv (torch.Tensor): inverse time constant of the postsynaptic trace (1/s)
        tau_c_inv (torch.Tensor): inverse time constant of the presynaptic trace (1/s)
    """

    eta_p: torch.Tensor = torch.as_tensor(1.0)
    eta_m: torch.Tensor = torch.as_tensor(1.0)
    tau_ac_inv: torch.Tensor = torch.as_tensor(1.0 / 100e-3)
    tau_c_inv: torch.Tensor = torch.as_tensor(1.0 / 100e-3)


class STDPSensorState(NamedTuple):
    """State of an STDP sensor.

    Parameters:
        a_pre (torch.Tensor): presynaptic trace
        a_post (torch.Tensor): postsynaptic trace
    """

    a_pre: torch.Tensor
    a_post: torch.Tensor


def stdp_sensor_step(
    z_pre: torch.Tensor,
    z_post: torch.Tensor,
    state: STDPSensorState,
    p: STDPSensorParameters = STDPSensorParameters(),
    dt: float = 0.001,
) -> STDPSensorState:
    """One Euler step of the STDP sensor traces.

    Parameters:
        z_pre (torch.Tensor): presynaptic spikes (broadcast against ``state.a_pre``)
        z_post (torch.Tensor): postsynaptic spikes (broadcast against ``state.a_post``)
        state (STDPSensorState): previous traces
        p (STDPSensorParameters): parameters
        dt (float): integration step (s)

    Returns:
        The new :class:`STDPSensorState`.
    """
    # Norse 1.1's order of operations: tau times the trace first, so a float32 tau
    # meets float64 traces as a float64 value (dt * tau would round it to float32)
    a_pre = state.a_pre + dt * (p.tau_c_inv * -state.a_pre) + z_pre * p.eta_p
    a_post = state.a_post + dt * (p.tau_ac_inv * -state.a_post) + z_post * p.eta_m
    return STDPSensorState(a_pre, a_post)
