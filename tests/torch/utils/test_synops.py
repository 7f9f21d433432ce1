"""SynOps, sparsity and energy (norse.torch.utils.synops): hand-computed counts on tiny
layers, a brute-force check of convolutions, agreement with NeuroBench 2.3, the
conventions where NeuroBench differs (both sides), CSV round trip and the plot."""

import csv
import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import norse.torch as norse  # noqa: E402
from norse.torch.utils.synops import (  # noqa: E402
    CSV_COLUMNS,
    HOROWITZ_45NM_FP32,
    HOROWITZ_45NM_INT8,
    EnergyModel,
    SynOpCounter,
    SynOpsResult,
    count_synops,
    neurobench_model,
)


def _linear(weight, bias=False):
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias)
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer


def _one(result):
    assert len(result.layers) == 1
    return result.layers[0]


# -- hand-computed counts --------------------------------------------------------


def test_linear_with_two_of_three_inputs_spiking_makes_two_times_out_acs():
    layer = _linear(torch.randn(4, 3) + 10)  # no zero weight
    result = count_synops(layer, torch.tensor([[[1.0, 0.0, 1.0]]]))  # (T, B, 3)
    row = _one(result)
    assert (row.effective_acs, row.effective_macs) == (8.0, 0.0)
    assert row.dense_ops == 12.0  # every input, every synapse
    assert (row.input_spikes, row.inputs) == (2.0, 3.0)
    assert row.calls == 1 and row.kind == "Linear" and row.name == "(root)"
    assert result.synops == 8.0 and result.samples == 1


def test_dense_input_makes_macs_of_its_non_zero_entries():
    layer = _linear(torch.ones(4, 3))
    row = _one(count_synops(layer, torch.tensor([[[0.5, 0.0, 2.0]]])))
    assert (row.effective_acs, row.effective_macs, row.dense_ops) == (0.0, 8.0, 12.0)


def test_signed_spikes_are_accumulates_as_in_neurobench():
    layer = _linear(torch.ones(2, 3))
    row = _one(count_synops(layer, torch.tensor([[[-1.0, 0.0, 1.0]]])))
    assert (row.effective_acs, row.effective_macs) == (4.0, 0.0)


def test_zero_weights_are_no_effective_operations_but_dense_ones():
    weight = torch.ones(4, 3)
    weight[:, 2] = 0.0  # input 2 reaches nobody
    weight[0, 0] = 0.0  # input 0 reaches three outputs
    row = _one(count_synops(_linear(weight), torch.tensor([[[1.0, 1.0, 1.0]]])))
    assert row.effective_acs == 3 + 4 + 0
    assert row.dense_ops == 12.0


def test_bias_is_no_synaptic_operation():
    spikes = torch.tensor([[[1.0, 0.0, 1.0]]])
    with_bias = count_synops(_linear(torch.ones(4, 3), bias=True), spikes)
    assert with_bias.synops == 8.0 and with_bias.dense_ops == 12.0


def test_counts_are_summed_over_time_and_divided_by_the_batch():
    layer = _linear(torch.ones(4, 3))
    step = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # 2 + 1 spikes
    result = count_synops(layer, step.expand(5, 2, 3))  # T = 5, batch 2
    assert result.samples == 2
    assert result.effective_acs == 5 * (2 + 1) * 4 / 2
    assert result.dense_ops == 5 * 3 * 4
    assert result.input_spikes == 5 * 3 / 2


def test_batch_first_models_take_batch_dim_0():
    layer = _linear(torch.ones(4, 3))
    spikes = torch.tensor([[1.0, 0.0, 1.0]] * 4)  # (batch 4, 3)
    assert count_synops(layer, spikes, batch_dim=0).effective_acs == 8.0
    assert count_synops(layer, spikes.unsqueeze(0)).effective_acs == 8.0


