r"""Export of Norse networks to NIR, the Neuromorphic Intermediate Representation.

``to_nir`` turns a network into a ``nir.NIRGraph`` that other simulators and
neuromorphic hardware read (``nir.write(path, graph)`` saves it). NIR describes neurons
by continuous-time equations with time constants in **seconds**; a simulator with time
step ``dt`` integrates them with explicit Euler steps (current first, then voltage), the
input ``S`` being the value arriving in that step:

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
``IAFCell/IAF``   ``IF``               ``r = 1``, ``v_threshold``, ``v_reset``
``CubaLIF``       ``CubaLIF``          the module ``from_nir`` builds, with its ``w_in``
                                       and ``r``
``Linear``        ``Affine``           weight, bias (zeros without bias, as Norse 1.1)
``Conv1d/2d``     ``Conv1d/2d``        weight, bias, stride, padding, dilation, groups
``Flatten``       ``Flatten``          dimensions counted without batch (and time)
``AvgPool2d``     ``AvgPool2d``        kernel, stride, padding
``LPPool2d(1,.)`` ``SumPool2d``        kernel, stride
quantised layers  the layer's own      what its ``nir_nodes`` returns (see below)
================  ===================  ==================================================

Quantised networks (:func:`norse.torch.quantization.quantize`) export with integer
weights: a layer with a ``nir_nodes(shape, where, time_scale)`` method is exported by it,
and a synapse gives two nodes, an ``Affine``/``Conv`` node with integer (int8) weights
and int32 biases followed by a ``Scale`` node (``"<name>_scale"``) holding the scale of
every output channel; its neurons have integer thresholds. The node metadata hold the
fixed-point formats (see :mod:`norse.torch.quantization`).

Why ``w_in = tau_syn/dt``: NIR's synapse is :math:`\tau_{syn}\dot I = -I + w_{in} S`;
one Euler step adds :math:`\frac{dt}{\tau_{syn}} w_{in} S` to the current, while Norse's
synapse adds the input itself (``i <- i + input``). ``IF`` nodes have no time constant:
every simulator that writes them (Norse 1.1, sinabs) and every one that reads them
means ``v <- v + r * S`` per step, which is what Norse's IAF does with ``r = 1``.
With these values a NIR simulator running at the module's ``dt`` reproduces Norse step
for step, and ``norse.torch.from_nir`` gives back the same network.
``time_scaling_factor`` multiplies every time constant: the graph then runs at steps of
``time_scaling_factor * dt``.

Parameter arrays have the size of the layer (``(features,)`` after a linear layer,
``(C, H, W)`` after a convolution): scalar Norse parameters are broadcast. ``torch.nn``
layers whose output does not depend on the time step (``Identity``, ``Dropout``) are
left out. Unsupported modules (``MaxPool2d``: NIR has no max pooling; recurrent cells;
other neuron models) raise a ``ValueError`` naming the module. NIR's spiking nodes
reset to ``v_reset``: a layer that subtracts the threshold instead is exported with a
warning (``from_nir(..., reset_method=reset_subtract)`` restores it).
"""

import warnings
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
from norse.torch.utils._optional import import_optional

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    import nir

__all__ = ["to_nir"]

Shape = Tuple[int, ...]


def nir_package():
    """The ``nir`` package, imported on first use; ``ImportError`` saying how to install
    it when it is missing."""
    return import_optional(
        "nir",
        "NIR export needs the nir package: pip install nir nirtorch "
        "(or pip install norse[nir])",
    )


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


def node_array(value: Any, shape: Shape, what: str) -> np.ndarray:
    """``value`` (scalar or tensor) as a float64 array of the layer's ``shape``, as NIR
    nodes store their parameters; ``ValueError`` naming ``what`` when it does not
    broadcast to ``shape``. For layers that export themselves (``nir_nodes``)."""
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


def _reset_name(reset_method: Any) -> str:
    return getattr(reset_method, "__name__", repr(reset_method))


def _warn_reset(reset_method: Any, where: str) -> None:
    """NIR's spiking nodes reset to ``v_reset``; another reset method is not stored."""
    if reset_method is not reset_value:
        warnings.warn(
            f"{where}: NIR's neurons reset to v_reset; reset_method="
            f"{_reset_name(reset_method)} is not stored in the graph (import it with "
            f"from_nir(..., reset_method={_reset_name(reset_method)}))",
            UserWarning,
            stacklevel=5,
        )


