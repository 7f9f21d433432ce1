"""Fuzzing of the data sets and their transforms (hypothesis): random shapes, dtypes,
NaN/Inf, empty arrays and wrong types fed to

* the event-to-tensor conversions (``events_to_frames``, ``EventsToFrames``,
  ``collate_frames``) and the SHD binning (``bin_events``);
* the constructors and items of the data sets (store/recall, MNIST digits, SHD, Speech
  Commands, CIFAR-10) and their helpers (mel spectrogram, WAV files, augmentation,
  bundled MNIST split).

Accepted outcomes: a result, or a ``ValueError``/``TypeError`` with a message (data sets
whose files are missing: a ``FileNotFoundError`` once every argument is valid, so the
arguments are checked before the disk is touched). Any other exception fails the test.
The number of inputs tried is printed at the end of the run (the ``fuzz`` fixture of
``tests/conftest.py`` counts them).
"""

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from norse.dataset import cifar10, events, memory, mnist, speech_commands
from norse.dataset import spiking_heidelberg as shd

FUZZ = settings(settings.get_profile("fuzz"), max_examples=40)  # tests/conftest.py
SPECIALS = (float("nan"), float("inf"), float("-inf"), 1e30, -1e30)
NOT_NUMBERS = (None, "abc", [1.0, 2.0], {"x": 1}, True, object())
JUNK = (*NOT_NUMBERS, 2.5)  # where a tensor or array belongs
MISSING = Path(tempfile.gettempdir()) / "norse-fuzz-no-such-folder"


# --------------------------------------------------------------------------------------
# Events

SENSORS = st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 3))
BAD_SENSORS = st.one_of(
    st.tuples(st.integers(-1, 0), st.integers(-1, 2), st.integers(0, 3)),
    st.sampled_from(
        ((5, 5), (5, 5, 2, 1), (5.5, 5, 2), ("5", 5, 2), "552", None, (True, 5, 2),
         (float("nan"), 5, 2), (5, float("inf"), 2))
    ),
)  # fmt: skip


@st.composite
def event_arrays(draw, sensor, valid=True):
    """Structured event arrays as tonic gives them (x, y, t, p) with random field
    types, inside ``sensor``; invalid ones have events outside it, a missing field,
    NaN/Inf timestamps, or are no structured array at all."""
    if not valid and draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(JUNK + (np.zeros((3, 4)),)))
    width, height, polarities = sensor
    n = draw(st.integers(0, 12))
    fields = (
        ["x", "y", "t", "p"] if height > 1 or draw(st.booleans()) else ["x", "t", "p"]
    )
    kinds = {
        name: draw(st.sampled_from(("<i8", "<u2", "<f8", "<i4"))) for name in fields
    }
    array = np.zeros(n, dtype=[(name, kinds[name]) for name in fields])
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    for name, high in (("x", width), ("y", height), ("t", 10_000), ("p", polarities)):
        if name in fields:
            array[name] = rng.integers(0, high, n).astype(kinds[name])
    if not valid:
        flaw = draw(st.sampled_from(("outside", "field", "time")))
        if flaw == "field":
            return array[
                [name for name in fields if name != draw(st.sampled_from(fields))]
            ]
        if n and flaw == "outside":
            array[draw(st.sampled_from(fields[:-2] + ["p"]))][0] = 7
        elif n and kinds["t"] == "<f8":
            array["t"][draw(st.integers(0, n - 1))] = draw(st.sampled_from(SPECIALS))
    return array


BAD_NUMBERS = st.one_of(
    st.sampled_from((0, -1, -2.5, float("nan"), float("inf"), float("-inf"))),
    st.sampled_from(NOT_NUMBERS),
)
WINDOWS = st.one_of(st.none(), st.sampled_from((1, 100.0, 5000, 2.5e3)))
BINS = st.one_of(st.none(), st.integers(1, 5), st.just(3.0))
DTYPES = st.sampled_from((torch.float32, torch.float64, torch.uint8, torch.bool))
BAD_DTYPES = st.sampled_from(("float32", None, np.float32))


