"""Quantisation-aware training and integer inference of spiking networks.

* :func:`quantize` turns a float chain (``SequentialState``/``Sequential``/``Lift`` of
  ``Linear``/``Conv`` layers and ``LIF``/``LI`` neurons) into a fake-quantised copy:
  integer weights (int8, int4..., per channel or per tensor), fixed-point neuron states
  and thresholds, dyadic decays, straight-through gradients (:mod:`.layers`,
  :mod:`.neurons`, :mod:`.convert`);
* :func:`to_integer` builds the integer-only simulation of that network, which gives the
  same spikes, step for step (:mod:`.integer`);
* ``norse.torch.to_nir`` exports a quantised network with integer weights and their
  scales (``Affine``/``Conv`` nodes with integer arrays followed by ``Scale`` nodes).

The fixed-point formats and why the float and integer arithmetic agree exactly:
:mod:`.fixed_point`; the user guide: ``docs/quantization.md``.
"""

from norse.torch.quantization.convert import (
    QuantizationConfig,
    fold_batch_norm,
    quantize,
    quantized_layers,
    set_state_quantization,
)
from norse.torch.quantization.fixed_point import (
    SPIKES,
    FixedPoint,
    dyadic_parts,
    dyadic_round,
    round_shift,
)
from norse.torch.quantization.integer import (
    IntegerNetwork,
    IntegerNeuron,
    IntegerSynapse,
    to_integer,
)
from norse.torch.quantization.layers import QuantConv1d, QuantConv2d, QuantLinear
from norse.torch.quantization.neurons import (
    QuantLI,
    QuantLICell,
    QuantLIF,
    QuantLIFCell,
)

__all__ = [
    "FixedPoint",
    "SPIKES",
    "QuantizationConfig",
    "quantize",
    "fold_batch_norm",
    "set_state_quantization",
    "quantized_layers",
    "to_integer",
    "IntegerNetwork",
    "IntegerNeuron",
    "IntegerSynapse",
    "QuantLinear",
    "QuantConv1d",
    "QuantConv2d",
    "QuantLIF",
    "QuantLIFCell",
    "QuantLI",
    "QuantLICell",
    "dyadic_round",
    "dyadic_parts",
    "round_shift",
]
