r"""Online training through time (OTTT) for feed-forward LIF networks.

:class:`OTTT` runs a chain of synapse layers (``torch.nn.Linear``, ``torch.nn.Conv1d``
/``2d``/``3d``) and neuron cells (:class:`.LIFCell`, :class:`.LICell`) one time step per
call. The neurons' state is carried forward without its graph, and each synapse layer
keeps the presynaptic trace :math:`\hat a^t` of its input
(:mod:`norse.torch.functional.ottt`). A loss of the step's output and its
``backward()`` then backpropagate through the layers at this step only, and the weight
gradient that autograd accumulates in ``.grad`` is :math:`g_I^t \otimes \hat a^t`:

.. code-block:: python

    for x, y in data:                      # x: (T, batch, ...)
        optimizer.zero_grad()
        net.reset()
        for t in range(len(x)):            # (iterating x would unbind all T views)
            loss = loss_fn(net(x[t]), y) / len(x)
            loss.backward()                # frees the step's graph
        optimizer.step()

Memory holds one step's graph and the traces, whatever the number of steps.
"""

from typing import Any, List, Optional

import torch
from torch.func import functional_call

from norse.torch.functional.leaky_integrator import (
    LIParameters,
    LIState,
    li_feed_forward_step,
)
from norse.torch.functional.lif import (
    LIFFeedForwardState,
    LIFParameters,
    lif_feed_forward_step,
)
from norse.torch.functional.ottt import OTTTTrace, ottt_trace_step

__all__ = ["OTTT"]

SYNAPSES = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def _is_neuron(layer: torch.nn.Module) -> bool:
    p = getattr(layer, "p", None)
    return isinstance(p, (LIFParameters, LIParameters)) and hasattr(layer, "dt")


def _detached(state: Any) -> Any:
    return type(state)(*(tensor.detach() for tensor in state))


