r"""Conductance-based leaky integrate-and-fire (CobaLIF) neurons.

Synaptic input opens excitatory and inhibitory conductances :math:`g_e`, :math:`g_i`
whose current depends on the distance of the voltage to their reversal potentials:

.. math::
    \begin{align*}
        \dot{v} &= c_m^{-1} \left(g_l (v_{\text{rest}} - v) + g_e (E_{\text{rev},E} - v)
                   + g_i (E_{\text{rev},I} - v)\right) \\
        \dot{g}_e &= -\tau_{\text{syn,exc}}^{-1} g_e \\
        \dot{g}_i &= -\tau_{\text{syn,inh}}^{-1} g_i
    \end{align*}

with :math:`z = \Theta(v - v_{\text{thresh}})` and :math:`v \leftarrow (1 - z) v + z
v_{\text{reset}}`. Positive input (or positive weights) raises :math:`g_e`, negative
input (or negative weights) raises :math:`g_i`.

One explicit Euler step (the update order of Norse 1.1):

1. conductance jumps: ``g_e += relu(W_in) x + relu(W_rec) z``,
   ``g_i += relu(-W_in) x + relu(-W_rec) z`` (feed-forward: ``relu(+-input)``)
2. conductance decay: ``g_e -= dt * tau_syn_exc_inv * g_e`` (same for ``g_i``)
3. voltage from the *decayed* conductances, then spike and reset.

Norse 1.1's recurrent step overwrote the input conductances with the recurrent ones (so
input never reached a recurrent CobaLIF layer); here input and recurrent conductances
add up.

The default parameters are those of Norse 1.1 (time constants of 5 time units,
``v_rest=-20``, ``v_thresh=-10``).
"""

from typing import NamedTuple, Tuple

import torch

from norse.torch.functional.conventions import documented_fields, step_arguments
from norse.torch.functional.threshold import threshold

_CONDUCTANCES = {"g_e": "excitatory conductance", "g_i": "inhibitory conductance"}
_INPUT_SPIKES = "input spikes ``(batch, input_size)``"


@documented_fields(
    tau_syn_exc_inv="inverse excitatory synaptic time constant",
    tau_syn_inh_inv="inverse inhibitory synaptic time constant",
    c_m_inv="inverse membrane capacitance",
    g_l="leak conductance",
    e_rev_I="inhibitory reversal potential",
    e_rev_E="excitatory reversal potential",
    v_rest="resting potential (the initial voltage of the modules)",
    v_thresh="threshold potential",
)
class CobaLIFParameters(NamedTuple):
    """Parameters of a conductance-based LIF neuron."""

    tau_syn_exc_inv: torch.Tensor = torch.as_tensor(1.0 / 5)
    tau_syn_inh_inv: torch.Tensor = torch.as_tensor(1.0 / 5)
    c_m_inv: torch.Tensor = torch.as_tensor(1 / 0.2)
    g_l: torch.Tensor = torch.as_tensor(1 / 20 * 1 / 0.2)
    e_rev_I: torch.Tensor = torch.as_tensor(-100.0)
    e_rev_E: torch.Tensor = torch.as_tensor(60.0)
    v_rest: torch.Tensor = torch.as_tensor(-20.0)
    v_reset: torch.Tensor = torch.as_tensor(-70.0)
    v_thresh: torch.Tensor = torch.as_tensor(-10.0)
    method: str = "super"
    alpha: float = torch.as_tensor(100.0)


#: Biologically scaled parameters (mV, time constants in 1/ms as in Norse 1.1).
default_bio_parameters = CobaLIFParameters(
    tau_syn_exc_inv=torch.as_tensor(1 / 0.3),
    tau_syn_inh_inv=torch.as_tensor(1 / 0.5),
    e_rev_E=torch.as_tensor(0.0),
    e_rev_I=torch.as_tensor(-70.0),
    v_thresh=torch.as_tensor(-50.0),
    v_reset=torch.as_tensor(-65.0),
    v_rest=torch.as_tensor(-65.0),
)


@documented_fields(**_CONDUCTANCES)
class CobaLIFState(NamedTuple):
    """State of a recurrent conductance-based LIF neuron."""

    z: torch.Tensor
    v: torch.Tensor
    g_e: torch.Tensor
    g_i: torch.Tensor


default_bio_state = CobaLIFState(
    z=torch.as_tensor(0.0),
    v=torch.as_tensor(-65.0),
    g_e=torch.as_tensor(0.0),
    g_i=torch.as_tensor(0.0),
)


@documented_fields(**_CONDUCTANCES)
class CobaLIFFeedForwardState(NamedTuple):
    """State of a feed-forward conductance-based LIF neuron."""

    v: torch.Tensor
    g_e: torch.Tensor
    g_i: torch.Tensor


def coba_lif_dynamics(
    v: torch.Tensor,
    g_e: torch.Tensor,
    g_i: torch.Tensor,
    p: CobaLIFParameters,
    dt: float,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Steps 2-3 after the conductance jumps (``g_e``, ``g_i`` already raised by this
    step's input): returns (spikes, new v, new g_e, new g_i), all of the state shape.

    The recurrent steps' fast path (:mod:`norse.torch.fused.coba_lif`) calls it with
    the conductance jumps computed from weights rectified once per sequence."""
    g_e = g_e - dt * p.tau_syn_exc_inv * g_e
    g_i = g_i - dt * p.tau_syn_inh_inv * g_i
    dv = p.g_l * (p.v_rest - v) + g_e * (p.e_rev_E - v) + g_i * (p.e_rev_I - v)
    v_decayed = v + dt * p.c_m_inv * dv
    z = threshold(v_decayed - p.v_thresh, p.method, p.alpha)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    return z, v_new, g_e, g_i


@step_arguments(
    input_tensor="synaptic input of shape ``(...)``; its positive part raises "
    "``g_e``, its negative part ``g_i``",
    dt="integration step",
)
def coba_lif_feed_forward_step(
    input_tensor: torch.Tensor,
    state: CobaLIFFeedForwardState,
    p: CobaLIFParameters = CobaLIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, CobaLIFFeedForwardState]:
    """One Euler step of a feed-forward conductance-based LIF neuron."""
    g_e = state.g_e + torch.nn.functional.relu(input_tensor)
    g_i = state.g_i + torch.nn.functional.relu(-input_tensor)
    z, v_new, g_e, g_i = coba_lif_dynamics(state.v, g_e, g_i, p, dt)
    return z, CobaLIFFeedForwardState(v_new, g_e, g_i)


@step_arguments(input_tensor=_INPUT_SPIKES, dt="integration step")
def coba_lif_step(
    input_tensor: torch.Tensor,
    state: CobaLIFState,
    input_weights: torch.Tensor,
    recurrent_weights: torch.Tensor,
    p: CobaLIFParameters = CobaLIFParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, CobaLIFState]:
    """One Euler step of a recurrently connected conductance-based LIF neuron.

    Positive weights are excitatory, negative weights inhibitory; input and recurrent
    conductances add up.
    """
    relu, linear = torch.nn.functional.relu, torch.nn.functional.linear
    g_e = (
        state.g_e
        + linear(input_tensor, relu(input_weights))
        + linear(state.z, relu(recurrent_weights))
    )
    g_i = (
        state.g_i
        + linear(input_tensor, relu(-input_weights))
        + linear(state.z, relu(-recurrent_weights))
    )
    z, v_new, g_e, g_i = coba_lif_dynamics(state.v, g_e, g_i, p, dt)
    return z, CobaLIFState(z, v_new, g_e, g_i)
