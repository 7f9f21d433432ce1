import math
import tarfile

import pytest
import torch

from norse.dataset import speech_commands as sc

RATE = 16000
WORDS = {  # file -> (label, speaker, utterance, seconds)
    "yes/aa11_nohash_0.wav": ("yes", "aa11", 0, 1.0),
    "yes/bb22_nohash_1.wav": ("yes", "bb22", 1, 0.5),
    "no/aa11_nohash_0.wav": ("no", "aa11", 0, 1.0),
    "bed/cc33_nohash_0.wav": ("bed", "cc33", 0, 0.8),
    "go/dd44_nohash_2.wav": ("go", "dd44", 2, 1.0),
}


def _tone(seconds, frequency=440.0):
    t = torch.arange(int(seconds * RATE)) / RATE
    return 0.5 * torch.sin(2 * math.pi * frequency * t)[None]


def make_speech_commands(folder):
    """A small folder laid out like speech_commands_v0.02 (16-bit PCM WAV files)."""
    folder.mkdir(parents=True)
    for name, (_, _, _, seconds) in WORDS.items():
        (folder / name).parent.mkdir(exist_ok=True)
        sc.save_wav(folder / name, _tone(seconds), RATE)
    (folder / "_background_noise_").mkdir()
    sc.save_wav(folder / "_background_noise_" / "white.wav", _tone(2.5, 1000), RATE)
    (folder / "validation_list.txt").write_text("no/aa11_nohash_0.wav\n")
    (folder / "testing_list.txt").write_text("go/dd44_nohash_2.wav\n")
    return folder


@pytest.fixture
def root(tmp_path):
    make_speech_commands(tmp_path / "SpeechCommands" / "speech_commands_v0.02")
    return tmp_path


def test_wav_round_trip_is_16_bit_exact(tmp_path):
    waveform = torch.tensor([[0.0, 0.5, -0.5, -1.0, 32767 / 32768]])
    sc.save_wav(tmp_path / "a.wav", waveform, 8000)
    loaded, rate = sc.load_wav(tmp_path / "a.wav")
    assert rate == 8000 and loaded.dtype == torch.float32
    torch.testing.assert_close(loaded, waveform, rtol=0, atol=0)
    stereo = torch.stack([waveform[0], -waveform[0] / 2])
    sc.save_wav(tmp_path / "b.wav", stereo, 8000)
    torch.testing.assert_close(
        sc.load_wav(tmp_path / "b.wav")[0], stereo, rtol=0, atol=1 / 32768
    )


def test_items_and_subsets_follow_torchaudio(root):
    everything = sc.SpeechCommands(root)
    assert len(everything) == 5  # background noise is not a word
    waveform, rate, label, speaker, utterance = everything[
        everything._walker.index(
            str(root / "SpeechCommands/speech_commands_v0.02/yes/bb22_nohash_1.wav")
        )
    ]
    assert (rate, label, speaker, utterance) == (RATE, "yes", "bb22", 1)
    assert waveform.shape == (1, RATE // 2)
    assert len(sc.SpeechCommands(root, subset="training")) == 3
    assert [
        sc.SpeechCommands(root, subset=s)[0][2] for s in ("validation", "testing")
    ] == ["no", "go"]
    with pytest.raises(ValueError, match="subset"):
        sc.SpeechCommands(root, subset="train")
    with pytest.raises(FileNotFoundError, match="download=True"):
        sc.SpeechCommands(root / "elsewhere")


def test_prepare_dataset_splits_words_and_background(root):
    train, valid, test = sc.prepare_dataset(sc.SpeechCommands(root))
    background = sorted(
        (root / "SpeechCommands/speech_commands_v0.02/background").glob("*.wav")
    )
    assert [p.name for p in background] == ["white_nohash_0.wav", "white_nohash_1.wav"]
    assert sc.load_wav(background[0])[0].shape == (1, RATE)
    labels = lambda data: sorted(data[i][2] for i in range(len(data)))  # noqa: E731
    # Words by the official lists; background clips in proportion: training has 3 of
    # the 5 words, so int(3/5 * 2) = 1 clip, validation int(1/5 * 2) = 0, test the rest.
    assert labels(train) == ["background", "bed", "yes", "yes"]
    assert labels(valid) == ["no"] and labels(test) == ["background", "go"]
    assert len(train) + len(valid) + len(test) == 5 + 2


def test_label_to_index_is_deterministic_with_unknown_12(root):
    mapping = sc.label_to_index(sc.SpeechCommands(root))
    assert mapping["yes"] == 0 and mapping["go"] == 9 and mapping["background"] == 10
    assert mapping["bed"] == 12


def test_features_dataset_pads_to_a_second_and_transforms(root):
    data = sc.SpeechCommandsDataset(
        sc.SpeechCommands(root), sc.MelSpectrogram(n_mels=20)
    )
    for index in range(len(data)):
        features, label = data[index]
        assert features.shape == (1, 20, 1 + RATE // 200)
        assert label == data.label_to_index[data.dataset[index][2]]


def test_mel_filterbank_triangles_peak_at_mel_spaced_centres():
    filters = sc.mel_filterbank(201, 0.0, 8000.0, 10, RATE)
    assert filters.shape == (201, 10) and filters.min() >= 0 and filters.max() <= 1
    mel = torch.linspace(0, 2595 * math.log10(1 + 8000 / 700), 12)
    centres = 700 * (10 ** (mel[1:-1] / 2595) - 1)
    frequencies = torch.linspace(0, 8000, 201)
    for band in range(10):
        peak = frequencies[filters[:, band].argmax()]
        assert abs(peak - centres[band]) <= 40  # within a 40 Hz frequency bin
        # zero outside the neighbouring centres
        assert (
            filters[frequencies < (0 if band == 0 else centres[band - 1]) - 40, band]
            == 0
        ).all()


def test_mel_spectrogram_of_a_tone_peaks_in_its_band():
    transform = sc.MelSpectrogram(n_mels=40)
    spectrogram = transform(_tone(1.0, 1000.0))
    assert spectrogram.shape == (1, 40, 81)
    strongest = spectrogram[0, :, 5:-5].mean(-1).argmax().item()
    peaks = transform.filters.argmax(0) * (RATE / 2) / 200  # each band's peak (Hz)
    assert abs(peaks[strongest].item() - 1000) < 100
    silent = transform(torch.zeros(2, 3, RATE))
    assert silent.shape == (2, 3, 40, 81) and silent.abs().max() == 0


def test_download_checks_sha256_and_unpacks(tmp_path):
    source = make_speech_commands(tmp_path / "source")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = mirror / "speech_commands_v0.02.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(source)), recursive=False)
    good = pytest.importorskip("pooch").file_hash(str(archive), alg="sha256")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sc.CHECKSUMS, "speech_commands_v0.02.tar.gz", "0" * 64)
        with pytest.raises(RuntimeError, match="SHA256 hash of downloaded file"):
            sc.SpeechCommands(tmp_path / "bad", download=True, mirrors=[mirror])
        patch.setitem(sc.CHECKSUMS, "speech_commands_v0.02.tar.gz", good)
        data = sc.SpeechCommands(tmp_path / "cache", download=True, mirrors=[mirror])
    assert len(data) == 5
    assert (
        tmp_path / "cache/SpeechCommands/speech_commands_v0.02/testing_list.txt"
    ).is_file()
    assert not (tmp_path / "bad" / "SpeechCommands").exists()


def test_reference_checksums():
    assert sc.CHECKSUMS["speech_commands_v0.02.tar.gz"].startswith("af14739ee7dc")
    with pytest.raises(ValueError, match="url"):
        sc.SpeechCommands(".", url="speech_commands_v9")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_fft": -1}, "n_fft must be a positive int"),
        ({"n_fft": 16.0}, "n_fft must be a positive int"),
        ({"n_mels": 0}, "n_mels must be a positive int"),
        ({"win_length": 64, "n_fft": 32}, r"win_length must be <= n_fft \(32\)"),
        ({"win_length": 1, "n_fft": 32}, r"hop_length \(win_length // 2\) must be"),
        ({"hop_length": 0}, "hop_length must be a positive int"),
        ({"sample_rate": 0}, "sample_rate must be a positive"),
        ({"power": float("nan")}, "power must be a positive"),
    ],
)
def test_mel_spectrogram_checks_its_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sc.MelSpectrogram(**kwargs)


