"""The generated Triton kernels (:mod:`norse.torch.fused.generate.triton_source`)
against the reference step loop and autograd through it: the scans of feed-forward
steps, and the single-step kernels with which the stepped driver
(:mod:`norse.torch.fused.generate.recurrent`) runs steps with matrix products.

With a GPU they run on CUDA tensors; without one on CPU tensors in Triton's interpreter
(``TRITON_INTERPRET=1``), the runtime's CPU backend routed to them. The interpreter
computes float32 and float64 arithmetic as the compiled kernels do (IEEE operations, no
fused multiply-adds), except the math functions: there ``exp`` and ``log`` are
NumPy's, whose float32 ``exp`` differs from PyTorch's by an ulp for many arguments, and
``tanh`` and ``pow`` are computed from them.
"""

import copy
import json
import os
import subprocess
import sys
from typing import NamedTuple

import pytest
import torch
from torch.utils._pytree import tree_leaves

if not torch.cuda.is_available():
    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip(
            "Triton was imported before its interpreter could be enabled",
            allow_module_level=True,
        )
    # Triton reads this when it (and its standard library) is first imported.
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton", reason="Triton is not installed: CUDA kernels untested")
# Masked lanes of the interpreted kernels compute on zeros (divisions by zero).
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

import norse.torch as norse  # noqa: E402
from norse.torch.functional import (  # noqa: E402
    izhikevich,
    lif,
    lif_adex,
    lif_ex,
    lif_refrac,
)
from norse.torch.functional.threshold import threshold  # noqa: E402
from norse.torch.fused import generate, reference_only  # noqa: E402
from norse.torch.fused.generate import recurrent, runtime  # noqa: E402

DT = 0.001


@pytest.fixture(autouse=True)
def kernel_cache(tmp_path_factory, monkeypatch):
    """Generated sources in a temporary cache; CPU tensors through the Triton kernels
    when there is no GPU."""
    cache = tmp_path_factory.getbasetemp() / "kernels"
    monkeypatch.setenv("NORSE_KERNEL_CACHE", str(cache))
    if not torch.cuda.is_available():
        monkeypatch.setitem(runtime.BACKENDS, "cpu", "cuda")


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _ramp(low: float, high: float, neurons: int, dtype) -> torch.Tensor:
    return torch.linspace(low, high, neurons, dtype=dtype, device=_device())


def _scalar(value: float, dtype) -> torch.Tensor:
    return torch.tensor(value, dtype=dtype, device=_device())


def _lif(dtype, neurons):
    p = lif.LIFParameters(
        tau_mem_inv=_ramp(80.0, 120.0, neurons, dtype),
        tau_syn_inv=_scalar(200.0, dtype),
        v_th=_scalar(1.0, dtype),
        v_reset=_scalar(-0.1, dtype),
        alpha=_scalar(100.0, dtype),
    )
    state = lif.LIFFeedForwardState(
        v=_ramp(0.0, 0.5, neurons, dtype), i=_ramp(-1.0, 1.0, neurons, dtype)
    )
    return lif.lif_feed_forward_step, state, p, 20.0


def _lif_ex(dtype, neurons):
    p = lif_ex.LIFExParameters(
        delta_T=_ramp(0.4, 0.6, neurons, dtype),
        tau_syn_inv=_scalar(200.0, dtype),
        tau_mem_inv=_scalar(100.0, dtype),
        v_leak=_scalar(0.0, dtype),
        v_th=_scalar(1.0, dtype),
        v_reset=_scalar(0.0, dtype),
        alpha=_scalar(100.0, dtype),
    )
    state = lif_ex.LIFExFeedForwardState(
        v=_ramp(0.0, 0.5, neurons, dtype), i=_ramp(0.0, 1.0, neurons, dtype)
    )
    return lif_ex.lif_ex_feed_forward_step, state, p, 20.0


def _lif_adex(dtype, neurons):
    p = lif_adex.LIFAdExParameters(
        adaptation_current=_ramp(3.0, 5.0, neurons, dtype),
        adaptation_spike=_scalar(0.5, dtype),
        delta_T=_scalar(0.5, dtype),
        tau_ada_inv=_scalar(20.0, dtype),
        tau_syn_inv=_scalar(200.0, dtype),
        tau_mem_inv=_ramp(80.0, 120.0, neurons, dtype),
        v_leak=_scalar(0.0, dtype),
        v_th=_scalar(1.0, dtype),
        v_reset=_scalar(0.0, dtype),
        alpha=_scalar(100.0, dtype),
    )
    state = lif_adex.LIFAdExFeedForwardState(
        v=_ramp(0.0, 0.5, neurons, dtype),
        i=_ramp(0.0, 1.0, neurons, dtype),
        a=_ramp(0.0, 0.2, neurons, dtype),
    )
    return lif_adex.lif_adex_feed_forward_step, state, p, 20.0


