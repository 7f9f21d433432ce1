"""Applying a module over the time dimension of a sequence.

:class:`Lift` applies a module built for one time step, ``(batch, ...)``, to every step
of a sequence ``(T, batch, ...)``. A module that carries a state (``LIFCell``,
``SequentialState``...) gets the state of the previous step; any other module is applied
to all steps at once when that is known to give the same result (see :class:`Lift`).
"""

import functools
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch

from norse.torch.functional.lift import apply_folded, check_sequence
from norse.torch.fused.layers import apply_layer
from norse.torch.module.snn import SNNCell, SNNRecurrentCell, is_module_stateful

# How a stateless module can process all T steps in one call, given the number of
# dimensions ``ndim`` of ONE step's input:
#   "direct": pass (T, batch, ...) unchanged; the module only acts on trailing dimensions
#             (or treats its first dimension as a batch of unbatched inputs);
#   "fold":   reshape to (T * batch, ...) and back (see apply_folded);
#   None:     no equivalent one-call form; loop over the time steps.
_Rule = Callable[[torch.nn.Module, int], Optional[str]]


def _trailing(min_ndim: int) -> _Rule:
    """Acts elementwise or on the last dimensions: any leading dimensions are fine."""
    return lambda module, ndim: "direct" if ndim >= min_ndim else None


def _spatial(dims: int) -> _Rule:
    """Takes ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``, with ``dims`` spatial
    dimensions: fold a batched step; an unbatched step's T acts as the batch."""

    def rule(module: torch.nn.Module, ndim: int) -> Optional[str]:
        if ndim == dims + 2:
            return "fold"
        if ndim == dims + 1:
            return "direct"
        return None

    return rule


def _batched(*ndims: int) -> _Rule:
    """Takes a batch first (no unbatched form)."""
    return lambda module, ndim: "fold" if ndim in ndims else None


def _at_least(min_ndim: int) -> _Rule:
    return lambda module, ndim: "fold" if ndim >= min_ndim else None


def _along(attribute: str) -> _Rule:
    """Acts along one dimension (``dim`` / ``start_dim``), independently per sample
    unless that dimension is the batch."""

    def rule(module: torch.nn.Module, ndim: int) -> Optional[str]:
        dim = getattr(module, attribute)
        if dim is None:  # softmax's legacy implicit dimension depends on ndim
            return None
        if dim < 0 and dim >= -ndim:
            return "direct"
        return "fold" if 1 <= dim < ndim else None

    return rule


def _batch_norm(*ndims: int) -> _Rule:
    # In training (or without running statistics) BatchNorm normalises with the
    # statistics of the batch it is given: folding would pool them over all T steps and
    # update the running averages once instead of T times. Only evaluation with running
    # statistics is per sample.
    fold = _batched(*ndims)
    return lambda module, ndim: (
        fold(module, ndim)
        if not module.training and module.running_mean is not None
        else None
    )


def _instance_norm(dims: int) -> _Rule:
    # Statistics are per sample, but training with running statistics updates them
    # once per call: folding would change that update.
    spatial = _spatial(dims)
    return lambda module, ndim: (
        None
        if module.training and module.track_running_stats
        else spatial(module, ndim)
    )


