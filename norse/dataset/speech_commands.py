"""Google Speech Commands (v0.02): one-second spoken words, without torchaudio.

P. Warden, "Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition",
arXiv:1804.03209 (data licensed CC BY 4.0).

Norse 1.1 wraps ``torchaudio.datasets.SPEECHCOMMANDS`` and leaves the features to
``torchaudio.transforms``. torchaudio is an optional, version-locked binary companion of
torch (and its recent releases read audio through yet another package), so this module
needs none of it and offers the whole pipeline on torch alone:

* :class:`SpeechCommands` reads the data set's folder (16-bit PCM WAV files, the
  ``validation_list.txt`` / ``testing_list.txt`` split) and downloads it through
  pooch (SHA-256 checked). Its items and attributes (``_path``, ``_walker``) are those
  of torchaudio's ``SPEECHCOMMANDS``, so the helpers below accept either. (tonic's
  ``SSC`` is another data set: the Spiking Speech Commands, already turned into
  spikes of 700 cochlear channels.)
* :func:`generate_background_noise`, :func:`prepare_dataset`, :func:`label_to_index` and
  :class:`SpeechCommandsDataset` as in Norse 1.1.
* :class:`MelSpectrogram`, torchaudio's transform of the same name (same defaults and
  HTK mel scale) on ``torch.stft``.

Example:
    >>> data = SpeechCommands("~/.cache/norse", download=True)          # doctest: +SKIP
    >>> train, valid, test = prepare_dataset(data)                      # doctest: +SKIP
    >>> features = SpeechCommandsDataset(train, MelSpectrogram(n_mels=40))  # doctest: +SKIP
    >>> spectrogram, label = features[0]    # (1, 40, 81): channel, mel band, frame
"""

import copy
import math
import os
import wave
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.utils.data

from norse.dataset._checks import (
    check_path,
    check_positive_int,
    check_positive_number,
    is_number,
)
from norse.dataset.download import PathLike, _import_extra, fetch

__all__ = [
    "KNOWN_LABELS",
    "MelSpectrogram",
    "SpeechCommands",
    "SpeechCommandsDataset",
    "generate_background_noise",
    "label_to_index",
    "load_wav",
    "prepare_dataset",
    "save_wav",
]

SAMPLE_RATE = 16000
HASH_DIVIDER = "_nohash_"
EXCEPT_FOLDER = "_background_noise_"
#: SHA-256 of the archives (the digests torchaudio checks).
CHECKSUMS = {
    "speech_commands_v0.01.tar.gz": "743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d",
    "speech_commands_v0.02.tar.gz": "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
}
MIRRORS: Tuple[str, ...] = (
    "http://download.tensorflow.org/data/",
    "https://storage.googleapis.com/download.tensorflow.org/data/",
)
#: The ten command words and the background noise class, in label order 0..10; every
#: other word is "unknown" with label 12 (Norse 1.1's numbering: 13 outputs).
KNOWN_LABELS = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "background",
)  # fmt: skip
UNKNOWN_INDEX = 12


def load_wav(path: PathLike) -> Tuple[torch.Tensor, int]:
    """Reads a PCM WAV file (8, 16 or 32 bit) as float32 ``(channels, samples)`` in
    ``[-1, 1)`` (integer samples divided by their full scale, as torchaudio does) and its
    sample rate."""
    with wave.open(os.fspath(path), "rb") as handle:
        width, channels = handle.getsampwidth(), handle.getnchannels()
        rate, raw = handle.getframerate(), handle.readframes(handle.getnframes())
    if width == 1:  # 8 bit WAV is unsigned
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width in (2, 4):
        kind = np.int16 if width == 2 else np.int32
        samples = np.frombuffer(raw, kind).astype(np.float32) / float(
            2 ** (8 * width - 1)
        )
    else:
        raise ValueError(
            f"{path}: {8 * width}-bit WAV is not supported (8, 16 or 32 bit)"
        )
    return torch.from_numpy(samples.reshape(-1, channels).T.copy()), rate


def _check_waveform(waveform) -> None:
    if not isinstance(waveform, torch.Tensor):
        raise TypeError(
            f"waveform must be a torch.Tensor, got {type(waveform).__name__}"
        )
    if not waveform.is_floating_point():
        raise TypeError(
            f"waveform must be a real floating-point tensor (samples in [-1, 1]), got "
            f"dtype {waveform.dtype}"
        )
    if waveform.dim() < 1:
        raise ValueError("waveform must have a samples dimension, got a scalar")


