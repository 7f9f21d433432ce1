"""Opt-in NaN/Inf detection in neuron states (norse.torch.utils.anomaly)."""

import os
import subprocess
import sys

import pytest
import torch

import norse.torch as norse
from norse.torch.functional.lif import LIFParameters
from norse.torch.fused import registry
from norse.torch.utils import anomaly
from norse.torch.utils.anomaly import AnomalyError, detect_anomaly


def _input_with_nan_at(step, T=6):
    x = torch.ones(T, 2, 3)
    x[step, 1, 2] = float("nan")
    return x


def test_off_by_default_nan_passes_through():
    assert not anomaly.is_anomaly_enabled()
    out, state = norse.LI()(_input_with_nan_at(2))
    assert torch.isnan(state.v).any()


@pytest.mark.parametrize("layer", [norse.LIF, norse.LI, norse.LSNN, norse.LIFRefrac])
def test_time_modules_name_the_step_and_the_field(layer):
    with detect_anomaly():
        with pytest.raises(
            AnomalyError, match=r"state\.\S+ is not finite .* time step 3;"
        ):
            layer()(_input_with_nan_at(3))
    assert not anomaly.is_anomaly_enabled()


def test_message_says_whether_the_input_was_already_bad():
    with detect_anomaly():
        with pytest.raises(AnomalyError, match="input of this step is not finite"):
            norse.LI()(_input_with_nan_at(0))
        # finite input, but a weight made the state overflow
        layer = norse.LIFRecurrent(3, 2, input_weights=torch.full((2, 3), 1e38))
        with pytest.raises(
            AnomalyError,
            match=r"LIFRecurrent: state\.v is not finite \(nan at index \(0, 0\)\) at "
            r"time step 0; the input of this step is finite",
        ):
            layer(torch.ones(4, 1, 3) * 3)


def test_cells_count_their_calls():
    cell = norse.LIFCell()
    state = None
    with detect_anomaly():
        for step in range(3):
            _, state = cell(torch.ones(2), state)
        with pytest.raises(AnomalyError, match="LIFCell: state.v .* at call 3 of"):
            cell(torch.tensor([1.0, float("inf")]), state)
    recurrent = norse.LIFRecurrentCell(2, 2)
    with detect_anomaly():
        with pytest.raises(AnomalyError, match="at call 0 of this cell"):
            recurrent(torch.tensor([[float("nan"), 0.0]]))


def test_anomaly_mode_uses_the_reference_loop_and_gives_the_same_result():
    layer = norse.LIF(LIFParameters(v_th=torch.tensor(0.3)))
    x = torch.rand(10, 2, 3)
    calls = []
    original = registry.find

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    registry.find = spy
    try:
        expected = layer(x)
        assert calls  # the fast path was consulted outside anomaly mode
        calls.clear()
        with detect_anomaly():
            checked = layer(x)
        assert not calls
    finally:
        registry.find = original
    torch.testing.assert_close(checked[0], expected[0])
    torch.testing.assert_close(checked[1].v, expected[1].v)


def test_nesting_and_switching_off_inside():
    with detect_anomaly():
        with detect_anomaly(False):
            norse.LI()(_input_with_nan_at(1))  # no error: switched off in here
            assert not anomaly.is_anomaly_enabled()
        assert anomaly.is_anomaly_enabled()
    assert not anomaly.is_anomaly_enabled()
    previous = anomaly.set_detect_anomaly(True)
    try:
        with pytest.raises(AnomalyError):
            norse.LI()(_input_with_nan_at(1))
    finally:
        anomaly.set_detect_anomaly(previous)


def test_environment_variable_switches_it_on():
    code = (
        "import torch, norse.torch as norse\n"
        "from norse.torch.utils.anomaly import AnomalyError\n"
        "x = torch.ones(4, 1, 2); x[2, 0, 0] = float('nan')\n"
        "try:\n"
        "    norse.LIF()(x)\n"
        "except AnomalyError as error:\n"
        "    print('caught', error)\n"
    )
    env = dict(os.environ, NORSE_ANOMALY="1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "caught LIF: state.v is not finite" in result.stdout
    assert "time step 2" in result.stdout