def test_mel_spectrogram_checks_the_waveform():
    mel = sc.MelSpectrogram(n_fft=16, n_mels=4)
    with pytest.raises(TypeError, match="waveform must be a torch.Tensor"):
        mel([0.0] * 40)
    for dtype in (torch.int64, torch.bool, torch.complex64):
        with pytest.raises(TypeError, match="real floating-point tensor"):
            mel(torch.ones(1, 40, dtype=dtype))
    with pytest.raises(ValueError, match="more than n_fft // 2 = 8 samples"):
        mel(torch.ones(1, 8))
    assert mel(torch.ones(0, 40)).shape == (0, 4, 6)  # an empty batch


def test_mel_spectrogram_of_half_precision_runs_in_float32():
    mel = sc.MelSpectrogram(n_fft=16, n_mels=4)
    waveform = torch.rand(2, 40) - 0.5
    result = mel(waveform.half())
    assert result.dtype == torch.float16
    torch.testing.assert_close(
        result.float(), mel(waveform.half().float()), rtol=1e-3, atol=1e-3
    )


def test_save_wav_keeps_full_scale_of_half_precision(tmp_path):
    # float16 rounds 32767 / 32768 to 1.0: scaled in float16, +1 wrapped to -32768
    path = tmp_path / "full.wav"
    sc.save_wav(path, torch.tensor([[1.0, -1.0, 0.5]], dtype=torch.float16), 8000)
    waveform, _ = sc.load_wav(path)
    torch.testing.assert_close(
        waveform, torch.tensor([[32767 / 32768, -1.0, 0.5]]), rtol=0, atol=0
    )


@pytest.mark.parametrize(
    "waveform, rate, error, message",
    [
        ([[0.0]], 8000, TypeError, "waveform must be a torch.Tensor"),
        (torch.zeros(0, 3), 8000, ValueError, "at least one channel"),
        (torch.tensor([[float("nan")]]), 8000, ValueError, "waveform must be finite"),
        (torch.zeros(1, 3, dtype=torch.int16), 8000, TypeError, "floating-point"),
        (torch.zeros(1, 3), 0, ValueError, "sample_rate must be a positive int"),
        (torch.zeros(1, 3), 8000.5, ValueError, "sample_rate must be a positive int"),
    ],
)
def test_save_wav_rejects_what_it_cannot_write(
    tmp_path, waveform, rate, error, message
):
    with pytest.raises(error, match=message):
        sc.save_wav(tmp_path / "bad.wav", waveform, rate)
    assert not (tmp_path / "bad.wav").exists()


def test_speech_commands_checks_root_and_url(tmp_path):
    with pytest.raises(TypeError, match="root must be a path"):
        sc.SpeechCommands(3)
    with pytest.raises(TypeError, match="url must be a str"):
        sc.SpeechCommands(tmp_path, url=None)
