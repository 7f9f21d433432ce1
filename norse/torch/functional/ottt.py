r"""OTTT: online training through time for feed-forward networks of LIF neurons.

After M. Xiao, Q. Meng, Z. Zhang, D. He and Z. Lin, "Online Training Through Time for
Spiking Neural Networks" (NeurIPS 2022).

BPTT's gradient of a weight :math:`W` feeding a layer of LIF neurons with the input
current :math:`I^t = W s^t` (presynaptic spikes or activity :math:`s^t`) is

.. math::
    \frac{dL}{dW} = \sum_t \frac{\partial L}{\partial u^t} \frac{du^t}{dW}

with :math:`u^t` the membrane potential before the spike (``v_dec``). OTTT makes two
simplifications that turn it into a forward-in-time rule:

1. the reset carries no gradient through time, so the membrane's dependence on its past
   is the linear leak alone, and :math:`du^t/dW` is the neuron's linear filter applied
   to the presynaptic input: a *presynaptic trace* :math:`\hat a^t` per input;
2. the loss is a sum of instantaneous losses :math:`L = \sum_t L^t`, and
   :math:`\partial L^t/\partial u^t` is taken through the layers at step :math:`t` only
   (spatial backpropagation, no temporal paths into later layers).

The gradient is then the sum over steps of an outer product,

.. math::
    \nabla_W L = \sum_t g_I^t \otimes \hat a^t, \qquad
    g_I^t = \frac{\partial L^t}{\partial I^t}\Big|_{\text{step } t},

computed at every step with nothing of the past stored but :math:`\hat a`.

For the paper's neuron, :math:`u^t = \lambda u^{t-1} + W s^t`, the trace is
:math:`\hat a^t = \lambda \hat a^{t-1} + s^t`. This package's LIF neurons
(:func:`.lif_feed_forward_step`, and the leaky integrator :func:`.li_feed_forward_step`)
filter their input twice, through the synaptic current and the membrane
(:math:`a = dt\,\tau_{\text{mem}}^{-1}`, :math:`c = dt\,\tau_{\text{syn}}^{-1}`):

.. math::
    \begin{align*}
        j^t &= (1 - c)\, j^{t-1} + s^t & \text{(the synaptic current per unit weight)} \\
        \hat a^t &= (1 - a)\, \hat a^{t-1} + j^t & \text{(the membrane, per unit of } a)
    \end{align*}

so that, without the reset, :math:`\partial u^t/\partial W_{ji} = a\, \hat a^t_i` and
:math:`\partial L^t/\partial I^t = a\, \partial L^t/\partial u^t`. With an instantaneous
synapse (:math:`c = 1`) :math:`j^t = s^t` and the trace is the paper's, with
:math:`\lambda = 1 - a`. For a leaky integrator, which has no reset, the trace is exact.
"""

from typing import NamedTuple

import torch

from norse.torch.functional.validation import check_scalar

__all__ = ["OTTTTrace", "ottt_trace_step", "ottt_gradient"]


class OTTTTrace(NamedTuple):
    r"""Presynaptic trace of a synapse layer in front of LIF or LI neurons.

    Parameters:
        j (torch.Tensor): the input filtered by the synaptic current, :math:`j^t`
        a (torch.Tensor): the input filtered by current and membrane, :math:`\hat a^t`

    Both have the shape of the presynaptic input (e.g. ``(batch, inputs)``); a scalar
    trace of the constant input 1 serves a bias.
    """

    j: torch.Tensor
    a: torch.Tensor


def _decay(name: str, rate, dt: float, like: torch.Tensor) -> torch.Tensor:
    # dt * rate in the parameter's precision, as the neuron step computes it
    return check_scalar(
        dt * torch.as_tensor(rate),
        name,
        like,
        "for OTTT (one presynaptic trace serves every postsynaptic neuron)",
    )


def ottt_trace_step(
    presynaptic: torch.Tensor,
    trace: OTTTTrace,
    tau_syn_inv: torch.Tensor,
    tau_mem_inv: torch.Tensor,
    dt: float = 0.001,
) -> OTTTTrace:
    r"""One step of the presynaptic trace (module docstring):
    :math:`j \leftarrow (1 - c) j + s`, :math:`\hat a \leftarrow (1 - a)\hat a + j`.

    Parameters:
        presynaptic (torch.Tensor): :math:`s^t`, the input of the synapse layer
        trace (OTTTTrace): the trace before the step (zeros at rest), shape of
            ``presynaptic``
        tau_syn_inv, tau_mem_inv (torch.Tensor): the postsynaptic neurons' inverse time
            constants (1/s; scalars)
        dt (float): time step (s)

    Returns:
        The new :class:`OTTTTrace`.
    """
    c = _decay("tau_syn_inv", tau_syn_inv, dt, presynaptic)
    a = _decay("tau_mem_inv", tau_mem_inv, dt, presynaptic)
    j = (1 - c) * trace.j + presynaptic
    return OTTTTrace(j=j, a=(1 - a) * trace.a + j)


def ottt_gradient(grad_current: torch.Tensor, trace: torch.Tensor) -> torch.Tensor:
    r"""The step's weight gradient :math:`g_I^t \otimes \hat a^t`, summed over the batch.

    Parameters:
        grad_current (torch.Tensor): :math:`\partial L^t/\partial I^t`, ``(batch, outputs)``
        trace (torch.Tensor): :math:`\hat a^t`, ``(batch, inputs)``

    Returns:
        ``(outputs, inputs)``, the shape of a ``torch.nn.Linear`` weight.
    """
    if (
        grad_current.dim() != 2
        or trace.dim() != 2
        or grad_current.shape[0] != trace.shape[0]
    ):
        raise ValueError(
            "grad_current and trace must be (batch, outputs) and (batch, inputs), got "
            f"{tuple(grad_current.shape)} and {tuple(trace.shape)}"
        )
    return grad_current.t() @ trace