def save_wav(path: PathLike, waveform: torch.Tensor, sample_rate: int) -> None:
    """Writes float ``(channels, samples)`` in ``[-1, 1]`` as a 16-bit PCM WAV file
    (values outside are clipped)."""
    _check_waveform(waveform)
    if waveform.dim() != 2 or waveform.shape[0] < 1:
        raise ValueError(
            "waveform must be (channels, samples) with at least one channel, got "
            f"shape {tuple(waveform.shape)}"
        )
    if not bool(torch.isfinite(waveform).all()):
        raise ValueError("waveform must be finite, got NaN or infinite samples")
    if not (
        isinstance(sample_rate, (int, np.integer))
        and not isinstance(sample_rate, bool)
        and 0 < sample_rate < 2**31
    ):
        raise ValueError(
            f"sample_rate must be a positive int (Hz), got {sample_rate!r}"
        )
    # in float32 (at least): float16 rounds 32767 / 32768 up to 1, which overflows int16
    scaled = (
        waveform.detach().cpu().to(torch.promote_types(waveform.dtype, torch.float32))
    )
    pcm = (scaled.clamp(-1, 32767 / 32768) * 32768).round().to(torch.int16)
    with wave.open(os.fspath(path), "wb") as handle:
        handle.setnchannels(waveform.shape[0])
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(pcm.T.contiguous().numpy().tobytes())


class SpeechCommands(torch.utils.data.Dataset):
    """The Speech Commands folder, item for item like ``torchaudio.datasets.SPEECHCOMMANDS``.

    Parameters:
        root (str): folder holding (or receiving) ``folder_in_archive/<version>/``
        url (str): the version, ``"speech_commands_v0.02"`` (default) or ``"..._v0.01"``
        folder_in_archive (str): default ``"SpeechCommands"`` (torchaudio's layout, so a
            copy downloaded by torchaudio is found)
        download (bool): fetch the archive through pooch (SHA-256 checked) and unpack
            it if the folder is missing (needs the ``data`` extra)
        subset (str): None (every word recording), ``"training"``, ``"validation"`` or
            ``"testing"`` (the official lists; training is everything else)
        mirrors: base URLs or local folders to download from (default :data:`MIRRORS`)

    Items:
        ``(waveform (1, samples) float32, sample_rate, label, speaker_id,
        utterance_number)``; ``label`` is the folder name (e.g. ``"yes"``).
    """

    def __init__(
        self,
        root: PathLike,
        url: str = "speech_commands_v0.02",
        folder_in_archive: str = "SpeechCommands",
        download: bool = False,
        subset: Optional[str] = None,
        *,
        mirrors: Optional[Sequence[PathLike]] = None,
    ):
        check_path("root", root)
        if not isinstance(url, str):
            raise TypeError(
                f"url must be a str naming the version, e.g. 'speech_commands_v0.02', "
                f"got {url!r}"
            )
        if subset not in (None, "training", "validation", "testing"):
            raise ValueError(
                f"subset must be None, 'training', 'validation' or 'testing', got {subset!r}"
            )
        version = os.path.basename(url).removesuffix(".tar.gz")
        if version + ".tar.gz" not in CHECKSUMS:
            raise ValueError(f"url must name one of {sorted(CHECKSUMS)}, got {url!r}")
        root = Path(os.path.expanduser(os.fspath(root)))
        self._path = os.fspath(root / folder_in_archive / version)
        if download and not os.path.isdir(self._path):
            untar = _import_extra("pooch", "downloading Speech Commands").Untar
            fetch(
                root,
                version + ".tar.gz",
                "sha256:" + CHECKSUMS[version + ".tar.gz"],
                MIRRORS if mirrors is None else mirrors,
                processor=untar(extract_dir=self._path),
            )
        if not os.path.isdir(self._path):
            raise FileNotFoundError(
                f"{self._path} not found; pass download=True to fetch it"
            )
        words = sorted(
            os.fspath(p)
            for p in Path(self._path).glob("*/*.wav")
            if HASH_DIVIDER in p.name and p.parent.name != EXCEPT_FOLDER
        )
        if subset in ("validation", "testing"):
            listed = set(self._list(f"{subset}_list.txt"))
            words = [w for w in words if w in listed]
        elif subset == "training":
            held_out = set(self._list("validation_list.txt")) | set(
                self._list("testing_list.txt")
            )
            words = [w for w in words if w not in held_out]
        self._walker: List[str] = words

    def _list(self, name: str) -> List[str]:
        with open(os.path.join(self._path, name)) as handle:
            return [
                os.path.normpath(os.path.join(self._path, line.strip()))
                for line in handle
                if line.strip()
            ]

    def __len__(self) -> int:
        return len(self._walker)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int, str, str, int]:
        path = Path(self._walker[index])
        waveform, rate = load_wav(path)
        speaker, _, utterance = path.stem.partition(HASH_DIVIDER)
        return waveform, rate, path.parent.name, speaker, int(utterance or 0)


