"""Helpers for modules that carry a state between calls.

Norse 1.1's import path of :func:`_is_module_stateful`; the function lives with the
neuron modules (:func:`norse.torch.module.snn.is_module_stateful`).
"""

from norse.torch.module.snn import is_module_stateful

#: Norse 1.1's name of :func:`norse.torch.module.snn.is_module_stateful`.
_is_module_stateful = is_module_stateful
