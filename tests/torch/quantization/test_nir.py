"""NIR export of quantised networks: integer weights with their scales, integer
thresholds, and a graph that ``from_nir`` runs as the quantised network."""

import numpy as np
import pytest
import torch

import norse.torch as norse
from norse.torch.functional.lif import LIFParameters
from norse.torch.quantization import (
    QuantizationConfig,
    quantize,
    quantized_layers,
    set_state_quantization,
)

nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")


def _network(seed=0):
    torch.manual_seed(seed)
    model = norse.SequentialState(
        norse.Lift(torch.nn.Conv2d(2, 4, 3)),
        norse.LIF(LIFParameters(v_th=torch.tensor(0.7), v_reset=torch.tensor(-0.1))),
        torch.nn.Flatten(2),
        norse.Lift(torch.nn.Linear(4 * 6 * 6, 5)),
        norse.LI(),
    )
    with torch.no_grad():
        model[0].lifted_module.weight.mul_(2.0)
    return model


@pytest.fixture(params=[8, 4], ids=["int8", "int4"])
def exported(request):
    x = torch.rand(30, 3, 2, 8, 8) * 2
    config = QuantizationConfig(weight_bits=request.param)
    quantized = quantize(_network(), config, calibration_data=x).eval()
    return quantized, norse.to_nir(quantized, sample_data=x), x


def test_graph_has_integer_weights_and_scale_nodes(exported):
    quantized, graph, _ = exported
    assert list(graph.nodes) == [
        "input",
        "0",
        "0_scale",
        "1",
        "2",
        "3",
        "3_scale",
        "4",
        "output",
    ]
    assert graph.edges[:3] == [("input", "0"), ("0", "0_scale"), ("0_scale", "1")]
    conv, linear = quantized[0].lifted_module, quantized[3].lifted_module
    for key, layer in (("0", conv), ("3", linear)):
        node, scale = graph.nodes[key], graph.nodes[f"{key}_scale"]
        ints = layer.integer_parameters()
        assert node.weight.dtype == np.int8 and node.bias.dtype == np.int32
        assert np.array_equal(node.weight, ints["weight"].numpy())
        assert np.abs(node.weight).max() <= 2 ** (layer.weight_bits - 1) - 1
        assert node.metadata["weight_bits"] == layer.weight_bits
        # the scale node: requantisation factor M 2**-r per output channel
        factor = ints["multiplier"].double() * 2.0 ** -ints["shift"].double()
        channel_scale = scale.scale.reshape(len(factor), -1)
        assert np.all(channel_scale == factor.numpy()[:, None])
        assert np.array_equal(scale.metadata["multiplier"], ints["multiplier"].numpy())
        # the factor is weight scale * input LSB / state LSB
        expected = (
            ints["weight_scale"].double()
            * layer.input_format.scale
            / layer.output_format.scale
        )
        assert torch.equal(factor, expected)


def test_neurons_have_integer_thresholds(exported):
    quantized, graph, _ = exported
    lif, li = quantized[1], quantized[4]
    node = graph.nodes["1"]
    assert isinstance(node, nir.CubaLIF) and isinstance(graph.nodes["4"], nir.CubaLI)
    ints = lif.integer_parameters()
    assert np.all(node.v_threshold == ints["v_th"].item())
    assert np.all(node.v_reset == ints["v_reset"].item())
    assert np.issubdtype(node.v_threshold.dtype, np.integer)
    assert ints["v_th"].item() == round(0.7 * 2**lif.format.frac_bits)
    assert node.metadata["state_frac_bits"] == lif.format.frac_bits
    decay = ints["decay_mem"].item() / 2**lif.decay_bits
    assert np.allclose(node.tau_mem, lif.dt / decay)
    assert graph.nodes["4"].metadata["state_bits"] == li.state_bits


def test_graph_survives_writing_and_reading(exported, tmp_path):
    _, graph, _ = exported
    path = tmp_path / "quantized.nir"
    nir.write(path, graph)
    read = nir.read(path)
    assert read.nodes["0"].weight.dtype == np.int8
    assert np.array_equal(read.nodes["0"].weight, graph.nodes["0"].weight)
    assert read.nodes["0_scale"].metadata["shift"].tolist() == (
        graph.nodes["0_scale"].metadata["shift"].tolist()
    )


def test_reimported_graph_runs_as_the_quantised_network(exported, tmp_path):
    quantized, graph, x = exported
    path = tmp_path / "quantized.nir"
    nir.write(path, graph)
    imported = norse.from_nir(nir.read(path))
    # NIR's equations have no fixed-point rounding: compare with the quantised network
    # without state rounding; the graph's inputs and outputs are in LSB units
    set_state_quantization(quantized, False)
    input_format = quantized[0].lifted_module.input_format
    output_format = quantized[4].format
    quantized.return_hidden = imported.return_hidden = True
    with torch.no_grad():
        expected, _ = quantized(x)
        state, steps = None, []
        for step in input_format.to_integer(x).float():
            outputs, state = imported(step, state)
            steps.append(outputs)
    hidden = [torch.stack(layer) for layer in zip(*steps)]
    currents, spikes, voltages = hidden[1], hidden[2], hidden[-1]
    assert torch.allclose(
        currents, expected[0] / quantized[1].format.scale, rtol=1e-5, atol=1e-2
    )
    assert torch.equal(spikes, expected[1]) and expected[1].mean() > 0.01
    assert torch.allclose(voltages * output_format.scale, expected[-1], atol=1e-5)
    # and close to the network with its states rounded
    set_state_quantization(quantized, True)
    with torch.no_grad():
        rounded, _ = quantized(x)
    assert (rounded[1] == spikes).float().mean() > 0.99


def test_float_export_is_unchanged():
    model = _network()
    graph = norse.to_nir(model, sample_data=torch.rand(4, 2, 2, 8, 8))
    assert list(graph.nodes) == ["input", "0", "1", "2", "3", "4", "output"]
    assert graph.nodes["0"].weight.dtype == np.float32


def test_traced_modules_cannot_hold_quantised_synapses():
    class Wrapper(torch.nn.Module):
        def __init__(self, quantized):
            super().__init__()
            self.synapse = quantized[0]
            self.neuron = quantized[1]

        def forward(self, x):
            return self.neuron(self.synapse(x))[0]

    x = torch.rand(5, 2, 2, 8, 8)
    quantized = quantize(_network(), calibration_data=x)
    assert len(quantized_layers(quantized)) == 4
    with pytest.raises(ValueError, match="Lift exports to several NIR nodes"):
        norse.to_nir(Wrapper(quantized), sample_data=x)
