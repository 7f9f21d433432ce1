"""NIR export: the nodes' numbers mean, under NIR's equations, what Norse computes."""

import re

import numpy as np
import pytest
import torch

import norse.torch as norse
from norse.torch.functional.reset import reset_subtract

nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")

from norse.torch.utils.export_nir import to_nir  # noqa: E402


def _simulate_nir(node, inputs: np.ndarray, dt: float) -> np.ndarray:
    """NIR's equations for one neuron node, explicit Euler with step ``dt``, current
    before voltage (the input ``S`` is the value of the step; the voltage starts at
    ``v_leak``, or ``v_reset`` for IF, which adds ``r * S`` per step whatever ``dt``).
    Returns the spikes (or the voltage of LI nodes) of every step."""
    shape = inputs.shape[1:]
    current = np.zeros(shape)
    v = np.broadcast_to(getattr(node, "v_leak", np.zeros(shape)), shape).copy()
    if isinstance(node, nir.IF):
        v = np.broadcast_to(node.v_reset, shape).copy()
    outputs = []
    for s in inputs:
        if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
            current = current + dt / node.tau_syn * (-current + node.w_in * s)
            v = v + dt / node.tau_mem * (node.v_leak - v + node.r * current)
        elif isinstance(node, (nir.LIF, nir.LI)):
            v = v + dt / node.tau * (node.v_leak - v + node.r * s)
        elif isinstance(node, nir.IF):
            v = v + node.r * s
        if isinstance(node, (nir.CubaLI, nir.LI)):
            outputs.append(v.copy())
            continue
        z = v > node.v_threshold
        v = np.where(z, node.v_reset, v)
        outputs.append(z.astype(float))
    return np.stack(outputs)


NEURONS = {
    "LIFCell": (
        lambda dt: norse.LIFCell(
            norse.LIFParameters(
                tau_syn_inv=torch.tensor(150.0),
                tau_mem_inv=torch.tensor(80.0),
                v_leak=torch.tensor(0.1),
                v_th=torch.tensor(0.6),
                v_reset=torch.tensor(-0.2),
            ),
            dt=dt,
        ),
        "CubaLIF",
    ),
    "LICell": (
        lambda dt: norse.LICell(
            norse.LIParameters(
                tau_syn_inv=torch.tensor(150.0), v_leak=torch.tensor(0.1)
            ),
            dt=dt,
        ),
        "CubaLI",
    ),
    "LIFBoxCell": (
        lambda dt: norse.LIFBoxCell(
            norse.LIFBoxParameters(
                tau_mem_inv=torch.tensor(70.0),
                v_th=torch.tensor(0.4),
                v_reset=torch.tensor(-0.1),
            ),
            dt=dt,
        ),
        "LIF",
    ),
    "LIBoxCell": (
        lambda dt: norse.LIBoxCell(
            norse.LIBoxParameters(tau_mem_inv=torch.tensor(70.0)), dt=dt
        ),
        "LI",
    ),
    "IAFCell": (
        lambda dt: norse.IAFCell(norse.IAFParameters(v_th=torch.tensor(0.5)), dt=dt),
        "IF",
    ),
}


@pytest.mark.parametrize("dt", [1e-3, 2.5e-4])
@pytest.mark.parametrize("name", sorted(NEURONS))
def test_neuron_nodes_reproduce_norse_under_nir_equations(name, dt):
    make, node_type = NEURONS[name]
    cell = make(dt)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(60, 2, 5, generator=generator) * 3.0
    if name == "IAFCell":
        inputs = inputs * 0.2

    graph = to_nir(cell, sample_data=inputs[0])
    node = graph.nodes["norse"]  # a single layer is named after model_name
    assert type(node).__name__ == node_type
    for field in ("tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in"):
        if hasattr(node, field):
            value = getattr(node, field)
            assert isinstance(value, np.ndarray) and value.shape == (5,), field

    outputs, state = [], None
    for step in inputs:
        out, state = cell(step, state)
        outputs.append(out)
    norse_out = torch.stack(outputs).detach().double().numpy()
    nir_out = _simulate_nir(node, inputs.double().numpy(), dt)
    if node_type in ("CubaLI", "LI"):
        np.testing.assert_allclose(nir_out, norse_out, rtol=1e-4, atol=1e-5)
    else:
        assert norse_out.sum() > 10  # the neurons do fire
        assert np.array_equal(nir_out, norse_out)


