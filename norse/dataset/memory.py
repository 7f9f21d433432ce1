"""The store/recall memory task of Bellec et al. as a data set of Poisson spike trains.

After G. Bellec, F. Scherr, E. Hajek, D. Salaj, R. Legenstein and W. Maass, "Biologically
inspired alternatives to backpropagation through time for learning in recurrent neural
nets" (arXiv:1901.09049), as in Norse 1.1.

A sample is ``seq_repetitions`` independent *repetitions*; each repetition is
``seq_periods`` *periods* of ``seq_length`` time steps. In every period one of two data
bits is on (a one-hot value ``[1, 0]`` or ``[0, 1]``, drawn at random per period).
Once per repetition, in a period of the first half, a STORE command is on; once, in a
period of the second half, a RECALL command is on. The target is the data value that was
present at STORE, asked for at RECALL (where the data channels are silent); all other
periods have an all-zero label, so a loss is taken at the RECALL periods only.

Every channel is a population of ``population_size`` input neurons firing Poisson spikes:
the active data bit at ``poisson_rate`` Hz, an active command at ``poisson_rate // 2`` Hz,
inactive channels not at all. Input neurons, in order::

    [data bit 0] * population_size, [data bit 1] * population_size,
    [STORE] * population_size, [RECALL] * population_size

Example:
    >>> data = MemoryStoreRecallDataset(2, seq_length=20, seq_repetitions=1, seed=0)
    >>> spikes, labels = data[0]
    >>> spikes.shape, labels.shape     # (periods * seq_length, 4 * population), (periods, 2)
    (torch.Size([240, 20]), torch.Size([12, 2]))
"""

import operator
from typing import Optional, Tuple

import numpy as np
import torch
import torch.utils.data

from norse.dataset._checks import check_positive_int, check_positive_number, is_number
from norse.torch.functional.encode import poisson_encode

__all__ = ["MemoryStoreRecallDataset"]


class MemoryStoreRecallDataset(torch.utils.data.Dataset):
    """Spike trains of the store/recall task (see the module documentation).

    Parameters:
        samples (int): number of samples (the length of the data set)
        seq_length (int): time steps per period (per command/value). Default 100.
        seq_periods (int): periods per repetition (even, >= 2). Default 12.
        seq_repetitions (int): STORE/RECALL pairs per sample. Default 4.
        population_size (int): input neurons per channel. Default 5.
        poisson_rate (float): rate (Hz) of an active data channel; active commands fire
            at ``poisson_rate // 2``. Default 100.
        dt (float): time step (s). Default 0.001.
        seed (Optional[int]): with a seed, sample ``i`` is a fixed function of
            ``(seed, i)`` (reproducible, in any access order and in DataLoader workers);
            without one every access draws fresh data and spikes from PyTorch's global
            random state (as Norse 1.1 does).

    Items:
        ``(spikes, labels)``: ``spikes`` float32 ``(seq_repetitions * seq_periods *
        seq_length, 4 * population_size)`` (time first) and ``labels`` uint8
        ``(seq_repetitions * seq_periods, 2)``, one row per period, one-hot at the
        RECALL periods and zero elsewhere. A :class:`torch.utils.data.DataLoader`
        stacks them batch first: ``(batch, T, 4 * population_size)``.

    Attributes:
        store_indices, recall_indices: int64 ``(samples, seq_repetitions)``, the period
            of STORE (in ``[0, seq_periods // 2)``) and of RECALL (in
            ``[seq_periods // 2, seq_periods)``) of every repetition.
    """

    def __init__(
        self,
        samples: int,
        seq_length: int = 100,
        seq_periods: int = 12,
        seq_repetitions: int = 4,
        population_size: int = 5,
        poisson_rate: float = 100,
        dt: float = 0.001,
        seed: Optional[int] = None,
    ):
        self.samples = check_positive_int("samples", samples)
        self.seq_length = check_positive_int("seq_length", seq_length)
        self.seq_periods = check_positive_int("seq_periods", seq_periods)
        if self.seq_periods < 2:
            raise ValueError(
                f"seq_periods must be >= 2 (STORE in the first half, RECALL in the second), got {seq_periods}"
            )
        self.seq_repetitions = check_positive_int("seq_repetitions", seq_repetitions)
        self.population_size = check_positive_int("population_size", population_size)
        if not (is_number(poisson_rate) and poisson_rate >= 0):
            raise ValueError(f"poisson_rate must be >= 0 (Hz), got {poisson_rate!r}")
        check_positive_number("dt", dt, "seconds")
        if poisson_rate * dt > 1:
            raise ValueError(
                f"poisson_rate * dt must be <= 1 (at most one spike per step), got {poisson_rate} * {dt}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.poisson_rate = poisson_rate
        self.dt = dt
        self.seed = seed

        generator = None if seed is None else self._generator(-1)
        half = self.seq_periods // 2
        shape = (self.samples, self.seq_repetitions)
        self.store_indices = torch.randint(0, half, shape, generator=generator)
        self.recall_indices = torch.randint(
            half, self.seq_periods, shape, generator=generator
        )

    def _generator(self, index: int) -> torch.Generator:
        # A well-mixed seed per (seed, index); index -1 is the command positions.
        state = np.random.SeedSequence([self.seed, index + 1]).generate_state(2)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"index must be an int, got {index!r}") from None
        if not -self.samples <= index < self.samples:
            raise IndexError(
                f"index {index} is out of range for a data set of {self.samples} samples"
            )
        index = index % self.samples
        generator = None if self.seed is None else self._generator(index)
        reps, periods, size = (
            self.seq_repetitions,
            self.seq_periods,
            self.population_size,
        )
        rows = torch.arange(reps)
        store = self.store_indices[index]
        recall = self.recall_indices[index]

        # One data value per period, one-hot over the two bits: (reps, periods, 2).
        bits = torch.randint(0, 2, (reps, periods), generator=generator)
        data = torch.nn.functional.one_hot(bits, 2).to(torch.uint8)
        labels = torch.zeros_like(data)
        labels[rows, recall] = data[rows, store]
        data[rows, recall] = 0  # the value must come from memory
        commands = torch.zeros_like(data)
        commands[rows, store, 0] = 1
        commands[rows, recall, 1] = 1

        # Rates in Hz per input neuron and period, then Poisson spikes with f_max = 1 Hz.
        rates = torch.cat(
            (
                data.repeat_interleave(size, dim=-1) * float(self.poisson_rate),
                commands.repeat_interleave(size, dim=-1)
                * float(self.poisson_rate // 2),
            ),
            dim=-1,
        )
        spikes = poisson_encode(
            rates, self.seq_length, f_max=1.0, dt=self.dt, generator=generator
        )  # (seq_length, reps, periods, 4 * size)
        spikes = spikes.permute(1, 2, 0, 3).reshape(
            reps * periods * self.seq_length, 4 * size
        )
        return spikes, labels.reshape(reps * periods, 2)
