"""NIR graphs as other simulators write them run as their authors ran them.

Each test builds, with the ``nir`` package, a small graph of the structure that one
simulator exports (the NIR paper's notebooks, Pedersen et al., Nat. Commun. 2024), imports
it with ``from_nir`` and compares the spikes with the simulator's update rule computed
here by hand:

* sinabs: ``IF`` nodes with ``r = 1`` and no time step (``v <- v + I`` per step);
* snnTorch: ``dt = 1e-4``, ``tau = dt / (1 - beta)``, ``r = tau_mem / dt``,
  ``w_in = tau_syn / dt`` (``syn <- alpha syn + x``, ``mem <- beta mem + syn``),
  subtractive reset, recurrence as a ``Linear`` edge back to the neurons;
* Rockpool: ``r = tau exp(-dt/tau) / dt`` at its own ``dt``;
* Norse 1.1: ``CubaLIF`` with ``w_in = 1`` and ``r = 1``.
"""

import numpy as np
import pytest
import torch

import norse.torch as norse
from norse.torch.functional.reset import reset_subtract

nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")

from norse.torch.utils.import_nir import CubaLIF, from_nir  # noqa: E402


def _quarters(rng, low, high, shape):
    """Random multiples of 1/4: sums of them are exact in float32 and float64, so
    spikes computed here and by Norse cannot differ by rounding."""
    return (rng.integers(low, high, shape) / 4).astype(np.float32)


def _run(model, inputs: np.ndarray) -> np.ndarray:
    outputs, state = [], None
    with torch.no_grad():
        for step in inputs:
            out, state = model(torch.from_numpy(step), state)
            outputs.append(out.numpy())
    return np.stack(outputs)


# --------------------------------------------------------------------------------------
# sinabs: a CNN of IF neurons (cnn_sinabs.nir's structure)


def _sinabs_cnn(rng):
    """Input (2, 6, 6) -> Conv2d -> IF -> SumPool2d -> Flatten -> Affine -> IF, with
    r = 1 everywhere and no time step, as sinabs exports its IAF networks."""
    conv = _quarters(rng, -2, 4, (3, 2, 3, 3))
    dense = _quarters(rng, -2, 4, (4, 27))

    def neurons(shape):
        return nir.IF(
            r=np.ones(shape), v_threshold=np.ones(shape), v_reset=np.zeros(shape)
        )

    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 6, 6])}),
        "0": nir.Conv2d(
            input_shape=(6, 6),
            weight=conv,
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=np.zeros(3, np.float32),
        ),
        "1": neurons((3, 6, 6)),
        "2": nir.SumPool2d(
            kernel_size=np.array([2, 2]),
            stride=np.array([2, 2]),
            padding=np.array([0, 0]),
        ),
        "3": nir.Flatten(input_type={"input": np.array([3, 3, 3])}, start_dim=0),
        "4": nir.Affine(weight=dense, bias=np.zeros(4, np.float32)),
        "5": neurons((4,)),
        "output": nir.Output(output_type={"output": np.array([4])}),
    }
    order = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])))
    return graph, conv, dense


def _sinabs_reference(inputs, conv, dense, subtract=False):
    """sinabs' IAF: v <- v + I every step, spike where v > 1, then v <- 0 (or v - 1)."""
    conv, dense = torch.from_numpy(conv), torch.from_numpy(dense)
    v1 = torch.zeros(inputs.shape[1], 3, 6, 6)
    v2 = torch.zeros(inputs.shape[1], 4)
    hidden, outputs = 0.0, []
    for x in torch.from_numpy(inputs):
        v1 = v1 + torch.nn.functional.conv2d(x, conv, padding=1)
        z1 = (v1 > 1).float()
        v1 = v1 - z1 if subtract else v1 * (1 - z1)
        hidden += float(z1.sum())
        pooled = torch.nn.functional.avg_pool2d(z1, 2) * 4  # sum pooling
        v2 = v2 + pooled.flatten(1) @ dense.T
        z2 = (v2 > 1).float()
        v2 = v2 - z2 if subtract else v2 * (1 - z2)
        outputs.append(z2.numpy())
    return np.stack(outputs), hidden