_nn = torch.nn
_RULES: Dict[type, _Rule] = {
    **{
        kind: _trailing(0)
        for kind in (
            _nn.Identity,
            _nn.ReLU,
            _nn.ReLU6,
            _nn.LeakyReLU,
            _nn.ELU,
            _nn.SELU,
            _nn.CELU,
            _nn.GELU,
            _nn.SiLU,
            _nn.Mish,
            _nn.Sigmoid,
            _nn.LogSigmoid,
            _nn.Tanh,
            _nn.Tanhshrink,
            _nn.Softplus,
            _nn.Softsign,
            _nn.Softshrink,
            _nn.Hardshrink,
            _nn.Hardtanh,
            _nn.Hardsigmoid,
            _nn.Hardswish,
            _nn.Threshold,
            # Random masks of independent elements: the same distribution as a loop,
            # drawn in one call (so not the same random numbers as a loop).
            _nn.Dropout,
            _nn.AlphaDropout,
            _nn.Embedding,
        )
    },
    _nn.Linear: _trailing(1),
    _nn.LayerNorm: lambda module, ndim: (
        "direct" if ndim >= len(module.normalized_shape) else None
    ),
    _nn.PixelShuffle: _trailing(3),
    _nn.PixelUnshuffle: _trailing(3),
    **{kind: _spatial(1) for kind in (_nn.Conv1d, _nn.ConvTranspose1d)},
    **{kind: _spatial(2) for kind in (_nn.Conv2d, _nn.ConvTranspose2d)},
    **{kind: _spatial(3) for kind in (_nn.Conv3d, _nn.ConvTranspose3d)},
    **{
        kind: _spatial(1)
        for kind in (
            _nn.MaxPool1d,
            _nn.AvgPool1d,
            _nn.LPPool1d,
            _nn.AdaptiveMaxPool1d,
            _nn.AdaptiveAvgPool1d,
            _nn.ReflectionPad1d,
            _nn.ReplicationPad1d,
            _nn.CircularPad1d,
            _nn.Dropout1d,
        )
    },
    **{
        kind: _spatial(2)
        for kind in (
            _nn.MaxPool2d,
            _nn.AvgPool2d,
            _nn.LPPool2d,
            _nn.AdaptiveMaxPool2d,
            _nn.AdaptiveAvgPool2d,
            _nn.ReflectionPad2d,
            _nn.ReplicationPad2d,
            _nn.CircularPad2d,
        )
    },
    **{
        kind: _spatial(3)
        for kind in (
            _nn.MaxPool3d,
            _nn.AvgPool3d,
            _nn.AdaptiveMaxPool3d,
            _nn.AdaptiveAvgPool3d,
            _nn.ReflectionPad3d,
            _nn.ReplicationPad3d,
            _nn.CircularPad3d,
            _nn.Dropout3d,
        )
    },
    _nn.ConstantPad1d: _trailing(1),
    _nn.ConstantPad2d: _trailing(2),
    _nn.ConstantPad3d: _trailing(3),
    _nn.ZeroPad1d: _trailing(1),
    _nn.ZeroPad2d: _trailing(2),
    _nn.ZeroPad3d: _trailing(3),
    # A 3-dimensional step would be read as unbatched with a deprecated meaning.
    _nn.Dropout2d: _batched(4),
    _nn.Upsample: _batched(3, 4, 5),
    _nn.UpsamplingNearest2d: _batched(4),
    _nn.UpsamplingBilinear2d: _batched(4),
    _nn.GroupNorm: _at_least(2),
    _nn.LocalResponseNorm: _at_least(3),
    _nn.ChannelShuffle: _at_least(3),
    _nn.BatchNorm1d: _batch_norm(2, 3),
    _nn.BatchNorm2d: _batch_norm(4),
    _nn.BatchNorm3d: _batch_norm(5),
    _nn.InstanceNorm1d: _instance_norm(1),
    _nn.InstanceNorm2d: _instance_norm(2),
    _nn.InstanceNorm3d: _instance_norm(3),
    _nn.Flatten: _along("start_dim"),
    _nn.Unflatten: _along("dim"),
    _nn.Softmax: _along("dim"),
    _nn.LogSoftmax: _along("dim"),
    _nn.Softmin: _along("dim"),
}
del _nn


def _has_hooks(module: torch.nn.Module) -> bool:
    from torch.nn.modules import module as torch_module

    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or torch_module._global_forward_hooks
        or torch_module._global_forward_pre_hooks
    )


def _is_known(module: torch.nn.Module) -> bool:
    """Whether every part of ``module`` has a rule (types matched exactly: a subclass
    may override ``forward`` with anything)."""
    if type(module) is torch.nn.Sequential:
        return all(_is_known(child) for child in module)
    return type(module) in _RULES


def _apply_over_time(module: torch.nn.Module, sequence: torch.Tensor) -> torch.Tensor:
    """Applies a stateless ``module`` to every step of ``sequence`` ``(T, ...)``, in one
    call where its rule allows it and step by step otherwise."""
    if type(module) is torch.nn.Sequential:
        # Stateless parts applied one after the other over all steps give what applying
        # the whole chain step after step gives, and each part can take its own path.
        for child in module:
            sequence = _apply_over_time(child, sequence)
        return sequence
    rule = _RULES.get(type(module))
    how = rule(module, sequence.dim() - 1) if rule is not None else None
    if how == "direct":
        return apply_layer(module, sequence)
    if how == "fold":
        return apply_folded(functools.partial(apply_layer, module), sequence)
    return _stack_steps(module, sequence)


def _stack_steps(module: torch.nn.Module, sequence: torch.Tensor) -> torch.Tensor:
    outputs = []
    for step in sequence:
        output = module(step)
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"Lift expects the lifted {type(module).__name__} to return a tensor, "
                f"got {type(output).__name__}; a module that returns (output, state) "
                "must take a `state` argument in forward"
            )
        outputs.append(output)
    return torch.stack(outputs)


