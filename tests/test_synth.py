"""MIDI synthesis with the bundled piano SoundFont, and atomic WAV writing."""

from __future__ import annotations

import io

import numpy as np
import pretty_midi
import pytest
import soundfile

from sfgym.data.spectrogram import band_center_frequencies, spectrogram_from_audio
from sfgym.data.synth import available_soundfonts, synthesize_midi, write_wav_atomic

SR = 22050
A4, A3, A5 = 69, 57, 81


def tiny_piece(program: int = 0) -> pretty_midi.PrettyMIDI:
    """A4 alone from 0.5 s to 1.5 s, then A3 + A5 until 2.0 s."""
    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=program)
    for pitch, start, end in [(A4, 0.5, 1.5), (A3, 1.5, 2.0), (A5, 1.5, 2.0)]:
        instrument.notes.append(pretty_midi.Note(velocity=90, pitch=pitch, start=start, end=end))
    midi.instruments.append(instrument)
    return midi


def midi_bytes(midi: pretty_midi.PrettyMIDI) -> bytes:
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_audio() -> np.ndarray:
    return synthesize_midi(tiny_piece(), sample_rate=SR)


def test_timgm6mb_is_available():
    soundfonts = available_soundfonts()
    assert "TimGM6mb" in soundfonts
    assert soundfonts["TimGM6mb"].is_file() and soundfonts["TimGM6mb"].suffix == ".sf2"


def test_tiny_piece_renders_audible_audio_of_the_right_length(tiny_audio):
    assert tiny_audio.dtype == np.float32 and tiny_audio.ndim == 1
    assert abs(len(tiny_audio) / SR - 2.0) < 0.05  # ends at the last note-off
    assert np.sqrt(np.mean(tiny_audio**2)) > 1e-3
    assert np.abs(tiny_audio).max() <= 1.0
    # sample 0 is MIDI time 0: nothing sounds before the first note at 0.5 s
    assert np.abs(tiny_audio[: int(0.45 * SR)]).max() < 1e-4
    assert np.abs(tiny_audio[int(0.5 * SR) : int(0.7 * SR)]).max() > 1e-2


def test_spectrogram_of_the_rendering_peaks_at_the_played_pitch(tiny_audio):
    spectrogram = spectrogram_from_audio(tiny_audio, SR)
    a4_band = int(np.argmin(np.abs(band_center_frequencies() - 440.0)))
    a4_alone = spectrogram[:, 12:28].mean(axis=1)  # frames 0.6 s .. 1.4 s
    assert int(np.argmax(a4_alone)) == a4_band == A4 - 36
    assert a4_alone[a4_band] > 10 * spectrogram[a4_band, :8].max()  # silent before the onset


def test_all_midi_sources_render_the_same(tiny_audio, tmp_path):
    path = tmp_path / "tiny.mid"
    tiny_piece().write(str(path))
    np.testing.assert_array_equal(synthesize_midi(path), tiny_audio)
    np.testing.assert_array_equal(synthesize_midi(str(path)), tiny_audio)
    np.testing.assert_array_equal(synthesize_midi(midi_bytes(tiny_piece())), tiny_audio)


def test_instruments_are_forced_to_piano_unless_told_not_to(tiny_audio):
    violin = tiny_piece(program=40)
    np.testing.assert_array_equal(synthesize_midi(violin), tiny_audio)
    assert violin.instruments[0].program == 40  # the caller's object is left alone
    as_violin = synthesize_midi(violin, force_piano=False)
    assert np.abs(as_violin[: len(tiny_audio)] - tiny_audio[: len(as_violin)]).max() > 1e-2


def test_output_sample_rate_is_honoured():
    audio = synthesize_midi(tiny_piece(), sample_rate=16000)
    assert abs(len(audio) / 16000 - 2.0) < 0.05


def test_bad_midi_raises_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="no notes"):
        synthesize_midi(pretty_midi.PrettyMIDI())
    empty_file = tmp_path / "empty.mid"
    pretty_midi.PrettyMIDI().write(str(empty_file))
    with pytest.raises(ValueError, match="empty.mid.*no notes"):
        synthesize_midi(empty_file)
    with pytest.raises(ValueError, match="missing.mid"):
        synthesize_midi(tmp_path / "missing.mid")
    garbage = tmp_path / "garbage.mid"
    garbage.write_bytes(b"not a midi file")
    with pytest.raises(ValueError, match="garbage.mid"):
        synthesize_midi(garbage)
    with pytest.raises(ValueError, match="TimGM6mb"):  # the message lists what is available
        synthesize_midi(tiny_piece(), soundfont="NoSuchFont")


def test_write_wav_atomic_writes_16_bit_pcm_and_replaces(tmp_path):
    path = tmp_path / "sub" / "tone.wav"
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)
    write_wav_atomic(path, np.zeros(10, dtype=np.float32), SR)
    write_wav_atomic(path, tone, SR)  # replaces the first file
    info = soundfile.info(str(path))
    assert (info.subtype, info.samplerate, info.frames) == ("PCM_16", SR, SR)
    read_back, _ = soundfile.read(str(path), dtype="float32")
    np.testing.assert_allclose(read_back, tone, atol=1 / 32767)
    assert [p.name for p in path.parent.iterdir()] == ["tone.wav"]  # no temporary file left

    write_wav_atomic(path, np.array([2.0, -2.0, 0.5], dtype=np.float32), SR)
    np.testing.assert_allclose(soundfile.read(str(path))[0], [1.0, -1.0, 0.5], atol=1 / 32767)
    with pytest.raises(ValueError, match="tone.wav"):
        write_wav_atomic(path, np.array([np.nan]), SR)
