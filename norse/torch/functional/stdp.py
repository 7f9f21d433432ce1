r"""Spike-timing-dependent plasticity (STDP) with trace-based pair updates.

Each presynaptic neuron keeps a trace :math:`x_{pre}` and each postsynaptic neuron a
trace :math:`x_{post}`:

.. math::
    \dot x_{pre} = \tau_{pre}^{-1} (-x_{pre} + a_{pre} z_{pre}), \qquad
    \dot x_{post} = \tau_{post}^{-1} (-x_{post} + a_{post} z_{post})

and the weight from :math:`i` (pre) to :math:`j` (post) changes at every step by

.. math::
    \Delta w_{ji} = A_+(w_{ji})\, z_{post,j}\, x_{pre,i} - A_-(w_{ji})\, x_{post,j}\, z_{pre,i}

(summed over the batch), then is clipped to :math:`[w_{min}, w_{max}]` with
``hardbound=True``. A presynaptic spike :math:`\Delta t \ge 0` before a postsynaptic one
thus potentiates by :math:`A_+ a_{pre}\, \delta (1 - \delta)^{\Delta t / dt}` with
:math:`\delta = dt\, \tau_{pre}^{-1}`: the exponential window
:math:`A_+ a_{pre}\, \delta\, e^{-\Delta t / \tau_{pre}}` up to :math:`O(dt)`; the reverse
order depresses with :math:`\tau_{post}`.

Weight dependence (``stdp_algorithm``):

=======================  ====================================  ====================================
algorithm                :math:`A_+(w)`                        :math:`A_-(w)`
=======================  ====================================  ====================================
``additive``             :math:`\eta_+`                        :math:`\eta_-`
``additive_step``        :math:`\eta_+ H(w_{max} - w)`         :math:`\eta_- H(w - w_{min})`
``multiplicative_pow``   :math:`\eta_+ [w_{max} - w]_+^{\mu}`  :math:`\eta_- [w - w_{min}]_+^{\mu}`
``multiplicative_relu``  :math:`\eta_+ [w_{max} - w]_+`        :math:`\eta_- [w - w_{min}]_+`
=======================  ====================================  ====================================

Inside the bounds ``multiplicative_pow`` is Norse 1.1's :math:`(w_{max} - w)^{\mu}`; a
weight outside them (``hardbound=False``) gets 0 instead of Norse's NaN from a negative
base.

One step (the update order of Norse 1.1): decay the traces and add this step's spikes,
then compute both terms from the *new* traces and the *old* weight, then clip.

Unlike Norse 1.1, the step functions do not modify the state they are given: they return
a new :class:`STDPState` (use the returned one, as the Norse 1.1 examples do).
"""

import math
from typing import Any, Tuple, Union

import torch

from norse.torch.functional.heaviside import heaviside
from norse.torch.functional.validation import check_input, check_shape

Scalar = Union[float, torch.Tensor]

#: The weight dependences of :class:`STDPParameters`.
STDP_ALGORITHMS = (
    "additive",
    "additive_step",
    "multiplicative_pow",
    "multiplicative_relu",
)


def _decayed(
    trace: torch.Tensor, z: torch.Tensor, tau_inv: Scalar, a: Scalar, dt: float
) -> torch.Tensor:
    return trace + dt * tau_inv * (-trace + a * z)


class STDPState:
    """State of STDP: the presynaptic and postsynaptic spike traces.

    Parameters:
        t_pre (torch.Tensor): presynaptic trace, shape of the presynaptic spikes
        t_post (torch.Tensor): postsynaptic trace, shape of the postsynaptic spikes
    """

    __slots__ = ("t_pre", "t_post")

    def __init__(self, t_pre: torch.Tensor, t_post: torch.Tensor):
        self.t_pre = t_pre
        self.t_post = t_post

    def decay(
        self,
        z_pre: torch.Tensor,
        z_post: torch.Tensor,
        tau_pre_inv: Scalar,
        tau_post_inv: Scalar,
        a_pre: Scalar,
        a_post: Scalar,
        dt: float = 0.001,
    ) -> None:
        """Advances both traces by one Euler step *in place* (the Norse 1.1 method).

        Parameters:
            z_pre (torch.Tensor): presynaptic spikes
            z_post (torch.Tensor): postsynaptic spikes
            tau_pre_inv, tau_post_inv: inverse trace time constants (1/s)
            a_pre, a_post: trace increments per spike
            dt (float): time step (s)
        """
        self.t_pre = _decayed(self.t_pre, z_pre, tau_pre_inv, a_pre, dt)
        self.t_post = _decayed(self.t_post, z_post, tau_post_inv, a_post, dt)

    def __iter__(self):
        return iter((self.t_pre, self.t_post))

    def __repr__(self) -> str:
        return f"STDPState(t_pre={self.t_pre!r}, t_post={self.t_post!r})"


