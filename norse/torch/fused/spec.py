"""Constants shared by the fused kernels (CPU and CUDA): model flags and surrogate codes.

A model of the LIF family is described by a combination of flags; the hand-written
CUDA kernels (:mod:`.cuda`) implement every combination used in :mod:`.neurons`, the
recurrent CPU kernels (:mod:`.cpu_recurrent`, equations in :mod:`.cpu`) those of LIF
and LSNN.
"""

#: A synaptic current ``i`` that jumps by the input and decays (LIF, LI).
SYN = 1
#: A leaky membrane ``v + dt * tau_mem_inv * (...)`` (all but IAF).
LEAK = 2
#: A threshold with spikes as output and a reset (LIF, LIFBox, IAF).
SPIKE = 4
#: Reset by subtracting the threshold (``reset_subtract``) instead of to ``v_reset``.
SUBTRACT = 8
#: The box-LIF order of the leak term, ``(input + v_leak) - v``.
BOX = 16
#: LSNN: an adaptive threshold ``b`` (state) that decays to ``v_th`` and jumps by ``beta``
#: with every spike; the input reaches the current after its decay (with SYN, LEAK,
#: SPIKE).
ADAPT = 32

#: Surrogate gradient methods with a hand-written fused backward, by kernel code.
#: ``heaviside`` lets no gradient through the spikes. The stochastic methods
#: (``logistic``, ``circ_dist``) are not here: they run the reference loop.
SURROGATE_CODES = {
    "heaviside": 0,
    "super": 1,
    "triangle": 2,
    "tanh": 3,
    "circ": 4,
    "heavi_erfc": 5,
}

#: Rows of the per-neuron parameter gradient returned by the backward kernels.
PARAMETER_ROWS = ("a_mem", "a_syn", "v_leak", "v_th", "v_reset", "a_adapt", "beta")
#: State fields of the kernels; a model passes empty tensors for those it lacks.
STATE_FIELDS = ("v", "i", "b")
