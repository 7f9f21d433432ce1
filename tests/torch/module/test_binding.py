"""The declarative binding of a model to the four module forms (module/binding.py)."""

import inspect

import pytest
import torch

import norse.torch as norse
from norse.torch.functional.lif_ex import (
    LIFExFeedForwardState,
    LIFExParameters,
    LIFExState,
    lif_ex_feed_forward_step,
    lif_ex_step,
)
from norse.torch.module.binding import NeuronModel, Step
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell


def test_the_forms_take_norse_1_1s_arguments_and_defaults():
    for cell in (norse.LIFCell, norse.LIF, norse.LSNNCell):
        p = inspect.signature(cell).parameters["p"]
        assert p.default == cell.default_parameters
    recurrent = list(inspect.signature(norse.LIFRecurrentCell).parameters)
    assert recurrent[:3] == ["input_size", "hidden_size", "p"]
    # LSNN's adjoint flag is Norse 1.1's second (fourth) positional argument
    assert norse.LSNNCell(norse.LSNNParameters(), True).uses_adjoint
    assert norse.LSNNRecurrentCell(2, 3, norse.LSNNParameters(), True).uses_adjoint
    assert not norse.LSNNCell().uses_adjoint
    with pytest.raises(TypeError, match="LIFCell.__init__"):
        norse.LIFCell(norse.LIFParameters(), True)
    with pytest.raises(TypeError, match="adjoint"):
        norse.LIFCell(adjoint=True)


def test_a_binding_gives_four_working_forms_with_documented_arguments():
    binding = NeuronModel(
        LIFExParameters(),
        feed_forward=Step(lif_ex_feed_forward_step, LIFExFeedForwardState),
        recurrent=Step(lif_ex_step, LIFExState),
        initial_values={"v": "v_leak"},
        positive_parameters=("delta_T",),
    )

    class Cell(binding.Cell):
        """A cell."""

    class Recurrent(binding.Recurrent):
        """A recurrent layer."""

    assert issubclass(Cell, SNNCell) and issubclass(binding.SNN, SNN)
    assert issubclass(binding.RecurrentCell, SNNRecurrentCell)
    assert issubclass(Recurrent, SNNRecurrent)
    assert "p (LIFExParameters)" in Cell.__doc__ and "input_size" in Recurrent.__doc__
    x = torch.rand(5, 2, 3)
    spikes, state = Recurrent(3, 4)(x)
    assert spikes.shape == (5, 2, 4) and isinstance(state, LIFExState)
    reference, _ = norse.LIFExCell()(x[0])
    torch.testing.assert_close(Cell()(x[0])[0], reference)
    with pytest.raises(ValueError, match="delta_T"):
        Cell(LIFExParameters(delta_T=torch.tensor(-1.0)))
    with pytest.raises(TypeError, match="parameters must be a parameter NamedTuple"):
        NeuronModel(object(), feed_forward=binding.feed_forward)
