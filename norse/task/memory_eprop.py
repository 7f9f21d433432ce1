"""e-prop training of the memory task's network (``python -m norse.task.memory
--learning eprop``).

The network of :class:`norse.task.memory.MemoryNet` is stepped by an
:class:`~norse.torch.module.eprop.EProp` trainer that shares its weights: the readout
averaged over each sample's RECALL period is the trainer's window sum (weight
``1 / seq_length`` in that period, 0 elsewhere), and the spike counts give the firing
rates of the regulariser. The loss is the one BPTT minimises; its ``backward()`` writes
the e-prop gradient into ``.grad``, so the harness, the gradient clipping and the
optimiser are unchanged. Nothing of the sequence is stored: memory does not grow with
its length.
"""

from typing import Callable, Tuple

import torch

from norse.torch.module.eprop import EProp, Population


def build_trainer(
    model: torch.nn.Module, feedback: str = "symmetric", compile: bool = False
) -> EProp:
    """The e-prop trainer of a :class:`norse.task.memory.MemoryNet` (weights shared).

    Its neurons step as the feed-forward LIF/LSNN steps of ``MemoryNet`` do (reset and
    threshold jump pass the surrogate gradient), so the traces follow the same
    dynamics as BPTT's graph.
    """
    populations = []
    if model.lif is not None:
        populations.append(Population(model.lif_neurons, model.lif.p))
    if model.lsnn is not None:
        populations.append(Population(model.lsnn_neurons, model.lsnn.p))
    return EProp(
        model.input_weights,
        model.recurrent_weights,
        populations,
        model.readout_weights,
        model.readout.p,
        dt=(model.lif or model.lsnn).dt,
        recurrent_mask=model.autapse_mask,
        feedback=feedback,
        detach_reset=False,
        compile=compile,
    )


def train_step(
    trainer: EProp,
    batch: Tuple[torch.Tensor, torch.Tensor],
    seq_length: int,
    dt: float,
    regularizer: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """One batch of the memory task, forward in time.

    Parameters:
        trainer: from :func:`build_trainer`
        batch: ``(spikes (batch, T, inputs), labels (batch, periods, 2))`` with one
            RECALL per sample
        seq_length: time steps per period
        dt: time step (s)
        regularizer: firing rates (Hz per neuron) to the regularisation loss
        device: where the network is

    Returns:
        ``(loss, correct, recalls)`` as the task's BPTT step: the loss (cross-entropy of
        the recall logits plus the regulariser) whose ``backward()`` writes the e-prop
        gradients.
    """
    x, labels = batch
    x = x.to(device)
    labels = labels.to(device)
    recall = labels.sum(-1) > 0  # (batch, periods)
    if not bool((recall.sum(1) == 1).all()):
        raise ValueError(
            "every sample needs exactly one RECALL period (seq_repetitions=1), got "
            f"{recall.sum(1).tolist()}"
        )
    targets = labels[recall].argmax(-1)
    weights = recall.to(x.dtype) / seq_length
    trainer.reset()
    steps = x.shape[1]
    for t in range(steps):
        weight = weights[:, t // seq_length]
        trainer(x[:, t], weight if bool(weight.any()) else None)
    logits, counts = trainer.sums()
    rates = counts / (steps * x.shape[0] * dt)
    loss = torch.nn.functional.cross_entropy(logits, targets) + regularizer(rates)
    correct = (logits.detach().argmax(-1) == targets).sum()
    return loss, correct, targets.numel()
