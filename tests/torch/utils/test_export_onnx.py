"""ONNX export of one time step (norse.torch.to_onnx), run in onnxruntime.

Each network is exported once (module-scoped fixtures) and then stepped 100 times in
onnxruntime, the state fed back, against the same network stepped in PyTorch: the
spikes must agree exactly and every output and state within float32 rounding.
"""

import json
from typing import Callable, Dict, Tuple

import numpy as np
import pytest
import torch

import norse.torch as norse
from norse.torch.functional.lif import LIFParameters
from norse.torch.functional.lif_refrac import LIFRefracParameters
from norse.torch.functional.lsnn import LSNNParameters
from norse.torch.utils.export_onnx import (
    METADATA_KEY,
    OnnxExportError,
    OnnxStep,
    to_onnx,
)

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

STEPS = 100
RTOL, ATOL = 1e-5, 1e-5


def _session(path: str):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _is_spikes(array: np.ndarray) -> bool:
    return bool(np.isin(array, (0.0, 1.0)).all())


def _flat_state(state, prefix: str = "state") -> Dict[str, np.ndarray]:
    """The torch state as {input name: array}, by the documented naming scheme."""
    flat: Dict[str, np.ndarray] = {}

    def visit(value, name):
        if value is None:
            return
        if isinstance(value, torch.Tensor):
            flat[name] = value.detach().numpy()
        elif isinstance(value, tuple) and hasattr(value, "_fields"):
            for field, item in zip(value._fields, value):
                visit(item, f"{name}_{field}")
        else:
            for index, item in enumerate(value):
                visit(item, f"{name}_{index}")

    visit(state, prefix)
    return flat


def _round_trip(
    model: torch.nn.Module, step: OnnxStep, inputs: torch.Tensor
) -> Dict[str, float]:
    """Steps ``model`` (PyTorch) and the exported graph (onnxruntime) through ``inputs``
    ``(T, batch, ...)``; asserts that they agree and returns counts for the caller."""
    session = _session(step.path)
    assert [i.name for i in session.get_inputs()] == list(step.input_names)
    assert [o.name for o in session.get_outputs()] == list(step.all_output_names)
    feed_state = step.initial_state(inputs.shape[1])
    state = None
    spikes = 0.0
    spike_outputs = 0
    with torch.no_grad():
        for t, x in enumerate(inputs):
            output, state = model(x, state)
            results = session.run(None, {step.input_name: x.numpy(), **feed_state})
            outputs = output if isinstance(output, list) else [output]
            assert len(results) == len(outputs) + len(step.states)
            for expected, actual in zip(outputs, results):
                expected = expected.numpy()
                assert actual.shape == expected.shape
                if _is_spikes(expected):
                    spike_outputs += 1
                    mismatches = int((actual != expected).sum())
                    assert mismatches == 0, f"step {t}: {mismatches} spikes differ"
                    spikes += float(expected.sum())
                else:
                    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)
            next_state = results[len(outputs) :]
            feed_state = {
                name: value for name, value in zip(step.state_names, next_state)
            }
            expected_state = _flat_state(state)
            assert sorted(expected_state) == sorted(feed_state)
            for name, value in expected_state.items():
                np.testing.assert_allclose(
                    feed_state[name], value, rtol=RTOL, atol=ATOL, err_msg=name
                )
    return {"spikes": spikes, "spike_outputs": spike_outputs}


# --------------------------------------------------------------------------------------
# Networks


def _conv() -> Tuple[torch.nn.Module, Callable[[int], torch.Tensor]]:
    model = norse.SequentialState(
        torch.nn.Conv2d(1, 4, 3),  # (batch, 4, 6, 6)
        torch.nn.BatchNorm2d(4),
        norse.LIFCell(),
        torch.nn.MaxPool2d(2),  # (batch, 4, 3, 3)
        torch.nn.Flatten(),
        torch.nn.Linear(36, 10),
        norse.LIFCell(LIFParameters(tau_mem_inv=torch.as_tensor(200.0))),
    )
    with torch.no_grad():
        model[0].weight.mul_(4.0)
        model[1].running_mean.uniform_(-0.2, 0.2)
        model[1].running_var.uniform_(0.5, 2.0)
        model[5].weight.mul_(6.0)
    return model.eval(), lambda batch: (torch.rand(STEPS, batch, 1, 8, 8) < 0.3).float()


def _mlp() -> Tuple[torch.nn.Module, Callable[[int], torch.Tensor]]:
    model = norse.SequentialState(
        torch.nn.Linear(12, 32),
        norse.LIFCell(LIFParameters(v_leak=torch.as_tensor(0.1))),
        torch.nn.Linear(32, 5),
        norse.LICell(),
        return_hidden=True,  # outputs: every layer's (the LIF layer's spikes included)
    )
    return model, lambda batch: torch.rand(STEPS, batch, 12) * 3.0


