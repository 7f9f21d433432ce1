r"""Import of NIR graphs (the Neuromorphic Intermediate Representation) as Norse networks.

``from_nir`` reads a ``nir.NIRGraph`` (or a file written by ``nir.write``) and
builds modules that run one time step per call, ``output, state = model(x, state)``,
with time step ``dt``. NIR's neurons are continuous-time equations with time constants
in seconds; each becomes the Norse layer with the same explicit Euler step:

==============  ===========================================================================
NIR node        Norse module
==============  ===========================================================================
``CubaLIF``     ``LIFCell`` (``tau_syn_inv = 1/tau_syn``,
                ``tau_mem_inv = 1/tau_mem``, ``v_leak``, ``v_th``, ``v_reset``)
``CubaLI``      ``LICell``
``LIF``         ``LIFBoxCell`` (``tau_mem_inv = 1/tau``)
``LI``          ``LIBoxCell``
``IF``          ``IAFCell``
``Affine``      ``torch.nn.Linear`` (``Linear``: without bias)
``Conv1d/2d``   ``torch.nn.Conv1d/2d``
``Flatten``     ``torch.nn.Flatten`` over the feature dimensions (negative indices, so the
                module works with and without a time dimension)
``SumPool2d``   ``torch.nn.LPPool2d(1, ...)`` (with padding: ``SumPool2d``)
``AvgPool2d``   ``torch.nn.AvgPool2d``
``Scale``       ``Scale``
==============  ===========================================================================

The input weights of the nodes are honoured exactly: a Norse synapse adds its input to
the current, which NIR's :math:`\tau_{syn}\dot I = -I + w_{in} S` does in one Euler step
when :math:`w_{in} = \tau_{syn}/dt` (and ``r = 1``); ``LIF``/``LI`` take ``r = 1`` and
``IF`` takes ``r = 1/dt``. Any other value (from another simulator, or another ``dt``)
becomes an ``InputScale`` around the layer that multiplies its input by
``r * w_in * dt / tau_syn`` (``CubaLIF``/``CubaLI``), ``r`` (``LIF``/``LI``) or
``r * dt`` (``IF``). Parameters that are equal for all neurons become scalars.

A graph that is a chain (input, layers one after the other, output) becomes a
``SequentialState``; other graphs (branches, recurrence) are wired by
``nirtorch`` into a ``torch.fx.GraphModule`` with the same calling convention. Nodes
NIR defines but Norse cannot run (``Delay``, ``Threshold``, ``I``) raise a
``ValueError`` naming the node.
"""

import pathlib
import warnings
from collections import OrderedDict
from typing import Any, Dict, Union

import numpy as np
import torch

from norse.torch.functional.iaf import IAFParameters
from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.leaky_integrator_box import LIBoxParameters
from norse.torch.functional.lif import LIFParameters
from norse.torch.functional.lif_box import LIFBoxParameters
from norse.torch.functional.reset import ResetMethod, reset_value
from norse.torch.module.iaf import IAFCell
from norse.torch.module.leaky_integrator import LICell
from norse.torch.module.leaky_integrator_box import LIBoxCell
from norse.torch.module.lif import LIFCell
from norse.torch.module.lif_box import LIFBoxCell
from norse.torch.module.sequential import SequentialState
from norse.torch.utils.export_nir import InputScale, Scale, SumPool2d, _nir

__all__ = ["from_nir"]


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


def _scaled(layer: torch.nn.Module, scale: Any) -> torch.nn.Module:
    scale = np.asarray(scale, dtype=np.float64)
    if np.allclose(scale, 1.0, rtol=1e-9, atol=0.0):
        return layer
    return InputScale(_tensor(scale), layer)


def _inverse(value: Any, name: str, where: str) -> torch.Tensor:
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)) or not np.all(array > 0):
        raise ValueError(
            f"{where}: {name} must hold positive, finite time constants (seconds), got "
            f"values from {array.min()} to {array.max()}"
        )
    return _tensor(1.0 / array)


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


