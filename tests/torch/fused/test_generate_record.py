"""The values the generated backward kernels record in their forward replay
(norse.torch.fused.generate.record): the fewest from which the reverse loop computes
what it needs without the step's inputs."""

import torch

from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    lif_feed_forward_step,
)
from norse.torch.functional.lif_ex import (
    LIFExFeedForwardState,
    LIFExParameters,
    lif_ex_feed_forward_step,
)
from norse.torch.fused import generate
from norse.torch.fused.generate import numba_source, runtime
from norse.torch.fused.generate.record import recorded_values
from norse.torch.fused.generate.trace import Graph, Node


def _lif_program(p=LIFParameters()):
    state = LIFFeedForwardState(torch.zeros(2, 3), torch.zeros(2, 3))
    return runtime.program_for(lif_feed_forward_step, torch.float32, state, p, 1e-3)


def _backward(program, wanted):
    return numba_source.backward_source(
        program.graph, program.adjoint, program.layout, wanted, False, "backward"
    )


def _reverse_loop(source: str) -> str:
    return source[source.index("for t in range(steps - 1, -1, -1):") :]


def test_lif_without_parameter_gradients_records_only_the_decayed_voltage():
    program = _lif_program()
    source = _backward(program, [])
    # One row per step: v_d, from which the surrogate, the spike and the reset follow.
    assert "steps * 1," in source
    reverse = _reverse_loop(source)
    assert " X0[" not in reverse and " S0[" not in reverse


def test_lif_with_parameter_gradients_records_two_values_and_no_input_rows():
    program = _lif_program()
    source = _backward(program, list(program.differentiable))
    # v and i + x: everything else follows from them and the parameters
    assert "steps * 2," in source
    assert " X0[" not in _reverse_loop(source)


def test_costly_values_are_recorded_not_recomputed():
    # LIFEx: the exponential's result is read in the reverse loop.
    state = LIFExFeedForwardState(torch.zeros(2, 3), torch.zeros(2, 3))
    program = runtime.program_for(
        lif_ex_feed_forward_step, torch.float32, state, LIFExParameters(), 1e-3
    )
    reverse = _reverse_loop(_backward(program, []))
    assert "exp32(" not in reverse
    assert " X0[" not in reverse


def _graph(*nodes):
    graph = Graph()
    for node in nodes:
        graph.add(Node(*node, torch.float32, torch.float32, True))
    return graph


def test_minimum_cut_prefers_one_shared_ancestor_to_several_needed_values():
    # x -> a = x + s -> b = a * a, c = a + a; the reverse loop needs b and c (seeded
    # node 5 reads them): recording a (one value) beats recording b and c.
    graph = _graph(
        ("input", (0,)),
        ("state", ("s",)),
        ("add", (0, 1)),
        ("mul", (2, 2)),
        ("add", (2, 2)),
        ("grad_out", ()),
        ("mul", (3, 5)),
        ("mul", (4, 6)),
    )
    needed = list(range(8))
    seeded = [5, 6, 7]
    assert recorded_values(graph, needed, seeded, lambda n: False, torch.float32) == [2]


def test_costly_operations_are_cut_at_or_after_their_result():
    # a = exp(x + s) is costly: the cut may not recompute it from x + s.
    graph = _graph(
        ("input", (0,)),
        ("state", ("s",)),
        ("add", (0, 1)),
        ("exp", (2,)),
        ("grad_out", ()),
        ("mul", (3, 4)),
        ("mul", (2, 5)),
    )
    needed = list(range(7))
    chosen = recorded_values(
        graph, needed, [4, 5, 6], lambda n: n.op == "exp", torch.float32
    )
    assert chosen == [2, 3]


def test_gradients_over_several_chunks_of_lanes():
    # 2,500 neurons: chunks of 1,024 lanes (the record of 5 steps is small) and a
    # partial one; a broadcast output gradient and the final state's gradient.
    step = lif_feed_forward_step
    p = LIFParameters(method="super")
    generator = torch.Generator().manual_seed(5)
    x = 3 * torch.randn(5, 5, 500, generator=generator, dtype=torch.float64)
    x.requires_grad_(True)
    state = LIFFeedForwardState(
        torch.rand(5, 500, generator=generator, dtype=torch.float64),
        torch.rand(5, 500, generator=generator, dtype=torch.float64),
    )
    kernel = generate.kernel_for(step, p, x, state, False, 1e-3)
    assert kernel is not None
    out, final = kernel(x, state, p, 1e-3, False)
    (g,) = torch.autograd.grad(out.sum() + (final.v * final.i).sum(), [x])
    current, outputs = state, []
    for x_t in x.unbind(0):
        o, current = step(x_t, current, p, 1e-3)
        outputs.append(o)
    (expected,) = torch.autograd.grad(
        torch.stack(outputs).sum() + (current.v * current.i).sum(), [x]
    )
    torch.testing.assert_close(g, expected, rtol=1e-10, atol=1e-10)
