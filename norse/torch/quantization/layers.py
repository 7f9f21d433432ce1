r"""Synapses with fake-quantised integer weights: ``QuantLinear``, ``QuantConv1d``,
``QuantConv2d``.

Weights: symmetric integers of ``weight_bits`` bits in :math:`[-(2^{w-1}-1),
2^{w-1}-1]` (int8: ±127, int4: ±7) with one scale per output channel (or per tensor),
:math:`W \approx s_w W_{int}`. The scale comes from torch's min/max observer
(``PerChannelMinMaxObserver`` / ``MinMaxObserver``, symmetric: :math:`s_w =
\max|W| / (2^{w-1}-1)`) on the current weights, rounded to ``scale_bits`` significant
bits so that it is dyadic; the weights are fake-quantised by
``torch.fake_quantize_per_channel_affine`` (straight-through gradient).

Forward pass, with the input in the fixed-point format :math:`(b_x, f_x)` (spikes: 0 or
1) and the output in the state format :math:`(b, f)` of the neuron layer it feeds:

.. math::
    \begin{align*}
        x_{int} &= Q_{x}(x) \cdot 2^{f_x} \\
        acc &= W_{int} * x_{int} + B_{int}, \qquad
            B_{int} = \operatorname{round}(b / (s_w 2^{-f_x})) \\
        y &= Q\!\left(acc \cdot s_w 2^{-f_x}\right)
    \end{align*}

:math:`acc` is the integer accumulator; :math:`s_w 2^{-f_x} 2^{f} = M 2^{-r}` is the
requantisation multiplier (an integer :math:`M` below :math:`2^{scale\_bits}` and a
shift :math:`r`), so the integer network computes :math:`y_{int} =
\operatorname{sat}(\operatorname{round\_shift}(acc \cdot M, r))`. The product
:math:`W_{int} * x_{int}` runs in float32 while its partial sums stay below
:math:`2^{24}` (checked from the weights on every call; float64 otherwise), the rest in
float64: every value is an integer times a power of two and exact.
"""

from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.ao.quantization.observer import (
    MinMaxObserver,
    PerChannelMinMaxObserver,
)

from norse.torch.quantization import _kernels
from norse.torch.quantization.fixed_point import (
    FixedPoint,
    _check_int,
    dyadic_parts,
    dyadic_round,
    mantissa_bits,
)

__all__ = ["QuantLinear", "QuantConv1d", "QuantConv2d"]

#: The accumulator is a signed 32-bit integer.
ACCUMULATOR_BITS = 32

#: The layers without parameters that quantisation and the integer network pass through
#: unchanged (they move or select values, so integers stay integers).
SHAPE_LAYERS = (
    torch.nn.Flatten,
    torch.nn.Unflatten,
    torch.nn.MaxPool1d,
    torch.nn.MaxPool2d,
    torch.nn.Identity,
)
_INT32_MAX = 2**31 - 1


class _Requantize(torch.autograd.Function):
    """``Q((acc + B_int) * multiplier)`` per output channel, computed in float64 (exact)
    and returned in ``dtype``; straight-through backward pass in the gradient's dtype.

    Static arguments ``(fmt, view, dtype)``: the output format (None: no rounding), the
    shape that puts a per-channel vector on the channel dimension, the output dtype.
    """

    @staticmethod
    def forward(ctx, acc, bias, multiplier, static):
        fmt, view, dtype = static
        mask = None
        if fmt is not None and _kernels.usable_for_requantize(acc):
            # one pass in a Numba kernel, the same float64 operations
            total, mask = _kernels.requantize(
                acc, bias, multiplier, acc.dim() - len(view),
                fmt.scale, fmt.qmin, fmt.qmax, dtype,
            )  # fmt: skip
        else:
            total = acc.to(torch.float64)
            if bias is not None:
                total = total + bias.view(view)
            total = total * multiplier.view(view)
            if fmt is not None:
                total, mask = torch.ops.aten.fake_quantize_per_tensor_affine_cachemask(
                    total, fmt.scale, 0, fmt.qmin, fmt.qmax
                )
        ctx.view, ctx.has_bias = view, bias is not None
        ctx.save_for_backward(mask, multiplier)
        return total.to(dtype)

    @staticmethod
    def backward(ctx, grad):
        mask, multiplier = ctx.saved_tensors
        if mask is not None:
            grad = grad * mask
        grad_acc = grad * multiplier.view(ctx.view).to(grad.dtype)
        grad_bias = None
        if ctx.has_bias and ctx.needs_input_grad[1]:
            shape = (multiplier.shape[0],) + (1,) * (len(ctx.view) - 1)
            grad_bias = grad_acc.sum_to_size(shape).view(-1).to(torch.float64)
        return grad_acc, grad_bias, None, None


