r"""Import of NIR graphs (the Neuromorphic Intermediate Representation) as Norse networks.

``from_nir`` reads a ``nir.NIRGraph`` (or a file written by ``nir.write``) and builds
modules that run one time step per call, ``output, state = model(x, state)``. NIR's
neurons are continuous-time equations with time constants in seconds; each becomes the
Norse layer that integrates them with explicit Euler steps of ``dt`` seconds, the
synaptic current first and then the voltage (the order of NIR's reference simulations,
snnTorch, Rockpool and Norse 1.1's importer):

==============  ===========================================================================
NIR node        Norse module
==============  ===========================================================================
``CubaLIF``     :class:`CubaLIF`: ``synapse`` (``LIBoxCell``,
                ``tau_mem_inv = 1/tau_syn``, ``v_leak = 0``) fed with ``w_in * S``, then
                ``lif`` (``LIFBoxCell``, ``tau_mem_inv = 1/tau_mem``, ``v_leak``,
                ``v_th``, ``v_reset``, ``reset_method``) fed with ``r * I``
``CubaLI``      ``LICell`` (input scaled by ``r * w_in * dt / tau_syn`` when that is not 1)
``LIF``         ``LIFBoxCell`` (``tau_mem_inv = 1/tau``; input scaled by ``r``)
``LI``          ``LIBoxCell`` (input scaled by ``r``)
``IF``          ``IAFCell``; :class:`IF` (an ``IAFCell``) when ``r`` is not 1 or the
                reset subtracts: ``v <- v + r * S`` every step, whatever ``dt``
``Affine``      ``torch.nn.Linear`` (``Linear``: without bias)
``Conv1d/2d``   ``torch.nn.Conv1d/2d``
``Flatten``     ``torch.nn.Flatten`` over the feature dimensions (negative indices, so the
                module works with and without a time dimension)
``SumPool2d``   ``torch.nn.LPPool2d(1, ...)`` (with padding: ``SumPool2d``)
``AvgPool2d``   ``torch.nn.AvgPool2d``
``Scale``       ``Scale``
==============  ===========================================================================

Conventions (docs/nir.md explains them per simulator that writes NIR):

* ``dt`` (seconds, default 0.001 as in Norse 1.1) is the Euler step of every leaky node.
  Graphs store no time step: pass the one the graph was written for (snnTorch writes
  for 0.0001 s, Rockpool for its modules' ``dt``, sinabs counts time in steps, dt = 1).
* ``IF`` has no time constant. Every simulator that writes it (Norse, sinabs) means
  ``v <- v + r * S`` per step, and so does this import, at any ``dt``.
* ``r`` and ``w_in`` are honoured as NIR's equations define them (Norse 1.1 dropped ``r``
  of ``LIF``, ``LI`` and ``IF`` nodes).
* The state starts at rest: voltages at ``v_leak`` (``v_reset`` for ``IF``), currents
  at 0. ``reset_method`` sets how every spiking node resets (``LIF``, ``CubaLIF``,
  ``IF``); NIR's own reset is :func:`~norse.torch.functional.reset.reset_value`.

A graph that is a chain (input, layers one after the other, output) becomes a
``SequentialState``; other graphs (branches, recurrence) are wired by ``nirtorch`` into
a ``torch.fx.GraphModule`` with the same calling convention. Nodes NIR defines but Norse
cannot run (``Delay``, ``Threshold``, ``I``) raise a ``ValueError`` naming the node.
"""

import functools
import numbers
import pathlib
import warnings
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from norse.torch.functional.iaf import IAFFeedForwardState, IAFParameters
from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.leaky_integrator_box import LIBoxParameters
from norse.torch.functional.lif_box import LIFBoxParameters
from norse.torch.functional.reset import ResetMethod, reset_value
from norse.torch.functional.threshold import threshold
from norse.torch.module.iaf import IAFCell
from norse.torch.module.leaky_integrator import LICell
from norse.torch.module.leaky_integrator_box import LIBoxCell
from norse.torch.module.lif_box import LIFBoxCell
from norse.torch.module.sequential import SequentialState
from norse.torch.utils.export_nir import InputScale, Scale, SumPool2d, nir_package

__all__ = ["from_nir", "CubaLIF", "IF"]


