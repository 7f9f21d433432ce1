"""Conversion of a float network into a fake-quantised one.

:func:`quantize` takes a chain (``SequentialState``, ``torch.nn.Sequential``, ``Lift``
of either, nested) of

* synapses ``Linear``, ``Conv1d``, ``Conv2d`` (zero padding), each optionally followed by
  a ``BatchNorm1d``/``BatchNorm2d`` that is folded into it (its running statistics),
* neuron layers ``LIF``, ``LIFCell``, ``LI``, ``LICell``,
* shape layers ``Flatten``, ``Unflatten``, ``MaxPool1d``, ``MaxPool2d``, ``Identity``,

every synapse feeding a neuron layer (through shape layers), and returns a
``SequentialState`` of the same layers with :class:`~.layers.QuantLinear` /
:class:`~.layers.QuantConv2d`... and :class:`~.neurons.QuantLIF`... in their places
(lifted layers stay lifted). Calibration data run through the network set the
fixed-point formats that the configuration leaves open: the state format of every neuron
layer (from the largest magnitude of its input current, current and voltage, plus
``headroom_bits``) and the format of the network's input.
"""

import copy
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

import torch

from norse.torch.module.leaky_integrator import LI, LICell
from norse.torch.module.lif import LIF, LIFCell
from norse.torch.module.lift import Lift
from norse.torch.module.sequential import SequentialState
from norse.torch.quantization.fixed_point import SPIKES, FixedPoint, _check_int
from norse.torch.quantization.layers import (
    SHAPE_LAYERS,
    QuantConv1d,
    QuantConv2d,
    QuantLinear,
    _QuantSynapse,
)
from norse.torch.quantization.neurons import (
    QuantLI,
    QuantLICell,
    QuantLIF,
    QuantLIFCell,
    _QuantNeuron,
)

__all__ = [
    "QuantizationConfig",
    "quantize",
    "fold_batch_norm",
    "set_state_quantization",
    "quantized_layers",
]

_SYNAPSES = {
    torch.nn.Linear: QuantLinear,
    torch.nn.Conv1d: QuantConv1d,
    torch.nn.Conv2d: QuantConv2d,
}
_NEURONS = {LIF: QuantLIF, LIFCell: QuantLIFCell, LI: QuantLI, LICell: QuantLICell}
_BATCH_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)


@dataclass(frozen=True)
class QuantizationConfig:
    """How :func:`quantize` quantises a network.

    Parameters:
        weight_bits (int): bits of the symmetric integer weights, 2 to 8 (int8: 8,
            int4: 4; the range is ``±(2**(weight_bits-1) - 1)``)
        per_channel (bool): one weight scale per output channel (True) or one per layer
        scale_bits (int): significant bits of the weight scales (dyadic; the integer
            requantisation multiplier has as many bits); at most ``25 - weight_bits``
        state_bits (int): bits of the neuron state, thresholds and other voltages
            (2 to 24)
        state_frac_bits (Optional[int]): their fractional bits; None: calibrated per
            neuron layer
        decay_bits (int): fractional bits ``d`` of the decay factors ``A * 2**-d``
        input_bits (int): bits of the network's input when its format is calibrated
        input_format (Optional[FixedPoint]): the format of the network's input; None:
            calibrated (``input_bits`` bits, unsigned when no input was negative)
        headroom_bits (int): spare integer bits of calibrated state formats, for values
            beyond those seen in the calibration data
    """

    weight_bits: int = 8
    per_channel: bool = True
    scale_bits: int = 16
    state_bits: int = 16
    state_frac_bits: Optional[int] = None
    decay_bits: int = 12
    input_bits: int = 8
    input_format: Optional[FixedPoint] = None
    headroom_bits: int = 1

    def __post_init__(self) -> None:
        _check_int(self.weight_bits, "weight_bits", 2, 8)
        _check_int(self.scale_bits, "scale_bits", 1, 25 - self.weight_bits)
        _check_int(self.state_bits, "state_bits", 2, 24)
        _check_int(self.decay_bits, "decay_bits", 0, 30)
        _check_int(self.input_bits, "input_bits", 1, 24)
        _check_int(self.headroom_bits, "headroom_bits", 0, 16)
        if not isinstance(self.per_channel, bool):
            raise TypeError(f"per_channel must be a bool, got {self.per_channel!r}")
        if self.state_frac_bits is not None:
            FixedPoint(self.state_bits, self.state_frac_bits)
        if self.input_format is not None and not isinstance(
            self.input_format, FixedPoint
        ):
            raise TypeError(
                "input_format must be a FixedPoint or None, got "
                f"{type(self.input_format).__name__}"
            )


