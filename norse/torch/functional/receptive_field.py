r"""Receptive fields from scale-space theory: Gaussian kernels and their derivatives.

A *spatial* receptive field is an anisotropic Gaussian kernel (Lindeberg 2021, "Normative
theory of visual receptive fields") sampled on a ``size x size`` grid over
``[-domain, domain]^2``,

.. math::
    g(\mathbf x; \Sigma) = \frac{1}{2\pi\sqrt{\det \Sigma}}
        \exp\left(-\tfrac12 \mathbf x^\top \Sigma^{-1} \mathbf x\right),
    \qquad
    \Sigma = s \, R(\phi) \begin{pmatrix} r^2 & 0 \\ 0 & r^{-2} \end{pmatrix} R(\phi)^\top

with scale :math:`s`, angle :math:`\phi` and ratio (eccentricity) :math:`r`, normalised to
sum 1, optionally followed by :math:`d_x` directional derivatives along :math:`\phi` and
:math:`d_y` along :math:`\phi + \pi/2` (central differences, each scale-normalised by
:math:`s`, Lindeberg 1998 with :math:`\gamma = 1`).

A field is described by a parameter row ``(scale, angle, ratio, dx, dy)``;
:func:`spatial_parameters` builds the rows of all combinations. *Temporal* receptive fields
are leaky integrators with time constants from :func:`temporal_scale_distribution`
(Lindeberg 2016). The modules are in :mod:`norse.torch.module.receptive_field`.

Every function is differentiable with respect to scale, angle and ratio.
"""

from typing import List, Optional, Sequence, Tuple, Union

import torch

Derivatives = Union[int, Sequence[Tuple[int, int]], torch.Tensor]


def _float_tensor(value, like: Optional[torch.Tensor] = None) -> torch.Tensor:
    tensor = torch.as_tensor(value)
    if not tensor.is_floating_point():
        dtype = like.dtype if like is not None and like.is_floating_point() else None
        tensor = tensor.to(dtype or torch.get_default_dtype())
    return tensor


def gaussian_kernel(size: int, c: torch.Tensor, domain: float = 8) -> torch.Tensor:
    """A differentiable 2d Gaussian kernel sampled on a ``size x size`` grid.

    Parameters:
        size (int): number of samples per side
        c (torch.Tensor): ``(2, 2)`` covariance matrix (or a batch ``(..., 2, 2)``)
        domain (float): the grid spans ``[-domain, domain]`` on both axes

    Returns:
        The density :math:`g(\\mathbf x; c)` at the grid points, ``(..., size, size)``
        (rows: y, columns: x).
    """
    c = _float_tensor(c)
    inverse = torch.linalg.inv(c)
    fraction = 1 / (2 * torch.pi * torch.sqrt(torch.linalg.det(c)))
    axis = torch.linspace(-domain, domain, size, device=c.device, dtype=c.dtype)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    coordinates = torch.stack([xs, ys], dim=-1)  # (size, size, 2): (x, y)
    quadratic = torch.einsum("ija,...ab,ijb->...ij", coordinates, inverse, coordinates)
    return fraction[..., None, None] * torch.exp(-quadratic / 2)


def covariance_matrix(
    sigma1: torch.Tensor, sigma2: torch.Tensor, phi: torch.Tensor
) -> torch.Tensor:
    """The ``(2, 2)`` covariance matrix with standard deviations ``sigma1`` (along the
    angle ``phi``, radians) and ``sigma2`` (perpendicular). Batched inputs give
    ``(..., 2, 2)``."""
    phi = _float_tensor(phi)
    sigma1, sigma2 = _float_tensor(sigma1, phi), _float_tensor(sigma2, phi)
    if phi.numel() == sigma1.numel() == sigma2.numel() == 1:
        # single values (also one-element tensors) give one (2, 2) matrix, as in Norse
        phi, sigma1, sigma2 = phi.reshape(()), sigma1.reshape(()), sigma2.reshape(())
    lambda1 = sigma1**2
    lambda2 = sigma2**2
    cos, sin = phi.cos(), phi.sin()
    cxx = lambda1 * cos**2 + lambda2 * sin**2
    cxy = (lambda1 - lambda2) * cos * sin
    cyy = lambda1 * sin**2 + lambda2 * cos**2
    cxx, cxy, cyy = torch.broadcast_tensors(cxx, cxy, cyy)
    return torch.stack([torch.stack([cxx, cxy], -1), torch.stack([cxy, cyy], -1)], -2)


