"""Automatic alignment of a performance to its score (sfgym.data.alignment) and import without --alignment."""

from __future__ import annotations

import numpy as np
import pytest

from sfgym.cli import main as sfgym_main
from sfgym.data.alignment import align_audio, align_midi, align_performance, alignment_csv_path
from sfgym.data.engrave import engrave
from sfgym.data.importer import read_alignment_csv
from sfgym.data.msmd import load_split, notes_to_midi
from sfgym.data.piece import PieceFormatError
from sfgym.data.synth import synthesize_midi, write_wav_atomic

from scores import SCALE, melody_musicxml

SAMPLE_RATE = 22050


@pytest.fixture(scope="module")
def score(tmp_path_factory):
    """A 24-note melody with a third on every other note (36 notes), engraved once for the module."""
    path = tmp_path_factory.mktemp("score") / "etude.musicxml"
    path.write_text(melody_musicxml(SCALE * 3, tempo_bpm=120, chord_every=2))
    return path, engrave(path)


def played(score_notes: np.ndarray, start_s: float = 0.7, mean_ratio: float = 0.8, depth: float = 0.25) -> np.ndarray:
    """The score's notes played with a known tempo curve: ``mean_ratio`` × the notated tempo, swinging ±``depth``
    over 5 s of score time, after ``start_s`` of silence."""
    grid = np.linspace(0.0, score_notes[:, 0].max() + 2.0, 2000)
    tempo = mean_ratio * (1.0 + depth * np.sin(2 * np.pi * grid / 5.0))
    performed_time = start_s + np.concatenate([[0.0], np.cumsum(np.diff(grid) / tempo[1:])])
    onsets = np.interp(score_notes[:, 0], grid, performed_time)
    offsets = np.interp(score_notes[:, 0] + score_notes[:, 2], grid, performed_time)
    return np.stack([onsets, score_notes[:, 1], offsets - onsets], axis=1)


def test_audio_alignment_finds_onsets_of_a_known_tempo_curve(score):
    _, engraved = score
    performance = played(engraved.notes)
    audio = synthesize_midi(notes_to_midi(performance), sample_rate=SAMPLE_RATE)
    found = align_audio(engraved.notes, audio, SAMPLE_RATE)
    error = np.abs(found.onsets_s - performance[:, 0])
    assert np.abs(engraved.notes[:, 0] - performance[:, 0]).max() > 1.5  # the notated timing is far off
    assert np.median(error) <= 0.025 and np.mean(error <= 0.1) >= 0.95, np.round(error, 3)
    assert not found.is_doubtful


def test_midi_alignment_snaps_to_the_performed_notes(score):
    _, engraved = score
    performance = played(engraved.notes, mean_ratio=1.3, depth=0.3)
    performance[::2, 0] += np.random.default_rng(0).uniform(-0.03, 0.03, len(performance[::2]))  # loose chords
    order = np.lexsort((performance[:, 1], performance[:, 0]))
    found = align_midi(engraved.notes, performance[order])
    np.testing.assert_allclose(found.onsets_s, performance[:, 0], atol=1e-9)
    assert found.matched.all() and not found.is_doubtful


def test_import_without_alignment_aligns_and_writes_the_csv_beside_the_piece(tmp_path, score, capsys):
    score_file, engraved = score
    performance = played(engraved.notes)
    take = tmp_path / "take.wav"
    write_wav_atomic(take, synthesize_midi(notes_to_midi(performance), sample_rate=SAMPLE_RATE), SAMPLE_RATE)
    out = tmp_path / "eval"
    assert sfgym_main(["data", "import", "--score", str(score_file), "--performance", str(take),
                       "--out", str(out)]) == 0
    written = alignment_csv_path(out, "etude@take")
    assert "aligned" in capsys.readouterr().out and written.name == "etude@take.alignment.csv"
    alignment = read_alignment_csv(written)  # the --alignment reader reads it back
    assert set(alignment) == set(engraved.note_ids_of_notes)
    [piece] = load_split(out, progress=False)
    assert piece.name == "etude@take"
    error = np.abs(np.sort(piece.notes[:, 0]) - np.sort(performance[:, 0]))
    assert np.median(error) <= 0.025 and error.max() <= 0.1


def test_an_unrelated_performance_warns_instead_of_failing(tmp_path, score):
    _, engraved = score
    rng = np.random.default_rng(1)
    onsets = np.sort(rng.uniform(0, 12, 40))
    unrelated = np.stack([onsets, rng.choice([37, 42, 49, 54, 61, 66], 40), np.full(40, 0.3)], axis=1)
    take = tmp_path / "other.mid"
    notes_to_midi(unrelated).write(str(take))
    found = align_performance(engraved.notes, take)
    assert found.is_doubtful and len(found.onsets_s) == len(engraved.notes)
    out = tmp_path / "eval"
    with pytest.warns(UserWarning, match="matches the score poorly"):
        sfgym_main(["data", "import", "--score", str(score[0]), "--performance", str(take), "--out", str(out)])


def test_bad_performance_files_are_named_in_clear_errors(tmp_path, score):
    _, engraved = score
    with pytest.raises(PieceFormatError, match="missing.wav: performance file does not exist"):
        align_performance(engraved.notes, tmp_path / "missing.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_text("not audio")
    with pytest.raises(PieceFormatError, match="garbage.wav: not a readable audio or MIDI file"):
        align_performance(engraved.notes, garbage)
    silent = tmp_path / "silent.wav"
    write_wav_atomic(silent, np.zeros(SAMPLE_RATE), SAMPLE_RATE)
    with pytest.raises(PieceFormatError, match="silent.wav: cannot align it to the score: .*silent"):
        align_performance(engraved.notes, silent)


def test_a_quiet_recording_aligns_as_well_as_a_loud_one(score):
    # a recording's level is no evidence of where it is: a quiet piano (some soundfonts play 20 dB softer)
    # must align as its loud twin does
    _, engraved = score
    performance = played(engraved.notes)
    audio = synthesize_midi(notes_to_midi(performance), sample_rate=SAMPLE_RATE)
    loud = align_audio(engraved.notes, audio, SAMPLE_RATE)
    quiet = align_audio(engraved.notes, 0.01 * audio, SAMPLE_RATE)
    error = np.abs(quiet.onsets_s - performance[:, 0])
    assert np.median(error) <= 0.025 and np.mean(error <= 0.1) >= 0.95, np.round(error, 3)
    np.testing.assert_allclose(quiet.onsets_s, loud.onsets_s, atol=0.01)
