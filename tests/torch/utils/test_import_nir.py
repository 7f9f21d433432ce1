"""NIR import, and round trips export -> nir.write -> nir.read -> import."""

import warnings

import numpy as np
import pytest
import torch

import norse.torch as norse

nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")

from norse.torch.functional.reset import reset_subtract  # noqa: E402
from norse.torch.utils.export_nir import InputScale, SumPool2d  # noqa: E402
from norse.torch.utils.import_nir import IF, CubaLIF, _to_tensor, from_nir  # noqa: E402


def _round_trip(model, sample, tmp_path, dt=0.001):
    graph = norse.to_nir(model, sample_data=sample)
    path = tmp_path / "model.nir"
    nir.write(path, graph)
    return norse.from_nir(nir.read(path), dt=dt)


def _step_through(model, inputs):
    outputs, state = [], None
    for step in inputs:
        out, state = model(step, state)
        outputs.append(out)
    return torch.stack(outputs)


def _spiking_inputs(shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < 0.3).float()


def _randomise(model, seed=0, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    return model


def test_whole_time_network_round_trip(tmp_path):
    """conv + LIF + sum pooling + flatten + linear + LI, built with time modules."""
    model = _randomise(
        norse.SequentialState(
            norse.Lift(torch.nn.Conv2d(2, 4, 3)),
            norse.LIF(),
            norse.Lift(torch.nn.LPPool2d(1, 2)),
            torch.nn.Flatten(2),
            norse.Lift(torch.nn.Linear(36, 10)),
            norse.LIF(),
            norse.Lift(torch.nn.Linear(10, 3)),
            norse.LI(),
        ),
        scale=2.0,
    )
    inputs = _spiking_inputs((30, 2, 2, 8, 8))
    imported = _round_trip(model, inputs, tmp_path)
    assert isinstance(imported, norse.SequentialState)
    # LIF -> NIR's CubaLIF -> Norse 1.1's CubaLIF module (synapse, then LIF box cell)
    assert [type(m).__name__ for m in imported] == [
        "Conv2d",
        "CubaLIF",
        "LPPool2d",
        "Flatten",
        "Linear",
        "CubaLIF",
        "Linear",
        "LICell",
    ]
    expected, _ = model(inputs)
    hidden, _ = model[:2](inputs)
    assert hidden.sum() > 50  # the LIF layer spikes
    torch.testing.assert_close(_step_through(imported, inputs), expected)


def test_whole_cell_network_round_trip_with_box_and_iaf_neurons(tmp_path):
    dt = 5e-4
    model = _randomise(
        norse.SequentialState(
            torch.nn.Conv2d(1, 3, 3, padding=1),
            norse.LIFBoxCell(norse.LIFBoxParameters(v_th=torch.tensor(0.2)), dt=dt),
            torch.nn.AvgPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(12, 6),
            norse.IAFCell(dt=dt),
            torch.nn.Linear(6, 2, bias=False),
            norse.LIBoxCell(dt=dt),
        ),
        seed=1,
        scale=3.0,
    )
    inputs = _spiking_inputs((40, 3, 1, 4, 4), seed=2)
    imported = _round_trip(model, inputs[0], tmp_path, dt=dt)
    assert [type(m).__name__ for m in imported][5] == "IAFCell"
    assert imported[1].p.v_th.item() == pytest.approx(0.2)
    expected = _step_through(model, inputs)
    spikes = _step_through(model[:6], inputs)
    assert spikes.sum() > 20
    torch.testing.assert_close(_step_through(imported, inputs), expected)


def test_imported_chain_runs_over_time_with_lift(tmp_path):
    model = _randomise(
        norse.SequentialState(torch.nn.Linear(4, 5), norse.LIF(), torch.nn.Linear(5, 2))
    )
    inputs = _spiking_inputs((20, 3, 4))
    imported = norse.Lift(_round_trip(model, inputs, tmp_path))
    expected, _ = model(inputs)
    output, _ = imported(inputs)
    torch.testing.assert_close(output, expected)


def test_parameters_and_shapes_of_imported_layers():
    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=np.ones((3, 2), np.float32), bias=np.zeros(3, np.float32)),
        nir.CubaLIF(
            tau_syn=np.full(3, 0.004),
            tau_mem=np.array([0.01, 0.02, 0.04]),
            r=np.ones(3),
            v_leak=np.full(3, 0.1),
            v_threshold=np.full(3, 0.7),
            w_in=np.full(3, 4.0),
        ),
    )
    model = from_nir(graph, dt=0.001)
    cell = model[1]
    assert isinstance(cell, CubaLIF)
    assert isinstance(cell.synapse, norse.LIBoxCell) and cell.synapse.dt == 0.001
    assert isinstance(cell.lif, norse.LIFBoxCell) and cell.lif.dt == 0.001
    assert cell.synapse.p.tau_mem_inv.item() == pytest.approx(250.0)  # uniform: scalar
    assert cell.synapse.p.v_leak.item() == 0.0  # NIR's current decays to 0
    torch.testing.assert_close(
        cell.lif.p.tau_mem_inv, torch.tensor([100.0, 50.0, 25.0])
    )
    assert cell.lif.p.v_th.item() == pytest.approx(0.7)
    assert cell.lif.p.v_leak.item() == pytest.approx(0.1)
    assert cell.w_in.item() == 4.0 and cell.r.item() == 1.0


