"""OTTT: the weight gradient is the step's spatial gradient times the presynaptic trace,
which is BPTT's gradient for one LIF layer when the reset carries no gradient."""

import math

import pytest
import torch

from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    lif_feed_forward_step,
)
from norse.torch.functional.ottt import OTTTTrace, ottt_gradient, ottt_trace_step
from norse.torch.functional.threshold import threshold
from norse.torch.module.leaky_integrator import LICell
from norse.torch.module.lif import LIFCell
from norse.torch.module.lif_box import LIFBoxCell
from norse.torch.module.ottt import OTTT

F64 = torch.float64
DT = 1e-3
P = LIFParameters(v_th=torch.tensor(0.05), alpha=torch.tensor(4.0))


def test_with_an_instantaneous_synapse_the_trace_is_the_papers():
    # c = dt * tau_syn_inv = 1: a_hat = lambda * a_hat + s with lambda = 1 - dt * tau_mem_inv
    s = torch.rand(20, 3, dtype=F64)
    trace = OTTTTrace(torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64))
    expected = torch.zeros(3, dtype=F64)
    for s_t in s:
        trace = ottt_trace_step(s_t, trace, 1 / DT, 100.0, DT)
        expected = 0.9 * expected + s_t
        torch.testing.assert_close(trace.a, expected)


def _hand_trace(s, t, a, c):
    """a_hat^t = sum_{tau <= sigma <= t} (1 - c)^(sigma - tau) (1 - a)^(t - sigma) s^tau."""
    return sum(
        (1 - c) ** (sigma - tau) * (1 - a) ** (t - sigma) * s[tau]
        for tau in range(t + 1)
        for sigma in range(tau, t + 1)
    )


def test_a_tiny_two_layer_network_against_a_hand_computed_gradient():
    # input -> w1 -> LIF -> w2 -> LIF -> w3, b3 -> output; loss sum_t (o_t - y_t)^2
    s = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    y = [0.3, -0.2, 0.5, 0.1, 0.0, 0.4, -0.1, 0.2]
    w1, w2, w3, b3 = 2.0, 3.0, 0.7, 0.1
    # the default time constants (1/100, 1/200 s); v_th as stored in float32
    a, c = DT * 100.0, DT * 200.0
    th, alpha = P.v_th.item(), P.alpha.item()

    def neuron(current, v, i):
        i_jump = i + current
        v_decayed = v + a * (-v + i_jump)
        z = float(v_decayed > th)
        psi = 1 / (alpha * abs(v_decayed - th) + 1) ** 2
        return z, psi, (1 - z) * v_decayed, (1 - c) * i_jump

    v1 = i1 = v2 = i2 = 0.0
    grads = dict(w1=0.0, w2=0.0, w3=0.0, b3=0.0)
    z1s, spikes = [], 0
    for t in range(len(s)):
        z1, psi1, v1, i1 = neuron(w1 * s[t], v1, i1)
        z1s.append(z1)
        z2, psi2, v2, i2 = neuron(w2 * z1, v2, i2)
        spikes += z1 + z2
        g_o = 2 * (w3 * z2 + b3 - y[t])
        grads["w3"] += g_o * z2
        grads["b3"] += g_o
        g_current2 = g_o * w3 * psi2 * a  # dL_t/dI2_t through this step only
        grads["w2"] += g_current2 * _hand_trace(z1s, t, a, c)
        g_current1 = g_current2 * w2 * psi1 * a
        grads["w1"] += g_current1 * _hand_trace(s, t, a, c)
    assert spikes >= 4 and grads["w1"] != 0

    layers = [torch.nn.Linear(1, 1, bias=False).to(F64) for _ in range(2)]
    layers.append(torch.nn.Linear(1, 1).to(F64))
    with torch.no_grad():
        for layer, value in zip(layers, (w1, w2, w3)):
            layer.weight.fill_(value)
        layers[2].bias.fill_(b3)
    net = OTTT(layers[0], LIFCell(P), layers[1], LIFCell(P), layers[2]).to(F64)
    for s_t, y_t in zip(s, y):
        out = net(torch.tensor([[s_t]], dtype=F64))
        ((out - y_t) ** 2).sum().backward()
    for name, value in grads.items():
        layer = layers[int(name[1]) - 1]
        got = (layer.bias if name == "b3" else layer.weight).grad.item()
        assert math.isclose(got, value, rel_tol=1e-12, abs_tol=1e-15), name


