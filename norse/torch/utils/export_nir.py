r"""Export of Norse networks to NIR, the Neuromorphic Intermediate Representation.

``to_nir`` turns a network into a ``nir.NIRGraph`` that other simulators and
neuromorphic hardware read (``nir.write(path, graph)`` saves it). NIR describes neurons
by continuous-time equations with time constants in **seconds**; a simulator with time
step ``dt`` integrates them with explicit Euler steps, the input ``S`` being the value
arriving in that step:

================  ===================  ==================================================
Norse module      NIR node             parameters
================  ===================  ==================================================
``LIFCell/LIF``   ``CubaLIF``          ``tau_syn = 1/tau_syn_inv``, ``tau_mem = 1/tau_mem_inv``,
                                       ``r = 1``, ``w_in = tau_syn/dt``, ``v_leak``,
                                       ``v_threshold = v_th``, ``v_reset``
``LICell/LI``     ``CubaLI``           as ``CubaLIF`` without threshold and reset
``LIFBoxCell``    ``LIF``              ``tau = 1/tau_mem_inv``, ``r = 1``, ``v_leak``,
``/LIFBox``                            ``v_threshold``, ``v_reset``
``LIBoxCell``     ``LI``               ``tau = 1/tau_mem_inv``, ``r = 1``, ``v_leak``
``/LIBox``
``IAFCell/IAF``   ``IF``               ``r = 1/dt``, ``v_threshold``, ``v_reset``
``Linear``        ``Affine``/``Linear``  weight (and bias)
``Conv1d/2d``     ``Conv1d/2d``        weight, bias, stride, padding, dilation, groups
``Flatten``       ``Flatten``          dimensions counted without batch (and time)
``AvgPool2d``     ``AvgPool2d``        kernel, stride, padding
``LPPool2d(1,.)`` ``SumPool2d``        kernel, stride
================  ===================  ==================================================

Why ``w_in = tau_syn/dt``: NIR's synapse is :math:`\tau_{syn}\dot I = -I + w_{in} S`;
one Euler step adds :math:`\frac{dt}{\tau_{syn}} w_{in} S` to the current, while Norse's
synapse adds the input itself (``i <- i + input``). Likewise ``r = 1/dt`` for ``IF``
because NIR integrates :math:`\dot v = R I` while Norse's IAF adds the input to ``v``.
With these values a NIR simulator running at the module's ``dt`` reproduces Norse step
for step, and ``norse.torch.from_nir`` gives back the same network.

Parameter arrays have the size of the layer (``(features,)`` after a linear layer,
``(C, H, W)`` after a convolution): scalar Norse parameters are broadcast. ``torch.nn``
layers whose output does not depend on the time step (``Identity``, ``Dropout``) are
left out. Unsupported modules (``MaxPool2d``: NIR has no max pooling; recurrent cells;
other neuron models) raise a ``ValueError`` naming the module.
"""

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from norse.torch.functional.reset import reset_value
from norse.torch.module.iaf import IAF, IAFCell
from norse.torch.module.leaky_integrator import LI, LICell
from norse.torch.module.leaky_integrator_box import LIBox, LIBoxCell
from norse.torch.module.lif import LIF, LIFCell
from norse.torch.module.lif_box import LIFBox, LIFBoxCell
from norse.torch.module.lift import Lift
from norse.torch.module.snn import SNN, SNNRecurrent, SNNRecurrentCell

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    import nir

__all__ = ["to_nir"]

Shape = Tuple[int, ...]


def _nir():
    try:
        import nir
    except ImportError as error:  # pragma: no cover - nir is a test dependency
        raise ImportError(
            "NIR export needs the nir package: pip install nir nirtorch "
            "(or pip install norse[nir])"
        ) from error
    return nir


# --------------------------------------------------------------------------------------
# Helpers shared with the importer