def _neuron_node(
    module: torch.nn.Module, shape: Shape, scale: Any, where: str, time_scale: float
):
    """The NIR node of a Norse neuron layer with ``shape`` neurons; ``scale`` multiplies
    the input (1 unless the layer came from an ``InputScale``) and ``time_scale`` every
    time constant."""
    nir = nir_package()
    from norse.torch.utils.import_nir import IF, CubaLIF  # (imports this module)

    def arr(value, field):
        return node_array(value, shape, f"{where}: p.{field}")

    def tau(value, field):
        return time_scale / arr(value, field)

    scale = node_array(scale, shape, f"{where}: the input scale")
    if isinstance(module, CubaLIF):
        synapse, lif = module.synapse.p, module.lif.p
        if not np.all(arr(synapse.v_leak, "v_leak of the synapse") == 0):
            raise ValueError(
                f"{where}: NIR's CubaLIF synapse decays to 0, but this one has "
                f"v_leak={synapse.v_leak}"
            )
        _warn_reset(lif.reset_method, where)
        return nir.CubaLIF(
            tau_syn=tau(synapse.tau_mem_inv, "tau_mem_inv of the synapse"),
            tau_mem=tau(lif.tau_mem_inv, "tau_mem_inv"),
            r=arr(module.r, "r"),
            v_leak=arr(lif.v_leak, "v_leak"),
            v_threshold=arr(lif.v_th, "v_th"),
            v_reset=arr(lif.v_reset, "v_reset"),
            w_in=scale * arr(module.w_in, "w_in"),
        )
    p, dt = module.p, module.dt
    if isinstance(module, (LIFCell, LIF, LICell, LI)):
        # Norse's current jumps by the input: w_in = tau_syn/dt in NIR's units
        current_based = dict(
            tau_syn=tau(p.tau_syn_inv, "tau_syn_inv"),
            tau_mem=tau(p.tau_mem_inv, "tau_mem_inv"),
            r=np.ones(shape),
            v_leak=arr(p.v_leak, "v_leak"),
            w_in=scale / (dt * arr(p.tau_syn_inv, "tau_syn_inv")),
        )
        if isinstance(module, (LIFCell, LIF)):  # the leaky integrator and a threshold
            return nir.CubaLIF(
                **current_based,
                v_threshold=arr(p.v_th, "v_th"),
                v_reset=arr(p.v_reset, "v_reset"),
            )
        return nir.CubaLI(**current_based)
    if isinstance(module, (LIFBoxCell, LIFBox)):
        _warn_reset(p.reset_method, where)
        return nir.LIF(
            tau=tau(p.tau_mem_inv, "tau_mem_inv"),
            r=scale,
            v_leak=arr(p.v_leak, "v_leak"),
            v_threshold=arr(p.v_th, "v_th"),
            v_reset=arr(p.v_reset, "v_reset"),
        )
    if isinstance(module, (LIBoxCell, LIBox)):
        return nir.LI(
            tau=tau(p.tau_mem_inv, "tau_mem_inv"),
            r=scale,
            v_leak=arr(p.v_leak, "v_leak"),
        )
    if isinstance(module, (IAFCell, IAF)):
        # IF has no time constant: r is the weight of the input in every step
        if isinstance(module, IF):
            _warn_reset(module.reset_method, where)
            scale = scale * arr(module.r, "r")
        return nir.IF(
            r=scale,
            v_threshold=arr(p.v_th, "v_th"),
            v_reset=arr(p.v_reset, "v_reset"),
        )
    return None


_CELLS = (
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


def _neurons() -> Tuple[type, ...]:
    """The neuron layers the export knows: Norse's cells and time modules, and the
    ``CubaLIF`` module that ``from_nir`` builds (imported here, as it imports this
    module)."""
    from norse.torch.utils.import_nir import CubaLIF

    return (*_CELLS, CubaLIF)


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
            "time modules) and from_nir's CubaLIF"
        )
    return ValueError(f"to_nir cannot export {where} ({name}): {reason}")


