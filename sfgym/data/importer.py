"""Importing a user's own piece (score + optional performance) as one MSMD-format piece.

- Score only: the score's own MIDI (notated tempo) is synthesized and followed.
- Score + performance (MIDI or audio) + alignment CSV (``note_id,onset_s``: the score's note id, as in the
  MusicXML/MEI ``id`` / ``xml:id``, and when it was played) or match file (``.match``, the note alignments of
  Vienna 4x22, Batik and (n)ASAP): the ground truth follows the performance's real timing. Notes missing from
  the alignment are placed by linear interpolation of the aligned ones over score time (and extrapolated at the local tempo before the first and after the last aligned note). Notes played out of
  score order (grace notes, rolled chords, ornaments, alignment noise) are reconciled with a warning; an
  alignment with more than a fifth of its chords out of order is refused.
- Score + performance without an alignment: the performance is aligned to the score automatically
  (:mod:`sfgym.data.alignment`) and the alignment written beside the piece as
  ``performance/<name>.alignment.csv`` (same columns), to inspect, correct and re-import with ``--alignment``.

The piece is written into a split directory (``--out``): the score to ``score/<score>.npz`` (+ ``.mid`` at the
notated tempo), the re-timed score notes to ``performance/<name>.mid`` (so ``coord2onset`` maps into them),
the performance's audio (the given audio, or the performance MIDI synthesized) to ``performance/<name>.wav``.
``name`` is the score's file stem, or ``<score stem>@<performance stem>`` with a performance, so several
imports into one directory accumulate into an evaluation set.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from sfgym.data.alignment import align_to_csv, alignment_csv_path
from sfgym.data.engrave import engrave
from sfgym.data.msmd import PieceFiles, midi_bytes, notes_of_midi, notes_to_midi, piece_files, write_piece
from sfgym.data.piece import FPS, Piece, PieceFormatError, reconcile_onsets
from sfgym.data.spectrogram import spectrogram_from_audio, spectrogram_from_file
from sfgym.data.synth import synthesize_midi, wav_bytes

SAMPLE_RATE = 22050
SCORE_SUFFIXES = (".xml", ".musicxml", ".mxl", ".mei", ".krn", ".abc")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def read_alignment_csv(path: str | Path) -> dict[str, float]:
    """``{note_id: onset seconds}`` from a CSV with a ``note_id,onset_s`` header.

    Spreadsheet exports are accepted (a UTF-8 byte-order mark, spaces after the commas); a note id given twice
    is an error naming both lines.
    """
    path = Path(path)
    if not path.is_file():
        raise PieceFormatError(path, "alignment file does not exist")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, skipinitialspace=True)
        fieldnames = [name.strip() for name in reader.fieldnames or []]
        if not {"note_id", "onset_s"} <= set(fieldnames):
            raise PieceFormatError(path, f"alignment CSV needs the columns note_id,onset_s; found {reader.fieldnames}")
        reader.fieldnames = fieldnames
        alignment: dict[str, float] = {}
        line_of: dict[str, int] = {}
        for row in reader:
            line_number = reader.line_num
            try:
                onset = float(row["onset_s"])
            except (TypeError, ValueError):
                raise PieceFormatError(path, f"line {line_number}: onset_s {row['onset_s']!r} is not a number") from None
            if not np.isfinite(onset) or onset < 0:
                raise PieceFormatError(path, f"line {line_number}: onset_s must be a finite time >= 0, got {onset}")
            note_id = (row["note_id"] or "").strip()
            if note_id in line_of:
                raise PieceFormatError(
                    path, f"note_id {note_id!r} appears twice, on lines {line_of[note_id]} and {line_number}; "
                    "each score note has one performed onset"
                )
            alignment[note_id] = onset
            line_of[note_id] = line_number
    if not alignment:
        raise PieceFormatError(path, "alignment CSV has no rows")
    return alignment


def _match_arguments(text: str) -> list[str]:
    """The top-level comma-separated arguments of a match-file term's ``(...)`` (brackets kept whole)."""
    arguments, depth, current = [], 0, []
    for char in text:
        if char == "," and depth == 0:
            arguments.append("".join(current).strip())
            current = []
            continue
        depth += (char in "([") - (char in ")]")
        current.append(char)
    arguments.append("".join(current).strip())
    return arguments


