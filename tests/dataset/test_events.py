"""Event streams to (T, batch, C, H, W) spike tensors."""

import numpy as np
import pytest
import torch

import norse.torch as norse
from norse.dataset.events import EventsToFrames, collate_frames, events_to_frames

tonic = pytest.importorskip("tonic")  # the frames are tonic's ToFrame

# tonic's N-MNIST layout (x, y, t in microseconds, p) and sensor size
NMNIST_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
NMNIST_SENSOR = (34, 34, 2)


def _random_events(
    n=500, seed=0, duration=100_000, dtype=NMNIST_DTYPE, sensor=NMNIST_SENSOR
):
    rng = np.random.default_rng(seed)
    events = np.zeros(n, dtype=dtype)
    events["x"] = rng.integers(0, sensor[0], n)
    if "y" in dtype.names:
        events["y"] = rng.integers(0, sensor[1], n)
    events["t"] = np.sort(rng.integers(0, duration, n))
    events["p"] = rng.integers(0, sensor[2], n)
    return events


def test_counts_by_hand():
    events = np.array(
        [
            (1, 2, 10, 1),
            (1, 2, 20, 1),
            (0, 0, 999, 0),
            (3, 1, 1000, 0),
            (3, 1, 2500, 1),
        ],
        dtype=NMNIST_DTYPE,
    )
    frames = events_to_frames(events, (4, 3, 2), time_window=1000, start_time=0)
    assert frames.shape == (3, 2, 3, 4) and frames.dtype == torch.float32
    expected = torch.zeros(3, 2, 3, 4)
    expected[0, 1, 2, 1] = 2  # two events at (x=1, y=2), polarity 1, first ms
    expected[0, 0, 0, 0] = 1
    expected[1, 0, 1, 3] = 1  # t = 1000 opens the second bin
    expected[2, 1, 1, 3] = 1
    assert torch.equal(frames, expected)
    # by default the first event opens the first bin: t = 1000 falls in [10, 1010)
    assert events_to_frames(events, (4, 3, 2), time_window=1000)[0, 0, 1, 3] == 1
    assert events_to_frames(events, (4, 3, 2), time_window=1000, binary=True).max() == 1


def test_every_event_is_counted_once():
    events = _random_events()
    for kwargs in ({"time_window": 7_000}, {"n_time_bins": 9}, {"n_time_bins": 1}):
        frames = events_to_frames(events, NMNIST_SENSOR, **kwargs)
        assert frames.sum() == len(events)
        # each polarity and pixel keeps its count
        per_pixel = frames.sum(0)
        for x, y, p in [
            (events["x"][i], events["y"][i], events["p"][i]) for i in range(5)
        ]:
            mask = (events["x"] == x) & (events["y"] == y) & (events["p"] == p)
            assert per_pixel[p, y, x] == mask.sum()
    assert events_to_frames(events, NMNIST_SENSOR, n_time_bins=9).shape[0] == 9


def test_fixed_length_window_and_bins():
    events = _random_events(duration=50_000)
    frames = events_to_frames(events, NMNIST_SENSOR, time_window=1000, n_time_bins=20)
    assert frames.shape[0] == 20
    assert frames.sum() == (events["t"] - events["t"][0] < 20_000).sum()
    late = events_to_frames(
        events, NMNIST_SENSOR, time_window=1000, n_time_bins=80, start_time=0
    )
    assert late.shape[0] == 80 and late[55:].sum() == 0  # recording ended at 50 ms


def count_by_hand(events, sensor, start, window, steps):
    """Frames ``(steps, P, H, W)`` counted event by event, independently of tonic."""
    width, height, polarities = sensor
    frames = np.zeros((steps, polarities, height, width))
    for event in events:
        k = int(np.floor((event["t"] - start) / window))
        if 0 <= k < steps:
            frames[k, event["p"], event["y"], event["x"]] += 1
    return torch.from_numpy(frames).float()


