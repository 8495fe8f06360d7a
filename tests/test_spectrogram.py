"""The 78-bin reference spectrogram: shape, framing, filterbank, pitch bands, madmom agreement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from sfgym.data.spectrogram import (
    FPS,
    N_BINS,
    SpectrogramParams,
    band_center_frequencies,
    log_filterbank,
    spectrogram_from_audio,
    spectrogram_from_file,
)

SR = 22050
HOP = SR / FPS  # 1102.5 samples
MADMOM_REFERENCE = Path(__file__).parent / "fixtures" / "madmom_reference_spectrogram.npz"


def sine(frequency: float, seconds: float, sample_rate: int = SR, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def band_of(frequency: float) -> int:
    return int(np.argmin(np.abs(band_center_frequencies() - frequency)))


def reference_test_signal() -> np.ndarray:
    """The int16 signal that tests/fixtures/madmom_reference_spectrogram.npz was computed from.

    1.5 s at 22.05 kHz: a linear chirp 60 -> 6000 Hz plus decaying tones at 110, 440, 1318.5 Hz.
    The fixture holds madmom 0.16.1's output for it (SignalProcessor(num_channels=1,
    sample_rate=22050) -> FramedSignalProcessor(frame_size=2048, fps=20) ->
    FilteredSpectrogramProcessor(LogarithmicFilterbank, num_bands=12, fmin=60, fmax=6000,
    norm_filters=True, unique_filters=False) -> LogarithmicSpectrogramProcessor(), on the signal
    written as a 16-bit wav) and the non-zero entries of madmom's filterbank.
    """
    t = np.arange(int(1.5 * SR)) / SR
    chirp = np.sin(2 * np.pi * (60 * t + (6000 - 60) / (2 * 1.5) * t**2))
    tones = sum(np.sin(2 * np.pi * f * t) for f in (110.0, 440.0, 1318.5))
    return np.round((0.3 * chirp + 0.15 * tones * np.exp(-t)) * 20000).astype(np.int16)


def test_reference_parameters_give_78_bins_at_20_fps():
    params = SpectrogramParams()
    assert (N_BINS, FPS) == (78, 20)
    assert params.hop_size == 1102.5
    assert params.to_dict() == {"sample_rate": 22050, "frame_size": 2048, "fps": 20, "bands_per_octave": 12,
                                "fmin": 60.0, "fmax": 6000.0, "norm_filters": True}
    spectrogram = spectrogram_from_audio(sine(440.0, 1.0), SR)
    assert spectrogram.shape == (78, 20)
    assert spectrogram.dtype == np.float32


@pytest.mark.parametrize("n_samples", [1, 1102, 1103, 2048, 22050, 22051, 44100])
def test_frame_count_is_ceil_of_samples_over_hop(n_samples):
    audio = np.full(n_samples, 0.1, dtype=np.float32)
    assert spectrogram_from_audio(audio, SR).shape[1] == int(np.ceil(n_samples / HOP))


def test_frame_i_is_centred_on_sample_floor_i_times_hop():
    # A click at the centre of frame 10 lies outside the 2048-sample windows of frames 9 and 11
    # (their centres are 1102.5 samples away), so only frame 10 sees it.
    audio = np.zeros(SR, dtype=np.float32)
    audio[int(np.floor(10 * HOP))] = 1.0
    energy = spectrogram_from_audio(audio, SR).sum(axis=0)
    assert np.nonzero(energy)[0].tolist() == [10]


def test_filterbank_is_normalised_and_read_only():
    filterbank = log_filterbank(SpectrogramParams())
    assert filterbank.shape == (1024, 78)
    np.testing.assert_allclose(filterbank.sum(axis=0), 1.0, rtol=1e-5)
    assert log_filterbank(SpectrogramParams()) is filterbank  # cached
    with pytest.raises(ValueError):
        filterbank[0, 0] = 1.0


def test_bands_are_semitones_from_c2():
    centres = band_center_frequencies()
    nominal = 440.0 * 2.0 ** ((36 + np.arange(78) - 69) / 12)  # MIDI pitches 36 (C2) .. 113
    bin_width = SR / 2048
    assert np.all(np.diff(centres) >= 0)
    # Below band 15 semitones are narrower than an FFT bin and madmom's collapsed filters can
    # sit up to a bin away; above, every band peaks at the bin nearest to its pitch.
    assert np.all(np.abs(centres - nominal) < bin_width)
    assert np.all(np.abs(centres - nominal)[15:] <= bin_width / 2)
    assert band_of(440.0) == 33


def test_filterbank_and_spectrogram_match_madmom():
    reference = np.load(MADMOM_REFERENCE)
    madmom_filterbank = np.zeros((1024, 78), dtype=np.float32)
    madmom_filterbank[reference["filterbank_rows"], reference["filterbank_cols"]] = reference["filterbank_values"]
    np.testing.assert_allclose(log_filterbank(SpectrogramParams()), madmom_filterbank, atol=1e-7)

    spectrogram = spectrogram_from_audio(reference_test_signal(), SR)
    assert spectrogram.shape == reference["spectrogram"].shape == (78, 30)
    np.testing.assert_allclose(spectrogram, reference["spectrogram"], atol=1e-5)


@pytest.mark.parametrize("frequency, expected_band", [(440.0, 33), (880.0, 45), (220.0, 21)])
def test_sine_peaks_in_the_band_of_its_pitch(frequency, expected_band):
    spectrogram = spectrogram_from_audio(sine(frequency, 2.0), SR)
    assert np.all(np.isfinite(spectrogram)) and spectrogram.min() >= 0.0
    steady = spectrogram[:, 2:-2].mean(axis=1)  # frames whose window lies inside the signal
    assert int(np.argmax(steady)) == expected_band == band_of(frequency)


def test_integer_audio_is_scaled_by_its_maximum_like_madmom():
    audio = np.round(sine(440.0, 0.5) * 20000).astype(np.int16)
    from_int16 = spectrogram_from_audio(audio, SR)
    np.testing.assert_allclose(from_int16, spectrogram_from_audio(audio / 32767, SR), atol=1e-5)
    # 32767 * 65538 = 2**31 - 2: the same signal in int32 PCM gives the same spectrogram
    as_int32 = audio.astype(np.int32) * 65538
    np.testing.assert_allclose(spectrogram_from_audio(as_int32, SR), from_int16, atol=1e-5)
    assert from_int16.max() > 1.0  # not a trivially small spectrogram


def test_stereo_is_mixed_to_mono_in_either_layout():
    left, right = sine(440.0, 1.0), sine(1000.0, 1.0)
    expected = spectrogram_from_audio((left + right) / 2, SR)
    channels_last = np.stack([left, right], axis=1)
    np.testing.assert_allclose(spectrogram_from_audio(channels_last, SR), expected, atol=1e-6)
    np.testing.assert_allclose(spectrogram_from_audio(channels_last.T, SR), expected, atol=1e-6)


def test_other_sample_rates_are_resampled_to_the_same_frames_per_second():
    at_22k = spectrogram_from_audio(sine(440.0, 2.0, SR), SR)
    at_44k = spectrogram_from_audio(sine(440.0, 2.0, 44100), 44100)
    assert at_44k.shape == at_22k.shape == (78, 40)
    assert int(np.argmax(at_44k[:, 2:-2].mean(axis=1))) == 33
    # soxr's filter differs from the identity only at the very top of the band and at the edges
    np.testing.assert_allclose(at_44k, at_22k, atol=5e-3)


def test_file_matches_audio_and_keeps_int16_scaling(tmp_path):
    audio = np.round(sine(440.0, 1.0) * 20000).astype(np.int16)
    path = tmp_path / "tone.wav"
    soundfile.write(path, audio, SR, subtype="PCM_16")
    np.testing.assert_array_equal(spectrogram_from_file(path), spectrogram_from_audio(audio, SR))


def test_bad_input_raises_with_file_name(tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"this is not audio at all")
    with pytest.raises(ValueError, match="broken.wav"):
        spectrogram_from_file(broken)
    with pytest.raises(ValueError, match="missing.wav"):
        spectrogram_from_file(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.int16), SR, subtype="PCM_16")
    with pytest.raises(ValueError, match="empty.wav.*no samples"):
        spectrogram_from_file(empty)
    with pytest.raises(ValueError, match="empty audio"):
        spectrogram_from_audio(np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(ValueError, match="NaN"):
        spectrogram_from_audio(np.full(100, np.nan, dtype=np.float32), SR)
