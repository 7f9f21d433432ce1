"""Encoders as ``torch.nn.Module`` s, to put at the front of a ``torch.nn.Sequential``.

Each wraps the function of the same code in :mod:`norse.torch.functional.encode` (see
there for the equations). The spike encoders return ``(seq_length, ...)`` for an input of
shape ``(...)``; the ``*Step`` encoders return one step of the input's shape.

The LIF encoders keep their :class:`~norse.torch.functional.lif.LIFParameters` as
buffers of a child module ``params`` (``encoder.p`` reads them as the ``NamedTuple``), so
``.to()``, ``.double()`` and ``state_dict()`` carry them.

Example:
    >>> import torch, norse.torch as norse
    >>> model = torch.nn.Sequential(
    ...     norse.PoissonEncoder(seq_length=50, f_max=200),
    ...     norse.LIF(),
    ... )
    >>> spikes, state = model(torch.rand(8, 10))     # spikes: (50, 8, 10)
"""

from typing import Callable, Optional, Union

import torch

from norse.torch.functional.encode import (
    constant_current_lif_encode_unchecked,
    euclidean_distance,
    gaussian_rbf,
    poisson_encode,
    poisson_encode_step,
    population_encode,
    signed_poisson_encode,
    signed_poisson_encode_step,
    spike_latency_encode,
    spike_latency_encode_unchecked,
)
from norse.torch.functional.lif import LIFParameters
from norse.torch.functional.validation import (
    check_count,
    check_dt,
    check_f_max,
    check_scale,
    check_seq_length,
    float_input,
)
from norse.torch.module.snn import NeuronModule


class RateEncoder(torch.nn.Module):
    """The base of the rate (Poisson) encoders: stores ``f_max`` (a buffer when it is a
    tensor), ``dt`` and ``generator``; subclasses name their encoding function in
    :attr:`_encode`. Their spikes are random draws (the ONNX export recognises them by
    this class)."""

    _encode: Callable[..., torch.Tensor]

    def __init__(
        self,
        f_max: Union[float, torch.Tensor],
        dt: float,
        generator: Optional[torch.Generator],
    ):
        super().__init__()
        check_f_max(f_max)
        if isinstance(f_max, torch.Tensor):
            self.register_buffer("f_max", f_max.detach().clone())
        else:
            self.f_max = float(f_max)
        self.dt = check_dt(dt)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}"
            )
        # A generator does not move with .to(); create it on the device of the data.
        self.generator = generator

    def extra_repr(self) -> str:
        f_max = self.f_max
        if isinstance(f_max, torch.Tensor) and f_max.numel() == 1:
            f_max = f_max.item()
        return f"f_max={f_max}, dt={self.dt}"


class _SequenceRateEncoder(RateEncoder):
    """A rate encoder producing ``seq_length`` steps (default ``f_max`` 100 Hz)."""

    def __init__(
        self,
        seq_length: int,
        f_max: float = 100,
        dt: float = 0.001,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__(f_max, dt, generator)
        self.seq_length = check_seq_length(seq_length)

    def extra_repr(self) -> str:
        return f"seq_length={self.seq_length}, {super().extra_repr()}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return type(self)._encode(
            x, self.seq_length, self.f_max, self.dt, self.generator
        )