class InputScale(torch.nn.Module):
    """Multiplies the input of a neuron layer by a fixed (per-neuron) factor.

    ``norse.torch.from_nir`` wraps a neuron layer in it when a NIR node's input
    weight (``r``, ``w_in``) is not the one that Norse's equations imply; ``to_nir``
    folds the factor back into the node. ``forward(x, state)`` returns
    ``layer(scale * x, state)``.
    """

    def __init__(self, scale: torch.Tensor, layer: torch.nn.Module):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale))
        self.layer = layer

    def forward(self, input_tensor: torch.Tensor, state: Optional[Any] = None):
        return self.layer(input_tensor * self.scale, state)


class Scale(torch.nn.Module):
    """Element-wise multiplication by a fixed tensor (NIR's ``Scale`` node)."""

    def __init__(self, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale))

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        return input_tensor * self.scale


class SumPool2d(torch.nn.Module):
    """Sum pooling over 2D windows with zero padding (NIR's ``SumPool2d`` node).

    Equal to ``torch.nn.LPPool2d(1, kernel_size, stride)`` when there is no padding.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = torch.nn.modules.utils._pair(kernel_size)
        self.stride = torch.nn.modules.utils._pair(
            stride if stride is not None else kernel_size
        )
        self.padding = torch.nn.modules.utils._pair(padding)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}"
        )

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        window = self.kernel_size[0] * self.kernel_size[1]
        pooled = torch.nn.functional.avg_pool2d(
            input_tensor,
            self.kernel_size,
            self.stride,
            self.padding,
            count_include_pad=True,
        )
        return pooled * window


# --------------------------------------------------------------------------------------
# Neuron layers


def _array(value: Any, shape: Shape, what: str) -> np.ndarray:
    """``value`` (scalar or tensor) as a float array of the layer's ``shape``."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    array = np.asarray(value, dtype=np.float64)
    try:
        return np.broadcast_to(array, shape).copy()
    except ValueError:
        raise ValueError(
            f"{what} has shape {array.shape}, which does not fit the layer's "
            f"size {shape}"
        ) from None


def _neuron_node(module: torch.nn.Module, shape: Shape, scale: Any, where: str):
    """The NIR node of a Norse neuron layer with ``shape`` neurons; ``scale`` multiplies
    the input (1 unless the layer came from an ``InputScale``)."""
    nir = _nir()
    p, dt = module.p, module.dt

    def arr(value, field):
        return _array(value, shape, f"{where}: p.{field}")

    scale = _array(scale, shape, f"{where}: the input scale")
    if isinstance(module, (LIFCell, LIF)):
        tau_syn = 1.0 / arr(p.tau_syn_inv, "tau_syn_inv")
        return nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=1.0 / arr(p.tau_mem_inv, "tau_mem_inv"),
            r=np.ones(shape),
            v_leak=arr(p.v_leak, "v_leak"),
            v_threshold=arr(p.v_th, "v_th"),
            v_reset=arr(p.v_reset, "v_reset"),
            w_in=scale * tau_syn / dt,
        )
    if isinstance(module, (LICell, LI)):
        tau_syn = 1.0 / arr(p.tau_syn_inv, "tau_syn_inv")
        return nir.CubaLI(
            tau_syn=tau_syn,
            tau_mem=1.0 / arr(p.tau_mem_inv, "tau_mem_inv"),
            r=np.ones(shape),
            v_leak=arr(p.v_leak, "v_leak"),
            w_in=scale * tau_syn / dt,
        )
    if isinstance(module, (LIFBoxCell, LIFBox)):
        if p.reset_method is not reset_value:
            raise ValueError(
                f"{where}: NIR's LIF resets the voltage to v_reset; a LIFBox with "
                f"reset_method={getattr(p.reset_method, '__name__', p.reset_method)} "
                "cannot be exported"
            )
        return nir.LIF(
            tau=1.0 / arr(p.tau_mem_inv, "tau_mem_inv"),
            r=scale,
            v_leak=arr(p.v_leak, "v_leak"),
            v_threshold=arr(p.v_th, "v_th"),
            v_reset=arr(p.v_reset, "v_reset"),
        )
    if isinstance(module, (LIBoxCell, LIBox)):
        return nir.LI(
            tau=1.0 / arr(p.tau_mem_inv, "tau_mem_inv"),
            r=scale,
            v_leak=arr(p.v_leak, "v_leak"),
        )
    if isinstance(module, (IAFCell, IAF)):
        return nir.IF(
            r=scale / dt,
            v_threshold=arr(p.v_th, "v_th"),
            v_reset=arr(p.v_reset, "v_reset"),
        )
    return None


