"""Helpers for modules that carry a state between calls."""

import inspect

import torch

from norse.torch.module.snn import _NeuronModule


def _is_module_stateful(module: torch.nn.Module) -> bool:
    """Whether ``module`` is called as ``module(input, state)`` and returns ``(output, state)``.

    Norse 1.1's rule is "its ``forward`` has a ``state`` argument, or it is a
    ``torch.nn.RNNBase``". We keep that rule and make it robust:

    * a ``torch.compile`` wrapper is judged by the module it wraps (its own ``forward``
      takes ``*args, **kwargs``, which would hide the ``state`` argument);
    * a module with a boolean ``is_stateful`` attribute (e.g. :class:`.Lift`, which is
      stateful exactly when the module it lifts is) decides for itself;
    * every neuron module of this library (a subclass of ``_NeuronModule``) is stateful
      whatever its ``forward`` looks like.
    """
    module = getattr(module, "_orig_mod", module)
    declared = getattr(module, "is_stateful", None)
    if isinstance(declared, bool):
        return declared
    if isinstance(module, (_NeuronModule, torch.nn.RNNBase)):
        return True
    try:
        signature = inspect.signature(module.forward)
    except (TypeError, ValueError):  # a builtin or C-implemented forward
        return False
    return "state" in signature.parameters