def _to_tensor(tensor: Union[np.ndarray, torch.Tensor, numbers.Number]) -> torch.Tensor:
    """A NIR parameter as a tensor, as Norse 1.1 converts them.

    Parameters:
        tensor: a tensor (returned as it is), a number (a float32 scalar) or an array
            (a float32 tensor of the same shape)
    """
    if isinstance(tensor, torch.Tensor):
        return tensor
    if isinstance(tensor, numbers.Number):
        return torch.as_tensor(tensor, dtype=torch.float32)
    return torch.as_tensor(np.asarray(tensor)).float()


# --------------------------------------------------------------------------------------
# Modules of the NIR nodes that have no single Norse cell


class CubaLIF(torch.nn.Module):
    r"""NIR's current-based LIF node, one Euler step of ``dt`` per call.

    .. math::
        I &\leftarrow I + \frac{dt}{\tau_{syn}} (-I + w_{in} S) \\
        v &\leftarrow v + \frac{dt}{\tau_{mem}} (v_{leak} - v + r I)

    followed by the spike :math:`z = \Theta(v - v_{th})` and the reset of ``lif``'s
    ``reset_method``. The current is the state of ``synapse``, the voltage that of
    ``lif``; the state is the pair ``(synapse state, lif state)``, as in Norse 1.1.

    Parameters:
        w_in (torch.Tensor): input weight (scalar or one per neuron)
        synapse (LIBoxCell): the current, ``tau_mem_inv = 1/tau_syn`` and ``v_leak = 0``
        r (torch.Tensor): weight of the current on the voltage
        lif (LIFBoxCell): the voltage and the spikes
    """

    def __init__(
        self,
        w_in: torch.Tensor,
        synapse: LIBoxCell,
        r: torch.Tensor,
        lif: LIFBoxCell,
    ):
        super().__init__()
        # buffers, so that .to(device) moves them with the cells
        self.register_buffer("w_in", torch.as_tensor(w_in))
        self.register_buffer("r", torch.as_tensor(r))
        self.synapse = synapse
        self.lif = lif

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[Tuple[Any, Any]] = None
    ) -> Tuple[torch.Tensor, Tuple[Any, Any]]:
        if state is None:
            state = (None, None)
        current, synapse_state = self.synapse(self.w_in * input_tensor, state[0])
        spikes, lif_state = self.lif(self.r * current, state[1])
        return spikes, (synapse_state, lif_state)


def _if_step(
    input_tensor: torch.Tensor,
    state: IAFFeedForwardState,
    p: IAFParameters,
    dt: float,
    reset_method: ResetMethod = reset_value,
) -> Tuple[torch.Tensor, IAFFeedForwardState]:
    """One step of an integrate-and-fire neuron that resets by ``reset_method``."""
    v = state.v + input_tensor
    z = threshold(v - p.v_th, p.method, p.alpha)
    return z, IAFFeedForwardState(v=reset_method(z, v, p.v_reset, p.v_th))


class IF(IAFCell):
    r"""NIR's IF node: an ``IAFCell`` whose input is weighted by ``r``.

    Every call adds :math:`r S` to the voltage (IF nodes have no time constant, and
    every simulator that writes them means one such step per time step), then spikes
    where :math:`v > v_{th}` and resets by ``reset_method``.

    Parameters:
        p (IAFParameters): threshold, reset value and surrogate gradient
        r (torch.Tensor): input weight (scalar or one per neuron)
        reset_method (ResetMethod): ``reset_value`` (NIR's) or ``reset_subtract``
        dt (float): time step (s); the dynamics do not depend on it
    """

    def __init__(
        self,
        p: IAFParameters = IAFParameters(),
        r: Union[float, torch.Tensor] = 1.0,
        reset_method: ResetMethod = reset_value,
        dt: float = 0.001,
    ):
        super().__init__(p, dt=dt)
        self.register_buffer("r", torch.as_tensor(r, dtype=torch.get_default_dtype()))
        self.reset_method = reset_method
        if reset_method is not reset_value:
            self.activation = functools.partial(_if_step, reset_method=reset_method)

    def forward(
        self, input_tensor: torch.Tensor, state: Optional[IAFFeedForwardState] = None
    ) -> Tuple[torch.Tensor, IAFFeedForwardState]:
        return super().forward(input_tensor * self.r, state)


# --------------------------------------------------------------------------------------
# Parameters