def layer_node(
    module: torch.nn.Module,
    shape: Shape,
    leading: int,
    where: str,
    time_scale: float = 1.0,
) -> Tuple[Any, Shape]:
    """The NIR node of one layer whose input (without batch/time) has ``shape``, and
    the shape of its output; ``time_scale`` multiplies the time constants, ``where``
    names the layer in errors, ``leading`` counts the input's dimensions before
    ``shape`` (batch, time).

    Layers that export themselves implement ``nir_nodes(shape, where, time_scale)``
    (one node, or a list of ``(name suffix, node)`` pairs) and may build on this
    function, on :func:`node_array` and :func:`nir_package`, as the quantised layers
    (:mod:`norse.torch.quantization`) do."""
    nir = nir_package()
    if isinstance(module, Lift):
        return layer_node(module.lifted_module, shape, leading, where, time_scale)
    if callable(getattr(module, "nir_nodes", None)):
        # a layer that exports itself (the quantised layers): one node, or a list of
        # (name suffix, node) pairs chained in order
        return module.nir_nodes(shape, where, time_scale)
    if isinstance(module, InputScale):
        node = _neuron_node(module.layer, shape, module.scale, where, time_scale)
        if node is None:
            raise _unsupported(module.layer, where)
        return node, shape
    if isinstance(module, _neurons()):
        return _neuron_node(module, shape, 1.0, where, time_scale), shape
    if isinstance(module, torch.nn.Linear):
        if shape and shape[-1] != module.in_features:
            raise ValueError(
                f"{where} (Linear) takes {module.in_features} features, but its input "
                f"has shape {shape}"
            )
        out = (*shape[:-1], module.out_features) if shape else (module.out_features,)
        weight = _numpy(module.weight)
        # an Affine node also without bias, as Norse 1.1 wrote (its readers expect one)
        bias = (
            _numpy(module.bias)
            if module.bias is not None
            else np.zeros(module.out_features, dtype=weight.dtype)
        )
        return nir.Affine(weight=weight, bias=bias), out
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
        return nir.Scale(
            scale=node_array(module.scale, shape, f"{where}: scale")
        ), shape
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
    return any(
        isinstance(m, (SNN, SNNRecurrent, Lift)) or getattr(m, "nir_time_first", False)
        for m in module.modules()
    )


