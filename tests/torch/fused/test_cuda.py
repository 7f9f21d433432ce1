"""The Triton (CUDA) kernels against the reference loop.

On a machine with a GPU the kernels run on CUDA tensors; without one they run on CPU
tensors in Triton's interpreter (``TRITON_INTERPRET=1``), with the CPU backend of the
custom operator routed to them. The interpreter computes like the GPU kernels with
``enable_fp_fusion=False`` (no fused multiply-adds), so float32 results are compared
bit for bit with the reference.
"""

import os
import sys

import pytest
import torch

if not torch.cuda.is_available():
    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip(
            "Triton was imported before its interpreter could be enabled",
            allow_module_level=True,
        )
    # Triton reads this when it (and its standard library) is first imported.
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton", reason="Triton is not installed: CUDA kernels untested")

import norse.torch as norse  # noqa: E402
from norse.torch.fused import autograd, reference_only, registry  # noqa: E402
from norse.torch.fused.spec import LEAK, SPIKE, SURROGATE_CODES, SYN  # noqa: E402

MODULES = {
    "lif": norse.LIF,
    "li": norse.LI,
    "lif_box": norse.LIFBox,
    "li_box": norse.LIBox,
    "iaf": norse.IAF,
    "lsnn": norse.LSNN,
}


@pytest.fixture
def device(monkeypatch):
    """``cuda`` with a GPU; else ``cpu`` with the Triton kernels interpreted."""
    if torch.cuda.is_available():
        return "cuda"
    monkeypatch.setitem(autograd.BACKENDS, "cpu", "norse.torch.fused.cuda")
    return "cpu"


def _run(module, x, fused):
    x = x.detach().clone().requires_grad_()
    if fused:
        state = module.initial_state(x)
        assert registry.find(module.activation, module.p, x, state, False) is not None
        out, state = module(x)
    else:
        with reference_only():
            out, state = module(x)
    generator = torch.Generator().manual_seed(1)
    loss = (out * torch.randn(out.shape, generator=generator).to(x.device)).sum()
    loss = loss + sum((s * 0.5).sum() for s in state)
    (grad,) = torch.autograd.grad(loss, x)
    return out.detach(), [s.detach() for s in state], grad


def _input(shape, device, scale=3.0):
    generator = torch.Generator().manual_seed(0)
    return (scale * torch.randn(shape, generator=generator) + 1.2).to(device)


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("record_states", [False, True])
def test_float32_matches_reference(device, name, record_states):
    module = MODULES[name](record_states=record_states).to(device)
    x = _input((20, 3, 50), device) * {"iaf": 0.3, "lsnn": 2.0}.get(name, 1.0)
    out, states, grad = _run(module, x, True)
    out_ref, states_ref, grad_ref = _run(module, x, False)
    assert torch.equal(out, out_ref)
    for value, expected in zip(states, states_ref):
        assert torch.equal(value, expected)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", list(SURROGATE_CODES))
def test_every_surrogate(device, method):
    p = norse.LIFParameters(
        method=method, alpha=torch.tensor(100.0 if method == "super" else 2.0)
    )
    module = norse.LIF(p).to(device)
    x = _input((25, 2, 40), device)
    _, _, grad = _run(module, x, True)
    _, _, grad_ref = _run(module, x, False)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-5)


def test_per_neuron_parameters_and_broadcast_gradient(device):
    p = norse.LIFParameters(
        v_th=torch.nn.Parameter(torch.linspace(0.8, 1.2, 40, device=device)),
        tau_mem_inv=torch.nn.Parameter(torch.full((40,), 90.0, device=device)),
    )
    module = norse.LIF(p)
    x = _input((15, 2, 40), device).requires_grad_()
    module(x)[0].sum().backward()
    fused = [x.grad.clone()] + [t.grad.clone() for t in module.parameters()]
    x.grad = None
    module.zero_grad()
    with reference_only():
        module(x)[0].sum().backward()
    reference = [x.grad] + [t.grad for t in module.parameters()]
    for value, expected in zip(fused, reference):
        torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("steps", [1, 8, 9, 17, 40])  # segments of 8: partial, whole
@pytest.mark.parametrize("name", ["lif", "lsnn"])
@pytest.mark.parametrize("trainable", [False, True])
def test_segments_of_the_backward_pass(device, steps, name, trainable):
    """The backward pass recomputes segments from checkpoints: gradients of the input,
    the initial state and (shared, trainable) parameters equal the reference's."""
    from norse.torch.fused import cuda

    assert cuda.SEGMENT == 8
    p = {"lif": norse.LIFParameters, "lsnn": norse.LSNNParameters}[name]()
    if trainable:
        p = p._replace(v_th=torch.nn.Parameter(torch.tensor(0.9, device=device)))
    module = MODULES[name](p)
    x = _input((steps, 2, 30), device) * (2.0 if name == "lsnn" else 1.0)
    with torch.no_grad():
        state = module.initial_state(x)
    state = type(state)(*[(s + 0.1).requires_grad_() for s in state])
    results = []
    for fused in (True, False):
        x_ = x.detach().clone().requires_grad_()
        leaves = [x_, *state] + ([p.v_th] if trainable else [])
        for leaf in leaves:
            leaf.grad = None
        if fused:
            out, final = module(x_, state)
        else:
            with reference_only():
                out, final = module(x_, state)
        generator = torch.Generator().manual_seed(2)
        weights = torch.randn(out.shape, generator=generator).to(device)
        ((out * weights).sum() + sum(f.sum() for f in final)).backward()
        results.append([out.detach()] + [leaf.grad.clone() for leaf in leaves])
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)
    for got, want in zip(results[0][1:], results[1][1:]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_half_input_integrates_in_float32(device):
    """float16 input: float32 state and arithmetic, outputs in float16. The result equals
    the float32 reference on the upcast input."""
    steps, neurons = 20, 64
    x = _input((steps, neurons), device).to(torch.float16)
    v0 = torch.zeros(neurons, device=device)
    params = [
        (0.001 * torch.tensor([100.0])).to(device),
        (0.001 * torch.tensor([200.0])).to(device),
        torch.zeros(1, device=device),
        torch.ones(1, device=device),
        torch.zeros(1, device=device),
        torch.zeros(1, device=device),
        torch.zeros(1, device=device),
    ]
    alpha = torch.tensor([100.0], device=device)
    xh = x.requires_grad_()
    states = [v0, v0.clone(), v0.new_empty(0)]
    out, v, i, b = autograd.scan(
        xh, states, params, alpha, 1, SYN | LEAK | SPIKE, False
    )
    assert out.dtype == torch.float16 and v.dtype == torch.float32
    out.float().sum().backward()
    p = norse.LIFParameters(
        tau_mem_inv=torch.tensor(100.0), tau_syn_inv=torch.tensor(200.0)
    )
    xf = x.detach().float().requires_grad_()
    with reference_only():
        out_ref, state_ref = norse.LIF(p).to(device)(xf)
    out_ref.sum().backward()
    assert torch.equal(out.float(), out_ref)
    assert torch.equal(v, state_ref.v)
    torch.testing.assert_close(xh.grad.float(), xf.grad, rtol=1e-2, atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bfloat16 needs a GPU")
def test_bfloat16_on_gpu():
    module = norse.LIF().cuda()
    x = _input((20, 4, 64), "cuda")
    out, state = module(x.to(torch.bfloat16))
    with reference_only():
        out_ref, _ = module(x.to(torch.bfloat16).float())
    assert out.dtype == torch.bfloat16 and torch.equal(out.float(), out_ref)
