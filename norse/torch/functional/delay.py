r"""Synaptic (axonal) delays: spike trains shifted in time by a number of steps.

For an input :math:`x_t` (time first: ``(T, batch, *features)``) and a delay :math:`d`
(in steps; one step is ``dt`` seconds) the output is

.. math::
    y_t = x_{t - d}, \qquad x_{t} = 0 \text{ for } t < 0 .

**Per neuron or per synapse.** The delays are a tensor of shape ``D`` that broadcasts
against the feature shape ``F`` of the input; the output has shape
``(T, batch, *broadcast(F, D))``. Delays of shape ``F`` delay every neuron's train;
delays of shape ``(n_post, n_pre)`` for input ``(T, batch, n_pre)`` delay every synapse
and give ``(T, batch, n_post, n_pre)``, from which a weighted sum
``(y * w).sum(-1)`` is the delayed synaptic input of the ``n_post`` neurons.

**Integer and learnable delays.** Integer tensors are exact shifts. Floating-point delays
:math:`d = k + f` (:math:`k = \lfloor d \rfloor`, :math:`0 \le f < 1`) are linear
interpolations between the two neighbouring integer shifts,

.. math::
    y_t = (1 - f)\, x_{t - k} + f\, x_{t - k - 1},

so a spike delayed by 2.3 steps arrives as 0.7 two steps later and 0.3 three steps later
(the total is conserved). :math:`y` is continuous and piecewise linear in :math:`d`, and
its derivative is the difference of the two shifted trains,
:math:`\partial y_t / \partial d = x_{t-k-1} - x_{t-k}` (the right derivative at integer
:math:`d`): the triangle-kernel interpolation used to learn delays by gradient descent,
e.g. by Hammouamri, Khalfaoui-Hassani & Masquelier (2023), "Learning delays in spiking
neural networks using dilated convolutions with learnable spacings". Delays are clamped to
``[0, max_delay]`` (causality and a bounded buffer; the gradient is zero outside).

**Sequence and step forms.** :func:`delay_sequence` shifts a whole sequence;
:func:`delay_step` advances a :class:`DelayState` ring buffer of the last
``max_delay + 2`` inputs by one step. Both give the same output, and the state returned by
either continues the other.
"""

from typing import NamedTuple, Optional, Tuple

import torch


class DelayState(NamedTuple):
    """A ring buffer of the latest inputs.

    Parameters:
        buffer (torch.Tensor): ``(max_delay + 2, batch, *features)``, the past inputs
        index (torch.Tensor): 0-d ``int64``, the slot of the newest input
    """

    buffer: torch.Tensor
    index: torch.Tensor


def buffer_length(max_delay: int) -> int:
    """Slots a :class:`DelayState` needs for delays up to ``max_delay`` (the reading of
    an interpolated delay ``max_delay`` touches ``max_delay + 1`` steps back)."""
    return int(max_delay) + 2


def delay_initial_state(input_tensor: torch.Tensor, max_delay: int) -> DelayState:
    """An empty (all-zero) history for inputs shaped like ``input_tensor``
    ``(batch, *features)``."""
    length = buffer_length(max_delay)
    return DelayState(
        buffer=input_tensor.new_zeros((length, *input_tensor.shape)),
        index=torch.tensor(length - 1, device=input_tensor.device),
    )


def output_shape(feature_shape, delays: torch.Tensor) -> Tuple[int, ...]:
    """``broadcast(feature_shape, delays.shape)``, with a clear error if they do not."""
    try:
        return tuple(torch.broadcast_shapes(tuple(feature_shape), tuple(delays.shape)))
    except RuntimeError:
        raise ValueError(
            f"delays of shape {tuple(delays.shape)} do not broadcast against the input "
            f"features {tuple(feature_shape)} (input: (T, batch, *features)); use the "
            "feature shape for per-neuron delays or (n_post, n_pre) for per-synapse ones"
        ) from None