def _read_match(path: str | Path) -> tuple[dict[str, str], dict[str, float]]:
    """A match file's ``info(key, value)`` lines and each matched score note's performed onset in MIDI ticks."""
    path = Path(path)
    if not path.is_file():
        raise PieceFormatError(path, "alignment file does not exist")
    info: dict[str, str] = {}
    ticks: dict[str, float] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip().rstrip(".")
        if line.startswith("info(") and line.endswith(")"):
            key, _, value = line[len("info("):-1].partition(",")
            info[key.strip()] = value.strip()
            continue
        if not (line.startswith("snote(") and ")-note(" in line and line.endswith(")")):
            continue
        score_part, _, performed_part = line.partition(")-note(")
        note_id = _match_arguments(score_part[len("snote("):])[0]
        performed = _match_arguments(performed_part[:-1])
        onset_index = 3 if len(performed) > 1 and performed[1].startswith("[") else 2
        try:
            onset = float(performed[onset_index])
        except (IndexError, ValueError):
            raise PieceFormatError(path, f"line {line_number}: cannot read the performed onset of {line!r}") from None
        if note_id in ticks:
            raise PieceFormatError(path, f"line {line_number}: score note {note_id!r} is matched twice")
        ticks[note_id] = onset
    return info, ticks


def read_match_info(path: str | Path) -> dict[str, str]:
    """A match file's ``info(key, value)`` lines as ``{key: value}`` (e.g. ``scoreFileName``, ``midiFileName``)."""
    return _read_match(path)[0]


def read_match_alignment(path: str | Path) -> dict[str, float]:
    """``{score note id: performed onset seconds}`` from a match file (the note-level alignment format of the
    Vienna 4x22, Batik and (n)ASAP corpora, written by partitura and parangonar).

    Every ``snote(<id>, ...)-note(...)`` line is a matched note; its onset is in MIDI ticks, converted with the
    file's ``midiClockUnits`` (ticks per quarter) and ``midiClockRate`` (microseconds per quarter). Both
    layouts of the performed note are read: version 1 (``note(id, midi pitch, onset, offset, ...)``) and the
    older one (``note(id, [step, alter], octave, onset, offset, ...)``). Deletions and insertions are skipped;
    the importer interpolates the score notes that were left out.
    """
    info, ticks = _read_match(path)
    try:
        seconds_per_tick = float(info["midiClockRate"]) / 1e6 / float(info["midiClockUnits"])
    except (KeyError, ValueError):
        raise PieceFormatError(path, "a match file needs numeric info(midiClockUnits,...) and "
                               "info(midiClockRate,...) lines to convert its ticks to seconds") from None
    if not ticks:
        raise PieceFormatError(path, "match file has no matched notes (snote(...)-note(...) lines)")
    return {note_id: tick * seconds_per_tick for note_id, tick in ticks.items()}


def read_alignment(path: str | Path) -> dict[str, float]:
    """``{score note id: performed onset seconds}`` from a match file (``.match``) or a ``note_id,onset_s`` CSV."""
    if Path(path).suffix.lower() == ".match":
        return read_match_alignment(path)
    return read_alignment_csv(path)


INCONSISTENT_FRACTION = 0.2
"""An alignment with more than this share of its chords out of score order is refused, not reconciled."""


