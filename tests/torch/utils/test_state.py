"""Which modules count as stateful (norse.torch.module.snn.is_module_stateful, also at
Norse 1.1's path norse.torch.utils.state._is_module_stateful)."""

import torch

from norse.torch.module.leaky_integrator import LILinearCell
from norse.torch.module.lif import LIF, LIFCell, LIFRecurrent
from norse.torch.module.lift import Lift
from norse.torch.module.sequential import SequentialState
from norse.torch.module.snn import is_module_stateful
from norse.torch.utils.state import _is_module_stateful


class _WithState(torch.nn.Module):
    def forward(self, x, state=None):
        return x, state


class _Declared(torch.nn.Module):
    is_stateful = True

    def forward(self, *args):
        return args


def test_stateful_modules():
    for module in (
        LIFCell(),
        LIF(),
        LIFRecurrent(2, 3),
        LILinearCell(2, 3),
        torch.nn.RNN(2, 3),
        torch.nn.LSTM(2, 3),
        SequentialState(torch.nn.Linear(1, 1)),
        Lift(LIFCell()),
        _WithState(),
        _Declared(),
        torch.compile(LIFCell()),  # judged by the module it wraps
    ):
        assert is_module_stateful(module), module


def test_stateless_modules():
    for module in (
        torch.nn.Linear(2, 2),
        torch.nn.Conv2d(1, 1, 1),
        torch.nn.Sequential(LIFCell()),
        Lift(torch.nn.Linear(2, 2)),
        torch.compile(torch.nn.ReLU()),
    ):
        assert not is_module_stateful(module), module


def test_norse_1_1_path():
    assert _is_module_stateful is is_module_stateful
