r"""Correlation sensors: per-synapse traces of pre-before-post and post-before-pre pairings.

For every synapse :math:`(i, j)` from presynaptic neuron :math:`i` to postsynaptic
neuron :math:`j` the sensor keeps

* ``post_pre`` :math:`\in \{0, 1\}`: 1 if the latest event at the synapse was a
  postsynaptic spike, 0 if it was a presynaptic one;
* ``correlation_trace`` :math:`c`: jumps by :math:`\eta_+` at every presynaptic spike and
  decays with :math:`\tau_c` only while the synapse waits for a postsynaptic spike
  (``post_pre = 0``);
* ``anti_correlation_trace`` :math:`a`: jumps by :math:`\eta_-` at every postsynaptic
  spike and decays with :math:`\tau_{ac}` while ``post_pre = 1``.

One Euler step (the update order of Norse 1.1):

1. ``c -= dt * tau_c_inv * c * (1 - post_pre)`` and ``a -= dt * tau_ac_inv * a * post_pre``
2. ``post_pre = H(post_pre + z_post[j] - z_pre[i])`` (:math:`H(0) = 0`)
3. ``c += eta_p * z_pre[i]`` and ``a += eta_m * z_post[j]``

Shapes: ``z_pre`` ``(batch, n_pre)``, ``z_post`` ``(batch, n_post)``, every state tensor
``(batch, n_pre, n_post)``. Unlike Norse 1.1 (which broadcast the spikes wrongly and thus
only worked for a batch of one), every batch size works.
"""

from typing import NamedTuple

import torch

from norse.torch.functional.heaviside import heaviside


class CorrelationSensorParameters(NamedTuple):
    """Parameters of a correlation sensor.

    Parameters:
        eta_p (torch.Tensor): jump of the correlation trace at a presynaptic spike
        eta_m (torch.Tensor): jump of the anti-correlation trace at a postsynaptic spike
        tau_ac_inv (torch.Tensor): inverse time constant of the anti-correlation trace (1/s)
        tau_c_inv (torch.Tensor): inverse time constant of the correlation trace (1/s)
    """

    eta_p: torch.Tensor = torch.as_tensor(1.0)
    eta_m: torch.Tensor = torch.as_tensor(1.0)
    tau_ac_inv: torch.Tensor = torch.as_tensor(1.0 / 100e-3)
    tau_c_inv: torch.Tensor = torch.as_tensor(1.0 / 100e-3)


class CorrelationSensorState(NamedTuple):
    """State of a correlation sensor; every tensor has shape ``(batch, n_pre, n_post)``.

    Parameters:
        post_pre (torch.Tensor): 1 where the latest event was a postsynaptic spike
        correlation_trace (torch.Tensor): pre-before-post trace
        anti_correlation_trace (torch.Tensor): post-before-pre trace
    """

    post_pre: torch.Tensor
    correlation_trace: torch.Tensor
    anti_correlation_trace: torch.Tensor


def pre_mask(weights: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Presynaptic spikes ``z`` ``(batch, n_pre)`` spread over the synapse array
    ``weights`` ``(batch, n_pre, n_post)``: ``out[b, i, j] = z[b, i]``."""
    return torch.zeros_like(weights) + z.unsqueeze(-1)


def post_mask(weights: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Postsynaptic spikes ``z`` ``(batch, n_post)`` spread over the synapse array
    ``weights`` ``(batch, n_pre, n_post)``: ``out[b, i, j] = z[b, j]``."""
    return torch.zeros_like(weights) + z.unsqueeze(-2)


def post_pre_update(
    post_pre: torch.Tensor, post_spike_mask: torch.Tensor, pre_spike_mask: torch.Tensor
) -> torch.Tensor:
    """``H(post_pre + post - pre)``: a postsynaptic spike sets the flag, a presynaptic
    one clears it (simultaneous spikes leave it unchanged)."""
    return heaviside(post_pre + post_spike_mask - pre_spike_mask)


def correlation_sensor_step(
    z_pre: torch.Tensor,
    z_post: torch.Tensor,
    state: CorrelationSensorState,
    p: CorrelationSensorParameters = CorrelationSensorParameters(),
    dt: float = 0.001,
) -> CorrelationSensorState:
    """One Euler step of the correlation sensor (see the module docstring).

    Parameters:
        z_pre (torch.Tensor): presynaptic spikes ``(batch, n_pre)``
        z_post (torch.Tensor): postsynaptic spikes ``(batch, n_post)``
        state (CorrelationSensorState): tensors of shape ``(batch, n_pre, n_post)``
        p (CorrelationSensorParameters): parameters
        dt (float): integration step (s)

    Returns:
        The new :class:`CorrelationSensorState`.
    """
    c = state.correlation_trace
    a = state.anti_correlation_trace
    c_decayed = c - (1 - state.post_pre) * (dt * p.tau_c_inv * c)
    a_decayed = a - state.post_pre * (dt * p.tau_ac_inv * a)
    pre = pre_mask(state.post_pre, z_pre)
    post = post_mask(state.post_pre, z_post)
    return CorrelationSensorState(
        post_pre=post_pre_update(state.post_pre, post, pre),
        correlation_trace=c_decayed + p.eta_p * pre,
        anti_correlation_trace=a_decayed + p.eta_m * post,
    )


def correlation_based_update(
    ts: int,
    linear_update: torch.nn.Module,
    weights: torch.Tensor,
    correlation_state: CorrelationSensorState,
    learning_rate: float,
    ts_frequency: int,
) -> torch.Tensor:
    """Every ``ts_frequency`` steps, adds ``learning_rate * linear_update([c, a])`` to the
    weights and clears both traces (in place, as in Norse 1.1); otherwise returns
    ``weights`` unchanged.

    ``linear_update`` maps the flattened traces ``2 * batch * n_pre * n_post`` to
    ``n_post * n_pre`` weight changes (so the batch must be 1, as in Norse 1.1).

    Parameters:
        ts (int): current time step
        linear_update (torch.nn.Module): learned map from traces to weight changes
        weights (torch.Tensor): ``(n_post, n_pre)``
        correlation_state (CorrelationSensorState): the sensor state of these weights
        learning_rate (float): scale of the update
        ts_frequency (int): update period in steps

    Returns:
        The (possibly) updated weights.
    """
    if ts % ts_frequency != 0:
        return weights
    _, n_pre, n_post = correlation_state.correlation_trace.shape
    traces = torch.cat(
        (
            correlation_state.correlation_trace.flatten(),
            correlation_state.anti_correlation_trace.flatten(),
        )
    )
    dw = linear_update(traces).detach()
    weights = weights + learning_rate * torch.reshape(dw, (n_post, n_pre))
    correlation_state.correlation_trace.zero_()
    correlation_state.anti_correlation_trace.zero_()
    return weights
