"""Parallel-scan option of LI and LIBox, its automatic rule, and LIFFixedPoint."""

import pytest
import torch

import norse.torch as norse
from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.lif import LIFParameters
from norse.torch.fused import registry
from norse.torch.module import parallel
from norse.torch.utils import anomaly

F64 = torch.float64


@pytest.mark.parametrize("layer", [norse.LI, norse.LIBox])
@pytest.mark.parametrize("record_states", [False, True])
def test_parallel_option_equals_the_sequential_module(layer, record_states):
    x = torch.randn(150, 3, 5, dtype=F64, requires_grad=True)
    scan = layer(parallel=True, record_states=record_states)
    loop = layer(parallel=False, record_states=record_states)
    out, state = scan(x)
    with registry.reference_only():
        out_ref, state_ref = loop(x)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    for value, reference in zip(state, state_ref):
        torch.testing.assert_close(value, reference, rtol=1e-12, atol=1e-12)
    grad = torch.autograd.grad(out.sum() + state.v.sum(), x)[0]
    grad_ref = torch.autograd.grad(out_ref.sum() + state_ref.v.sum(), x)[0]
    torch.testing.assert_close(grad, grad_ref, rtol=1e-10, atol=1e-12)


def test_parallel_option_continues_from_a_state():
    x = torch.randn(80, 2, 4, dtype=F64)
    scan, loop = norse.LI(parallel=True), norse.LI(parallel=False)
    _, state = loop(x[:30])
    out, final = scan(x[30:], state)
    out_ref, final_ref = loop(x[30:], state)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final.i, final_ref.i, rtol=1e-12, atol=1e-12)


def test_parallel_checks_its_argument_and_input():
    with pytest.raises(TypeError, match="parallel must be True, False or None"):
        norse.LI(parallel="yes")
    with pytest.raises(TypeError, match="parallel=True needs a dense input tensor"):
        norse.LI(parallel=True)(torch.ones(3, 2).to_sparse())
    with pytest.raises(ValueError, match="state"):
        norse.LI(parallel=True)(
            torch.ones(100, 2), norse.LIState(torch.ones(3), torch.ones(3))
        )


def _spy(monkeypatch):
    calls = []
    scan = norse.LI.scan

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return scan(*args, **kwargs)

    monkeypatch.setattr(norse.LI, "scan", staticmethod(spy))
    return calls


@pytest.mark.skipif(
    not registry.backend_available("cpu"),
    reason="the fused CPU kernels are unavailable",
)
def test_automatic_rule_keeps_the_fused_kernel(monkeypatch):
    calls = _spy(monkeypatch)
    x = torch.randn(200, 4, 8)
    norse.LI()(x)
    norse.LI()(x, norse.LIState(torch.zeros(4, 8), torch.zeros(4, 8)))
    assert calls == []  # a fused kernel serves the calls: it is faster (measured)


def test_automatic_rule_replaces_the_reference_loop(monkeypatch):
    calls = _spy(monkeypatch)
    # as without Numba: no fused CPU kernel, the reference loop would run
    monkeypatch.setattr(registry, "backend_available", lambda device: False)
    layer = norse.LI()
    x = torch.randn(parallel.AUTO_MIN_STEPS, 4, 8, dtype=F64)
    out, _ = layer(x)
    assert calls == [x.shape]
    with registry.reference_only():
        out_ref, _ = layer(x)
    assert len(calls) == 1  # reference_only() means the reference loop
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    # too short, too wide, anomaly mode, explicitly off: the loop
    layer(x[: parallel.AUTO_MIN_STEPS - 1])
    layer(torch.randn(100, parallel.AUTO_MAX_NEURONS + 1))
    steps = parallel.AUTO_MAX_VALUES // parallel.AUTO_MAX_NEURONS + 1
    layer(torch.randn(steps, parallel.AUTO_MAX_NEURONS))
    with anomaly.detect_anomaly():
        layer(x)
    norse.LI(parallel=False)(x)
    assert len(calls) == 1


