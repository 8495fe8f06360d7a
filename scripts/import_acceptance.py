"""Import public performance corpora as sfgym evaluation sets (acceptance only: never train or tune on them).

Both corpora hold real pianists' performances as MIDI (their audio recordings are not distributed with
them), so each performance MIDI is rendered with a soundfont given by path. Choose one the followers never
trained on, e.g. Debian's ``/usr/share/sounds/sf2/MuseScore_General_Full.sf2``: real pianists' timing,
dynamics and pedalling on a piano the follower never heard. Nothing is downloaded: pass a checkout.

``vienna4x22`` (https://github.com/CPJKU/vienna4x22): 22 pianists' performances of four excerpts (Chopin
op. 10/3 and op. 38, Mozart K. 331/1, Schubert D. 783/15) with note-level score alignments
(``match/*.match``, read by the importer as they are) whose note ids are the MusicXML scores' ``id``s (the
importer interpolates the notes a pianist left out and reconciles grace notes and rolled chords played out
of score order).

``asap`` (https://github.com/fosfrancesco/asap-dataset): concert pieces (Bach to Ravel) with beat-level
annotations only. The scores that have no repeats, volta brackets, segno or coda (a performance that jumps
back cannot be followed on a score that is not unfolded) are taken with one performance each (the first
by file name), the three shortest of at most five minutes per composer; each is aligned to its score
automatically (``sfgym.data.alignment``, the same as ``sfgym data import`` without ``--alignment``), and that
alignment is the ground truth.

Usage::

    python scripts/import_acceptance.py vienna4x22 /path/to/vienna4x22 \\
        --soundfont /usr/share/sounds/sf2/MuseScore_General_Full.sf2 --out data/vienna4x22/test
    python scripts/import_acceptance.py asap /path/to/asap-dataset \\
        --soundfont /usr/share/sounds/sf2/MuseScore_General_Full.sf2 --out data/asap/test
    sfgym evaluate --data data/vienna4x22/test --agents pretrained,online_dtw,constant_tempo --out results/v4x22
"""

from __future__ import annotations

import argparse
import csv
import os
import warnings
from pathlib import Path

from tqdm import tqdm

REPEAT_MARKS = ("<repeat", "<ending", "<segno", "<coda", 'segno="', 'coda="', "dacapo", "fine=")
"""MusicXML elements and attributes that make a performance jump back or skip (the score is not unfolded)."""


def vienna4x22_imports(corpus: Path) -> list[tuple[Path, Path, Path]]:
    """``(score, performance MIDI, match file)`` per performance (the match file is the alignment)."""
    from sfgym.data.importer import read_match_info

    imports = []
    for match_file in sorted((corpus / "match").glob("*.match")):
        info = read_match_info(match_file)
        if "scoreFileName" not in info or "midiFileName" not in info:
            raise SystemExit(f"{match_file}: no info(scoreFileName,...) / info(midiFileName,...) line")
        imports.append((corpus / "musicxml" / info["scoreFileName"], corpus / "midi" / info["midiFileName"], match_file))
    return imports