def _layer(seed=0):
    generator = torch.Generator().manual_seed(seed)
    w_in = torch.randn(6, 4, generator=generator, dtype=F64)
    b_in = torch.randn(6, generator=generator, dtype=F64) * 0.1
    w_out = torch.randn(2, 6, generator=generator, dtype=F64)
    b_out = torch.randn(2, generator=generator, dtype=F64)
    return w_in, b_in, w_out, b_out


def _bptt(x, targets, params, detach_reset):
    """BPTT through one LIF layer and a linear readout, loss at every step. With
    ``detach_reset`` the reset subtracts a detached amount: the membrane's only path
    through time is its leak."""
    w_in, b_in, w_out, b_out = (p.clone().requires_grad_() for p in params)
    v = torch.zeros(x.shape[1], 6, dtype=F64)
    i = torch.zeros_like(v)
    loss, spikes = 0, 0
    for x_t, y_t in zip(x, targets):
        current = x_t @ w_in.T + b_in
        z_reference, _ = lif_feed_forward_step(
            current.detach(), LIFFeedForwardState(v.detach(), i.detach()), P, DT
        )
        i_jump = i + current
        v_decayed = v + DT * P.tau_mem_inv * ((P.v_leak - v) + i_jump)
        i = i_jump - DT * P.tau_syn_inv * i_jump
        z = threshold(v_decayed - P.v_th, P.method, P.alpha)
        assert torch.equal(z, z_reference)  # the package's LIF step
        if detach_reset:
            v = v_decayed - (z * (v_decayed - P.v_reset)).detach()
        else:
            v = (1 - z) * v_decayed + z * P.v_reset
        spikes += z.sum()
        loss = loss + ((z @ w_out.T + b_out - y_t) ** 2).sum()
    loss.backward()
    assert spikes > 10
    return [w_in.grad, b_in.grad, w_out.grad, b_out.grad]


def _ottt(x, targets, params):
    w_in, b_in, w_out, b_out = params
    hidden, readout = torch.nn.Linear(4, 6).to(F64), torch.nn.Linear(6, 2).to(F64)
    with torch.no_grad():
        for tensor, value in zip(
            (hidden.weight, hidden.bias, readout.weight, readout.bias), params
        ):
            tensor.copy_(value)
    net = OTTT(hidden, LIFCell(P), readout)
    for x_t, y_t in zip(x, targets):
        ((net(x_t) - y_t) ** 2).sum().backward()
    return [
        hidden.weight.grad,
        hidden.bias.grad,
        readout.weight.grad,
        readout.bias.grad,
    ]