def binning_arguments(fuzz, data, start_time=True):
    """A valid sensor size, the keyword arguments of ``events_to_frames`` (or of
    ``EventsToFrames`` without ``start_time``), and whether all of them are valid."""
    sensor = data.draw(SENSORS)
    spec = dict(
        sensor_size=(st.just(sensor), BAD_SENSORS),
        time_window=(WINDOWS, BAD_NUMBERS),
        n_time_bins=(BINS, st.one_of(BAD_NUMBERS, st.just(2.5))),
        dtype=(DTYPES, BAD_DTYPES),
    )
    if start_time:
        starts = st.one_of(st.none(), st.sampled_from((0, -50.0, 2000)))
        spec["start_time"] = (starts, BAD_NUMBERS)
    args, broken = fuzz.arguments(data, spec)
    binning = args["time_window"] is not None or args["n_time_bins"] is not None
    return sensor, args, binning and not broken


@FUZZ
@given(data=st.data())
def test_events_to_frames(fuzz, data):
    sensor, args, valid = binning_arguments(fuzz, data)
    valid_events = data.draw(st.integers(0, 3)) > 0
    array = data.draw(event_arrays(sensor, valid=valid_events))
    binary = data.draw(st.booleans())
    frames = fuzz.call(
        "events", events.events_to_frames, array, binary=binary, **args,
        expect_result=valid and valid_events,
    )  # fmt: skip
    if frames is None:
        return
    width, height, polarities = args["sensor_size"]
    has_y = "y" in array.dtype.names
    expected = (polarities, height, width) if has_y else (polarities, width)
    assert frames.shape[1:] == expected and frames.shape[0] >= 1
    assert frames.dtype == args["dtype"]
    counts = frames.double()
    assert bool((counts >= 0).all())
    if binary:
        assert bool((counts <= 1).all())
    if args["n_time_bins"] is not None and args["time_window"] is not None:
        assert frames.shape[0] == args["n_time_bins"]
    every_event = args["time_window"] is None and args["start_time"] is None
    if every_event and not binary and args["dtype"] == torch.float64:
        assert counts.sum() == len(array)  # n_time_bins alone counts every event


@FUZZ
@given(data=st.data())
def test_events_to_frames_transform(fuzz, data):
    sensor, args, valid = binning_arguments(fuzz, data, start_time=False)
    transform = fuzz.call("events", events.EventsToFrames, **args, expect_result=valid)
    if transform is not None:
        assert "EventsToFrames(" in repr(transform)
        valid_events = data.draw(st.booleans())
        array = data.draw(event_arrays(sensor, valid=valid_events))
        fuzz.call("events", transform, array, expect_result=valid_events)


@FUZZ
@given(data=st.data())
def test_collate_frames(fuzz, data):
    tail = data.draw(st.lists(st.integers(0, 3), max_size=3))
    count = data.draw(st.integers(1, 3))
    samples = [torch.rand(data.draw(st.integers(0, 4)), *tail) for _ in range(count)]
    if data.draw(st.booleans()):
        samples = [(sample, data.draw(st.integers(0, 9))) for sample in samples]
    broken = data.draw(st.integers(0, 2)) == 0
    if broken:
        samples = data.draw(
            st.sampled_from(
                JUNK + ([], [1, 2], [[1.0], "a"], (), [torch.rand(2, 3), torch.rand(2, 4)],
                        [(torch.rand(2), 1), torch.rand(2)], [torch.tensor(1.0)],
                        [(torch.rand(2), 1, 2)], [np.zeros((2, 3))])
            )
        )  # fmt: skip
    batch = fuzz.call(
        "events", events.collate_frames, samples, expect_result=not broken
    )
    if batch is not None:
        frames = batch[0] if isinstance(batch, tuple) else batch
        assert frames.shape[1] == len(samples)
        assert frames.shape[0] == max(
            len(s[0] if isinstance(s, tuple) else s) for s in samples
        )


