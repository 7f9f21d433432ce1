"""Shared checks of the fused-kernel tests."""

import pytest
import torch
from torch.utils._pytree import tree_leaves

from norse.torch.fused import reference_only


@pytest.fixture(scope="session")
def assert_same():
    """``assert_same(fused, reference, rtol)``: each a tuple ``(outputs, states,
    gradients)``; outputs and states must agree bit for bit, gradients to ``rtol`` of
    their scale (``1 + max |expected|``)."""

    def check(fused, reference, rtol: float) -> None:
        out, states, grads = fused
        out_ref, states_ref, grads_ref = reference
        assert torch.equal(out, out_ref)
        for value, expected in zip(states, states_ref):
            assert torch.equal(value, expected)
        for grad, expected in zip(grads, grads_ref):
            scale = 1.0 + expected.abs().max().item()
            assert (grad - expected).abs().max().item() <= rtol * scale

    return check


def state_loss(spikes, state):
    """A loss that weighs the spikes and every state field differently."""
    return spikes.sum() + sum(
        (0.5 + k) * v.sum() for k, v in enumerate(tree_leaves(state))
    )


@pytest.fixture(scope="session")
def loss():
    """:func:`state_loss`."""
    return state_loss


@pytest.fixture(scope="session")
def compare_with_reference():
    """``compare(run, tensors, dtype, state_rtol=0)``: ``run()`` -> (spikes, state) on
    the fused path and the reference loop: outputs equal, states equal (or to
    ``state_rtol``); in float64 the gradients of :func:`state_loss` with respect to
    ``tensors`` to 1e-10."""

    def compare(run, tensors, dtype, state_rtol: float = 0.0) -> None:
        f64 = dtype == torch.float64
        spikes, state = run()
        grads = torch.autograd.grad(state_loss(spikes, state), tensors) if f64 else ()
        with reference_only():
            spikes_ref, state_ref = run()
            loss_ref = state_loss(spikes_ref, state_ref)
            expected = torch.autograd.grad(loss_ref, tensors) if f64 else ()
        assert spikes.sum() > 0
        assert torch.equal(spikes, spikes_ref)
        for a, b in zip(tree_leaves(state), tree_leaves(state_ref)):
            assert a.shape == b.shape
            if state_rtol:
                torch.testing.assert_close(a, b, rtol=state_rtol, atol=1e-30)
            else:
                assert torch.equal(a, b)
        for a, b in zip(grads, expected):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)

    return compare


@pytest.fixture
def stepped_runs(monkeypatch):
    """A list that gets one entry per run of the generated stepped driver
    (:func:`norse.torch.fused.generate.recurrent.run`)."""
    from norse.torch.fused.generate import recurrent as generated_recurrent

    calls = []
    original = generated_recurrent.run

    def spy(*args, **kwargs):
        calls.append(True)
        return original(*args, **kwargs)

    monkeypatch.setattr(generated_recurrent, "run", spy)
    return calls
