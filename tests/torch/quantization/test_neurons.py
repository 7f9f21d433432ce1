"""Fixed-point LIF/LI neurons: the three implementations agree, the dynamics are those
of the float neurons up to rounding, and bad parameters are refused."""

import pytest
import torch

import norse.torch as norse
from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters
from norse.torch.quantization import (
    QuantLI,
    QuantLICell,
    QuantLIF,
    QuantLIFCell,
    _kernels,
)

P = LIFParameters(alpha=torch.tensor(20.0))


def _run(module, x, state, mode, monkeypatch):
    """Outputs, last state and gradients with the kernel, the step function or the
    reference step written with autograd."""
    module.fused = mode != "reference"
    with monkeypatch.context() as patch:
        if mode == "step":
            patch.setattr(_kernels, "AVAILABLE", False)
        x = x.detach().clone().requires_grad_()
        state = type(state)(*(t.detach().clone().requires_grad_() for t in state))
        output, last = module(x, state)
        weights = torch.linspace(-1, 1, x.shape[-1], dtype=x.dtype)
        loss = (output * weights).sum() + (last.v * weights).sum() + last.i.sum()
        loss.backward()
    return [output, last.v, last.i, x.grad, state.v.grad, state.i.grad]


@pytest.mark.parametrize("kind", [QuantLIF, QuantLI])
@pytest.mark.parametrize("bits, decay_bits", [(16, 12), (12, 7), (6, 3), (20, 4)])
def test_kernel_step_and_reference_agree(kind, bits, decay_bits, monkeypatch):
    torch.manual_seed(bits + decay_bits)
    p = P if kind is QuantLIF else LIParameters()
    module = kind(p, state_bits=bits, frac_bits=bits - 5, decay_bits=decay_bits)
    x = torch.randn(30, 4, 20) * 2
    start = LIFFeedForwardState(torch.randn(4, 20) * 0.5, torch.randn(4, 20))
    results = {
        mode: _run(module, x, start, mode, monkeypatch)
        for mode in ("kernel", "step", "reference")
    }
    for mode in ("kernel", "step"):
        for got, expected in zip(results[mode][:3], results["reference"][:3]):
            assert torch.equal(got, expected), mode  # values: exactly
        for got, expected in zip(results[mode][3:], results["reference"][3:]):
            assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), mode
    if kind is QuantLIF:
        rate = results["kernel"][0].mean()
        assert 0.01 < rate < 0.6


def test_cells_equal_the_time_modules():
    torch.manual_seed(2)
    x = torch.randn(25, 3, 8) * 3
    for cell, time_module, p in (
        (QuantLIFCell, QuantLIF, P),
        (QuantLICell, QuantLI, LIParameters()),
    ):
        a = cell(p, frac_bits=11)
        b = time_module(p, frac_bits=11)
        state, outputs = None, []
        for step in x:
            out, state = a(step, state)
            outputs.append(out)
        expected, last = b(x)
        assert torch.equal(torch.stack(outputs), expected)
        assert torch.equal(state.v, last.v)


def test_trainable_parameters_get_gradients(monkeypatch):
    torch.manual_seed(3)
    p = LIFParameters(
        tau_mem_inv=torch.nn.Parameter(torch.full((6,), 100.0)),
        v_th=torch.nn.Parameter(torch.full((6,), 0.8)),
        v_reset=torch.nn.Parameter(torch.tensor(-0.1)),
        v_leak=torch.nn.Parameter(torch.tensor(0.05)),
        alpha=torch.tensor(20.0),
    )
    module = QuantLIF(p, frac_bits=10)
    assert not _kernels.usable(torch.zeros(2, 2), (module.v_th,))
    x = torch.randn(20, 2, 6) * 3
    grads = []
    for fused in (True, False):
        module.fused = fused
        module.zero_grad()
        output, _ = module(x)
        (output * torch.arange(6.0)).sum().backward()
        grads.append([module.tau_mem_inv.grad, module.v_th.grad, module.v_reset.grad])
        grads[-1].append(module.v_leak.grad)
    for fused, reference in zip(*grads):
        assert fused is not None and torch.any(fused != 0)
        assert torch.allclose(fused, reference, rtol=1e-5, atol=1e-6)