def retime_notes(score_notes: np.ndarray, note_ids: list[str], alignment: dict[str, float],
                 source: str | Path = "<alignment>") -> np.ndarray:
    """Score notes ``(onset, pitch, duration)`` moved to the performance's timing.

    Aligned notes take their performed onset, as performed. Real alignments are never quite in score order
    (grace notes before the beat, rolled chords, ornaments, alignment noise): the chords' times are
    reconciled into a monotone map (:func:`sfgym.data.piece.reconcile_onsets`) with one warning saying how
    many notes it corrected and by how much at most; an alignment with more than a fifth of its chords out of
    order is refused, naming the first offending notes. The other notes are interpolated over score time
    between the reconciled chords (extrapolated at the first / last segment's tempo). Durations scale with
    the local tempo.
    """
    aligned = [(i, alignment[note_id]) for i, note_id in enumerate(note_ids) if note_id in alignment]
    if len(aligned) < 2:
        raise PieceFormatError(
            source, f"only {len(aligned)} of the score's {len(note_ids)} note ids appear in the alignment; "
            "need at least 2 (ids are the score's note id / xml:id attributes)"
        )
    aligned_rows = np.array([i for i, _ in aligned])
    score_times = score_notes[aligned_rows, 0]
    performed = np.array([t for _, t in aligned])
    if len(np.unique(score_times)) < 2:
        raise PieceFormatError(source, "the aligned notes all start at the same score time; cannot infer a tempo")
    reconciled = reconcile_onsets(score_times, performed)
    n_chords = len(reconciled.chord_times)
    if reconciled.inconsistent_chords > INCONSISTENT_FRACTION * n_chords:
        first = ", ".join(
            f"{note_ids[aligned_rows[i]]} at {performed[i]:.3f} s (score {score_times[i]:.3f} s)"
            for i in reconciled.reconciled[:5]
        )
        raise PieceFormatError(
            source, f"the alignment is inconsistent with the score order: {reconciled.inconsistent_chords} of "
            f"{n_chords} chords are out of order (more than {INCONSISTENT_FRACTION:.0%}); first: {first}. "
            "Is it the alignment of this score?"
        )
    if len(reconciled.reconciled):
        warnings.warn(
            f"{source}: reconciled {len(reconciled.reconciled)} of {len(aligned)} aligned notes played out of score "
            f"order ({len(reconciled.outliers)} left out as anchors); largest correction "
            f"{reconciled.largest_correction:.3f} s. The ground truth follows the reconciled times, the performance "
            "keeps every note as played", stacklevel=2,
        )
    anchor_times, anchor_performed = reconciled.chord_times, reconciled.chord_onsets

    def to_performance(t: np.ndarray) -> np.ndarray:
        inside = np.interp(t, anchor_times, anchor_performed)
        first_rate = (anchor_performed[1] - anchor_performed[0]) / (anchor_times[1] - anchor_times[0])
        last_rate = (anchor_performed[-1] - anchor_performed[-2]) / (anchor_times[-1] - anchor_times[-2])
        inside = np.where(t < anchor_times[0], anchor_performed[0] + (t - anchor_times[0]) * first_rate, inside)
        return np.where(t > anchor_times[-1], anchor_performed[-1] + (t - anchor_times[-1]) * last_rate, inside)

    onsets = to_performance(score_notes[:, 0])
    offsets = to_performance(score_notes[:, 0] + score_notes[:, 2])
    for i, performed_onset in aligned:  # aligned notes keep their exact performed onset
        onsets[i] = performed_onset
    retimed = np.stack([np.maximum(onsets, 0.0), score_notes[:, 1], np.maximum(offsets - onsets, 0.01)], axis=1)
    return retimed


