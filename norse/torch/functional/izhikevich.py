r"""Izhikevich neurons: a quadratic membrane with a slow recovery variable.

Dynamics (Izhikevich 2003), with the model time :math:`t'` in milliseconds:

.. math::
    \begin{align*}
        \frac{dv}{dt'} &= sq\, v^2 + mn\, v + bias - u + I \\
        \frac{du}{dt'} &= a (b v - u)
    \end{align*}

and the jump condition :math:`z = \Theta(v - v_{th})` with the transitions
:math:`v \leftarrow c` and :math:`u \leftarrow u + d`. The simulation time step is
``dt`` seconds and ``tau_inv`` (1/s) converts it: one step advances the model by
:math:`\tau^{-1} \cdot dt` milliseconds (``tau_inv=250``, ``dt=0.001``: 0.25 ms, the step
of Izhikevich's reference code). ``v`` is in mV, ``I`` in the model's current units.

One explicit Euler step (the update order of Norse 1.1; both updates use the *old* v):

1. ``v_new = v + tau_inv * dt * (sq * v**2 + mn * v + bias - u + I)``
2. ``u_new = u + tau_inv * dt * a * (b * v - u)``
3. ``z = threshold(v_new - v_th, method, alpha)``
4. ``v_new = (1 - z) * v_new + z * c`` and ``u_new = (1 - z) * u_new + z * (u_new + d)``

The 20 spiking behaviours of Izhikevich (2004), "Which model to use for cortical spiking
neurons?", are provided as :class:`IzhikevichSpikingBehavior` values (parameters plus
initial state) under the names of Norse 1.1: :data:`tonic_spiking`,
:data:`phasic_spiking`, :data:`tonic_bursting`, :data:`phasic_bursting`,
:data:`mixed_mode`, :data:`spike_frequency_adaptation`, :data:`class_1_exc`,
:data:`class_2_exc`, :data:`spike_latency`, :data:`subthreshold_oscillation`,
:data:`resonator`, :data:`integrator`, :data:`rebound_spike`, :data:`rebound_burst`,
:data:`threshold_variability`, :data:`bistability`, :data:`dap`, :data:`accomodation`,
:data:`inhibition_induced_spiking` and :data:`inhibition_induced_bursting` (each with its
parameters as ``<name>_p``).

Three behaviours differ from the published values (Izhikevich 2004, Fig. 1 and its
script ``figure1.m``) and from Norse 1.1, because with those values this model does not
show the behaviour. The published figures of these three rely on Izhikevich's own
integrator (``u`` updated from the *new* ``v``, so the spike step adds
:math:`h\,a\,(b\,v_{peak} - u)` with the overshoot :math:`v_{peak} \gg 30`) or on a
different recovery equation; the values below give the behaviour as a property of the
equations above, the same at the default step, at 10x finer steps and with either update
order:

* :data:`dap`: ``d = -18`` (published -21). With ``d = -21`` the model is bistable after a
  spike: the 2 ms pulse starts repetitive firing (4 spikes in 50 ms with Norse 1.1's step,
  8 as ``dt -> 0``); the boundary is about ``d = -19``. With ``d = -18`` it fires once
  and ``v`` rises after the reset to -54.6 mV (rest -70 mV) before decaying back.
* :data:`accomodation`: ``b = 2``, ``bias = 23.76``, starting at the rest ``v = -66``,
  ``u = b v = -132`` (published ``b = 1``, ``v = -65``, ``u = -16`` with the recovery
  :math:`\dot u = a\,b\,(v + 65)`, which this model cannot express). With ``b = 1`` and
  the standard recovery there is no resting state at all (64 spikes on the standard
  stimulus). With ``b = 2`` ``u`` follows ``v`` so closely that a slow ramp to ``I = 8``
  is accommodated (no spike) while a fast ramp to ``I = 4`` fires.
* :data:`inhibition_induced_bursting`: ``d = 1`` (published -2). With ``d = -2`` every
  spike makes the neuron more excitable: a burst never ends and the neuron fires at nearly
  every step. In Izhikevich's integrator the spike step adds 1.2 to 3.4 to ``u``, so his
  effective increment was about -0.8 to +1.4; ``d = 1`` gives the equations that increment.

Example:
    >>> import torch
    >>> from norse.torch.functional import izhikevich as izk
    >>> p, s = izk.tonic_spiking
    >>> z, s = izk.izhikevich_feed_forward_step(torch.full((1,), 14.0), s, p)
"""

from typing import NamedTuple, Tuple

import torch

from norse.torch.functional.conventions import documented_fields, step_arguments
from norse.torch.functional.synapse import recurrent_input
from norse.torch.functional.threshold import threshold