def test_time_constants_are_seconds_and_w_in_depends_on_dt():
    for dt in (1e-3, 1e-4):
        graph = to_nir(
            norse.SequentialState(torch.nn.Linear(3, 2), norse.LIFCell(dt=dt))
        )
        node = graph.nodes["1"]
        np.testing.assert_allclose(node.tau_syn, [0.005, 0.005])  # 1 / 200 Hz
        np.testing.assert_allclose(node.tau_mem, [0.01, 0.01])
        np.testing.assert_allclose(node.w_in, [0.005 / dt] * 2)
        np.testing.assert_allclose(node.r, [1.0, 1.0])
    # IF has no time constant: r weighs the input of one step, at any dt
    iaf = to_nir(norse.SequentialState(torch.nn.Linear(3, 2), norse.IAFCell(dt=1e-4)))
    np.testing.assert_allclose(iaf.nodes["1"].r, [1.0, 1.0])


def test_time_modules_export_like_cells():
    model = norse.SequentialState(torch.nn.Linear(4, 3), norse.LIF(), norse.LI())
    graph = to_nir(model, sample_data=torch.zeros(10, 2, 4))  # (T, batch, features)
    assert [type(graph.nodes[k]).__name__ for k in ("0", "1", "2")] == [
        "Affine",
        "CubaLIF",
        "CubaLI",
    ]
    assert graph.nodes["2"].tau_mem.shape == (3,)


def test_layer_sizes_through_conv_pool_and_flatten():
    model = norse.SequentialState(
        norse.Lift(torch.nn.Conv2d(2, 4, 3, padding=1, stride=2)),
        norse.LIFBox(),
        norse.Lift(torch.nn.AvgPool2d(2)),
        torch.nn.Flatten(2),
        norse.Lift(torch.nn.Linear(16, 5, bias=False)),
        norse.LIBox(),
    )
    graph = to_nir(model, sample_data=torch.zeros(3, 1, 2, 9, 9))
    types = {
        k: (type(n).__name__, tuple(n.output_type["output"]))
        for k, n in graph.nodes.items()
    }
    assert types == {
        "input": ("Input", (2, 9, 9)),
        "0": ("Conv2d", (4, 5, 5)),
        "1": ("LIF", (4, 5, 5)),
        "2": ("AvgPool2d", (4, 2, 2)),
        "3": ("Flatten", (16,)),
        "4": ("Affine", (5,)),
        "5": ("LI", (5,)),
        "output": ("Output", (5,)),
    }
    assert graph.nodes["1"].tau.shape == (4, 5, 5)
    assert graph.nodes["3"].start_dim == 0 and graph.nodes["3"].end_dim == -1
    assert isinstance(graph.nodes["0"].weight, np.ndarray)
    # Linear without bias: an Affine node with zero bias, as Norse 1.1 wrote it
    np.testing.assert_array_equal(graph.nodes["4"].bias, np.zeros(5))


def test_per_neuron_parameters_are_kept():
    v_th = torch.tensor([0.5, 1.0, 1.5])
    model = norse.SequentialState(
        torch.nn.Linear(2, 3), norse.LIFCell(norse.LIFParameters(v_th=v_th))
    )
    node = to_nir(model).nodes["1"]
    np.testing.assert_allclose(node.v_threshold, v_th.numpy())


def test_nested_chains_and_skipped_layers():
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 3),
        torch.nn.Dropout(0.1),
        norse.SequentialState(norse.LIFBoxCell(), torch.nn.Linear(3, 2)),
    )
    graph = to_nir(model)
    assert list(graph.nodes) == ["input", "0", "2_0", "2_1", "output"]
    assert graph.edges == [
        ("input", "0"),
        ("0", "2_0"),
        ("2_0", "2_1"),
        ("2_1", "output"),
    ]


def test_traced_module_with_its_own_forward():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 4)
            self.lif = norse.LIFCell()
            self.out = torch.nn.Linear(4, 2)

        def forward(self, x):
            z, _ = self.lif(self.fc(x))
            return self.out(z)

    graph = to_nir(Net(), sample_data=torch.zeros(2, 3), model_name="net")
    kinds = {k: type(n).__name__ for k, n in graph.nodes.items()}
    assert kinds["fc"] == "Affine" and kinds["lif"] == "CubaLIF"
    assert ("fc", "lif") in graph.edges and ("lif", "out") in graph.edges
    assert graph.nodes["lif"].tau_mem.shape == (4,)
    assert graph.metadata["model_name"] == "net"
    with pytest.raises(ValueError, match="needs sample_data to export Net"):
        to_nir(Net())