def _recurrent() -> Tuple[torch.nn.Module, Callable[[int], torch.Tensor]]:
    model = norse.SequentialState(
        torch.nn.Linear(8, 16),
        norse.LIFRecurrentCell(16, 16),
        torch.nn.Linear(16, 4),
        norse.LIFBoxCell(),
    )
    with torch.no_grad():
        model[2].weight.mul_(8.0)
    return model, lambda batch: torch.rand(STEPS, batch, 8) * 2.0


def _lsnn() -> Tuple[torch.nn.Module, Callable[[int], torch.Tensor]]:
    model = norse.SequentialState(
        norse.LSNNRecurrentCell(6, 12, LSNNParameters(beta=torch.as_tensor(0.5))),
        torch.nn.Linear(12, 6),
        norse.LSNNCell(),
    )
    with torch.no_grad():
        model[0].input_weights.mul_(3.0)
        model[1].weight.mul_(10.0)
    return model, lambda batch: torch.rand(STEPS, batch, 6) * 2.0


def _refractory() -> Tuple[torch.nn.Module, Callable[[int], torch.Tensor]]:
    model = norse.SequentialState(
        torch.nn.Linear(5, 10),
        norse.LIFRefracCell(LIFRefracParameters(rho_reset=torch.as_tensor(3.0))),
    )
    return model, lambda batch: torch.rand(STEPS, batch, 5) * 4.0


def _cell() -> Tuple[torch.nn.Module, Callable[[int], torch.Tensor]]:
    return norse.LIFAdExCell(), lambda batch: torch.randn(STEPS, batch, 7) + 1.0


