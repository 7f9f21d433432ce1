r"""Online training of recurrent LIF/LSNN networks by e-prop, memory constant in time.

:class:`EProp` steps a recurrent network -- populations of LIF and LSNN neurons behind
shared input and recurrent weights, read out by leaky integrators -- one time step at a
time together with its eligibility traces (:mod:`norse.torch.functional.eprop`), and
writes the e-prop gradient into the parameters' ``.grad`` when a learning signal
arrives (:meth:`EProp.learn`). No history is kept: the memory is that of the traces,
``(batch, hidden, inputs + hidden)`` numbers per trace, whatever the sequence length.
Any ``torch.optim`` optimiser then takes the step.

The network (the equations of :func:`.lif_step`/:func:`.lsnn_step`, or of the
feed-forward steps with ``detach_reset=False``):

.. math::
    I^t = W_{\text{in}} x^t + W_{\text{rec}} z^{t-1}, \qquad
    z^t = \text{LIF/LSNN}(I^t), \qquad
    y^t = \mathrm{LI}(W_{\text{out}} z^t + b_{\text{out}})

Losses are given through their derivative with respect to a *window sum* of the
readout, :math:`Y = \sum_t w^t y^t` (per-sample weights :math:`w^t`, passed to each
step): a per-step loss is a window of one step (``weight=1`` and :meth:`~EProp.learn`
after every step), a loss on the readout averaged over a period is a window of that
period (weights :math:`1/\text{length}`), learned once the period is over. The
gradient of :math:`E(Y)` is

.. math::
    \Delta W_{ji} = \sum_b L_{bj} \sum_t w_b^t\, \bar e_{bji}^t,\qquad
    L = \frac{\partial E}{\partial Y} B,

with :math:`B = W_{\text{out}}` (``feedback="symmetric"``) or a fixed random matrix
(``feedback="random"``); the readout weights and bias get their exact gradient. A loss
on the spike counts (a firing-rate regulariser) passes its derivative per neuron as
``rate_error``: :math:`\Delta W_{ji} = \partial E/\partial n_j \sum_{t,b} e_{bji}^t` for
the counts :math:`n_j = \sum_{t,b} z_{bj}^t`.
"""

from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch

from norse.torch.functional.eprop import (
    eprop_gradient,
    learning_signal,
    li_trace_step,
    lif_eligibility_zeros,
    lif_eprop_step,
    lsnn_eligibility_zeros,
    lsnn_eprop_step,
)
from norse.torch.functional.leaky_integrator import (
    LIParameters,
    LIState,
    li_feed_forward_step,
)
from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters
from norse.torch.functional.lsnn import LSNNFeedForwardState, LSNNParameters

__all__ = ["EProp"]

NeuronParameters = Union[LIFParameters, LSNNParameters]
FEEDBACK = ("symmetric", "random")


class Population(NamedTuple):
    """A group of neurons of one model inside an :class:`EProp` network.

    Parameters:
        size (int): number of neurons
        p (LIFParameters or LSNNParameters): their parameters (the type selects the
            model)
    """

    size: int
    p: NeuronParameters


def _advance_population(
    lsnn: bool,
    current: torch.Tensor,
    presynaptic: torch.Tensor,
    state,
    traces,
    filtered: LIState,
    window: torch.Tensor,
    rates: torch.Tensor,
    weight: Optional[torch.Tensor],
    p: NeuronParameters,
    readout_p: LIParameters,
    dt: float,
    detach_reset: bool,
):
    """One step of a population, its eligibility traces, their readout filter and sums."""
    step = lsnn_eprop_step if lsnn else lif_eprop_step
    z, state, traces, e = step(current, presynaptic, state, traces, p, dt, detach_reset)
    filtered_e, filtered = li_trace_step(e, filtered, readout_p, dt)
    rates = rates + e.sum(0)
    if weight is not None:
        window = window + weight[:, None, None] * filtered_e
    return z, state, traces, filtered, window, rates


class _Sums(torch.autograd.Function):
    """Identity on the window sums whose backward returns the e-prop gradients."""

    @staticmethod
    def forward(ctx, gradients, output, counts, *parameters):
        ctx.gradients = gradients
        ctx.set_materialize_grads(False)
        return output.clone(), counts.clone()

    @staticmethod
    def backward(ctx, output_error, rate_error):
        if output_error is None and rate_error is None:
            return (None,) * (3 + 4)
        return (None, None, None, *ctx.gradients(output_error, rate_error))


