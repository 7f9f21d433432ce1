"""Plots of spikes, neuron states and activity in layers (matplotlib).

Every function draws on the current matplotlib figure (or on the ``axes`` you give) and
returns the axes it drew on, so you can style, save or show the result yourself:

>>> import torch
>>> from norse.torch.utils.plot import plot_raster
>>> spikes = (torch.rand(100, 20) < 0.05).float()  # (time, neurons)
>>> ax_raster, ax_rate = plot_raster(spikes, dt=0.001)

Tensors may live on any device and may require gradients; they are detached and moved
to the CPU first. Matplotlib is imported when a function is first called, so importing
this module (and ``norse.torch``) does not need matplotlib; install it with
``pip install norse[plot]``.
"""

from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from norse.torch.utils._optional import import_optional

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    import matplotlib.axes

    from norse.torch.functional.izhikevich import IzhikevichSpikingBehavior

__all__ = [
    "plot_heatmap_2d",
    "plot_heatmap_3d",
    "plot_histogram_2d",
    "plot_izhikevich",
    "plot_neuron_states",
    "plot_raster",
    "plot_scatter_3d",
    "plot_spikes_2d",
]


def _pyplot():
    return import_optional(
        "matplotlib.pyplot",
        "norse.torch.utils.plot needs matplotlib: pip install matplotlib "
        "(or pip install norse[plot])",
    )