def _split(
    delays: torch.Tensor, max_delay: int, dtype: torch.dtype
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Integer part ``k`` (long) and fraction ``f`` (None for integer delays)."""
    clamped = delays.clamp(0, max_delay)
    if not clamped.is_floating_point():
        return clamped.long(), None
    whole = clamped.detach().floor()
    return whole.long(), (clamped - whole).to(dtype)


def _expand(values: torch.Tensor, leading: int, shape: Tuple[int, ...]) -> torch.Tensor:
    """Broadcasts ``values`` ``(*leading_dims, *F)`` to ``(*leading_dims, *shape)``."""
    extra = len(shape) - (values.dim() - leading)
    view = values.reshape(
        *values.shape[:leading], *([1] * extra), *values.shape[leading:]
    )
    return view.expand(*values.shape[:leading], *shape)


def _read(
    source: torch.Tensor, positions: torch.Tensor, whole: torch.Tensor, frac
) -> torch.Tensor:
    """Gathers ``source[positions - whole]`` (and the interpolated neighbour) along
    dim 0; ``positions`` broadcasts against ``whole``."""
    index = (positions - whole).expand(positions.shape[0], *source.shape[1:])
    out = torch.gather(source, 0, index % source.shape[0])
    if frac is None:
        return out
    before = torch.gather(source, 0, (index - 1) % source.shape[0])
    return out + frac * (before - out)


def _chronological(state: DelayState) -> torch.Tensor:
    """The buffer ordered from the oldest to the newest input."""
    length = state.buffer.shape[0]
    order = (
        state.index + 1 + torch.arange(length, device=state.buffer.device)
    ) % length
    return state.buffer.index_select(0, order)


def delay_sequence(
    input_tensor: torch.Tensor,
    delays: torch.Tensor,
    max_delay: int,
    state: Optional[DelayState] = None,
) -> Tuple[torch.Tensor, DelayState]:
    """Delays a sequence ``(T, batch, *features)`` by ``delays`` steps.

    Parameters:
        input_tensor (torch.Tensor): ``(T, batch, *F)``
        delays (torch.Tensor): shape ``D`` broadcasting against ``F``; integer (exact
            shifts) or floating point (interpolated, differentiable)
        max_delay (int): delays are clamped to ``[0, max_delay]``; sets the state size
        state (DelayState): the history before this sequence (``None``: silence)

    Returns:
        The delayed sequence ``(T, batch, *broadcast(F, D))`` and the state after it.
    """
    steps = input_tensor.shape[0]
    shape = output_shape(input_tensor.shape[2:], delays)
    if state is None:
        state = delay_initial_state(input_tensor[0], max_delay)
    length = state.buffer.shape[0]
    full = torch.cat([_chronological(state), input_tensor])  # (L + T, batch, *F)
    whole, frac = _split(delays, max_delay, input_tensor.dtype)
    positions = torch.arange(length, length + steps, device=input_tensor.device)
    positions = positions.reshape(steps, *([1] * (1 + len(shape))))
    out = _read(_expand(full, 2, shape), positions, whole, frac)
    final = DelayState(
        buffer=full[-length:],
        index=torch.tensor(length - 1, device=input_tensor.device),
    )
    return out, final


def delay_step(
    input_tensor: torch.Tensor,
    state: DelayState,
    delays: torch.Tensor,
    max_delay: int,
) -> Tuple[torch.Tensor, DelayState]:
    """One step of :func:`delay_sequence`: stores the input in the ring buffer and reads
    each element ``delays`` steps back.

    Parameters:
        input_tensor (torch.Tensor): ``(batch, *F)``
        state (DelayState): the ring buffer (see :func:`delay_initial_state`)
        delays (torch.Tensor): shape ``D`` broadcasting against ``F``
        max_delay (int): as for :func:`delay_sequence`; at most
            ``state.buffer.shape[0] - 2``

    Returns:
        The delayed input ``(batch, *broadcast(F, D))`` and the new state.
    """
    shape = output_shape(input_tensor.shape[1:], delays)
    length = state.buffer.shape[0]
    slot = (state.index + 1) % length
    # Out of place, so that autograd can still use the previous buffer.
    buffer = state.buffer.index_copy(0, slot.reshape(1), input_tensor.unsqueeze(0))
    whole, frac = _split(delays, max_delay, input_tensor.dtype)
    out = _read(
        _expand(buffer, 2, shape), slot.reshape([1] * (2 + len(shape))), whole, frac
    )
    return out[0], DelayState(buffer=buffer, index=slot)
