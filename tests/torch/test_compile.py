"""torch.compile gives the eager results for cells, time modules and SequentialState.

Most tests use the ``aot_eager`` backend (dynamo + AOTAutograd without code generation,
fast to compile); one test compiles with the default inductor backend.
"""

import shutil

import pytest
import torch

from norse.torch.functional.lif import LIFFeedForwardState
from norse.torch.module.lif import LIF, LIFCell
from norse.torch.module.lift import Lift
from norse.torch.module.sequential import SequentialState


def _assert_states_equal(a, b):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def test_lif_cell_aot_eager():
    torch.manual_seed(0)
    cell = LIFCell()
    compiled = torch.compile(cell, backend="aot_eager", fullgraph=True)
    # An input that requires grad: with nothing at all to differentiate, the resting
    # voltage is made a leaf outside the graph (see the next test)
    x = (torch.rand(3, 4) * 6).requires_grad_()
    z, s = compiled(x)
    z, s = compiled(x, s)
    ez, es = cell(x)
    ez, es = cell(x, es)
    assert z.sum() > 0
    torch.testing.assert_close(z, ez)
    _assert_states_equal(s, es)


def test_compiled_layer_with_nothing_to_differentiate_still_backpropagates():
    """Norse 1.1's resting voltage requires grad, also under torch.compile (its own
    LIFBox compile test calls backward on such a layer): it is made a leaf outside the
    graph, and only where nothing else requires grad (no graph break otherwise)."""
    cell = LIFCell()
    compiled = torch.compile(cell, backend="aot_eager")
    x = torch.rand(3, 4) * 6
    z, s = compiled(x)
    z, s = compiled(x, s)
    assert z.requires_grad
    (z.sum() + s.v.sum()).backward()
    with torch.no_grad():
        assert torch._dynamo.explain(cell)(x).graph_break_count == 0
    assert torch._dynamo.explain(cell)(x.requires_grad_()).graph_break_count == 0


def test_lif_time_module_forward_and_backward_aot_eager():
    torch.manual_seed(0)
    layer = LIF()
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    x = (torch.rand(6, 2, 3) * 8).requires_grad_()
    z, s = compiled(x)
    (z.sum() + s.v.sum()).backward()
    grad = x.grad.clone()
    x.grad = None
    ez, es = layer(x)
    (ez.sum() + es.v.sum()).backward()
    assert z.sum() > 0
    torch.testing.assert_close(z, ez)
    _assert_states_equal(s, es)
    torch.testing.assert_close(grad, x.grad)


def test_sequential_state_with_lifted_cell_aot_eager():
    torch.manual_seed(0)
    model = SequentialState(torch.nn.Linear(3, 4), Lift(LIFCell()), LIF())
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = torch.rand(4, 2, 3) * 10
    z, s = compiled(x)
    z, s = compiled(x, s)
    ez, es = model(x)
    ez, es = model(x, es)
    torch.testing.assert_close(z, ez)
    assert s[0] is None and es[0] is None
    _assert_states_equal(s[1], es[1])
    _assert_states_equal(s[2], es[2])
    assert s[1].v.abs().sum() > 0


@pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None,
    reason="the inductor backend needs a C++ compiler",
)
def test_lif_cell_inductor():
    cell = LIFCell()
    x = torch.rand(2, 3) * 10
    state = LIFFeedForwardState(torch.full((2, 3), 0.9), torch.zeros(2, 3))
    z, s = torch.compile(cell)(x, state)
    ez, es = cell(x, state)
    assert z.sum() > 0
    torch.testing.assert_close(z, ez)
    _assert_states_equal(s, es)


def _every_model():
    import norse.torch as norse

    return {
        "LIF": norse.LIF,
        "LI": norse.LI,
        "LIFBox": norse.LIFBox,
        "LIBox": norse.LIBox,
        "IAF": norse.IAF,
        "LSNN": norse.LSNN,
        "LIFEx": norse.LIFEx,
        "LIFAdEx": norse.LIFAdEx,
        "LIFRefrac": norse.LIFRefrac,
        "LIFAdExRefrac": norse.LIFAdExRefrac,
        "Izhikevich": lambda: norse.Izhikevich(norse.tonic_spiking),
        "Lift(LIFRefracCell)": lambda: Lift(norse.LIFRefracCell()),
        "Lift(LIFAdExCell)": lambda: Lift(norse.LIFAdExCell()),
        "LIFRecurrent": lambda: norse.LIFRecurrent(6, 6),
        "LSNNRecurrent": lambda: norse.LSNNRecurrent(6, 6),
        "LIFAdExRecurrent": lambda: norse.LIFAdExRecurrent(6, 6),
    }


@pytest.mark.parametrize("name", sorted(_every_model()))
def test_every_model_compiles_without_graph_breaks(name):
    """Training (input requiring grad) and inference: one graph, no breaks (models
    without a hand-written kernel trace their reference loop)."""
    model = _every_model()[name]()
    x = torch.randn(4, 2, 6)
    torch._dynamo.reset()
    with torch.no_grad():
        assert torch._dynamo.explain(model)(x).graph_break_count == 0
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(x.requires_grad_())
    assert explanation.graph_break_count == 0, explanation.break_reasons


def test_per_neuron_parameters_with_dynamic_shapes():
    # With dynamic shapes the state's sizes are symbolic: the check that per-neuron
    # parameters broadcast into the state must compare, not look them up in a tuple.
    from norse.torch.functional.lif import LIFParameters

    torch._dynamo.reset()
    module = LIF(LIFParameters(v_th=torch.full((3,), 0.5)))
    compiled = torch.compile(module, backend="aot_eager", dynamic=True, fullgraph=True)
    for steps, batch in ((5, 2), (7, 4)):
        x = (torch.rand(steps, batch, 3) * 3).requires_grad_()
        out, state = compiled(x)
        expected, expected_state = module(x)
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(state.v, expected_state.v)
    torch._dynamo.reset()