def test_conv1d_counts_only_connections_inside_the_input():
    conv = torch.nn.Conv1d(1, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    # inputs 0 and 3 sit at the edges: each reaches 2 output positions per channel
    spikes = torch.tensor([[[1.0, 0.0, 0.0, 1.0]]])  # (N=1, C=1, L=4)
    row = _one(count_synops(conv, spikes, batch_dim=0))
    assert row.effective_acs == 2 * 2 * 2
    assert row.dense_ops == 2 * (2 + 3 + 3 + 2)  # zero padding is no connection
    # an unbatched input (C, L) counts the same
    assert _one(count_synops(conv, spikes[0], batch_dim=0)).effective_acs == 8.0


def test_circular_padding_repeats_inputs_and_their_operations():
    conv = torch.nn.Conv1d(1, 1, 3, padding=1, padding_mode="circular", bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    row = _one(count_synops(conv, torch.full((1, 1, 4), 0.5), batch_dim=0))
    assert (row.effective_macs, row.dense_ops) == (12.0, 12.0)


def test_conv2d_and_lconv2d_over_time():
    conv = torch.nn.Conv2d(1, 1, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    image = torch.full((1, 1, 3, 3), 0.5)
    assert _one(count_synops(conv, image, batch_dim=0)).effective_macs == 4 * 4
    lconv = norse.LConv2d(1, 1, 2)
    with torch.no_grad():
        lconv.weight.fill_(1.0)
    sequence = torch.full((3, 2, 1, 3, 3), 0.5)  # (T=3, N=2, C, H, W)
    row = _one(count_synops(lconv, sequence))
    assert (row.effective_macs, row.dense_ops) == (3 * 16.0, 3 * 16.0)


@pytest.mark.parametrize(
    "options",
    [
        dict(stride=2, padding=1),
        dict(dilation=2, padding=2),
        dict(groups=2, padding="same"),
        dict(stride=(1, 2), padding=(0, 1), padding_mode="reflect"),
    ],
)
def test_conv2d_effective_and_dense_ops_match_a_brute_force_count(options):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, **options)
    with torch.no_grad():
        conv.weight[conv.weight.abs() < 0.1] = 0.0  # some pruned weights
    spikes = (torch.rand(3, 4, 7, 8) < 0.3).float()
    row = _one(count_synops(conv, spikes, batch_dim=0))

    def brute(x, w):  # every output sums one term per (input, weight) pair
        replaced = {"weight": w.double(), "bias": torch.zeros(6, dtype=torch.float64)}
        out = torch.func.functional_call(conv, replaced, (x.double(),))
        return out.sum().item()

    assert row.effective_acs == brute(spikes, (conv.weight != 0).float()) / 3
    assert (
        row.dense_ops
        == brute(torch.ones_like(spikes), torch.ones_like(conv.weight)) / 3
    )


def test_membrane_updates_are_one_per_neuron_and_step_in_every_form():
    x = torch.rand(5, 2, 3)  # T = 5, batch 2, 3 neurons
    for model in (norse.LIF(), norse.Lift(norse.LIFCell()), norse.LI()):
        result = count_synops(model, x)
        assert result.membrane_updates == 5 * 3, type(model).__name__
        assert result.synops == 0.0


def test_activation_sparsity_is_the_fraction_of_zero_outputs():
    torch.manual_seed(0)
    lif = norse.LIF(norse.LIFParameters(v_th=torch.tensor(0.05)))
    x = torch.rand(20, 4, 6)
    result = count_synops(lif, x)
    spikes, _ = lif(x)
    expected = 1.0 - spikes.count_nonzero().item() / spikes.numel()
    assert 0.0 < expected < 1.0
    assert result.activation_sparsity == pytest.approx(expected)
    assert result.output_spikes == spikes.count_nonzero().item() / 4


def test_relu_outputs_count_towards_sparsity_as_in_neurobench():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(
            torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 0, 0], [2, 0, 0]])
        )
        model[0].bias.zero_()
    result = count_synops(model, torch.tensor([[1.0, 0.0, 0.0]]), batch_dim=0)
    assert result.activation_sparsity == 0.5  # outputs 1, 0, 0, 2
    assert result.membrane_updates == 0.0  # an activation has no membrane