@pytest.mark.parametrize("seed", range(4))
def test_frames_agree_with_an_independent_count(seed):
    rng = np.random.default_rng(seed)
    events = _random_events(n=300, seed=seed, duration=int(rng.integers(1, 90_000)))
    events = events[rng.permutation(len(events))]  # tonic's slicing wants order
    start = events["t"].min()
    span = events["t"].max() - start
    for window, bins in ((3_000, None), (7_000, 5), (None, 7), (span + 1, None)):
        frames = events_to_frames(
            events, NMNIST_SENSOR, time_window=window, n_time_bins=bins
        )
        width = window if window is not None else (span + 1) / bins
        steps = bins if bins is not None else int(span // width) + 1
        expected = count_by_hand(events, NMNIST_SENSOR, start, width, steps)
        assert torch.equal(frames, expected), (window, bins)


def test_same_frames_as_tonic():
    events = _random_events(seed=3, duration=95_500)
    assert (events["t"][-1] - events["t"][0]) % 10_000 != 0  # no event on a bin edge
    ours = events_to_frames(events, NMNIST_SENSOR, time_window=10_000)
    theirs = tonic.transforms.ToFrame(
        sensor_size=NMNIST_SENSOR, time_window=10_000, include_incomplete=True
    )(events.copy())
    assert torch.equal(ours, torch.from_numpy(theirs.astype(np.float32)))


def test_counts_beyond_tonics_int16_are_refused():
    events = np.zeros(40_000, dtype=NMNIST_DTYPE)
    events["x"] = np.arange(40_000) % 4  # 10,000 per pixel: int16 holds that
    frames = events_to_frames(events, (4, 1, 2), n_time_bins=1, dtype=torch.float64)
    assert frames.sum() == 40_000 and frames.max() == 10_000
    events["x"] = 0  # 40,000 in one pixel and bin would wrap around
    with pytest.raises(ValueError, match="more than 32767 events"):
        events_to_frames(events, (4, 1, 2), n_time_bins=1)


def test_dvs_gesture_layout_and_one_dimensional_sensors():
    # DVS Gesture: int16 coordinates, boolean polarity, p before t
    dtype = np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "?"), ("t", "<i8")])
    events = _random_events(n=200, dtype=dtype, sensor=(128, 128, 2))
    frames = EventsToFrames((128, 128, 2), n_time_bins=5)(events)
    assert frames.shape == (5, 2, 128, 128) and frames.sum() == 200
    merged = events_to_frames(events, (128, 128, 1), n_time_bins=5)
    assert merged.shape == (5, 1, 128, 128)
    torch.testing.assert_close(merged[:, 0], frames.sum(1))
    # audio (SHD): 700 channels, no y
    audio = _random_events(
        n=100, dtype=np.dtype([("x", int), ("t", int), ("p", int)]), sensor=(700, 1, 1)
    )
    assert events_to_frames(audio, (700, 1, 1), time_window=10_000).shape[1:] == (
        1,
        700,
    )


def test_signed_polarities():
    events = np.array([(0, 0, 0, -1), (0, 0, 1, 1)], dtype=NMNIST_DTYPE)
    frames = events_to_frames(events, (1, 1, 2), n_time_bins=1)
    assert frames.flatten().tolist() == [1.0, 1.0]


def test_batches_are_time_first_and_feed_a_network():
    samples = [
        (
            events_to_frames(
                _random_events(seed=s, duration=d), NMNIST_SENSOR, time_window=5_000
            ),
            s,
        )
        for s, d in [(0, 40_000), (1, 20_000), (2, 30_000)]
    ]
    frames, targets = collate_frames(samples)
    assert frames.shape == (8, 3, 2, 34, 34)  # longest sample has 8 bins
    assert targets.tolist() == [0, 1, 2]
    assert frames[4:, 1].sum() == 0  # the 20 ms sample is padded with zeros
    torch.testing.assert_close(frames[:4, 1], samples[1][0])
    model = norse.SequentialState(
        norse.Lift(torch.nn.Conv2d(2, 4, 5, stride=2)), norse.LIF()
    )
    spikes, _ = model(frames)
    assert spikes.shape == (8, 3, 4, 15, 15)
    loader = torch.utils.data.DataLoader(
        samples, batch_size=2, collate_fn=collate_frames
    )
    assert next(iter(loader))[0].shape == (8, 2, 2, 34, 34)


def test_clear_errors():
    events = _random_events(n=10)
    with pytest.raises(TypeError, match="structured numpy array"):
        events_to_frames(np.zeros((10, 4)), NMNIST_SENSOR, n_time_bins=2)
    with pytest.raises(ValueError, match="lack the fields"):
        events_to_frames(
            np.zeros(3, dtype=[("x", int), ("t", int)]), (2, 1, 1), n_time_bins=2
        )
    with pytest.raises(ValueError, match="outside the sensor"):
        events_to_frames(events, (5, 5, 2), n_time_bins=2)
    with pytest.raises(ValueError, match="polarities must lie in"):
        events_to_frames(
            np.array([(0, 0, 0, 3)], dtype=NMNIST_DTYPE), (1, 1, 2), n_time_bins=1
        )
    with pytest.raises(ValueError, match="time_window, n_time_bins or both"):
        events_to_frames(events, NMNIST_SENSOR)
    with pytest.raises(ValueError, match="sensor_size must be"):
        events_to_frames(events, (34, 34), n_time_bins=2)
    with pytest.raises(ValueError, match="all must agree after T"):
        collate_frames([torch.zeros(2, 3), torch.zeros(2, 4)])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"sensor_size": (34, float("inf"), 2)}, ValueError, "sensor_size must be"),
        ({"sensor_size": ("34", 34, 2)}, ValueError, "sensor_size must be"),
        (
            {"n_time_bins": float("nan")},
            ValueError,
            "n_time_bins must be a positive int",
        ),
        ({"n_time_bins": "2"}, ValueError, "n_time_bins must be a positive int"),
        ({"time_window": float("nan")}, ValueError, "time_window must be a positive"),
        ({"time_window": "1000"}, ValueError, "time_window must be a positive"),
        ({"start_time": float("nan")}, ValueError, "start_time must be a finite"),
        ({"dtype": "float32"}, TypeError, "dtype must be a torch.dtype"),
    ],
)
def test_bad_binning_arguments_are_named(kwargs, error, message):
    arguments = {"sensor_size": NMNIST_SENSOR, "n_time_bins": 2, **kwargs}
    with pytest.raises(error, match=message):
        events_to_frames(_random_events(n=10), **arguments)
    with pytest.raises(error, match=message):  # the transform checks when it is made
        EventsToFrames(**arguments)


