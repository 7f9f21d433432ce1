"""RegularizationCell: accumulating a term over steps, reset."""

import pytest
import torch

from norse.torch.functional.regularization import voltage_accumulator
from norse.torch.module.lif import LIFCell
from norse.torch.module.regularization import RegularizationCell


def test_counts_spikes_over_steps():
    cell = LIFCell()
    r = RegularizationCell()
    data = torch.ones(5, 2) + 10
    z, s = cell(data)
    z, count = r(z, s)
    assert z.shape == (5, 2) and count == 10
    z, s = cell(data, s)
    z, count = r(z, s)
    assert count == 20 and r.state == 20
    r.reset()
    _, count = r(*cell(data, s))
    assert count == 10  # counted from zero again


def test_voltage_accumulator_and_initial_state():
    cell = LIFCell()
    r = RegularizationCell(voltage_accumulator, state=torch.ones(3, 2))
    z, s = cell(torch.ones(3, 2))
    _, total = r(z, s)
    torch.testing.assert_close(total, 1 + s.v)


def test_bad_accumulator():
    with pytest.raises(TypeError, match="accumulator must be callable"):
        RegularizationCell(accumulator="spikes")