def _tensor(value: Any) -> torch.Tensor:
    """A float tensor of the default dtype; a scalar when all entries are equal."""
    array = np.asarray(value, dtype=np.float64)
    if array.size > 0 and np.all(array == array.flat[0]):
        return torch.tensor(float(array.flat[0]), dtype=torch.get_default_dtype())
    return torch.as_tensor(array, dtype=torch.get_default_dtype())


def _weight(value: Any) -> torch.nn.Parameter:
    return torch.nn.Parameter(
        torch.as_tensor(np.array(value), dtype=torch.get_default_dtype())
    )


def _is_one(value: Any) -> bool:
    return bool(
        np.allclose(np.asarray(value, dtype=np.float64), 1.0, rtol=1e-6, atol=0)
    )


def _scaled(layer: torch.nn.Module, scale: Any) -> torch.nn.Module:
    if _is_one(scale):
        return layer
    return InputScale(_tensor(scale), layer)


def _inverse(value: Any, name: str, where: str) -> torch.Tensor:
    """``1 / value`` for a time constant (seconds). Norse 1.1 imports any value (its own
    tests use random, negative ones), so other values only warn."""
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array) & (array > 0)):
        warnings.warn(
            f"{where}: {name} should hold positive, finite time constants (seconds), "
            f"got values from {np.nanmin(array)} to {np.nanmax(array)}; the imported "
            "layer's dynamics diverge",
            RuntimeWarning,
            stacklevel=4,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        return _tensor(1.0 / array)


def _cell(kind: type, p: Any, dt: float) -> torch.nn.Module:
    """``kind(p, dt=dt)``: :func:`_inverse` has already warned about time constants
    that are not positive and finite (the cell accepts them too, as Norse 1.1 does)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*inverse time constant", category=RuntimeWarning
        )
        return kind(p, dt=dt)


# --------------------------------------------------------------------------------------
# Nodes


def _int_or_tuple(value: Any):
    if isinstance(value, str):
        return value
    array = np.atleast_1d(np.asarray(value)).astype(int)
    return int(array[0]) if array.size == 1 else tuple(int(n) for n in array)


def _flatten(node, where: str) -> torch.nn.Flatten:
    shape = node.input_type.get("input") if node.input_type else None
    start, end = int(node.start_dim), int(node.end_dim)
    if shape is None:
        # rank unknown: assume one batch dimension in front of the features
        return torch.nn.Flatten(
            start + 1 if start >= 0 else start, end + 1 if end >= 0 else end
        )
    rank = len(shape)
    start = start if start >= 0 else rank + start
    end = end if end >= 0 else rank + end
    if not 0 <= start <= end < rank:
        raise ValueError(
            f"{where}: Flatten dimensions {node.start_dim}..{node.end_dim} do not fit an "
            f"input of shape {tuple(shape)}"
        )
    # negative indices count from the end, so batch and time dimensions in front of the
    # features do not matter
    return torch.nn.Flatten(start - rank, end - rank)


def _neuron(
    node: Any, where: str, dt: float, reset_method: ResetMethod
) -> Optional[torch.nn.Module]:
    """The Norse module of a neuron node (None for other nodes)."""
    nir = nir_package()
    if isinstance(node, nir.CubaLIF):
        synapse = _cell(
            LIBoxCell,
            LIBoxParameters(
                tau_mem_inv=_inverse(node.tau_syn, "tau_syn", where),
                # NIR's synapse decays to 0 (Norse 1.1 let it decay to v_leak)
                v_leak=torch.tensor(0.0),
            ),
            dt,
        )
        lif = _cell(
            LIFBoxCell,
            LIFBoxParameters(
                tau_mem_inv=_inverse(node.tau_mem, "tau_mem", where),
                v_leak=_tensor(node.v_leak),
                v_th=_tensor(node.v_threshold),
                v_reset=_tensor(node.v_reset),
                reset_method=reset_method,
            ),
            dt,
        )
        return CubaLIF(_tensor(node.w_in), synapse, _tensor(node.r), lif)
    if isinstance(node, nir.CubaLI):
        # LICell adds its input to the current, which NIR's synapse does in one Euler
        # step when w_in = tau_syn/dt; the current reaches the voltage times r
        p = LIParameters(
            tau_syn_inv=_inverse(node.tau_syn, "tau_syn", where),
            tau_mem_inv=_inverse(node.tau_mem, "tau_mem", where),
            v_leak=_tensor(node.v_leak),
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = (
                np.asarray(node.r, dtype=np.float64)
                * np.asarray(node.w_in, dtype=np.float64)
                * dt
                / np.asarray(node.tau_syn, dtype=np.float64)
            )
        return _scaled(_cell(LICell, p, dt), scale)
    if isinstance(node, nir.LIF):
        p = LIFBoxParameters(
            tau_mem_inv=_inverse(node.tau, "tau", where),
            v_leak=_tensor(node.v_leak),
            v_th=_tensor(node.v_threshold),
            v_reset=_tensor(node.v_reset),
            reset_method=reset_method,
        )
        return _scaled(_cell(LIFBoxCell, p, dt), node.r)
    if isinstance(node, nir.LI):
        p = LIBoxParameters(
            tau_mem_inv=_inverse(node.tau, "tau", where), v_leak=_tensor(node.v_leak)
        )
        return _scaled(_cell(LIBoxCell, p, dt), node.r)
    if isinstance(node, nir.IF):
        p = IAFParameters(v_th=_tensor(node.v_threshold), v_reset=_tensor(node.v_reset))
        if _is_one(node.r) and reset_method is reset_value:
            return IAFCell(p, dt=dt)
        return IF(p, r=_tensor(node.r), reset_method=reset_method, dt=dt)
    return None


def _convert(
    node: Any, where: str, dt: float, reset_method: ResetMethod
) -> torch.nn.Module:
    """The Norse module of one NIR node."""
    nir = nir_package()
    neuron = _neuron(node, where, dt, reset_method)
    if neuron is not None:
        return neuron
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = np.asarray(node.weight)
        if weight.ndim != 2:
            raise ValueError(
                f"{where}: only 2D {type(node).__name__} weights are supported, got "
                f"shape {weight.shape}"
            )
        has_bias = isinstance(node, nir.Affine) and node.bias is not None
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=has_bias)
        layer.weight = _weight(weight)
        if has_bias:
            layer.bias = _weight(node.bias)
        return layer
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        weight = np.asarray(node.weight)
        kind = torch.nn.Conv1d if isinstance(node, nir.Conv1d) else torch.nn.Conv2d
        layer = kind(
            in_channels=weight.shape[1] * int(node.groups),
            out_channels=weight.shape[0],
            kernel_size=tuple(weight.shape[2:]),
            stride=_int_or_tuple(node.stride),
            padding=_int_or_tuple(node.padding),
            dilation=_int_or_tuple(node.dilation),
            groups=int(node.groups),
        )
        layer.weight = _weight(weight)
        layer.bias = _weight(np.broadcast_to(np.asarray(node.bias), (weight.shape[0],)))
        return layer
    if isinstance(node, nir.Flatten):
        return _flatten(node, where)
    if isinstance(node, nir.SumPool2d):
        kernel = _int_or_tuple(node.kernel_size)
        stride = _int_or_tuple(node.stride)
        if np.allclose(np.asarray(node.padding), 0):
            return torch.nn.LPPool2d(1, kernel, stride)
        return SumPool2d(kernel, stride, _int_or_tuple(node.padding))
    if isinstance(node, nir.AvgPool2d):
        return torch.nn.AvgPool2d(
            _int_or_tuple(node.kernel_size),
            _int_or_tuple(node.stride),
            _int_or_tuple(node.padding),
        )
    if isinstance(node, nir.Scale):
        return Scale(_tensor(node.scale))
    if isinstance(node, (nir.Input, nir.Output)):
        return torch.nn.Identity()
    raise ValueError(
        f"from_nir cannot import {where}: Norse has no module for NIR's "
        f"{type(node).__name__} node (supported: Affine, Linear, Conv1d, Conv2d, "
        "Flatten, SumPool2d, AvgPool2d, Scale, CubaLIF, CubaLI, LIF, LI, IF)"
    )


# --------------------------------------------------------------------------------------
# Graphs


def _chain(graph) -> Optional[List[str]]:
    """The node names from input to output when the graph is a simple chain."""
    nir = nir_package()
    if any(isinstance(node, nir.NIRGraph) for node in graph.nodes.values()):
        return None
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        return None
    successors: Dict[str, list] = {}
    predecessors: Dict[str, list] = {}
    for source, target in graph.edges:
        successors.setdefault(source, []).append(target)
        predecessors.setdefault(target, []).append(source)
    order = [inputs[0]]
    while order[-1] != outputs[0]:
        following = successors.get(order[-1], [])
        if len(following) != 1 or len(predecessors.get(following[0], [])) != 1:
            return None
        if following[0] in order:
            return None
        order.append(following[0])
    return order if len(order) == len(graph.nodes) else None


def from_nir(
    node: Any,
    ignore_warnings: bool = False,
    reset_method: ResetMethod = reset_value,
    dt: float = 0.001,
) -> torch.nn.Module:
    """Builds a Norse network from a NIR graph.

    Parameters:
        node: a ``nir.NIRGraph``, a single NIR node, or the path of a file
            written by ``nir.write``
        ignore_warnings (bool): silence the warnings of the import (time constants
            that are not positive, a ``dt`` too large for a time constant)
        reset_method (ResetMethod): how the spiking nodes (``LIF``, ``CubaLIF``,
            ``IF``) reset: :func:`~norse.torch.functional.reset.reset_value` (to
            ``v_reset``, NIR's reset) or
            :func:`~norse.torch.functional.reset.reset_subtract` (``v - v_threshold``,
            as snnTorch, sinabs and Rockpool reset by default)
        dt (float): the Euler step (seconds) of the leaky nodes: the step the graph
            was written for (snnTorch: 0.0001; sinabs: 1, its time constants count
            steps). ``IF`` nodes add ``r * S`` per step at any ``dt``.

    Returns:
        A module called once per time step, ``output, state = model(x, state)``
            (``x`` of shape ``(batch, ...)``; ``state=None`` at the first step): a
            ``SequentialState`` for chains, a ``torch.fx.GraphModule``
            (built by ``nirtorch``) for other graphs, the module itself for a single node.
            Wrap it in ``Lift`` to run a whole ``(T, batch, ...)``
            sequence.

    Raises:
        ValueError: for NIR nodes that Norse cannot run, naming the node, or a ``dt``
            that is not a positive, finite number.
        TypeError: for a ``node`` that is no NIR node or path, or a ``reset_method``
            that is not callable.

    Example:
        >>> import numpy as np, nir, torch, norse.torch as norse
        >>> graph = nir.NIRGraph.from_list(
        ...     nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
        ...     nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2),
        ...             v_threshold=np.ones(2)))
        >>> model = norse.from_nir(graph, dt=0.001)
        >>> spikes, state = model(torch.ones(1, 3))
    """
    nir = nir_package()
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not 0 < dt < np.inf:
        raise ValueError(
            f"dt must be a positive float (finite, in seconds), got {dt!r}"
        )
    dt = float(dt)
    if not callable(reset_method):
        raise TypeError(
            "reset_method must be a reset function such as reset_value or "
            f"reset_subtract (norse.torch.functional.reset), got {reset_method!r}"
        )
    if isinstance(node, (str, pathlib.Path)):
        node = nir.read(node)
    if not isinstance(node, nir.NIRNode):
        raise TypeError(
            f"from_nir takes a NIR graph, a NIR node or a file path, got "
            f"{type(node).__name__}"
        )
    with warnings.catch_warnings():
        if ignore_warnings:
            warnings.simplefilter("ignore")
        if not isinstance(node, nir.NIRGraph):
            return _convert(node, type(node).__name__, dt, reset_method)
        order = _chain(node)
        if order is not None:
            layers = OrderedDict(
                (name, _convert(node.nodes[name], f"node {name!r}", dt, reset_method))
                for name in order[1:-1]
            )
            return SequentialState(layers)
        return _wire(node, dt, reset_method)


def _wire(graph, dt: float, reset_method: ResetMethod) -> torch.nn.Module:
    import nirtorch

    nir = nir_package()
    kinds = (
        nir.Affine,
        nir.Linear,
        nir.Conv1d,
        nir.Conv2d,
        nir.Flatten,
        nir.SumPool2d,
        nir.AvgPool2d,
        nir.Scale,
        nir.CubaLIF,
        nir.CubaLI,
        nir.LIF,
        nir.LI,
        nir.IF,
        nir.Delay,
        nir.Threshold,
        nir.I,
    )
    node_map = {
        kind: (
            lambda n, _kind=kind: _convert(
                n, f"a {_kind.__name__} node", dt, reset_method
            )
        )
        for kind in kinds
    }
    return nirtorch.nir_to_torch(graph, node_map)