def asap_imports(corpus: Path, per_composer: int = 3, max_seconds: float = 300.0) -> list[tuple[Path, Path, None]]:
    """``(score, performance MIDI, None)`` for a varied, deterministic subset of ASAP.

    Every score without repeats, with one performance (the first by file name); of those, per composer the
    ``per_composer`` shortest performances of at most ``max_seconds`` (ASAP is 14 hours of music, 59 of its
    191 repeat-free scores by Bach; this keeps 15 composers in about 80 minutes).
    """
    import pretty_midi

    with (corpus / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    first_performance: dict[str, str] = {}
    for row in sorted(rows, key=lambda row: row["midi_performance"]):
        first_performance.setdefault(row["xml_score"], row["midi_performance"])
    candidates = []
    for score, performance in sorted(first_performance.items()):
        if not (corpus / score).is_file() or not (corpus / performance).is_file():
            tqdm.write(f"skipped {score}: the checkout lacks it or {performance}")
            continue
        text = (corpus / score).read_text(encoding="utf-8", errors="replace")
        if any(mark in text for mark in REPEAT_MARKS):
            continue
        seconds = pretty_midi.PrettyMIDI(str(corpus / performance)).get_end_time()
        if seconds <= max_seconds:
            candidates.append((seconds, score, performance))
    chosen: dict[str, list[tuple[Path, Path, None]]] = {}
    for _, score, performance in sorted(candidates):
        of_composer = chosen.setdefault(score.split("/")[0], [])
        if len(of_composer) < per_composer:
            of_composer.append((corpus / score, corpus / performance, None))
    return sorted(item for items in chosen.values() for item in items)


BEAT_CHECK_COLUMNS = ("piece", "notes", "median_error_s", "p90_error_s", "share_over_0.5s", "score_match")
"""Columns of ``beat_check.csv`` (:func:`asap_beat_check`, one row per piece)."""


def asap_beat_check(piece_dir: Path, name: str, score: Path, performance: Path) -> dict | None:
    """How far the automatic alignment (the ground truth of an imported ASAP piece) is from ASAP's own annotated
    beats; ``None`` where the checkout lacks the annotations or they do not pair up.

    ASAP annotates the beats of each performance and of its MIDI score (``midi_score.mid``, same beats, same
    count). Each score note is placed in the MIDI score by aligning the two scores (symbolic, nearly the same
    notes: :func:`sfgym.data.alignment.align_midi`), then in the performance by interpolating between the
    annotated beats; its distance to the imported onset is the error. ``score_match`` is the share of score
    notes found in the MIDI score at their own pitch (low: the two scores differ, and so may the check).
    """
    import numpy as np

    from sfgym.data.alignment import align_midi
    from sfgym.data.midi import parse_midi
    from sfgym.data.msmd import load_piece, notes_of_midi, piece_files

    def beat_times(path: Path) -> np.ndarray:
        return np.array([float(line.split()[0]) for line in path.read_text().splitlines() if line.strip()])

    score_beats_file = score.parent / "midi_score_annotations.txt"
    performance_beats_file = performance.with_name(performance.stem + "_annotations.txt")
    if not (score_beats_file.is_file() and performance_beats_file.is_file()):
        return None
    score_beats, performance_beats = beat_times(score_beats_file), beat_times(performance_beats_file)
    if len(score_beats) != len(performance_beats) or len(score_beats) < 2:
        return None
    piece = load_piece(piece_files(piece_dir, name))
    midi_score_file = score.parent / "midi_score.mid"
    midi_score = notes_of_midi(parse_midi(str(midi_score_file)), source=midi_score_file)
    placed = align_midi(piece.score_notes, midi_score)
    annotated = np.interp(placed.onsets_s, score_beats, performance_beats)
    inside = (placed.onsets_s >= score_beats[0]) & (placed.onsets_s <= score_beats[-1])
    errors = np.abs(piece.notes[inside, 0] - annotated[inside])
    if not len(errors):
        return None
    return {"piece": name, "notes": int(len(errors)), "median_error_s": round(float(np.median(errors)), 4),
            "p90_error_s": round(float(np.percentile(errors, 90)), 4),
            "share_over_0.5s": round(float(np.mean(errors > 0.5)), 4),
            "score_match": round(float(np.mean(placed.matched)), 4)}


def import_one(score: Path, out: Path, performance: Path, alignment: Path | None, soundfont: Path, name: str) -> None:
    """Import one performance; a failure is reported and the next piece goes on."""
    from sfgym.data.importer import import_piece

    with warnings.catch_warnings(record=True) as caught:  # reconciled notes: one line per piece
        warnings.simplefilter("always")
        try:
            import_piece(score, out, performance=performance, alignment=alignment, soundfont=os.fspath(soundfont),
                         name=name)
        except Exception as error:  # noqa: BLE001 - report and go on with the next piece
            tqdm.write(f"{name}: not imported: {error}")
    for warning in caught:
        tqdm.write(f"{name}: {warning.message}")


def write_beat_check(path: Path, rows: list[dict]) -> None:
    """Write the rows of :func:`asap_beat_check` (atomically) and print their summary."""
    import numpy as np

    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=BEAT_CHECK_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)
    far = [row["piece"] for row in rows if row["share_over_0.5s"] > 0.05]
    print(f"alignment against ASAP's annotated beats ({path}): median error "
          f"{np.median([row['median_error_s'] for row in rows]):.3f} s over {len(rows)} pieces; "
          f"more than 5 % of the notes over 0.5 s off in {len(far)}: {', '.join(far) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus_name", choices=("vienna4x22", "asap"))
    parser.add_argument("corpus", type=Path, help="checkout of the corpus")
    parser.add_argument("--soundfont", required=True, help="the .sf2 the performances are rendered with")
    parser.add_argument("--out", type=Path, required=True, help="split directory to import into")
    parser.add_argument("--max-pieces", type=int, default=None, help="import only the first N (by name)")
    args = parser.parse_args()

    from sfgym.data.msmd import piece_files

    args.out.mkdir(parents=True, exist_ok=True)
    if args.corpus_name == "vienna4x22":
        imports = vienna4x22_imports(args.corpus)
    else:
        imports = asap_imports(args.corpus)
    imports = imports[:args.max_pieces]
    checks: list[dict] = []  # ASAP: the automatic alignments against ASAP's annotated beats
    if not imports:
        raise SystemExit(f"nothing to import from {args.corpus}")
    for score, performance, alignment in tqdm(imports, desc="importing", unit="performance"):
        # ASAP names every score xml_score.musicxml: name the piece after its folder instead.
        score_name = score.stem
        if args.corpus_name == "asap":
            score_name = "_".join(score.parent.relative_to(args.corpus).parts)
        name = f"{score_name}@{performance.stem}"
        if not piece_files(args.out, name).midi.is_file():  # else imported by an earlier run
            import_one(score, args.out, performance, alignment, args.soundfont, name)
        if args.corpus_name == "asap" and piece_files(args.out, name).midi.is_file():
            row = asap_beat_check(args.out, name, score, performance)
            if row is not None:
                checks.append(row)
    if checks:
        write_beat_check(args.out / "beat_check.csv", checks)


if __name__ == "__main__":
    main()