def _recurrent_cell(autapses, recurrent=None):
    return norse.LIFRecurrentCell(
        3,
        4,
        p=norse.LIFParameters(v_th=torch.tensor(0.05)),
        input_weights=torch.ones(4, 3),
        recurrent_weights=torch.full((4, 4), 0.5) if recurrent is None else recurrent,
        autapses=autapses,
    )


@pytest.mark.parametrize("autapses", [False, True])
def test_recurrent_cell_counts_input_and_recurrent_synapses(autapses):
    torch.manual_seed(0)
    cell = _recurrent_cell(autapses)
    x = (torch.rand(10, 2, 3) < 0.5).float()
    result = count_synops(norse.Lift(cell), x)
    spikes, _ = norse.Lift(cell)(x)
    fed_back = spikes[:-1].count_nonzero().item()  # each step feeds back the last
    assert fed_back > 0
    per_spike = 4 if autapses else 3  # no synapse onto itself without autapses
    inputs = x.count_nonzero().item()
    assert result.effective_acs == (inputs * 4 + fed_back * per_spike) / 2
    assert result.dense_ops == 10 * 2 * (3 * 4 + 4 * per_spike) / 2
    assert result.input_spikes == (inputs + fed_back) / 2
    assert result.membrane_updates == 10 * 4
    # the time module counts the same (its initial spikes are zeros)
    module = norse.LIFRecurrent(3, 4, p=cell.p, autapses=autapses)
    module.load_state_dict(cell.state_dict())
    assert count_synops(module, x).layers[0].effective_acs == result.effective_acs


def test_recurrent_spikes_of_a_given_state_count_and_zero_weights_do_not():
    cell = _recurrent_cell(False, recurrent=torch.zeros(4, 4))
    spikes_in = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    state = norse.LIFState(z=spikes_in, v=torch.zeros(1, 4), i=torch.zeros(1, 4))
    x = torch.zeros(1, 3)
    with SynOpCounter(cell, batch_dim=0) as counter:
        cell(x, state)
    row = counter.result().layers[0]
    assert row.input_spikes == 2.0  # the state's two spikes reach the layer
    assert row.effective_acs == 0.0  # ... through zero weights
    assert row.dense_ops == 3 * 4 + 4 * 3
    cell = _recurrent_cell(False)
    with SynOpCounter(cell, batch_dim=0) as counter:
        cell(x, state=state)  # as a keyword too
    assert counter.result().effective_acs == 2 * 3


def test_li_linear_cell_counts_its_input_weights():
    cell = norse.LILinearCell(3, 5)
    with torch.no_grad():
        cell.input_weights.fill_(1.0)
    result = count_synops(cell, torch.tensor([[1.0, 0.0, 1.0]]), batch_dim=0)
    assert (result.effective_acs, result.membrane_updates) == (10.0, 5.0)


def test_lif_encoder_membranes_are_counted():
    encoder = norse.ConstantCurrentLIFEncoder(7)
    result = count_synops(encoder, torch.rand(2, 3), batch_dim=0)
    assert result.membrane_updates == 7 * 3


def test_trainable_per_neuron_parameters_are_no_unknown_weights():
    tau = torch.nn.Parameter(torch.full((2, 3), 100.0))  # one per neuron of (2, 3)
    lif = norse.LIF(norse.LIFParameters(tau_mem_inv=tau))
    for model in (lif, norse.SequentialState(lif)):
        result = count_synops(model, torch.rand(4, 1, 2, 3))
        assert result.uncounted == () and result.membrane_updates == 4 * 6


def test_a_module_used_twice_is_one_row_with_two_calls():
    layer = _linear(torch.ones(2, 3))

    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x):
            return self.layer(x) + self.layer(x)

    result = count_synops(Twice(), torch.tensor([[[1.0, 0.0, 1.0]]]))
    assert [(row.name, row.calls) for row in result.layers] == [("layer", 2)]
    assert result.effective_acs == 2 * 4