def derive_kernel(kernel: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """The directional derivative of ``kernel`` along ``angle`` (central differences
    per grid step): ``cos(angle) * d/d(dim 0) + sin(angle) * d/d(dim 1)`` of the last
    two dimensions, as in Norse 1.1.

    ``angle`` may carry a batch ``(n,)`` matching ``kernel`` ``(n, size, size)``.
    """
    angle = _float_tensor(angle, kernel)
    if angle.dim() > 0 and kernel.dim() > 2:
        angle = angle.reshape(*angle.shape, 1, 1)
    grad_0 = torch.gradient(kernel, dim=kernel.dim() - 2)[0]
    grad_1 = torch.gradient(kernel, dim=kernel.dim() - 1)[0]
    return grad_0 * torch.cos(angle) + grad_1 * torch.sin(angle)


def calculate_normalization(dx: int, scale: float, gamma: float = 1):
    """Scale normalisation of the ``dx``-th derivative of a field of scale ``scale``
    (Lindeberg 1998, "Feature detection with automatic scale selection", eq. 20):
    ``scale ** (dx * (1 - gamma)) * (scale ** 2) ** (gamma / 2)``."""
    t = scale**2
    return scale ** (dx * (1 - gamma)) * t ** (gamma / 2)


def derive_spatial_receptive_field_single(
    field: torch.Tensor, scale: float, angle: float, dx: int, dy: int
) -> torch.Tensor:
    """``dx`` scale-normalised derivatives of ``field`` along ``angle`` and ``dy`` along
    ``angle + pi/2``.

    Example:
        >>> field = spatial_receptive_field(1.0, 0.0, 1.0, 9)
        >>> derived = derive_spatial_receptive_field_single(field, 1.0, 0.0, 1, 0)
    """
    angle = _float_tensor(angle, field)
    derived = field
    normalization = calculate_normalization(1, scale, 1)
    for _ in range(int(dx)):
        derived = derive_kernel(derived, angle) * normalization
    for _ in range(int(dy)):
        derived = derive_kernel(derived, angle + torch.pi / 2) * normalization
    return derived


def derive_spatial_receptive_field(
    field: torch.Tensor,
    scale: float,
    angle: float,
    derivatives: List[Tuple[int, int]],
) -> torch.Tensor:
    """Derivatives of one field for each ``(dx, dy)`` in ``derivatives``:
    ``(len(derivatives), size, size)``."""
    return torch.stack(
        [
            derive_spatial_receptive_field_single(field, scale, angle, dx, dy)
            for dx, dy in derivatives
        ]
    )


def spatial_receptive_field(
    scale: torch.Tensor,
    angle: torch.Tensor,
    ratio: torch.Tensor,
    size: int,
    dx: int = 0,
    dy: int = 0,
    domain: float = 10,
) -> torch.Tensor:
    """A ``(size, size)`` receptive field: the normalised Gaussian of covariance
    ``scale * covariance_matrix(ratio, 1 / ratio, angle)`` and its derivatives.

    Parameters:
        scale (torch.Tensor): scale :math:`s` (variance along the axes is
            :math:`s r^{\\pm 2}`)
        angle (torch.Tensor): rotation of the major axis (radians)
        ratio (torch.Tensor): eccentricity :math:`r` (1: circular)
        size (int): pixels per side
        dx (int): number of derivatives along ``angle``
        dy (int): number of derivatives perpendicular to ``angle``
        domain (float): the grid spans ``[-domain, domain]``
    """
    angle = _float_tensor(angle)
    ratio = _float_tensor(ratio, angle)
    if angle.numel() == 1:
        angle = angle.reshape(())
    c = covariance_matrix(ratio, 1 / ratio, angle) * scale
    kernel = gaussian_kernel(size, c, domain=domain)
    kernel = kernel / kernel.sum()
    return derive_spatial_receptive_field_single(kernel, scale, angle, dx, dy)


def _extract_derivatives(
    derivatives: Derivatives,
) -> Tuple[List[Tuple[int, int]], int]:
    """The ``(dx, dy)`` pairs meant by ``derivatives`` and the highest order.

    An int ``n`` means every pair up to order ``n`` in each direction (``0``: the field
    alone); a list of pairs or an ``(m, 2)`` tensor is taken as it is.
    """
    if isinstance(derivatives, torch.Tensor):
        if derivatives.dim() == 0:
            return _extract_derivatives(int(derivatives))
        if derivatives.dim() != 2 or derivatives.shape[1] != 2:
            raise ValueError(
                "derivatives as a tensor must have shape (m, 2) of (dx, dy) pairs, got "
                f"{tuple(derivatives.shape)}"
            )
        derivatives = [tuple(int(v) for v in row) for row in derivatives.tolist()]
    if isinstance(derivatives, bool):
        raise ValueError(
            f"derivatives must be an int or (dx, dy) pairs, got {derivatives!r}"
        )
    if isinstance(derivatives, int):
        if derivatives < 0:
            raise ValueError(f"derivatives must be >= 0, got {derivatives}")
        if derivatives == 0:
            return [(0, 0)], 0
        orders = range(derivatives + 1)
        return [(x, y) for x in orders for y in orders], derivatives
    if isinstance(derivatives, (list, tuple)) and len(derivatives) > 0:
        pairs = [tuple(pair) for pair in derivatives]
        if any(len(pair) != 2 or min(pair) < 0 for pair in pairs):
            raise ValueError(
                f"derivatives must be non-negative (dx, dy) pairs, got {derivatives!r}"
            )
        return pairs, max(max(x, y) for x, y in pairs)
    raise ValueError(
        f"Derivatives expected either a number or a list of tuples, but got {derivatives}"
    )


def spatial_parameters(
    scales: torch.Tensor,
    angles: torch.Tensor,
    ratios: torch.Tensor,
    derivatives: Derivatives,
    include_replicas: bool = False,
) -> torch.Tensor:
    """Rows ``(scale, angle, ratio, dx, dy)`` for every combination of the arguments.

    The order is that of Norse 1.1: the cartesian product of scales, angles and ratios
    (with ``include_replicas=False`` and some ratio equal to 1, the eccentric fields
    first and the circular ones after), each repeated for every derivative pair.
    Differentiable with respect to ``scales``, ``angles`` and ``ratios``.

    Returns:
        ``(n_fields, 5)``
    """
    if include_replicas or not bool((ratios == 1).any()):
        parameters = torch.cartesian_prod(scales, angles, ratios)
    else:
        mask = ratios != 1
        parameters = torch.cat(
            [
                torch.cartesian_prod(scales, angles, ratios[mask]),
                torch.cartesian_prod(scales, angles, ratios[~mask]),
            ]
        )
    parameters = parameters.reshape(-1, 3)  # cartesian_prod of single values is 1-d
    pairs, _ = _extract_derivatives(derivatives)
    pairs = torch.tensor(pairs, device=parameters.device, dtype=parameters.dtype)
    return torch.cat(
        [
            parameters.repeat_interleave(len(pairs), 0),
            pairs.repeat(len(parameters), 1),
        ],
        1,
    )


def spatial_receptive_fields_with_derivatives(
    combinations: torch.Tensor,
    size: int,
    domain: float = 1,
) -> torch.Tensor:
    """The fields of every parameter row ``(scale, angle, ratio, dx, dy)``.

    Computed for all rows at once (the rows sharing a derivative order together); equal
    to stacking :func:`spatial_receptive_field` of each row.

    Parameters:
        combinations (torch.Tensor): ``(n_fields, 5)``, e.g. from :func:`spatial_parameters`
        size (int): pixels per side
        domain (float): the grid spans ``[-domain, domain]``

    Returns:
        ``(n_fields, size, size)``
    """
    if combinations.dim() != 2 or combinations.shape[1] != 5:
        raise ValueError(
            "combinations must have shape (n_fields, 5) of (scale, angle, ratio, dx, dy), "
            f"got {tuple(combinations.shape)}"
        )
    combinations = _float_tensor(combinations)
    scale, angle, ratio = combinations[:, 0], combinations[:, 1], combinations[:, 2]
    c = covariance_matrix(ratio, 1 / ratio, angle) * scale[:, None, None]
    kernels = gaussian_kernel(size, c, domain=domain)
    kernels = kernels / kernels.sum(dim=(-2, -1), keepdim=True)
    orders = combinations[:, 3:].detach().round().long()
    fields: List[Optional[torch.Tensor]] = [None] * len(combinations)
    for dx, dy in {tuple(row) for row in orders.tolist()}:
        rows = torch.nonzero((orders[:, 0] == dx) & (orders[:, 1] == dy)).flatten()
        derived = derive_spatial_receptive_field_single(
            kernels[rows], scale[rows, None, None], angle[rows], dx, dy
        )
        for position, row in enumerate(rows.tolist()):
            fields[row] = derived[position]
    return torch.stack(fields)


def temporal_scale_distribution(
    n_scales: int,
    min_scale: float = 1,
    max_scale: Optional[float] = None,
    c: Optional[float] = 1.41421,
) -> torch.Tensor:
    r"""Temporal scales (standard deviations, in steps) of Lindeberg (2016), "Time-causal
    and time-recursive spatio-temporal receptive fields":

    .. math::
        \tau_k = c^{2(k - K)} \tau_{max}, \qquad k = 1 \dots K

    returned as :math:`\sqrt{\tau_k}`. Without ``max_scale`` the variances grow by
    :math:`c^2` from ``min_scale``; with it, ``c`` is chosen so that they span
    ``[min_scale, max_scale]``.

    Parameters:
        n_scales (int): number of scales :math:`K`
        min_scale (float): the smallest variance
        max_scale (float): the largest variance (optional; overrides ``c``)
        c (float): ratio of successive standard deviations, in (1, 2)
    """
    if isinstance(n_scales, bool) or not isinstance(n_scales, int) or n_scales < 1:
        raise ValueError(f"n_scales must be a positive int, got {n_scales!r}")
    xs = torch.linspace(1, n_scales, n_scales)
    if max_scale is not None:
        if n_scales == 1:
            return torch.tensor([min_scale]).sqrt()
        # (Norse 1.1 inverted this ratio, giving scales from max**2/min down to max.)
        c = (max_scale / min_scale) ** (1 / (2 * (n_scales - 1)))
    else:
        max_scale = (c ** (2 * (n_scales - 1))) * min_scale
    taus = c ** (2 * (xs - n_scales)) * max_scale
    return taus.sqrt()


def spatio_temporal_parameters(
    scales: torch.Tensor,
    angles: torch.Tensor,
    ratios: torch.Tensor,
    derivatives: Derivatives,
    temporal_scales: torch.Tensor,
    include_replicas: bool = False,
) -> torch.Tensor:
    """Rows ``(scale, angle, ratio, dx, dy, temporal_scale)``: every spatial parameter row
    of :func:`spatial_parameters` combined with every temporal scale.

    (Norse 1.1 passed the 2-d spatial rows to ``torch.cartesian_prod``, which fails.)

    Returns:
        ``(n_spatial * n_temporal, 6)``
    """
    spatial = spatial_parameters(scales, angles, ratios, derivatives, include_replicas)
    temporal = torch.as_tensor(temporal_scales, dtype=spatial.dtype).flatten()
    return torch.cat(
        [
            spatial.repeat_interleave(len(temporal), 0),
            temporal.repeat(len(spatial))[:, None],
        ],
        1,
    )