def _convert(
    node: Any, where: str, dt: float, reset_method: ResetMethod
) -> torch.nn.Module:
    """The Norse module of one NIR node."""
    nir = _nir()
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = np.asarray(node.weight)
        if weight.ndim != 2:
            raise ValueError(
                f"{where}: only 2D {type(node).__name__} weights are supported, got "
                f"shape {weight.shape}"
            )
        has_bias = isinstance(node, nir.Affine)
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
    if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
        # current-based: one Euler step adds dt/tau_syn * w_in * S to the current,
        # which reaches the voltage multiplied by r
        taus = dict(
            tau_syn_inv=_inverse(node.tau_syn, "tau_syn", where),
            tau_mem_inv=_inverse(node.tau_mem, "tau_mem", where),
            v_leak=_tensor(node.v_leak),
        )
        scale = (
            np.asarray(node.r) * np.asarray(node.w_in) * dt / np.asarray(node.tau_syn)
        )
        if isinstance(node, nir.CubaLI):
            return _scaled(LICell(LIParameters(**taus), dt=dt), scale)
        p = LIFParameters(
            **taus, v_th=_tensor(node.v_threshold), v_reset=_tensor(node.v_reset)
        )
        return _scaled(LIFCell(p, dt=dt), scale)
    if isinstance(node, nir.LIF):
        p = LIFBoxParameters(
            tau_mem_inv=_inverse(node.tau, "tau", where),
            v_leak=_tensor(node.v_leak),
            v_th=_tensor(node.v_threshold),
            v_reset=_tensor(node.v_reset),
            reset_method=reset_method,
        )
        return _scaled(LIFBoxCell(p, dt=dt), node.r)
    if isinstance(node, nir.LI):
        p = LIBoxParameters(
            tau_mem_inv=_inverse(node.tau, "tau", where), v_leak=_tensor(node.v_leak)
        )
        return _scaled(LIBoxCell(p, dt=dt), node.r)
    if isinstance(node, nir.IF):
        p = IAFParameters(v_th=_tensor(node.v_threshold), v_reset=_tensor(node.v_reset))
        return _scaled(IAFCell(p, dt=dt), np.asarray(node.r) * dt)
    if isinstance(node, (nir.Input, nir.Output)):
        return torch.nn.Identity()
    raise ValueError(
        f"from_nir cannot import {where}: Norse has no module for NIR's "
        f"{type(node).__name__} node (supported: Affine, Linear, Conv1d, Conv2d, "
        "Flatten, SumPool2d, AvgPool2d, Scale, CubaLIF, CubaLI, LIF, LI, IF)"
    )


def _chain(graph) -> Union[list, None]:
    """The node names from input to output when the graph is a simple chain."""
    nir = _nir()
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
        ignore_warnings (bool): silence warnings while building the modules (e.g. that
            ``dt`` is large for a time constant)
        reset_method (ResetMethod): how ``LIF`` nodes reset (NIR's is
            ``reset_value``)
        dt (float): the time step (seconds) of the Norse layers

    Returns:
        A module called once per time step, ``output, state = model(x, state)``
            (``x`` of shape ``(batch, ...)``; ``state=None`` at the first step): a
            ``SequentialState`` for chains, a ``torch.fx.GraphModule``
            (built by ``nirtorch``) for other graphs, the module itself for a single node.
            Wrap it in ``Lift`` to run a whole ``(T, batch, ...)``
            sequence.

    Raises:
        ValueError: for NIR nodes that Norse cannot run, naming the node.

    Example:
        >>> import numpy as np, nir, torch, norse.torch as norse
        >>> graph = nir.NIRGraph.from_list(
        ...     nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
        ...     nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2),
        ...             v_threshold=np.ones(2)))
        >>> model = norse.from_nir(graph, dt=0.001)
        >>> spikes, state = model(torch.ones(1, 3))
    """
    nir = _nir()
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not 0 < dt < np.inf:
        raise ValueError(
            f"dt must be a positive float (finite, in seconds), got {dt!r}"
        )
    dt = float(dt)
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

    nir = _nir()
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