class _QuantSynapse(torch.nn.Module):
    """Weights, bias, observers and the exact integer-valued forward pass of a copy of
    a float layer of type :attr:`kind`."""

    #: The float layer quantised (``torch.nn.Linear``, ``Conv1d`` or ``Conv2d``).
    kind: type
    #: The float layer's arguments that give its shape (kept, to build the float layer
    #: of the NIR export).
    shape_arguments: Tuple[str, ...]
    #: Dimensions of one sample without channels (0 for Linear).
    spatial_dims = 0

    def __init__(
        self,
        layer: torch.nn.Module,
        weight_bits: int = 8,
        per_channel: bool = True,
        scale_bits: int = 16,
    ):
        if not isinstance(layer, self.kind):
            raise TypeError(
                f"layer must be a torch.nn.{self.kind.__name__}, got "
                f"{type(layer).__name__}"
            )
        if getattr(layer, "padding_mode", "zeros") != "zeros":
            raise ValueError(
                f"only zero padding is quantised, got padding_mode={layer.padding_mode!r}"
            )
        super().__init__()
        weight, bias = layer.weight, layer.bias
        for name in self.shape_arguments:
            setattr(self, name, getattr(layer, name))
        _check_int(weight_bits, "weight_bits", 2, 8)
        # q * s_w must be exact in float32: (weight_bits - 1) + scale_bits <= 24
        _check_int(scale_bits, "scale_bits", 1, 25 - weight_bits)
        if not isinstance(per_channel, bool):
            raise TypeError(f"per_channel must be a bool, got {per_channel!r}")
        if not isinstance(weight, torch.Tensor) or not weight.is_floating_point():
            raise TypeError("weight must be a floating-point tensor")
        self.weight = torch.nn.Parameter(weight.detach().clone())
        if bias is None:
            self.register_parameter("bias", None)
        else:
            self.bias = torch.nn.Parameter(bias.detach().clone())
        self.weight_bits = weight_bits
        self.per_channel = per_channel
        self.scale_bits = scale_bits
        self.qmax = 2 ** (weight_bits - 1) - 1
        if per_channel:
            self.weight_observer = PerChannelMinMaxObserver(
                ch_axis=0,
                dtype=torch.qint8,
                qscheme=torch.per_channel_symmetric,
                quant_min=-self.qmax,
                quant_max=self.qmax,
            )
        else:
            self.weight_observer = MinMaxObserver(
                dtype=torch.qint8,
                qscheme=torch.per_tensor_symmetric,
                quant_min=-self.qmax,
                quant_max=self.qmax,
            )
        self.register_buffer(
            "weight_scale", torch.ones(weight.shape[0], dtype=torch.float32)
        )
        #: Format of the input (set by :func:`~.convert.quantize`).
        self.input_format: Optional[FixedPoint] = None
        #: Format of the output current: the state format of the next neuron layer.
        self.output_format: Optional[FixedPoint] = None
        self.quantize_state = True
        self.calibrating = False
        self.input_observer = MinMaxObserver()

    def extra_repr(self) -> str:
        return (
            f"weight_bits={self.weight_bits}, per_channel={self.per_channel}, "
            f"input_format={self.input_format}, output_format={self.output_format}"
        )

    # ----------------------------------------------------------------------------------
    # Weights

    def weight_scales(self) -> torch.Tensor:
        """The scale of every output channel (float32, dyadic with ``scale_bits``
        significant bits), from the observer on the current weights; also stored in
        the ``weight_scale`` buffer."""
        with torch.no_grad():
            self.weight_observer.reset_min_max_vals()
            self.weight_observer(self.weight.detach().float())
            scale, _ = self.weight_observer.calculate_qparams()
            scale = scale.to(self.weight.device).expand(self.weight.shape[0])
            scale = dyadic_round(scale, self.scale_bits).float()
            self.weight_scale.copy_(scale)
        return scale

    def _channel_view(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.view(-1, *([1] * self.spatial_dims))

    def _integer_weight(self, scale: torch.Tensor) -> torch.Tensor:
        """``W_int`` as a float tensor of the weight's dtype (straight-through)."""
        zero = torch.zeros(scale.shape, dtype=torch.int32, device=scale.device)
        fake = torch.fake_quantize_per_channel_affine(
            self.weight, scale, zero, 0, -self.qmax, self.qmax
        )
        shape = (-1,) + (1,) * (self.weight.dim() - 1)
        return fake / scale.to(fake.dtype).view(shape)

    def _multiplier(self, scale: torch.Tensor) -> torch.Tensor:
        """``s_w * 2**-f_x`` per channel (float64)."""
        return scale.to(torch.float64) * self._input_format().scale

    def _integer_bias(self, multiplier: torch.Tensor) -> Optional[torch.Tensor]:
        if self.bias is None:
            return None
        return torch.fake_quantize_per_tensor_affine(
            self.bias.to(torch.float64) / multiplier, 1.0, 0, -_INT32_MAX, _INT32_MAX
        )

    def _input_format(self) -> FixedPoint:
        if self.input_format is None or self.output_format is None:
            raise RuntimeError(
                f"{type(self).__name__} has no input/output format yet: convert the "
                "network with quantize(...)"
            )
        return self.input_format

    def accumulator_bound(self, scale: Optional[torch.Tensor] = None) -> int:
        """The largest magnitude the accumulator ``W_int * x_int`` can reach (before the
        bias): the largest row sum of ``|W_int|`` times the largest input integer."""
        scale = self.weight_scales() if scale is None else scale
        fmt = self._input_format()
        with torch.no_grad():
            row = self._integer_weight(scale).abs().flatten(1).sum(1).max().item()
        return int(row) * max(abs(fmt.qmin), abs(fmt.qmax))

    def integer_parameters(self) -> dict:
        """The integers of the layer (int64 tensors): ``weight`` (``W_int``), ``bias``
        (``B_int`` in accumulator units, zeros without bias), and the requantisation
        ``multiplier`` ``M`` and ``shift`` ``r`` per output channel, with
        ``s_w 2**-f_x 2**f = M 2**-r``."""
        with torch.no_grad():
            scale = self.weight_scales()
            multiplier = self._multiplier(scale)
            weight = torch.round(self._integer_weight(scale)).long()
            bias = self._integer_bias(multiplier)
            bias = (
                torch.zeros(weight.shape[0], dtype=torch.int64, device=weight.device)
                if bias is None
                else torch.round(bias).long()
            )
            mult, shift = dyadic_parts(multiplier * 2.0**self.output_format.frac_bits)
        return {
            "weight": weight,
            "bias": bias,
            "multiplier": mult,
            "shift": shift,
            "weight_scale": scale,
        }

    # ----------------------------------------------------------------------------------
    # Forward

    def _op(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _float_op(self, x: torch.Tensor) -> torch.Tensor:
        output = self._op(x, self.weight)
        if self.bias is not None:
            output = output + self._channel_view(self.bias)
        return output

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        """The input current of the next neuron layer, on its state grid."""
        if not isinstance(input_tensor, torch.Tensor):
            raise TypeError(
                f"input_tensor must be a torch.Tensor, got {type(input_tensor).__name__}"
            )
        if self.calibrating:
            with torch.no_grad():
                self.input_observer(input_tensor.detach().float())
            return self._float_op(input_tensor)
        fmt_in = self._input_format()
        dtype = (
            input_tensor.dtype
            if input_tensor.is_floating_point()
            else torch.get_default_dtype()
        )
        scale = self.weight_scales()
        w_int = self._integer_weight(scale)
        x_int = (
            fmt_in.fake_quantize(input_tensor.to(w_int.dtype)) * 2.0**fmt_in.frac_bits
        )
        # exact in the float type while every partial sum fits its mantissa
        with torch.no_grad():
            row = w_int.detach().abs().flatten(1).sum(1).max().item()
        bound = row * max(abs(fmt_in.qmin), abs(fmt_in.qmax))
        if bound >= 2.0 ** mantissa_bits(w_int.dtype):
            x_int, w_int = x_int.double(), w_int.double()
        acc = self._op(x_int, w_int)
        multiplier = self._multiplier(scale)
        fmt_out = self.output_format if self.quantize_state else None
        view = (-1,) + (1,) * self.spatial_dims
        return _Requantize.apply(
            acc, self._integer_bias(multiplier), multiplier, (fmt_out, view, dtype)
        )

    # ----------------------------------------------------------------------------------
    # NIR

    def _float_layer(self, weight: torch.Tensor, bias: torch.Tensor):
        """A float layer of this layer's shape with ``weight`` and ``bias``."""
        shape = {name: getattr(self, name) for name in self.shape_arguments}
        layer = self.kind(**shape, dtype=weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
        return layer

    def nir_nodes(self, shape: Tuple[int, ...], where: str, time_scale: float = 1.0):
        """Two NIR nodes: an ``Affine``/``Conv`` node with integer weights (int8) and
        biases (int32, accumulator units), then a ``Scale`` node with the
        requantisation factor ``M 2**-r`` of every output channel; the input is in
        units of the input format's least significant bit, the output in those of the
        state format. The metadata of both nodes holds the formats and integers."""
        from norse.torch.utils.export_nir import layer_node, nir_package

        nir = nir_package()
        ints = self.integer_parameters()
        layer = self._float_layer(ints["weight"].double(), ints["bias"].double())
        node, out = layer_node(layer, shape, 0, where, time_scale)
        node.weight = ints["weight"].cpu().numpy().astype(np.int8)
        node.bias = ints["bias"].cpu().numpy().astype(np.int32)
        fmt_in, fmt_out = self.input_format, self.output_format
        node.metadata = {
            "quantization": "integer weights",
            "weight_bits": self.weight_bits,
            "weight_scale": ints["weight_scale"].double().cpu().numpy(),
            "per_channel": self.per_channel,
            "input_bits": fmt_in.bits,
            "input_frac_bits": fmt_in.frac_bits,
            "input_signed": fmt_in.signed,
            "bias_units": "accumulator: weight_scale * 2**-input_frac_bits",
        }
        factor = ints["multiplier"].double() * 2.0 ** -ints["shift"].double()
        channels = factor.cpu().numpy().reshape(-1, *([1] * (len(out) - 1)))
        scale = nir.Scale(
            scale=np.broadcast_to(channels, out).copy(),
            metadata={
                "quantization": "requantisation",
                "multiplier": ints["multiplier"].cpu().numpy(),
                "shift": ints["shift"].cpu().numpy(),
                "output_bits": fmt_out.bits,
                "output_frac_bits": fmt_out.frac_bits,
                "rounding": "round_half_even(acc * multiplier / 2**shift), saturated",
            },
        )
        return [("", node), ("scale", scale)], out


class QuantLinear(_QuantSynapse):
    """A ``torch.nn.Linear`` with fake-quantised integer weights (see the module doc).

    Parameters:
        layer (torch.nn.Linear): the float layer (its weights and bias are copied)
        weight_bits (int): 2 to 8 (int8: 8, int4: 4)
        per_channel (bool): one scale per output feature (True) or per tensor
        scale_bits (int): significant bits of the weight scales

    Input ``(..., in_features)``; output ``(..., out_features)``.
    """

    kind = torch.nn.Linear
    shape_arguments = ("in_features", "out_features")

    def _op(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.linear(x, weight)


class _QuantConv(_QuantSynapse):
    shape_arguments = (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
    )
    #: Its spatial dimensions (1 or 2).
    spatial_dims: int

    def _op(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        sample = self.spatial_dims + 1
        if x.dim() < sample:
            raise ValueError(
                f"{type(self).__name__} takes (..., channels, *spatial) with "
                f"{self.spatial_dims} spatial dimensions, got shape {tuple(x.shape)}"
            )
        leading = x.shape[:-sample]
        folded = x.reshape(-1, *x.shape[-sample:])
        conv = F.conv1d if self.spatial_dims == 1 else F.conv2d
        output = conv(
            folded, weight, None, self.stride, self.padding, self.dilation, self.groups
        )
        return output.reshape(*leading, *output.shape[1:])


class QuantConv1d(_QuantConv):
    """A ``torch.nn.Conv1d`` (zero padding) with fake-quantised integer weights;
    parameters as :class:`QuantLinear`. Input ``(..., C, L)``: any leading dimensions
    (time and batch) are folded into the batch."""

    kind = torch.nn.Conv1d
    spatial_dims = 1


class QuantConv2d(_QuantConv):
    """A ``torch.nn.Conv2d`` (zero padding) with fake-quantised integer weights;
    parameters as :class:`QuantLinear`. Input ``(..., C, H, W)``: any leading dimensions
    (time and batch) are folded into the batch."""

    kind = torch.nn.Conv2d
    spatial_dims = 2