def test_sequential_state_and_lift_rows_in_call_order():
    torch.manual_seed(0)
    model = norse.SequentialState(
        norse.Lift(torch.nn.Conv2d(1, 2, 3)),
        norse.LIF(),
        norse.Lift(torch.nn.MaxPool2d(2)),
        norse.Lift(torch.nn.Flatten()),
        torch.nn.Linear(2 * 2 * 2, 3),
        norse.LI(),
    )
    result = count_synops(model, torch.rand(4, 2, 1, 6, 6))
    names = [row.name for row in result.layers]
    assert names == ["0.lifted_module", "1", "4", "5"]
    assert result.layers[0].effective_macs > 0 and result.layers[0].effective_acs == 0
    assert result.layers[2].effective_macs == 0  # spikes after the LIF layer


def test_unknown_weight_layers_are_listed_not_counted():
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 3),
        torch.nn.Unflatten(1, (1, 3)),
        torch.nn.ConvTranspose1d(1, 1, 2),
    )
    result = count_synops(model, torch.rand(2, 3), batch_dim=0)
    assert result.uncounted == ("2",)
    assert [row.name for row in result.layers] == ["0"]
    assert "not counted" in str(result) and "2" in str(result).splitlines()[-1]


def test_counting_changes_no_output_and_removes_its_hooks():
    torch.manual_seed(0)
    model = norse.SequentialState(norse.Lift(torch.nn.Linear(3, 4)), norse.LIF())
    x = (torch.rand(6, 2, 3) < 0.4).float()
    expected, _ = model(x)
    with SynOpCounter(model) as counter:
        out, _ = model(x)
    torch.testing.assert_close(out, expected)
    assert not any(module._forward_hooks for module in model.modules())
    assert not model._forward_pre_hooks
    counter.attach()
    model(x)
    counter.detach()
    assert counter.result().samples == 4  # two runs, two samples each
    counter.reset()
    with pytest.raises(ValueError, match="samples"):
        counter.result()


def test_counting_works_in_inference_mode_and_with_gradients():
    conv = torch.nn.Conv1d(1, 1, 2)
    x = torch.full((1, 1, 3), 0.5)
    with torch.inference_mode():
        assert count_synops(conv, x, batch_dim=0).effective_macs == 4.0
    with SynOpCounter(conv, batch_dim=0) as counter:
        conv(x.requires_grad_()).sum().backward()
    assert counter.result().effective_macs == 4.0


# -- energy ------------------------------------------------------------------------


def test_energy_defaults_to_horowitz_45nm_fp32_and_can_be_replaced():
    layer = _linear(torch.ones(4, 3))
    spikes = torch.tensor([[[1.0, 0.0, 1.0]]])
    result = count_synops(layer, spikes)
    assert result.energy is HOROWITZ_45NM_FP32
    assert (HOROWITZ_45NM_FP32.ac_pj, HOROWITZ_45NM_FP32.mac_pj) == (0.9, 4.6)
    assert "Horowitz" in HOROWITZ_45NM_FP32.source
    assert result.energy_pj == pytest.approx(8 * 0.9)
    assert result.energy_joules == pytest.approx(8 * 0.9e-12)
    mine = EnergyModel(ac_pj=1.0, mac_pj=10.0, membrane_update_pj=0.5, source="mine")
    model = norse.SequentialState(layer, norse.LIF())
    dense = torch.tensor([[[0.5, 0.0, 1.0]]])
    assert count_synops(model, dense, energy=mine).energy_pj == 8 * 10.0 + 4 * 0.5
    int8 = count_synops(layer, spikes, energy=HOROWITZ_45NM_INT8)
    assert int8.energy_pj == pytest.approx(8 * 0.03)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(ac_pj=-1.0), ValueError, "ac_pj"),
        (dict(mac_pj=float("nan")), ValueError, "mac_pj"),
        (dict(membrane_update_pj="1"), TypeError, "membrane_update_pj"),
        (dict(ac_pj=True), TypeError, "ac_pj"),
        (dict(source=3), TypeError, "source"),
    ],
)
def test_bad_energies_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        EnergyModel(**kwargs)


