"""The shared argument and field documentation (functional.conventions) and the time loop."""

import inspect
from typing import NamedTuple, Tuple

import pytest
import torch

import norse.torch.functional as functional
from norse.torch.functional.conventions import (
    documented_fields,
    integrate,
    step_arguments,
)
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    lif_feed_forward_step,
)


def test_documented_fields_describes_every_field_in_order():
    @documented_fields(gain="how strong")
    class Example(NamedTuple):
        """An example."""

        tau_mem_inv: torch.Tensor = torch.as_tensor(1.0)
        gain: float = 2.0

    doc = Example.__doc__
    assert doc.startswith("An example.\n\nParameters:\n")
    assert "    tau_mem_inv (torch.Tensor): inverse membrane time constant" in doc
    assert "    gain (float): how strong" in doc
    assert doc.index("tau_mem_inv") < doc.index("gain")


def test_an_undescribed_field_or_argument_fails_at_definition():
    with pytest.raises(TypeError, match="unknown"):

        @documented_fields()
        class Example(NamedTuple):
            unknown: torch.Tensor

    with pytest.raises(TypeError, match="unknown"):

        @step_arguments()
        def example_step(
            input_tensor: torch.Tensor, state: LIFFeedForwardState, unknown: int
        ) -> Tuple[torch.Tensor, LIFFeedForwardState]:
            """An example."""


def test_step_arguments_read_the_kind_of_step():
    doc = functional.lif_step_integral.__doc__
    assert "``(T, batch, input_size)``" in doc
    assert "the final :class:`LIFState`" in doc
    assert "Sparse (COO) spikes" in functional.lif_step_sparse.__doc__
    assert "(``method`` is ignored)" in functional.lif_adjoint_step.__doc__
    assert "(``lif.method`` is ignored)" in functional.lif_refrac_adjoint_step.__doc__
    doc = functional.lif_refrac_step.__doc__
    assert "``lif.z``, ``lif.v``, ``lif.i``, ``rho`` of shape" in doc


def _steps():
    for name in dir(functional):
        value = getattr(functional, name)
        if inspect.isfunction(value) and "@step_arguments" in inspect.getsource(value):
            yield name, value


@pytest.mark.parametrize("name,step", list(_steps()))
def test_every_argument_of_a_documented_step_is_described(name, step):
    doc = step.__doc__
    assert doc.count("Parameters:") == 1 and doc.count("Returns:") == 1
    for argument in inspect.signature(step).parameters:
        assert f"\n    {argument} (" in doc, f"{name}: {argument}"


def test_integrate_is_the_loop_over_time():
    torch.manual_seed(0)
    x = torch.randn(7, 2, 3) * 3
    state = LIFFeedForwardState(torch.zeros(2, 3), torch.zeros(2, 3))
    p = LIFParameters()
    spikes, final = integrate(lif_feed_forward_step, x, state, p, 0.001)
    expected, s = [], state
    for x_t in x:
        z, s = lif_feed_forward_step(x_t, s, p, 0.001)
        expected.append(z)
    assert torch.equal(spikes, torch.stack(expected))
    assert all(torch.equal(a, b) for a, b in zip(final, s))
    out, last = functional.lif_feed_forward_integral(x, state, p)
    assert torch.equal(out, spikes) and torch.equal(last.v, final.v)