def _lif_refrac(dtype, neurons):
    p = lif_refrac.LIFRefracParameters(
        lif=lif.LIFParameters(
            tau_mem_inv=_scalar(100.0, dtype),
            tau_syn_inv=_ramp(150.0, 250.0, neurons, dtype),
            v_th=_scalar(1.0, dtype),
            alpha=_scalar(100.0, dtype),
        ),
        rho_reset=_scalar(3.0, dtype),
    )
    state = lif_refrac.LIFRefracFeedForwardState(
        lif=lif.LIFFeedForwardState(
            v=_ramp(0.0, 0.5, neurons, dtype), i=_ramp(0.0, 1.0, neurons, dtype)
        ),
        rho=_ramp(0.0, 2.0, neurons, dtype),
    )
    return lif_refrac.lif_refrac_feed_forward_step, state, p, 20.0


def _izhikevich(dtype, neurons):
    p = izhikevich.IzhikevichParameters(
        a=_ramp(0.015, 0.025, neurons, dtype),
        b=0.2,
        c=-65.0,
        d=_scalar(6.0, dtype),
        v_th=_scalar(30.0, dtype),
        alpha=_scalar(10.0, dtype),
    )
    v = _ramp(-70.0, -60.0, neurons, dtype)
    state = izhikevich.IzhikevichState(v=v, u=0.2 * v)
    return izhikevich.izhikevich_feed_forward_step, state, p, 15.0


MODELS = {
    "lif": _lif,
    "lif_ex": _lif_ex,
    "lif_adex": _lif_adex,
    "lif_refrac": _lif_refrac,
    "izhikevich": _izhikevich,
}


def _case(model, dtype, neurons):
    """``(step, state, p, input scale)`` of ``model``, every tensor in ``dtype`` (the
    defaults of the parameters not set above are float32)."""
    step, state, p, scale = MODELS[model](dtype, neurons)
    values = {
        f: v.to(dtype=dtype, device=_device()) if isinstance(v, torch.Tensor) else v
        for f, v in generate.flatten(p)
    }
    return step, state, generate.rebuild(generate.structure(p), values), scale


#: Models whose forward step calls ``exp``.
WITH_EXP = ("lif_ex", "lif_adex")


def _input(steps, neurons, dtype, scale):
    generator = torch.Generator().manual_seed(0)
    x = scale * (torch.randn((steps, neurons), generator=generator) + 0.6)
    return x.to(dtype).to(_device())


def _weights(shape, seed, dtype):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator).to(dtype).to(_device())


def _reference(step, x, state, p, record):
    """The step loop: outputs ``(T, M)`` and the state fields, ``(T, M)`` each
    (``record``) or ``(M,)``."""
    outputs, records = [], []
    for t in range(x.shape[0]):
        out, state = step(x[t], state, p, DT)
        outputs.append(out)
        records.append([value for _, value in generate.flatten(state)])
    if record:
        fields = [torch.stack(values) for values in zip(*records)]
    else:
        fields = records[-1]
    return torch.stack(outputs), fields


def _generated(step, x, state, p, record):
    program = runtime.program_for(step, x.dtype, state, p, DT)
    assert program is not None, runtime.why_not(step, x.dtype, state, p, DT)
    out, state = generate.run(program, x, state, p, record, DT)
    return out, [value for _, value in generate.flatten(state)]


@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_equals_reference(model, dtype, record):
    neurons = 150 if model == "lif" else 30  # lif: two programs, the second partial
    step, state, p, scale = _case(model, dtype, neurons)
    x = _input(12, neurons, dtype, scale)
    out, fields = _generated(step, x, state, p, record)
    out_ref, fields_ref = _reference(step, x, state, p, record)
    assert 0 < out_ref.sum() < out_ref.numel()  # spikes, and silent steps
    for got, want in zip([out, *fields], [out_ref, *fields_ref]):
        assert got.dtype == want.dtype and got.shape == want.shape
        if model in WITH_EXP and dtype == torch.float32:
            # equal here too, but exp (NumPy's in the interpreter, libdevice's on a
            # GPU) may round differently from PyTorch's: 2 ulps
            assert torch.equal(out, out_ref)
            torch.testing.assert_close(got, want, rtol=2.4e-7, atol=1e-30)
        else:
            assert torch.equal(got, want)


