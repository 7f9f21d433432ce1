r"""Integer-only simulation of a quantised network.

:func:`to_integer` turns the fake-quantised ``SequentialState`` of
:func:`~.convert.quantize` into an :class:`IntegerNetwork` whose tensors are all integers
(int64 on the CPU, holding the narrower hardware words):

* synapses: ``acc = W_int * x_int + B_int`` (int8 or narrower weights, a 32-bit
  accumulator: :func:`to_integer` checks the bound from the weights), then
  ``y = sat(round_shift(acc * M, r))`` into the state format of the next layer;
* LIF / LI neurons: the state equations of :mod:`.neurons` with the products
  ``A * D`` rounded by a right shift of ``decay_bits`` (half to even), saturation to
  ``state_bits``, an integer threshold comparison and reset;
* max pooling, flattening: on the integers directly.

It reproduces the fake-quantised model spike for spike: every layer's output equals the
float model's output divided by its scale. The input is converted once at the boundary
(:meth:`IntegerNetwork.quantize_input`, the rounding of the float model's input
quantiser); the output is an integer tensor (spikes, or voltages in units of the last
layer's least significant bit, :attr:`IntegerNetwork.output_format`).
"""

import copy
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from norse.torch.functional.leaky_integrator import LIState
from norse.torch.functional.lif import LIFFeedForwardState
from norse.torch.module.lift import Lift
from norse.torch.quantization.fixed_point import SPIKES, FixedPoint, round_shift
from norse.torch.quantization.layers import (
    ACCUMULATOR_BITS,
    SHAPE_LAYERS,
    _QuantSynapse,
)
from norse.torch.quantization.neurons import _QuantNeuron

__all__ = ["IntegerNetwork", "IntegerSynapse", "IntegerNeuron", "to_integer"]