def generate_background_noise(speech_commands) -> List[str]:
    """Cuts the long recordings of ``_background_noise_`` into one-second files in
    ``<path>/background`` (a leftover shorter than a second is dropped).

    Parameters:
        speech_commands: a :class:`SpeechCommands` (or torchaudio ``SPEECHCOMMANDS``)

    Returns:
        The paths written, sorted.
    """
    source = Path(speech_commands._path) / EXCEPT_FOLDER
    target = Path(speech_commands._path) / "background"
    target.mkdir(exist_ok=True)
    written = []
    for recording in sorted(source.glob("*.wav")):
        waveform, rate = load_wav(recording)
        for chunk in range(waveform.shape[1] // rate):
            path = target / f"{recording.stem}{HASH_DIVIDER}{chunk}.wav"
            save_wav(path, waveform[:, chunk * rate : (chunk + 1) * rate], rate)
            written.append(os.fspath(path))
    return sorted(written)


def prepare_dataset(speech_commands):
    """Training, validation and test sets by the official lists, each with its share of
    one-second background noise clips (label ``"background"``).

    The validation and test sets hold the files of ``validation_list.txt`` and
    ``testing_list.txt``; training holds the rest. The background clips are split in the
    same proportions, in sorted order. (Norse 1.1 returned the validation files as the
    test set too, read the data from the working directory and named the clips with
    Python's randomised ``hash``; here the test set is the official one and the split is
    reproducible.)

    Returns:
        ``(train, valid, test)``: copies of ``speech_commands`` with their own file lists.
    """
    path = speech_commands._path

    def read_list(name):
        with open(os.path.join(path, name)) as handle:
            return {
                os.path.normpath(os.path.join(path, line.strip()))
                for line in handle
                if line.strip()
            }

    valid_files, test_files = (
        read_list("validation_list.txt"),
        read_list("testing_list.txt"),
    )
    everything = [os.path.normpath(w) for w in speech_commands._walker]
    subsets = []
    for keep in (
        lambda w: w not in valid_files and w not in test_files,
        lambda w: w in valid_files,
        lambda w: w in test_files,
    ):
        subset = copy.copy(speech_commands)
        subset._walker = [w for w in everything if keep(w)]
        subsets.append(subset)
    background = generate_background_noise(speech_commands)
    total = max(len(everything), 1)
    train_end = int(len(subsets[0]._walker) / total * len(background))
    valid_end = train_end + int(len(subsets[1]._walker) / total * len(background))
    subsets[0]._walker += background[:train_end]
    subsets[1]._walker += background[train_end:valid_end]
    subsets[2]._walker += background[valid_end:]
    return tuple(subsets)


def label_to_index(dataset) -> Dict[str, int]:
    """Class index of every label in ``dataset``: the words of :data:`KNOWN_LABELS` get
    0..10 in that order, every other word 12 ("unknown", as in Norse 1.1, whose known
    labels came from an unordered set)."""
    labels = {dataset[i][2] for i in range(len(dataset))}
    mapping = {label: index for index, label in enumerate(KNOWN_LABELS)}
    mapping.update({label: UNKNOWN_INDEX for label in labels - set(KNOWN_LABELS)})
    return mapping


class SpeechCommandsDataset(torch.utils.data.Dataset):
    """Features and class indices of a Speech Commands set (Norse 1.1's wrapper).

    Every waveform is zero-padded at the end to one second (``sample_rate`` samples),
    passed through ``transform`` (e.g. :class:`MelSpectrogram`) and paired with its
    class index from :func:`label_to_index`.

    Parameters:
        dataset: items ``(waveform, sample_rate, label, ...)``, e.g. a subset from
            :func:`prepare_dataset`
        transform: waveform ``(1, sample_rate)`` -> features
    """

    def __init__(self, dataset, transform):
        self.dataset = dataset
        self.transform = transform
        self.label_to_index = label_to_index(dataset)

    def __getitem__(self, index: int):
        waveform, sample_rate, label, *_ = self.dataset[index]
        padding = sample_rate - waveform.shape[1]
        if padding < 0:
            raise ValueError(
                f"item {index} is {waveform.shape[1] / sample_rate:.3f} s long; at most one second is expected"
            )
        waveform = torch.nn.functional.pad(waveform, (0, padding))
        return self.transform(waveform), self.label_to_index[label]

    def __len__(self) -> int:
        return len(self.dataset)


def _hz_to_mel(frequency):
    return 2595.0 * math.log10(1.0 + frequency / 700.0)


def mel_filterbank(
    n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int
) -> torch.Tensor:
    """Triangular filters ``(n_freqs, n_mels)`` on the HTK mel scale
    ``m = 2595 log10(1 + f / 700)``: filter ``k`` rises linearly from mel point ``k`` to
    1 at point ``k + 1`` and falls to 0 at point ``k + 2``, the ``n_mels + 2`` points
    spaced evenly in mel between ``f_min`` and ``f_max`` (unnormalised, as torchaudio's
    ``melscale_fbanks`` with ``norm=None, mel_scale="htk"``)."""
    frequencies = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    mels = torch.linspace(
        _hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2, dtype=torch.float64
    )
    points = 700.0 * (10 ** (mels / 2595.0) - 1.0)  # back to Hz
    lower, center, upper = points[:-2], points[1:-1], points[2:]
    rising = (frequencies[:, None] - lower) / (center - lower)
    falling = (upper - frequencies[:, None]) / (upper - center)
    return torch.clamp(torch.minimum(rising, falling), min=0).to(torch.float32)


class MelSpectrogram(torch.nn.Module):
    """Mel-scaled power spectrogram, torchaudio's ``MelSpectrogram`` on ``torch.stft``.

    Short-time Fourier transform with a periodic Hann window of ``win_length`` samples
    (zero-padded to ``n_fft``), frames every ``hop_length`` samples, the signal
    reflect-padded by ``n_fft // 2`` on both sides (``center``), the magnitude raised to
    ``power`` and projected onto :func:`mel_filterbank`.

    Parameters (torchaudio's defaults): ``sample_rate=16000, n_fft=400, win_length=None
    (n_fft), hop_length=None (win_length // 2), f_min=0, f_max=None (sample_rate / 2),
    n_mels=128, power=2.0``.

    Shapes: waveform ``(..., samples)`` -> ``(..., n_mels, 1 + samples // hop_length)``.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 400,
        win_length: Optional[int] = None,
        hop_length: Optional[int] = None,
        f_min: float = 0.0,
        f_max: Optional[float] = None,
        n_mels: int = 128,
        power: float = 2.0,
    ):
        super().__init__()
        check_positive_int("n_fft", n_fft)
        check_positive_int("n_mels", n_mels)
        check_positive_number("sample_rate", sample_rate, "Hz")
        check_positive_number("power", power)
        self.n_fft = n_fft
        self.win_length = n_fft if win_length is None else win_length
        check_positive_int("win_length", self.win_length)
        if self.win_length > n_fft:
            raise ValueError(
                f"win_length must be <= n_fft ({n_fft}), got {self.win_length}"
            )
        self.hop_length = self.win_length // 2 if hop_length is None else hop_length
        check_positive_int(
            "hop_length" if hop_length is not None else "hop_length (win_length // 2)",
            self.hop_length,
        )
        self.power = power
        f_max = sample_rate / 2 if f_max is None else f_max
        if not (is_number(f_min) and is_number(f_max)):
            raise TypeError(
                f"f_min and f_max must be numbers, got {f_min!r} and {f_max!r}"
            )
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ValueError(
                f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, f_max={f_max}"
            )
        self.register_buffer(
            "window", torch.hann_window(self.win_length), persistent=False
        )
        self.register_buffer(
            "filters",
            mel_filterbank(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate),
            persistent=False,
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        _check_waveform(waveform)
        leading, samples = waveform.shape[:-1], waveform.shape[-1]
        if samples <= self.n_fft // 2:
            raise ValueError(
                f"waveform must have more than n_fft // 2 = {self.n_fft // 2} samples "
                f"(the signal is reflect-padded by that much), got shape "
                f"{tuple(waveform.shape)}"
            )
        frames = 1 + samples // self.hop_length
        if waveform.numel() == 0:  # an empty batch
            return waveform.new_zeros((*leading, self.filters.shape[1], frames))
        # the FFT of half-precision inputs runs in float32 (no CPU half FFT)
        signal = waveform
        if waveform.dtype in (torch.float16, torch.bfloat16):
            signal = waveform.float()
        spectrum = torch.stft(
            signal.reshape(-1, samples),
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window.to(signal.dtype),
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )  # (batch, n_freqs, frames)
        power = spectrum.abs().pow(self.power)
        mel = torch.matmul(
            power.transpose(-1, -2), self.filters.to(power.dtype)
        ).transpose(-1, -2)
        return mel.reshape(*leading, *mel.shape[-2:]).to(waveform.dtype)