def _leaves(state, p, params=True):
    """Fresh leaf copies (``requires_grad``) of the state fields and (``params``) the
    tensor parameters: ``(state, p, [state leaves], [parameter leaves])``."""
    state_values = {
        f: v.detach().clone().requires_grad_() for f, v in generate.flatten(state)
    }
    p_values = {}
    for field, value in generate.flatten(p):
        if isinstance(value, torch.Tensor) and params:
            value = value.detach().clone().requires_grad_()
        p_values[field] = value
    state = generate.rebuild(generate.structure(state), state_values)
    p = generate.rebuild(generate.structure(p), p_values)
    leaves = [v for v in p_values.values() if isinstance(v, torch.Tensor)]
    return state, p, list(state_values.values()), leaves if params else []


def _gradients(run, step, x, state, p, record, weights=None, params=True):
    """Gradients of a weighted sum of the outputs and states with respect to the
    input, the initial state fields and the tensor parameters (``None`` where none
    reaches them); the weights are rounded to ``weights`` (default: the dtype of what
    they weigh)."""
    x = x.detach().clone().requires_grad_()
    state, p, state_leaves, param_leaves = _leaves(state, p, params)
    out, fields = run(step, x, state, p, record)
    loss = 0.0
    for k, value in enumerate([out, *fields]):
        w = _weights(value.shape, 1 + k, weights or value.dtype).to(value.dtype)
        loss = loss + (value * w).sum()
    leaves = [x, *state_leaves, *param_leaves]
    return torch.autograd.grad(loss, leaves, allow_unused=True)


@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("model", MODELS)
def test_backward_equals_autograd_float64(model, record):
    """Input, initial state, per-neuron and shared parameters (the threshold's alpha
    has no gradient in either)."""
    neurons = 150 if model == "lif" else 30  # lif: two programs, the second partial
    step, state, p, scale = _case(model, torch.float64, neurons)
    x = _input(12, neurons, torch.float64, scale)
    grads = _gradients(_generated, step, x, state, p, record)
    expected = _gradients(_reference, step, x, state, p, record)
    assert sum(g is not None for g in expected) >= 4
    for got, want in zip(grads, expected):
        assert (got is None) == (want is None)
        if want is not None:
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def _upcast(state, p):
    def cast(value):
        if isinstance(value, torch.Tensor):
            return value.detach().float()
        return value

    state = generate.rebuild(
        generate.structure(state), {f: cast(v) for f, v in generate.flatten(state)}
    )
    p = generate.rebuild(
        generate.structure(p), {f: cast(v) for f, v in generate.flatten(p)}
    )
    return state, p


