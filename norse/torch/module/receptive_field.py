r"""Receptive-field layers from scale-space theory.

The fields are derived in `Normative theory of visual receptive fields (Lindeberg, 2021)
<https://www.sciencedirect.com/science/article/pii/S2405844021000025>`_; for spiking
(binary) signals see `Translation and Scale Invariance for Event-Based Object tracking
(Pedersen et al., 2023) <https://dl.acm.org/doi/10.1145/3584954.3584996>`_. Kernels and
equations: :mod:`norse.torch.functional.receptive_field`.

The spatial layers compute their convolution kernels from a few parameters (scale, angle,
ratio and derivative order of every field). The kernels are cached: they are recomputed
when the parameters change (e.g. after an optimiser step) or when a backward pass has used
them, so the same kernels serve every time step of a sequence and training never
back-propagates through a consumed graph.
"""

import weakref
from typing import Any, Callable, NamedTuple, Optional

import torch

from norse.torch.functional.leaky_integrator_box import LIBoxParameters
from norse.torch.functional.receptive_field import (
    Derivatives,
    spatial_parameters,
    spatial_receptive_fields_with_derivatives,
    temporal_scale_distribution,
)
from norse.torch.functional.validation import check_input
from norse.torch.module.leaky_integrator_box import LIBoxCell
from norse.torch.module.neuron import check_sizes
from norse.torch.module.snn import SNNCell


def _flag_on_backward(tensor: torch.Tensor, owner: torch.nn.Module) -> None:
    """Sets ``owner.has_updated`` when a backward pass reaches ``tensor``."""
    if not tensor.requires_grad:
        return
    reference = weakref.ref(owner)

    def hook(grad: torch.Tensor) -> None:
        module = reference()
        if module is not None:
            module.has_updated = True

    tensor.register_hook(hook)