def test_cuba_lif_input_weights_follow_nir_equations():
    """A CubaLIF with w_in = 1 and r = 2 (another simulator's convention), checked by
    hand for two steps: current first, then the voltage with the new current."""
    node = nir.CubaLIF(
        tau_syn=np.full(2, 0.005),
        tau_mem=np.full(2, 0.01),
        r=np.full(2, 2.0),
        v_leak=np.zeros(2),
        v_threshold=np.full(2, 10.0),
        w_in=np.ones(2),
    )
    layer = from_nir(node, dt=0.001)
    assert isinstance(layer, CubaLIF)
    _, (synapse, lif) = layer(torch.ones(1, 2))
    # I = dt/tau_syn * w_in * S = 0.2; v = dt/tau_mem * r * I = 0.1 * 0.4 = 0.04
    torch.testing.assert_close(synapse.v, torch.full((1, 2), 0.2))
    torch.testing.assert_close(lif.v, torch.full((1, 2), 0.04))
    _, (synapse, lif) = layer(torch.zeros(1, 2), (synapse, lif))
    # I = 0.2 * (1 - 0.2) = 0.16; v = 0.04 + 0.1 * (-0.04 + 2 * 0.16) = 0.068
    torch.testing.assert_close(synapse.v, torch.full((1, 2), 0.16))
    torch.testing.assert_close(lif.v, torch.full((1, 2), 0.068))


def test_foreign_input_weights_of_li_and_cuba_li_become_an_input_scale():
    li = from_nir(nir.LI(tau=np.full(2, 0.01), r=np.full(2, 3.0), v_leak=np.zeros(2)))
    assert isinstance(li, InputScale) and isinstance(li.layer, norse.LIBoxCell)
    out, _ = li(torch.ones(1, 2))
    torch.testing.assert_close(out, torch.full((1, 2), 0.3))  # dt/tau * r * S
    cuba = from_nir(
        nir.CubaLI(
            tau_syn=np.full(2, 0.005),
            tau_mem=np.full(2, 0.01),
            r=np.full(2, 2.0),
            v_leak=np.zeros(2),
            w_in=np.ones(2),
        )
    )
    assert isinstance(cuba, InputScale) and isinstance(cuba.layer, norse.LICell)
    out, _ = cuba(torch.ones(1, 2))
    torch.testing.assert_close(out, torch.full((1, 2), 0.04))  # as the CubaLIF above