@FUZZ
@given(data=st.data())
def test_bin_events(fuzz, data):
    n = data.draw(st.integers(0, 6))
    args, broken = fuzz.arguments(
        data,
        dict(
            times=(
                st.lists(st.floats(0, 2.0), min_size=n, max_size=n),
                st.one_of(
                    st.lists(
                        st.sampled_from((-0.5, *SPECIALS)), min_size=1, max_size=3
                    ),
                    st.sampled_from(JUNK + (["a", "b"],)),
                ),
            ),
            units=(
                st.lists(st.integers(0, 7), min_size=n, max_size=n),
                st.one_of(
                    st.lists(
                        st.sampled_from((-1, 8, 1.5, float("nan"))),
                        min_size=1,
                        max_size=3,
                    ),
                    st.sampled_from(JUNK),
                ),
            ),
            dt=(st.sampled_from((0.001, 0.1, 0.5)), BAD_NUMBERS),
            steps=(st.integers(1, 10), st.one_of(BAD_NUMBERS, st.just(2.0))),
            n_units=(st.just(8), st.one_of(BAD_NUMBERS, st.just(8.0))),
        ),
    )
    spikes = fuzz.call("events", shd.bin_events, **args, expect_result=not broken)
    if spikes is not None:
        assert spikes.shape == (args["steps"], args["n_units"])
        assert spikes.dtype == torch.uint8
        assert int(spikes.sum()) <= len(args["units"])


# --------------------------------------------------------------------------------------
# Data sets


def _positive(high):
    return st.integers(1, high), st.one_of(BAD_NUMBERS, st.just(2.0))


@FUZZ
@given(data=st.data())
def test_memory_store_recall(fuzz, data):
    args, broken = fuzz.arguments(
        data,
        dict(
            samples=_positive(3),
            seq_length=_positive(4),
            seq_periods=(st.integers(2, 5), st.one_of(st.just(1), BAD_NUMBERS)),
            seq_repetitions=_positive(2),
            population_size=_positive(3),
            poisson_rate=(
                st.sampled_from((0, 100, 1000, 250.5)),
                st.one_of(st.just(1001), BAD_NUMBERS),
            ),
            dt=(st.just(0.001), BAD_NUMBERS),
            seed=(
                st.one_of(st.none(), st.integers(0, 5)),
                st.one_of(st.just(-1), BAD_NUMBERS),
            ),
        ),
    )
    dataset = fuzz.call(
        "data sets", memory.MemoryStoreRecallDataset, **args, expect_result=not broken
    )
    if dataset is None:
        return
    index = data.draw(st.one_of(st.integers(-4, 4), st.sampled_from(JUNK)))
    fuzz.tried["data sets"] += 1
    try:
        spikes, labels = dataset[index]
    except IndexError:  # a sequence's protocol: an index out of range ends iteration
        assert not -len(dataset) <= index < len(dataset)
        return
    except TypeError as error:
        assert "index must be an int" in str(error)
        return
    fuzz.results["data sets"] += 1
    steps = dataset.seq_repetitions * dataset.seq_periods * dataset.seq_length
    assert spikes.shape == (steps, 4 * dataset.population_size)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert labels.shape == (dataset.seq_repetitions * dataset.seq_periods, 2)
    assert int(labels.sum()) == dataset.seq_repetitions  # one recall per repetition


@FUZZ
@given(data=st.data())
def test_mnist_digits(fuzz, data):
    n = data.draw(st.integers(0, 3))
    args, broken = fuzz.arguments(
        data,
        dict(
            images=(
                st.one_of(
                    st.just(np.zeros((n, 4, 4), np.uint8)),
                    st.just(torch.zeros(n, 28, 28, dtype=torch.uint8)),
                ),
                st.one_of(
                    fuzz.tensors(max_dims=4, dtypes=(torch.float32, torch.int64)),
                    st.just(np.zeros((n, 4), np.uint8)),
                    st.sampled_from(JUNK),
                ),
            ),
            labels=(
                st.one_of(st.just(np.arange(n)), st.just(torch.arange(n))),
                st.one_of(
                    st.just(np.arange(n + 1)),
                    st.just(np.zeros(n, np.float32)),
                    st.just(np.zeros((n, 2), np.int64)),
                    st.sampled_from(JUNK),
                ),
            ),
            transform=(
                st.sampled_from((None, torch.flatten)),
                st.sampled_from(("flip", 3)),
            ),
        ),
    )
    dataset = fuzz.call(
        "data sets", mnist.MNISTDigits, **args, expect_result=not broken
    )
    if dataset is not None and len(dataset):
        image, label = dataset[0]
        assert image.dtype == torch.float32 and label.dtype == torch.int64