@pytest.mark.parametrize(
    "model, sample, message",
    [
        (
            norse.SequentialState(
                torch.nn.Conv2d(1, 2, 3), torch.nn.MaxPool2d(2), norse.LIFCell()
            ),
            torch.zeros(1, 1, 8, 8),
            r"layer '1' \(MaxPool2d\): NIR has no max pooling",
        ),
        (
            norse.SequentialState(torch.nn.Linear(2, 2), torch.nn.ReLU()),
            None,
            r"cannot export layer '1' \(ReLU\)",
        ),
        (
            norse.SequentialState(norse.LIFRecurrentCell(2, 3)),
            torch.zeros(1, 2),
            r"LIFRecurrentCell\): recurrent layers",
        ),
        (
            norse.SequentialState(torch.nn.Conv2d(1, 2, 3), norse.LIFCell()),
            None,
            r"needs sample_data to know the input size of the first layer \(Conv2d\)",
        ),
        (
            norse.SequentialState(torch.nn.Flatten(0), torch.nn.Linear(8, 2)),
            torch.zeros(2, 4),
            "start_dim=0, which reaches into the batch",
        ),
        (
            norse.SequentialState(torch.nn.Linear(4, 2), norse.LIF()),
            torch.zeros(3, 4),  # a time module needs (T, batch, 4)
            "shape",
        ),
    ],
)
def test_clear_errors_name_the_layer(model, sample, message):
    with pytest.raises(ValueError, match=message):
        to_nir(model, sample_data=sample)


def test_dt_argument_is_accepted_and_warns_when_a_layer_differs():
    """Norse 1.1 accepted any dt (it multiplied the time constants by it); the graph
    describes every layer with its own dt, and a different dt warns."""
    model = norse.SequentialState(torch.nn.Linear(2, 2), norse.LIFCell(dt=5e-4))
    assert to_nir(model, dt=5e-4).nodes["1"].w_in[0] == pytest.approx(10.0)
    with pytest.warns(UserWarning, match=r"layer 1 runs with dt=0\.0005"):
        graph = to_nir(model, dt=1e-3)
    assert graph.nodes["1"].w_in[0] == pytest.approx(10.0)
    np.testing.assert_allclose(graph.nodes["1"].tau_mem, [0.01, 0.01])
    for bad in (0, -1e-3, float("nan"), float("inf"), "0.001", [0.001], True):
        with pytest.raises(
            ValueError,
            match=re.escape(f"dt must be a positive, finite float, got {bad!r}"),
        ):
            to_nir(model, dt=bad)


def test_the_node_of_a_single_layer_is_named_after_the_model():
    """Norse 1.1 named it model_name ("norse" by default); a bare Linear without bias
    becomes an Affine node with zero bias (Norse 1.1's test reads its bias)."""
    graph = to_nir(torch.nn.Linear(2, 3, bias=False), torch.randn(1, 2))
    assert list(graph.nodes) == ["input", "norse", "output"]
    assert graph.edges == [("input", "norse"), ("norse", "output")]
    node = graph.nodes["norse"]
    assert isinstance(node, nir.Affine) and node.weight.shape == (3, 2)
    np.testing.assert_array_equal(node.bias, np.zeros(3))
    graph = to_nir(norse.LIFBoxCell(), torch.zeros(4, 3), model_name="lif")
    assert list(graph.nodes) == ["input", "lif", "output"]
    assert graph.nodes["lif"].tau.shape == (3,)


def test_one_unbatched_sample_as_in_the_nir_paper():
    """The NIR paper's Norse notebook: to_nir(model, torch.tensor(d[0]), "lif") with a
    one-element sample; the graph holds its published lif_norse.nir parameters."""
    model = norse.SequentialState(
        torch.nn.Linear(1, 1, bias=False),
        norse.LIFBoxCell(
            p=norse.LIFBoxParameters(
                tau_mem_inv=torch.tensor([400]), v_th=torch.tensor([0.1])
            ),
            dt=0.0001,
        ),
    )
    model[0].weight.data.fill_(1)
    d = torch.zeros(1000, 1)
    graph = to_nir(model, d[0].clone(), "lif")
    assert graph.metadata["model_name"] == "lif"
    np.testing.assert_array_equal(graph.nodes["input"].input_type["input"], [1])
    np.testing.assert_array_equal(graph.nodes["output"].output_type["output"], [1])
    lif = graph.nodes["1"]
    np.testing.assert_allclose(lif.tau, [0.0025])  # seconds, as in lif_norse.nir
    np.testing.assert_allclose(lif.r, [1.0])
    np.testing.assert_allclose(lif.v_threshold, [0.1])
    np.testing.assert_allclose(lif.v_leak, [0.0])
    # an unbatched sample of the wrong size is still an error
    with pytest.raises(ValueError, match="takes 1 features"):
        to_nir(model, torch.zeros(2), "lif")