def fold_batch_norm(
    layer: torch.nn.Module, batch_norm: torch.nn.Module, gain: float = 1.0
) -> torch.nn.Module:
    r"""A copy of ``layer`` (``Linear``/``Conv``) that computes
    ``gain * batch_norm(layer(x))`` with the running statistics:

    .. math::
        W' = g\, \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}} W, \qquad
        b' = g \left(\frac{\gamma (b - \mu)}{\sqrt{\sigma^2 + \epsilon}} + \beta\right)

    per output channel (:math:`\gamma = 1, \beta = 0` without affine parameters).
    """
    if not isinstance(layer, tuple(_SYNAPSES)):
        raise TypeError(
            f"layer must be a Linear, Conv1d or Conv2d, got {type(layer).__name__}"
        )
    if not isinstance(batch_norm, torch.nn.modules.batchnorm._BatchNorm):
        raise TypeError(
            f"batch_norm must be a BatchNorm layer, got {type(batch_norm).__name__}"
        )
    if batch_norm.running_mean is None:
        raise ValueError(
            "batch_norm has no running statistics (track_running_stats=False); only "
            "its running mean and variance can be folded"
        )
    channels = layer.weight.shape[0]
    if batch_norm.num_features != channels:
        raise ValueError(
            f"batch_norm has {batch_norm.num_features} features, but layer has "
            f"{channels} output channels"
        )
    if isinstance(gain, bool) or not isinstance(gain, (int, float)):
        raise TypeError(f"gain must be a float, got {gain!r}")
    folded = copy.deepcopy(layer)
    with torch.no_grad():
        factor = torch.rsqrt(batch_norm.running_var.double() + batch_norm.eps)
        shift = -batch_norm.running_mean.double() * factor
        if batch_norm.affine:
            factor = factor * batch_norm.weight.double()
            shift = shift * batch_norm.weight.double() + batch_norm.bias.double()
        bias = torch.zeros(channels, dtype=torch.float64, device=factor.device)
        if layer.bias is not None:
            bias = layer.bias.double()
        shape = (-1,) + (1,) * (layer.weight.dim() - 1)
        weight = layer.weight.double() * (gain * factor).view(shape)
        folded.weight.copy_(weight.to(layer.weight.dtype))
        new_bias = gain * (bias * factor + shift)
        folded.bias = torch.nn.Parameter(new_bias.to(layer.weight.dtype))
    return folded


def _flatten(module: torch.nn.Module, lifted: bool) -> Iterator[Tuple[object, bool]]:
    """The layers of a chain in order, each with whether a ``Lift`` applies it."""
    if isinstance(module, torch.nn.Sequential):
        for child in module:
            yield from _flatten(child, lifted)
    elif isinstance(module, Lift):
        yield from _flatten(module.lifted_module, True)
    else:
        yield module, lifted


def _unlift(module: torch.nn.Module) -> torch.nn.Module:
    return module.lifted_module if isinstance(module, Lift) else module


def quantized_layers(model: torch.nn.Module) -> List[torch.nn.Module]:
    """The quantised synapses and neuron layers of ``model``, in order."""
    return [m for m in model.modules() if isinstance(m, (_QuantSynapse, _QuantNeuron))]


def set_state_quantization(model: torch.nn.Module, enabled: bool) -> None:
    """Turns the rounding and saturation of the currents and neuron states of every
    quantised layer of ``model`` on or off (weights, decays and voltages stay
    quantised): off, the network computes what its NIR graph describes."""
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {enabled!r}")
    for layer in quantized_layers(model):
        layer.quantize_state = enabled


def _convert_layers(
    model: torch.nn.Module, config: QuantizationConfig
) -> List[torch.nn.Module]:
    items = list(_flatten(model, False))
    layers: List[torch.nn.Module] = []
    index = 0
    while index < len(items):
        module, lifted = items[index]
        where = f"layer {index} ({type(module).__name__})"
        if type(module) in _SYNAPSES:
            if index + 1 < len(items) and isinstance(items[index + 1][0], _BATCH_NORMS):
                module = fold_batch_norm(module, items[index + 1][0])
                index += 1
            quant = _SYNAPSES[type(module)](
                module, config.weight_bits, config.per_channel, config.scale_bits
            )
            layers.append(Lift(quant, fold=True) if lifted else quant)
        elif type(module) in _NEURONS:
            quant = _NEURONS[type(module)](
                module.p,
                dt=module.dt,
                state_bits=config.state_bits,
                frac_bits=config.state_frac_bits,
                decay_bits=config.decay_bits,
            )
            layers.append(Lift(quant) if lifted else quant)
        elif isinstance(module, SHAPE_LAYERS):
            if getattr(module, "return_indices", False):
                raise ValueError(
                    f"quantize cannot convert {where}: return_indices=True"
                )
            layer = copy.deepcopy(module)
            layers.append(Lift(layer) if lifted else layer)
        elif isinstance(module, _BATCH_NORMS):
            raise ValueError(
                f"quantize cannot convert {where}: a BatchNorm is folded into the "
                "Linear/Conv layer right before it, and there is none"
            )
        else:
            raise ValueError(
                f"quantize cannot convert {where}: supported are Linear, Conv1d, Conv2d "
                "(with a BatchNorm after them), LIF, LIFCell, LI, LICell, Flatten, "
                "Unflatten, MaxPool1d, MaxPool2d and Identity in SequentialState, "
                "Sequential or Lift chains"
            )
        index += 1
    return layers


