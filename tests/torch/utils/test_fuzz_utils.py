"""Fuzzing of the utilities (hypothesis): random shapes, dtypes, NaN/Inf, empty tensors
and wrong types fed to

* the plots of :mod:`norse.torch.utils.plot` (drawn on the ``Agg`` canvas, so that
  errors at drawing time count too);
* the NIR export and import: random small chains of layers, with matching or
  mismatched sizes and sample data, and random NIR nodes and graphs (also with broken
  parameters, as a file from another tool may hold them); a chain that exports must
  import again, and the imported network must compute what the original computes;
* the functional encoders with all their arguments (``tests/torch/test_fuzz.py``
  covers the input and the first argument).

Accepted outcomes: a result, or a ``ValueError``/``TypeError`` with a message; with
valid arguments only a result. The number of inputs tried is printed at the end of the
run (the ``fuzz`` fixture of ``tests/conftest.py`` counts them).
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import norse.torch as norse  # noqa: E402
from norse.torch.functional.izhikevich import tonic_spiking  # noqa: E402
from norse.torch.utils import plot  # noqa: E402

nir = pytest.importorskip("nir")

FUZZ = settings(settings.get_profile("fuzz"), max_examples=30)  # tests/conftest.py
NOT_NUMBERS = (None, "abc", [1.0, 2.0], {"x": 1}, True, object())
JUNK = (*NOT_NUMBERS, 2.5, np.ones((2, 3)))  # where a tensor belongs
BAD_NUMBERS = st.sampled_from(
    (0, -1, -0.5, float("nan"), float("inf"), float("-inf"), *NOT_NUMBERS)
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _new_figure():
    """A small, empty current figure for the next example."""
    plt.close("all")
    plt.figure(figsize=(2, 2), dpi=30)


def _drawn(result):
    """Draws the figures of ``result`` (axes or tuples/lists of axes) on the canvas."""
    axes = result if isinstance(result, (tuple, list)) else [result]
    for ax in axes:
        if ax is not None:
            ax.figure.canvas.draw()
    return result


# --------------------------------------------------------------------------------------
# Plots


def _spike_tensors(fuzz, min_dims, max_dims):
    """Mostly spike-like tensors (0/1 floats), sometimes any tensor or no tensor."""
    spikes = fuzz.tensors(min_dims, max_dims, sizes=(0, 5)).map(
        lambda t: (
            (t.real if t.is_complex() else t).float().gt(0.5).float()
            if t.dtype != torch.bool
            else t
        )
    )
    return st.one_of(spikes, spikes, fuzz.tensors(0, 5), st.sampled_from(JUNK))


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize(
    "name", ["plot_heatmap_2d", "plot_spikes_2d", "plot_histogram_2d"]
)
def test_two_dimensional_plots(fuzz, data, name):
    _new_figure()
    spikes = data.draw(_spike_tensors(fuzz, 1, 3))
    kwargs = {}
    if name == "plot_heatmap_2d":
        kwargs["show_colorbar"] = data.draw(st.booleans())
    result = fuzz.call("plots", lambda: _drawn(getattr(plot, name)(spikes, **kwargs)))
    if result is not None:
        assert result.figure is plt.gcf()


@FUZZ
@given(data=st.data())
def test_plot_raster(fuzz, data):
    _new_figure()
    args, broken = fuzz.arguments(
        data,
        dict(
            spikes=(
                fuzz.tensors(2, 3, sizes=(1, 5), dtypes=(torch.float32, torch.bool)),
                st.one_of(fuzz.tensors(0, 1), st.sampled_from(JUNK)),
            ),
            dt=(st.sampled_from((None, 0.001, 1)), BAD_NUMBERS),
            max_neurons=(st.sampled_from((None, 1, 3, 100)), BAD_NUMBERS),
            sort_by_rate=(st.booleans(), st.booleans()),
            title=(st.sampled_from(("", "raster")), st.sampled_from(("", "raster"))),
        ),
    )
    axes = data.draw(st.sampled_from(("none", "one", "pair", "three", "junk")))
    if axes != "none":
        args["axes"] = {
            "one": plt.gca(),
            "pair": plt.gcf().subplots(1, 2),
            "three": tuple(plt.gcf().subplots(1, 3)),
            "junk": "axes",
        }[axes]
    valid = not broken and axes in ("none", "one", "pair")
    result = fuzz.call(
        "plots", lambda: _drawn(plot.plot_raster(**args)), expect_result=valid
    )
    if result is not None:
        ax, ax_rate = result
        assert (ax_rate is None) == (axes == "one")


@FUZZ
@given(data=st.data())
def test_plot_neuron_states(fuzz, data):
    _new_figure()
    steps = data.draw(st.integers(1, 4))
    _, states = norse.LIF(record_states=True)(torch.rand(steps, 2, 3))
    states = data.draw(
        st.sampled_from(
            (
                states,
                [
                    norse.LIFFeedForwardState(v=v, i=i)
                    for v, i in zip(states.v, states.i)
                ],
                states._replace(v=torch.full_like(states.v, float("nan"))),
                states._replace(v="voltages"),
                "states",
                None,
                [1, 2],
            )
        )
    )
    variables = data.draw(
        st.lists(st.sampled_from(("v", "i", "x", 3)), min_size=0, max_size=2)
    )
    label = data.draw(st.booleans())
    fuzz.call(
        "plots",
        lambda: _drawn(plot.plot_neuron_states(states, *variables, label=label)),
    )


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("name", ["plot_heatmap_3d", "plot_scatter_3d"])
def test_three_dimensional_plots(fuzz, data, name):
    _new_figure()
    spikes = data.draw(_spike_tensors(fuzz, 2, 5))
    dims = data.draw(
        st.sampled_from((None, None, "LXY", "XLY", "TLXY", "LTXY", "LLY", "AB", 3))
    )
    kwargs = {"show_colorbar": data.draw(st.booleans())}
    if name == "plot_scatter_3d" and data.draw(st.booleans()):
        kwargs["axes"] = data.draw(st.sampled_from(([], [plt.gca()], "axes")))
    fuzz.call("plots", lambda: _drawn(getattr(plot, name)(spikes, dims=dims, **kwargs)))


@FUZZ
@given(data=st.data())
def test_plot_izhikevich(fuzz, data):
    _new_figure()
    args, broken = fuzz.arguments(
        data,
        dict(
            behavior=(
                st.just(tonic_spiking),
                st.sampled_from((None, "tonic", (1, 2), (tonic_spiking.p, None))),
            ),
            current=(st.sampled_from((1, 10.0, 0)), st.sampled_from(NOT_NUMBERS)),
            time_print=(st.sampled_from((5, 20.0)), BAD_NUMBERS),
            time_current=(st.sampled_from((0, 2, 50)), st.sampled_from(NOT_NUMBERS)),
            timestep_print=(st.sampled_from((0.5, 1)), BAD_NUMBERS),
        ),
    )
    result = fuzz.call(
        "plots", lambda: _drawn(plot.plot_izhikevich(**args)), expect_result=not broken
    )
    if result is not None:
        steps = round(args["time_print"] / args["timestep_print"])
        assert len(result.lines[0].get_xdata()) == steps


# --------------------------------------------------------------------------------------
# NIR export and import

#: One layer of a chain: (factory of the layer for ``features`` inputs, output size);
#: a size of None keeps the input size.
NEURONS = {
    "LIFCell": lambda n: norse.LIFCell(),
    "LICell": lambda n: norse.LICell(),
    "LIFBoxCell": lambda n: norse.LIFBoxCell(),
    "LIBoxCell": lambda n: norse.LIBoxCell(),
    "IAFCell": lambda n: norse.IAFCell(),
    "LIFCell(per neuron)": lambda n: norse.LIFCell(
        norse.LIFParameters(v_th=torch.linspace(0.5, 1.0, n))
    ),
}
UNSUPPORTED = {
    "ReLU": lambda n: torch.nn.ReLU(),
    "MaxPool1d": lambda n: torch.nn.MaxPool1d(2),
    "LSNNCell": lambda n: norse.LSNNCell(),
    "LIFRecurrentCell": lambda n: norse.LIFRecurrentCell(n, n),
}


@st.composite
def chains(draw):
    """A ``SequentialState`` of Linear and neuron layers (sizes 1-4), sometimes with a
    layer NIR cannot express, a size mismatch, Dropout/Identity or a nested chain."""
    features = draw(st.integers(1, 4))
    size, layers, exportable = features, [], True
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(("linear", "linear", "neuron", "neuron", "skip", "odd"))
        )
        if kind == "linear":
            out = draw(st.integers(1, 4))
            inputs = size
            if layers and draw(st.integers(0, 9)) == 0:  # a size mismatch
                inputs, exportable = size + 1, False
            bias = draw(st.booleans())
            layers.append(torch.nn.Linear(inputs, out, bias=bias))
            size = out
        elif kind == "neuron":
            layers.append(NEURONS[draw(st.sampled_from(sorted(NEURONS)))](size))
        elif kind == "skip":
            layers.append(
                draw(st.sampled_from((torch.nn.Dropout(), torch.nn.Identity())))
            )
        else:
            layers.append(UNSUPPORTED[draw(st.sampled_from(sorted(UNSUPPORTED)))](size))
            exportable = False
    if len(layers) > 2 and draw(st.booleans()):
        layers = [norse.SequentialState(*layers[:2]), *layers[2:]]
    return norse.SequentialState(*layers), features, exportable


@FUZZ
@given(data=st.data())
def test_export_and_import_of_random_chains(fuzz, data):
    model, features, exportable = data.draw(chains())
    model.eval()
    batch = data.draw(st.integers(1, 3))
    sample_choice = data.draw(
        st.sampled_from(("none", "good", "good", "shape", "junk"))
    )
    sample = {
        "none": None,
        "good": torch.rand(batch, features),
        "shape": torch.rand(batch, features + 1, 2),
        "junk": data.draw(st.sampled_from(JUNK)),
    }[sample_choice]
    first = model[0][0] if isinstance(model[0], norse.SequentialState) else model[0]
    size_known = sample_choice == "good" or isinstance(first, torch.nn.Linear)
    valid = exportable and size_known and sample_choice in ("none", "good")
    graph = fuzz.call("nir", norse.to_nir, model, sample, expect_result=valid)
    if graph is None:
        return
    assert {"input", "output"} <= set(graph.nodes)
    imported = fuzz.call("nir", norse.from_nir, graph, expect_result=True)
    x = torch.rand(batch, features)
    with torch.no_grad():
        expected, _ = model(x)
        got, _ = imported(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@FUZZ
@given(data=st.data())
def test_export_arguments(fuzz, data):
    model = norse.SequentialState(torch.nn.Linear(3, 2), norse.LIFCell())
    args, broken = fuzz.arguments(
        data,
        dict(
            module=(st.just(model), st.sampled_from(JUNK + (torch.nn.ReLU,))),
            sample_data=(
                st.one_of(st.none(), st.just(torch.rand(2, 3))),
                st.sampled_from(JUNK + (torch.rand(()), torch.rand(2, 4))),
            ),
            model_name=(st.sampled_from(("norse", "net")), st.just(3)),
            dt=(
                st.sampled_from((None, 0.001)),
                st.sampled_from((0.002, -1, float("nan"), "0.001", [0.001])),
            ),
        ),
    )
    graph = fuzz.call(
        "nir", norse.to_nir, **args, expect_result=not broken - {"model_name"}
    )
    if graph is not None:
        assert graph.metadata["model_name"] == str(args["model_name"])


def _arrays(draw, shape, positive=False):
    """Random float arrays of ``shape``, sometimes broken (NaN, negative, zero, a
    wrong shape)."""
    values = np.random.default_rng(draw(st.integers(0, 2**16))).uniform(0.5, 1.5, shape)
    flaw = draw(st.sampled_from((None, None, None, "nan", "sign", "zero", "shape")))
    if flaw == "nan":
        values.flat[0] = np.nan
    elif flaw == "sign":
        values = -values
    elif flaw == "zero":
        values = np.zeros(shape)
    elif flaw == "shape":
        values = np.ones((*shape, 2))
    return values, flaw is None or (flaw == "sign" and not positive)


@st.composite
def nir_nodes(draw, n=3):
    """A random NIR node for ``n`` features and whether its parameters are valid for
    Norse (time constants positive and finite, shapes right)."""
    kind = draw(
        st.sampled_from(
            ("Affine", "Linear", "CubaLIF", "CubaLI", "LIF", "LI", "IF", "Scale",
             "Flatten", "Threshold", "Delay", "I")
        )
    )  # fmt: skip
    if kind in ("Affine", "Linear"):
        weight, ok = _arrays(draw, (n, n))
        node = (
            nir.Affine(weight=weight, bias=np.zeros(n))
            if kind == "Affine"
            else nir.Linear(weight=weight)
        )
        return node, ok
    if kind in ("CubaLIF", "CubaLI", "LIF", "LI"):
        tau, ok = _arrays(draw, (n,), positive=True)
        tau = tau * 0.01
        common = dict(r=np.ones(n), v_leak=np.zeros(n))
        if kind.startswith("Cuba"):
            common.update(tau_syn=tau, tau_mem=np.full(n, 0.02), w_in=np.full(n, 5.0))
        else:
            common.update(tau=tau)
        if kind.endswith("LIF"):
            common.update(v_threshold=np.ones(n), v_reset=np.zeros(n))
        node = draw(st.just(getattr(nir, kind)))
        try:
            return node(**common), ok
        except Exception:  # nir's own checks (shapes) rejected it: set it afterwards
            built = node(
                **{k: np.ones(n) * 0.01 if "tau" in k else v for k, v in common.items()}
            )
            for key, value in common.items():
                setattr(built, key, value)
            return built, ok
    if kind == "IF":
        return nir.IF(r=np.ones(n), v_threshold=np.ones(n)), True
    if kind == "Scale":
        scale, ok = _arrays(draw, (n,))
        return nir.Scale(scale=scale), ok or scale.ndim == 1
    if kind == "Flatten":
        return nir.Flatten(input_type={"input": np.array([n])}, start_dim=0), True
    if kind == "Threshold":
        return nir.Threshold(threshold=np.ones(n)), False
    if kind == "Delay":
        return nir.Delay(delay=np.ones(n)), False
    return nir.I(r=np.ones(n)), False


@FUZZ
@given(data=st.data())
def test_import_of_random_nodes_and_chains(fuzz, data):
    n = 3
    pairs = [data.draw(nir_nodes(n)) for _ in range(data.draw(st.integers(1, 3)))]
    if data.draw(st.booleans()):
        node, valid = pairs[0]
    else:
        try:
            node = nir.NIRGraph.from_list(*(node for node, _ in pairs))
        except ValueError:  # nir's own type inference rejected the graph
            return
        valid = all(ok for _, ok in pairs)
        if data.draw(st.integers(0, 3)) == 0:  # a broken graph: an edge to nowhere
            node.edges.append((next(iter(node.nodes)), "missing"))
            valid = False
    dt = data.draw(st.one_of(st.sampled_from((0.001, 0.0001)), BAD_NUMBERS))
    valid = valid and isinstance(dt, float) and 0 < dt < float("inf")
    model = fuzz.call("nir", norse.from_nir, node, dt=dt, expect_result=valid)
    if model is not None and valid:
        out = model(torch.rand(2, n))
        out = out[0] if isinstance(out, tuple) else out  # neurons: (output, state)
        assert out.shape == (2, n)


@FUZZ
@given(data=st.data())
def test_import_of_junk(fuzz, data):
    # (a str or Path is a file name: a missing file is a FileNotFoundError)
    node = data.draw(
        st.sampled_from((None, [1.0], {"x": 1}, 2.5, torch.nn.Linear(2, 2), b"graph"))
    )
    fuzz.call("nir", norse.from_nir, node)


# --------------------------------------------------------------------------------------
# Functional encoders with all their arguments

ENCODERS = {
    "poisson_encode": lambda x, n, f, dt, g: norse.poisson_encode(x, n, f, dt, g),
    "signed_poisson_encode": lambda x, n, f, dt, g: norse.signed_poisson_encode(
        x, n, f, dt, g
    ),
    "poisson_encode_step": lambda x, n, f, dt, g: norse.poisson_encode_step(
        x, f, dt, g
    ),
    "signed_poisson_encode_step": lambda x, n, f, dt, g: (
        norse.signed_poisson_encode_step(x, f, dt, g)
    ),
    "constant_current_lif_encode": lambda x, n, f, dt, g: (
        norse.constant_current_lif_encode(x, n, dt=dt)
    ),
    "spike_latency_lif_encode": lambda x, n, f, dt, g: norse.spike_latency_lif_encode(
        x, n, dt=dt
    ),
}


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_functional_encoders_with_all_arguments(fuzz, data, name):
    args, broken = fuzz.arguments(
        data,
        dict(
            x=(
                fuzz.tensors(0, 3, dtypes=(torch.float32, torch.float64)).filter(
                    lambda t: bool(torch.isfinite(t).all())
                ),
                st.one_of(fuzz.tensors(0, 3), st.sampled_from(JUNK)),
            ),
            n=(st.integers(1, 4), BAD_NUMBERS),
            f=(st.sampled_from((1, 100.0, 1000)), BAD_NUMBERS),
            dt=(st.sampled_from((0.001, 0.0005)), BAD_NUMBERS),
            g=(
                st.sampled_from((None, torch.Generator().manual_seed(0))),
                st.sampled_from(("generator", 3)),
            ),
        ),
    )
    spikes = fuzz.call("encoders", ENCODERS[name], **args, expect_result=not broken)
    if spikes is not None and not broken:
        assert spikes.dtype == args["x"].dtype
        assert bool(torch.isfinite(spikes).all())