def test_sinabs_cnn_integrates_the_input_per_step_at_any_dt():
    """The NIR paper's sinabs CNN has IF nodes with r = 1 and no dt: Norse 1.1 ran them
    as v += I and reproduced the paper's accuracy. Scaling the input by r * dt (this
    package's earlier reading) left the network silent at the default dt."""
    rng = np.random.default_rng(0)
    graph, conv, dense = _sinabs_cnn(rng)
    inputs = (rng.random((25, 3, 2, 6, 6)) < 0.3).astype(np.float32)
    expected, hidden = _sinabs_reference(inputs, conv, dense)
    assert hidden > 100 and expected.sum() > 20  # both layers spike
    for dt in (0.001, 1e-4, 1.0):
        model = from_nir(graph, dt=dt)
        assert isinstance(model, norse.SequentialState)
        assert type(model[1]) is norse.IAFCell
        np.testing.assert_array_equal(_run(model, inputs), expected)
    # sinabs' own default reset subtracts the threshold
    subtracting, _ = _sinabs_reference(inputs, conv, dense, subtract=True)
    assert not np.array_equal(subtracting, expected)
    model = from_nir(graph, reset_method=reset_subtract)
    np.testing.assert_array_equal(_run(model, inputs), subtracting)


def test_sinabs_graph_survives_nir_write_and_read(tmp_path):
    rng = np.random.default_rng(1)
    graph, conv, dense = _sinabs_cnn(rng)
    nir.write(tmp_path / "cnn.nir", graph)
    inputs = (rng.random((10, 2, 2, 6, 6)) < 0.4).astype(np.float32)
    expected, _ = _sinabs_reference(inputs, conv, dense)
    model = from_nir(str(tmp_path / "cnn.nir"))
    np.testing.assert_array_equal(_run(model, inputs), expected)


# --------------------------------------------------------------------------------------
# snnTorch: Leaky -> LIF, Synaptic -> CubaLIF, RSynaptic -> CubaLIF with a recurrent edge

SNNTORCH_DT = 1e-4  # the step snnTorch's export_to_nir writes for


def _snntorch_lif(beta, n):
    tau = SNNTORCH_DT / (1 - beta)
    return nir.LIF(
        tau=np.full(n, tau),
        r=np.full(n, tau / SNNTORCH_DT),
        v_leak=np.zeros(n),
        v_threshold=np.ones(n),
        v_reset=np.zeros(n),
    )


def _snntorch_cuba_lif(alpha, beta, n):
    tau_syn, tau_mem = SNNTORCH_DT / (1 - alpha), SNNTORCH_DT / (1 - beta)
    return nir.CubaLIF(
        tau_syn=np.full(n, tau_syn),
        tau_mem=np.full(n, tau_mem),
        r=np.full(n, tau_mem / SNNTORCH_DT),
        v_leak=np.zeros(n),
        v_threshold=np.ones(n),
        v_reset=np.zeros(n),
        w_in=np.full(n, tau_syn / SNNTORCH_DT),
    )