def _to_cpu(data: Any, name: str, keep_names: bool = False) -> torch.Tensor:
    """A detached CPU float tensor (names of a named tensor dropped unless kept)."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(data).__name__}")
    data = data.detach().cpu()
    if not data.is_floating_point():
        data = data.float()
    return data if keep_names else _plain(data)


def _check_ndim(data: torch.Tensor, name: str, allowed: Sequence[int], meaning: str):
    if data.dim() not in allowed:
        raise ValueError(
            f"{name} must have {' or '.join(str(n) for n in allowed)} dimensions "
            f"({meaning}), got shape {tuple(data.shape)}"
        )


def _align(data: torch.Tensor, target: str, dims: Optional[str]) -> torch.Tensor:
    """Reorders ``data`` from the dimension order ``dims`` (letters, e.g. ``"XLY"``) to
    ``target``; without ``dims`` the data is taken to be in ``target`` order already.

    Norse 1.1 used named tensors for this; recent PyTorch versions removed them, so
    the order is passed as a string (a named tensor of an older PyTorch still works).
    """
    names = getattr(data, "names", None)
    if dims is None and names is not None and any(n is not None for n in names):
        dims = "".join(names)
        data = data
    if dims is None:
        return data
    if sorted(dims) != sorted(target) or len(dims) != data.dim():
        raise ValueError(
            f"dims must name the {data.dim()} dimensions of the data with the letters "
            f"{target!r} in some order, got dims={dims!r}"
        )
    return data.permute(*(dims.index(letter) for letter in target))


def _plain(data: torch.Tensor) -> torch.Tensor:
    names = getattr(data, "names", None)
    return data.rename(None) if names is not None else data


def plot_heatmap_2d(
    data: torch.Tensor,
    axes: Optional["matplotlib.axes.Axes"] = None,
    show_colorbar: bool = False,
    **kwargs: Any,
) -> "matplotlib.axes.Axes":
    """Draws two-dimensional data, ``(time, neuron)``, as a heat map with time along
    the x axis.

    Example:
        >>> import torch
        >>> from norse.torch.utils.plot import plot_heatmap_2d
        >>> ax = plot_heatmap_2d(torch.randn(28, 28))

    Arguments:
        data (torch.Tensor): shape ``(time, neurons)``
        axes (matplotlib.axes.Axes): where to draw; defaults to the current axes
        show_colorbar (bool): add a colour bar
        kwargs: passed to ``matplotlib.axes.Axes.imshow`` (defaults:
            ``aspect="auto"``, ``interpolation="none"``, ``origin="lower"``)

    Returns:
        The axes drawn on.
    """
    plt = _pyplot()
    data = _to_cpu(data, "data")
    _check_ndim(data, "data", (2,), "time, neuron")
    ax = axes if axes is not None else plt.gca()
    kwargs.setdefault("aspect", "auto")
    kwargs.setdefault("interpolation", "none")
    kwargs.setdefault("origin", "lower")
    image = ax.imshow(data.T.numpy(), **kwargs)
    if show_colorbar:
        ax.figure.colorbar(image, ax=ax)
    return ax


def plot_spikes_2d(
    spikes: torch.Tensor, axes: Optional["matplotlib.axes.Axes"] = None, **kwargs: Any
) -> "matplotlib.axes.Axes":
    """Draws spikes ``(time, neuron)`` in black on white: ``plot_heatmap_2d`` with
    the ``"binary"`` colour map and at most about ten neuron ticks.

    Example:
        >>> import torch
        >>> from norse.torch import LIF
        >>> from norse.torch.utils.plot import plot_spikes_2d
        >>> spikes, _ = LIF()(torch.randn(200, 10) + 1)
        >>> ax = plot_spikes_2d(spikes)
    """
    plt = _pyplot()
    spikes = _to_cpu(spikes, "spikes")
    _check_ndim(spikes, "spikes", (2,), "time, neuron")
    ax = axes if axes is not None else plt.gca()
    kwargs.setdefault("cmap", "binary")
    step = max(1, spikes.shape[-1] // 10)
    ax.set_yticks(range(0, spikes.shape[-1], step))
    return plot_heatmap_2d(spikes, axes=ax, **kwargs)


def plot_raster(
    spikes: torch.Tensor,
    axes: Optional[
        Union["matplotlib.axes.Axes", Tuple["matplotlib.axes.Axes", ...]]
    ] = None,
    dt: Optional[float] = None,
    max_neurons: Optional[int] = None,
    sort_by_rate: bool = False,
    title: str = "",
    **kwargs: Any,
) -> Tuple["matplotlib.axes.Axes", Optional["matplotlib.axes.Axes"]]:
    """Draws a spike raster (one dot per spike) next to a bar chart of each neuron's
    firing rate.

    Arguments:
        spikes (torch.Tensor): shape ``(time, neurons...)``; trailing dimensions are
            flattened into one neuron axis (e.g. ``(T, 2, 5)`` shows 10 neurons)
        axes: ``None`` (a new figure with two panels), one Axes (the raster only, no
            rate panel) or a pair ``(raster_axes, rate_axes)``
        dt (float): time step in seconds; when given, time is shown in seconds and rates
            in Hz, otherwise in steps and spikes per step
        max_neurons (int): show at most this many neurons (the most active ones when
            ``sort_by_rate`` is set, otherwise the first ones)
        sort_by_rate (bool): order neurons by firing rate, the most active at the bottom
        title (str): figure title
        kwargs: passed to ``matplotlib.axes.Axes.scatter`` for the spikes
            (defaults: ``s=2``, ``marker="|"``, ``color="black"``)

    Returns:
        ``(raster_axes, rate_axes)``; ``rate_axes`` is ``None`` when one Axes was given.

    Example:
        >>> import torch
        >>> from norse.torch.utils.plot import plot_raster
        >>> spikes = (torch.rand(50, 8) < torch.linspace(0, 0.5, 8)).float()
        >>> ax, ax_rate = plot_raster(spikes, dt=0.001)
    """
    plt = _pyplot()
    spikes = _to_cpu(spikes, "spikes")
    if spikes.dim() < 2:
        raise ValueError(
            f"spikes must have shape (time, neurons...), got shape {tuple(spikes.shape)}"
        )
    if dt is not None and not dt > 0:
        raise ValueError(f"dt must be a positive number of seconds, got {dt}")
    if max_neurons is not None and max_neurons < 1:
        raise ValueError(f"max_neurons must be at least 1, got {max_neurons}")
    spikes = spikes.reshape(spikes.shape[0], -1)
    steps = spikes.shape[0]
    rates = spikes.mean(0) / (dt if dt is not None else 1.0)
    order = (
        torch.argsort(rates, descending=True, stable=True)
        if sort_by_rate
        else torch.arange(spikes.shape[1])
    )
    if max_neurons is not None:
        order = order[:max_neurons]
    shown = spikes[:, order]

    if axes is None:
        figure, (ax, ax_rate) = plt.subplots(
            1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [4, 1]}, sharey=True
        )
    elif isinstance(axes, (tuple, list, np.ndarray)):
        if len(axes) != 2:
            raise ValueError(
                f"axes must be one Axes or a pair (raster, rate), got {len(axes)} axes"
            )
        ax, ax_rate = axes
        figure = ax.figure
    else:
        import matplotlib.axes

        if not isinstance(axes, matplotlib.axes.Axes):
            raise TypeError(
                "axes must be None, one matplotlib Axes or a pair (raster, rate), got "
                f"{type(axes).__name__}"
            )
        ax, ax_rate, figure = axes, None, axes.figure

    scale = dt if dt is not None else 1.0
    times, neurons = torch.nonzero(shown, as_tuple=True)
    kwargs.setdefault("s", 2)
    kwargs.setdefault("marker", "|")
    kwargs.setdefault("color", "black")
    ax.scatter(times.numpy() * scale, neurons.numpy(), **kwargs)
    ax.set_xlim(-0.5 * scale, (steps - 0.5) * scale)
    ax.set_ylim(-0.5, shown.shape[1] - 0.5)
    ax.set_xlabel("time (s)" if dt is not None else "time step")
    ax.set_ylabel("neuron (most active first)" if sort_by_rate else "neuron")
    if ax_rate is not None:
        ax_rate.barh(range(shown.shape[1]), rates[order].numpy(), color="gray")
        ax_rate.set_xlabel("rate (Hz)" if dt is not None else "spikes / step")
    if title:
        figure.suptitle(title)
    return ax, ax_rate


def plot_histogram_2d(
    spikes: torch.Tensor, axes: Optional["matplotlib.axes.Axes"] = None, **kwargs: Any
) -> "matplotlib.axes.Axes":
    """Draws a histogram of the values in ``spikes`` (e.g. voltages); with a 2D tensor
    every column is a data set of its own, as in ``matplotlib.axes.Axes.hist``.

    Example:
        >>> import torch
        >>> from norse.torch import LIF
        >>> from norse.torch.utils.plot import plot_histogram_2d
        >>> spikes, state = LIF()(torch.ones(10, 10) + torch.randn(10, 10))
        >>> ax = plot_histogram_2d(state.v)

    Arguments:
        spikes (torch.Tensor): data of one or two dimensions
        axes (matplotlib.axes.Axes): where to draw; defaults to the current axes
        kwargs: passed to ``matplotlib.axes.Axes.hist``
    """
    plt = _pyplot()
    data = _to_cpu(spikes, "spikes")
    _check_ndim(data, "spikes", (1, 2), "values, or values x data sets")
    ax = axes if axes is not None else plt.gca()
    ax.hist(data.numpy(), **kwargs)
    return ax


def plot_neuron_states(
    states: Any,
    *variables: str,
    label: bool = True,
    axes: Optional["matplotlib.axes.Axes"] = None,
    **kwargs: Any,
) -> "matplotlib.axes.Axes":
    """Draws state variables over time as lines.

    Arguments:
        states: a state NamedTuple whose fields have time first, e.g. the states
            returned by a time module with ``record_states=True``
            (``LIF(record_states=True)``), or a list of states, one per step
        *variables (str): the fields to draw, e.g. ``"v"``, ``"i"``
        label (bool): add a legend with the field names
        axes (matplotlib.axes.Axes): where to draw; defaults to the current axes
        kwargs: passed to ``matplotlib.axes.Axes.plot``

    Example:
        >>> import torch
        >>> from norse.torch import LIF
        >>> from norse.torch.utils.plot import plot_neuron_states
        >>> data = torch.ones(10, 3) * torch.tensor([0.0, 0.1, 0.3])
        >>> _, states = LIF(record_states=True)(data)
        >>> ax = plot_neuron_states(states, "v", "i")
    """
    plt = _pyplot()
    if not variables:
        raise ValueError(
            "plot_neuron_states needs at least one state variable to draw, e.g. "
            "plot_neuron_states(states, 'v')"
        )
    ax = axes if axes is not None else plt.gca()
    for variable in variables:
        if isinstance(states, (list, tuple)) and not hasattr(states, "_fields"):
            values = torch.stack([_field(state, variable) for state in states])
        else:
            values = _field(states, variable)
        values = _to_cpu(values, f"states.{variable}")
        values = values.reshape(values.shape[0], -1) if values.dim() > 1 else values
        if label:
            ax.plot(values.numpy(), label=variable, **kwargs)
        else:
            ax.plot(values.numpy(), **kwargs)
    if label:
        ax.legend()
    return ax


def _field(state: Any, variable: str) -> torch.Tensor:
    if not hasattr(state, variable):
        fields = getattr(state, "_fields", None)
        raise ValueError(
            f"the state has no variable {variable!r}"
            + (f"; it has {fields}" if fields else "")
        )
    return getattr(state, variable)


def plot_heatmap_3d(
    spikes: torch.Tensor,
    show_colorbar: bool = False,
    dims: Optional[str] = None,
    **kwargs: Any,
) -> "matplotlib.axes.Axes":
    """Draws the activity of several 2D layers as points in 3D, one layer behind the
    other.

    Arguments:
        spikes (torch.Tensor): shape ``(L, X, Y)`` (layer, then the two spatial
            dimensions), values in ``[0, 1]``
        show_colorbar (bool): add a colour bar
        dims (str): the order of the dimensions of ``spikes`` when it is not
            ``"LXY"``, e.g. ``"XLY"`` (replaces the named tensors of Norse 1.1)
        kwargs: passed to ``mpl_toolkits.mplot3d.axes3d.Axes3D.scatter``

    Returns:
        The 3D axes drawn on (added to the current figure).

    Example:
        >>> import torch
        >>> from norse.torch.utils.plot import plot_heatmap_3d
        >>> ax = plot_heatmap_3d(torch.rand(4, 28, 28))
    """
    plt = _pyplot()
    data = _to_cpu(spikes, "spikes", keep_names=True)
    _check_ndim(data, "spikes", (3,), "layer, x, y")
    data = _align(data, "LXY", dims)
    layers = data.shape[0]
    layer, x, y = torch.meshgrid(*(torch.arange(n) for n in data.shape), indexing="ij")
    ax = plt.gcf().add_subplot(1, 1, 1, projection="3d")
    kwargs.setdefault("c", data.flatten().numpy())
    ax.invert_yaxis()
    ax.invert_zaxis()
    ax.set_xlim(0, max(layers - 1, 1))
    ax.set_ylim(0, data.shape[2])
    ax.set_zlim(0, data.shape[1])
    ax.set_xticks(range(layers))
    ax.set_xticklabels([str(n + 1) for n in range(layers)])
    points = ax.scatter(
        layer.flatten().numpy(), y.flatten().numpy(), x.flatten().numpy(), **kwargs
    )
    if show_colorbar:
        ax.figure.colorbar(points, ax=ax)
    return ax


def plot_scatter_3d(
    spikes: torch.Tensor,
    axes: Optional[List["matplotlib.axes.Axes"]] = None,
    show_colorbar: bool = True,
    dims: Optional[str] = None,
    **kwargs: Any,
) -> List["matplotlib.axes.Axes"]:
    """Draws spikes of 2D layers over time in 3D (time, x, y), one panel per layer.

    Arguments:
        spikes (torch.Tensor): shape ``(T, L, X, Y)`` or ``(L, X, Y)`` (a single time
            step)
        axes (List[Axes]): one 3D axes per layer; by default a row of panels is added
            to the current figure
        show_colorbar (bool): add a colour bar
        dims (str): the order of the dimensions of ``spikes`` when it is not
            ``"TLXY"`` (or ``"LXY"``), e.g. ``"LTXY"`` (replaces the named tensors of
            Norse 1.1)
        kwargs: passed to ``mpl_toolkits.mplot3d.axes3d.Axes3D.scatter``

    Returns:
        The list of axes, one per layer.

    Example:
        >>> import torch
        >>> from norse.torch.utils.plot import plot_scatter_3d
        >>> spikes = (torch.rand(100, 3, 10, 10) < 0.02).float()  # (T, L, X, Y)
        >>> axes = plot_scatter_3d(spikes)
    """
    plt = _pyplot()
    data = _to_cpu(spikes, "spikes", keep_names=True)
    _check_ndim(data, "spikes", (3, 4), "time, layer, x, y or layer, x, y")
    if data.dim() == 4:
        data = _align(data, "TLXY", dims)
    else:
        data = _align(data, "LXY", dims)[None]
    steps, layers = data.shape[0], data.shape[1]
    if axes is None:
        axes = [
            plt.gcf().add_subplot(1, layers, n + 1, projection="3d")
            for n in range(layers)
        ]
    else:
        axes = list(axes)
        if len(axes) != layers:
            raise ValueError(
                f"axes must hold one axes per layer ({layers}), got {len(axes)}"
            )
    points = None
    for n, ax in enumerate(axes):
        t, x, y = torch.nonzero(data[:, n], as_tuple=True)
        values = data[:, n][t, x, y]
        ax.invert_yaxis()
        ax.invert_zaxis()
        ax.set_xlim(0, steps)
        points = ax.scatter(t.numpy(), y.numpy(), x.numpy(), c=values.numpy(), **kwargs)
    if show_colorbar and points is not None:
        plt.gcf().colorbar(points, ax=axes, fraction=0.04 / len(axes))
    return axes


def plot_izhikevich(
    behavior: "IzhikevichSpikingBehavior",
    current: float = 1,
    time_print: int = 250,
    time_current: int = 20,
    timestep_print: float = 0.1,
) -> "matplotlib.axes.Axes":
    """Simulates one Izhikevich neuron with a step current and draws its membrane
    voltage and the current.

    The simulation runs ``time_print`` ms of model time in steps of
    ``timestep_print`` ms; the input is 0 until ``time_current`` ms and ``current``
    afterwards. (The model's ``tau_inv`` converts seconds to model milliseconds; the
    step is chosen so that one step is ``timestep_print`` ms whatever ``tau_inv`` is.)

    Arguments:
        behavior (IzhikevichSpikingBehavior): parameters and initial state, e.g.
            ``norse.torch.functional.izhikevich.tonic_spiking``
        current (float): the step current
        time_print (float): simulated time (ms)
        time_current (float): time at which the current switches on (ms)
        timestep_print (float): simulation step (ms)

    Returns:
        The axes drawn on (in a new figure).

    Example:
        >>> from norse.torch.functional.izhikevich import tonic_spiking
        >>> from norse.torch.utils.plot import plot_izhikevich
        >>> ax = plot_izhikevich(tonic_spiking, current=10)
    """
    from norse.torch.functional.izhikevich import (
        IzhikevichParameters,
        IzhikevichState,
        izhikevich_feed_forward_step,
    )

    plt = _pyplot()
    if not (
        isinstance(behavior, tuple)
        and len(behavior) == 2
        and isinstance(behavior[0], IzhikevichParameters)
        and isinstance(behavior[1], IzhikevichState)
    ):
        raise TypeError(
            "behavior must be an IzhikevichSpikingBehavior (parameters, initial state), "
            f"e.g. norse.torch.functional.izhikevich.tonic_spiking, got {behavior!r}"
        )
    numbers = dict(
        current=current,
        time_print=time_print,
        time_current=time_current,
        timestep_print=timestep_print,
    )
    for name, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, got {value!r}")
    if not (0 < timestep_print < float("inf") and 0 < time_print < float("inf")):
        raise ValueError(
            "time_print and timestep_print must be positive and finite (ms), got "
            f"time_print={time_print}, timestep_print={timestep_print}"
        )
    p, state = behavior
    # one step advances the model by tau_inv * dt ms: pick dt so that this is
    # timestep_print ms
    dt = timestep_print / float(p.tau_inv)
    steps = int(round(time_print / timestep_print))
    times = np.arange(steps) * timestep_print
    inputs = torch.where(
        torch.as_tensor(times) > time_current,
        torch.tensor(float(current)),
        torch.tensor(0.0),
    ).float()
    voltages = []
    with torch.no_grad():
        for value in inputs:
            voltages.append(float(state.v))
            _, state = izhikevich_feed_forward_step(value.reshape(1), state, p, dt=dt)
    figure = plt.figure()
    ax = figure.add_subplot(111)
    ax.set_xlabel("Time (ms)")
    ax.set_ylabel("Membrane potential (mV)")
    ax.plot(times, voltages, label="v")
    ax.plot(times, inputs.numpy(), label="input current")
    ax.legend()
    return ax
