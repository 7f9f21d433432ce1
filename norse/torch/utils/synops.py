"""What a network costs to run: synaptic operations, sparsity and an energy estimate.

:class:`SynOpCounter` observes a model with torch forward hooks while it runs and
counts, per layer and in total:

* **input spikes**: the non-zero entries that reach a synaptic layer (``Linear``,
  ``Conv1d/2d/3d`` and their subclasses, the input and recurrent weights of this
  package's recurrent neuron modules such as
  :class:`~norse.torch.LIFRecurrentCell`, the weights of
  :class:`~norse.torch.LILinearCell`);
* **synaptic operations**: one per (non-zero input, non-zero weight) pair that the layer
  combines. They are *accumulates* (ACs) when the layer's input in that call is binary
  (all values in {-1, 0, 1}: a spike adds or subtracts the weight) and
  *multiply-accumulates* (MACs) when it is dense. These are NeuroBench's
  ``Effective_ACs`` and ``Effective_MACs``; ``dense_ops`` (NeuroBench's ``Dense``)
  counts every connection whatever the values (zero inputs and zero weights too);
* **membrane updates**: one per neuron per time step, for every neuron module of this
  package (including the LIF encoders);
* **activation sparsity**: the fraction of zero outputs of the neuron modules (and of
  ``torch.nn.ReLU`` / ``torch.nn.Sigmoid``, as NeuroBench);
* **energy**: ``ACs * ac_pj + MACs * mac_pj + membrane updates * membrane_update_pj``
  with the per-operation energies of an :class:`EnergyModel` (default
  :data:`HOROWITZ_45NM_FP32`: 0.9 pJ per 32-bit float add, 4.6 pJ per 32-bit float
  multiply-add; replace it with your hardware's numbers).

Everything is counted over all time steps of every call, and reported **per sample**
(divided by the number of samples, as NeuroBench does). The modules of this package take
``(T, batch, ...)``, so the counter reads the batch size from dimension 1 of the model's
input (``batch_dim``); a model that takes ``(batch, ...)``, such as the MNIST task's
network, needs ``batch_dim=0``.

Conventions (the same as NeuroBench 2.3's ``SynapticOperations``, except where noted in
``docs/cost.md``): biases are not synaptic operations; a convolution's zero padding is no
connection (but reflect/circular padding repeats inputs, and those count);
pooling, normalisation, dropout, flatten and element-wise layers cost nothing here. A
layer whose input is binary in some calls and dense in others counts ACs for the former
and MACs for the latter.

Example:
    >>> import torch
    >>> import norse.torch as norse
    >>> from norse.torch.utils.synops import count_synops
    >>> model = norse.SequentialState(torch.nn.Linear(3, 4, bias=False), norse.LIF())
    >>> spikes = torch.tensor([[[1.0, 0.0, 1.0]]])  # (T=1, batch=1, 3)
    >>> count_synops(model, spikes).effective_acs  # 2 spikes, 4 synapses each
    8.0
"""

import csv
import dataclasses
import math
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from norse.torch.module.snn import NeuronModule, SNNRecurrent

__all__ = [
    "EnergyModel",
    "HOROWITZ_45NM_FP32",
    "HOROWITZ_45NM_INT32",
    "HOROWITZ_45NM_INT8",
    "LayerCost",
    "SynOpsResult",
    "SynOpCounter",
    "count_synops",
    "neurobench_model",
]

_HOROWITZ = (
    'M. Horowitz, "Computing\'s energy problem (and what we can do about it)", '
    "ISSCC 2014, doi:10.1109/ISSCC.2014.6757323"
)