def import_piece(
    score: str | Path,
    out_dir: str | Path,
    *,
    performance: str | Path | None = None,
    alignment: str | Path | None = None,
    soundfont: str = "TimGM6mb",
    overwrite: bool = False,
    name: str | None = None,
) -> PieceFiles:
    """Engrave ``score`` and write it with its performance into the split directory ``out_dir``.

    The piece is named ``name``, by default the score's file name (``score@performance`` with a performance);
    a piece of the same name already in ``out_dir`` is refused unless ``overwrite`` is set.
    """
    import soundfile

    score = Path(score)
    if not score.is_file():
        raise PieceFormatError(score, "score file does not exist")
    if score.suffix.lower() not in SCORE_SUFFIXES:
        raise PieceFormatError(score, f"unsupported score format {score.suffix!r}; use one of {SCORE_SUFFIXES}")
    out_dir = Path(out_dir)
    if name is None:
        name = score.stem if performance is None else f"{score.stem}@{Path(performance).stem}"
    existing = piece_files(out_dir, name).midi
    if existing.is_file() and not overwrite:
        raise PieceFormatError(
            existing, f"a piece named {name!r} is already imported into {out_dir}; pass --overwrite to replace it"
        )
    engraved = engrave(score)
    if performance is not None and alignment is None:  # align automatically; the CSV is kept beside the piece
        alignment = alignment_csv_path(out_dir, name)
        align_to_csv(engraved.notes, engraved.note_ids_of_notes, performance, alignment)

    if performance is None:
        notes = engraved.notes
        audio = synthesize_midi(midi_bytes(notes_to_midi(notes)), soundfont=soundfont, sample_rate=SAMPLE_RATE)
        spectrogram = spectrogram_from_audio(audio, SAMPLE_RATE)
        audio_bytes = None  # re-synthesizable from the written MIDI
    else:
        performance = Path(performance)
        if not performance.is_file():
            raise PieceFormatError(performance, "performance file does not exist")
        notes = retime_notes(engraved.notes, engraved.note_ids_of_notes, read_alignment(alignment), alignment)
        if performance.suffix.lower() in (".mid", ".midi"):
            import pretty_midi

            try:
                performed_midi = pretty_midi.PrettyMIDI(str(performance))
            except Exception as error:  # noqa: BLE001 - mido raises many kinds
                raise PieceFormatError(performance, f"not a readable MIDI file: {error}") from error
            notes_of_midi(performed_midi, source=performance)  # refuses an empty performance
            audio = synthesize_midi(performed_midi, soundfont=soundfont, sample_rate=SAMPLE_RATE)
            spectrogram = spectrogram_from_audio(audio, SAMPLE_RATE)
        elif performance.suffix.lower() in AUDIO_SUFFIXES:
            try:
                audio, rate = soundfile.read(str(performance), dtype="float32", always_2d=True)
                spectrogram = spectrogram_from_file(performance)
            except Exception as error:  # noqa: BLE001 - libsndfile raises its own error types
                raise PieceFormatError(performance, f"not a readable audio file: {error}") from error
            audio = audio.mean(axis=1)
            if rate != SAMPLE_RATE:
                import soxr

                audio = soxr.resample(audio, rate, SAMPLE_RATE)
        else:
            raise PieceFormatError(performance, "performance must be a MIDI (.mid) or audio (.wav/.flac/.ogg) file")
        last_onset = float(notes[:, 0].max())
        if int(np.floor(last_onset * FPS + 1e-9)) >= spectrogram.shape[1]:
            raise PieceFormatError(
                performance, f"the performance lasts {spectrogram.shape[1] / FPS:.2f} s, but its alignment "
                f"{alignment} puts the score's last onset at {last_onset:.2f} s; is this the recording the "
                "alignment was made for?"
            )
        audio_bytes = wav_bytes(audio, SAMPLE_RATE, source=performance)

    # The performance's notes must be in onset order; re-point coord2onset through the sort. The score notes
    # follow the same order (they differ only where a performer reorders notes, e.g. an arpeggiated chord).
    order = np.lexsort((notes[:, 1], notes[:, 0]))
    new_index = np.empty_like(order)
    new_index[order] = np.arange(len(order))
    coord2onset = {c: int(new_index[n]) for c, n in engraved.coord2onset.items()}
    piece = Piece(name=name, sheet=engraved.sheet, coords=engraved.coords, coord2onset=coord2onset,
                  notes=notes[order], spectrogram=spectrogram, source=str(score),
                  score_notes=engraved.notes[order])
    return write_piece(out_dir, piece, audio=audio_bytes)