class OTTT(torch.nn.Module):
    r"""A feed-forward spiking network trained online by OTTT, one step per call.

    Parameters:
        *layers (torch.nn.Module): in order; every synapse layer (``Linear`` or
            ``ConvNd``) is followed directly by a :class:`.LIFCell` or
            :class:`.LICell` (its postsynaptic neurons, whose time constants filter the
            trace) or by no neuron at all (a readout without memory, whose gradient is
            exact). Modules without parameters and state (``Flatten``, pooling,
            ``Dropout``) may stand between a neuron and the next synapse layer. A
            single ``torch.nn.Sequential`` (or ``SequentialState``) is unpacked.

    Shapes: the input of one step, e.g. ``(batch, features)``; returns the last
    layer's output at that step.
    """

    def __init__(self, *layers: torch.nn.Module):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], torch.nn.Sequential):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("OTTT needs at least one layer")
        self.layers = torch.nn.ModuleList(layers)
        #: for each synapse layer, the index of its neuron cell (None: none follows)
        self._neuron_of: List[Optional[int]] = []
        for index, layer in enumerate(layers):
            following = layers[index + 1] if index + 1 < len(layers) else None
            if isinstance(layer, SYNAPSES):
                if following is not None and _is_neuron(following):
                    self._check_neuron(following, index + 1)
                    self._neuron_of.append(index + 1)
                elif any(_is_neuron(later) for later in layers[index + 1 :]):
                    raise ValueError(
                        f"layer {index} ({type(layer).__name__}) must be followed directly "
                        f"by a LIFCell or LICell, got {type(following).__name__}"
                    )
                else:
                    self._neuron_of.append(None)
            elif _is_neuron(layer):
                self._neuron_of.append(None)
                previous = layers[index - 1] if index > 0 else None
                if not isinstance(previous, SYNAPSES):
                    raise ValueError(
                        f"layer {index} ({type(layer).__name__}) must follow a synapse "
                        f"layer (Linear or ConvNd), got {type(previous).__name__}"
                    )
            else:
                if hasattr(layer, "p"):
                    raise ValueError(
                        f"layer {index} ({type(layer).__name__}): OTTT supports LIFCell "
                        "and LICell neurons"
                    )
                if any(True for _ in layer.parameters()):
                    raise ValueError(
                        f"layer {index} ({type(layer).__name__}) has parameters but is no "
                        "synapse layer (Linear, Conv1d/2d/3d): OTTT cannot trace it"
                    )
                self._neuron_of.append(None)
        self.reset()

    @staticmethod
    def _check_neuron(layer: torch.nn.Module, index: int) -> None:
        if getattr(layer.p, "method", None) == "adjoint":
            raise ValueError(
                f"layer {index}: OTTT needs a surrogate gradient, got p.method='adjoint'"
            )

    def reset(self) -> None:
        """Forgets the neuron states and the traces: the next step starts at rest."""
        self._states: List[Any] = [None] * len(self.layers)
        self._traces: List[Optional[OTTTTrace]] = [None] * len(self.layers)
        self._bias_traces: List[Optional[OTTTTrace]] = [None] * len(self.layers)

    def _trace(self, index: int, x: torch.Tensor):
        """The presynaptic traces of synapse layer ``index`` after input ``x``."""
        neuron = self._neuron_of[index]
        if neuron is None:  # no membrane after it: the gradient of the step is exact
            return x, torch.ones((), dtype=x.dtype, device=x.device)
        p, dt = self.layers[neuron].p, self.layers[neuron].dt
        if self._traces[index] is None:
            zeros = torch.zeros_like(x)
            self._traces[index] = OTTTTrace(zeros, zeros)
            scalar = torch.zeros((), dtype=x.dtype, device=x.device)
            self._bias_traces[index] = OTTTTrace(scalar, scalar)
        elif self._traces[index].a.shape != x.shape:
            raise ValueError(
                f"layer {index} got input of shape {tuple(x.shape)} but its trace has "
                f"{tuple(self._traces[index].a.shape)}; call reset() to start a new sequence"
            )
        self._traces[index] = ottt_trace_step(
            x, self._traces[index], p.tau_syn_inv, p.tau_mem_inv, dt
        )
        self._bias_traces[index] = ottt_trace_step(
            torch.ones_like(self._bias_traces[index].a),
            self._bias_traces[index],
            p.tau_syn_inv,
            p.tau_mem_inv,
            dt,
        )
        return self._traces[index].a, self._bias_traces[index].a

    def _synapse(self, index: int, layer: torch.nn.Module, x: torch.Tensor):
        trace, bias_trace = self._trace(index, x.detach())
        bias = layer.bias
        # The value is the layer's output; the input gradient comes from x, the weight
        # gradient from the trace (g_I x a_hat) and the bias gradient from its trace.
        out = functional_call(
            layer,
            {
                "weight": layer.weight.detach(),
                "bias": None if bias is None else bias.detach(),
            },
            (x,),
        )
        through_trace = functional_call(
            layer, {"weight": layer.weight, "bias": None}, (trace,)
        )
        if bias is not None:
            spatial = () if isinstance(layer, torch.nn.Linear) else layer.kernel_size
            shape = (-1,) + (1,) * len(spatial)
            through_trace = through_trace + bias.reshape(shape) * bias_trace
        return out + (through_trace - through_trace.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One time step: the output of the last layer."""
        for index, layer in enumerate(self.layers):
            if isinstance(layer, SYNAPSES):
                x = self._synapse(index, layer, x)
            elif _is_neuron(layer):
                state = self._states[index]
                if state is None:
                    rest = torch.as_tensor(layer.p.v_leak).to(x).expand_as(x)
                    zeros = torch.zeros_like(x)
                    state = (
                        LIFFeedForwardState(rest, zeros)
                        if isinstance(layer.p, LIFParameters)
                        else LIState(rest, zeros)
                    )
                step = (
                    lif_feed_forward_step
                    if isinstance(layer.p, LIFParameters)
                    else li_feed_forward_step
                )
                x, state = step(x, state, layer.p, layer.dt)
                # the next step starts from the value, not the graph: no temporal path
                self._states[index] = _detached(state)
            else:
                x = layer(x)
        return x

    def state_size(self) -> int:
        """Numbers held between steps (neuron states and traces): constant in time."""
        total = 0
        for held in (self._states, self._traces, self._bias_traces):
            for item in held:
                if item is not None:
                    total += sum(tensor.numel() for tensor in item)
        return total