class IzhikevichParameters(NamedTuple):
    """Parameters of an Izhikevich neuron.

    Parameters:
        a (float): time scale of the recovery variable ``u`` (1/ms)
        b (float): sensitivity of ``u`` to subthreshold ``v``
        c (float): after-spike reset value of ``v`` (mV)
        d (float): after-spike increment of ``u``
        sq (float): coefficient of :math:`v^2`
        mn (float): coefficient of :math:`v`
        bias (float): constant drive
        v_th (float): spike cut-off (mV)
        tau_inv (float): conversion of the step ``dt`` (s) into model time: the model
            advances ``tau_inv * dt`` ms per step (1/s)
        method (str): surrogate gradient method, see :mod:`.threshold`
        alpha (float): surrogate gradient sharpness
    """

    a: float
    b: float
    c: float
    d: float
    sq: float = 0.04
    mn: float = 5
    bias: float = 140
    v_th: float = 30
    tau_inv: float = 250
    method: str = "super"
    alpha: float = 100.0


_STATE_FIELDS = {"v": "membrane potential (mV)", "u": "recovery variable"}


@documented_fields(**_STATE_FIELDS)
class IzhikevichState(NamedTuple):
    """State of a feed-forward Izhikevich neuron."""

    v: torch.Tensor
    u: torch.Tensor


@documented_fields(**_STATE_FIELDS)
class IzhikevichRecurrentState(NamedTuple):
    """State of a recurrently connected Izhikevich neuron."""

    z: torch.Tensor
    v: torch.Tensor
    u: torch.Tensor


@documented_fields(
    p="neuron parameters", s="initial state (scalar tensors; modules expand them)"
)
class IzhikevichSpikingBehavior(NamedTuple):
    """A spiking behaviour: the parameters and the initial (resting) state."""

    p: IzhikevichParameters
    s: IzhikevichState


def create_izhikevich_spiking_behavior(
    a: float,
    b: float,
    c: float,
    d: float,
    v_rest: float,
    u_rest: float,
    tau_inv: float = 250,
) -> IzhikevichSpikingBehavior:
    """A behaviour with parameters ``a, b, c, d, tau_inv`` starting at ``v = v_rest`` and
    ``u = b * u_rest`` (the convention of Norse 1.1 and Izhikevich's code, ``u = b v``).

    Parameters:
        a, b, c, d (float): see :class:`IzhikevichParameters`
        v_rest (float): initial membrane potential (mV)
        u_rest (float): initial recovery variable divided by ``b``
        tau_inv (float): see :class:`IzhikevichParameters`
    """
    p = IzhikevichParameters(a=a, b=b, c=c, d=d, tau_inv=tau_inv)
    return IzhikevichSpikingBehavior(
        p=p,
        # v requires grad, as in Norse 1.1 (a gradient w.r.t. the start)
        s=IzhikevichState(
            v=torch.tensor(float(v_rest), requires_grad=True),
            u=torch.tensor(float(u_rest) * p.b),
        ),
    )


def _behavior(p: IzhikevichParameters, v_rest: float) -> IzhikevichSpikingBehavior:
    """A preset at rest: ``v = v_rest`` and ``u = b * v_rest`` (as in Norse 1.1, without
    the gradient of :func:`create_izhikevich_spiking_behavior`)."""
    return IzhikevichSpikingBehavior(
        p=p,
        s=IzhikevichState(v=torch.tensor(v_rest), u=torch.tensor(v_rest * p.b)),
    )