def _snapshot(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().clone()


def _same(current: torch.Tensor, previous: torch.Tensor) -> bool:
    """Equal values, shape, dtype and device (``.to()`` moves parameters in place)."""
    return (
        current.shape == previous.shape
        and current.dtype == previous.dtype
        and current.device == previous.device
        and torch.equal(current.detach(), previous)
    )


def _store(module: torch.nn.Module, name: str, value: torch.Tensor, train: bool):
    """A trainable ``nn.Parameter``, or a non-persistent buffer so the tensor still
    moves with ``.to()`` (and checkpoints keep Norse 1.1's keys)."""
    if train:
        setattr(module, name, torch.nn.Parameter(value))
    else:
        module.register_buffer(name, value, persistent=False)


class SpatialReceptiveField2d(torch.nn.Module):
    """A 2d convolution with receptive-field kernels built from ``rf_parameters``.

    Example:
        >>> import torch
        >>> from norse.torch import SpatialReceptiveField2d
        >>> parameters = torch.tensor([[1., 1., 1., 0., 0.]])
        >>> m = SpatialReceptiveField2d(1, 9, parameters)
        >>> m.weights.shape
        torch.Size([1, 1, 9, 9])
        >>> m(torch.empty(1, 1, 9, 9)).shape
        torch.Size([1, 1, 1, 1])

    Parameters:
        in_channels (int): number of input channels
        size (int): kernel size (pixels per side)
        rf_parameters (torch.Tensor): ``(n, 5)`` rows ``(scale, angle, ratio, dx, dy)``
        aggregate (bool): if True (default) each field sums over all input channels
            (``n`` output channels); if False every field is applied to every channel
            separately (``n * in_channels`` output channels, channel-major)
        domain (float): the kernel spans ``[-domain, domain]``; default 8
        optimize_fields (bool): make ``rf_parameters`` a trainable ``nn.Parameter``
        **kwargs: passed to ``torch.nn.functional.conv2d`` (stride, padding, bias...)

    Shapes: input ``(batch, in_channels, h, w)``; output ``(batch, out_channels, h', w')``.
    """

    def __init__(
        self,
        in_channels: int,
        size: int,
        rf_parameters: torch.Tensor,
        aggregate: bool = True,
        domain: float = 8,
        optimize_fields: bool = True,
        **kwargs,
    ) -> None:
        super().__init__()
        check_sizes(in_channels=in_channels, size=size)
        if not isinstance(rf_parameters, torch.Tensor):
            raise TypeError(
                f"rf_parameters must be a torch.Tensor, got {type(rf_parameters).__name__}"
            )
        if rf_parameters.dim() != 2 or rf_parameters.shape[1] != 5:
            raise ValueError(
                "rf_parameters must have shape (n_fields, 5) of (scale, angle, ratio, dx, "
                f"dy), got {tuple(rf_parameters.shape)}"
            )
        _store(self, "rf_parameters", rf_parameters, optimize_fields)
        self.in_channels = in_channels
        self.size = size
        self.aggregate = aggregate
        self.domain = domain
        n_fields = rf_parameters.shape[0]
        self.out_channels = n_fields if aggregate else n_fields * in_channels
        self.kwargs = kwargs
        self.kwargs.setdefault("bias", None)
        self.has_updated = True
        self.rf_parameters_previous = torch.zeros_like(rf_parameters)
        self._update_weights()

    def _compute_weights(self) -> torch.Tensor:
        fields = spatial_receptive_fields_with_derivatives(
            self.rf_parameters, size=self.size, domain=self.domain
        )
        if self.aggregate:
            return fields.unsqueeze(1).expand(-1, self.in_channels, -1, -1)
        # output channel c * n_fields + k applies field k to input channel c only
        eye = torch.eye(self.in_channels, dtype=fields.dtype, device=fields.device)
        weights = eye[:, None, :, None, None] * fields[None, :, None]
        return weights.reshape(-1, self.in_channels, self.size, self.size)

    def _update_weights(self) -> None:
        """Recomputes :attr:`weights` if the parameters changed (by value, tensor or
        version) or a backward pass consumed the cached ones."""
        parameters = self.rf_parameters
        changed = (
            not _same(parameters, self.rf_parameters_previous)
            or getattr(self, "_source", None) is not parameters
            # written in place (load_state_dict, an optimiser) even with equal values:
            # the cached weights' graph holds the old version
            or self.__dict__.get("_source_version") != parameters._version
        )
        if not (changed or self.has_updated):
            return
        self.weights = self._compute_weights()
        self.rf_parameters_previous = _snapshot(parameters)
        # Not an attribute assignment: a Parameter would be registered a second time
        # (as '_source'), and Norse 1.1's checkpoints would no longer load strictly.
        self.__dict__["_source"] = parameters
        self.__dict__["_source_version"] = parameters._version
        self.has_updated = False
        _flag_on_backward(self.weights, self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4):
            raise ValueError(
                "x must be a (batch, in_channels, h, w) or (in_channels, h, w) tensor, got "
                f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
            )
        if x.shape[-3] != self.in_channels:
            raise ValueError(
                f"x must have in_channels={self.in_channels} channels (dim -3), got "
                f"shape {tuple(x.shape)}"
            )
        self._update_weights()
        return torch.nn.functional.conv2d(x, self.weights.to(x.dtype), **self.kwargs)


class _GeneratedFields(torch.nn.Module):
    """Layers whose field parameters are generated from trainable scales, angles and
    ratios; the kernels live in a :class:`SpatialReceptiveField2d` :attr:`submodule`."""

    submodule: SpatialReceptiveField2d

    def __init__(
        self,
        in_channels: int,
        size: int,
        scales: torch.Tensor,
        angles: torch.Tensor,
        ratios: torch.Tensor,
        derivatives: Derivatives,
        optimize_scales: bool = True,
        optimize_angles: bool = True,
        optimize_ratios: bool = True,
        **kwargs,
    ):
        super().__init__()
        scales, angles, ratios = self._generators_from(
            scales, angles, ratios, derivatives
        )
        _store(self, "scales", scales, optimize_scales)
        _store(self, "angles", angles, optimize_angles)
        _store(self, "ratios", ratios, optimize_ratios)
        self._generators_previous = self._generator_values().clone()
        self.submodule = SpatialReceptiveField2d(
            in_channels=in_channels,
            size=size,
            rf_parameters=self._generated_parameters(),
            optimize_fields=False,
            **kwargs,
        )

    def _generators_from(self, scales, angles, ratios, derivatives):
        """The (scales, angles, ratios) to store, from the constructor arguments."""
        raise NotImplementedError

    def _generated_parameters(self) -> torch.Tensor:
        raise NotImplementedError

    @property
    def has_updated(self) -> bool:
        """True once a backward pass has used the current kernels."""
        return self.submodule.has_updated

    @has_updated.setter
    def has_updated(self, value: bool) -> None:
        self.submodule.has_updated = value

    def _generator_values(self) -> torch.Tensor:
        return torch.cat(
            [
                torch.as_tensor(t).detach().flatten()
                for t in (self.scales, self.angles, self.ratios)
            ]
        )

    def _update_weights(self) -> None:
        """Regenerates the field parameters and kernels if the scales, angles or ratios
        changed or a backward pass consumed the kernels' graph."""
        current = self._generator_values()
        if self.submodule.has_updated or not _same(current, self._generators_previous):
            self._generators_previous = current.clone()
            self.submodule.rf_parameters = self._generated_parameters()
            self.submodule._update_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._update_weights()
        return self.submodule(x)


class SampledSpatialReceptiveField2d(_GeneratedFields):
    """Receptive fields sampled from every combination of ``scales``, ``angles``,
    ``ratios`` and ``derivatives``, the generating values being trainable.

    Wraps :class:`SpatialReceptiveField2d` (in :attr:`submodule`, which receives the
    ``kwargs``); after an optimiser step changes the scales, angles or ratios, all fields
    built from them change together.

    Example:
        >>> import torch
        >>> from norse.torch import SampledSpatialReceptiveField2d
        >>> m = SampledSpatialReceptiveField2d(1, 9, torch.tensor([1.0, 2.0]),
        ...     torch.tensor([0.0, 1.0]), torch.tensor([0.5, 1.0]), torch.tensor([[0, 0]]),
        ...     optimize_scales=False, optimize_angles=False, optimize_ratios=True)
        >>> y = m(torch.ones(1, 1, 9, 9))  # 8 fields: (1, 8, 1, 1)

    Parameters:
        in_channels (int): number of input channels
        size (int): kernel size
        scales, angles, ratios (torch.Tensor): 1-d generating values
        derivatives: an int (all orders up to it), ``(dx, dy)`` pairs or an ``(m, 2)``
            tensor
        optimize_scales, optimize_angles, optimize_ratios (bool): which values train
        **kwargs: for :class:`SpatialReceptiveField2d`
    """

    def _generators_from(self, scales, angles, ratios, derivatives):
        self.derivatives = derivatives
        return scales, angles, ratios

    def _generated_parameters(self) -> torch.Tensor:
        return spatial_parameters(
            self.scales, self.angles, self.ratios, self.derivatives
        )


class ParameterizedSpatialReceptiveField2d(_GeneratedFields):
    """Receptive fields whose scale, angle and ratio train *per field*.

    The fields start as every combination of ``scales``, ``angles``, ``ratios`` and
    ``derivatives`` (as :class:`SampledSpatialReceptiveField2d`); :attr:`scales`,
    :attr:`angles` and :attr:`ratios` then hold one value per field. Wraps
    :class:`SpatialReceptiveField2d` (in :attr:`submodule`, which receives the ``kwargs``).
    Parameters: as :class:`SampledSpatialReceptiveField2d`.

    Example:
        >>> import torch
        >>> from norse.torch import ParameterizedSpatialReceptiveField2d
        >>> m = ParameterizedSpatialReceptiveField2d(1, 9, torch.tensor([1.0, 2.0]),
        ...     torch.tensor([0.0, 1.0]), torch.tensor([0.5, 1.0]), 1,
        ...     optimize_scales=False, optimize_angles=False, optimize_ratios=True)
    """

    def _generators_from(self, scales, angles, ratios, derivatives):
        initial = spatial_parameters(scales, angles, ratios, derivatives).detach()
        self.register_buffer("initial_parameters", initial, persistent=False)
        columns = initial.T.clone()
        return columns[0], columns[1], columns[2]

    def _generated_parameters(self) -> torch.Tensor:
        return torch.cat(
            [
                torch.stack([self.scales, self.angles, self.ratios], 1),
                self.initial_parameters[:, 3:],
            ],
            1,
        )


class TemporalReceptiveField(torch.nn.Module):
    """``n_scales`` temporal receptive fields (leaky integrators with log-spaced time
    constants) for inputs of any shape.

    Each input is copied ``n_scales`` times along a new dimension in front of ``shape``
    and integrated by ``activation`` with the inverse time constants
    ``(1 / dt) / temporal_scale_distribution(...)`` (trainable, in :attr:`ps`).

    Parameters:
        shape (torch.Size): shape of one input (channels first)
        n_scales (int): number of temporal scales
        activation (type): the neuron cell; default :class:`~.LIBoxCell`
        activation_state_map (Callable): maps the time-constant tensor to the cell's
            parameters; required with another ``activation``
        min_scale (float): the smallest scale; default 1
        max_scale (float): the largest scale (optional; overrides ``c``)
        c (float): ratio of successive scales, in (1, 2); default sqrt(2)
        time_constants (torch.Tensor): explicit inverse time constants
            ``(n_scales, shape[0], 1, ...)``, replacing the generated ones
        dt (float): time step (s), default 0.001

    Shapes: input ``(..., *shape)``; output ``(..., n_scales, *shape)``.
    """

    def __init__(
        self,
        shape: torch.Size,
        n_scales: int = 4,
        activation: type = LIBoxCell,
        activation_state_map: Callable[[torch.Tensor], NamedTuple] = lambda t: (
            LIBoxParameters(tau_mem_inv=t)
        ),
        min_scale: float = 1,
        max_scale: Optional[float] = None,
        c: float = 1.41421,
        time_constants: Optional[torch.Tensor] = None,
        dt: float = 0.001,
    ):
        super().__init__()
        shape = tuple(shape)
        if len(shape) == 0:
            raise ValueError("shape must have at least one (channel) dimension")
        if time_constants is None:
            taus = (1 / dt) / temporal_scale_distribution(
                n_scales, min_scale=min_scale, max_scale=max_scale, c=c
            )
            ones = [1] * (len(shape) - 1)
            time_constants = taus.reshape(-1, 1, *ones).expand(-1, shape[0], *ones)
            time_constants = time_constants.to(torch.float32).clone()
        elif time_constants.shape[0] != n_scales:
            raise ValueError(
                f"time_constants must have n_scales={n_scales} rows, got shape "
                f"{tuple(time_constants.shape)}"
            )
        self.time_constants = time_constants
        self.ps = torch.nn.Parameter(self.time_constants)
        self.neurons: SNNCell = activation(p=activation_state_map(self.ps), dt=dt)
        self.rf_dimension = len(shape)
        self.n_scales = n_scales

    def forward(self, x: torch.Tensor, state: Optional[Any] = None):
        check_input(x, "x")
        if x.dim() < self.rf_dimension:
            raise ValueError(
                f"x must end in the {self.rf_dimension} dimension(s) of shape, got "
                f"shape {tuple(x.shape)}"
            )
        repeated = torch.stack([x] * self.n_scales, dim=-self.rf_dimension - 1)
        return self.neurons(repeated, state)
