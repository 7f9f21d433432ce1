r"""Adjoint (EventProp) gradients of spiking neurons.

The step functions here run the same forward dynamics as their models in
:mod:`norse.torch.functional` with a Heaviside threshold, but their backward pass solves the
*adjoint* equations of the neuron backwards in time (Wunderlich & Pehle, "Event-based
backpropagation can compute exact gradients for spiking neural networks", Scientific
Reports 11, 2021). Gradients then flow

* between spikes through the exact transpose of the Euler step (so, in a window without
  spikes, they equal backpropagation through time through the surrogate-free dynamics), and
* across a spike through the jump conditions of the adjoint state, which account for the
  shift of the spike *time* with the state — no surrogate gradient is involved.

======================================  ======================================================
model                                   step functions
======================================  ======================================================
LIF (:mod:`.lif_adjoint`)               ``lif_feed_forward_adjoint_step``, ``lif_adjoint_step``
                                        and their ``_sparse`` forms
refractory LIF (:mod:`.lif_refrac_adjoint`)  ``lif_refrac_feed_forward_adjoint_step``,
                                        ``lif_refrac_adjoint_step`` (+ ``_sparse``)
LSNN (:mod:`.lsnn_adjoint`)             ``lsnn_feed_forward_adjoint_step``, ``lsnn_adjoint_step``
multi-compartment LIF                   ``lif_mc_adjoint_step`` (the LIF adjoint and the
(:mod:`.lif_mc_adjoint`)                transpose of the linear coupling)
refractory multi-compartment LIF        ``lif_mc_refrac_adjoint`` (EventProp's jump
(:mod:`.lif_mc_refrac_adjoint`)         condition through the coupling; the release time
                                        in the gradient of ``rho``)
======================================  ======================================================

The modules select them with ``p.method = "adjoint"`` (``LIFCell``, ``LIF``,
``LIFRecurrentCell``, ``LIFRecurrent``, the refractory modules via ``p.lif.method``) or
``adjoint=True`` (the LSNN modules, as in Norse 1.1). Neuron parameters receive no
gradient in the adjoint backward pass.
"""