# The parameters and initial states of Izhikevich (2004), Fig. 1 (A)-(T). At the default
# dt = 1e-3, ``tau_inv`` gives each panel a model step of 0.1 to 0.5 ms as in his code.
tonic_spiking_p = IzhikevichParameters(a=0.02, b=0.2, c=-65, d=6)
tonic_spiking = _behavior(tonic_spiking_p, -70.0)
phasic_spiking_p = IzhikevichParameters(a=0.02, b=0.25, c=-65, d=6)
phasic_spiking = _behavior(phasic_spiking_p, -64.0)
tonic_bursting_p = IzhikevichParameters(a=0.02, b=0.2, c=-50, d=2)
tonic_bursting = _behavior(tonic_bursting_p, -70.0)
phasic_bursting_p = IzhikevichParameters(a=0.02, b=0.25, c=-55, d=0.05, tau_inv=200)
phasic_bursting = _behavior(phasic_bursting_p, -64.0)
mixed_mode_p = IzhikevichParameters(a=0.02, b=0.2, c=-55, d=4, tau_inv=250)
mixed_mode = _behavior(mixed_mode_p, -70.0)
spike_frequency_adaptation_p = IzhikevichParameters(
    a=0.01, b=0.2, c=-65, d=8, tau_inv=250
)
spike_frequency_adaptation = _behavior(spike_frequency_adaptation_p, -70.0)
class_1_exc_p = IzhikevichParameters(
    a=0.02, b=-0.1, c=-55, d=6, mn=4.1, bias=108, tau_inv=250
)
class_1_exc = _behavior(class_1_exc_p, -60.0)
class_2_exc_p = IzhikevichParameters(a=0.2, b=0.26, c=-65, d=0, tau_inv=250)
class_2_exc = _behavior(class_2_exc_p, -64.0)
spike_latency_p = IzhikevichParameters(a=0.02, b=0.2, c=-65, d=6, tau_inv=250)
spike_latency = _behavior(spike_latency_p, -70.0)
subthreshold_oscillation_p = IzhikevichParameters(
    a=0.05, b=0.26, c=-60, d=0, tau_inv=250
)
subthreshold_oscillation = _behavior(subthreshold_oscillation_p, -62.0)
resonator_p = IzhikevichParameters(a=0.1, b=0.26, c=-60, d=-1, tau_inv=250)
resonator = _behavior(resonator_p, -62.0)
# (L) integrator has the parameters of (G) class 1 excitability
integrator_p = class_1_exc_p
integrator = _behavior(integrator_p, -60.0)
rebound_spike_p = IzhikevichParameters(a=0.03, b=0.25, c=-60, d=4, tau_inv=200)
rebound_spike = _behavior(rebound_spike_p, -64.0)
rebound_burst_p = IzhikevichParameters(a=0.03, b=0.25, c=-52, d=0, tau_inv=200)
rebound_burst = _behavior(rebound_burst_p, -64.0)
threshold_variability_p = IzhikevichParameters(a=0.03, b=0.25, c=-60, d=4, tau_inv=250)
threshold_variability = _behavior(threshold_variability_p, -64.0)
bistability_p = IzhikevichParameters(a=0.1, b=0.26, c=-60, d=0, tau_inv=250)
bistability = _behavior(bistability_p, -61.0)
# dap, accomodation and inhibition_induced_bursting differ from the published values and
# from Norse 1.1, whose values do not show the behaviour (see the module docstring).
dap_p = IzhikevichParameters(a=1.0, b=0.2, c=-60, d=-18, tau_inv=100)
dap = _behavior(dap_p, -70.0)
# bias = b v - sq v^2 - mn v at v = -66: the resting state is (v, u) = (-66, b * -66)
accomodation_p = IzhikevichParameters(
    a=0.02, b=2.0, c=-55, d=4, bias=23.76, tau_inv=500
)
accomodation = _behavior(accomodation_p, -66.0)
inhibition_induced_spiking_p = IzhikevichParameters(
    a=-0.02, b=-1.0, c=-60, d=8, tau_inv=250
)
inhibition_induced_spiking = _behavior(inhibition_induced_spiking_p, -63.8)
inhibition_induced_bursting_p = IzhikevichParameters(
    a=-0.026, b=-1.0, c=-45, d=1, tau_inv=250
)
inhibition_induced_bursting = _behavior(inhibition_induced_bursting_p, -63.8)

#: The 20 named behaviours, in the order of Izhikevich (2004), Fig. 1.
BEHAVIORS = {
    "tonic_spiking": tonic_spiking,
    "phasic_spiking": phasic_spiking,
    "tonic_bursting": tonic_bursting,
    "phasic_bursting": phasic_bursting,
    "mixed_mode": mixed_mode,
    "spike_frequency_adaptation": spike_frequency_adaptation,
    "class_1_exc": class_1_exc,
    "class_2_exc": class_2_exc,
    "spike_latency": spike_latency,
    "subthreshold_oscillation": subthreshold_oscillation,
    "resonator": resonator,
    "integrator": integrator,
    "rebound_spike": rebound_spike,
    "rebound_burst": rebound_burst,
    "threshold_variability": threshold_variability,
    "bistability": bistability,
    "dap": dap,
    "accomodation": accomodation,
    "inhibition_induced_spiking": inhibition_induced_spiking,
    "inhibition_induced_bursting": inhibition_induced_bursting,
}


def _izhikevich_dynamics(
    current: torch.Tensor,
    v: torch.Tensor,
    u: torch.Tensor,
    p: IzhikevichParameters,
    dt: float,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Euler update, threshold and reset: returns (spikes, v, u)."""
    h = p.tau_inv * dt  # model time advanced by this step (ms)
    v_new = v + h * (p.sq * v * v + p.mn * v + p.bias - u + current)
    u_new = u + h * p.a * (p.b * v - u)
    z = threshold(v_new - p.v_th, p.method, p.alpha)
    v_new = (1 - z) * v_new + z * p.c
    u_new = u_new + z * p.d
    return z, v_new, u_new


@step_arguments(s="``v``, ``u`` of shape ``(...)`` (or scalars)")
def izhikevich_feed_forward_step(
    input_current: torch.Tensor,
    s: IzhikevichState,
    p: IzhikevichParameters,
    dt: float = 0.001,
) -> Tuple[torch.Tensor, IzhikevichState]:
    """One Euler step of a feed-forward Izhikevich neuron."""
    z, v, u = _izhikevich_dynamics(input_current, s.v, s.u, p, dt)
    return z, IzhikevichState(v, u)


@step_arguments()
def izhikevich_recurrent_step(
    input_current: torch.Tensor,
    s: IzhikevichRecurrentState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: IzhikevichParameters,
    dt: float = 0.001,
) -> Tuple[torch.Tensor, IzhikevichRecurrentState]:
    """One Euler step of a recurrently connected Izhikevich neuron.

    The current is ``input_current @ input_weights.T + s.z @ recurrent_weights.T``.
    """
    current = recurrent_input(input_current, s.z, input_weights, recurrent_weights)
    z, v, u = _izhikevich_dynamics(current, s.v, s.u, p, dt)
    return z, IzhikevichRecurrentState(z, v, u)
