"""Shared checks of the fused-kernel tests."""

import pytest
import torch


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
