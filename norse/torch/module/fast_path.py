"""Dispatch from the module forms to the fused multi-step kernels of
:mod:`norse.torch.fused`.

The time modules (and ``Lift`` of a cell) hand a whole sequence to a fused kernel when
one is registered for the step function, its parameters and the input; otherwise they run
the reference loop of :class:`~norse.torch.module.neuron.NeuronModule`. A kernel returns
every state field from one autograd node, so the fields that the reference loop leaves
without ``requires_grad`` are detached here: both paths return the same thing.
"""

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from norse.torch.fused import registry
from norse.torch.module import anomaly

#: Results of :func:`_reference_grad_flags`, by step function and requires_grad flags.
_GRAD_FLAGS: Dict[Tuple, Tuple[bool, ...]] = {}
#: Steps probed at most: the flags settle within a few steps (each field's depends on
#: the fields of the step before).
_PROBED_STEPS = 8


def _leaves(value: Any) -> List[Any]:
    if isinstance(value, tuple):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _requires_grad_flags(tree: Any) -> Tuple[bool, ...]:
    return tuple(
        isinstance(leaf, torch.Tensor) and leaf.requires_grad for leaf in _leaves(tree)
    )


def _probe(value: Any) -> Any:
    """``value`` with every tensor replaced by zeros on the CPU (same shape, dtype and
    ``requires_grad``). (Not the meta device: step functions make CPU constants.)"""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_probe(item) for item in value))
    if isinstance(value, torch.Tensor):
        probe = torch.zeros(value.shape, dtype=value.dtype)
        return probe.requires_grad_() if value.requires_grad else probe
    return value


def _same(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def _reference_grad_flags(
    step: Callable, input_tensor: torch.Tensor, state: Any, args: Tuple, record: bool
) -> Tuple[bool, ...]:
    """Which fields of the state that the reference loop returns require grad.

    A fused kernel returns every state field from one autograd node, so all of them
    would require grad; the reference (and Norse 1.1) leaves a field that depends on no
    tensor requiring grad without (e.g. LIF's current ``i`` for an input without one,
    whose ``.numpy()`` then works). Found by running the step on zeros, once per step
    function, pattern of flags and non-tensor arguments."""
    flags = _requires_grad_flags
    steps = min(input_tensor.shape[0], _PROBED_STEPS)
    # The other leaves (method, reset_method, dt, numbers) decide the graph too: a
    # Heaviside threshold, for one, gives spikes without a gradient
    settings = tuple(
        leaf for leaf in _leaves(args) if not isinstance(leaf, torch.Tensor)
    )
    key = (step, steps, record, input_tensor.requires_grad, flags(state), flags(args))
    key += settings
    try:
        found = _GRAD_FLAGS.get(key)
    except TypeError:  # an unhashable setting (a user's own parameter type): no cache
        key, found = None, None
    if found is None:
        # fork_rng: stochastic surrogates must not draw from the caller's generator;
        # identity hooks: the probe's saved tensors must not reach the caller's
        # saved-tensor hooks (a checkpoint counts what its forward saves)
        with (
            torch.enable_grad(),
            torch.random.fork_rng(devices=[]),
            torch.autograd.graph.saved_tensors_hooks(_same, _same),
        ):
            x = _probe(input_tensor[0])
            probe, probe_args = _probe(state), _probe(args)
            seen = [False] * len(_leaves(state))
            for _ in range(steps):
                _, probe = step(x, probe, *probe_args)
                seen = [a or b for a, b in zip(seen, flags(probe))]
        found = tuple(seen) if record else flags(probe)
        if key is not None:
            _GRAD_FLAGS[key] = found
    return found


def _detach_like_reference(state: Any, flags: Tuple[bool, ...]) -> Any:
    """``state`` (a flat state tuple) with the fields of ``flags`` False detached."""
    if all(flags) or len(flags) != len(state):
        return state
    return type(state)(
        *(value if keep else value.detach() for value, keep in zip(state, flags))
    )


def run_fused(
    module: torch.nn.Module,
    input_tensor: torch.Tensor,
    start: Any,
    p: Any,
    record: bool,
    weights: Tuple[torch.Tensor, ...] = (),
) -> Optional[Tuple[torch.Tensor, Any]]:
    """``(output, state)`` of a fused kernel running ``module``'s step function over
    ``input_tensor`` ``(T, batch, ...)`` from ``start`` (a state or a
    :class:`~norse.torch.fused.registry.Rest`), or ``None`` when no kernel serves: the
    module then runs its reference loop. ``weights`` are the recurrent forms'
    ``(input_weights, recurrent_weights)``; ``record`` returns every state."""
    step = module.activation
    if anomaly.enabled or module._activation_for(input_tensor) is not step:
        return None
    kernel = registry.find(step, p, input_tensor, start, record, weights, dt=module.dt)
    if kernel is None:
        return None
    out, final = kernel(input_tensor, start, p, module.dt, record, *weights)
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        args = (*weights, p, module.dt)
        flags = _reference_grad_flags(step, input_tensor, start, args, record)
        final = _detach_like_reference(final, flags)
    return out, final


def start_state(
    module: torch.nn.Module, rest: bool, state: Any, first: Callable
) -> Any:
    """What a fused kernel starts from: ``state``, or, from rest, a
    :class:`~norse.torch.fused.registry.Rest` that lets the kernel start without
    building state tensors (``first(sequence)`` builds them where it must)."""
    if not rest:
        return state
    return registry.Rest(module.state_type, module.initial_values, first)
