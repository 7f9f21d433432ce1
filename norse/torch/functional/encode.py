r"""Encoders: turn numbers into spike trains (or into population codes).

Every spike encoder returns a tensor with a new, leading time dimension:
an input of shape ``(...)`` becomes ``(seq_length, ...)``, ready for a time module such as
:class:`~norse.torch.module.lif.LIF`. The ``*_step`` variants produce one time step of
shape ``(...)``.

===============================  ============================================  ===========
encoder                          code                                          output
===============================  ============================================  ===========
:func:`poisson_encode`           rate: Bernoulli spikes, rate ``f_max * x``     ``{0, 1}``
:func:`signed_poisson_encode`    rate of ``|x|``, sign of ``x``                 ``{-1, 0, 1}``
:func:`constant_current_lif_encode`  rate: a LIF membrane driven by ``x``       ``{0, 1}``
:func:`spike_latency_lif_encode` latency: the first spike of that membrane      ``{0, 1}``
:func:`spike_latency_encode`     keeps only the first spike of a spike train   input values
:func:`population_encode`        receptive fields (not spikes)                 real values
===============================  ============================================  ===========

Inputs are validated once per call: they must be tensors without NaN; integer or boolean
tensors are converted to the default floating dtype (as Norse 1.1 effectively does), and
floating tensors keep their dtype (``float64`` in gives ``float64`` spikes out).

Example:
    >>> import torch
    >>> from norse.torch.functional.encode import poisson_encode
    >>> generator = torch.Generator().manual_seed(0)
    >>> spikes = poisson_encode(torch.rand(8, 10), seq_length=100, generator=generator)
    >>> spikes.shape
    torch.Size([100, 8, 10])
"""

from typing import Any, Callable, Optional, Union

import torch

from norse.torch.functional.lif import LIFParameters, lif_current_encoder
from norse.torch.functional.validation import (
    broadcasts_into,
    check_count,
    check_dt,
    check_f_max,
    check_scale,
    check_seq_length,
    check_tensor,
    float_input,
    validate_parameters,
)

Number = Union[int, float]


# --- validation (once per call, never inside the time loop) -------------------------


def _check_generator(generator: Optional[torch.Generator], x: torch.Tensor) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator.device.type != x.device.type:
        raise ValueError(
            f"generator is on device {generator.device} but input_values is on "
            f"{x.device}; create it with torch.Generator(device={str(x.device)!r})"
        )


# --- rate (Poisson) codes --------------------------------------------------------------


def _rate_arguments(
    input_values: Any, f_max: Any, dt: Any, generator: Optional[torch.Generator]
) -> torch.Tensor:
    """Checks the arguments shared by the Poisson encoders; returns the input as a
    floating tensor."""
    x = float_input(input_values, "input_values")
    check_f_max(f_max)
    if isinstance(f_max, torch.Tensor) and not broadcasts_into(f_max.shape, x.shape):
        raise ValueError(
            f"f_max has shape {tuple(f_max.shape)}, which does not broadcast to the "
            f"input shape {tuple(x.shape)} (use a number, or one rate per value)"
        )
    check_dt(dt)
    _check_generator(generator, x)
    return x


def _bernoulli_spikes(
    probability: torch.Tensor,
    shape: torch.Size,
    generator: Optional[torch.Generator],
) -> torch.Tensor:
    # float32 uniforms (the stream Norse 1.1 draws, so a seed gives the same spikes):
    # fine enough for probabilities down to 2**-24, unlike float16 uniforms. Because
    # the uniforms lie in [0, 1), probabilities >= 1 always spike and <= 0 never do.
    uniform = torch.rand(
        shape, dtype=torch.float32, device=probability.device, generator=generator
    )
    return uniform < probability