def test_if_node_adds_r_times_the_input_per_step_at_any_dt():
    node = nir.IF(r=np.ones(2), v_threshold=np.ones(2))
    for dt in (1e-4, 0.001, 0.5):
        layer = from_nir(node, dt=dt)
        assert type(layer) is norse.IAFCell  # r = 1: Norse's own cell
        spikes, state = layer(torch.full((1, 2), 0.6))
        assert spikes.sum() == 0
        torch.testing.assert_close(state.v, torch.full((1, 2), 0.6))
        spikes, _ = layer(torch.full((1, 2), 0.6), state)
        assert spikes.tolist() == [[1.0, 1.0]]
    weighted = from_nir(nir.IF(r=np.array([0.5, 2.0]), v_threshold=np.ones(2)))
    assert isinstance(weighted, IF) and isinstance(weighted, norse.IAFCell)
    spikes, state = weighted(torch.full((1, 2), 0.6))
    assert spikes.tolist() == [[0.0, 1.0]]
    torch.testing.assert_close(state.v, torch.tensor([[0.3, 0.0]]))


def test_reset_method_is_honoured_by_every_spiking_node():
    """reset_subtract: v - v_threshold after a spike, for LIF, CubaLIF and IF nodes
    (Norse 1.1 ignored it for LIF and IF; this package ignored it for CubaLIF)."""
    n = 2
    nodes = {
        "LIF": nir.LIF(
            tau=np.full(n, 0.01),
            r=np.ones(n),
            v_leak=np.zeros(n),
            v_threshold=np.ones(n),
        ),
        "CubaLIF": nir.CubaLIF(
            tau_syn=np.full(n, 0.005),
            tau_mem=np.full(n, 0.01),
            r=np.ones(n),
            v_leak=np.zeros(n),
            v_threshold=np.ones(n),
            w_in=np.full(n, 5.0),
        ),
        "IF": nir.IF(r=np.ones(n), v_threshold=np.ones(n)),
    }
    for name, node in nodes.items():
        values = {}
        for reset in (None, reset_subtract):
            kwargs = {} if reset is None else {"reset_method": reset}
            layer = from_nir(nir.NIRGraph.from_list(node), **kwargs)[0]
            state = None
            for _ in range(3):  # strong enough for one spike in the first step
                spikes, state = layer(torch.full((1, n), 40.0), state)
                if spikes.sum() > 0:
                    break
            assert spikes.sum() == n, name
            voltage = state[1].v if name == "CubaLIF" else state.v
            values[reset] = voltage
        assert values[None].tolist() == [[0.0] * n], name  # back to v_reset = 0
        assert (values[reset_subtract] > 0.5).all(), name  # v - 1 with v well above 1


def test_norse_1_1_to_tensor():
    a = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    assert torch.equal(_to_tensor(a), torch.tensor(a))
    assert _to_tensor(np.ones(2)).dtype == torch.float32  # float64 arrays too
    t = torch.tensor([0.3, -12.0], dtype=torch.float64)
    assert _to_tensor(t) is t  # tensors as they are
    assert _to_tensor(2).dtype == torch.float32 and _to_tensor(2).item() == 2.0