def test_automatic_rule_for_dtypes_without_a_fused_cpu_kernel(monkeypatch):
    calls = _spy(monkeypatch)
    x = torch.randn(100, 2, 8, dtype=torch.bfloat16)
    out, _ = norse.LI()(x)
    assert calls == [x.shape] and out.dtype == torch.bfloat16
    out_ref, _ = norse.LI(parallel=False)(x)
    torch.testing.assert_close(out.double(), out_ref.double(), rtol=0.05, atol=0.05)


def test_scan_preferred_decisions(monkeypatch):
    layer = norse.LI()
    x = torch.randn(100, 2, 3)
    if registry.backend_available("cpu"):
        assert not parallel.scan_preferred(layer, x)  # the fused kernel
    monkeypatch.setattr(registry, "backend_available", lambda device: False)
    assert parallel.scan_preferred(layer, x)
    assert not parallel.scan_preferred(layer, x[:10])
    assert not parallel.scan_preferred(layer, x.to_sparse())
    assert not parallel.scan_preferred(layer, x.long())
    layer.parallel = True
    assert parallel.scan_preferred(layer, x[:2])
    layer.parallel = False
    assert not parallel.scan_preferred(layer, x)


def test_lif_fixed_point_equals_lif():
    torch.manual_seed(0)
    x = (torch.rand(100, 4, 6, dtype=F64) * 1.5).requires_grad_()
    p = LIFParameters(
        v_th=torch.tensor(0.7, dtype=F64), alpha=torch.tensor(20.0, dtype=F64)
    )
    layer = norse.LIFFixedPoint(p)
    assert layer.iterations == 0 and not layer.converged
    z, state = layer(x)
    with registry.reference_only():
        z_ref, state_ref = norse.LIF(p)(x)
    assert layer.converged and 1 < layer.iterations <= 100
    assert torch.equal(z, z_ref) and z.sum() > 0
    torch.testing.assert_close(state.v, state_ref.v, rtol=1e-12, atol=1e-12)
    weights = torch.randn_like(z)
    grad = torch.autograd.grad((z * weights).sum(), x)[0]
    grad_ref = torch.autograd.grad((z_ref * weights).sum(), x)[0]
    torch.testing.assert_close(grad, grad_ref, rtol=1e-9, atol=1e-12)


def test_lif_fixed_point_options_and_errors():
    x = torch.full((40, 2, 3), 0.5)
    recorded = norse.LIFFixedPoint(record_states=True)
    z, states = recorded(x)
    assert states.v.shape == (40, 2, 3)
    limited = norse.LIFFixedPoint(max_iterations=1)
    limited(x)
    assert limited.iterations == 1 and not limited.converged
    assert "max_iterations=1" in repr(limited)
    with pytest.raises(ValueError, match="p.method must be a deterministic"):
        norse.LIFFixedPoint(LIFParameters(method="circ_dist"))
    with pytest.raises(ValueError, match="max_iterations must be a positive int"):
        norse.LIFFixedPoint(max_iterations=0)


def test_lif_fixed_point_in_sequential_state():
    model = norse.SequentialState(
        torch.nn.Linear(3, 5), norse.LIFFixedPoint(), torch.nn.Linear(5, 2), norse.LI()
    )
    out, states = model(torch.rand(30, 2, 3) * 2)
    assert out.shape == (30, 2, 2) and states[1].v.shape == (2, 5)
    out.sum().backward()
    assert model[0].weight.grad is not None


def test_li_keeps_norse_api():
    layer = norse.LI(LIParameters(), dt=0.002, record_states=True)
    assert layer.dt == 0.002 and layer.record_states and layer.parallel is None


def test_parallel_li_compiles_without_graph_breaks():
    x = torch.randn(128, 2, 6, requires_grad=True)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(norse.LI(parallel=True))(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