@FUZZ
@given(data=st.data())
def test_bundled_split(fuzz, data):
    args, broken = fuzz.arguments(
        data,
        dict(
            n_train=(st.integers(1, 50), st.one_of(st.just(5000), BAD_NUMBERS)),
            n_test=(st.integers(1, 50), st.one_of(st.just(4999), BAD_NUMBERS)),
            seed=(st.integers(0, 3), st.one_of(st.just(-1), BAD_NUMBERS)),
        ),
    )
    split = fuzz.call(
        "data sets", mnist.bundled_split_indices, **args, expect_result=not broken
    )
    if split is not None:
        train, test = split
        assert len(train) == args["n_train"] and len(test) == args["n_test"]
        assert not set(train.tolist()) & set(test.tolist())


@FUZZ
@given(data=st.data())
def test_data_set_constructors_check_arguments_before_files(fuzz, data):
    """With a folder that does not exist, a constructor either rejects an argument
    (ValueError/TypeError) or, when every argument is valid, reports the missing file."""
    paths = (
        st.sampled_from((MISSING, str(MISSING))),
        st.sampled_from((None, 3, [str(MISSING)], b"folder", True, object())),
    )
    flags = (st.booleans(), st.sampled_from(("train", "test", 1, None)))
    which = data.draw(st.sampled_from(("shd", "speech", "cifar", "load_cifar")))
    if which == "shd":
        constructor = shd.SpikingHeidelbergDigitsDataset
        spec = dict(
            root=paths, dt=(st.just(0.001), BAD_NUMBERS), sparse=flags, train=flags
        )
    elif which == "speech":
        constructor = speech_commands.SpeechCommands
        spec = dict(
            root=paths,
            url=(st.just("speech_commands_v0.02"), st.sampled_from(("v3", None, 2))),
            subset=(
                st.sampled_from((None, "training", "validation", "testing")),
                st.sampled_from(("train", 3, "test")),
            ),
        )
    elif which == "cifar":
        constructor = cifar10.CIFAR10
        spec = dict(
            root=paths,
            train=flags,
            transform=(st.sampled_from((None, torch.flatten)), st.just("flip")),
        )
    else:
        constructor = cifar10.load_cifar10
        spec = dict(root=paths, train=flags, download=(st.just(False), st.just("no")))
    args, broken = fuzz.arguments(data, spec)
    fuzz.tried["data sets"] += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            constructor(**args)
        except FileNotFoundError:
            assert not broken, f"{which}: {broken} not checked before the files"
        except (TypeError, ValueError) as error:
            assert broken and str(error)
        else:
            raise AssertionError(f"{which} found data in a missing folder")


# --------------------------------------------------------------------------------------
# Transforms and helpers