def test_bad_arguments_name_the_argument():
    layer = torch.nn.Linear(3, 2)
    with pytest.raises(TypeError, match="model"):
        SynOpCounter("model")
    with pytest.raises(TypeError, match="batch_dim"):
        SynOpCounter(layer, batch_dim=1.0)
    with pytest.raises(TypeError, match="energy"):
        SynOpCounter(layer, energy=0.9)
    with pytest.raises(TypeError, match="activation_types"):
        SynOpCounter(layer, activation_types=[torch.nn.ReLU])
    with pytest.raises(ValueError, match="batch_dim=3"):
        count_synops(layer, torch.ones(2, 3), batch_dim=3)
    with pytest.raises(ValueError, match="samples"):
        SynOpCounter(layer).result(samples=0)
    with pytest.raises(TypeError, match="net"):
        neurobench_model(None)
    counter = SynOpCounter(layer).attach()
    with pytest.raises(RuntimeError, match="already attached"):
        counter.attach()
    counter.detach()


# -- output: table, dict, CSV, plot ------------------------------------------------------


def _example_result():
    torch.manual_seed(0)
    model = norse.SequentialState(
        torch.nn.Linear(4, 8), norse.LIF(), torch.nn.Linear(8, 2), norse.LI()
    )
    return count_synops(model, torch.rand(5, 3, 4))


def test_table_and_dict():
    result = _example_result()
    text = str(result)
    for word in ("layer", "ACs", "MACs", "(total)", "Linear", "LIF", "Horowitz", "pJ"):
        assert word in text
    data = result.as_dict()
    json.dumps(data)  # plain values only
    assert data["samples"] == 3 and len(data["layers"]) == 4
    assert data["total"]["synops"] == result.synops
    assert data["total"]["energy_pj"] == pytest.approx(result.energy_pj)
    assert data["energy"]["mac_pj"] == 4.6
    assert set(data["layers"][0]) == set(CSV_COLUMNS) - {
        "samples",
        "ac_pj",
        "mac_pj",
        "membrane_update_pj",
    }
    assert result.as_neurobench()["SynapticOperations"]["Effective_MACs"] == (
        result.effective_macs
    )


def test_csv_round_trip(tmp_path):
    result = _example_result()
    path = result.to_csv(tmp_path / "cost.csv")
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row["layer"] for row in rows] == ["0", "1", "2", "3", "(total)"]
    assert float(rows[-1]["synops"]) == result.synops
    assert rows[0]["activation_sparsity"] == ""  # a Linear has no neuron outputs
    back = SynOpsResult.from_csv(path)
    assert back.layers == result.layers
    assert back.samples == result.samples
    assert (back.energy.ac_pj, back.energy.mac_pj) == (0.9, 4.6)
    assert back.energy_pj == result.energy_pj
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="other.csv"):
        SynOpsResult.from_csv(tmp_path / "other.csv")


def test_plot_draws_one_bar_group_per_synaptic_layer(tmp_path):
    result = _example_result()
    ax = result.plot(tmp_path / "cost.png")
    assert (tmp_path / "cost.png").stat().st_size > 1000
    assert [label.get_text() for label in ax.get_xticklabels()] == ["0", "2"]
    heights = [patch.get_height() for patch in ax.patches]
    assert heights[:2] == [result.layers[0].dense_ops, result.layers[2].dense_ops]
    plt.close("all")
    fig, ax = plt.subplots()
    assert result.plot(ax=ax, log=True) is ax and ax.get_yscale() == "log"
    plt.close("all")


# -- NeuroBench 2.3 ------------------------------------------------------------------


def _neurobench():
    pytest.importorskip("neurobench")
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics import static, workload
    from neurobench.models import TorchModel

    return Benchmark, static, workload, TorchModel


def _mlp():
    return norse.SequentialState(
        torch.nn.Linear(10, 16),
        norse.LIF(norse.LIFParameters(v_th=torch.tensor(0.1))),
        torch.nn.Linear(16, 3),
        norse.LI(),
    )


