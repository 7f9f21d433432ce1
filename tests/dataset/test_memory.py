import pytest
import torch

from norse.dataset.memory import MemoryStoreRecallDataset


def _periods(dataset, spikes):
    """(reps, periods, seq_length, channels, population) view of one sample."""
    return spikes.reshape(
        dataset.seq_repetitions,
        dataset.seq_periods,
        dataset.seq_length,
        4,
        dataset.population_size,
    )


def test_shapes_dtypes_and_defaults():
    data = MemoryStoreRecallDataset(3, seed=0)
    assert (data.seq_length, data.seq_periods, data.seq_repetitions) == (100, 12, 4)
    assert (data.population_size, data.poisson_rate, data.dt) == (5, 100, 0.001)
    spikes, labels = data[0]
    assert spikes.shape == (4 * 12 * 100, 20) and spikes.dtype == torch.float32
    assert labels.shape == (4 * 12, 2) and labels.dtype == torch.uint8
    assert len(data) == 3
    assert data.store_indices.shape == data.recall_indices.shape == (3, 4)


def test_store_and_recall_semantics():
    data = MemoryStoreRecallDataset(
        20, seq_length=40, seq_repetitions=2, poisson_rate=500, seed=3
    )
    assert data.store_indices.min() >= 0 and data.store_indices.max() < 6
    assert data.recall_indices.min() >= 6 and data.recall_indices.max() < 12
    for index in range(len(data)):
        spikes, labels = data[index]
        counts = _periods(data, spikes).sum((2, 4))  # (reps, periods, channel)
        labels = labels.reshape(2, 12, 2)
        for rep in range(2):
            store = data.store_indices[index, rep].item()
            recall = data.recall_indices[index, rep].item()
            # Exactly one label, at RECALL, equal to the data bit shown at STORE.
            assert labels[rep].sum() == 1 and labels[rep, recall].sum() == 1
            stored_bit = counts[rep, store, :2].argmax().item()
            assert labels[rep, recall].argmax().item() == stored_bit
            # Commands fire only in their period; data is silent at RECALL only.
            assert counts[rep, :, 2].nonzero().flatten().tolist() == [store]
            assert counts[rep, :, 3].nonzero().flatten().tolist() == [recall]
            assert counts[rep, recall, :2].sum() == 0
            others = [p for p in range(12) if p != recall]
            on = counts[rep, others, :2] > 0
            assert (on.sum(-1) == 1).all()  # one data bit per period


def test_rates_follow_poisson_rate():
    data = MemoryStoreRecallDataset(
        8, seq_length=200, seq_repetitions=1, poisson_rate=100, seed=1
    )
    data_spikes = command_spikes = data_steps = command_steps = 0
    for index in range(len(data)):
        periods = _periods(data, data[index][0])[0]  # (periods, L, 4, population)
        active = periods.sum(1) > 0  # a channel is active in a period if it spiked
        data_spikes += periods[..., :2, :].sum()
        data_steps += 11 * 200 * 5  # one active bit in 11 periods (silent at RECALL)
        command_spikes += periods[..., 2:, :].sum()
        command_steps += 2 * 200 * 5  # STORE and RECALL, one period each
        assert active.any()
    assert data_spikes / data_steps == pytest.approx(0.1, rel=0.1)  # 100 Hz * 1 ms
    assert command_spikes / command_steps == pytest.approx(0.05, rel=0.2)  # 50 Hz


def test_seed_makes_samples_reproducible_in_any_order():
    a = MemoryStoreRecallDataset(4, seq_length=10, seed=7)
    b = MemoryStoreRecallDataset(4, seq_length=10, seed=7)
    later = b[3]
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[3], later)
    torch.testing.assert_close(a[-1], a[3])
    assert not torch.equal(a[0][0], a[1][0])
    c = MemoryStoreRecallDataset(4, seq_length=10, seed=8)
    assert not torch.equal(a[0][0], c[0][0])


def test_without_seed_draws_from_the_global_generator():
    torch.manual_seed(0)
    first = MemoryStoreRecallDataset(2, seq_length=10)[0]
    torch.manual_seed(0)
    again = MemoryStoreRecallDataset(2, seq_length=10)[0]
    torch.testing.assert_close(first, again)


def test_dataloader_stacks_batch_first():
    data = MemoryStoreRecallDataset(6, seq_length=5, seq_repetitions=1, seed=0)
    spikes, labels = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    assert spikes.shape == (4, 60, 20) and labels.shape == (4, 12, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"samples": 0}, "samples"),
        ({"samples": 2, "seq_length": 0}, "seq_length"),
        ({"samples": 2, "seq_periods": 1}, "seq_periods"),
        ({"samples": 2, "population_size": -1}, "population_size"),
        ({"samples": 2, "poisson_rate": -5}, "poisson_rate"),
        ({"samples": 2, "poisson_rate": 2000}, "poisson_rate"),
        ({"samples": 2, "dt": 0}, "dt"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MemoryStoreRecallDataset(**kwargs)


def test_index_out_of_range():
    with pytest.raises(IndexError, match="out of range"):
        MemoryStoreRecallDataset(2, seq_length=5)[2]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"poisson_rate": "100"}, ValueError, "poisson_rate must be >= 0"),
        ({"dt": "0.001"}, ValueError, "dt must be a positive, finite number"),
        ({"dt": float("inf")}, ValueError, "dt must be a positive, finite number"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
    ],
)
def test_argument_types_and_seed_are_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        MemoryStoreRecallDataset(2, **kwargs)


def test_index_must_be_an_int():
    with pytest.raises(TypeError, match="index must be an int"):
        MemoryStoreRecallDataset(2, seq_length=5)["0"]
    assert MemoryStoreRecallDataset(2, seq_length=5, seed=0)[torch.tensor(1)][0].shape