def _check_shape(tensor: torch.Tensor, shape: tuple, name: str) -> None:
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} must be {shape}, got {tuple(tensor.shape)}")


def _add_grad(tensor: torch.Tensor, grad: torch.Tensor) -> None:
    """Adds ``grad`` to ``tensor.grad`` as autograd would (trainable tensors only)."""
    if not tensor.requires_grad:
        return
    if tensor.grad is None:
        tensor.grad = grad.detach().clone()
    else:
        tensor.grad.add_(grad)


class EProp(torch.nn.Module):
    r"""e-prop for a recurrent network of LIF/LSNN populations with an LI readout.

    The weights are shared with their owner, not copied: an optimiser over the owner's
    parameters (or over ``EProp.parameters()``) trains them.

    Parameters:
        input_weights (torch.Tensor): :math:`W_{\text{in}}`, ``(hidden, inputs)``
        recurrent_weights (torch.Tensor): :math:`W_{\text{rec}}`, ``(hidden, hidden)``
        populations (Sequence[Population]): the neurons in order, e.g.
            ``[Population(50, LIFParameters()), Population(50, LSNNParameters())]``;
            the sizes add up to ``hidden``
        readout (torch.nn.Linear): :math:`W_{\text{out}}, b_{\text{out}}`, ``hidden ->
            outputs``
        readout_p (LIParameters): the readout integrators (scalar time constants)
        dt (float): time step (s)
        recurrent_mask (torch.Tensor, optional): ``(hidden, hidden)`` factor of the
            recurrent weights (e.g. zero on the diagonal: no autapses)
        feedback (str): ``"symmetric"`` (:math:`B = W_{\text{out}}`) or ``"random"``
            (a fixed :math:`\mathcal{N}(0, 1/\text{hidden})` matrix)
        detach_reset (bool): True: reset and threshold jump use detached spikes, as
            :func:`.lif_step`/:func:`.lsnn_step`; False: as the feed-forward steps
        generator (torch.Generator, optional): draws the random feedback
        compile (bool): run the per-synapse updates through ``torch.compile``, which
            fuses them into a few loops (several times faster on long sequences, after
            a compilation of some seconds per population type and batch size)

    Shapes: input per step ``(batch, inputs)``; :meth:`forward` returns the readout
    ``(batch, outputs)`` and the spikes ``(batch, hidden)`` of the step.
    """

    def __init__(
        self,
        input_weights: torch.Tensor,
        recurrent_weights: torch.Tensor,
        populations: Sequence[Population],
        readout: torch.nn.Linear,
        readout_p: LIParameters = LIParameters(),
        dt: float = 0.001,
        recurrent_mask: Optional[torch.Tensor] = None,
        feedback: str = "symmetric",
        detach_reset: bool = True,
        generator: Optional[torch.Generator] = None,
        compile: bool = False,
    ):
        super().__init__()
        if input_weights.dim() != 2:
            raise ValueError(
                f"input_weights must be (hidden, inputs), got {tuple(input_weights.shape)}"
            )
        hidden = input_weights.shape[0]
        _check_shape(recurrent_weights, (hidden, hidden), "recurrent_weights")
        populations = [Population(*population) for population in populations]
        for population in populations:
            if not isinstance(population.p, (LIFParameters, LSNNParameters)):
                raise TypeError(
                    "population parameters must be LIFParameters or LSNNParameters, "
                    f"got {type(population.p).__name__}"
                )
            if population.p.method == "adjoint":
                raise ValueError(
                    "e-prop needs a surrogate gradient, got p.method='adjoint'"
                )
            if isinstance(population.size, bool) or population.size < 1:
                raise ValueError(
                    f"population sizes must be >= 1, got {population.size!r}"
                )
        if sum(population.size for population in populations) != hidden:
            raise ValueError(
                "the population sizes must add up to hidden = "
                f"{hidden}, got {[population.size for population in populations]}"
            )
        if not isinstance(readout, torch.nn.Linear) or readout.in_features != hidden:
            raise ValueError(
                f"readout must be a torch.nn.Linear with in_features={hidden}, got {readout!r}"
            )
        if recurrent_mask is not None:
            _check_shape(recurrent_mask, (hidden, hidden), "recurrent_mask")
        if feedback not in FEEDBACK:
            raise ValueError(f"feedback must be one of {FEEDBACK}, got {feedback!r}")
        if not dt > 0:
            raise ValueError(f"dt must be > 0 (s), got {dt!r}")
        self.input_weights = input_weights
        self.recurrent_weights = recurrent_weights
        self.readout = readout
        self.populations = populations
        self.readout_p = readout_p
        self.dt = dt
        self.feedback = feedback
        self.detach_reset = bool(detach_reset)
        self.register_buffer("recurrent_mask", recurrent_mask, persistent=False)
        random_feedback = None
        if feedback == "random":
            random_feedback = (
                torch.randn(readout.out_features, hidden, generator=generator).to(
                    readout.weight
                )
                / hidden**0.5
            )
        self.register_buffer("random_feedback", random_feedback)
        self._advance = (
            torch.compile(_advance_population, dynamic=False)
            if compile
            else _advance_population
        )
        self.reset()

    @classmethod
    def from_cell(
        cls,
        cell: torch.nn.Module,
        readout: torch.nn.Linear,
        readout_p: LIParameters = LIParameters(),
        feedback: str = "symmetric",
        generator: Optional[torch.Generator] = None,
        compile: bool = False,
    ) -> "EProp":
        """e-prop for a :class:`.LIFRecurrentCell` or :class:`.LSNNRecurrentCell`
        (its weights, parameters, time step and autapse setting; the other arguments
        as the constructor's)."""
        for name in ("input_weights", "recurrent_weights", "p", "dt", "autapses"):
            if not hasattr(cell, name):
                raise TypeError(
                    f"cell must be a LIFRecurrentCell or LSNNRecurrentCell, got {type(cell).__name__}"
                )
        hidden = cell.recurrent_weights.shape[0]
        mask = None
        if not cell.autapses:
            mask = 1 - torch.eye(hidden).to(cell.recurrent_weights)
        return cls(
            cell.input_weights,
            cell.recurrent_weights,
            [Population(hidden, cell.p)],
            readout,
            readout_p,
            cell.dt,
            recurrent_mask=mask,
            feedback=feedback,
            detach_reset=True,
            generator=generator,
            compile=compile,
        )

    def reset(self) -> None:
        """Forgets the network state and every trace: the next step starts at rest."""
        self._z: Optional[torch.Tensor] = None
        # drop the old traces now rather than when the next step allocates new ones
        self._neurons, self._traces, self._filtered = [], [], []
        self._window_traces, self._rate_traces = [], []

    def _start(self, x: torch.Tensor) -> None:
        batch = x.shape[0]
        weights = self.input_weights
        options = {"dtype": weights.dtype, "device": weights.device}
        presynaptic = weights.shape[1] + weights.shape[0]
        self._z = torch.zeros(batch, weights.shape[0], **options)
        for population in self.populations:
            size, p = population
            rest = torch.as_tensor(p.v_leak, **options).expand(batch, size).clone()
            zeros = torch.zeros(batch, size, **options)
            if isinstance(p, LSNNParameters):
                threshold = torch.as_tensor(p.v_th, **options).expand(batch, size)
                self._neurons.append(
                    LSNNFeedForwardState(rest, zeros, threshold.clone())
                )
                traces = lsnn_eligibility_zeros(batch, size, presynaptic, **options)
            else:
                self._neurons.append(LIFFeedForwardState(rest, zeros))
                traces = lif_eligibility_zeros(batch, size, presynaptic, **options)
            self._traces.append(traces)
            self._filtered.append(
                LIState(torch.zeros_like(traces.v), torch.zeros_like(traces.v))
            )
            self._window_traces.append(torch.zeros_like(traces.v))
            self._rate_traces.append(torch.zeros(size, presynaptic, **options))
        outputs = self.readout.out_features
        leak = torch.as_tensor(self.readout_p.v_leak, **options)
        self._readout = LIState(
            leak.expand(batch, outputs).clone(), torch.zeros(batch, outputs, **options)
        )
        self._spike_filter = LIState(
            torch.zeros_like(self._z), torch.zeros_like(self._z)
        )
        self._bias_filter = LIState(
            torch.zeros((), **options), torch.zeros((), **options)
        )
        self._clear_sums()

    def _clear_sums(self) -> None:
        # Fresh tensors rather than zero_(): a snapshot taken by sums() keeps the old ones.
        z = self._z
        self._window_output = torch.zeros(
            z.shape[0], self.readout.out_features, dtype=z.dtype, device=z.device
        )
        self._window_spikes = torch.zeros_like(z)
        self._window_bias = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        self._spike_count = torch.zeros(z.shape[1], dtype=z.dtype, device=z.device)
        self._window_traces = [torch.zeros_like(t) for t in self._window_traces]
        self._rate_traces = [torch.zeros_like(t) for t in self._rate_traces]

    @property
    def window_output(self) -> torch.Tensor:
        """:math:`Y = \\sum_t w^t y^t` since the last :meth:`learn`, ``(batch, outputs)``."""
        self._require_started()
        return self._window_output

    @property
    def spike_count(self) -> torch.Tensor:
        """Spikes per neuron (summed over steps and batch) since the last :meth:`learn`."""
        self._require_started()
        return self._spike_count

    def _require_started(self) -> None:
        if self._z is None:
            raise RuntimeError(
                "no step since reset(): call the EProp module on an input first"
            )

    def _recurrent(self) -> torch.Tensor:
        if self.recurrent_mask is None:
            return self.recurrent_weights
        return self.recurrent_weights * self.recurrent_mask

    def forward(
        self, x: torch.Tensor, weight: Union[None, float, torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """One time step of the network and its traces.

        Parameters:
            x (torch.Tensor): input ``(batch, inputs)``
            weight (None, float or torch.Tensor): the step's weight :math:`w^t` in the
                window sum, a number or one per sample ``(batch,)``; None: not in the
                window (weight 0)

        Returns:
            The readout ``y`` ``(batch, outputs)`` and the spikes ``z`` ``(batch, hidden)``.
        """
        inputs = self.input_weights.shape[1]
        if x.dim() != 2 or x.shape[1] != inputs:
            raise ValueError(f"x must be (batch, {inputs}), got {tuple(x.shape)}")
        with torch.no_grad():
            x = x.to(self.input_weights.dtype)
            if self._z is None:
                self._start(x)
            elif x.shape[0] != self._z.shape[0]:
                raise ValueError(
                    f"x has batch size {x.shape[0]} but the running sequence has "
                    f"{self._z.shape[0]}; call reset() to start a new one"
                )
            if weight is not None:
                weight = torch.as_tensor(weight, dtype=x.dtype, device=x.device)
                if weight.dim() > 1 or weight.numel() not in (1, x.shape[0]):
                    raise ValueError(
                        f"weight must be a number or have shape ({x.shape[0]},), got "
                        f"{tuple(weight.shape)}"
                    )
                weight = weight.reshape(-1).expand(x.shape[0])
            z_previous = self._z
            presynaptic = torch.cat((x, z_previous), dim=1)
            current = torch.nn.functional.linear(
                x, self.input_weights
            ) + torch.nn.functional.linear(z_previous, self._recurrent())
            spikes = []
            start = 0
            for index, (size, p) in enumerate(self.populations):
                (
                    z,
                    self._neurons[index],
                    self._traces[index],
                    self._filtered[index],
                    self._window_traces[index],
                    self._rate_traces[index],
                ) = self._advance(
                    isinstance(p, LSNNParameters),
                    current[:, start : start + size],
                    presynaptic,
                    self._neurons[index],
                    self._traces[index],
                    self._filtered[index],
                    self._window_traces[index],
                    self._rate_traces[index],
                    weight,
                    p,
                    self.readout_p,
                    self.dt,
                    self.detach_reset,
                )
                spikes.append(z)
                start += size
            z = torch.cat(spikes, dim=1) if len(spikes) > 1 else spikes[0]
            y, self._readout = li_feed_forward_step(
                self.readout(z), self._readout, self.readout_p, self.dt
            )
            spike_trace, self._spike_filter = li_trace_step(
                z, self._spike_filter, self.readout_p, self.dt
            )
            bias_trace, self._bias_filter = li_trace_step(
                torch.ones_like(self._bias_filter.v),
                self._bias_filter,
                self.readout_p,
                self.dt,
            )
            self._spike_count.add_(z.sum(0))
            if weight is not None:
                self._window_output.add_(weight[:, None] * y)
                self._window_spikes.add_(weight[:, None] * spike_trace)
                self._window_bias.add_(weight * bias_trace)
            self._z = z
        return y, z

    def _parameters_to_train(self) -> List[Optional[torch.Tensor]]:
        return [
            self.input_weights,
            self.recurrent_weights,
            self.readout.weight,
            self.readout.bias,
        ]

    def _take_sums(self) -> Tuple[Callable, torch.Tensor, torch.Tensor]:
        """Takes the sums since the last call and restarts them.

        Returns ``(gradients, window output, spike counts)`` with
        ``gradients(output_error, rate_error)`` the e-prop gradients of
        :meth:`_parameters_to_train` (None where there is none)."""
        self._require_started()
        batch, hidden = self._z.shape
        outputs = self.readout.out_features
        inputs = self.input_weights.shape[1]
        window_spikes, window_bias = self._window_spikes, self._window_bias
        windows, rates = self._window_traces, self._rate_traces
        sizes = [population.size for population in self.populations]
        feedback = (
            (
                self.readout.weight
                if self.random_feedback is None
                else self.random_feedback
            )
            .detach()
            .clone()
        )
        mask = self.recurrent_mask
        has_bias = self.readout.bias is not None
        output, counts = self._window_output, self._spike_count
        self._clear_sums()

        def gradients(
            output_error: Optional[torch.Tensor], rate_error: Optional[torch.Tensor]
        ) -> List[Optional[torch.Tensor]]:
            if output_error is not None:
                _check_shape(output_error, (batch, outputs), "output_error")
            if rate_error is not None:
                _check_shape(rate_error, (hidden,), "rate_error")
            with torch.no_grad():
                per_population = [torch.zeros_like(trace) for trace in rates]
                grad_out, grad_bias = None, None
                if output_error is not None:
                    output_error = output_error.to(window_spikes)
                    grad_out = output_error.t() @ window_spikes
                    if has_bias:
                        grad_bias = output_error.t() @ window_bias
                    signals = learning_signal(output_error, feedback).split(sizes, 1)
                    for grad, signal, window in zip(per_population, signals, windows):
                        grad += eprop_gradient(signal, window)
                if rate_error is not None:
                    errors = rate_error.to(window_spikes).split(sizes)
                    for grad, error, trace in zip(per_population, errors, rates):
                        grad += error[:, None] * trace
                grad = torch.cat(per_population)
                recurrent = grad[:, inputs:]
                if mask is not None:
                    recurrent = recurrent * mask
                return [grad[:, :inputs], recurrent, grad_out, grad_bias]

        return gradients, output, counts

    def sums(self) -> Tuple[torch.Tensor, torch.Tensor]:
        r"""The window sum :math:`Y` ``(batch, outputs)`` and the spike counts :math:`n`
        ``(hidden,)`` since the last call, as differentiable outputs of the weights.

        ``backward()`` through a loss of them writes the e-prop gradient into the
        weights' ``.grad`` (where autograd would write BPTT's). The sums then start
        again from zero; the network state and the eligibility vectors go on.
        """
        gradients, output, counts = self._take_sums()
        return _Sums.apply(gradients, output, counts, *self._parameters_to_train())

    def learn(
        self,
        output_error: Optional[torch.Tensor] = None,
        rate_error: Optional[torch.Tensor] = None,
    ) -> None:
        r"""Adds the e-prop gradient for given loss derivatives to ``.grad`` and
        restarts the sums (the explicit form of :meth:`sums` and ``backward()``).

        Parameters:
            output_error (torch.Tensor, optional): :math:`\partial E/\partial Y` for the
                window sum :attr:`window_output`, ``(batch, outputs)``
            rate_error (torch.Tensor, optional): :math:`\partial E/\partial n_j` for the
                spike counts :attr:`spike_count`, ``(hidden,)``
        """
        gradients, _, _ = self._take_sums()
        grads = gradients(output_error, rate_error)
        for tensor, grad in zip(self._parameters_to_train(), grads):
            if tensor is not None and grad is not None:
                _add_grad(tensor, grad)

    def state_size(self) -> int:
        """Numbers held between steps (network state, traces and sums): constant in time."""
        self._require_started()
        tensors = [self._z, self._window_output, self._window_spikes]
        tensors += [self._window_bias, self._spike_count]
        tensors += (
            list(self._readout) + list(self._spike_filter) + list(self._bias_filter)
        )
        for index in range(len(self.populations)):
            tensors += list(self._neurons[index]) + list(self._traces[index])
            tensors += list(self._filtered[index])
            tensors += [self._window_traces[index], self._rate_traces[index]]
        return sum(tensor.numel() for tensor in tensors)
