import torch

from norse.torch.functional.adjoint.lif_adjoint import lif_adjoint_step
from norse.torch.functional.adjoint.lif_mc_adjoint import lif_mc_adjoint_step
from norse.torch.functional.lif import LIFParameters, LIFState
from norse.torch.functional.lif_mc import lif_mc_step


def _case(seed=0):
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=generator, dtype=torch.float64)

    state = LIFState(
        (rand(2, 4) > 0.5).double(), 0.9 + 0.09 * rand(2, 4), 20 * rand(2, 4)
    )
    weights = rand(4, 3) * 2, rand(4, 4) - 0.5, (rand(4, 4) - 0.5) * 10
    return rand(2, 3), state, weights


def test_forward_equals_the_multi_compartment_step():
    x, state, weights = _case()
    p = LIFParameters(method="heaviside")
    z, s = lif_mc_adjoint_step(x, state, *weights, p)
    z_ref, s_ref = lif_mc_step(x, state, *weights, p)
    assert torch.equal(z, z_ref) and z.sum() > 0
    for got, want in zip(s, s_ref):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-14)


def test_gradient_is_the_lif_adjoint_composed_with_the_coupling():
    """The coupling is linear and acts after the reset: the gradient with respect to
    the state before it is λ (I + dt G), fed into the LIF step's adjoint."""
    x, state, (w_in, w_rec, g) = _case(1)
    dt = 0.001
    g = g.requires_grad_()
    x = x.requires_grad_()
    z, s = lif_mc_adjoint_step(x, state, w_in, w_rec, g, LIFParameters(), dt)
    weights = torch.linspace(0.5, 1.5, 8, dtype=torch.float64).reshape(2, 4)
    assert z.sum() > 0  # the jump condition takes part
    (s.v * weights).sum().backward()
    grad_x, grad_g = x.grad.clone(), g.grad.clone()

    x.grad = None
    z2, lif_state = lif_adjoint_step(x, state, w_in, w_rec, LIFParameters(), dt)
    upstream = weights + dt * weights @ g.detach()  # λ (I + dt G)
    (lif_state.v * upstream).sum().backward()
    torch.testing.assert_close(grad_x, x.grad)
    torch.testing.assert_close(grad_g, dt * weights.T @ lif_state.v.detach())
