r"""Fixed-point LIF and LI neurons for quantisation-aware training.

State format: :math:`v` and :math:`i` (and the parameters :math:`v_{th}, v_{leak},
v_{reset}`) are integers of ``state_bits`` bits times :math:`2^{-f}` (``frac_bits``
:math:`f`, one :class:`~.fixed_point.FixedPoint` per layer). Decay factors are dyadic,
:math:`a = A \cdot 2^{-d}` with :math:`A = \operatorname{round}(dt \cdot \tau^{-1}
\cdot 2^{d})` in :math:`[0, 2^d]` (``decay_bits`` :math:`d`). One step, in Norse's order
(:mod:`norse.torch.functional.lif`), with :math:`Q` the rounding (half to even) to the
state format and saturation to its range, and :math:`R` the rounding without
saturation:

.. math::
    \begin{align*}
        i_{jump} &= Q(i + x) \\
        v_{dec} &= Q\big(v + R(a_{mem} ((v_{leak} - v) + i_{jump}))\big) \\
        i_{dec} &= Q\big(i_{jump} - R(a_{syn}\, i_{jump})\big) \\
        z &= \Theta(v_{dec} - v_{th}) \\
        v_{new} &= (1 - z)\, v_{dec} + z\, v_{reset}
    \end{align*}

An LI neuron has the same current and voltage and outputs :math:`v_{dec}` instead of a
spike. In integers (:mod:`.integer`) the products are ``A * D`` followed by a rounding
right shift by :math:`d` (:func:`~.fixed_point.round_shift`).

Exactness: with :math:`L = 2^{b-1}` (``state_bits`` :math:`b`) every stored value lies in
:math:`[-L, L)`, so :math:`|(v_{leak} - v) + i_{jump}| < 3L < 2^{b+1}` and the product
with :math:`A \le 2^d` is an integer below :math:`2^{b+1+d}` times :math:`2^{-f-d}`.
The modules compute in float32 when :math:`b + d + 1 \le 24` and in float64 otherwise
(``compute_dtype``), so every float operation above is exact and the float model equals
the integer one spike for spike. Gradients are straight-through: :math:`Q` and :math:`R`
pass them unchanged inside the range (zero where :math:`Q` saturates), the spike takes
its surrogate gradient (``p.method``, ``p.alpha``).
"""

from typing import Any, Dict, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
from torch.ao.quantization.observer import MinMaxObserver

from norse.torch.functional.leaky_integrator import LIParameters, LIState
from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters
from norse.torch.functional.threshold import SURROGATE_GRADIENTS, threshold
from norse.torch.quantization import _kernels
from norse.torch.quantization.fixed_point import (
    FixedPoint,
    _check_int,
    exact_float_dtype,
)

__all__ = ["QuantLIF", "QuantLIFCell", "QuantLI", "QuantLICell"]

#: The order of the neuron parameters in the fused functions.
_PARAMETER_ORDER = ("a_syn", "a_mem", "v_leak", "v_th", "v_reset")

#: Surrogate methods whose forward pass is not the deterministic Heaviside step.
_UNSUPPORTED_METHODS = ("adjoint", "logistic", "circ_dist")


def _keep(module: torch.nn.Module, name: str, value: Any) -> None:
    """Stores a neuron parameter on ``module``: a copy of a trainable parameter stays
    trainable, anything else becomes a float64 buffer."""
    if isinstance(value, torch.nn.Parameter):
        module.register_parameter(name, torch.nn.Parameter(value.detach().clone()))
    elif isinstance(value, torch.Tensor):
        module.register_buffer(name, value.detach().clone().to(torch.float64))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        module.register_buffer(name, torch.tensor(float(value), dtype=torch.float64))
    else:
        raise TypeError(
            f"p.{name} must be a tensor or a number, got {type(value).__name__}"
        )


