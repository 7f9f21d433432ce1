"""The recurrent CobaLIF (fused/coba_lif.py): weights rectified once per sequence, the
sequence run by the generated stepped driver (generate/recurrent.py) against the
reference loop: outputs and states equal, gradients to 1e-10 in float64, the
fallback loop where the driver does not run."""

import pytest
import torch

import norse.torch as norse
from norse.torch.fused import coba_lif, registry

F64 = torch.float64
IN, N = 5, 7
needs_numba = pytest.mark.skipif(
    not registry.backend_available("cpu"), reason="no Numba"
)


def _layer(lifted, dtype, record=False, p=None):
    """A CobaLIF layer with weights of both signs large enough to make it spike."""
    kwargs = {} if p is None else {"p": p}
    if lifted:
        cell = norse.CobaLIFCell(IN, N, **kwargs).to(dtype)
        weights = cell
        layer = norse.Lift(cell)
    else:
        layer = norse.CobaLIFRecurrent(IN, N, record_states=record, **kwargs)
        weights = layer = layer.to(dtype)
    with torch.no_grad():
        weights.input_weights.copy_(torch.randn(N, IN, dtype=dtype) * 2)
        weights.recurrent_weights.copy_(torch.randn(N, N, dtype=dtype))
    return layer, weights


def _spikes(dtype, steps=25):
    return (torch.rand(steps, 3, IN) < 0.4).to(dtype).requires_grad_()


def _per_neuron(dtype):
    tau = torch.linspace(0.1, 0.3, N, dtype=dtype).requires_grad_()
    v_thresh = torch.linspace(-12.0, -8.0, N, dtype=dtype).requires_grad_()
    p = norse.CobaLIFParameters(tau_syn_exc_inv=tau, v_thresh=v_thresh)
    return p, [tau, v_thresh]


@needs_numba
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("from_rest", [False, True])
def test_equals_the_reference_loop(
    dtype, record, from_rest, stepped_runs, compare_with_reference
):
    """Outputs and (recorded) states bit for bit; gradients of the input, both
    weights, per-neuron parameters and the initial state."""
    torch.manual_seed(0)
    p, per_neuron = _per_neuron(dtype)
    layer, _ = _layer(False, dtype, record, p)
    x = _spikes(dtype)
    tensors = [x, layer.input_weights, layer.recurrent_weights, *per_neuron]
    start = None
    if not from_rest:
        with torch.no_grad():
            state = layer(x[:4])[1]
        start = norse.CobaLIFState(
            *((v[-1] if record else v).clone().requires_grad_() for v in state)
        )
        tensors += list(start)
        stepped_runs.clear()
    compare_with_reference(lambda: layer(x, start), tensors, dtype)
    assert stepped_runs == [True]


@needs_numba
def test_lift_of_the_cell_takes_the_same_path(stepped_runs, compare_with_reference):
    torch.manual_seed(1)
    layer, cell = _layer(True, F64)
    x = _spikes(F64, 15)
    tensors = [x, cell.input_weights, cell.recurrent_weights]
    compare_with_reference(lambda: layer(x), tensors, F64)
    assert stepped_runs == [True]


@needs_numba
def test_without_gradients(stepped_runs, compare_with_reference):
    torch.manual_seed(2)
    layer, _ = _layer(False, torch.float32)
    x = _spikes(torch.float32).detach()
    with torch.no_grad():
        compare_with_reference(lambda: layer(x), [], torch.float32)
    assert stepped_runs == [True]


@pytest.mark.parametrize("dtype", [F64, torch.bfloat16])
def test_where_the_driver_does_not_run_the_rectified_loop_does(
    dtype, monkeypatch, stepped_runs, compare_with_reference
):
    """Not plain eager (here: pretended), half precision, no kernel backend: the
    sequence runs step by step with the weights rectified once, with the same
    results."""
    torch.manual_seed(3)
    if dtype == F64:
        monkeypatch.setattr(registry, "plain_eager", lambda: False)
    loops = []
    original = coba_lif._loop

    def loop(*args):
        loops.append(True)
        return original(*args)

    monkeypatch.setattr(coba_lif, "_loop", loop)
    layer, _ = _layer(False, dtype, record=True)
    x = _spikes(dtype)
    tensors = [x, layer.input_weights, layer.recurrent_weights]
    compare_with_reference(lambda: layer(x), tensors, dtype)
    assert stepped_runs == []
    assert loops == [True]