def _check_energy(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float (pJ), got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite energy >= 0 (pJ), got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class EnergyModel:
    """Energy per operation, in picojoules.

    Parameters:
        ac_pj (float): one accumulate (a spike adds a weight), pJ
        mac_pj (float): one multiply-accumulate (a dense input times a weight), pJ
        membrane_update_pj (float): one neuron state update (one neuron, one step), pJ;
            0 by default, as NeuroBench and most papers count synaptic operations only
        source (str): where the numbers come from (printed with the results)

    Arithmetic only: memory accesses, which often cost more than the arithmetic on real
    hardware, are not included.
    """

    ac_pj: float = 0.9
    mac_pj: float = 4.6
    membrane_update_pj: float = 0.0
    source: str = f"{_HOROWITZ}, 45 nm, 32-bit float: add 0.9 pJ, multiply 3.7 pJ"

    def __post_init__(self) -> None:
        for name in ("ac_pj", "mac_pj", "membrane_update_pj"):
            object.__setattr__(self, name, _check_energy(name, getattr(self, name)))
        if not isinstance(self.source, str):
            raise TypeError(f"source must be a str, got {type(self.source).__name__}")

    def energy_pj(self, acs: float, macs: float, membrane_updates: float) -> float:
        """The energy of ``acs`` accumulates, ``macs`` multiply-accumulates and
        ``membrane_updates`` neuron updates, in pJ."""
        return (
            acs * self.ac_pj
            + macs * self.mac_pj
            + membrane_updates * self.membrane_update_pj
        )


#: 32-bit floating point at 45 nm (Horowitz 2014): AC = add 0.9 pJ, MAC = multiply
#: 3.7 pJ + add 0.9 pJ = 4.6 pJ. The default.
HOROWITZ_45NM_FP32 = EnergyModel()
#: 32-bit integers at 45 nm (Horowitz 2014): AC = add 0.1 pJ, MAC = multiply 3.1 pJ +
#: add 0.1 pJ = 3.2 pJ.
HOROWITZ_45NM_INT32 = EnergyModel(
    ac_pj=0.1,
    mac_pj=3.2,
    source=f"{_HOROWITZ}, 45 nm, 32-bit integer: add 0.1 pJ, multiply 3.1 pJ",
)
#: 8-bit integers at 45 nm (Horowitz 2014): AC = add 0.03 pJ, MAC = multiply 0.2 pJ +
#: add 0.03 pJ = 0.23 pJ.
HOROWITZ_45NM_INT8 = EnergyModel(
    ac_pj=0.03,
    mac_pj=0.23,
    source=f"{_HOROWITZ}, 45 nm, 8-bit integer: add 0.03 pJ, multiply 0.2 pJ",
)


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """The cost of one layer, **per sample** (all time steps and calls of a run).

    Attributes:
        name (str): the module's name in the model (``"(root)"`` for the model itself)
        kind (str): the module's class name
        calls (int): how often the module ran (in the whole run, not per sample)
        input_spikes (float): non-zero entries of the synaptic input(s) (spikes, for
            binary input); recurrent modules add their recurrent input spikes
        inputs (float): all entries of the synaptic input(s)
        effective_acs (float): accumulates (binary input, non-zero input and weight)
        effective_macs (float): multiply-accumulates (dense input, non-zero input and
            weight)
        dense_ops (float): every connection of every input entry, whatever its value
        membrane_updates (float): neuron state updates (neurons times time steps)
        outputs (float): output entries of a neuron module or activation
        output_spikes (float): non-zero entries among ``outputs`` (spikes for spiking
            neurons)
        energy_pj (float): the energy estimate, pJ
    """

    name: str
    kind: str
    calls: int
    input_spikes: float
    inputs: float
    effective_acs: float
    effective_macs: float
    dense_ops: float
    membrane_updates: float
    outputs: float
    output_spikes: float
    energy_pj: float

    @property
    def synops(self) -> float:
        """Effective synaptic operations: ACs plus MACs, per sample."""
        return self.effective_acs + self.effective_macs

    @property
    def activation_sparsity(self) -> Optional[float]:
        """Fraction of zero outputs (``None`` for a layer without neuron outputs)."""
        if self.outputs == 0:
            return None
        return 1.0 - self.output_spikes / self.outputs


#: The columns of :meth:`SynOpsResult.to_csv`, in order.
CSV_COLUMNS = (
    "layer",
    "kind",
    "calls",
    "input_spikes",
    "inputs",
    "effective_acs",
    "effective_macs",
    "synops",
    "dense_ops",
    "membrane_updates",
    "outputs",
    "output_spikes",
    "activation_sparsity",
    "energy_pj",
    "samples",
    "ac_pj",
    "mac_pj",
    "membrane_update_pj",
)
_TOTAL = "(total)"


def _sum(layers: Sequence[LayerCost], field: str) -> float:
    return float(sum(getattr(layer, field) for layer in layers))


def _layer_total(field: str, doc: str) -> property:
    """A read-only property: the sum of ``field`` over the result's layers."""

    def total(self: "SynOpsResult") -> float:
        return _sum(self.layers, field)

    return property(total, doc=doc)


@dataclasses.dataclass(frozen=True)
class SynOpsResult:
    """The cost of a run: one :class:`LayerCost` per layer that ran, in the order in
    which the layers first ran, and the totals, all **per sample**.

    ``print(result)`` shows a table; :meth:`as_dict`, :meth:`to_csv` and :meth:`plot`
    give the same numbers as a dict, a CSV file and a bar plot.

    Attributes:
        layers (tuple of LayerCost): the layers
        samples (int): the number of samples the counts are divided by
        energy (EnergyModel): the per-operation energies used
        uncounted (tuple of str): modules with weights that ran but whose operations
            this counter does not know (e.g. ``ConvTranspose2d``, ``torch.nn.LSTM``)
    """

    layers: Tuple[LayerCost, ...]
    samples: int
    energy: EnergyModel = HOROWITZ_45NM_FP32
    uncounted: Tuple[str, ...] = ()

    effective_acs = _layer_total("effective_acs", "Accumulates per sample.")

    effective_macs = _layer_total("effective_macs", "Multiply-accumulates per sample.")

    @property
    def synops(self) -> float:
        """Effective synaptic operations (ACs + MACs) per sample."""
        return self.effective_acs + self.effective_macs

    dense_ops = _layer_total(
        "dense_ops",
        "Synaptic operations per sample if every input and weight were non-zero.",
    )

    input_spikes = _layer_total(
        "input_spikes", "Non-zero synaptic inputs per sample, over all synaptic layers."
    )

    membrane_updates = _layer_total(
        "membrane_updates", "Neuron state updates per sample."
    )

    outputs = _layer_total(
        "outputs", "Outputs of the neuron modules and activations, per sample."
    )

    output_spikes = _layer_total(
        "output_spikes",
        "Non-zero outputs of the neuron modules and activations, per sample.",
    )

    @property
    def activation_sparsity(self) -> Optional[float]:
        """Fraction of zero outputs over all neuron modules and activations (``None``
        when there are none)."""
        if self.outputs == 0:
            return None
        return 1.0 - self.output_spikes / self.outputs

    energy_pj = _layer_total("energy_pj", "Estimated energy per sample, pJ.")

    @property
    def energy_joules(self) -> float:
        """Estimated energy per sample, J."""
        return self.energy_pj * 1e-12

    def as_neurobench(self) -> Dict[str, Any]:
        """The totals under the names of NeuroBench 2.3's workload metrics:
        ``SynapticOperations`` (``Effective_MACs``, ``Effective_ACs``, ``Dense``),
        ``ActivationSparsity`` and ``MembraneUpdates`` (see ``docs/cost.md`` for where
        NeuroBench's own numbers differ)."""
        return {
            "SynapticOperations": {
                "Effective_MACs": self.effective_macs,
                "Effective_ACs": self.effective_acs,
                "Dense": self.dense_ops,
            },
            "ActivationSparsity": self.activation_sparsity or 0.0,
            "MembraneUpdates": self.membrane_updates,
        }

    def _total_row(self) -> Dict[str, Any]:
        return {
            "layer": _TOTAL,
            "kind": "",
            "calls": sum(layer.calls for layer in self.layers),
            "input_spikes": self.input_spikes,
            "inputs": _sum(self.layers, "inputs"),
            "effective_acs": self.effective_acs,
            "effective_macs": self.effective_macs,
            "synops": self.synops,
            "dense_ops": self.dense_ops,
            "membrane_updates": self.membrane_updates,
            "outputs": self.outputs,
            "output_spikes": self.output_spikes,
            "activation_sparsity": self.activation_sparsity,
            "energy_pj": self.energy_pj,
        }

    @staticmethod
    def _layer_row(layer: LayerCost) -> Dict[str, Any]:
        row: Dict[str, Any] = {"layer": layer.name}
        row.update(dataclasses.asdict(layer))
        del row["name"]
        row["synops"] = layer.synops
        row["activation_sparsity"] = layer.activation_sparsity
        return {column: row[column] for column in CSV_COLUMNS if column in row}

    def as_dict(self) -> Dict[str, Any]:
        """Everything as plain Python values: ``samples``, ``energy`` (the model),
        ``uncounted``, ``total`` (a row of totals) and ``layers`` (one row per layer;
        the keys of a row are the columns of :meth:`to_csv`)."""
        return {
            "samples": self.samples,
            "energy": dataclasses.asdict(self.energy),
            "uncounted": list(self.uncounted),
            "total": self._total_row(),
            "layers": [self._layer_row(layer) for layer in self.layers],
        }

    def table(self) -> str:
        """The per-sample costs as a text table (also what ``str(result)`` gives)."""
        header = (
            "layer",
            "kind",
            "in spikes",
            "ACs",
            "MACs",
            "dense ops",
            "mem updates",
            "sparsity",
            "energy pJ",
        )
        rows = [header]
        for row in [self._layer_row(layer) for layer in self.layers] + [
            self._total_row()
        ]:
            sparsity = row["activation_sparsity"]
            rows.append(
                (
                    row["layer"],
                    row["kind"],
                    f"{row['input_spikes']:,.1f}",
                    f"{row['effective_acs']:,.1f}",
                    f"{row['effective_macs']:,.1f}",
                    f"{row['dense_ops']:,.1f}",
                    f"{row['membrane_updates']:,.1f}",
                    "-" if sparsity is None else f"{sparsity:.4f}",
                    f"{row['energy_pj']:,.1f}",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

        def line(row: Sequence[str]) -> str:
            cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
            cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:])]
            return "  ".join(cells).rstrip()

        rule = "-" * len(line(header))
        lines = [line(header), rule]
        lines += [line(row) for row in rows[1:-1]]
        lines += [rule, line(rows[-1])]
        lines.append(
            f"per sample ({self.samples} samples); energy {_energy_text(self.energy_pj)}"
            f" with AC {self.energy.ac_pj:g} pJ, MAC {self.energy.mac_pj:g} pJ, "
            f"membrane update {self.energy.membrane_update_pj:g} pJ"
        )
        lines.append(f"energies per operation: {self.energy.source}")
        if self.uncounted:
            lines.append(
                "not counted (unknown weight layers): " + ", ".join(self.uncounted)
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_csv(self, path: Union[str, Path]) -> Path:
        """Writes one row per layer and a last row ``(total)``, with the columns of
        :data:`CSV_COLUMNS` (per-sample values; ``samples`` and the energies per
        operation repeated on every row). Returns the path.

        Python's :mod:`csv` module, no pandas; floats are written exactly (``repr``), so
        :meth:`from_csv` gives this result back."""
        path = Path(path)
        meta = {
            "samples": self.samples,
            "ac_pj": self.energy.ac_pj,
            "mac_pj": self.energy.mac_pj,
            "membrane_update_pj": self.energy.membrane_update_pj,
        }
        with open(path, "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            rows = [self._layer_row(layer) for layer in self.layers]
            for row in rows + [self._total_row()]:
                row.update(meta)
                writer.writerow(
                    {
                        key: "" if value is None else _csv_value(value)
                        for key, value in row.items()
                    }
                )
        return path

    @classmethod
    def from_csv(
        cls, path: Union[str, Path], source: Optional[str] = None
    ) -> "SynOpsResult":
        """Reads a file written by :meth:`to_csv` (``source`` names the energies'
        origin, which the file does not hold; the uncounted modules are not kept)."""
        with open(path, newline="") as stream:
            rows = list(csv.DictReader(stream))
        if not rows or set(CSV_COLUMNS) - set(rows[0]):
            raise ValueError(
                f"path {str(path)!r} is not a cost table written by SynOpsResult.to_csv "
                f"(it needs the columns {', '.join(CSV_COLUMNS)})"
            )
        first = rows[0]
        energy = EnergyModel(
            ac_pj=float(first["ac_pj"]),
            mac_pj=float(first["mac_pj"]),
            membrane_update_pj=float(first["membrane_update_pj"]),
            source=source if source is not None else f"read from {path}",
        )
        layers = tuple(
            LayerCost(
                name=row["layer"],
                kind=row["kind"],
                calls=int(row["calls"]),
                **{
                    field.name: float(row[field.name])
                    for field in dataclasses.fields(LayerCost)
                    if field.name not in ("name", "kind", "calls")
                },
            )
            for row in rows
            if row["layer"] != _TOTAL
        )
        return cls(layers=layers, samples=int(first["samples"]), energy=energy)

    def plot(
        self,
        path: Optional[Union[str, Path]] = None,
        ax: Optional[Any] = None,
        log: bool = False,
    ) -> Any:
        """A bar per synaptic layer: effective ACs and MACs per sample, stacked, with
        the dense operations as an outline.

        Parameters:
            path (str or Path): if given, the figure is saved there
            ax (matplotlib Axes): where to draw (default: a new figure)
            log (bool): logarithmic y axis

        Returns the ``Axes``. Imports matplotlib only when called.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(self.layers) + 2), 3.5))
        layers = [layer for layer in self.layers if layer.dense_ops > 0]
        positions = list(range(len(layers)))
        acs = [layer.effective_acs for layer in layers]
        macs = [layer.effective_macs for layer in layers]
        ax.bar(
            positions,
            [layer.dense_ops for layer in layers],
            fill=False,
            edgecolor="0.5",
            linestyle="--",
            label="dense",
        )
        ax.bar(positions, acs, color="tab:blue", label="ACs (spike input)")
        ax.bar(
            positions, macs, bottom=acs, color="tab:orange", label="MACs (dense input)"
        )
        ax.set_xticks(positions)
        ax.set_xticklabels([layer.name for layer in layers], rotation=30, ha="right")
        ax.set_ylabel("operations per sample")
        if log:
            ax.set_yscale("log")
        ax.set_title(
            f"{self.synops:,.0f} SynOps, {_energy_text(self.energy_pj)} per sample",
            fontsize=10,
        )
        ax.legend(fontsize=8)
        ax.figure.tight_layout()
        if path is not None:
            ax.figure.savefig(path)
        return ax


def _energy_text(pj: float) -> str:
    """``pj`` picojoules in pJ, nJ, uJ or mJ."""
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.4g} {unit}"
    return f"{pj:.4g} pJ"


def _csv_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclasses.dataclass
class _Tally:
    """Running totals of one layer over a run (not per sample)."""

    name: str
    kind: str
    calls: int = 0
    input_spikes: int = 0
    inputs: int = 0
    acs: int = 0
    macs: int = 0
    dense: int = 0
    membrane_updates: int = 0
    outputs: int = 0
    output_spikes: int = 0


def _is_binary(x: torch.Tensor) -> bool:
    """Whether every value is -1, 0 or 1 (spikes; NeuroBench's test)."""
    if x.dtype == torch.bool:
        return True
    return bool(((x == 0) | (x == 1) | (x == -1)).all())


def _dense(x: torch.Tensor) -> torch.Tensor:
    return x.to_dense() if x.layout != torch.strided else x


def _first_tensor(value: Any) -> Optional[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value:
        return _first_tensor(value[0])
    return None


def _call_input(args: Tuple, kwargs: Dict[str, Any]) -> torch.Tensor:
    """The first tensor a module was called with (positional or keyword)."""
    x = _first_tensor(args) if args else None
    if x is None:
        x = _first_tensor(list(kwargs.values()))
    if x is None:
        raise TypeError("SynOpCounter: a layer was called without a tensor input")
    return x


def _state_spikes(state: Any) -> Optional[torch.Tensor]:
    """The spike field ``z`` of a (possibly nested) neuron state, if any."""
    if not (isinstance(state, tuple) and hasattr(state, "_fields")):
        return None
    if "z" in state._fields and isinstance(state.z, torch.Tensor):
        return state.z
    for value in state:
        found = _state_spikes(value)
        if found is not None:
            return found
    return None


class SynOpCounter:
    """Counts the cost of every forward pass of ``model`` while attached (see the
    module documentation for what is counted).

    Parameters:
        model (torch.nn.Module): the network; its submodules are found by
            ``named_modules``
        batch_dim (int): the dimension of the model's input that holds the samples:
            1 (default) for this package's ``(T, batch, ...)`` modules, 0 for models
            that take ``(batch, ...)``
        energy (EnergyModel): the energies per operation
        activation_types (tuple of types): modules whose outputs count towards the
            activation sparsity besides this package's neuron modules (NeuroBench's
            default: ``ReLU`` and ``Sigmoid``)

    Use it as a context manager (hooks are attached on entry and removed on exit) or
    with :meth:`attach` / :meth:`detach`; :meth:`result` gives the counts so far.

    Example:
        >>> import torch, norse.torch as norse
        >>> model = norse.SequentialState(torch.nn.Linear(3, 4), norse.LIF())
        >>> with SynOpCounter(model) as counter:
        ...     _ = model(torch.full((5, 2, 3), 0.5))  # T=5, batch 2, dense input
        >>> counter.result().effective_macs  # 5 steps x 3 inputs x 4 synapses
        60.0
    """

    def __init__(
        self,
        model: torch.nn.Module,
        batch_dim: int = 1,
        energy: EnergyModel = HOROWITZ_45NM_FP32,
        activation_types: Tuple[type, ...] = (torch.nn.ReLU, torch.nn.Sigmoid),
    ):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(
                f"model must be a torch.nn.Module, got {type(model).__name__}"
            )
        if isinstance(batch_dim, bool) or not isinstance(batch_dim, int):
            raise TypeError(f"batch_dim must be an int, got {type(batch_dim).__name__}")
        if not isinstance(energy, EnergyModel):
            raise TypeError(
                f"energy must be an EnergyModel, got {type(energy).__name__}"
            )
        if not isinstance(activation_types, tuple) or not all(
            isinstance(kind, type) for kind in activation_types
        ):
            raise TypeError(
                "activation_types must be a tuple of module classes, got "
                f"{activation_types!r}"
            )
        self.model = model
        self.batch_dim = batch_dim
        self.energy = energy
        self.activation_types = activation_types
        self._handles: List[Any] = []
        self._probing = False
        self._fanouts: Dict[Tuple, torch.Tensor] = {}
        self.reset()

    # -- attaching ---------------------------------------------------------------

    def _targets(self) -> Iterator[Tuple[str, torch.nn.Module, str]]:
        """``(name, module, role)`` for every module to observe; modules inside a
        neuron module belong to it."""
        inside: List[str] = []
        for name, module in self.model.named_modules():
            if any(prefix == "" or name.startswith(prefix + ".") for prefix in inside):
                continue
            label = name or "(root)"
            if isinstance(module, NeuronModule):
                inside.append(name)
                yield label, module, "neuron"
            elif isinstance(module, torch.nn.Linear):
                yield label, module, "linear"
            elif isinstance(module, torch.nn.modules.conv._ConvNd) and not getattr(
                module, "transposed", False
            ):
                yield label, module, "conv"
            elif isinstance(module, self.activation_types):
                yield label, module, "activation"
            elif any(p.dim() >= 2 for p in module.parameters(recurse=False)):
                yield label, module, "unknown"

    def attach(self) -> "SynOpCounter":
        """Registers the hooks (once; attaching twice is an error). Returns self."""
        if self._handles:
            raise RuntimeError("this SynOpCounter is already attached")
        root = self.model.register_forward_pre_hook(
            self._count_samples, with_kwargs=True
        )
        self._handles.append(root)
        for name, module, role in self._targets():
            hook = self._make_hook(name, module, role)
            self._handles.append(module.register_forward_hook(hook, with_kwargs=True))
        return self

    def detach(self) -> None:
        """Removes the hooks (the counts are kept)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> "SynOpCounter":
        return self.attach()

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    def reset(self) -> None:
        """Forgets everything counted so far."""
        self._tallies: Dict[str, _Tally] = {}
        self._uncounted: List[str] = []
        self.samples = 0

    def result(self, samples: Optional[int] = None) -> SynOpsResult:
        """The counts so far, per sample.

        Parameters:
            samples (int): divide by this instead of the samples seen in the model's
                input

        Raises:
            ValueError: when no sample was seen (the model has not run) and none is
                given.
        """
        return _result(self, samples)

    # -- counting ----------------------------------------------------------------

    def _count_samples(
        self, module: torch.nn.Module, args: Tuple, kwargs: Dict[str, Any]
    ) -> None:
        if self._probing:
            return
        x = _call_input(args, kwargs)
        if not -x.dim() <= self.batch_dim < x.dim():
            raise ValueError(
                f"batch_dim={self.batch_dim} is out of range for the model's input of "
                f"shape {tuple(x.shape)}; use batch_dim=0 for a model that takes "
                "(batch, ...)"
            )
        self.samples += int(x.shape[self.batch_dim])

    def _tally(self, name: str, module: torch.nn.Module) -> _Tally:
        tally = self._tallies.get(name)
        if tally is None:
            tally = self._tallies[name] = _Tally(name, type(module).__name__)
        return tally

    def _make_hook(
        self, name: str, module: torch.nn.Module, role: str
    ) -> Callable[..., None]:
        """The forward hook of ``module`` (``role``: ``"linear"``, ``"conv"``,
        ``"neuron"``, ``"activation"`` or ``"unknown"``)."""

        def hook(module, args, kwargs, output) -> None:
            if self._probing:
                return
            with torch.no_grad():
                if role == "unknown":
                    if name not in self._uncounted:
                        self._uncounted.append(name)
                    return
                tally = self._tally(name, module)
                tally.calls += 1
                if role == "linear":
                    x = _dense(_call_input(args, kwargs))
                    self._synapses(tally, x, module.weight, None)
                elif role == "conv":
                    self._conv(tally, module, _dense(_call_input(args, kwargs)))
                elif role == "activation":
                    self._outputs(tally, name, output, membrane=False)
                else:
                    self._neuron(tally, name, module, args, kwargs, output)

        return hook

    def _add_ops(
        self, tally: _Tally, x: torch.Tensor, effective: int, dense: int
    ) -> None:
        tally.input_spikes += int(torch.count_nonzero(x))
        tally.inputs += x.numel()
        if _is_binary(x):
            tally.acs += effective
        else:
            tally.macs += effective
        tally.dense += dense

    def _synapses(
        self,
        tally: _Tally,
        x: torch.Tensor,
        weight: torch.Tensor,
        present: Optional[torch.Tensor],
    ) -> None:
        """Input ``x`` ``(..., in)`` through ``weight`` ``(out, in)``; ``present``
        (same shape) marks the synapses that exist (``None``: all of them)."""
        weight = weight.detach()
        x = x.reshape(-1, weight.shape[1])
        counts = (x != 0).sum(0)  # non-zero entries per input feature
        fanout = (weight != 0).sum(0).to(counts.device)
        effective = int((counts * fanout).sum())
        # every synapse is used once per input vector
        synapses = weight.numel() if present is None else int((present != 0).sum())
        self._add_ops(tally, x, effective, x.shape[0] * synapses)

    def _fanout(
        self, module: torch.nn.Module, shape: Tuple[int, ...], all_weights: bool
    ) -> torch.Tensor:
        """For every input entry of one slice of shape ``shape``: how many (output,
        weight) pairs it reaches with a non-zero weight (all weights when
        ``all_weights``), as int64. The gradient of the sum of the layer's outputs with
        respect to an input of ones, with 0/1 weights and no bias, in float64."""
        weight = module.weight
        key = (
            id(module),
            shape,
            all_weights,
            None if all_weights else (weight._version, weight.data_ptr()),
        )
        found = self._fanouts.get(key)
        if found is not None:
            return found
        with torch.inference_mode(False), torch.enable_grad():
            binary = (
                torch.ones_like(weight, dtype=torch.float64)
                if all_weights
                else (weight.detach() != 0).to(torch.float64)
            )
            replaced: Dict[str, Any] = {"weight": binary}
            if getattr(module, "bias", None) is not None:
                replaced["bias"] = torch.zeros_like(module.bias, dtype=torch.float64)
            probe = torch.ones(
                shape, dtype=torch.float64, device=weight.device, requires_grad=True
            )
            self._probing = True
            try:
                out = torch.func.functional_call(module, replaced, (probe,))
            finally:
                self._probing = False
            (grad,) = torch.autograd.grad(out.sum(), probe)
        found = self._fanouts[key] = grad.round().to(torch.int64)
        return found

    def _conv(self, tally: _Tally, module: torch.nn.Module, x: torch.Tensor) -> None:
        # A batched input (N, C, *spatial) (LConv2d: (T, N, C, H, W)) is the same layer
        # for every entry of its first dimension: count one slice's fan-out.
        batched = x.dim() == len(module.kernel_size) + 2
        shape = (1, *x.shape[1:]) if batched else tuple(x.shape)
        nonzero = x != 0
        counts = nonzero.sum(0, keepdim=True) if batched else nonzero.long()
        effective = int((counts * self._fanout(module, shape, False)).sum())
        slices = x.shape[0] if batched else 1
        dense = slices * int(self._fanout(module, shape, True).sum())
        self._add_ops(tally, x, effective, dense)

    def _outputs(
        self, tally: _Tally, name: str, output: Any, membrane: bool
    ) -> Optional[torch.Tensor]:
        out = _first_tensor(output)
        if out is None:
            raise TypeError(
                f"SynOpCounter: layer {name!r} ({tally.kind}) returned "
                f"{type(output).__name__}, not a tensor or (tensor, state)"
            )
        out = _dense(out)
        tally.outputs += out.numel()
        tally.output_spikes += int(torch.count_nonzero(out))
        if membrane:  # one update per neuron and time step
            tally.membrane_updates += out.numel()
        return out

    def _neuron(
        self,
        tally: _Tally,
        name: str,
        module: torch.nn.Module,
        args: Tuple,
        kwargs: Dict[str, Any],
        output: Any,
    ) -> None:
        out = self._outputs(tally, name, output, membrane=True)
        input_weights = getattr(module, "input_weights", None)
        if not isinstance(input_weights, torch.Tensor):
            return
        x = _dense(_call_input(args, kwargs))
        self._synapses(tally, x, input_weights, None)
        recurrent = getattr(module, "recurrent_weights", None)
        if not isinstance(recurrent, torch.Tensor):
            return
        state = args[1] if len(args) > 1 else kwargs.get("state")
        previous = _state_spikes(state)
        time_first = isinstance(module, SNNRecurrent)
        first = out[0] if time_first else out
        if previous is None or previous.dim() == 0:
            previous = torch.zeros_like(first)
        # The spikes fed back: the given state's, then (time modules) every output but
        # the last.
        fed_back = (
            torch.cat([previous.unsqueeze(0), out[:-1]]) if time_first else previous
        )
        weights = module._effective_recurrent_weights()
        mask = getattr(module, "autapse_mask", None)
        self._synapses(tally, fed_back, weights, mask)


def count_synops(
    model: torch.nn.Module,
    *inputs: Any,
    batch_dim: int = 1,
    energy: EnergyModel = HOROWITZ_45NM_FP32,
    **kwargs: Any,
) -> SynOpsResult:
    """Runs ``model(*inputs, **kwargs)`` once without gradients and returns its cost
    per sample (see :class:`SynOpCounter`; the model's mode, train or eval, is kept).

    Parameters:
        model (torch.nn.Module): the network
        inputs: its positional inputs, e.g. spikes ``(T, batch, ...)``
        batch_dim (int): the input dimension that holds the samples (1 for
            ``(T, batch, ...)``, 0 for ``(batch, ...)``)
        energy (EnergyModel): energies per operation
        kwargs: keyword arguments of the model

    Returns:
        SynOpsResult: the counts per layer and in total, per sample.
    """
    counter = SynOpCounter(model, batch_dim=batch_dim, energy=energy)
    with counter, torch.no_grad():
        model(*inputs, **kwargs)
    return counter.result()


def _result(counter: SynOpCounter, samples: Optional[int]) -> SynOpsResult:
    if samples is None:
        samples = counter.samples
    if isinstance(samples, bool) or not isinstance(samples, int) or samples <= 0:
        raise ValueError(
            f"samples must be a positive int (the model has not run yet?), got {samples!r}"
        )
    energy = counter.energy
    layers = []
    for tally in counter._tallies.values():
        joules = energy.energy_pj(tally.acs, tally.macs, tally.membrane_updates)
        layers.append(
            LayerCost(
                name=tally.name,
                kind=tally.kind,
                calls=tally.calls,
                input_spikes=tally.input_spikes / samples,
                inputs=tally.inputs / samples,
                effective_acs=tally.acs / samples,
                effective_macs=tally.macs / samples,
                dense_ops=tally.dense / samples,
                membrane_updates=tally.membrane_updates / samples,
                outputs=tally.outputs / samples,
                output_spikes=tally.output_spikes / samples,
                energy_pj=joules / samples,
            )
        )
    return SynOpsResult(
        layers=tuple(layers),
        samples=samples,
        energy=energy,
        uncounted=tuple(counter._uncounted),
    )


_NEUROBENCH_CLASS: Optional[type] = None


def _neurobench_class() -> type:
    """The NeuroBench model wrapper for this package's modules (built on first use:
    NeuroBench is an optional dependency)."""
    global _NEUROBENCH_CLASS
    if _NEUROBENCH_CLASS is not None:
        return _NEUROBENCH_CLASS
    try:
        from neurobench.hooks.layer import LayerHook
        from neurobench.hooks.neuron import NeuronHook
        from neurobench.models import TorchModel
    except ImportError as error:
        raise ImportError(
            "neurobench_model needs NeuroBench: pip install neurobench==2.3.0"
        ) from error

    class SpikeHook(NeuronHook):
        """NeuroBench's activation hook, keeping the spikes of ``(spikes, state)``."""

        def hook_fn(self, layer, input, output):
            self.activation_outputs.append(_first_tensor(output))

    class NorseTorchModel(TorchModel):
        """NeuroBench's ``TorchModel`` for a network of this package: the data
        ``(batch, T, ...)`` enter as ``(T, batch, ...)``, the output ``(T, batch, ...)``
        (the first element of ``(output, state)``) leaves as ``(batch, T, ...)``, and
        the neuron modules are NeuroBench activation layers."""

        def __init__(self, net: torch.nn.Module, time_first: bool = True):
            super().__init__(net)
            self.time_first = time_first

        def __call__(self, batch: torch.Tensor) -> torch.Tensor:
            x = batch.transpose(0, 1) if self.time_first else batch
            out = _first_tensor(self.net(x))
            if self.time_first and out is not None and out.dim() >= 2:
                return out.transpose(0, 1)
            return out

        def activation_layers(self) -> List[Dict[str, Any]]:
            layers = super().activation_layers()
            known = {id(entry["layer"]) for entry in layers}
            counter = SynOpCounter(self.net)
            for name, module, role in counter._targets():
                if role == "neuron" and id(module) not in known:
                    layers.append({"layer_name": name, "layer": module})
            return layers

        def register_hooks(self) -> None:
            for entry in self.activation_layers():
                hook = SpikeHook(entry["layer"], entry["layer_name"])
                self.activation_hooks.append(hook)
            for layer in self.connection_layers():
                self.connection_hooks.append(LayerHook(layer))

    _NEUROBENCH_CLASS = NorseTorchModel
    return NorseTorchModel


def neurobench_model(net: torch.nn.Module, time_first: bool = True) -> Any:
    """Wraps ``net`` for NeuroBench 2.3's ``Benchmark``: a ``neurobench.models.TorchModel``
    that

    * takes NeuroBench's data ``(batch, T, ...)`` and gives ``net`` ``(T, batch, ...)``
      (with ``time_first``; otherwise the data go in unchanged),
    * returns the first element of ``net``'s ``(output, state)``, as ``(batch, T, ...)``
      with ``time_first``,
    * registers this package's neuron modules as NeuroBench activation layers, so that
      its ``ActivationSparsity`` sees their spikes (NeuroBench's own hooks know
      ``ReLU``, ``Sigmoid`` and snnTorch neurons only).

    NeuroBench's ``SynapticOperations`` needs nothing of this: it hooks ``Linear`` and
    ``Conv`` layers wherever they are.

    Parameters:
        net (torch.nn.Module): the network
        time_first (bool): whether ``net`` takes ``(T, batch, ...)`` (default)

    Raises:
        ImportError: without NeuroBench installed.
    """
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    return _neurobench_class()(net, time_first=time_first)