def _check_integer(x: torch.Tensor, where: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.is_floating_point() or x.is_complex():
        kind = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{where} takes an integer tensor, got {kind}")
    return x.to(torch.int64)


class IntegerSynapse(torch.nn.Module):
    """The integer form of a quantised ``Linear``/``Conv`` layer.

    Buffers (int64): ``weight`` ``W_int``, ``bias`` ``B_int`` (accumulator units),
    ``multiplier`` ``M`` and ``shift`` ``r`` per output channel. Input: integers in the
    input format; output: ``sat(round_shift((W_int * x + B_int) * M, r))`` in the
    output format. Any leading (time, batch) dimensions are kept.
    """

    def __init__(self, layer: _QuantSynapse, where: str = "synapse"):
        super().__init__()
        ints = layer.integer_parameters()
        self.input_format: FixedPoint = layer.input_format
        self.output_format: FixedPoint = layer.output_format
        bound = layer.accumulator_bound() + int(ints["bias"].abs().max().item())
        if bound >= 2 ** (ACCUMULATOR_BITS - 1):
            raise ValueError(
                f"{where}: the accumulator can reach {bound}, beyond the "
                f"{ACCUMULATOR_BITS}-bit accumulator; use fewer input bits or smaller "
                "weights"
            )
        self.spatial_dims = layer.spatial_dims
        self.conv_args: Tuple[Any, ...] = ()
        if self.spatial_dims:
            self.conv_args = (layer.stride, layer.padding, layer.dilation, layer.groups)
        self.register_buffer("weight", ints["weight"])
        self.register_buffer("bias", ints["bias"])
        self.register_buffer("multiplier", ints["multiplier"])
        self.register_buffer("shift", ints["shift"])

    def extra_repr(self) -> str:
        return (
            f"weight={tuple(self.weight.shape)}, input_format={self.input_format}, "
            f"output_format={self.output_format}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_integer(x, "IntegerSynapse")
        view = (-1,) + (1,) * self.spatial_dims
        if self.spatial_dims == 0:
            acc = F.linear(x, self.weight)
        else:
            sample = self.spatial_dims + 1
            leading = x.shape[:-sample]
            conv = F.conv1d if self.spatial_dims == 1 else F.conv2d
            acc = conv(
                x.reshape(-1, *x.shape[-sample:]), self.weight, None, *self.conv_args
            )
            acc = acc.reshape(*leading, *acc.shape[1:])
        acc = acc + self.bias.view(view)
        y = round_shift(acc * self.multiplier.view(view), self.shift.view(view))
        return y.clamp(self.output_format.qmin, self.output_format.qmax)


class IntegerNeuron(torch.nn.Module):
    r"""The integer form of a quantised LIF or LI layer (cell or time module).

    With ``sat`` the saturation to ``state_bits`` and ``rs`` the rounding right shift
    by ``decay_bits``:
    ``i_j = sat(i + x)``, ``v_d = sat(v + rs(A_mem ((V_leak - v) + i_j)))``,
    ``i_d = sat(i_j - rs(A_syn i_j))``; LIF: ``z = v_d > V_th``,
    ``v = V_reset if z else v_d``, output ``z``; LI: output ``v_d``.
    """

    def __init__(self, layer: _QuantNeuron, time_first: bool):
        super().__init__()
        self.spiking = layer.spiking
        self.time_first = time_first
        self.format: FixedPoint = layer.format
        self.decay_bits = layer.decay_bits
        for name, value in layer.integer_parameters().items():
            self.register_buffer(name, value)

    def extra_repr(self) -> str:
        kind = "LIF" if self.spiking else "LI"
        return (
            f"{kind}, format={self.format}, decay_bits={self.decay_bits}, "
            f"time_first={self.time_first}"
        )

    def _sat(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(self.format.qmin, self.format.qmax)

    def _step(
        self, x: torch.Tensor, state: Optional[NamedTuple]
    ) -> Tuple[torch.Tensor, NamedTuple]:
        x = self._sat(x)
        if state is None:
            v = torch.zeros_like(x) + self.v_leak
            i = torch.zeros_like(x)
        else:
            v, i = state.v, state.i
        i_jump = self._sat(i + x)
        v_dec = self._sat(
            v
            + round_shift(
                self.decay_mem * ((self.v_leak - v) + i_jump), self.decay_bits
            )
        )
        i_dec = self._sat(
            i_jump - round_shift(self.decay_syn * i_jump, self.decay_bits)
        )
        if not self.spiking:
            return v_dec, LIState(v_dec, i_dec)
        z = v_dec > self.v_th
        v_new = torch.where(z, self.v_reset, v_dec)
        return z.long(), LIFFeedForwardState(v_new, i_dec)

    def forward(
        self, x: torch.Tensor, state: Optional[NamedTuple] = None
    ) -> Tuple[torch.Tensor, NamedTuple]:
        x = _check_integer(x, "IntegerNeuron")
        if not self.time_first:
            return self._step(x, state)
        outputs = []
        for step in x:
            output, state = self._step(step, state)
            outputs.append(output)
        return torch.stack(outputs), state


class _Stateless(torch.nn.Module):
    """A shape layer (pooling, flattening) applied to integers; ``lifted`` folds the
    time dimension into the batch as ``Lift`` does."""

    def __init__(self, layer: torch.nn.Module, lifted: bool):
        super().__init__()
        self.layer = copy.deepcopy(layer)
        self.lifted = lifted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.lifted:
            return self.layer(x)
        output = self.layer(x.flatten(0, 1))
        return output.reshape(x.shape[0], x.shape[1], *output.shape[1:])


class IntegerNetwork(torch.nn.Module):
    """A chain of integer layers that runs as the quantised ``SequentialState`` it
    came from: ``forward(x, state=None)`` returns ``(output, states)`` (one state entry
    per layer, ``None`` for stateless ones), or every layer's output with
    ``return_hidden=True``.

    ``x`` is a float tensor (converted with :meth:`quantize_input`) or an integer tensor
    already in :attr:`input_format`. Outputs are int64 tensors; :meth:`to_float` gives
    the values of the last layer's outputs, :attr:`formats` the format of every layer's
    output (the float model's hidden output ``k`` equals
    ``hidden[k] * formats[k].scale``).
    """

    def __init__(
        self,
        layers: Sequence[torch.nn.Module],
        formats: Sequence[FixedPoint],
        input_format: FixedPoint,
        return_hidden: bool = False,
    ):
        super().__init__()
        if len(formats) != len(layers) or not layers:
            raise ValueError("formats must hold one FixedPoint per layer")
        self.layers = torch.nn.ModuleList(layers)
        #: The format of every layer's output (``SPIKES`` after LIF layers).
        self.formats: List[FixedPoint] = list(formats)
        self.input_format = input_format
        self.output_format = self.formats[-1]
        self.return_hidden = return_hidden

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """The integers of ``x`` in the input format (round half to even, saturate)."""
        return self.input_format.to_integer(x)

    def to_float(self, output: torch.Tensor) -> torch.Tensor:
        """The values of integer outputs of the last layer."""
        return self.output_format.from_integer(output)

    def forward(
        self, x: torch.Tensor, state: Optional[List[Any]] = None
    ) -> Tuple[Any, List[Any]]:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.is_floating_point():
            x = self.quantize_input(x)
        states: List[Any] = [None] * len(self.layers) if state is None else list(state)
        if len(states) != len(self.layers):
            raise ValueError(
                f"state must hold one entry per layer ({len(self.layers)}), got "
                f"{len(states)}"
            )
        hidden = []
        for index, layer in enumerate(self.layers):
            if isinstance(layer, IntegerNeuron):
                x, states[index] = layer(x, states[index])
            else:
                x = layer(x)
            hidden.append(x)
        return (hidden if self.return_hidden else x), states


def to_integer(model: torch.nn.Module) -> IntegerNetwork:
    """The :class:`IntegerNetwork` of a network returned by
    :func:`~.convert.quantize` (with its current weights and formats).

    Raises:
        ValueError: for layers with no integer form, or an accumulator that could
            exceed 32 bits.
    """
    if not isinstance(model, torch.nn.Sequential):
        raise TypeError(
            "model must be the SequentialState returned by quantize(), got "
            f"{type(model).__name__}"
        )
    layers: List[torch.nn.Module] = []
    formats: List[FixedPoint] = []
    input_format: Optional[FixedPoint] = None
    current: Optional[FixedPoint] = None
    for index, module in enumerate(model):
        lifted = isinstance(module, Lift)
        inner = module.lifted_module if lifted else module
        where = f"layer {index} ({type(inner).__name__})"
        if (
            isinstance(inner, (_QuantSynapse, _QuantNeuron))
            and not inner.quantize_state
        ):
            raise ValueError(
                f"{where} runs without state quantisation: "
                "set_state_quantization(model, True) first"
            )
        if isinstance(inner, _QuantSynapse):
            layers.append(IntegerSynapse(inner, where))
            input_format = input_format or inner.input_format
            current = inner.output_format
        elif isinstance(inner, _QuantNeuron):
            layers.append(IntegerNeuron(inner, inner.time_first or lifted))
            input_format = input_format or inner.format
            current = SPIKES if inner.spiking else inner.format
        elif isinstance(inner, SHAPE_LAYERS):
            if current is None:
                raise ValueError(
                    f"{where}: the network must start with a quantised layer"
                )
            layers.append(_Stateless(inner, lifted))
        else:
            raise ValueError(
                f"to_integer cannot convert {where}: convert the float network with "
                "quantize() first"
            )
        formats.append(current)
    if input_format is None:
        raise ValueError("model has no quantised layer")
    return IntegerNetwork(layers, formats, input_format)