@FUZZ
@given(data=st.data())
def test_mel_spectrogram(fuzz, data):
    args, broken = fuzz.arguments(
        data,
        dict(
            sample_rate=(st.sampled_from((16000, 8000, 22050.0)), BAD_NUMBERS),
            n_fft=(st.sampled_from((16, 32)), st.one_of(BAD_NUMBERS, st.just(16.0))),
            win_length=(
                st.one_of(st.none(), st.integers(2, 16)),
                st.sampled_from((0, -1, 64, 2.0)),
            ),
            hop_length=(
                st.one_of(st.none(), st.integers(1, 20)),
                st.sampled_from((0, -1, 2.0)),
            ),
            f_min=(st.sampled_from((0.0, 100)), st.one_of(st.just(-1.0), BAD_NUMBERS)),
            f_max=(
                st.sampled_from((None, 4000.0)),
                st.one_of(st.just(9e9), BAD_NUMBERS),
            ),
            n_mels=(st.sampled_from((4, 8)), BAD_NUMBERS),
            power=(st.sampled_from((1.0, 2.0)), BAD_NUMBERS),
        ),
    )
    transform = fuzz.call(
        "transforms", speech_commands.MelSpectrogram, **args, expect_result=not broken
    )
    if transform is None:
        return
    if data.draw(st.booleans()):
        waveform = data.draw(
            fuzz.tensors(
                min_dims=1,
                max_dims=3,
                sizes=(0, 40),
                dtypes=(torch.float32, torch.float64, torch.float16),
            )
        )
    else:
        waveform = data.draw(
            st.one_of(fuzz.tensors(max_dims=3, sizes=(0, 40)), st.sampled_from(JUNK))
        )
    mel = fuzz.call("transforms", transform, waveform)
    if mel is not None:
        frames = 1 + waveform.shape[-1] // transform.hop_length
        assert mel.shape == (*waveform.shape[:-1], transform.filters.shape[1], frames)
        assert mel.dtype == waveform.dtype
        if waveform.dtype != torch.float16 and bool(torch.isfinite(waveform).all()):
            assert bool(torch.isfinite(mel).all())


@FUZZ
@given(data=st.data())
def test_wav_round_trip(fuzz, data):
    channels, samples = data.draw(st.integers(1, 2)), data.draw(st.integers(0, 6))
    dtype = data.draw(st.sampled_from((torch.float32, torch.float64, torch.float16)))
    seed = data.draw(st.integers(0, 2**16))
    # samples in [-1.2, 1.2]: those outside [-1, 1] are clipped
    valid = (
        2.4
        * torch.rand(channels, samples, generator=torch.Generator().manual_seed(seed))
        - 1.2
    )
    args, broken = fuzz.arguments(
        data,
        dict(
            waveform=(
                st.just(valid.to(dtype)),
                st.one_of(
                    fuzz.tensors(max_dims=3, sizes=(0, 3)), st.sampled_from(JUNK)
                ),
            ),
            sample_rate=(
                st.sampled_from((8000, 16000)),
                st.one_of(BAD_NUMBERS, st.just(8000.0)),
            ),
        ),
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sound.wav"
        fuzz.tried["transforms"] += 1
        try:
            speech_commands.save_wav(path, **args)
        except (TypeError, ValueError) as error:
            assert str(error) and not path.exists()
            return
        fuzz.results["transforms"] += 1
        loaded, rate = speech_commands.load_wav(path)
    waveform = args["waveform"].float().clamp(-1, 1)
    assert loaded.shape == waveform.shape and rate == args["sample_rate"]
    torch.testing.assert_close(loaded, waveform, rtol=0, atol=1 / 32768 + 1e-6)


@FUZZ
@given(data=st.data())
def test_random_crop_flip(fuzz, data):
    args, broken = fuzz.arguments(
        data,
        dict(
            images=(
                fuzz.tensors(min_dims=4, max_dims=4, sizes=(0, 5)),
                st.one_of(
                    fuzz.tensors(max_dims=5, sizes=(1, 3)).filter(
                        lambda t: t.dim() != 4
                    ),
                    st.sampled_from(JUNK),
                ),
            ),
            padding=(st.integers(0, 4), st.one_of(st.just(-1), BAD_NUMBERS)),
        ),
    )
    out = fuzz.call(
        "transforms",
        cifar10.random_crop_flip,
        **args,
        generator=torch.Generator().manual_seed(0),
        expect_result=not broken,
    )
    if out is not None:
        images = args["images"]
        assert out.shape == images.shape and out.dtype == images.dtype
        if args["padding"] == 0 and images.numel() and not images.is_complex():
            # no shift: every image is itself or its mirror image
            for image, result in zip(images, out):
                assert (
                    torch.equal(result, image)
                    or torch.equal(result, image.flip(-1))
                    or bool(torch.isnan(image).any())
                )