def _as_float(value: Any, name: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return float("nan")  # per-synapse values are not range-checked
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float or tensor, got {type(value).__name__}")
    return float(value)


class STDPParameters:
    """STDP parameters.

    Parameters:
        a_pre (torch.Tensor): contribution of a presynaptic spike to its trace
        a_post (torch.Tensor): contribution of a postsynaptic spike to its trace
        tau_pre_inv (torch.Tensor): inverse time constant of the presynaptic trace (1/s)
        tau_post_inv (torch.Tensor): inverse time constant of the postsynaptic trace (1/s)
        w_min (torch.Tensor): lower weight bound (< w_max)
        w_max (torch.Tensor): upper weight bound (> w_min)
        eta_plus (torch.Tensor): learning rate of potentiation (0 < eta_plus << 1)
        eta_minus (torch.Tensor): learning rate of depression (0 < eta_minus << 1)
        stdp_algorithm (str): weight dependence, one of :data:`STDP_ALGORITHMS`
        mu (torch.Tensor): exponent of ``multiplicative_pow`` (0 <= mu <= 1); the other
            algorithms fix it (0 for the additive ones, 1 for ``multiplicative_relu``)
        hardbound (bool): clip the weights to ``[w_min, w_max]`` after every step
        convolutional (bool): whether the rule is used for convolution kernels
        stride, padding, dilation (int): of the convolution (:func:`stdp_step_conv2d`)

    Raises:
        ValueError: for an unknown ``stdp_algorithm``, ``w_min >= w_max``, negative
            learning rates, non-positive time constants or a negative ``mu``.
    """

    def __init__(
        self,
        a_pre: torch.Tensor = torch.as_tensor(1.0),
        a_post: torch.Tensor = torch.as_tensor(1.0),
        tau_pre_inv: torch.Tensor = torch.as_tensor(1.0 / 50e-3),
        tau_post_inv: torch.Tensor = torch.as_tensor(1.0 / 50e-3),
        w_min: torch.Tensor = 0.0,
        w_max: torch.Tensor = 1.0,
        eta_plus: torch.Tensor = 1e-3,
        eta_minus: torch.Tensor = 1e-3,
        stdp_algorithm: str = "additive",
        mu: torch.Tensor = 0.0,
        hardbound: bool = True,
        convolutional: bool = False,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
    ):
        if stdp_algorithm not in STDP_ALGORITHMS:
            raise ValueError(
                f"stdp_algorithm must be one of {STDP_ALGORITHMS}, got {stdp_algorithm!r}"
            )
        for name, value in (
            ("tau_pre_inv", tau_pre_inv),
            ("tau_post_inv", tau_post_inv),
        ):
            number = _as_float(value, name)
            if not (math.isnan(number) or (math.isfinite(number) and number > 0)):
                raise ValueError(
                    f"{name} must be a positive inverse time constant (1/s), got {number:g}"
                )
        for name, value in (("eta_plus", eta_plus), ("eta_minus", eta_minus)):
            if _as_float(value, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {_as_float(value, name):g}")
        low, high = _as_float(w_min, "w_min"), _as_float(w_max, "w_max")
        if not low < high and not (math.isnan(low) or math.isnan(high)):
            raise ValueError(
                f"w_min must be smaller than w_max, got {low:g} >= {high:g}"
            )
        if stdp_algorithm == "multiplicative_pow" and _as_float(mu, "mu") < 0:
            raise ValueError(f"mu must be >= 0, got {_as_float(mu, 'mu'):g}")
        for name, value in (
            ("stride", stride),
            ("padding", padding),
            ("dilation", dilation),
        ):
            if not isinstance(value, (int, tuple)) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int or tuple, got {value!r}")

        self.a_pre = a_pre
        self.a_post = a_post
        self.tau_pre_inv = tau_pre_inv
        self.tau_post_inv = tau_post_inv
        self.w_min = w_min
        self.w_max = w_max
        self.eta_plus = eta_plus
        self.eta_minus = eta_minus
        self.stdp_algorithm = stdp_algorithm
        if stdp_algorithm == "multiplicative_pow":
            self.mu = torch.as_tensor(mu, dtype=torch.get_default_dtype())
        else:
            self.mu = torch.tensor(
                1.0 if stdp_algorithm == "multiplicative_relu" else 0.0
            )
        self.hardbound = hardbound
        self.convolutional = convolutional
        self.stride = stride
        self.padding = padding
        self.dilation = dilation

    def A_plus(self, w: torch.Tensor) -> Union[torch.Tensor, float]:
        """Potentiation amplitude :math:`A_+(w)` of the chosen weight dependence."""
        if self.stdp_algorithm == "additive":
            return self.eta_plus
        if self.stdp_algorithm == "additive_step":
            return self.eta_plus * heaviside(self.w_max - w)
        if self.stdp_algorithm == "multiplicative_pow":
            return self.eta_plus * torch.pow(torch.relu(self.w_max - w), self.mu)
        return self.eta_plus * torch.relu(self.w_max - w)

    def A_minus(self, w: torch.Tensor) -> Union[torch.Tensor, float]:
        """Depression amplitude :math:`A_-(w)` of the chosen weight dependence."""
        if self.stdp_algorithm == "additive":
            return self.eta_minus
        if self.stdp_algorithm == "additive_step":
            return self.eta_minus * heaviside(w - self.w_min)
        if self.stdp_algorithm == "multiplicative_pow":
            return self.eta_minus * torch.pow(torch.relu(w - self.w_min), self.mu)
        return self.eta_minus * torch.relu(w - self.w_min)

    def bounding_func(self, w: torch.Tensor) -> torch.Tensor:
        """Clips ``w`` to ``[w_min, w_max]`` with ``hardbound``; identity otherwise."""
        if self.hardbound:
            return torch.clamp(w, self.w_min, self.w_max)
        return w

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in (
                "a_pre",
                "a_post",
                "tau_pre_inv",
                "tau_post_inv",
                "w_min",
                "w_max",
                "eta_plus",
                "eta_minus",
                "stdp_algorithm",
                "mu",
                "hardbound",
                "convolutional",
            )
        )
        return f"STDPParameters({fields})"


def _check_arguments(z_pre: Any, z_post: Any, w: Any, state: Any) -> None:
    """Spikes, weights and traces must be floating tensors, the spikes and traces of one
    dtype (the einsum products need it); ``state`` an :class:`STDPState`."""
    if not isinstance(state, STDPState):
        raise TypeError(f"state_stdp must be an STDPState, got {type(state).__name__}")
    tensors = {
        "z_pre": z_pre,
        "z_post": z_post,
        "w": w,
        "state_stdp.t_pre": state.t_pre,
        "state_stdp.t_post": state.t_post,
    }
    for name, value in tensors.items():
        check_input(value, name)
    # the weights may differ (the update promotes), the spikes and traces meet in einsum
    del tensors["w"]
    if len({value.dtype for value in tensors.values()}) > 1:
        found = ", ".join(f"{name} {value.dtype}" for name, value in tensors.items())
        raise TypeError(f"spikes and traces must have one dtype, got {found}")


def _traces(
    z_pre: torch.Tensor,
    z_post: torch.Tensor,
    state: STDPState,
    p: STDPParameters,
    dt: float,
) -> STDPState:
    # _check_arguments has checked that these are tensors
    check_shape(state.t_pre, z_pre.shape, "state_stdp.t_pre")
    check_shape(state.t_post, z_post.shape, "state_stdp.t_post")
    return STDPState(
        t_pre=_decayed(state.t_pre, z_pre, p.tau_pre_inv, p.a_pre, dt),
        t_post=_decayed(state.t_post, z_post, p.tau_post_inv, p.a_post, dt),
    )


def _apply(
    w: torch.Tensor,
    potentiation: torch.Tensor,
    depression: torch.Tensor,
    p: STDPParameters,
) -> torch.Tensor:
    return p.bounding_func(w + (p.A_plus(w) * potentiation - p.A_minus(w) * depression))


def stdp_step_linear(
    z_pre: torch.Tensor,
    z_post: torch.Tensor,
    w: torch.Tensor,
    state_stdp: STDPState,
    p_stdp: STDPParameters = STDPParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, STDPState]:
    """One STDP step for the weights of a linear (fully connected) layer.

    Parameters:
        z_pre (torch.Tensor): presynaptic spikes ``(batch, n_pre)`` in {0, 1}
        z_post (torch.Tensor): postsynaptic spikes ``(batch, n_post)`` in {0, 1}
        w (torch.Tensor): weights ``(n_post, n_pre)``
        state_stdp (STDPState): traces of shapes ``(batch, n_pre)``, ``(batch, n_post)``
        p_stdp (STDPParameters): parameters
        dt (float): time step (s)

    Returns:
        The updated weights and the new :class:`STDPState`.
    """
    _check_arguments(z_pre, z_post, w, state_stdp)
    if z_pre.dim() != 2 or z_post.dim() != 2 or z_pre.shape[0] != z_post.shape[0]:
        raise ValueError(
            "z_pre and z_post must have shapes (batch, n_pre) and (batch, n_post), got "
            f"{tuple(z_pre.shape)} and {tuple(z_post.shape)}"
        )
    check_shape(w, (z_post.shape[1], z_pre.shape[1]), "w")
    state = _traces(z_pre, z_post, state_stdp, p_stdp, dt)
    potentiation = torch.einsum("bi,bj->ij", z_post, state.t_pre)
    depression = torch.einsum("bi,bj->ij", state.t_post, z_pre)
    return _apply(w, potentiation, depression, p_stdp), state


def stdp_step_conv2d(
    z_pre: torch.Tensor,
    z_post: torch.Tensor,
    w: torch.Tensor,
    state_stdp: STDPState,
    p_stdp: STDPParameters = STDPParameters(),
    dt: float = 0.001,
) -> Tuple[torch.Tensor, STDPState]:
    """One STDP step for the kernel of a 2d convolution.

    Every output position is a postsynaptic neuron whose presynaptic neurons are its
    receptive field (unfolded with ``p_stdp``'s stride, padding and dilation); the
    kernel change is the sum of the linear rule over all positions (weight sharing).

    Parameters:
        z_pre (torch.Tensor): presynaptic spikes ``(batch, c_in, h_in, w_in)``
        z_post (torch.Tensor): postsynaptic spikes ``(batch, c_out, h_out, w_out)``
        w (torch.Tensor): kernel ``(c_out, c_in, k_h, k_w)``
        state_stdp (STDPState): traces of the shapes of ``z_pre`` and ``z_post``
        p_stdp (STDPParameters): parameters
        dt (float): time step (s)

    Returns:
        The updated kernel and the new :class:`STDPState`.
    """
    _check_arguments(z_pre, z_post, w, state_stdp)
    if z_pre.dim() != 4 or z_post.dim() != 4 or w.dim() != 4:
        raise ValueError(
            "z_pre, z_post and w must be 4-d: (batch, c_in, h, w), (batch, c_out, h', w') "
            f"and (c_out, c_in, k_h, k_w); got {tuple(z_pre.shape)}, "
            f"{tuple(z_post.shape)} and {tuple(w.shape)}"
        )
    batch = z_pre.shape[0]
    c_out, c_in, kernel_h, kernel_w = w.shape
    if z_post.shape[:2] != (batch, c_out) or z_pre.shape[1] != c_in:
        raise ValueError(
            f"channels do not match the kernel {tuple(w.shape)}: z_pre "
            f"{tuple(z_pre.shape)}, z_post {tuple(z_post.shape)}"
        )
    state = _traces(z_pre, z_post, state_stdp, p_stdp, dt)

    def unfold(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.unfold(
            x,
            (kernel_h, kernel_w),
            dilation=p_stdp.dilation,
            padding=p_stdp.padding,
            stride=p_stdp.stride,
        )

    t_pre_unfolded = unfold(state.t_pre)  # (batch, c_in * k_h * k_w, positions)
    z_pre_unfolded = unfold(z_pre)
    positions = z_post.shape[2] * z_post.shape[3]
    if t_pre_unfolded.shape[-1] != positions:
        raise ValueError(
            f"z_post has {positions} positions but the convolution of z_pre "
            f"{tuple(z_pre.shape)} with this kernel, stride, padding and dilation gives "
            f"{t_pre_unfolded.shape[-1]}"
        )
    potentiation = torch.einsum(
        "bik,bjk->ij", z_post.reshape(batch, c_out, -1), t_pre_unfolded
    ).reshape(w.shape)
    depression = torch.einsum(
        "bik,bjk->ij", state.t_post.reshape(batch, c_out, -1), z_pre_unfolded
    ).reshape(w.shape)
    return _apply(w, potentiation, depression, p_stdp), state