def test_decays_are_dyadic_and_parameters_on_the_grid():
    module = QuantLIF(
        LIFParameters(tau_syn_inv=torch.tensor(200.0), v_th=torch.tensor(0.3)),
        frac_bits=4,
        decay_bits=6,
    )
    ints = module.integer_parameters()
    assert ints["decay_syn"].item() == 13  # round(0.2 * 64)
    assert ints["decay_mem"].item() == 6  # round(0.1 * 64)
    assert ints["v_th"].item() == 5  # round(0.3 * 16)
    a_syn, a_mem = module.decays()
    assert a_syn.item() == 13 / 64 and a_mem.item() == 6 / 64


def test_close_to_the_float_neuron_at_high_precision():
    # decays that are dyadic already: the only difference is the state's rounding
    p = LIFParameters(tau_syn_inv=torch.tensor(250.0), tau_mem_inv=torch.tensor(125.0))
    torch.manual_seed(4)
    x = torch.rand(100, 2, 50) * 0.6
    quant = QuantLIF(p, state_bits=24, frac_bits=18, decay_bits=16)
    assert quant.compute_dtype is torch.float64
    spikes, state = quant(x)
    reference, reference_state = norse.LIF(p)(x)
    agreement = (spikes == reference).float().mean()
    assert agreement > 0.99 and reference.sum() > 50
    voltages, _ = QuantLI(LIParameters(), state_bits=24, frac_bits=18, decay_bits=16)(x)
    expected, _ = norse.LI(LIParameters())(x)
    # 0.1 and 0.2 in 16-bit decays, the voltage rounded each step
    assert torch.allclose(voltages, expected, atol=1e-3)


def test_state_saturates_at_the_format_range():
    module = QuantLICell(LIParameters(), state_bits=8, frac_bits=4)  # [-8, 7.9375]
    voltage, state = module(torch.full((3,), 1000.0))
    # i_jump saturates at 7.9375, then decays by round(0.2 * 7.9375 * 16) / 16
    assert torch.all(state.i == 7.9375 - 25 / 16)
    voltage, state = module(torch.full((3,), -1000.0), state)
    # the input saturates at -8: i_jump = 6.375 - 8, less round(0.2 * -1.625 * 16) / 16
    assert torch.all(state.i == -1.625 + 5 / 16)
    for _ in range(50):
        voltage, state = module(torch.full((3,), 1000.0), state)
    # the voltage approaches the saturated current until a tenth of the gap rounds to
    # zero (less than half a step of 1/16: a gap of at most 0.3125)
    assert torch.all((voltage >= 7.9375 - 0.3125) & (voltage <= 7.9375))


def test_compute_dtype_follows_the_exactness_bound():
    assert QuantLIF(P, state_bits=16, decay_bits=7).compute_dtype is torch.float32
    assert QuantLIF(P, state_bits=16, decay_bits=8).compute_dtype is torch.float64


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(p=LIParameters()), TypeError, "p must be LIFParameters"),
        (dict(p=LIFParameters(method="adjoint")), ValueError, "p.method='adjoint'"),
        (dict(p=LIFParameters(method="logistic")), ValueError, "p.method='logistic'"),
        (
            dict(p=LIFParameters(tau_mem_inv=torch.tensor(2000.0))),
            ValueError,
            "dt \\* p.tau_mem_inv",
        ),
        (dict(p=P, state_bits=25), ValueError, "state_bits must lie"),
        (dict(p=P, decay_bits=-1), ValueError, "decay_bits must lie"),
        (dict(p=P, dt=0.0), ValueError, "dt must be a positive float"),
        (dict(p=P, frac_bits=99), ValueError, "frac_bits must lie"),
    ],
)
def test_bad_parameters_name_themselves(kwargs, error, message):
    with pytest.raises(error, match=message):
        QuantLIF(**kwargs)


def test_missing_format_explains_itself():
    with pytest.raises(RuntimeError, match="calibrate"):
        QuantLIF(P)(torch.ones(2, 1, 3))