def _cachemask(
    x: torch.Tensor, scale: float, low: int, high: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """torch's fake quantisation with its straight-through mask (True in range)."""
    return torch.ops.aten.fake_quantize_per_tensor_affine_cachemask(
        x, scale, 0, low, high
    )


def _reduce(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``grad`` summed over the dimensions that a tensor of ``shape`` was broadcast
    along."""
    return grad.sum_to_size(shape) if grad.shape != shape else grad


class _FixedPointStep(torch.autograd.Function):
    """One fixed-point step (the equations of the module doc) with a hand-written
    backward pass: the same values and gradients as the step written with autograd
    (``_QuantNeuron.fused = False``), in fewer passes over memory.

    Inputs: ``x, v, i`` and the (already quantised) ``a_syn, a_mem, v_leak, v_th,
    v_reset``, then the static ``(scale, low, high, wide, spiking, surrogate, alpha)``.
    Outputs: ``(output, v_new, i_dec)``, ``output`` being the spikes (LIF) or ``v_dec``
    (LI).
    """

    @staticmethod
    def forward(ctx, x, v, i, a_syn, a_mem, v_leak, v_th, v_reset, static):
        scale, low, high, wide, spiking, surrogate, alpha = static
        x, mask_x = _cachemask(x, scale, low, high)
        i_jump, mask_i_jump = _cachemask(i + x, scale, low, high)
        drive = (v_leak - v).add_(i_jump)
        step = torch.fake_quantize_per_tensor_affine(
            a_mem * drive, scale, 0, -wide, wide
        )
        v_dec, mask_v_dec = _cachemask(step.add_(v), scale, low, high)
        leak = torch.fake_quantize_per_tensor_affine(
            a_syn * i_jump, scale, 0, -wide, wide
        )
        i_dec, mask_i_dec = _cachemask(i_jump - leak, scale, low, high)
        ctx.spiking, ctx.surrogate, ctx.alpha = spiking, surrogate, alpha
        ctx.shapes = [
            getattr(p, "shape", None) for p in (a_syn, a_mem, v_leak, v_th, v_reset)
        ]
        if not spiking:
            ctx.save_for_backward(
                mask_x, mask_i_jump, mask_v_dec, mask_i_dec, drive, i_jump, a_syn, a_mem
            )
            return v_dec, v_dec, i_dec
        distance = v_dec - v_th
        spikes = distance > 0
        v_new = torch.where(spikes, v_reset.expand_as(v_dec), v_dec)
        ctx.save_for_backward(
            mask_x,
            mask_i_jump,
            mask_v_dec,
            mask_i_dec,
            drive,
            i_jump,
            a_syn,
            a_mem,
            distance,
            v_dec,
            v_reset,
        )
        return spikes.to(v_dec.dtype), v_new, i_dec

    @staticmethod
    def backward(ctx, grad_output, grad_v, grad_i):
        saved = ctx.saved_tensors
        mask_x, mask_i_jump, mask_v_dec, mask_i_dec, drive, i_jump, a_syn, a_mem = (
            saved[:8]
        )
        grad_v_th = grad_v_reset = None
        if ctx.spiking:
            distance, v_dec, v_reset = saved[8:]
            spikes = (distance > 0).to(v_dec.dtype)
            grad_spikes = grad_output + grad_v * (v_reset - v_dec)
            if ctx.surrogate is None:
                grad_distance = torch.zeros_like(distance)
            else:
                alpha = torch.as_tensor(ctx.alpha, dtype=distance.dtype)
                grad_distance = grad_spikes * ctx.surrogate(distance, alpha)
            grad_v_dec = grad_v * (1 - spikes) + grad_distance
            if ctx.needs_input_grad[6]:
                grad_v_th = _reduce(-grad_distance, ctx.shapes[3])
            if ctx.needs_input_grad[7]:
                grad_v_reset = _reduce(grad_v * spikes, ctx.shapes[4])
        else:
            grad_v_dec = grad_output + grad_v
        grad_step = grad_v_dec * mask_v_dec  # through v + R(a_mem * drive)
        grad_leak = grad_i * mask_i_dec  # through i_jump - R(a_syn * i_jump)
        grad_drive = grad_step * a_mem
        grad_i_jump = (grad_drive + grad_leak * (1 - a_syn)) * mask_i_jump
        needs = ctx.needs_input_grad
        return (
            grad_i_jump * mask_x,  # x
            grad_step - grad_drive,  # v: v + a_mem * (v_leak - v)
            grad_i_jump,  # i
            _reduce(-grad_leak * i_jump, ctx.shapes[0]) if needs[3] else None,
            _reduce(grad_step * drive, ctx.shapes[1]) if needs[4] else None,
            _reduce(grad_drive, ctx.shapes[2]) if needs[5] else None,  # v_leak
            grad_v_th,
            grad_v_reset,
            None,
        )


class _QuantNeuron(torch.nn.Module):
    """The fixed-point dynamics shared by the four module forms."""

    spiking: bool = True
    time_first: bool = False

    def __init__(
        self,
        p: Union[LIFParameters, LIParameters],
        dt: float = 0.001,
        state_bits: int = 16,
        frac_bits: Optional[int] = None,
        decay_bits: int = 12,
    ):
        super().__init__()
        expected = LIFParameters if self.spiking else LIParameters
        if not isinstance(p, expected):
            raise TypeError(
                f"p must be {expected.__name__} for {type(self).__name__}, got "
                f"{type(p).__name__}"
            )
        if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not dt > 0:
            raise ValueError(f"dt must be a positive float, got {dt!r}")
        _check_int(state_bits, "state_bits", 2, 24)
        _check_int(decay_bits, "decay_bits", 0, 30)
        if frac_bits is not None:
            FixedPoint(state_bits, frac_bits)  # validates frac_bits
        self.dt = float(dt)
        self.state_bits = state_bits
        self.frac_bits = frac_bits
        self.decay_bits = decay_bits
        # the float products must be exact (see the module doc)
        self.compute_dtype = exact_float_dtype(
            state_bits + decay_bits + 1,
            f"state_bits={state_bits} with decay_bits={decay_bits}",
        )
        names = ("tau_syn_inv", "tau_mem_inv", "v_leak")
        if self.spiking:
            names += ("v_th", "v_reset")
            if p.method in _UNSUPPORTED_METHODS:
                raise ValueError(
                    f"p.method={p.method!r} cannot be quantised: the integer network "
                    "needs the deterministic Heaviside forward pass of the surrogate "
                    "methods (super, triangle, tanh, circ, heavi_erfc, heaviside)"
                )
            self.method = p.method
            self.alpha = p.alpha
        for name in names:
            _keep(self, name, getattr(p, name))
        for name in ("tau_syn_inv", "tau_mem_inv"):
            decay = self.dt * getattr(self, name).detach()
            if not bool(torch.all((decay >= 0) & (decay <= 1))):
                raise ValueError(
                    f"dt * p.{name} must lie in [0, 1] for a fixed-point decay, got "
                    f"{decay.min().item()} to {decay.max().item()}"
                )
        #: Round and saturate the state to its format (False: the float dynamics with
        #: the quantised parameters, e.g. to compare with the NIR graph).
        self.quantize_state = True
        #: Calibration pass: float dynamics, the observer records the value range.
        self.calibrating = False
        #: The quantised step as one autograd function with a hand-written backward
        #: pass (False: written with autograd operations; the same values).
        self.fused = True
        self.observer = MinMaxObserver()

    def extra_repr(self) -> str:
        return (
            f"state_bits={self.state_bits}, frac_bits={self.frac_bits}, "
            f"decay_bits={self.decay_bits}, dt={self.dt}"
        )

    # ----------------------------------------------------------------------------------
    # Formats and parameters

    @property
    def nir_time_first(self) -> bool:
        """Whether the layer takes ``(T, batch, ...)`` (read by ``to_nir``)."""
        return self.time_first

    @property
    def format(self) -> FixedPoint:
        """The fixed-point format of the state and of the voltage parameters."""
        if self.frac_bits is None:
            raise RuntimeError(
                f"{type(self).__name__} has no state format yet: calibrate it "
                "(quantize(..., calibration_data=...)) or give state_frac_bits"
            )
        return FixedPoint(self.state_bits, self.frac_bits)

    def calibrate_format(self, headroom_bits: int = 1) -> FixedPoint:
        """Sets ``frac_bits`` from the range the observer recorded (and the voltage
        parameters), with ``headroom_bits`` spare integer bits; returns the format."""
        if self.observer.min_val.numel() == 0 or not bool(
            torch.isfinite(self.observer.min_val)
        ):
            raise RuntimeError(
                f"{type(self).__name__} observed no data: run calibration data through "
                "the network first"
            )
        largest = max(
            abs(self.observer.min_val.item()), abs(self.observer.max_val.item())
        )
        for name in self._voltage_names():
            largest = max(largest, getattr(self, name).detach().abs().max().item())
        fmt = FixedPoint.calibrated(
            self.state_bits, largest, headroom_bits=headroom_bits
        )
        self.frac_bits = fmt.frac_bits
        return fmt

    def _voltage_names(self) -> Tuple[str, ...]:
        return ("v_leak", "v_th", "v_reset") if self.spiking else ("v_leak",)

    def decays(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The dyadic decay factors ``(a_syn, a_mem)`` (float64, multiples of
        ``2**-decay_bits`` in [0, 1]; straight-through gradient to trainable inverse time
        constants)."""
        d = self.decay_bits
        return tuple(
            torch.fake_quantize_per_tensor_affine(
                self.dt * getattr(self, name).to(torch.float64), 2.0**-d, 0, 0, 2**d
            )
            for name in ("tau_syn_inv", "tau_mem_inv")
        )

    def voltages(self) -> Dict[str, torch.Tensor]:
        """The voltage parameters rounded to the state format (float64)."""
        fmt = self.format
        return {
            name: fmt.fake_quantize(getattr(self, name).to(torch.float64))
            for name in self._voltage_names()
        }

    def integer_parameters(self) -> Dict[str, torch.Tensor]:
        """The integers of the layer (int64): ``decay_syn`` and ``decay_mem`` (the
        :math:`A` of :math:`a = A \\cdot 2^{-d}`) and the voltage parameters in units of
        the state's least significant bit."""
        with torch.no_grad():
            a_syn, a_mem = self.decays()
            d = 2.0**self.decay_bits
            result = {
                "decay_syn": torch.round(a_syn * d).long(),
                "decay_mem": torch.round(a_mem * d).long(),
            }
            fmt = self.format
            for name, value in self.voltages().items():
                result[name] = fmt.to_integer(value)
        return result

    # ----------------------------------------------------------------------------------
    # Dynamics

    def _parameters_for(
        self, dtype: torch.dtype, device: torch.device
    ) -> Dict[str, torch.Tensor]:
        if self.calibrating:
            values = {
                "a_syn": self.dt * self.tau_syn_inv,
                "a_mem": self.dt * self.tau_mem_inv,
            }
            values.update({name: getattr(self, name) for name in self._voltage_names()})
        else:
            a_syn, a_mem = self.decays()
            values = {"a_syn": a_syn, "a_mem": a_mem, **self.voltages()}
        return {
            name: value.to(dtype=dtype, device=device) for name, value in values.items()
        }

    def _static(self) -> Tuple[Any, ...]:
        """The static arguments of the fused step and sequence functions."""
        fmt = self.format
        return (
            fmt.scale,
            fmt.qmin,
            fmt.qmax,
            2 ** (self.state_bits + 1),  # |R(a * drive)| < 3 * 2**(state_bits - 1)
            self.spiking,
            SURROGATE_GRADIENTS.get(getattr(self, "method", "")),
            getattr(self, "alpha", None),
        )

    def _state(self, x: torch.Tensor, state: Optional[NamedTuple], values, dtype):
        """``(v, i)`` of the state, or the resting state for inputs like ``x``."""
        if state is None:
            return torch.zeros_like(x) + values["v_leak"], torch.zeros_like(x)
        return state.v.to(dtype), state.i.to(dtype)

    def _wrap(self, v: torch.Tensor, i: torch.Tensor) -> NamedTuple:
        return LIFFeedForwardState(v, i) if self.spiking else LIState(v, i)

    def _step(
        self,
        x: torch.Tensor,
        state: Optional[NamedTuple],
        values: Dict[str, torch.Tensor],
        dtype: torch.dtype,
    ) -> Tuple[torch.Tensor, NamedTuple]:
        x = x.to(dtype)
        v, i = self._state(x, state, values, dtype)
        quantize = self.quantize_state and not self.calibrating
        if quantize and self.fused:
            output, v_new, i_dec = _FixedPointStep.apply(
                x,
                v,
                i,
                *(values.get(name) for name in _PARAMETER_ORDER),
                self._static(),
            )
            return output, self._wrap(v_new, i_dec)
        return self._reference_step(x, v, i, values, quantize)

    def _reference_step(
        self,
        x: torch.Tensor,
        v: torch.Tensor,
        i: torch.Tensor,
        values: Dict[str, torch.Tensor],
        quantize: bool,
    ) -> Tuple[torch.Tensor, NamedTuple]:
        """The step written with autograd operations (the module doc's equations);
        without ``quantize``, the float dynamics (no rounding, no saturation)."""
        if quantize:
            fmt = self.format
            wide = 2 ** (self.state_bits + 1)
            q = fmt.fake_quantize

            def r(y: torch.Tensor) -> torch.Tensor:
                return torch.fake_quantize_per_tensor_affine(
                    y, fmt.scale, 0, -wide, wide
                )

        else:

            def q(y: torch.Tensor) -> torch.Tensor:
                return y

            r = q
        x = q(x)
        i_jump = q(i + x)
        v_dec = q(v + r(values["a_mem"] * ((values["v_leak"] - v) + i_jump)))
        i_dec = q(i_jump - r(values["a_syn"] * i_jump))
        if self.calibrating:
            with torch.no_grad():
                for value in (x, i_jump, v_dec):
                    self.observer(value.detach().float())
        if not self.spiking:
            return v_dec, LIState(v_dec, i_dec)
        z = threshold(v_dec - values["v_th"], self.method, self.alpha)
        v_new = (1 - z) * v_dec + z * values["v_reset"]
        return z, LIFFeedForwardState(v_new, i_dec)

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[NamedTuple] = None
    ) -> Tuple[torch.Tensor, NamedTuple]:
        """One step (cells: input ``(batch, ...)``) or ``T`` steps (time modules: input
        ``(T, batch, ...)``); returns the spikes (LIF) or voltages (LI) in the input's
        dtype and the last state."""
        if not isinstance(input_tensor, torch.Tensor):
            raise TypeError(
                f"input_tensor must be a torch.Tensor, got {type(input_tensor).__name__}"
            )
        if self.time_first and input_tensor.dim() < 1:
            raise ValueError(
                f"{type(self).__name__} takes a sequence (T, batch, ...), got a 0-d tensor"
            )
        out_dtype = (
            input_tensor.dtype
            if input_tensor.is_floating_point()
            else torch.get_default_dtype()
        )
        dtype = (
            torch.float64
            if input_tensor.dtype == torch.float64 or self.calibrating
            else self.compute_dtype
        )
        values = self._parameters_for(dtype, input_tensor.device)
        if not self.time_first:
            output, state = self._step(input_tensor, state, values, dtype)
            return output.to(out_dtype), state
        parameters = tuple(values.get(name) for name in _PARAMETER_ORDER)
        if (
            self.fused
            and self.quantize_state
            and not self.calibrating
            and _kernels.usable(input_tensor, parameters)
        ):
            # the kernel reads float32 input and computes in float64 (exact)
            x = (
                input_tensor
                if input_tensor.is_floating_point()
                else input_tensor.to(dtype)
            )
            v, i = self._state(x[0].to(dtype), state, values, dtype)
            output, v, i = _kernels.run(x, v, i, *parameters, self._static())
            return output.to(out_dtype), self._wrap(v, i)
        outputs = []
        for step in input_tensor:
            output, state = self._step(step, state, values, dtype)
            outputs.append(output.to(out_dtype))
        return torch.stack(outputs), state

    # ----------------------------------------------------------------------------------
    # NIR

    def nir_nodes(self, shape: Tuple[int, ...], where: str, time_scale: float = 1.0):
        """The NIR node of the layer (``CubaLIF`` or ``CubaLI``) in units of the state's
        least significant bit: integer ``v_threshold``, ``v_leak``, ``v_reset``; time
        constants ``dt / a`` of the dyadic decays. The metadata holds the fixed-point
        format and the integer decays; NIR's float equations leave out the rounding."""
        from norse.torch.utils.export_nir import nir_package, node_array

        nir = nir_package()
        ints = self.integer_parameters()
        fmt = self.format

        def arr(value: torch.Tensor, field: str) -> np.ndarray:
            return node_array(value, shape, f"{where}: {field}")

        with np.errstate(divide="ignore"):
            a_syn = arr(ints["decay_syn"], "decay_syn") / 2.0**self.decay_bits
            a_mem = arr(ints["decay_mem"], "decay_mem") / 2.0**self.decay_bits
            tau_syn = time_scale * self.dt / a_syn
            tau_mem = time_scale * self.dt / a_mem
            w_in = 1.0 / a_syn  # Norse's current jumps by the input
        metadata = {
            "quantization": "fixed point",
            "state_bits": self.state_bits,
            "state_frac_bits": fmt.frac_bits,
            "decay_bits": self.decay_bits,
            "decay_syn": arr(ints["decay_syn"], "decay_syn").astype(np.int64),
            "decay_mem": arr(ints["decay_mem"], "decay_mem").astype(np.int64),
            "units": "least significant bits of the state: value * 2**-state_frac_bits",
            "rounding": "half to even, saturating to state_bits",
        }
        common = dict(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=np.ones(shape),
            v_leak=arr(ints["v_leak"], "v_leak").astype(np.int64),
            w_in=w_in,
            metadata=metadata,
        )
        if not self.spiking:
            return nir.CubaLI(**common), shape
        node = nir.CubaLIF(
            v_threshold=arr(ints["v_th"], "v_th").astype(np.int64),
            v_reset=arr(ints["v_reset"], "v_reset").astype(np.int64),
            **common,
        )
        return node, shape


class QuantLIFCell(_QuantNeuron):
    """One step of a fixed-point feed-forward LIF layer: input ``(batch, ...)`` (the
    current in the state's units), spikes and :class:`LIFFeedForwardState` out.

    Parameters:
        p (LIFParameters): the float layer's parameters (trainable parameters stay
            trainable, with straight-through gradients through the rounding)
        dt (float): time step (s); ``dt * tau_*_inv`` must lie in [0, 1]
        state_bits (int): bits of ``v``, ``i`` and the voltage parameters (2 to 24)
        frac_bits (Optional[int]): their fractional bits (None: set by calibration)
        decay_bits (int): fractional bits ``d`` of the decay factors
    """

    spiking = True
    time_first = False


class QuantLIF(_QuantNeuron):
    """:class:`QuantLIFCell` over time: input ``(T, batch, ...)``, spikes
    ``(T, batch, ...)`` and the last state out."""

    spiking = True
    time_first = True


class QuantLICell(_QuantNeuron):
    """One step of a fixed-point leaky integrator: input ``(batch, ...)``, voltage and
    :class:`LIState` out. Parameters as :class:`QuantLIFCell` with
    :class:`LIParameters`."""

    spiking = False
    time_first = False


class QuantLI(_QuantNeuron):
    """:class:`QuantLICell` over time: input ``(T, batch, ...)``, voltages
    ``(T, batch, ...)`` and the last state out."""

    spiking = False
    time_first = True
