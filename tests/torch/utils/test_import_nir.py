"""NIR import, and round trips export -> nir.write -> nir.read -> import."""

import numpy as np
import pytest
import torch

import norse.torch as norse

nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")

from norse.torch.utils.export_nir import InputScale, SumPool2d  # noqa: E402
from norse.torch.utils.import_nir import from_nir  # noqa: E402


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
    assert [type(m).__name__ for m in imported] == [
        "Conv2d",
        "LIFCell",
        "LPPool2d",
        "Flatten",
        "Linear",
        "LIFCell",
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
            v_leak=np.zeros(3),
            v_threshold=np.full(3, 0.7),
            w_in=np.full(3, 4.0),  # = tau_syn / dt: no extra scaling
        ),
    )
    model = from_nir(graph, dt=0.001)
    cell = model[1]
    assert isinstance(cell, norse.LIFCell) and cell.dt == 0.001
    assert cell.p.tau_syn_inv.item() == pytest.approx(250.0)  # uniform -> scalar
    torch.testing.assert_close(cell.p.tau_mem_inv, torch.tensor([100.0, 50.0, 25.0]))
    assert cell.p.v_th.item() == pytest.approx(0.7)


def test_foreign_input_weights_become_an_input_scale():
    """A CubaLIF with w_in = 1 and r = 2 (another simulator's convention): the
    imported layer follows NIR's equations, checked by hand for one step."""
    node = nir.CubaLIF(
        tau_syn=np.full(2, 0.005),
        tau_mem=np.full(2, 0.01),
        r=np.full(2, 2.0),
        v_leak=np.zeros(2),
        v_threshold=np.full(2, 10.0),
        w_in=np.ones(2),
    )
    layer = from_nir(node, dt=0.001)
    assert isinstance(layer, InputScale) and isinstance(layer.layer, norse.LIFCell)
    _, state = layer(torch.ones(1, 2))
    # NIR Euler: I = dt/tau_syn * w_in * S = 0.2; v = dt/tau_mem * r * I = 0.04.
    # Norse keeps r * I as its current, before the decay of this step (x 0.8).
    torch.testing.assert_close(state.v, torch.full((1, 2), 0.04))
    torch.testing.assert_close(state.i, torch.full((1, 2), 0.4 * 0.8))


def test_if_node_scale_and_dt():
    node = nir.IF(r=np.ones(2), v_threshold=np.ones(2))
    layer = from_nir(node, dt=0.5)  # dv = dt * r * S = 0.5 S
    assert isinstance(layer, InputScale)
    spikes, state = layer(torch.ones(1, 2))
    assert spikes.sum() == 0 and state.v.tolist() == [[0.5, 0.5]]
    spikes, _ = layer(torch.full((1, 2), 1.5), state)
    assert spikes.tolist() == [[1.0, 1.0]]


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
    with pytest.raises(ValueError, match="tau must hold positive"):
        from_nir(nir.LI(tau=np.zeros(2), r=np.ones(2), v_leak=np.zeros(2)))
    with pytest.raises(ValueError, match="dt must be a positive float"):
        from_nir(graph, dt=0)
    with pytest.raises(TypeError, match="takes a NIR graph"):
        from_nir(42)


def test_infinite_dt_is_rejected():
    with pytest.raises(ValueError, match=r"dt must be a positive float \(finite"):
        from_nir(nir.IF(r=np.ones(2), v_threshold=np.ones(2)), dt=float("inf"))
