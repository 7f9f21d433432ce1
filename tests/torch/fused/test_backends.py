"""The package with its core dependencies alone: missing kernel backends fall back."""

import subprocess
import sys
import textwrap

from norse.torch.fused import registry

_WITHOUT_BACKENDS = textwrap.dedent(
    """
    import sys, warnings
    for name in ("numba", "llvmlite", "triton"):
        sys.modules[name] = None  # import fails: as if not installed
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import torch
        import norse.torch as norse
        from norse.torch.fused.registry import reference_only

        torch.manual_seed(0)
        layers = [
            norse.LIF(),
            norse.LSNN(),
            norse.LIFRecurrent(6, 5),
            norse.SequentialState(
                norse.Lift(torch.nn.Linear(6, 4)), norse.LIF(), norse.LI()
            ),
            norse.Lift(torch.nn.MaxPool2d(2)),
        ]
        inputs = [
            torch.rand(8, 2, 6) * 3,
            torch.rand(8, 2, 6) * 3,
            torch.rand(8, 2, 6) * 3,
            (torch.rand(8, 2, 6) > 0.5).float(),
            (torch.rand(8, 2, 1, 4, 4) > 0.5).float(),
        ]
        for layer, x in zip(layers, inputs):
            x.requires_grad_()
            out = layer(x)
            out = out[0] if isinstance(out, tuple) else out
            (grad,) = torch.autograd.grad(out.sum(), x)
            with reference_only():
                expected = layer(x)
            expected = expected[0] if isinstance(expected, tuple) else expected
            (expected_grad,) = torch.autograd.grad(expected.sum(), x)
            assert torch.equal(out, expected), type(layer).__name__
            assert torch.equal(grad, expected_grad), type(layer).__name__
            with torch.no_grad():
                layer(x)
    messages = [
        str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)
    ]
    unavailable = [m for m in messages if "kernels are unavailable" in m]
    assert len(unavailable) == 1, messages
    assert "pip install numba" in unavailable[0], unavailable[0]
    print("ok")
    """
)


def test_without_numba_llvmlite_and_triton_layers_run_the_reference():
    """With the optional backends unimportable, every layer runs (forward, backward,
    no_grad) with the reference's results, and one warning names the cause."""
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_BACKENDS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_backend_available_with_the_backend_installed():
    assert registry.backend_available("cpu")
    assert not registry.backend_available("mps")  # no kernels for it
