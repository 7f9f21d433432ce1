"""The fused-kernel dispatch of the module forms (norse.torch.module.fast_path)."""

import torch
from torch.utils.checkpoint import checkpoint

import norse.torch as norse
from norse.torch.module import fast_path


def test_the_grad_flag_probe_saves_nothing_into_the_callers_hooks(monkeypatch):
    # The first call with a new pattern of requires_grad flags probes the reference
    # step with gradients on; a checkpoint counts the tensors its forward saves, so
    # the probe's must not reach its hooks.
    monkeypatch.setattr(fast_path, "_GRAD_FLAGS", {})
    layer = norse.LIF()
    x = torch.rand(20, 4, 8, requires_grad=True)

    def run(x):
        with torch.no_grad():
            start = layer.initial_state(x)
        return layer(x, start)[0]

    checkpoint(run, x, use_reentrant=False).sum().backward()
    expected = torch.autograd.grad(run(x).sum(), x)[0]
    torch.testing.assert_close(x.grad, expected)
