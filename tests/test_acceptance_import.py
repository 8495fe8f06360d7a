"""scripts/import_acceptance.py: the check of an automatic ASAP alignment against ASAP's annotated beats."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from sfgym.data.engrave import engrave
from sfgym.data.importer import import_piece
from sfgym.data.msmd import notes_to_midi

from conftest import load_script
from scores import SCALE, melody_musicxml


@pytest.fixture(scope="module")
def acceptance():
    return load_script("import_acceptance")


def _write_beats(path: Path, times: np.ndarray) -> None:
    path.write_text("".join(f"{t}\t{t}\t{'db' if i % 4 == 0 else 'b'}\n" for i, t in enumerate(times)))


@pytest.fixture
def asap_like(tmp_path):
    """An ASAP-style folder (score, MIDI score, one take played 2x slower from 1 s, beats of both) and the take
    imported with its exact alignment."""
    folder = tmp_path / "asap" / "Composer" / "Etude"
    folder.mkdir(parents=True)
    score = folder / "xml_score.musicxml"
    score.write_text(melody_musicxml(SCALE * 2, tempo_bpm=120))
    engraved = engrave(score)
    notes_to_midi(engraved.notes).write(str(folder / "midi_score.mid"))
    performed = engraved.notes.copy()
    performed[:, 0] = 1.0 + 2 * performed[:, 0]
    performance = folder / "take1.mid"
    notes_to_midi(performed).write(str(performance))
    alignment = tmp_path / "align.csv"
    with alignment.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["note_id", "onset_s"])
        writer.writerows(zip(engraved.note_ids_of_notes, performed[:, 0]))
    out = tmp_path / "test"
    import_piece(score, out, performance=performance, alignment=alignment, name="etude@take1")
    score_beats = np.arange(0.0, engraved.notes[-1, 0] + 0.51, 0.5)  # quarter notes at 120 bpm
    _write_beats(folder / "midi_score_annotations.txt", score_beats)
    return out, score, performance, score_beats


def test_beat_check_agrees_with_a_right_alignment_and_flags_a_wrong_one(acceptance, asap_like, tmp_path):
    out, score, performance, score_beats = asap_like
    beats = performance.with_name("take1_annotations.txt")
    assert acceptance.asap_beat_check(out, "etude@take1", score, performance) is None  # no performance beats
    _write_beats(beats, 1.0 + 2 * score_beats)
    row = acceptance.asap_beat_check(out, "etude@take1", score, performance)
    assert row["notes"] == 16 and row["median_error_s"] < 0.01 and row["share_over_0.5s"] == 0.0
    assert row["score_match"] == 1.0
    _write_beats(beats, 2.0 + 2 * score_beats)  # annotations one second later than the imported onsets
    row = acceptance.asap_beat_check(out, "etude@take1", score, performance)
    assert row["share_over_0.5s"] == 1.0 and row["median_error_s"] == pytest.approx(1.0, abs=0.01)
    _write_beats(beats, (1.0 + 2 * score_beats)[:-1])  # beats that do not pair up: no check
    assert acceptance.asap_beat_check(out, "etude@take1", score, performance) is None

    acceptance.write_beat_check(tmp_path / "beat_check.csv", [row])
    with (tmp_path / "beat_check.csv").open() as handle:
        assert next(csv.DictReader(handle))["piece"] == "etude@take1"