def _positive(value: Any, name: str) -> float:
    """``value`` as a float, which must be positive and finite."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value < float("inf")
    ):
        raise ValueError(f"{name} must be a positive, finite float, got {value!r}")
    return float(value)


def _check_dt(module: torch.nn.Module, dt: Optional[float]) -> None:
    """Norse 1.1's ``dt`` argument: accepted, but the export writes each layer's own
    time step; a layer that runs with another one gets a warning."""
    if dt is None:
        return
    dt = _positive(dt, "dt")
    for name, layer in module.named_modules():
        layer_dt = getattr(layer, "dt", None)
        if (
            isinstance(layer, _CELLS)
            and isinstance(layer_dt, float)
            and abs(layer_dt - dt) > 1e-9 * dt
        ):
            warnings.warn(
                f"to_nir got dt={dt}, but layer {name or type(layer).__name__} runs with "
                f"dt={layer_dt}: the graph describes the layer as it runs (time "
                "constants in seconds, input weights for its own dt). Norse 1.1 "
                "multiplied the time constants by dt; to rescale time, pass "
                "time_scaling_factor",
                UserWarning,
                stacklevel=3,
            )


def _input_shape(
    module: torch.nn.Module,
    leaves: Sequence[Tuple[str, torch.nn.Module]],
    sample_data: Optional[torch.Tensor],
    leading: int,
) -> Tuple[Shape, int]:
    """The shape of one input without batch (and time), and the number of leading
    dimensions of ``sample_data`` that are not features."""
    if sample_data is not None:
        if not isinstance(sample_data, torch.Tensor):
            raise TypeError(
                f"sample_data must be a torch.Tensor, got {type(sample_data).__name__}"
            )
        if leading == 1 and sample_data.dim() == 1:
            # one input without a batch dimension, as Norse 1.1 accepted it (the NIR
            # paper exports with to_nir(model, data[0]))
            return tuple(sample_data.shape), 0
        if sample_data.dim() <= leading:
            layout = "(T, batch, ...)" if leading == 2 else "(batch, ...)"
            raise ValueError(
                f"sample_data must have the shape {layout} of the network's input, got "
                f"shape {tuple(sample_data.shape)}"
            )
        return tuple(sample_data.shape[leading:]), leading
    first = leaves[0][1] if leaves else module
    first = first.lifted_module if isinstance(first, Lift) else first
    if isinstance(first, torch.nn.Linear):
        return (first.in_features,), leading
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
    time_scaling_factor: float = 1.0,
    type_check: bool = True,
) -> "nir.NIRGraph":
    """Exports a Norse network to a NIR graph.

    The graph reproduces the network step for step when a simulator integrates NIR's
    equations with explicit Euler steps of ``time_scaling_factor * dt`` seconds
    (``dt``: each layer's own time step). ``IF`` nodes add ``r * input`` to the voltage
    in every step.

    Parameters:
        module (torch.nn.Module): a single layer, a ``torch.nn.Sequential`` or
            ``SequentialState`` chain (nested chains and
            ``Lift`` are unrolled), or another module whose
            ``forward`` torch.fx can trace (then exported through ``nirtorch``)
        sample_data (torch.Tensor): one input of the network, ``(batch, ...)`` (or one
            unbatched 1D input) or, for networks with time modules or ``Lift``,
            ``(T, batch, ...)``; used for the sizes of the layers. May be left out when
            the first layer is ``Linear``.
        model_name (str): the name of the node of a single layer, and stored in the
            graph's metadata
        dt (float): Norse 1.1's argument, accepted for compatibility: the export
            always writes each layer's own time step, and warns when a layer runs with
            another ``dt`` (Norse 1.1 multiplied the time constants by it)
        time_scaling_factor (float): multiplies every time constant (as in Norse
            after 1.1), so that the graph runs at steps of ``time_scaling_factor * dt``
            seconds; 1 (the default) keeps the network's own time
        type_check (bool): check the types (shapes) of the graph's edges, as
            ``nir.NIRGraph`` does

    Returns:
        A ``nir.NIRGraph`` with an ``input`` and an ``output`` node; the node of a
            single layer is named ``model_name``, the nodes of a chain after the
            layers' positions (``"0"``, ``"1"``, ``"2_0"`` for layer 0 of a nested chain
            at position 2).

    Raises:
        ValueError: naming the layer that NIR cannot express, a missing input size, or
            a ``dt`` or ``time_scaling_factor`` that is not a positive, finite number.

    Example:
        >>> import torch, norse.torch as norse
        >>> model = norse.SequentialState(torch.nn.Linear(4, 3), norse.LIFCell())
        >>> graph = norse.to_nir(model)
        >>> sorted(graph.nodes)
        ['0', '1', 'input', 'output']
        >>> type(graph.nodes['1']).__name__, graph.nodes['1'].w_in.tolist()
        ('CubaLIF', [5.0, 5.0, 5.0])
    """
    nir = nir_package()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module, got {type(module).__name__}"
        )
    time_scale = _positive(time_scaling_factor, "time_scaling_factor")
    if not isinstance(type_check, bool):
        raise TypeError(f"type_check must be a bool, got {type_check!r}")
    _check_dt(module, dt)
    metadata = {"model_name": str(model_name), "framework": "norse"}
    leading = 2 if _time_first(module) else 1

    if not _is_chain(module) and not _is_layer(module):
        return _trace(module, sample_data, leading, metadata, time_scale, type_check)

    leaves = _leaves(module, "")
    if not _is_chain(module) and leaves:
        # a single layer: its node is named after the model, as in Norse 1.1
        leaves = [(str(model_name), leaves[0][1])]
    shape, batch_dims = _input_shape(module, leaves, sample_data, leading)
    nodes: Dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges: List[Tuple[str, str]] = []
    previous = "input"
    for name, leaf in leaves:
        key = name.replace(".", "_")
        if key in nodes or key == "output":
            key = f"{key}_{len(nodes)}"
        node, shape = layer_node(leaf, shape, leading, f"layer {name!r}", time_scale)
        parts = node if isinstance(node, list) else [("", node)]
        for suffix, part in parts:
            part_key = f"{key}_{suffix}" if suffix else key
            nodes[part_key] = part
            edges.append((previous, part_key))
            previous = part_key
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((previous, "output"))
    if sample_data is not None:
        _check_output(module, sample_data, shape, batch_dims)
    return nir.NIRGraph(
        nodes=nodes, edges=edges, metadata=metadata, type_check=type_check
    )


def _is_layer(module: torch.nn.Module) -> bool:
    try:
        _layer_kind(module)
        return True
    except ValueError:
        return False


def _layer_kind(module: torch.nn.Module) -> type:
    inner = module.lifted_module if isinstance(module, Lift) else module
    if callable(getattr(inner, "nir_nodes", None)):
        return type(inner)
    known = (
        *_neurons(),
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
def _check_output(module, sample_data, shape, batch_dims) -> None:
    """The network's output on ``sample_data`` must have the graph's output ``shape``
    after its ``batch_dims`` leading dimensions."""
    output = module(sample_data)
    if isinstance(output, tuple):
        output = output[0]
    if isinstance(output, torch.Tensor) and tuple(output.shape[batch_dims:]) != shape:
        layout = {0: "(features...)", 1: "(batch, ...)", 2: "(T, batch, ...)"}
        raise ValueError(
            f"the exported graph ends in shape {shape}, but the network's output has "
            f"shape {tuple(output.shape)}; is sample_data laid out as the network "
            f"expects ({layout[batch_dims]})?"
        )


def _trace(module, sample_data, leading, metadata, time_scale, type_check):
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
        where = type(layer).__name__
        node = layer_node(layer, shapes[id(layer)], leading, where, time_scale)[0]
        if isinstance(node, list):
            raise ValueError(
                f"{where} exports to several NIR nodes, which only chains support: "
                "export a SequentialState/Sequential chain"
            )
        return node

    kinds = {type(layer) for layer in module.modules() if _is_layer(layer)}
    module_map: Dict[type, Callable] = {kind: convert for kind in kinds}
    stateful = {kind for kind in kinds if issubclass(kind, (*_neurons(), InputScale))}
    stateful |= {Lift}
    try:
        graph = nirtorch.torch_to_nir(
            module,
            module_map,
            default_dict={},
            type_check=type_check,
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