@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("model", ["lif", "lif_adex"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computes_in_float32(model, dtype, record):
    """Half-precision input, state and parameters: the kernels compute and carry the
    state in float32 and round what they store, so the results equal the float32
    reference on the upcast values, rounded (not the half-precision reference, which
    rounds every intermediate result). Gradients agree to the half type's rounding."""
    step, state, p, scale = _case(model, dtype, 30)
    x = _input(10, 30, dtype, scale)
    state32, p32 = _upcast(state, p)
    out, fields = _generated(step, x, state, p, record)
    out_ref, fields_ref = _reference(step, x.float(), state32, p32, record)
    assert 0 < out_ref.sum() < out_ref.numel()
    for got, want in zip([out, *fields], [out_ref, *fields_ref]):
        assert got.dtype == dtype
        if dtype == torch.bfloat16 and not torch.cuda.is_available():
            # Triton's interpreter rounds float32 to bfloat16 toward zero (the GPU to
            # nearest): an ulp
            torch.testing.assert_close(
                got.float(), want.to(dtype).float(), rtol=2**-7, atol=0
            )
        else:
            assert torch.equal(got, want.to(dtype))
    grads = _gradients(_generated, step, x, state, p, record)
    expected = _gradients(_reference, step, x.float(), state32, p32, record, dtype)
    rtol = 1e-2 if dtype == torch.bfloat16 else 2e-3
    for got, want in zip(grads, expected):
        assert (got is None) == (want is None)
        if want is not None:
            assert got.dtype == dtype
            scale = 1.0 + want.abs().max()
            assert ((got.float() - want).abs() <= rtol * scale).all()


@pytest.mark.parametrize("params", [False, True])
def test_backward_float32(params):
    """float32 gradients (without parameter gradients, the kernel writes none)."""
    step, state, p, scale = _case("lif_adex", torch.float32, 30)
    x = _input(12, 30, torch.float32, scale)
    if not params:
        p = type(p)(*[v.detach() if isinstance(v, torch.Tensor) else v for v in p])
    grads = _gradients(_generated, step, x, state, p, False, params=params)
    expected = _gradients(_reference, step, x, state, p, False, params=params)
    assert len(expected) == (14 if params else 4)
    for got, want in zip(grads, expected):
        assert (got is None) == (want is None)
        if want is not None:
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


class _State(NamedTuple):
    v: torch.Tensor
    w: torch.Tensor


class _Parameters(NamedTuple):
    k: torch.Tensor  # per neuron
    c: torch.Tensor  # shared
    method: str = "tanh"
    alpha: float = 2.0


def _every_operation(x, s, p, dt):
    """A step with the operations the generator knows (not a neuron model)."""
    a = torch.tanh(s.v * p.k) + torch.sigmoid(x) * 0.5
    b = torch.sqrt(s.w * s.w + 1.0) + torch.log(1.0 + torch.abs(x))
    c = torch.clamp(a - b / (1.0 + p.c), -2.0, 2.0)
    d = torch.maximum(c, s.w * 0.3) + torch.minimum(
        torch.relu(x - 1.0), torch.exp(-s.v)
    )
    e = (torch.abs(c) + 0.1) ** 1.5 - (torch.abs(s.w) + 1.0) ** -0.5
    z = threshold(c + 1.0, p.method, p.alpha)
    v = torch.where(z > 0, d * 0.2, s.v + dt * 50.0 * (d + e - s.v))
    w = s.w + dt * 30.0 * (c - s.w) + z * 0.1
    return z, _State(v, w)


def _every_operation_case(method, dtype, neurons):
    p = _Parameters(
        k=_ramp(0.5, 1.5, neurons, dtype), c=_scalar(0.3, dtype), method=method
    )
    state = _State(
        v=_ramp(-0.5, 0.5, neurons, dtype), w=_ramp(1.0, -1.0, neurons, dtype)
    )
    return _every_operation, state, p


@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("method", ["tanh", "circ"])  # tanh; pow(-1.5)
def test_every_operation_float64(method, record):
    """tanh, sigmoid, sqrt, log, abs, division, clamp, maximum, minimum, relu, pow
    (1.5, -0.5), exp, where, the surrogates' tanh and pow: forward within 1e-12
    (Triton's interpreter computes tanh and pow from exp and log), gradients to
    1e-10."""
    step, state, p = _every_operation_case(method, torch.float64, 30)
    x = _input(10, 30, torch.float64, 1.5)
    out, fields = _generated(step, x, state, p, record)
    out_ref, fields_ref = _reference(step, x, state, p, record)
    assert 0 < out_ref.sum() < out_ref.numel()
    for got, want in zip([out, *fields], [out_ref, *fields_ref]):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    grads = _gradients(_generated, step, x, state, p, record)
    expected = _gradients(_reference, step, x, state, p, record)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def _stepped_layer(model, dtype, record):
    """A layer whose step has matrix products, its input and the tensors whose
    gradients are compared: CobaLIF (four products, the weights rectified once), LIFEx
    (exp), LIFMC recurrent (two stages) and feed-forward (a coupling product)."""
    torch.manual_seed(0)
    device = _device()
    if model == "lif_mc":
        coupling = torch.nn.Parameter(torch.randn(5, 5, dtype=dtype) * 40)
        layer = norse.LIFMC(g_coupling=coupling, record_states=record)
        x = 3 * torch.rand(15, 3, 5, dtype=dtype)
    else:
        module = {
            "coba_lif": norse.CobaLIFRecurrent,
            "lif_ex": norse.LIFExRecurrent,
            "lif_mc_recurrent": norse.LIFMCRecurrent,
        }[model]
        layer = module(4, 5, record_states=record).to(dtype)
        x = 3 * torch.rand(15, 3, 4, dtype=dtype)
        with torch.no_grad():
            if model == "coba_lif":
                layer.input_weights.mul_(10)
                x = (x > 1.5).to(dtype)
            if model == "lif_mc_recurrent":
                layer.g_coupling.mul_(40)
    layer = layer.to(device)
    x = x.to(device).requires_grad_()
    return layer, x, [x, *layer.parameters()]


@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("model", ["coba_lif", "lif_ex", "lif_mc_recurrent", "lif_mc"])
def test_stepped_driver_equals_reference(
    model, dtype, record, stepped_runs, compare_with_reference
):
    """Steps with matrix products through the stepped driver with the Triton
    single-step kernels: outputs and states equal (float32 exp: 2 ulps), gradients of
    the input, the weights and the coupling to 1e-10 in float64."""
    layer, x, tensors = _stepped_layer(model, dtype, record)
    exp32 = model == "lif_ex" and dtype == torch.float32
    rtol = 2.4e-7 if exp32 else 0.0
    compare_with_reference(lambda: layer(x), tensors, dtype, rtol)
    assert stepped_runs == [True]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("model", ["coba_lif", "lif_mc_recurrent", "lif_mc"])
def test_stepped_driver_half_precision_computes_in_float32(
    model, dtype, stepped_runs, loss
):
    """Half-precision input and weights: the driver computes in float32, products
    included, and rounds the output and the state, so they equal the float32 reference
    on the upcast layer and input, rounded; the gradients of the input and the weights
    are the float32 ones rounded, to the float32 driver's summation order."""
    layer, x, tensors = _stepped_layer(model, torch.float32, False)
    layer_half = copy.deepcopy(layer).to(dtype)
    x_half = x.detach().to(dtype).requires_grad_()
    spikes, state = layer_half(x_half)
    assert stepped_runs == [True]
    with reference_only():
        spikes_ref, state_ref = copy.deepcopy(layer_half).float()(x_half.float())
    assert 0 < spikes_ref.sum() < spikes_ref.numel()
    assert spikes.dtype == dtype and torch.equal(spikes, spikes_ref.to(dtype))
    for got, want in zip(tree_leaves(state), tree_leaves(state_ref)):
        assert got.dtype == dtype and torch.equal(got, want.to(dtype))
    halves = [x_half, *layer_half.parameters()]
    upcast_state = [v.float() for v in tree_leaves(state)]
    grads = torch.autograd.grad(loss(spikes.float(), upcast_state), halves)
    with reference_only():
        upcast = copy.deepcopy(layer_half).float()
        x32 = x_half.detach().float().requires_grad_()
        spikes_ref, state_ref = upcast(x32)
        expected = torch.autograd.grad(
            loss(spikes_ref, state_ref), [x32, *upcast.parameters()]
        )
    rtol = 2**-7 if dtype == torch.bfloat16 else 2**-10
    for got, want in zip(grads, expected):
        assert got.dtype == dtype
        scale = 1e-3 + want.abs().max()
        assert ((got.float() - want).abs() <= 2 * rtol * scale).all()


def _stepped_programs(model, dtype, monkeypatch):
    """The stage programs that the stepped driver runs for ``model``."""
    programs = []
    original = recurrent.run

    def spy(program, *args):
        programs.extend(program.stages)
        return original(program, *args)

    layer, x, _ = _stepped_layer(model, dtype, False)
    with monkeypatch.context() as patch:
        patch.setattr(recurrent, "run", spy)
        layer(x)
    return programs


COMPILE = r"""
import importlib.util, json, re, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

cases = json.loads(sys.argv[1])
found = {}
for case in cases:
    spec = importlib.util.spec_from_file_location(case["name"], case["path"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for kernel_name in case["kernels"]:
        fn = getattr(module, kernel_name)
        constexprs = {"RECORD": "forward" in kernel_name, "PARAM_GRADS": True,
                      "BLOCK": module.BLOCK}
        signature = {}
        for name in fn.arg_names:
            if name in constexprs:
                signature[name] = "constexpr"
            elif name in ("steps", "neurons", "lo", "hi"):
                signature[name] = "i32"
            else:
                signature[name] = case["pointers"][name]
        index = {(fn.arg_names.index(k),): v for k, v in constexprs.items()
                 if k in fn.arg_names}
        options = dict(module._OPTIONS)
        kernel = triton.compile(
            ASTSource(fn=fn, signature=signature, constexprs=index),
            target=GPUTarget("cuda", 90, 32),
            options=options,
        )
        ptx = kernel.asm["ptx"]
        found[f"{case['name']}-{kernel_name}"] = sorted(set(re.findall(
            r"\b(?:div|sqrt|rcp)\.[a-z0-9.]+", ptx)))
print(json.dumps(found))
"""

#: The kernels of a scan module and of a single-step module.
SCANS = ["_forward_kernel", "_backward_kernel"]
STEPS = [
    "_forward_step_kernel",
    "_backward_step_all_kernel",
    "_backward_step_states_kernel",
]
F64 = torch.float64

_TRITON_TYPES = {
    torch.float16: "*fp16",
    torch.bfloat16: "*bf16",
    torch.float32: "*fp32",
    torch.float64: "*fp64",
}


def _pointer_types(program, x_dtype):
    """The pointer type of each tensor argument of the generated kernels (scans, and
    the single steps of :func:`.triton_source.step_module_source`), as the launchers
    of the module pass them."""
    graph = program.graph
    states = [graph.nodes[graph.states[f]].dtype for f in program.state_fields]
    params = [graph.nodes[graph.params[f]].dtype for f in program.params]
    half = (torch.float16, torch.bfloat16)
    wide = torch.float64 in states
    types = {
        "X": x_dtype,
        "GX": x_dtype,
        "OUT": program.output_dtype,
        "GO": program.output_dtype,
        "H": torch.float64 if wide else torch.float32,
    }
    for k, index in enumerate(graph.inputs):
        types[f"X{k}"] = types[f"GX{k}"] = graph.nodes[index].dtype
    for k, dtype in enumerate(states):
        for prefix in ("S", "R", "GS", "G0_", "GS0_"):
            types[f"{prefix}{k}"] = dtype
    for k, dtype in enumerate(params):
        types[f"P{k}"] = dtype
    for k, field in enumerate(program.differentiable):
        dtype = params[program.params.index(field)]
        types[f"GP{k}"] = torch.float32 if dtype in half else dtype
    return {name: _TRITON_TYPES[dtype] for name, dtype in types.items()}


def test_sources_compile_for_sm90(tmp_path, monkeypatch):
    """The generated modules compile for a GPU (sm_90) without one: libdevice's
    functions, the types of the loop-carried values, the half-precision loads and
    stores, the single-step kernels of the stepped driver. In float32 the divisions and
    square roots are the IEEE ones."""
    cases = []
    for name, dtype in [
        ("lif", torch.float32),
        ("lif", torch.float16),
        ("lif", torch.bfloat16),
        ("lif_adex", torch.float64),
    ]:
        step, state, p, _ = _case(name, dtype, 4)
        cases.append((f"{name}_{str(dtype)[6:]}", step, state, p, dtype))
    for dtype in (torch.float32, torch.float64):
        step, state, p = _every_operation_case("circ", dtype, 4)
        cases.append((f"every_{str(dtype)[6:]}", step, state, p, dtype))
    programs = [
        (name, runtime.program_for(step, dtype, state, p, DT), dtype, SCANS)
        for name, step, state, p, dtype in cases
    ]
    for model, dtype in [("coba_lif", torch.float32), ("lif_mc_recurrent", F64)]:
        for k, stage in enumerate(_stepped_programs(model, dtype, monkeypatch)):
            name = f"{model}_{str(dtype)[6:]}_stage{k}"
            programs.append((name, stage, dtype, STEPS))
    described = []
    for name, program, dtype, kernels in programs:
        path = tmp_path / f"{name}.py"
        path.write_text(program.source("cuda"))
        described.append(
            {
                "name": name,
                "path": str(path),
                "pointers": _pointer_types(program, dtype),
                "kernels": kernels,
            }
        )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, "-c", COMPILE, json.dumps(described)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if (
        result.returncode != 0
        and "ptxas" in result.stderr
        and "not found" in result.stderr
    ):
        pytest.skip("Triton's ptxas is not available here")
    assert result.returncode == 0, result.stderr[-4000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(found) == sum(len(kernels) for *_, kernels in programs)
    assert len(programs) == len(cases) + 3  # CobaLIF: one stage, LIFMCRecurrent: two
    for kernel, instructions in found.items():
        # div.full and sqrt.approx: Triton's / and tl.sqrt on float32 (rcp.approx is
        # libdevice's, inside its accurate functions)
        assert not [i for i in instructions if i.startswith(("div.full", "div.approx"))]
        assert not [i for i in instructions if i.startswith("sqrt.approx")]
    assert "div.rn.f32" in found["every_float32-_forward_kernel"]
    assert "sqrt.rn.f32" in found["every_float32-_forward_kernel"]