def test_snntorch_feed_forward_graph_at_snntorch_dt():
    """Linear -> Synaptic -> Linear -> Leaky, imported at dt = 1e-4 with the
    subtractive reset: syn <- alpha syn + x, mem <- beta mem + syn, spike where mem > 1,
    mem <- mem - 1 (NIR resets in the step of the spike)."""
    rng = np.random.default_rng(2)
    alpha, beta, beta_out = 0.5, 0.75, 0.5
    w1, w2 = _quarters(rng, -2, 6, (5, 3)), _quarters(rng, -2, 6, (2, 5))
    graph = nir.NIRGraph.from_list(
        nir.Linear(weight=w1),
        _snntorch_cuba_lif(alpha, beta, 5),
        nir.Linear(weight=w2),
        _snntorch_lif(beta_out, 2),
    )
    model = from_nir(graph, dt=SNNTORCH_DT, reset_method=reset_subtract)
    assert isinstance(model[1], CubaLIF)
    inputs = (rng.random((40, 2, 3)) < 0.4).astype(np.float32)

    syn, mem, out_mem, expected = np.zeros((2, 5)), np.zeros((2, 5)), 0.0, []
    hidden = 0.0
    for x in inputs.astype(np.float64):
        syn = alpha * syn + x @ w1.T
        mem = beta * mem + syn
        z = (mem > 1).astype(float)
        mem -= z
        hidden += z.sum()
        out_mem = beta_out * out_mem + z @ w2.T
        z_out = (out_mem > 1).astype(float)
        out_mem = out_mem - z_out
        expected.append(z_out)
    expected = np.stack(expected)
    assert hidden > 20 and expected.sum() > 5
    np.testing.assert_array_equal(_run(model, inputs), expected)
    # the reset method matters here: resetting to 0 gives other spikes
    assert not np.array_equal(_run(from_nir(graph, dt=SNNTORCH_DT), inputs), expected)


def test_snntorch_recurrent_graph_with_subtractive_reset():
    """The paper's Braille network (snnTorch RSynaptic, flattened): the recurrent
    Linear edge feeds the spikes of the previous step back to the CubaLIF layer."""
    rng = np.random.default_rng(3)
    alpha, beta = 0.5, 0.75
    w1 = _quarters(rng, -2, 5, (4, 3))
    w_rec = _quarters(rng, -3, 3, (4, 4))
    w2 = _quarters(rng, -2, 4, (2, 4))
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc1": nir.Linear(weight=w1),
            "lif1.lif": _snntorch_cuba_lif(alpha, beta, 4),
            "lif1.w_rec": nir.Linear(weight=w_rec),
            "fc2": nir.Linear(weight=w2),
            "lif2": _snntorch_cuba_lif(alpha, beta, 2),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[
            ("input", "fc1"),
            ("fc1", "lif1.lif"),
            ("lif1.lif", "lif1.w_rec"),
            ("lif1.w_rec", "lif1.lif"),
            ("lif1.lif", "fc2"),
            ("fc2", "lif2"),
            ("lif2", "output"),
        ],
    )
    inputs = (rng.random((30, 2, 3)) < 0.5).astype(np.float32)

    def reference(subtract):
        syn1, mem1, z1 = np.zeros((2, 4)), np.zeros((2, 4)), np.zeros((2, 4))
        syn2, mem2, outputs = np.zeros((2, 2)), np.zeros((2, 2)), []
        for x in inputs.astype(np.float64):
            syn1 = alpha * syn1 + x @ w1.T + z1 @ w_rec.T
            mem1 = beta * mem1 + syn1
            z1 = (mem1 > 1).astype(float)
            mem1 = mem1 - z1 if subtract else mem1 * (1 - z1)
            syn2 = alpha * syn2 + z1 @ w2.T
            mem2 = beta * mem2 + syn2
            z2 = (mem2 > 1).astype(float)
            mem2 = mem2 - z2 if subtract else mem2 * (1 - z2)
            outputs.append(z2)
        return np.stack(outputs)

    subtracting, resetting = reference(True), reference(False)
    assert subtracting.sum() > 5 and not np.array_equal(subtracting, resetting)
    model = from_nir(graph, dt=SNNTORCH_DT, reset_method=reset_subtract)
    assert not isinstance(model, norse.SequentialState)  # wired by nirtorch
    np.testing.assert_array_equal(_run(model, inputs), subtracting)
    model = from_nir(graph, dt=SNNTORCH_DT)
    np.testing.assert_array_equal(_run(model, inputs), resetting)


# --------------------------------------------------------------------------------------
# Rockpool: r = tau exp(-dt/tau) / dt


