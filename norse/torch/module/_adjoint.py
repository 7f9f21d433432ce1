"""Selection of adjoint (EventProp) step functions in the neuron modules.

A model module that offers adjoint gradients puts :class:`AdjointSelection` before its
generic form (``class LIFCell(AdjointSelection, SNNCell)``) and names its adjoint step
functions. The module then runs them instead of its surrogate-gradient step whenever the
parameters' ``method`` (found at :attr:`~AdjointSelection.method_path`) is ``"adjoint"``,
or its ``adjoint`` flag is set (the LSNN modules' Norse 1.1 argument). The choice follows
later assignments to ``module.p``. Fused kernels are never used for adjoint steps.
"""

from typing import Callable, Optional, Sequence, Tuple

import torch


class AdjointSelection:
    """Mixin for the generic forms of :mod:`.snn` (see the module docstring)."""

    #: ``"adjoint"`` passes parameter validation (as ``"super"`` would).
    extra_methods: Sequence[str] = ("adjoint",)
    #: The adjoint step function for dense input (a ``staticmethod``).
    adjoint_activation: Optional[Callable] = None
    #: The adjoint step function for sparse input, if any (a ``staticmethod``).
    adjoint_activation_sparse: Optional[Callable] = None
    #: Attribute path of ``method`` in the parameters, e.g. ``("lif", "method")``.
    method_path: Tuple[str, ...] = ("method",)
    #: Use the adjoint steps whatever the method (set by ``adjoint=True``).
    adjoint: bool = False

    def _set_neuron_parameters(self, p) -> None:
        super()._set_neuron_parameters(p)
        method = p
        for part in self.method_path:
            method = getattr(method, part, None)
        self.__dict__["_method_is_adjoint"] = method == "adjoint"

    @property
    def uses_adjoint(self) -> bool:
        """Whether the module runs the adjoint step functions."""
        return bool(self.adjoint or self.__dict__.get("_method_is_adjoint", False))

    def _activation_for(self, input_tensor: torch.Tensor) -> Callable:
        if not self.uses_adjoint:
            return super()._activation_for(input_tensor)
        if input_tensor.is_sparse and self.adjoint_activation_sparse is not None:
            return self.adjoint_activation_sparse
        return self.adjoint_activation