def test_one_layer_ottt_is_bptt_when_the_reset_carries_no_gradient():
    torch.manual_seed(0)
    x = (torch.rand(40, 3, 4) < 0.5).to(F64) * 4
    targets = torch.randn(40, 3, 2, dtype=F64)
    params = _layer()
    ottt = _ottt(x, targets, params)
    for got, expected in zip(ottt, _bptt(x, targets, params, detach_reset=True)):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    # the reset's gradient through time is what OTTT leaves out
    with_reset = _bptt(x, targets, params, detach_reset=False)
    assert not torch.allclose(ottt[0], with_reset[0], rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(ottt[2], with_reset[2])  # the readout's is exact


def test_a_convolution_traces_as_the_equivalent_linear_layer():
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(1, 3, kernel_size=4).to(F64)
    linear = torch.nn.Linear(16, 3).to(F64)
    readouts = [torch.nn.Linear(3, 2).to(F64) for _ in range(2)]
    with torch.no_grad():
        linear.weight.copy_(conv.weight.reshape(3, 16))
        linear.bias.copy_(conv.bias)
        readouts[1].load_state_dict(readouts[0].state_dict())
    with_conv = OTTT(conv, LIFCell(P), torch.nn.Flatten(), readouts[0])
    with_linear = OTTT(torch.nn.Flatten(), linear, LIFCell(P), readouts[1])
    for _ in range(30):
        x = (torch.rand(2, 1, 4, 4) < 0.5).to(F64) * 2
        target = torch.randn(2, 2, dtype=F64)
        for net in (with_conv, with_linear):
            ((net(x) - target) ** 2).sum().backward()
    torch.testing.assert_close(conv.weight.grad.reshape(3, 16), linear.weight.grad)
    torch.testing.assert_close(conv.bias.grad, linear.bias.grad)
    torch.testing.assert_close(readouts[0].weight.grad, readouts[1].weight.grad)
    assert linear.weight.grad.abs().max() > 0


def test_ottt_gradient_is_the_outer_product():
    g = torch.tensor([[1.0, 2.0]])
    trace = torch.tensor([[3.0, 0.0, -1.0]])
    torch.testing.assert_close(ottt_gradient(g, trace), g.T @ trace)
    with pytest.raises(ValueError, match="grad_current and trace must be"):
        ottt_gradient(torch.ones(2, 2), torch.ones(3, 2))


def test_memory_does_not_grow_with_time():
    torch.manual_seed(3)
    net = OTTT(
        torch.nn.Linear(8, 16), LIFCell(P), torch.nn.Linear(16, 16), LIFCell(P),
        torch.nn.Linear(16, 2), LICell(),
    )  # fmt: skip
    saved_per_step = []
    sizes = []
    x = torch.rand(4, 8) * 3
    for t in range(300):
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(
            lambda tensor: saved.append(tensor.numel()) or tensor, lambda tensor: tensor
        ):
            loss = net(x).pow(2).sum()
        loss.backward()  # frees this step's graph
        saved_per_step.append(sum(saved))
        sizes.append(net.state_size())
    assert len(set(saved_per_step[1:])) == 1  # one step's graph, whatever t
    assert sizes[10] == sizes[-1]
    assert net.layers[0].weight.grad.abs().max() > 0


def test_the_gradient_of_an_li_readout_is_exact():
    # An LI has no reset: the trace of its input weights is its exact derivative.
    torch.manual_seed(4)
    readout = torch.nn.Linear(3, 2).to(F64)
    net = OTTT(readout, LICell())
    x = torch.randn(25, 5, 3, dtype=F64)
    targets = torch.randn(25, 5, 2, dtype=F64)
    for x_t, y_t in zip(x, targets):
        ((net(x_t) - y_t) ** 2).sum().backward()
    got = readout.weight.grad.clone()
    readout.weight.grad = None
    state, loss = None, 0
    cell = LICell().to(F64)
    for x_t, y_t in zip(x, targets):
        y, state = cell(readout(x_t), state)
        loss = loss + ((y - y_t) ** 2).sum()
    loss.backward()
    torch.testing.assert_close(got, readout.weight.grad)


def test_bad_layers_and_inputs_are_named():
    with pytest.raises(ValueError, match="must be followed directly by a LIFCell"):
        OTTT(torch.nn.Linear(2, 2), torch.nn.Flatten(), LIFCell())
    with pytest.raises(ValueError, match="must follow a synapse layer"):
        OTTT(LIFCell(), torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="BatchNorm1d.*has parameters"):
        OTTT(torch.nn.Linear(2, 2), LIFCell(), torch.nn.BatchNorm1d(2))
    with pytest.raises(ValueError, match="supports LIFCell and LICell"):
        OTTT(torch.nn.Linear(2, 2), LIFBoxCell())
    with pytest.raises(ValueError, match="adjoint"):
        OTTT(torch.nn.Linear(2, 2), LIFCell(LIFParameters(method="adjoint")))
    with pytest.raises(ValueError, match="tau_mem_inv must be a scalar"):
        OTTT(torch.nn.Linear(2, 2), LIFCell(LIFParameters(tau_mem_inv=torch.ones(2))))(
            torch.ones(1, 2)
        )
    net = OTTT(torch.nn.Linear(2, 2), LIFCell())
    net(torch.ones(3, 2))
    with pytest.raises(ValueError, match="call reset\\(\\)"):
        net(torch.ones(4, 2))
    net.reset()
    assert net(torch.ones(4, 2)).shape == (4, 2)
