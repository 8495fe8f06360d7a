"""Check a built-in corpus: ``python -m sfgym.data.corpus_check [--corpus NAME] [--engrave] [NAMES...]`` builds
every piece once (:func:`sfgym.data.reduction.load_score_musicxml`) and loads it in verovio; with ``--engrave``
it also engraves it and requires every played note's notehead on the unrolled sheet. Exits 1 if a piece fails.
"""

from __future__ import annotations

import argparse
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import verovio

from sfgym.data.corpus import CORPORA, CorpusPiece, corpus_pieces
from sfgym.data.engrave import engrave as engrave_score
from sfgym.data.reduction import load_score_musicxml

@dataclass(frozen=True)
class _PieceCheck:
    name: str
    build_cpu_s: float  # CPU time of load_score_musicxml (music21 parse + reduction + export)
    loaded: bool  # verovio's loadData
    pages: int
    duration_s: float  # last note-off in verovio's timemap, at the notated tempo
    n_notes: int  # <note> elements that are not rests
    played: int = -1  # with engrave: notes the engraver plays (tied notes merged); -1 = not engraved
    located: int = -1  # with engrave: of those, notes whose notehead is on the unrolled sheet

    @property
    def ok(self) -> bool:
        return self.loaded and self.pages >= 1 and self.located == self.played


def _check(piece: CorpusPiece, engrave: bool = False) -> _PieceCheck:
    """Build the piece, load it in verovio and, with ``engrave``, run sfgym's engraver on it."""

    start = time.process_time()
    musicxml = load_score_musicxml(piece)
    build_cpu_s = time.process_time() - start
    verovio.enableLog(verovio.LOG_OFF)
    toolkit = verovio.toolkit()
    loaded = bool(toolkit.loadData(musicxml))
    pages = toolkit.getPageCount() if loaded else 0
    timemap = toolkit.renderToTimemap({"includeRests": False}) if loaded else []
    played = located = -1
    if engrave and loaded:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # noteheads outside the cut are counted below
            engraved = engrave_score(musicxml)
        played, located = len(engraved.notes), len(engraved.coords)
    return _PieceCheck(
        name=piece.name,
        build_cpu_s=build_cpu_s,
        loaded=loaded,
        pages=pages,
        duration_s=timemap[-1]["tstamp"] / 1000.0 if timemap else 0.0,
        n_notes=len(re.findall(r'<note\b[^>]*\bid="n', musicxml)),
        played=played,
        located=located,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Check the pieces ``argv`` names (see the module docstring); 0 if all are fine, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="piece names (default: the whole corpus)")
    parser.add_argument("--corpus", choices=CORPORA, default="default", help="corpus to check")
    parser.add_argument("--engrave", action="store_true",
                        help="also engrave each piece (sfgym.data.engrave) and require every played "
                        "note's notehead on the unrolled sheet")
    args = parser.parse_args(argv)
    pieces = [p for p in corpus_pieces(args.corpus) if not args.names or p.name in args.names]
    failed: list[str] = []
    total_s = total_cpu_s = 0.0
    for piece in pieces:
        try:
            check = _check(piece, engrave=args.engrave)
        except Exception as error:  # report every broken piece, not just the first
            print(f"FAIL {piece.name}: {type(error).__name__}: {error}", flush=True)
            failed.append(piece.name)
            continue
        if not check.ok:
            failed.append(piece.name)
        total_s += check.duration_s
        total_cpu_s += check.build_cpu_s
        engraved = f" {check.located:5d}/{check.played:<5d} noteheads" if args.engrave else ""
        print(
            f"{'ok  ' if check.ok else 'FAIL'} {check.name:45s} {check.build_cpu_s:6.2f} s cpu "
            f"{check.pages:2d} pages {check.duration_s:6.1f} s {check.n_notes:5d} notes{engraved}",
            flush=True,
        )
    print(
        f"{len(pieces) - len(failed)}/{len(pieces)} pieces ok, {total_s / 60:.1f} min of music, "
        f"build {total_cpu_s / max(len(pieces), 1):.2f} s cpu per piece on average"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
