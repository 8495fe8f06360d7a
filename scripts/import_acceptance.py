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
import tempfile
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus_name", choices=("vienna4x22", "asap"))
    parser.add_argument("corpus", type=Path, help="checkout of the corpus")
    parser.add_argument("--soundfont", required=True, help="the .sf2 the performances are rendered with")
    parser.add_argument("--out", type=Path, required=True, help="split directory to import into")
    parser.add_argument("--max-pieces", type=int, default=None, help="import only the first N (by name)")
    args = parser.parse_args()

    from sfgym.data.importer import import_piece
    from sfgym.data.msmd import piece_files

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        if args.corpus_name == "vienna4x22":
            imports = vienna4x22_imports(args.corpus)
        else:
            imports = asap_imports(args.corpus)
        imports = imports[:args.max_pieces]
        if not imports:
            raise SystemExit(f"nothing to import from {args.corpus}")
        for score, performance, alignment in tqdm(imports, desc="importing", unit="performance"):
            # ASAP names every score xml_score.musicxml: name the piece after its folder instead.
            piece_score = score
            if args.corpus_name == "asap":
                relative = score.parent.relative_to(args.corpus)
                piece_score = Path(scratch) / ("_".join(relative.parts) + score.suffix)
                piece_score.write_bytes(score.read_bytes())
            name = f"{piece_score.stem}@{performance.stem}"
            if piece_files(args.out, name).midi.is_file():
                continue  # imported by an earlier run
            with warnings.catch_warnings(record=True) as caught:  # reconciled notes: one line per piece
                warnings.simplefilter("always")
                try:
                    import_piece(piece_score, args.out, performance=performance, alignment=alignment,
                                 soundfont=os.fspath(args.soundfont))
                except Exception as error:  # noqa: BLE001 - report and go on with the next piece
                    tqdm.write(f"{name}: not imported: {error}")
            for warning in caught:
                tqdm.write(f"{name}: {warning.message}")


if __name__ == "__main__":
    main()