def _conv2d():
    p = norse.LIFParameters(v_th=torch.tensor(0.1))
    return norse.SequentialState(
        norse.Lift(torch.nn.Conv2d(2, 4, 3, padding=1)),
        norse.LIF(p),
        norse.Lift(torch.nn.MaxPool2d(2)),
        norse.Lift(
            torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, padding_mode="circular")
        ),
        norse.LIF(p),
        norse.Lift(torch.nn.Flatten()),
        norse.Lift(torch.nn.Linear(6 * 2 * 2, 3)),
        norse.LI(),
    )


def _conv1d():
    return norse.SequentialState(
        norse.Lift(torch.nn.Conv1d(2, 3, 3, dilation=2)),
        norse.LIF(norse.LIFParameters(v_th=torch.tensor(0.1))),
        norse.Lift(torch.nn.Flatten()),
        norse.Lift(torch.nn.Linear(3 * 4, 2)),
        norse.LI(),
    )


MODELS = {
    "mlp": (_mlp, (10,)),
    "conv2d": (_conv2d, (2, 8, 8)),
    "conv1d": (_conv1d, (2, 8)),
}


def _data(shape, spiking, samples=8, steps=6):
    """NeuroBench's layout: (samples, T, ...)."""
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(samples, steps, *shape, generator=generator)
    return (x < 0.3).float() if spiking else x


def _prune_and_scale(net):
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)):
                module.weight.mul_(5.0)
                module.weight[0].zero_()  # pruned synapses: NeuroBench skips them too
    return net.eval()


def _run_neurobench(model, x, preprocessors=(), postprocessors=()):
    Benchmark, static, workload, _ = _neurobench()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, torch.zeros(len(x), dtype=torch.long)),
        batch_size=4,
    )
    metrics = [
        [static.ParameterCount, static.Footprint],
        [
            workload.SynapticOperations,
            workload.ActivationSparsity,
            workload.MembraneUpdates,
        ],
    ]
    benchmark = Benchmark(
        model, loader, list(preprocessors), list(postprocessors), metrics
    )
    return benchmark.run(quiet=True)


@pytest.mark.parametrize("spiking", [True, False], ids=["spike-input", "dense-input"])
@pytest.mark.parametrize("name", list(MODELS))
def test_synops_and_sparsity_agree_with_neurobench(name, spiking):
    _, _, _, TorchModel = _neurobench()
    torch.manual_seed(0)
    make, shape = MODELS[name]
    net = _prune_and_scale(make())
    x = _data(shape, spiking)
    ours = count_synops(net, x.transpose(0, 1))
    ops = ours.as_neurobench()["SynapticOperations"]
    # the counts are not trivial: spikes reach the deeper layers, the input decides
    # whether the first layer accumulates or multiplies
    assert ours.layers[2].input_spikes > 0
    assert (ops["Effective_MACs"] == 0) == spiking and ops["Effective_ACs"] > 0
    assert 0 < ours.activation_sparsity < 1

    # NeuroBench's own TorchModel: data (batch, T, ...) transposed by a preprocessor
    plain = _run_neurobench(
        TorchModel(net),
        x,
        preprocessors=[lambda data: (data[0].transpose(0, 1), data[1])],
        postprocessors=[lambda output: output[0]],
    )
    assert plain["SynapticOperations"] == pytest.approx(ops, rel=0, abs=1e-9)
    # ... whose hooks see no activation of this package's modules (ReLU, Sigmoid and
    # snnTorch neurons only): sparsity and membrane updates read 0
    assert plain["ActivationSparsity"] == 0.0 and plain["MembraneUpdates"] == 0
    assert ours.membrane_updates > 0

    # with neurobench_model its hooks see the spikes of the neuron modules
    wrapped = _run_neurobench(neurobench_model(net), x)
    assert wrapped["SynapticOperations"] == pytest.approx(ops, rel=0, abs=1e-9)
    assert wrapped["ActivationSparsity"] == pytest.approx(ours.activation_sparsity)
    # NeuroBench's MembraneUpdates still reads snnTorch's `mem` attribute only
    assert wrapped["MembraneUpdates"] == 0