def _runs_stepwise(layers: List[torch.nn.Module]) -> bool:
    """Whether the chain is called once per time step (it has neuron cells that no
    ``Lift`` applies over time)."""
    return any(
        isinstance(layer, _QuantNeuron) and not layer.time_first for layer in layers
    )


def _calibrate(model: torch.nn.Module, data: torch.Tensor, stepwise: bool) -> None:
    layers = quantized_layers(model)
    for layer in layers:
        layer.calibrating = True
    try:
        with torch.no_grad():
            if not stepwise:
                model(data)
            else:
                state = None
                for step in data:
                    _, state = model(step, state)
    finally:
        for layer in layers:
            layer.calibrating = False


def _assign_formats(
    layers: List[torch.nn.Module], config: QuantizationConfig, calibrated: bool
) -> None:
    """Sets the state format of every neuron layer and the input and output formats of
    every synapse, in the order of the chain."""
    units = [_unlift(layer) for layer in layers]
    for unit in units:
        if isinstance(unit, _QuantNeuron) and unit.frac_bits is None:
            if not calibrated:
                raise ValueError(
                    "the state formats are not set: pass calibration_data or "
                    "QuantizationConfig(state_frac_bits=...)"
                )
            unit.calibrate_format(config.headroom_bits)
    current: Optional[FixedPoint] = None  # the format of the running signal
    for index, unit in enumerate(units):
        if isinstance(unit, _QuantSynapse):
            following = [
                u for u in units[index + 1 :] if not isinstance(u, SHAPE_LAYERS)
            ]
            if not following or not isinstance(following[0], _QuantNeuron):
                raise ValueError(
                    f"layer {index} ({type(unit).__name__}) must feed a LIF or LI layer "
                    "(through shape layers only): its output is the neuron's current"
                )
            if current is None:
                current = config.input_format or _input_format(unit, config, calibrated)
            unit.input_format = current
            unit.output_format = following[0].format
            unit.weight_scales()  # fills the weight_scale buffer
            current = following[0].format
        elif isinstance(unit, _QuantNeuron):
            current = SPIKES if unit.spiking else unit.format


def _input_format(
    synapse: _QuantSynapse, config: QuantizationConfig, calibrated: bool
) -> FixedPoint:
    observer = synapse.input_observer
    if not calibrated or observer.min_val.numel() == 0:
        raise ValueError(
            "the input format is not set: pass calibration_data or "
            "QuantizationConfig(input_format=FixedPoint(...))"
        )
    low, high = observer.min_val.item(), observer.max_val.item()
    signed = low < 0
    return FixedPoint.calibrated(
        config.input_bits, max(abs(low), abs(high)), signed=signed
    )


def quantize(
    model: torch.nn.Module,
    config: Optional[QuantizationConfig] = None,
    calibration_data: Optional[torch.Tensor] = None,
) -> SequentialState:
    """A fake-quantised copy of the float ``model`` (see the module doc), ready for
    quantisation-aware training and for :func:`~.integer.to_integer`.

    Parameters:
        model (torch.nn.Module): a chain of the supported layers (the model itself is
            not changed; its BatchNorm layers are folded with their running statistics)
        config (QuantizationConfig): bit widths and formats (default: int8 per-channel
            weights, 16-bit state, 12-bit decays, calibrated formats)
        calibration_data (Optional[torch.Tensor]): inputs of the model, used to choose
            the formats the configuration leaves open: one input batch of a network
            that runs over time (time modules, ``Lift``), a sequence ``(T, batch, ...)``
            of inputs of a network of cells (called once per step; the calibration
            runs it step by step)

    Returns:
        A ``SequentialState`` (in ``model``'s training mode) that is called as
        ``model`` is and returns ``(output, states)``.

    Raises:
        ValueError: naming the layer that cannot be quantised, or a format that is
            neither configured nor calibrated.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    config = QuantizationConfig() if config is None else config
    if not isinstance(config, QuantizationConfig):
        raise TypeError(
            f"config must be a QuantizationConfig, got {type(config).__name__}"
        )
    if calibration_data is not None and not isinstance(calibration_data, torch.Tensor):
        raise TypeError(
            "calibration_data must be a torch.Tensor, got "
            f"{type(calibration_data).__name__}"
        )
    layers = _convert_layers(model, config)
    if not any(isinstance(_unlift(layer), _QuantNeuron) for layer in layers):
        raise ValueError("model has no LIF or LI layer to quantise")
    quantized = SequentialState(*layers)
    parameter = next(model.parameters(), None)
    if parameter is not None:
        quantized.to(parameter.device)
    if calibration_data is not None:
        _calibrate(quantized, calibration_data, _runs_stepwise(layers))
    _assign_formats(layers, config, calibration_data is not None)
    return quantized.train(model.training)