def test_rockpool_input_weight_is_honoured():
    """Rockpool's ExpSynTorch exports an LI node with r = tau exp(-dt/tau) / dt for its
    dt. Imported at that dt, NIR's Euler step weighs the input by exp(-dt/tau), and the
    trace follows Rockpool's own exponential update (i <- exp(-dt/tau) (i + x)) up to
    the Euler error: a steady state lower by (1 - exp(-dt/tau)) tau / dt, 0.95 here.
    Norse 1.1 dropped r, a factor 9 here."""
    dt, tau, n = 1e-3, 0.01, 3
    r = tau * np.exp(-dt / tau) / dt
    graph = nir.NIRGraph.from_list(
        nir.Linear(weight=np.eye(n, dtype=np.float32)),
        nir.LI(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.zeros(n)),
    )
    model = from_nir(graph, dt=dt)
    inputs = np.random.default_rng(4).random((200, 1, n)).astype(np.float32)
    got = _run(model, inputs)[:, 0]

    euler, rockpool = np.zeros(n), np.zeros(n)
    euler_trace, rockpool_trace = [], []
    for x in inputs[:, 0].astype(np.float64):
        euler = euler + dt / tau * (-euler + r * x)
        rockpool = np.exp(-dt / tau) * (rockpool + x)
        euler_trace.append(euler)
        rockpool_trace.append(rockpool)
    np.testing.assert_allclose(got, np.stack(euler_trace), rtol=1e-4, atol=1e-5)
    late = slice(100, None)  # after the rise, both near their steady state
    ratio = got[late] / np.stack(rockpool_trace)[late]
    euler_error = (1 - np.exp(-dt / tau)) * tau / dt
    assert abs(ratio.mean() - euler_error) < 0.005
    assert np.all(np.abs(ratio - euler_error) < 0.03)


# --------------------------------------------------------------------------------------
# Norse


def test_norse_1_1_cuba_lif_graph_runs_as_norse_1_1_imported_it():
    """Norse 1.1 wrote CubaLIF nodes with w_in = 1 and r = 1 and imported them as a
    synapse (LIBoxCell) feeding a LIFBoxCell: one Euler step of NIR's equations."""
    dt, n = 0.001, 2
    node = nir.CubaLIF(
        tau_syn=np.full(n, 0.005),
        tau_mem=np.full(n, 0.01),
        r=np.ones(n),
        v_leak=np.zeros(n),
        v_threshold=np.full(n, 0.1),
    )
    model = from_nir(nir.NIRGraph.from_list(node), dt=dt)
    inputs = np.random.default_rng(5).random((60, 1, n)).astype(np.float32) * 4
    current, v, expected = np.zeros(n), np.zeros(n), []
    for x in inputs[:, 0].astype(np.float64):
        current = current + dt / 0.005 * (-current + x)
        v = v + dt / 0.01 * (-v + current)
        z = (v > 0.1).astype(float)
        v = v * (1 - z)
        expected.append(z)
    expected = np.stack(expected)
    assert expected.sum() > 5
    np.testing.assert_array_equal(_run(model, inputs)[:, 0], expected)


def test_norse_graph_round_trip_with_its_own_dt(tmp_path):
    """A Norse network exported and imported at the network's dt (the graph does not
    store it) gives the same spikes; the paper's lif_norse structure."""
    model = norse.SequentialState(
        torch.nn.Linear(1, 1, bias=False),
        norse.LIFBoxCell(
            norse.LIFBoxParameters(
                tau_mem_inv=torch.tensor([400.0]), v_th=torch.tensor([0.1])
            ),
            dt=1e-4,
        ),
    )
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    inputs = np.zeros((1000, 1), np.float32)
    inputs[::7] = 1.0
    inputs[300:400] = 1.0
    nir.write(tmp_path / "lif.nir", norse.to_nir(model, torch.zeros(1), "lif"))
    imported = from_nir(nir.read(tmp_path / "lif.nir"), dt=1e-4)
    expected = _run(model, inputs)
    assert expected.sum() > 20
    np.testing.assert_array_equal(_run(imported, inputs), expected)