def test_non_finite_timestamps_and_huge_spans_are_rejected():
    dtype = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<f8"), ("p", "<i8")])
    events = np.array([(0, 0, 0.0, 0), (1, 1, float("nan"), 1)], dtype=dtype)
    with pytest.raises(ValueError, match="timestamps t must be finite"):
        events_to_frames(events, (2, 2, 2), time_window=10)
    events["t"][1] = 1e15  # microseconds: 31 years in 1 us bins
    with pytest.raises(ValueError, match="use a larger time_window"):
        events_to_frames(events, (2, 2, 2), time_window=1)


def test_collate_frames_rejects_what_is_no_batch():
    with pytest.raises(TypeError, match="takes a list of samples"):
        collate_frames({"frames": torch.zeros(2, 3)})
    with pytest.raises(TypeError, match="sample 1 has frames of type str"):
        collate_frames([torch.zeros(2, 3), "frames"])
    with pytest.raises(ValueError, match="all samples must be frames or all"):
        collate_frames([(torch.zeros(2, 3), 1), torch.zeros(2, 3)])


def write_nmnist_bin(path, events):
    """N-MNIST's binary format: 5 bytes an event, x, y, then polarity (bit 7) and a
    23-bit timestamp in microseconds."""
    raw = np.zeros((len(events), 5), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = events["x"], events["y"]
    raw[:, 2] = (events["p"] << 7) | ((events["t"] >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (events["t"] >> 8) & 0xFF, events["t"] & 0xFF
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.tobytes())


def test_nmnist_through_tonic_to_time_first_batches(tmp_path, monkeypatch):
    # tonic checks for the whole data set (10,000 files); these three are enough here
    monkeypatch.setattr(tonic.datasets.NMNIST, "_check_exists", lambda self: True)
    recordings = {}
    for digit, seed, duration in ((3, 0, 30_000), (7, 1, 12_000), (9, 2, 21_000)):
        events = _random_events(n=200, seed=seed, duration=duration)
        write_nmnist_bin(tmp_path / "NMNIST" / "Train" / str(digit) / "0.bin", events)
        recordings[digit] = events
    data = tonic.datasets.NMNIST(
        str(tmp_path),
        train=True,
        transform=EventsToFrames(NMNIST_SENSOR, time_window=1_000, start_time=0),
    )
    frames, targets = collate_frames([data[i] for i in range(len(data))])
    assert targets.tolist() == [3, 7, 9]
    assert frames.shape == (30, 3, 2, 34, 34)  # (T, batch, polarity, y, x)
    for index, digit in enumerate((3, 7, 9)):
        events = recordings[digit]
        steps = int(events["t"].max() // 1_000) + 1
        expected = count_by_hand(events, NMNIST_SENSOR, 0, 1_000, steps)
        assert torch.equal(frames[:steps, index], expected)
        assert frames[steps:, index].sum() == 0  # padded at the end


def test_dvs_gesture_through_tonic(tmp_path, monkeypatch):
    monkeypatch.setattr(tonic.datasets.DVSGesture, "_check_exists", lambda self: True)
    folder = tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_led"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    n = 400
    columns = np.stack(  # x, y, p, t in milliseconds, as tonic's preprocessed files
        [
            rng.integers(0, 128, n),
            rng.integers(0, 128, n),
            rng.integers(0, 2, n),
            np.sort(rng.integers(0, 500, n)),
        ],
        axis=1,
    )
    np.save(folder / "4.npy", columns)
    data = tonic.datasets.DVSGesture(
        str(tmp_path),
        train=False,
        transform=EventsToFrames((128, 128, 2), time_window=100_000, n_time_bins=5),
    )
    frames, target = data[0]
    assert target == 4 and frames.shape == (5, 2, 128, 128)
    events = np.zeros(n, dtype=NMNIST_DTYPE)
    events["x"], events["y"], events["p"] = columns[:, 0], columns[:, 1], columns[:, 2]
    events["t"] = columns[:, 3] * 1000
    start = events["t"].min()
    expected = count_by_hand(events, (128, 128, 2), start, 100_000, 5)
    assert torch.equal(frames, expected)