_NEURONS = (
    LIFCell,
    LIF,
    LICell,
    LI,
    LIFBoxCell,
    LIFBox,
    LIBoxCell,
    LIBox,
    IAFCell,
    IAF,
)


# --------------------------------------------------------------------------------------
# One layer


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _unsupported(module: torch.nn.Module, where: str) -> ValueError:
    name = type(module).__name__
    if isinstance(module, (torch.nn.MaxPool1d, torch.nn.MaxPool2d, torch.nn.MaxPool3d)):
        reason = (
            "NIR has no max pooling (use AvgPool2d or LPPool2d(1, ...), sum pooling)"
        )
    elif isinstance(module, (SNNRecurrentCell, SNNRecurrent)):
        reason = "recurrent layers are not supported by the NIR export yet"
    else:
        reason = (
            "supported are Linear, Conv1d, Conv2d, Flatten, AvgPool2d, LPPool2d with "
            "norm_type 1, and the neuron layers LIF, LI, LIFBox, LIBox, IAF (cells or "
            "time modules)"
        )
    return ValueError(f"to_nir cannot export {where} ({name}): {reason}")


def _layer_node(
    module: torch.nn.Module, shape: Shape, leading: int, where: str
) -> Tuple[Any, Shape]:
    """The NIR node of one layer whose input (without batch/time) has ``shape``, and
    the shape of its output."""
    nir = _nir()
    if isinstance(module, Lift):
        return _layer_node(module.lifted_module, shape, leading, where)
    if isinstance(module, InputScale):
        node = _neuron_node(module.layer, shape, module.scale, where)
        if node is None:
            raise _unsupported(module.layer, where)
        return node, shape
    if isinstance(module, _NEURONS):
        return _neuron_node(module, shape, 1.0, where), shape
    if isinstance(module, torch.nn.Linear):
        if shape and shape[-1] != module.in_features:
            raise ValueError(
                f"{where} (Linear) takes {module.in_features} features, but its input "
                f"has shape {shape}"
            )
        out = (*shape[:-1], module.out_features) if shape else (module.out_features,)
        if module.bias is None:
            return nir.Linear(weight=_numpy(module.weight)), out
        return nir.Affine(weight=_numpy(module.weight), bias=_numpy(module.bias)), out
    if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d)):
        dims = 1 if isinstance(module, torch.nn.Conv1d) else 2
        _need_shape(shape, dims + 1, module, where)
        if module.padding_mode != "zeros":
            raise ValueError(
                f"{where}: NIR convolutions pad with zeros, got padding_mode="
                f"{module.padding_mode!r}"
            )
        bias = (
            _numpy(module.bias)
            if module.bias is not None
            else np.zeros(module.out_channels, dtype=np.float32)
        )
        common = dict(
            weight=_numpy(module.weight),
            stride=module.stride[0] if dims == 1 else tuple(module.stride),
            padding=(
                module.padding
                if isinstance(module.padding, str)
                else (module.padding[0] if dims == 1 else tuple(module.padding))
            ),
            dilation=module.dilation[0] if dims == 1 else tuple(module.dilation),
            groups=module.groups,
            bias=bias,
        )
        if dims == 1:
            node = nir.Conv1d(input_shape=int(shape[1]), **common)
        else:
            node = nir.Conv2d(input_shape=tuple(int(n) for n in shape[1:]), **common)
        return node, _run_shape(module, shape)
    if isinstance(module, torch.nn.Flatten):
        start = _feature_dim(module.start_dim, len(shape), leading, where, "start_dim")
        end = _feature_dim(module.end_dim, len(shape), leading, where, "end_dim")
        node = nir.Flatten(
            input_type={"input": np.array(shape)},
            start_dim=start,
            end_dim=-1 if end == len(shape) - 1 else end,
        )
        return node, tuple(int(n) for n in node.output_type["output"])
    if isinstance(module, (torch.nn.AvgPool2d, torch.nn.LPPool2d, SumPool2d)):
        _need_shape(shape, 3, module, where)
        pair = torch.nn.modules.utils._pair
        kernel = np.array(pair(module.kernel_size))
        stride = np.array(pair(module.stride if module.stride is not None else kernel))
        if isinstance(module, torch.nn.LPPool2d):
            if float(module.norm_type) != 1.0 or module.ceil_mode:
                raise ValueError(
                    f"{where}: only LPPool2d with norm_type=1 (sum pooling) and "
                    f"ceil_mode=False exports to NIR, got norm_type={module.norm_type}"
                )
            node = nir.SumPool2d(kernel_size=kernel, stride=stride, padding=np.zeros(2))
        elif isinstance(module, SumPool2d):
            padding = np.array(module.padding)
            node = nir.SumPool2d(kernel_size=kernel, stride=stride, padding=padding)
        else:
            if module.ceil_mode or not module.count_include_pad:
                raise ValueError(
                    f"{where}: NIR's AvgPool2d has ceil_mode=False and counts the "
                    "padding; other AvgPool2d settings cannot be exported"
                )
            padding = np.array(pair(module.padding))
            node = nir.AvgPool2d(kernel_size=kernel, stride=stride, padding=padding)
        out = _run_shape(module, shape)
        node.input_type = {"input": np.array(shape)}
        node.output_type = {"output": np.array(out)}
        return node, out
    if isinstance(module, Scale):
        return nir.Scale(scale=_array(module.scale, shape, f"{where}: scale")), shape
    raise _unsupported(module, where)


