"""The reference log-frequency spectrogram of Dorfer et al. (78 bins, 20 frames per second).

The score-following agents of CPJKU/score_following_game observe audio through a madmom
processing chain::

    SignalProcessor(num_channels=1, sample_rate=22050)
    -> FramedSignalProcessor(frame_size=2048, fps=20)
    -> FilteredSpectrogramProcessor(filterbank=LogarithmicFilterbank, num_bands=12,
                                    fmin=60, fmax=6000, norm_filters=True, unique_filters=False)
    -> LogarithmicSpectrogramProcessor()          # log10(1 + x)

madmom is unmaintained (it needs patching to import on Python 3.11 / numpy >= 1.24), so this
module re-implements exactly that chain in numpy/scipy. Each step follows madmom 0.16.1:

* Framing: frame ``i`` is centred on sample ``floor(i * hop)`` with ``hop = sample_rate / fps``
  (1102.5 samples), i.e. it covers samples ``[floor(i * hop) - 1024, floor(i * hop) + 1024)``;
  samples outside the signal are zeros. There are ``ceil(n_samples / hop)`` frames
  (madmom's ``end='normal'``).
* Window: the *symmetric* Hann window ``np.hanning(2048)``. Integer input (e.g. int16 PCM)
  is scaled by ``1 / iinfo(dtype).max`` as madmom does, float input is used as it is.
* Magnitude of the real FFT of size 2048, keeping 1024 bins (no Nyquist bin).
* Filterbank: log-spaced frequencies ``440 * 2 ** (k / 12)`` within [60, 6000] Hz, each mapped
  to its nearest FFT bin (duplicates kept: ``unique_filters=False``); one triangular filter per
  consecutive triple of bins, a filter narrower than 2 bins collapses to one bin of weight 1,
  every filter is divided by its sum (``norm_filters=True``), overlapping filters in one band
  combine by maximum. 80 frequencies -> 78 filters.
* ``log10(1 + x)``.

Deviations from madmom, measured against madmom 0.16.1 (patched to import on Python 3.11) on the
MSMD sample ``shared/msmd-sample/cyolo_format/*_synth.wav`` (22.05 kHz int16 mono, 41.9 s,
838 frames, values in [0, 1.25]):

* ``log_filterbank`` equals madmom's ``LogarithmicFilterbank`` matrix exactly.
  ``band_center_frequencies`` gives each filter's peak bin; madmom's ``center_frequencies``
  property is one bin lower for bands 22, 25 and 28 because its argmax skips the last non-zero
  bin of a filter (a quirk of that property, not of the filters).
* The FFT runs in float32 (scipy.fft) instead of float64 cast to complex64:
  ``spectrogram_from_file`` differs by max 1.4e-7, mean 1.6e-8 (float32 rounding). Frame count
  is identical (838).
* Float input is used as it is, so float samples decoded the soundfile way (int16 / 32768)
  are 32767/32768 of madmom's int16 / 32767 scaling: max 1.3e-5, mean 2.4e-6.
  ``spectrogram_from_file`` passes 16-bit PCM on as int16 and so avoids this.
* Resampling (input rate != 22050 Hz) uses soxr (``HQ``), where madmom decoded through ffmpeg
  (resampled, mixed to mono and re-quantised to int16). Same frame counts; differences: a
  44.1 kHz int16 copy of the sample, max 2.5e-4, mean 2.4e-5; the sample's MIDI rendered by
  midirenderer + TimGM6mb (48 kHz int16 stereo, 838 frames), max 6.0e-4, mean 5.6e-5.
* Stereo integer input is down-mixed like madmom (mean, truncated back to the integer dtype);
  stereo float input is simply averaged.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import soundfile
import soxr

N_BINS = 78
"""Number of frequency bands of the reference spectrogram."""

FPS = 20
"""Frames per second of the reference spectrogram."""

A4_HZ = 440.0  # reference pitch of the log-spaced band frequencies (madmom's fref)

# Frames are transformed in blocks so that a long recording never materialises as one
# (n_frames x 2048) matrix.
_FRAMES_PER_BLOCK = 1024


@dataclass(frozen=True)
class SpectrogramParams:
    """Parameters of the log-frequency spectrogram; the defaults are the reference ones."""

    sample_rate: int = 22050
    frame_size: int = 2048
    fps: float = 20
    bands_per_octave: int = 12
    fmin: float = 60.0
    fmax: float = 6000.0
    norm_filters: bool = True

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.frame_size < 4 or self.fps <= 0:
            raise ValueError(f"invalid spectrogram parameters: {self}")
        if not 0 < self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(f"need 0 < fmin < fmax <= sample_rate / 2, got {self}")

    @property
    def hop_size(self) -> float:
        """Distance between frame centres in samples (1102.5 for the reference)."""
        return self.sample_rate / self.fps

    @property
    def n_fft_bins(self) -> int:
        """Number of FFT magnitude bins used (frame_size // 2, no Nyquist bin)."""
        return self.frame_size // 2

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the parameters, e.g. for a dataset manifest."""
        return dataclasses.asdict(self)


def _log_frequencies(params: SpectrogramParams) -> np.ndarray:
    """Log-spaced frequencies 440 * 2**(k / bands_per_octave) in [fmin, fmax] (madmom's)."""
    bpo = params.bands_per_octave
    lowest = np.floor(np.log2(params.fmin / A4_HZ) * bpo)
    highest = np.ceil(np.log2(params.fmax / A4_HZ) * bpo)
    frequencies = A4_HZ * 2.0 ** (np.arange(lowest, highest) / bpo)
    # floor/ceil can overshoot the range by one band on each side
    frequencies = frequencies[np.searchsorted(frequencies, params.fmin):]
    return frequencies[: np.searchsorted(frequencies, params.fmax, "right")]


def _fft_bin_frequencies(params: SpectrogramParams) -> np.ndarray:
    return np.arange(params.n_fft_bins) * (params.sample_rate / params.frame_size)


def _nearest_bins(frequencies: np.ndarray, bin_frequencies: np.ndarray) -> np.ndarray:
    """Index of the closest FFT bin for each frequency; ties go to the upper bin (madmom's)."""
    upper = np.clip(bin_frequencies.searchsorted(frequencies), 1, len(bin_frequencies) - 1)
    lower = upper - 1
    closer_to_lower = frequencies - bin_frequencies[lower] < bin_frequencies[upper] - frequencies
    return upper - closer_to_lower.astype(int)


@functools.lru_cache(maxsize=8)
def log_filterbank(params: SpectrogramParams = SpectrogramParams()) -> np.ndarray:
    """Triangular log-frequency filterbank, float32 of shape (n_fft_bins, n_bands).

    With the reference parameters the shape is (1024, 78). The result is cached and read-only.
    """
    bins = _nearest_bins(_log_frequencies(params), _fft_bin_frequencies(params))
    if len(bins) < 3:
        raise ValueError(f"fewer than 3 log-spaced frequencies in [fmin, fmax]: {params}")
    filterbank = np.zeros((params.n_fft_bins, len(bins) - 2), dtype=np.float32)
    for band, (start, centre, stop) in enumerate(zip(bins[:-2], bins[1:-1], bins[2:])):
        # Duplicate bins (low frequencies, where bands are narrower than an FFT bin) make
        # degenerate triangles; madmom turns them into a single bin of weight 1.
        if stop - start < 2:
            centre, stop = start, start + 1
        rising = np.linspace(0, 1, centre - start, endpoint=False)
        falling = np.linspace(1, 0, stop - centre, endpoint=False)
        triangle = np.concatenate([rising, falling]).astype(np.float32)
        if params.norm_filters:
            triangle /= triangle.sum()
        stop = min(stop, params.n_fft_bins)  # truncate a filter reaching past the last bin
        filterbank[start:stop, band] = triangle[: stop - start]
    filterbank.flags.writeable = False
    return filterbank


def band_center_frequencies(params: SpectrogramParams = SpectrogramParams()) -> np.ndarray:
    """Frequency (Hz) of the FFT bin at the peak of each band's filter, shape (n_bands,).

    Band ``b`` of the reference spectrogram stands for MIDI pitch ``b + 36`` (C2 = 65.4 Hz ...
    F8 = 5587.7 Hz): A4 = 440 Hz is band 33. From band 15 (123 Hz) up each band peaks at the FFT
    bin nearest to its pitch; below, semitones are narrower than the 10.8 Hz FFT bins and the
    collapsed filters peak up to one bin away. This is each filter's true peak; madmom's
    ``center_frequencies`` property is one bin lower for 3 bands.
    """
    return _fft_bin_frequencies(params)[np.argmax(log_filterbank(params), axis=0)]


def _to_mono(samples: np.ndarray) -> np.ndarray:
    """Mix (n_samples, n_channels) or (n_channels, n_samples) audio down to 1-D."""
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise ValueError(f"audio must be 1-D or 2-D (samples x channels), got shape {samples.shape}")
    max_channels = 16
    if samples.shape[1] <= max_channels:
        channel_axis = 1  # soundfile layout
    elif samples.shape[0] <= max_channels:
        channel_axis = 0  # librosa layout
    else:
        raise ValueError(f"cannot tell the channel axis of audio with shape {samples.shape}")
    mono = samples.mean(axis=channel_axis)
    # madmom returns a down-mixed integer signal in its integer dtype (truncating the mean)
    return mono.astype(samples.dtype) if np.issubdtype(samples.dtype, np.integer) else mono


def _frame_magnitudes(signal: np.ndarray, scale: float, params: SpectrogramParams) -> np.ndarray:
    """|FFT| of the madmom-style centred, Hann-windowed frames, shape (n_frames, n_fft_bins)."""
    frame_size, hop = params.frame_size, params.hop_size
    n_frames = int(np.ceil(len(signal) / hop))
    half = frame_size // 2
    # Zero-pad so that every frame (centred on floor(i * hop), possibly overhanging either end)
    # is a plain slice: padded index = signal index + half.
    last_start = int(np.floor((n_frames - 1) * hop))
    padded = np.zeros(max(last_start + frame_size, half + len(signal)), dtype=np.float32)
    padded[half : half + len(signal)] = signal
    window = (np.hanning(frame_size) * scale).astype(np.float32)
    starts = np.floor(np.arange(n_frames) * hop).astype(np.int64)
    offsets = np.arange(frame_size)
    magnitudes = np.empty((n_frames, params.n_fft_bins), dtype=np.float32)
    for first in range(0, n_frames, _FRAMES_PER_BLOCK):
        block = padded[starts[first : first + _FRAMES_PER_BLOCK, None] + offsets] * window
        spectrum = scipy.fft.rfft(block, axis=1)[:, : params.n_fft_bins]
        magnitudes[first : first + len(block)] = np.abs(spectrum)
    return magnitudes


def spectrogram_from_audio(
    samples: np.ndarray,
    sample_rate: int,
    params: SpectrogramParams = SpectrogramParams(),
) -> np.ndarray:
    """Log-frequency spectrogram of audio, float32 of shape (n_bands, n_frames).

    Args:
        samples: audio as (n_samples,) or (n_samples, n_channels) (channels-first is accepted
            too); float in [-1, 1] or integer PCM (scaled by 1 / iinfo.max, as madmom does).
            Several channels are averaged to mono.
        sample_rate: rate of ``samples`` in Hz; audio is resampled to ``params.sample_rate``
            (soxr) when it differs.
        params: spectrogram parameters (the reference ones by default).

    Returns:
        ``log10(1 + filterbank^T |STFT|)``; column ``i`` is the frame centred at sample
        ``floor(i * hop)`` of the (resampled) signal, i.e. at time ``i / fps`` seconds.
        There are ``ceil(n_samples / hop)`` frames.
    """
    samples = np.asarray(samples)
    if samples.size == 0:
        raise ValueError("cannot compute a spectrogram of empty audio")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    mono = _to_mono(samples)
    if np.issubdtype(mono.dtype, np.integer):
        scale = 1.0 / float(np.iinfo(mono.dtype).max)
    elif np.issubdtype(mono.dtype, np.floating):
        scale = 1.0
    else:
        raise ValueError(f"audio samples must be integer or float, got dtype {mono.dtype}")
    if sample_rate != params.sample_rate:
        mono = soxr.resample(mono.astype(np.float32) * scale, sample_rate, params.sample_rate)
        scale = 1.0
    mono = mono.astype(np.float32, copy=False)
    if not np.all(np.isfinite(mono)):
        raise ValueError("audio contains NaN or infinite samples")
    if len(mono) == 0:
        raise ValueError("audio is shorter than one sample after resampling")

    filtered = _frame_magnitudes(mono, scale, params) @ log_filterbank(params)
    return np.ascontiguousarray((np.log1p(filtered) / np.log(10.0)).T, dtype=np.float32)


def spectrogram_from_file(
    path: str | Path, params: SpectrogramParams = SpectrogramParams()
) -> np.ndarray:
    """Spectrogram of an audio file (wav/flac/ogg/mp3... via soundfile, other formats via librosa).

    16-bit PCM is read as int16 so that scaling matches madmom exactly.

    Raises:
        ValueError: naming the file, if it cannot be read or holds no samples.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"audio file {path} does not exist")
    if path.suffix.lstrip(".").upper() in soundfile.available_formats():
        try:
            subtype = soundfile.info(str(path)).subtype
            dtype = "int16" if subtype == "PCM_16" else "float32"
            samples, sample_rate = soundfile.read(str(path), dtype=dtype, always_2d=False)
        except Exception as error:  # a broken file of a format libsndfile knows
            raise ValueError(f"cannot read audio file {path}: {error}") from error
    else:  # e.g. .m4a: librosa decodes through audioread
        try:
            import librosa

            samples, sample_rate = librosa.load(str(path), sr=None, mono=False)
        except Exception as error:
            raise ValueError(f"cannot read audio file {path}: {error}") from error
    if np.asarray(samples).size == 0:
        raise ValueError(f"audio file {path} contains no samples")
    try:
        return spectrogram_from_audio(samples, int(sample_rate), params)
    except ValueError as error:
        raise ValueError(f"audio file {path}: {error}") from error