def poisson_encode(
    input_values: torch.Tensor,
    seq_length: int,
    f_max: float = 100,
    dt: float = 0.001,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    r"""Rate code: independent Bernoulli spikes with rate ``f_max * input_values``.

    In every time step and for every element

    .. math::
        z_t = \begin{cases} 1 & u_t < \Delta t\, f_{max}\, x, \quad u_t \sim U[0, 1) \\
        0 & \text{otherwise} \end{cases}

    which approximates a Poisson process of rate :math:`f_{max} x` (Hz) for
    :math:`\Delta t f_{max} x \ll 1`. Values are meant to lie in
    :math:`[0, 1]`; outside :math:`[0, 1/(f_{max} \Delta t)]` the spike probability is
    clamped to :math:`[0, 1]` (negative values never spike, large values spike every
    step), exactly as in Norse 1.1.

    Parameters:
        input_values (torch.Tensor): rates in units of ``f_max``, shape ``(...)``
        seq_length (int): number of time steps ``T`` (positive)
        f_max (float): rate (Hz) of an input of 1.0 (non-negative)
        dt (float): time step (s), the one of the model the spikes feed
        generator (torch.Generator): random source on the input's device, e.g.
            ``torch.Generator().manual_seed(0)``, for reproducible spikes (the same seed
            gives the same spikes as Norse 1.1 for float32 input)

    Returns:
        Spikes of shape ``(seq_length, ...)`` with the dtype of ``input_values`` (the
        default float dtype for integer input).

    Raises:
        TypeError, ValueError: for a bad ``seq_length``, ``f_max``, ``dt``, a NaN or
            non-tensor input or a generator on another device.
    """
    x = _rate_arguments(input_values, f_max, dt, generator)
    seq_length = check_seq_length(seq_length)
    spikes = _bernoulli_spikes(dt * f_max * x, (seq_length, *x.shape), generator)
    return spikes.to(x.dtype)


def poisson_encode_step(
    input_values: torch.Tensor,
    f_max: float = 1000,
    dt: float = 0.001,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """One time step of :func:`poisson_encode`: spikes of the shape of ``input_values``.

    Note the default ``f_max`` of 1000 Hz (as in Norse 1.1), not 100 Hz: an input of 1.0
    then spikes in every step of 1 ms.

    Parameters:
        input_values (torch.Tensor): rates in units of ``f_max``, shape ``(...)``
        f_max (float): rate (Hz) of an input of 1.0
        dt (float): time step (s)
        generator (torch.Generator): random source for reproducible spikes

    Returns:
        Spikes in ``{0, 1}`` of shape ``(...)``.
    """
    x = _rate_arguments(input_values, f_max, dt, generator)
    return _bernoulli_spikes(dt * f_max * x, x.shape, generator).to(x.dtype)


def _signed_spikes(x: torch.Tensor, events: torch.Tensor) -> torch.Tensor:
    return torch.where(
        events, torch.sign(x), torch.zeros((), dtype=x.dtype, device=x.device)
    )


def signed_poisson_encode(
    input_values: torch.Tensor,
    seq_length: int,
    f_max: float = 100,
    dt: float = 0.001,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    r"""Signed rate code: Bernoulli events with rate ``f_max * |x|`` carrying the sign of
    ``x``.

    .. math::
        z_t = \operatorname{sign}(x)\, [u_t < \Delta t\, f_{max} |x|]

    Values are meant to lie in :math:`[-1, 1]`; the probability is clamped to
    :math:`[0, 1]` as in :func:`poisson_encode`.

    Parameters:
        input_values (torch.Tensor): signed rates in units of ``f_max``, shape ``(...)``
        seq_length (int): number of time steps (positive)
        f_max (float): rate (Hz) of an input of magnitude 1.0
        dt (float): time step (s)
        generator (torch.Generator): random source for reproducible spikes

    Returns:
        Events in ``{-1, 0, 1}`` of shape ``(seq_length, ...)``.
    """
    x = _rate_arguments(input_values, f_max, dt, generator)
    seq_length = check_seq_length(seq_length)
    events = _bernoulli_spikes(dt * f_max * x.abs(), (seq_length, *x.shape), generator)
    return _signed_spikes(x, events)


def signed_poisson_encode_step(
    input_values: torch.Tensor,
    f_max: float = 1000,
    dt: float = 0.001,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """One time step of :func:`signed_poisson_encode` (default ``f_max`` 1000 Hz, as
    Norse 1.1).

    Returns:
        Events in ``{-1, 0, 1}`` of the shape of ``input_values``.
    """
    x = _rate_arguments(input_values, f_max, dt, generator)
    return _signed_spikes(
        x, _bernoulli_spikes(dt * f_max * x.abs(), x.shape, generator)
    )


# --- codes from a LIF membrane -------------------------------------------------------------


def constant_current_lif_encode_unchecked(
    x: torch.Tensor, seq_length: int, p: LIFParameters, dt: float
) -> torch.Tensor:
    """:func:`constant_current_lif_encode` without its argument checks, for callers
    that check once (the encoder modules): ``x`` a floating tensor, ``seq_length`` a
    positive int, ``p`` and ``dt`` validated."""
    # The membrane starts at 0 (not v_leak), as in Norse 1.1.
    voltage = torch.zeros_like(x)
    spikes = []
    for _ in range(seq_length):
        z, voltage = lif_current_encoder(x, voltage, p, dt)
        spikes.append(z)
    return torch.stack(spikes)


def constant_current_lif_encode(
    input_current: torch.Tensor,
    seq_length: int,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> torch.Tensor:
    r"""Rate code: each value drives a LIF membrane as a constant current for
    ``seq_length`` steps; the spikes of the membrane are the code.

    Per step (:func:`~norse.torch.functional.lif.lif_current_encoder`, no synapse):

    .. math::
        v \leftarrow v + \Delta t\, \tau_{mem}^{-1} (v_{leak} - v + I), \quad
        z = \Theta(v - v_{th}), \quad v \leftarrow v_{reset} \text{ where } z = 1

    starting from :math:`v = 0`. With :math:`v_{leak} = v_{reset} = 0` and
    :math:`a = \Delta t\,\tau_{mem}^{-1}` the voltage after :math:`n` steps is
    :math:`I (1 - (1 - a)^n)`, so a current :math:`I > v_{th}` fires every
    :math:`n^* = \lfloor \ln(1 - v_{th}/I) / \ln(1 - a) \rfloor + 1` steps, close to the
    continuous period :math:`\tau_{mem} \ln(I / (I - v_{th}))` for small ``dt``; currents
    :math:`I \le v_{th}` never fire. Gradients flow through the surrogate of ``p.method``.

    Example:
        >>> constant_current_lif_encode(torch.as_tensor([2.0, 4.0, 8.0, 16.0]), 2)
        tensor([[0., 0., 0., 1.],
                [0., 0., 1., 1.]])

    Parameters:
        input_current (torch.Tensor): constant input currents, shape ``(...)``
        seq_length (int): number of time steps (positive)
        p (LIFParameters): membrane parameters (``tau_syn_inv`` is not used)
        dt (float): time step (s)

    Returns:
        Spikes of shape ``(seq_length, ...)``.
    """
    x = float_input(input_current, "input_current")
    seq_length = check_seq_length(seq_length)
    validate_parameters(p, check_dt(dt))
    return constant_current_lif_encode_unchecked(x, seq_length, p, dt)


def spike_latency_lif_encode(
    input_current: torch.Tensor,
    seq_length: int,
    p: LIFParameters = LIFParameters(),
    dt: float = 0.001,
) -> torch.Tensor:
    """Latency code: like :func:`constant_current_lif_encode`, but every element emits
    only its *first* spike (an infinite refractory period). Strong currents spike early;
    currents that do not reach ``p.v_th`` within ``seq_length`` steps stay silent.

    With the default parameters, :math:`v_{leak} = v_{reset} = 0`, the spike of a current
    :math:`I > v_{th}` falls at step index :math:`n^* - 1` (0-based) with :math:`n^*` as in
    :func:`constant_current_lif_encode`.

    Parameters:
        input_current (torch.Tensor): input currents, shape ``(...)``
        seq_length (int): number of time steps (positive)
        p (LIFParameters): membrane parameters
        dt (float): time step (s)

    Returns:
        Spikes of shape ``(seq_length, ...)`` with at most one spike per element.
    """
    return spike_latency_encode_unchecked(
        constant_current_lif_encode(input_current, seq_length, p, dt)
    )


def spike_latency_encode_unchecked(spikes: torch.Tensor) -> torch.Tensor:
    """:func:`spike_latency_encode` without its argument checks (``spikes`` a tensor
    ``(T, ...)`` without NaN): zeroes every step after an element's first event. As in
    Norse 1.1 the gradient passes at every step up to and including the first event
    (where the output *is* the input), so an element that never spikes still gets one."""
    events = (spikes != 0).to(torch.int32)
    earlier = torch.cumsum(events, dim=0) - events
    return torch.where(
        earlier == 0, spikes, torch.zeros((), dtype=spikes.dtype, device=spikes.device)
    )


def spike_latency_encode(input_spikes: torch.Tensor) -> torch.Tensor:
    """Keeps only the first spike of every element of a spike train; later spikes are
    zeroed. Strong, constant inputs spike first, so the time of the first spike encodes
    the input (`Van Rullen & Thorpe 2001 <https://doi.org/10.1162/08997660152002852>`_).

    Any non-zero value counts as a spike and is kept as it is (so signed events keep
    their sign). The gradient passes unchanged at every step up to and including the
    first spike, as in Norse 1.1.

    Example:
        >>> spike_latency_encode(torch.as_tensor([[0, 1, 1], [1, 1, 1]]))
        tensor([[0, 1, 1],
                [1, 0, 0]])

    Parameters:
        input_spikes (torch.Tensor): spikes of shape ``(T, ...)`` (time first), any dtype

    Returns:
        A tensor of the shape and dtype of ``input_spikes``.
    """
    check_tensor(input_spikes, "input_spikes")
    if input_spikes.dim() < 1:
        raise ValueError(
            "input_spikes must have a leading time dimension (T, ...), got a 0-d tensor"
        )
    if input_spikes.is_floating_point() and bool(torch.isnan(input_spikes).any()):
        raise ValueError("input_spikes contains NaN")
    return spike_latency_encode_unchecked(input_spikes)


# --- population codes --------------------------------------------------------------------


def gaussian_rbf(tensor: torch.Tensor, sigma: float = 1) -> torch.Tensor:
    r"""Gaussian radial basis kernel of a (squared) distance :math:`d`:

    .. math::
        K(d) = \exp\left(-\frac{d}{2\sigma^2}\right)

    Parameters:
        tensor (torch.Tensor): squared distances :math:`\|x - x'\|^2`
        sigma (float): width of the gaussian, default 1 (must not be 0)
    """
    if not isinstance(sigma, torch.Tensor) and sigma == 0:
        raise ValueError("sigma must be non-zero (the width of the gaussian), got 0")
    return torch.exp(-tensor / (2 * sigma**2))


def euclidean_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Element-wise *squared* Euclidean distance ``(x - y) ** 2`` (the name is Norse's;
    :func:`gaussian_rbf` expects the squared distance)."""
    return (x - y).pow(2)


def population_encode(
    input_values: torch.Tensor,
    out_features: int,
    scale: Optional[Union[Number, torch.Tensor]] = None,
    kernel: Callable[[torch.Tensor], torch.Tensor] = gaussian_rbf,
    distance_function: Callable[
        [torch.Tensor, torch.Tensor], torch.Tensor
    ] = euclidean_distance,
) -> torch.Tensor:
    r"""Population code: each value becomes the responses of ``out_features`` receptive
    fields whose centres are spread evenly over ``[0, scale]``.

    With centres :math:`c_k = k\,s/(K-1)`, :math:`k = 0..K-1` (:math:`K` =
    ``out_features``, :math:`s` = ``scale``):

    .. math::
        y_{\dots,k} = \text{kernel}(\text{distance}(x, c_k) \cdot s)

    so with the defaults :math:`y_k = \exp(-s (x - c_k)^2 / 2)`. The distance is
    *multiplied* by ``scale``, as in Norse 1.1. The result is not spikes; feed it to
    e.g. :func:`poisson_encode`.

    Example:
        >>> population_encode(torch.as_tensor([0.0, 0.5, 1.0]), 3)
        tensor([[1.0000, 0.8825, 0.6065],
                [0.8825, 1.0000, 0.8825],
                [0.6065, 0.8825, 1.0000]])

    Parameters:
        input_values (torch.Tensor): values to encode, shape ``(...)``
        out_features (int): number of receptive fields per value (positive)
        scale (float or torch.Tensor): upper end of the centres, positive; default the
            largest input value. A tensor that broadcasts to the input shape sets a scale
            per value (e.g. per sample).
        kernel: maps the scaled distances to responses, default :func:`gaussian_rbf`
        distance_function: ``(values, centres) -> distances`` on tensors of shape
            ``(..., out_features)``, default :func:`euclidean_distance`

    Returns:
        A tensor of shape ``(..., out_features)``.
    """
    x = float_input(input_values, "input_values")
    out_features = check_count(out_features, "out_features")
    if scale is None:
        if x.numel() == 0:
            raise ValueError("input_values is empty; pass scale explicitly")
        scale = check_scale(x.max(), "scale (default: the largest input value)")
    else:
        scale = check_scale(scale, "scale")
    scale = scale.to(dtype=x.dtype, device=x.device)
    if not broadcasts_into(scale.shape, x.shape):
        raise ValueError(
            f"scale has shape {tuple(scale.shape)}, which does not broadcast to the "
            f"input shape {tuple(x.shape)} (use a number, or one scale per value)"
        )
    if scale.dim() > 0:
        scale = scale.unsqueeze(-1)  # one scale per value, broadcast over the centres
    size = (*x.shape, out_features)
    # c_k = k * (s / (K - 1)): the spacing of torch.linspace(0, s, K), but differentiable
    # in s and broadcastable over a per-value scale.
    steps = torch.arange(out_features, dtype=x.dtype, device=x.device)
    centres = (steps * (scale / max(out_features - 1, 1))).expand(size)
    values = x.unsqueeze(-1).expand(size)
    return kernel(distance_function(values, centres) * scale)