class Lift(torch.nn.Module):
    """Applies ``module`` to every time step of a sequence ``(T, batch, ...)``.

    *Stateful modules* (those called as ``module(x, state)`` that return ``(output,
    state)``: every neuron cell, ``SequentialState``, ``torch.nn.RNN``...) are applied
    step by step; each step gets the state returned by the previous one and
    ``Lift`` returns ``(outputs, final_state)``.

    *Stateless modules* return only the outputs ``(T, batch, ...)``. For layers known to
    treat every sample on its own (``Linear``, ``Conv*d``, pooling, ``Flatten``, element-wise
    activations, ``LayerNorm``, ``BatchNorm`` in evaluation mode, ``nn.Sequential`` of
    such layers...) all T steps go through the layer in one call, with time folded into
    the batch (``(T * batch, ...)``): the same result as a loop, many times faster (a
    plain ``Linear`` on binary spikes with low activity takes the event-driven product,
    a ``MaxPool2d`` Numba kernels: :func:`~norse.torch.fused.layers.apply_layer`). Other
    modules, and ``BatchNorm`` in training mode (its batch statistics would be pooled over
    all steps instead of taken per step), run in a loop over the steps. ``fold=True``
    declares that an unlisted module works per sample with its batch in the first
    dimension, ``fold=False`` forces the loop.

    Dropout layers draw their masks in one call when folded: the same distribution as
    the loop, but not the same random numbers. Forward hooks of a folded module run once
    per call (seeing all steps), not once per step.

    Parameters:
        module (torch.nn.Module): module built for one time step
        fold (Optional[bool]): ``None`` (default) decides as above; ``True`` always folds
            time into the batch; ``False`` always loops

    Input:
        ``x`` of shape ``(T, batch, ...)``, or a tuple ``(x, state)`` as returned by a
        lifted stateful module (the state is used when ``module`` is stateful and
        ignored otherwise, as in Norse 1.1); ``state`` (keyword or second argument) the
        initial state of a stateful module.

    Example:
        >>> import torch
        >>> conv = Lift(torch.nn.Conv2d(2, 4, 3))
        >>> conv(torch.randn(10, 8, 2, 5, 5)).shape
        torch.Size([10, 8, 4, 3, 3])
    """

    def __init__(self, module: torch.nn.Module, fold: Optional[bool] = None):
        super().__init__()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(
                f"module must be a torch.nn.Module, got {type(module).__name__}"
            )
        if fold is not None and not isinstance(fold, bool):
            raise TypeError(f"fold must be None, True or False, got {fold!r}")
        self.lifted_module = module
        self.is_stateful = is_module_stateful(module)
        if self.is_stateful and fold:
            raise ValueError(
                f"fold=True needs a stateless module, but {type(module).__name__} "
                "carries a state from one time step to the next"
            )
        self.fold = fold

    def extra_repr(self) -> str:
        return f"fold={self.fold}" if self.fold is not None else ""

    def forward(
        self,
        x: Union[torch.Tensor, Tuple[torch.Tensor, Any]],
        state: Optional[Any] = None,
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, Any]]:
        if isinstance(x, tuple):
            if len(x) != 2:
                raise ValueError(
                    f"Lift takes a tensor or a tuple (tensor, state), got a tuple of {len(x)}"
                )
            x, tuple_state = x
            if state is None and self.is_stateful:
                state = tuple_state
        check_sequence(x, "x")

        if not self.is_stateful:
            if state is not None:
                raise ValueError(
                    f"state was given, but the lifted {type(self.lifted_module).__name__} "
                    "takes no state (pass None, or lift a stateful module)"
                )
            if self.fold is False or x.dim() < 2:
                return _stack_steps(self.lifted_module, x)
            if self.fold:
                return apply_folded(
                    functools.partial(apply_layer, self.lifted_module), x
                )
            if _is_known(self.lifted_module):
                return _apply_over_time(self.lifted_module, x)
            return _stack_steps(self.lifted_module, x)

        module = self.lifted_module
        if (
            isinstance(module, (SNNCell, SNNRecurrentCell))
            and type(module).forward in (SNNCell.forward, SNNRecurrentCell.forward)
            and not _has_hooks(module)
        ):
            # A neuron cell takes the time module's path (its fused kernel); with
            # hooks it is called step by step, so that they see every step.
            return module.forward_sequence(x, state)
        outputs = []
        for step in x:
            result = self.lifted_module(step, state)
            if not isinstance(result, tuple) or len(result) != 2:
                raise TypeError(
                    f"the lifted {type(self.lifted_module).__name__} takes a state, so it "
                    f"must return (output, state), got {type(result).__name__}"
                )
            output, state = result
            outputs.append(output)
        return torch.stack(outputs), state