def _need_shape(shape: Shape, ndim: int, module: torch.nn.Module, where: str) -> None:
    if len(shape) != ndim:
        raise ValueError(
            f"{where} ({type(module).__name__}) needs inputs with {ndim} dimensions "
            f"besides batch (and time), got {shape if shape else 'an unknown shape'}; "
            "pass sample_data to to_nir"
        )


def _feature_dim(dim: int, rank: int, leading: int, where: str, what: str) -> int:
    index = dim - leading if dim >= 0 else rank + dim
    if not 0 <= index < rank:
        raise ValueError(
            f"{where} (Flatten) has {what}={dim}, which reaches into the batch (or time) "
            f"dimensions; NIR flattens only the {rank} feature dimensions"
        )
    return index


@torch.no_grad()
def _run_shape(module: torch.nn.Module, shape: Shape) -> Shape:
    parameter = next(module.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    device = parameter.device if parameter is not None else "cpu"
    return tuple(module(torch.zeros(1, *shape, dtype=dtype, device=device)).shape[1:])


# --------------------------------------------------------------------------------------
# Whole networks

_SKIPPED = (torch.nn.Identity, torch.nn.Dropout)


def _leaves(module: torch.nn.Module, name: str) -> List[Tuple[str, torch.nn.Module]]:
    """The layers of a chain in order (nested chains inlined); ``name`` is the path."""
    if isinstance(module, torch.nn.Sequential):
        result = []
        for child_name, child in module.named_children():
            result += _leaves(child, f"{name}.{child_name}" if name else child_name)
        return result
    if isinstance(module, Lift) and isinstance(
        module.lifted_module, torch.nn.Sequential
    ):
        return _leaves(module.lifted_module, name)
    if isinstance(module, _SKIPPED):
        return []
    return [(name or type(module).__name__.lower(), module)]


def _is_chain(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Sequential) or (
        isinstance(module, Lift)
        and isinstance(module.lifted_module, torch.nn.Sequential)
    )


def _time_first(module: torch.nn.Module) -> bool:
    """Whether the network takes ``(T, batch, ...)``: it holds a time module or Lift."""
    return any(isinstance(m, (SNN, SNNRecurrent, Lift)) for m in module.modules())


def _check_dt(module: torch.nn.Module, dt: Optional[float]) -> None:
    if dt is None:
        return
    for name, layer in module.named_modules():
        layer_dt = getattr(layer, "dt", None)
        if isinstance(layer, _NEURONS) and abs(layer_dt - dt) > 1e-12 * dt:
            raise ValueError(
                f"to_nir got dt={dt}, but layer {name or type(layer).__name__} runs with "
                f"dt={layer_dt}; the export uses each layer's own dt, so leave dt out "
                "or set the layers' dt"
            )


def _input_shape(
    module: torch.nn.Module,
    leaves: Sequence[Tuple[str, torch.nn.Module]],
    sample_data: Optional[torch.Tensor],
    leading: int,
) -> Shape:
    if sample_data is not None:
        if not isinstance(sample_data, torch.Tensor):
            raise TypeError(
                f"sample_data must be a torch.Tensor, got {type(sample_data).__name__}"
            )
        if sample_data.dim() <= leading:
            layout = "(T, batch, ...)" if leading == 2 else "(batch, ...)"
            raise ValueError(
                f"sample_data must have the shape {layout} of the network's input, got "
                f"shape {tuple(sample_data.shape)}"
            )
        return tuple(sample_data.shape[leading:])
    first = leaves[0][1] if leaves else module
    first = first.lifted_module if isinstance(first, Lift) else first
    if isinstance(first, torch.nn.Linear):
        return (first.in_features,)
    raise ValueError(
        f"to_nir needs sample_data to know the input size of the first layer "
        f"({type(first).__name__}); pass one input batch, e.g. "
        "to_nir(model, sample_data=torch.zeros(...))"
    )


def to_nir(
    module: torch.nn.Module,
    sample_data: Optional[torch.Tensor] = None,
    model_name: str = "norse",
    dt: Optional[float] = None,
) -> "nir.NIRGraph":
    """Exports a Norse network to a NIR graph.

    Parameters:
        module (torch.nn.Module): a single layer, a ``torch.nn.Sequential`` or
            ``SequentialState`` chain (nested chains and
            ``Lift`` are unrolled), or another module whose
            ``forward`` torch.fx can trace (then exported through ``nirtorch``)
        sample_data (torch.Tensor): one input of the network, ``(batch, ...)`` or, for
            networks with time modules or ``Lift``, ``(T, batch, ...)``; used for the
            sizes of the layers. May be left out when the first layer is ``Linear``.
        model_name (str): stored in the graph's metadata
        dt (float): optional check: every neuron layer must run with this time step
            (the export always uses each layer's own ``dt``)

    Returns:
        A ``nir.NIRGraph`` with an ``input`` and an ``output`` node; the nodes of a
            chain are named after the layers' positions (``"0"``, ``"1"``, ``"2_0"`` for
            layer 0 of a nested chain at position 2).

    Raises:
        ValueError: naming the layer that NIR cannot express, or a missing input size.

    Example:
        >>> import torch, norse.torch as norse
        >>> model = norse.SequentialState(torch.nn.Linear(4, 3), norse.LIFCell())
        >>> graph = norse.to_nir(model)
        >>> sorted(graph.nodes)
        ['0', '1', 'input', 'output']
        >>> type(graph.nodes['1']).__name__, graph.nodes['1'].w_in.tolist()
        ('CubaLIF', [5.0, 5.0, 5.0])
    """
    nir = _nir()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module, got {type(module).__name__}"
        )
    _check_dt(module, dt)
    metadata = {"model_name": str(model_name), "framework": "norse"}
    leading = 2 if _time_first(module) else 1

    if not _is_chain(module) and not _is_layer(module):
        return _trace(module, sample_data, leading, metadata)

    leaves = _leaves(module, "")
    shape = _input_shape(module, leaves, sample_data, leading)
    nodes: Dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges: List[Tuple[str, str]] = []
    previous = "input"
    for name, leaf in leaves:
        key = name.replace(".", "_")
        if key in nodes:
            key = f"{key}_{len(nodes)}"
        node, shape = _layer_node(leaf, shape, leading, f"layer {name!r}")
        nodes[key] = node
        edges.append((previous, key))
        previous = key
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((previous, "output"))
    if sample_data is not None:
        _check_output(module, sample_data, shape, leading)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _is_layer(module: torch.nn.Module) -> bool:
    try:
        _layer_kind(module)
        return True
    except ValueError:
        return False