class _StepRateEncoder(RateEncoder):
    """A rate encoder producing one step (default ``f_max`` 1000 Hz, as Norse 1.1)."""

    def __init__(
        self,
        f_max: float = 1000,
        dt: float = 0.001,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__(f_max, dt, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return type(self)._encode(x, self.f_max, self.dt, self.generator)


class PoissonEncoder(_SequenceRateEncoder):
    """Rate code with Bernoulli (Poisson) spikes, see
    :func:`~norse.torch.functional.encode.poisson_encode`.

    Parameters:
        seq_length (int): number of time steps (positive)
        f_max (float): rate (Hz) of an input of 1.0, default 100
        dt (float): time step (s), default 0.001
        generator (torch.Generator): optional random source for reproducible spikes
            (an addition to Norse 1.1)

    Shapes: input ``(...)`` with values in ``[0, 1]`` (the spike probability
    ``f_max * dt * x`` is clamped to ``[0, 1]``); output ``(seq_length, ...)``.
    """

    _encode = poisson_encode


class PoissonEncoderStep(_StepRateEncoder):
    """One time step of :class:`PoissonEncoder`; note the default ``f_max`` of 1000 Hz
    (as Norse 1.1).

    Parameters:
        f_max (float): rate (Hz) of an input of 1.0, default 1000
        dt (float): time step (s), default 0.001
        generator (torch.Generator): optional random source

    Shapes: input and output ``(...)``.
    """

    _encode = poisson_encode_step


class SignedPoissonEncoder(_SequenceRateEncoder):
    """Signed rate code with events in ``{-1, 0, 1}``, see
    :func:`~norse.torch.functional.encode.signed_poisson_encode`.

    Parameters:
        seq_length (int): number of time steps (positive)
        f_max (float): rate (Hz) of an input of magnitude 1.0, default 100
        dt (float): time step (s), default 0.001
        generator (torch.Generator): optional random source

    Shapes: input ``(...)`` with values in ``[-1, 1]``; output ``(seq_length, ...)``.
    """

    _encode = signed_poisson_encode


class SignedPoissonEncoderStep(_StepRateEncoder):
    """One time step of :class:`SignedPoissonEncoder` (default ``f_max`` 1000 Hz).

    Parameters:
        f_max (float): rate (Hz) of an input of magnitude 1.0, default 1000
        dt (float): time step (s), default 0.001
        generator (torch.Generator): optional random source

    Shapes: input and output ``(...)``.
    """

    _encode = signed_poisson_encode_step


class _LIFEncoder(NeuronModule):
    """A LIF membrane simulated for ``seq_length`` steps; parameters stored as buffers
    (validated once, here). The constructor of both LIF encoders below."""

    def __init__(
        self,
        seq_length: int,
        p: LIFParameters = LIFParameters(),
        dt: float = 0.001,
    ):
        super().__init__()
        self.seq_length = check_seq_length(seq_length)
        self.dt = dt  # before p: assigning p validates it against dt
        self.p = p

    def extra_repr(self) -> str:
        return f"seq_length={self.seq_length}, dt={self.dt}"

    def _encode(self, input_current: torch.Tensor) -> torch.Tensor:
        x = float_input(input_current, "input_current")
        return constant_current_lif_encode_unchecked(
            x, self.seq_length, self.p, self.dt
        )


class ConstantCurrentLIFEncoder(_LIFEncoder):
    """Rate code from a LIF membrane driven by the input as a constant current, see
    :func:`~norse.torch.functional.encode.constant_current_lif_encode`.

    Parameters:
        seq_length (int): number of time steps (positive)
        p (LIFParameters): membrane parameters (stored as buffers of ``self.p``)
        dt (float): time step (s), default 0.001

    Shapes: input ``(...)``; spikes ``(seq_length, ...)``.
    """

    def forward(self, input_currents: torch.Tensor) -> torch.Tensor:
        return self._encode(input_currents)


class SpikeLatencyLIFEncoder(_LIFEncoder):
    """Latency code: only the first spike of the LIF membrane of
    :class:`ConstantCurrentLIFEncoder`, see
    :func:`~norse.torch.functional.encode.spike_latency_lif_encode`.

    Parameters:
        seq_length (int): number of time steps (positive)
        p (LIFParameters): membrane parameters (stored as buffers of ``self.p``)
        dt (float): time step (s), default 0.001

    Shapes: input ``(...)``; spikes ``(seq_length, ...)``, at most one per element.
    """

    def forward(self, input_current: torch.Tensor) -> torch.Tensor:
        return spike_latency_encode_unchecked(self._encode(input_current))


class SpikeLatencyEncoder(torch.nn.Module):
    """Keeps only the first spike of every element of a spike train ``(T, ...)``, see
    :func:`~norse.torch.functional.encode.spike_latency_encode`.

    Example:
        >>> encoder = torch.nn.Sequential(
        ...     ConstantCurrentLIFEncoder(seq_length=10), SpikeLatencyEncoder()
        ... )
        >>> spikes = encoder(torch.as_tensor([1.5, 3.0]))   # one spike each
    """

    def forward(self, input_spikes: torch.Tensor) -> torch.Tensor:
        return spike_latency_encode(input_spikes)


class PopulationEncoder(torch.nn.Module):
    """Population code: ``out_features`` receptive-field responses per value, see
    :func:`~norse.torch.functional.encode.population_encode`.

    Parameters:
        out_features (int): receptive fields per value (positive)
        scale (float or torch.Tensor): upper end of the field centres (positive); default
            the largest input value of each call. A tensor is stored as a buffer.
        kernel: response of a scaled distance, default
            :func:`~norse.torch.functional.encode.gaussian_rbf`
        distance_function: distance of values and centres, default
            :func:`~norse.torch.functional.encode.euclidean_distance`

    Shapes: input ``(...)``; output ``(..., out_features)`` (real values, not spikes).
    """

    def __init__(
        self,
        out_features: int,
        scale: Optional[Union[int, float, torch.Tensor]] = None,
        kernel: Callable[[torch.Tensor], torch.Tensor] = gaussian_rbf,
        distance_function: Callable[
            [torch.Tensor, torch.Tensor], torch.Tensor
        ] = euclidean_distance,
    ):
        super().__init__()
        self.out_features = check_count(out_features, "out_features")
        if scale is not None:
            check_scale(scale)
        for name, function in (
            ("kernel", kernel),
            ("distance_function", distance_function),
        ):
            if not callable(function):
                raise TypeError(f"{name} must be callable, got {function!r}")
        if isinstance(scale, torch.Tensor):
            self.register_buffer("scale", scale.detach().clone())
        else:
            self.scale = scale
        self.kernel = kernel
        self.distance_function = distance_function

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}"

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        return population_encode(
            input_tensor,
            self.out_features,
            self.scale,
            self.kernel,
            self.distance_function,
        )
