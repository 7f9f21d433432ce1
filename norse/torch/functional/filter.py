r"""Exponential smoothing (an exponential filter) of a time series.

.. math::
    s_t = x_t + \alpha\, s_{t-1}, \qquad \alpha = e^{-\Delta t\, \tau_{filter}^{-1}}

:func:`exp_filter_step` computes one step; :class:`~norse.torch.module.exp_filter.ExpFilter`
runs it over a sequence after a linear layer.
"""

from typing import Union

import torch


def exp_filter_step(
    old_value: torch.Tensor,
    new_value: torch.Tensor,
    parameter: Union[float, torch.Tensor],
) -> torch.Tensor:
    """One step of the exponential filter: ``parameter * old_value + new_value``.

    Parameters:
        old_value (torch.Tensor): the filtered value of the previous step :math:`s_{t-1}`
        new_value (torch.Tensor): the input of this step :math:`x_t`
        parameter (float): smoothing factor :math:`\\alpha = e^{-\\Delta t / \\tau}`

    Returns:
        :math:`s_t`, broadcast from both inputs.
    """
    if isinstance(parameter, (int, float)) and not isinstance(parameter, bool):
        # a float factor, as in Norse 1.1 (integer values give a float result)
        parameter = float(parameter)
    return parameter * old_value + new_value