def test_time_constants_norse_1_1_imported_warn_instead_of_failing():
    """Norse 1.1 imports any time constant (its tests use random ones); the import
    warns and builds the layer with them."""
    node = nir.LIF(
        tau=np.array([-0.5, 0.01]),
        r=np.ones(2),
        v_leak=np.zeros(2),
        v_threshold=np.ones(2),
    )
    with pytest.warns(RuntimeWarning, match="node 'lif': tau should hold positive"):
        model = from_nir(nir.NIRGraph.from_list(node))
    torch.testing.assert_close(model.lif.p.tau_mem_inv, torch.tensor([-2.0, 100.0]))
    spikes, _ = model(torch.ones(1, 2))
    assert spikes.shape == (1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_nir(nir.NIRGraph.from_list(node), ignore_warnings=True)


def test_sum_pooling_with_padding_and_flatten_of_unknown_rank():
    pool = from_nir(
        nir.SumPool2d(
            kernel_size=np.array([2, 2]),
            stride=np.array([2, 2]),
            padding=np.array([1, 1]),
        )
    )
    assert isinstance(pool, SumPool2d)
    out = pool(torch.ones(1, 1, 2, 2))
    assert out.tolist() == [[[[1.0, 1.0], [1.0, 1.0]]]]  # each window holds one 1
    flatten = from_nir(nir.Flatten(input_type=None, start_dim=0))
    assert flatten(torch.ones(2, 3, 4)).shape == (2, 12)


def test_branching_graph_is_wired_by_nirtorch():
    generator = np.random.default_rng(0)
    w_a = generator.normal(size=(2, 3)).astype(np.float32)
    w_b = generator.normal(size=(2, 3)).astype(np.float32)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "a": nir.Affine(weight=w_a, bias=np.zeros(2, np.float32)),
            "b": nir.Linear(weight=w_b),
            "li": nir.CubaLI(
                tau_syn=np.full(2, 0.005),
                tau_mem=np.full(2, 0.01),
                r=np.ones(2),
                v_leak=np.zeros(2),
                w_in=np.full(2, 5.0),
            ),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[
            ("input", "a"),
            ("input", "b"),
            ("a", "li"),
            ("b", "li"),
            ("li", "output"),
        ],
    )
    model = from_nir(graph)
    assert not isinstance(model, norse.SequentialState)
    x = torch.randn(4, 3)
    current = x @ torch.from_numpy(w_a).T + x @ torch.from_numpy(w_b).T
    reference = norse.LICell()
    expected, ref_state = reference(current)
    out, state = model(x)
    torch.testing.assert_close(out, expected)
    out, state = model(x, state)
    torch.testing.assert_close(out, reference(current, ref_state)[0])


def test_from_a_file_path(tmp_path):
    model = norse.SequentialState(torch.nn.Linear(2, 2), norse.LIBoxCell())
    nir.write(tmp_path / "g.nir", norse.to_nir(model))
    imported = norse.from_nir(str(tmp_path / "g.nir"))
    assert isinstance(imported[1], norse.LIBoxCell)


def test_unsupported_nodes_and_bad_arguments():
    with pytest.raises(ValueError, match="no module for NIR's Threshold node"):
        from_nir(nir.Threshold(threshold=np.ones(2)))
    graph = nir.NIRGraph.from_list(
        nir.Linear(weight=np.ones((2, 2))), nir.I(r=np.ones(2))
    )
    with pytest.raises(ValueError, match=r"node 'i'.*NIR's I node"):
        from_nir(graph)
    with pytest.raises(TypeError, match="reset_method must be a reset function"):
        from_nir(graph, reset_method="subtract")
    with pytest.raises(ValueError, match="dt must be a positive float"):
        from_nir(graph, dt=0)
    with pytest.raises(TypeError, match="takes a NIR graph"):
        from_nir(42)


def test_infinite_dt_is_rejected():
    with pytest.raises(ValueError, match=r"dt must be a positive float \(finite"):
        from_nir(nir.IF(r=np.ones(2), v_threshold=np.ones(2)), dt=float("inf"))


def test_v_reset_of_if_and_lif_nodes_is_honoured():
    """A spiking IF or LIF node returns to its own v_reset after a spike (Norse 1.1
    dropped v_reset: its cells reset to 0)."""
    n = 2
    nodes = {
        "LIF": nir.LIF(
            tau=np.full(n, 0.01),
            r=np.ones(n),
            v_leak=np.zeros(n),
            v_threshold=np.ones(n),
            v_reset=np.full(n, -0.5),
        ),
        "IF": nir.IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.full(n, -0.5)),
    }
    for name, node in nodes.items():
        layer = from_nir(nir.NIRGraph.from_list(node))[0]
        spikes, state = layer(torch.full((1, n), 40.0))
        assert spikes.sum() == n, name
        assert state.v.tolist() == [[-0.5] * n], name