NETWORKS = {
    "conv_lif": _conv,
    "mlp_lif_li": _mlp,
    "recurrent_lif": _recurrent,
    "lsnn": _lsnn,
    "refractory": _refractory,
    "single_cell": _cell,
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Dict[str, Tuple[torch.nn.Module, OnnxStep, Callable]]:
    """Every network of NETWORKS, exported once with a batch of 2."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("onnx")
    result = {}
    for name, build in NETWORKS.items():
        model, inputs = build()
        step = to_onnx(model, inputs(2)[0], folder / f"{name}.onnx")
        result[name] = (model, step, inputs)
    return result


@pytest.mark.parametrize("name", list(NETWORKS))
def test_round_trip_100_steps(exported, name):
    model, step, inputs = exported[name]
    torch.manual_seed(1)
    counts = _round_trip(model, step, inputs(3))
    # the comparison is not vacuous: spikes were compared, and some fired
    assert counts["spike_outputs"] > 0
    assert counts["spikes"] > 0


@pytest.mark.parametrize("batch", [1, 7])
def test_dynamic_batch(exported, batch):
    model, step, inputs = exported["recurrent_lif"]
    torch.manual_seed(2)
    counts = _round_trip(model, step, inputs(batch))
    assert counts["spikes"] > 0
    session = _session(step.path)
    assert session.get_inputs()[0].shape[0] == "batch"
    assert all(i.shape[0] == "batch" for i in session.get_inputs())


def test_fixed_batch(tmp_path):
    model, inputs = _refractory()
    step = to_onnx(model, inputs(3)[0], tmp_path / "fixed.onnx", dynamic_batch=False)
    session = _session(step.path)
    assert session.get_inputs()[0].shape == [3, 5]
    _round_trip(model, step, inputs(3)[:10])
    with pytest.raises(Exception):  # onnxruntime refuses another batch size
        session.run(
            None, {"input": np.zeros((4, 5), np.float32), **step.initial_state(4)}
        )


def test_a_sample_of_one_batch_entry_exports_a_dynamic_batch(tmp_path):
    model, inputs = _mlp()
    step = to_onnx(model, inputs(1)[0], tmp_path / "one.onnx")
    _round_trip(model, step, inputs(4)[:10])


def test_a_state_with_the_batch_in_its_second_dimension(tmp_path):
    # DelayCell's ring buffer is (length, batch, ...)
    model = norse.SequentialState(
        torch.nn.Linear(3, 4), norse.DelayCell(torch.tensor([0, 1, 2, 3]))
    )
    step = to_onnx(model, torch.zeros(2, 3), tmp_path / "delay.onnx")
    buffer = step.states[0]
    assert buffer.input_name == "state_1_buffer"
    assert buffer.shape == (5, None, 4) and buffer.batch_axis == 1
    assert step.initial_state(6)["state_1_buffer"].shape == (5, 6, 4)
    assert step.initial_state(6)["state_1_index"].shape == ()
    _assert_same_state(_rest_from_metadata(step.path, 6), step.initial_state(6))
    torch.manual_seed(3)
    _round_trip(model, step, torch.randn(12, 6, 3))


def test_names_follow_the_layers_and_state_fields(exported):
    _, step, _ = exported["refractory"]
    assert step.input_names == (
        "input",
        "state_1_lif_v",
        "state_1_lif_i",
        "state_1_rho",
    )
    assert step.next_state_names == tuple(
        name.replace("state_", "next_state_", 1) for name in step.state_names
    )
    assert step.output_names == ("output",)
    assert exported["mlp_lif_li"][1].output_names == (
        "output_0",
        "output_1",
        "output_2",
        "output_3",
    )
    assert exported["single_cell"][1].state_names == (
        "state_v",
        "state_i",
        "state_a",
    )


def test_named_layers(tmp_path):
    from collections import OrderedDict

    model = norse.SequentialState(
        OrderedDict([("fc", torch.nn.Linear(3, 4)), ("hidden", norse.LIFCell())])
    )
    step = to_onnx(model, torch.zeros(2, 3), tmp_path / "named.onnx")
    assert step.state_names == ("state_hidden_v", "state_hidden_i")


def test_initial_state_is_the_rest_state(exported):
    model, step, inputs = exported["mlp_lif_li"]
    rest = step.initial_state(4)
    x = inputs(4)[0]
    assert rest["state_1_v"].shape == (4, 32)
    np.testing.assert_array_equal(rest["state_1_v"], np.full((4, 32), 0.1, np.float32))
    expected = model[1].initial_state(model[0](x))
    np.testing.assert_array_equal(rest["state_1_v"], expected.v.detach().numpy())
    np.testing.assert_array_equal(rest["state_1_i"], np.zeros((4, 32), np.float32))
    assert rest["state_3_v"].dtype == np.float32
    with pytest.raises(ValueError, match="batch_size"):
        step.initial_state(0)


def _rest_from_metadata(path: str, batch_size: int) -> Dict[str, np.ndarray]:
    """The rest state built from the file alone, as docs/onnx.md does it."""
    metadata = _session(path).get_modelmeta().custom_metadata_map
    state = {}
    for tensor in json.loads(metadata[METADATA_KEY]):
        shape = [batch_size if size is None else size for size in tensor["shape"]]
        rest = np.asarray(tensor["rest"], dtype=tensor["dtype"])
        if rest.ndim and None in tensor["shape"]:
            rest = np.expand_dims(rest, tensor["shape"].index(None))
        state[tensor["input"]] = np.broadcast_to(rest, shape).copy()
    return state


def _assert_same_state(actual: Dict[str, np.ndarray], expected: Dict[str, np.ndarray]):
    assert list(actual) == list(expected)
    for name, value in expected.items():
        assert actual[name].shape == value.shape, name
        assert actual[name].dtype == value.dtype, name
        np.testing.assert_array_equal(actual[name], value, err_msg=name)


def test_metadata_holds_the_rest_state(exported):
    _, step, _ = exported["mlp_lif_li"]
    entries = json.loads(
        _session(step.path).get_modelmeta().custom_metadata_map[METADATA_KEY]
    )
    assert [entry["input"] for entry in entries] == list(step.state_names)
    assert [entry["output"] for entry in entries] == list(step.next_state_names)
    assert entries[0] == {
        "input": "state_1_v",
        "output": "next_state_1_v",
        "dtype": "float32",
        "shape": [None, 32],
        "rest": pytest.approx(0.1),
    }
    _assert_same_state(_rest_from_metadata(step.path, 3), step.initial_state(3))


def test_per_neuron_rest_values_in_the_metadata(tmp_path):
    v_leak = torch.linspace(-0.5, 0.5, 4)
    model = norse.LIFCell(LIFParameters(v_leak=v_leak))
    step = to_onnx(model, torch.zeros(2, 4), tmp_path / "leak.onnx")
    entries = json.loads(
        _session(step.path).get_modelmeta().custom_metadata_map[METADATA_KEY]
    )
    assert entries[0]["rest"] == pytest.approx(v_leak.tolist())
    np.testing.assert_array_equal(
        step.initial_state(3)["state_v"], np.stack([v_leak.numpy()] * 3)
    )
    _assert_same_state(_rest_from_metadata(step.path, 3), step.initial_state(3))


def test_export_leaves_the_training_flags(tmp_path):
    model, inputs = _conv()
    model.train()
    running_mean = model[1].running_mean.clone()
    to_onnx(model, inputs(2)[0], tmp_path / "train.onnx")
    assert model.training and model[1].training
    torch.testing.assert_close(model[1].running_mean, running_mean)


# --------------------------------------------------------------------------------------
# What cannot be exported


class _Branching(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # Python control flow on a tensor value
            return x * 2
        return x


class _Noise(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


class _Eigenvalues(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gram = x.unsqueeze(-1) * x.unsqueeze(-2)
        return x + torch.linalg.eigvalsh(gram)


@pytest.mark.parametrize(
    "model, message",
    [
        (
            norse.SequentialState(torch.nn.Linear(4, 4), norse.LIF()),
            r"layer 1 \(LIF\) is a time module.*use LIFCell",
        ),
        (
            norse.LSNNRecurrent(4, 4),
            r"LSNNRecurrent is a time module.*LSNNRecurrentCell",
        ),
        (
            norse.SequentialState(norse.Lift(torch.nn.Linear(4, 4)), norse.LIFCell()),
            r"layer 0 \(Lift\)",
        ),
        (
            norse.SequentialState(
                torch.nn.Linear(4, 4), norse.LIFCell(LIFParameters(method="logistic"))
            ),
            r"layer 1 \(LIFCell\) samples its spikes.*'logistic'",
        ),
        (
            norse.SequentialState(
                norse.LIFRefracCell(
                    LIFRefracParameters(lif=LIFParameters(method="circ_dist"))
                )
            ),
            r"layer 0 \(LIFRefracCell\) samples its spikes.*'circ_dist'",
        ),
        (
            norse.SequentialState(norse.PoissonEncoderStep(), norse.LIFCell()),
            r"layer 0 \(PoissonEncoderStep\) draws random numbers",
        ),
        (
            norse.SequentialState(torch.nn.Linear(4, 4), _Noise(), norse.LIFCell()),
            r"layer 1 \(_Noise\) draws random numbers \(aten.rand_like\)",
        ),
        (
            norse.SequentialState(torch.nn.Linear(4, 4), _Branching(), norse.LIFCell()),
            r"layer 1 \(_Branching\) cannot be traced.*branches on tensor values",
        ),
        (
            norse.SequentialState(
                torch.nn.Linear(4, 4), _Eigenvalues(), norse.LIFCell()
            ),
            r"layer 1 \(_Eigenvalues\) cannot be translated to ONNX",
        ),
        (
            norse.SequentialState(
                norse.RecurrentSequential(torch.nn.Linear(4, 4), norse.LIFCell())
            ),
            r"layer 0 \(RecurrentSequential\)",
        ),
    ],
    ids=[
        "time-module",
        "recurrent-time-module",
        "lift",
        "stochastic-threshold",
        "nested-stochastic-threshold",
        "poisson-encoder",
        "random-layer",
        "control-flow",
        "no-onnx-translation",
        "recurrent-sequential",
    ],
)
def test_unsupported_layers_are_named(tmp_path, model, message):
    path = tmp_path / "refused.onnx"
    with pytest.raises(OnnxExportError, match=message):
        to_onnx(model, torch.rand(3, 4), path)
    assert not path.exists()


def test_sparse_input_is_refused(tmp_path):
    with pytest.raises(OnnxExportError, match="sample_input must be a dense tensor"):
        to_onnx(norse.LIFCell(), torch.eye(3).to_sparse(), tmp_path / "s.onnx")


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (
            (torch.nn.ReLU(), torch.zeros(2, 3)),
            TypeError,
            "module must be a Sequential",
        ),
        (("LIFCell", torch.zeros(2, 3)), TypeError, "module must be a torch.nn.Module"),
        (
            (norse.LIFCell(), [0.0, 1.0]),
            TypeError,
            "sample_input must be a torch.Tensor",
        ),
        (
            (norse.LIFCell(), torch.tensor(1.0)),
            ValueError,
            "sample_input must have a batch",
        ),
        ((norse.LIFCell(), torch.zeros(0, 3)), ValueError, "at least one batch entry"),
    ],
)
def test_bad_arguments(tmp_path, arguments, error, message):
    with pytest.raises(error, match=message):
        to_onnx(*arguments, tmp_path / "bad.onnx")


def test_bad_keyword_arguments(tmp_path):
    cell, x = norse.LIFCell(), torch.zeros(2, 3)
    with pytest.raises(TypeError, match="path must be a file path"):
        to_onnx(cell, x, 3)
    with pytest.raises(TypeError, match="dynamic_batch must be a bool"):
        to_onnx(cell, x, tmp_path / "a.onnx", dynamic_batch="yes")
    with pytest.raises(ValueError, match="opset_version"):
        to_onnx(cell, x, tmp_path / "a.onnx", opset_version=9)


def test_missing_exporter_packages_are_named(tmp_path, monkeypatch):
    from norse.torch.utils import export_onnx

    real = export_onnx.find_spec
    monkeypatch.setattr(
        export_onnx,
        "find_spec",
        lambda name: None if name == "onnxscript" else real(name),
    )
    with pytest.raises(ImportError, match="pip install onnxscript"):
        to_onnx(norse.LIFCell(), torch.zeros(2, 3), tmp_path / "x.onnx")


def test_exported_names_are_public():
    assert norse.to_onnx is to_onnx
    from norse.torch import utils

    assert utils.to_onnx is to_onnx