def test_time_scaling_factor_multiplies_the_time_constants():
    """Norse after 1.1: time_scaling_factor=s writes every time constant times s; the
    graph then reproduces the network at steps of s * dt (input weights unchanged)."""
    dt, s = 1e-3, 0.5
    cell = NEURONS["LIFCell"][0](dt)
    plain = to_nir(cell, torch.zeros(1, 5)).nodes["norse"]
    node = to_nir(cell, torch.zeros(1, 5), time_scaling_factor=s).nodes["norse"]
    np.testing.assert_allclose(node.tau_mem, plain.tau_mem * s)
    np.testing.assert_allclose(node.tau_syn, plain.tau_syn * s)
    np.testing.assert_allclose(node.tau_mem, np.full(5, s / 80.0))
    np.testing.assert_allclose(node.w_in, plain.w_in)
    np.testing.assert_allclose(node.r, plain.r)
    inputs = torch.rand(50, 2, 5, generator=torch.Generator().manual_seed(1)) * 3.0
    outputs, state = [], None
    for step in inputs:
        out, state = cell(step, state)
        outputs.append(out)
    norse_out = torch.stack(outputs).detach().double().numpy()
    assert norse_out.sum() > 10
    np.testing.assert_array_equal(
        _simulate_nir(node, inputs.double().numpy(), s * dt), norse_out
    )
    box = to_nir(norse.LIBoxCell(), torch.zeros(1, 2), time_scaling_factor=2.0)
    np.testing.assert_allclose(box.nodes["norse"].tau, [0.02, 0.02])
    iaf = to_nir(norse.IAFCell(), torch.zeros(1, 2), time_scaling_factor=2.0)
    np.testing.assert_allclose(iaf.nodes["norse"].r, [1.0, 1.0])
    for bad in (0, -1.0, float("nan"), "1", None):
        with pytest.raises(ValueError, match="time_scaling_factor must be a positive"):
            to_nir(cell, torch.zeros(1, 5), time_scaling_factor=bad)


def test_type_check_argument():
    model = norse.SequentialState(torch.nn.Linear(3, 2), norse.LIFCell())
    assert set(to_nir(model, type_check=False).nodes) == {"input", "0", "1", "output"}
    with pytest.raises(TypeError, match="type_check must be a bool, got 'no'"):
        to_nir(model, type_check="no")


def test_a_subtracting_reset_is_exported_with_a_warning():
    """NIR's LIF node resets to v_reset; Norse 1.1 exported a subtracting LIFBox without
    a word, here it warns (and from_nir can restore the reset)."""
    model = norse.SequentialState(
        torch.nn.Linear(2, 2),
        norse.LIFBoxCell(norse.LIFBoxParameters(reset_method=reset_subtract)),
    )
    with pytest.warns(UserWarning, match="reset_method=reset_subtract is not stored"):
        graph = to_nir(model)
    assert isinstance(graph.nodes["1"], nir.LIF)


def test_the_modules_from_nir_builds_export_to_the_same_nodes():
    """CubaLIF (Norse 1.1's module), IF with r, LIF with r: graph -> from_nir -> to_nir
    gives back every parameter, also through the traced path."""
    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=np.ones((3, 2)), bias=np.zeros(3)),
        nir.CubaLIF(
            tau_syn=np.full(3, 0.004),
            tau_mem=np.array([0.01, 0.02, 0.04]),
            r=np.full(3, 2.0),
            v_leak=np.zeros(3),
            v_threshold=np.full(3, 0.7),
            w_in=np.full(3, 3.0),
        ),
        nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
        nir.IF(r=np.array([0.5, 2.0]), v_threshold=np.ones(2)),
        nir.LIF(
            tau=np.full(2, 0.01),
            r=np.full(2, 3.0),
            v_leak=np.zeros(2),
            v_threshold=np.ones(2),
        ),
    )
    model = norse.from_nir(graph)
    exported = to_nir(model)
    assert list(exported.nodes) == list(graph.nodes)
    fields = ("tau_syn", "tau_mem", "tau", "r", "w_in", "v_leak", "v_threshold")
    for name, node in graph.nodes.items():
        assert type(exported.nodes[name]) is type(node), name
        for field in fields + ("weight", "bias"):
            if hasattr(node, field):
                np.testing.assert_allclose(
                    getattr(exported.nodes[name], field),
                    getattr(node, field),
                    rtol=1e-6,
                    err_msg=f"{name}.{field}",
                )

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 3)
            self.cuba = model[1]

        def forward(self, x):
            z, _ = self.cuba(self.fc(x))
            return z

    traced = to_nir(Net(), torch.zeros(1, 2), time_scaling_factor=2.0)
    node = traced.nodes["cuba"]
    assert isinstance(node, nir.CubaLIF)
    np.testing.assert_allclose(node.w_in, [3.0] * 3)
    np.testing.assert_allclose(node.tau_mem, [0.02, 0.04, 0.08], rtol=1e-6)

    subtracting = norse.from_nir(graph, reset_method=reset_subtract)
    with pytest.warns(UserWarning, match="reset_method=reset_subtract is not stored"):
        to_nir(subtracting)