def _layer_kind(module: torch.nn.Module) -> type:
    inner = module.lifted_module if isinstance(module, Lift) else module
    known = (
        *_NEURONS,
        InputScale,
        Scale,
        SumPool2d,
        torch.nn.Linear,
        torch.nn.Conv1d,
        torch.nn.Conv2d,
        torch.nn.Flatten,
        torch.nn.AvgPool2d,
        torch.nn.LPPool2d,
        torch.nn.MaxPool1d,
        torch.nn.MaxPool2d,
        torch.nn.MaxPool3d,
        SNNRecurrentCell,
        SNNRecurrent,
        *_SKIPPED,
    )
    for kind in known:
        if isinstance(inner, kind):
            return kind
    raise ValueError(type(module).__name__)


@torch.no_grad()
def _check_output(module, sample_data, shape, leading) -> None:
    output = module(sample_data)
    if isinstance(output, tuple):
        output = output[0]
    if isinstance(output, torch.Tensor) and tuple(output.shape[leading:]) != shape:
        raise ValueError(
            f"the exported graph ends in shape {shape}, but the network's output has "
            f"shape {tuple(output.shape)}; is sample_data laid out as the network "
            f"expects ({'(T, batch, ...)' if leading == 2 else '(batch, ...)'})?"
        )


