r"""The Heaviside step function used as the forward pass of every spike threshold.

.. math::
    H(x) = \begin{cases} 0, & x \le 0 \\ 1, & x > 0 \end{cases}
"""

import torch


def heaviside(data: torch.Tensor) -> torch.Tensor:
    """``1`` where ``data > 0`` and ``0`` elsewhere, in the dtype of ``data``.

    No gradient flows through it; use :func:`norse.torch.functional.threshold.threshold`
    with a surrogate method to train through spikes.
    """
    return torch.gt(data, 0.0).to(data.dtype)