def test_neurobench_membrane_updates_of_snntorch_neurons_follow_our_convention():
    """NeuroBench counts one update per neuron and step for snnTorch neurons (whose
    membranes change at every step): T x neurons per sample, as ours for this package's."""
    Benchmark, _, workload, _ = _neurobench()
    snn = pytest.importorskip("snntorch")
    from neurobench.models import SNNTorchModel

    torch.manual_seed(0)
    snntorch_net = torch.nn.Sequential(
        torch.nn.Linear(10, 16),
        snn.Leaky(beta=0.9, init_hidden=True),
        torch.nn.Linear(16, 3),
        snn.Leaky(beta=0.9, init_hidden=True, output=True),
    )
    x = _data((10,), spiking=False)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, torch.zeros(8, dtype=torch.long)),
        batch_size=4,
    )
    benchmark = Benchmark(
        SNNTorchModel(snntorch_net), loader, [], [], [[], [workload.MembraneUpdates]]
    )
    theirs = benchmark.run(quiet=True)["MembraneUpdates"]
    ours = count_synops(_mlp(), x.transpose(0, 1)).membrane_updates
    assert theirs == ours == 6 * (16 + 3)


def test_neurobench_does_not_count_the_weights_of_recurrent_neuron_modules():
    """Input and recurrent weights held by a neuron module (LIFRecurrent, LIFRecurrentCell)
    are synapses here; NeuroBench hooks torch layers only and counts nothing."""
    _, _, _, TorchModel = _neurobench()
    torch.manual_seed(0)
    net = norse.SequentialState(
        norse.LIFRecurrent(10, 8, p=norse.LIFParameters(v_th=torch.tensor(0.1))),
        torch.nn.Linear(8, 2),
        norse.LI(),
    ).eval()
    x = _data((10,), spiking=True)
    ours = count_synops(net, x.transpose(0, 1))
    theirs = _run_neurobench(
        TorchModel(net),
        x,
        preprocessors=[lambda data: (data[0].transpose(0, 1), data[1])],
        postprocessors=[lambda output: output[0]],
    )["SynapticOperations"]
    recurrent, linear = ours.layers[0], ours.layers[1]
    assert recurrent.kind == "LIFRecurrent" and recurrent.effective_acs > 0
    assert theirs["Effective_ACs"] == linear.effective_acs  # the Linear only
    assert theirs["Dense"] == linear.dense_ops
    assert ours.dense_ops == linear.dense_ops + 6 * (10 * 8 + 8 * 7)


def test_a_norse_network_runs_in_the_neurobench_harness():
    """Benchmark with the torch model wrapper, static and workload metrics."""
    Benchmark, static, workload, _ = _neurobench()
    torch.manual_seed(0)
    net = _prune_and_scale(_mlp())
    x = _data((10,), spiking=True, samples=12)
    labels = torch.arange(12) % 3
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, labels), batch_size=5
    )
    benchmark = Benchmark(
        neurobench_model(net),
        loader,
        [],
        [lambda voltages: voltages.max(1).values.argmax(1)],  # (batch, T, 3) -> class
        [
            [static.ParameterCount, static.Footprint, static.ConnectionSparsity],
            [workload.ClassificationAccuracy, workload.SynapticOperations],
        ],
    )
    results = benchmark.run(quiet=True)
    assert results["ParameterCount"] == sum(p.numel() for p in net.parameters())
    parameters = sum(p.numel() * p.element_size() for p in net.parameters())
    assert results["Footprint"] >= parameters  # plus the neuron parameter buffers
    pruned = 10 + 16  # one output row of each Linear
    assert results["ConnectionSparsity"] == pytest.approx(pruned / (160 + 48), abs=1e-3)
    with torch.no_grad():
        voltages, _ = net(x.transpose(0, 1))
    accuracy = (voltages.max(0).values.argmax(1) == labels).float().mean().item()
    assert results["ClassificationAccuracy"] == pytest.approx(accuracy)
    ours = count_synops(net, x.transpose(0, 1)).as_neurobench()["SynapticOperations"]
    assert results["SynapticOperations"] == pytest.approx(ours)
    assert math.isfinite(results["SynapticOperations"]["Effective_ACs"])