def _trace(module, sample_data, leading, metadata):
    """Exports a module with its own ``forward`` by tracing it with torch.fx
    (through ``nirtorch``); the layer sizes come from running ``sample_data``."""
    import nirtorch

    if sample_data is None:
        raise ValueError(
            f"to_nir needs sample_data to export {type(module).__name__}, whose forward "
            "is traced (it is not a single layer or a Sequential/SequentialState chain)"
        )
    shapes: Dict[int, Shape] = {}
    handles = []
    for layer in module.modules():
        if layer is not module and _is_layer(layer):

            def record(mod, args, _output, _shapes=shapes):
                _shapes.setdefault(id(mod), tuple(args[0].shape[leading:]))

            handles.append(layer.register_forward_hook(record))
    try:
        with torch.no_grad():
            module(sample_data)
    finally:
        for handle in handles:
            handle.remove()

    def convert(layer: torch.nn.Module):
        if id(layer) not in shapes:
            raise ValueError(
                f"{type(layer).__name__} was not called on sample_data, so its size is "
                "unknown"
            )
        return _layer_node(layer, shapes[id(layer)], leading, type(layer).__name__)[0]

    kinds = {type(layer) for layer in module.modules() if _is_layer(layer)}
    module_map: Dict[type, Callable] = {kind: convert for kind in kinds}
    stateful = {kind for kind in kinds if issubclass(kind, (*_NEURONS, InputScale))}
    stateful |= {Lift}
    try:
        graph = nirtorch.torch_to_nir(
            module,
            module_map,
            default_dict={},
            stateful_modules=stateful,
            concrete_args=None,
        )
    except (torch.fx.proxy.TraceError, KeyError, TypeError) as error:
        raise ValueError(
            f"to_nir could not trace {type(module).__name__}: {error}. Export a "
            "SequentialState/Sequential chain, or modules that NIR supports"
        ) from error
    graph.metadata = dict(metadata)
    return graph
