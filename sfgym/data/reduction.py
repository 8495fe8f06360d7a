"""A corpus piece (:class:`sfgym.data.corpus.CorpusPiece`) as a two-staff score: music21 parses its source,
keeps the parts and measures the piece names, reduces them to a grand staff and writes MusicXML for the
engraver (verovio) and the synthesizer: :func:`load_score_musicxml`.

How a piece is made
-------------------
- Length: 20-180 s at the notated tempo; longer pieces are split into excerpts by source measure
  ranges (:attr:`CorpusPiece.measures`) at section boundaries.
- Tempo: every piece gets a metronome mark at its first note (``tempo_qpm``, quarter notes per
  minute; shown per beat of the metre). It is the source's own tempo where the source gives one,
  unless that is a notation program's default (120) or contradicts the tempo word (e.g. a
  "Molto tranquillo" at 120); otherwise a tempo fitting the tempo word. Chorales without a mark
  get 80-100 (80 + 4 * (CRC-32 of the BWV number mod 6), so that tempi vary). Later tempo
  changes of the source are kept.
- Repeats are not performed: repeat signs, voltas and D.C./D.S./Fine marks are removed and first
  endings (voltas that end in a repeat sign) are skipped, so that the score reads once, left to
  right, like its performance (verovio's MIDI and timemap would otherwise play the repeats that
  the unrolled sheet shows once). A removed end-repeat becomes a double bar.
- Tidying: no lyrics (chorales, songs; also the Corelli's figured-bass figures), chord symbols,
  part or instrument names, credits or page/system layout. Where two voices share a staff,
  fermatas go (they stack and collide, and the performance ignores them), as do slurs (verovio
  pairs colliding slur numbers of two voices across staves), and accidentals are decided anew
  for the staff (a natural after another voice's sharp in the same measure).
- Voices: two per staff in reductions, stems up and down, numbered 1-2 (treble) and 5-6 (bass).
- Note ids: music21 writes no ``id`` on MusicXML notes (verovio would then invent its own, random
  unless seeded). :func:`score_to_musicxml` numbers every ``<note>`` in document order,
  ``n00001``... for notes (each chord member its own) and ``r00001``... for rests; verovio
  keeps these as the MEI ``xml:id`` of its notes and rests, so its timemap, SVG and MEI use
  them, identically on every run.

Cost
----
``load_score_musicxml`` (music21 parse + reduction + MusicXML export) took 0.59 s CPU per piece
on average over the 140 pieces (chorales 0.35 s, others 1.19 s, at most 2.3 s for a long quartet
movement), with music21's parse cache warm (music21 pickles parsed files under its scratch
directory, ``/tmp/music21``); the first, cold parse adds about 0.1 s per chorale and 0.3 s per
other piece, and importing music21 about 1 s per process. The rest is music21's MusicXML export,
whose chord handling deep-copies every chord (so dense piano pieces cost most). Check the whole set
with ``python -m sfgym.data.corpus_check`` (builds each piece and loads it in verovio).
"""

from __future__ import annotations

import copy
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sfgym.data.corpus import VENDORED_PREFIX, CorpusError, CorpusPiece, vendored_path

if TYPE_CHECKING:  # music21 is imported where it is used: listing the pieces needs none of it
    from music21 import stream

__all__ = ["load_score", "load_score_musicxml", "score_to_musicxml"]

# Words that send the player elsewhere ("Menuetto da capo", "D.S. al Fine"): meaningless once
# every measure is played once, in order.
_JUMP_WORDS_RE = re.compile(
    r"\bda\s*capo\b|\bdal\s*segno\b|\bD\.\s*[CS]\.|^\s*fine\s*$", re.IGNORECASE
)

def load_score_musicxml(piece: CorpusPiece) -> str:
    """The piece as a MusicXML string on a grand staff, ready for verovio.

    The score has one part with two staves (treble and bass), a metronome mark at its start
    (``piece.tempo_qpm``), no repeats (first endings skipped, repeat signs removed), no lyrics,
    chord symbols, part names or page layout, and a unique ``id`` on every ``<note>`` element
    (``n00001``... for notes in document order, ``r00001``... for rests). verovio keeps these as
    the MEI ``xml:id`` of its notes and rests, so the ids in verovio's timemap and SVG are the
    ones written here, and the same on every run.
    """
    score = load_score(piece)
    try:
        return score_to_musicxml(score)
    except Exception as error:  # music21's MusicXMLExportException and whatever it wraps
        raise CorpusError(
            f"{piece.name}: music21 cannot write {piece.source} as MusicXML: {error}"
        ) from error


def load_score(piece: CorpusPiece) -> stream.Score:
    """The piece as a music21 ``Score`` of two ``PartStaff`` objects joined by a brace.

    See :func:`load_score_musicxml` for what is tidied. Raises :class:`CorpusError` naming the
    piece if the source does not have the parts or measures the piece describes.
    """
    from music21 import converter, corpus

    try:
        with warnings.catch_warnings(record=True) as parse_warnings:
            warnings.simplefilter("always")
            if piece.source.startswith(VENDORED_PREFIX):
                score = converter.parse(vendored_path(piece.source))
            else:
                score = corpus.parse(piece.source)
    except Exception as error:  # music21 raises many unrelated types for a bad path
        where = "vendored" if piece.source.startswith(VENDORED_PREFIX) else "music21 corpus"
        raise CorpusError(
            f"{piece.name}: cannot parse {where} file {piece.source!r}: {error}"
        ) from error

    _warn_once(piece, parse_warnings)
    parts = list(score.parts)
    wanted = piece.upper_parts + piece.lower_parts
    if max(wanted) >= len(parts) or min(wanted) < 0:
        raise CorpusError(
            f"{piece.name}: {piece.source} has {len(parts)} parts, piece asks for parts {wanted}"
        )
    if piece.measures is not None:
        score = _excerpt(score, piece)
        parts = list(score.parts)

    merge = len(piece.upper_parts) > 1 or len(piece.lower_parts) > 1
    skipped = _first_ending_measures(parts)
    upper_sources = [parts[i] for i in piece.upper_parts]
    lower_sources = [parts[i] for i in piece.lower_parts]
    upper = _staff_from_parts(upper_sources, "treble", 1, skipped, piece.name)
    lower = _staff_from_parts(lower_sources, "bass", 5, skipped, piece.name)
    for staff in (upper, lower):
        _drop_repeats(staff)
    _decide_accidentals(upper, merged=len(piece.upper_parts) > 1)
    _decide_accidentals(lower, merged=len(piece.lower_parts) > 1)
    _set_start_tempo(upper, lower, piece.tempo_qpm)
    grand = _grand_staff_score(upper, lower, piece)
    _tidy(grand, remove_fermatas=merge)
    # Durations MusicXML cannot write as one note (e.g. a rest of 5 eighths) become tied notes
    # or rests: the cheap part of music21's makeNotation, which we skip at export (it is slow).
    grand.splitAtDurations(recurse=True)
    return grand


_RUN_TOGETHER_RE = re.compile(r"(\S)(is overfull:|assuming )")
"""Where music21's overfull-measure warning runs two words together."""
_MEASURE_RE = re.compile(r"\bmeasure (\d+)\b")
"""The source measure a music21 warning is about."""

_WARNED: set[tuple[str, str]] = set()
"""(source, message) of the parse warnings shown in this process: a source parsed again (another excerpt, a
build run again) brings the same ones."""


def _warn_once(piece: CorpusPiece, caught: list[warnings.WarningMessage]) -> None:
    """Show music21's warnings about ``piece``'s source, its words spaced (music21 runs "part X" into "is
    overfull" and "...," into "assuming"): once per process, and for an excerpt only those about its own
    measures (the excerpts of a source are built in several worker processes, each parsing the whole file)."""
    for caught_warning in caught:
        message = _RUN_TOGETHER_RE.sub(r"\1 \2", str(caught_warning.message))
        measure = _MEASURE_RE.search(message)
        outside = (piece.measures is not None and measure is not None
                   and not piece.measures[0] <= int(measure.group(1)) <= piece.measures[1])
        if outside or (piece.source, message) in _WARNED:
            continue
        _WARNED.add((piece.source, message))
        warnings.warn_explicit(f"{piece.source}: {message}", caught_warning.category, caught_warning.filename,
                               caught_warning.lineno)


def score_to_musicxml(score: stream.Score) -> str:
    """Serialize a music21 score to MusicXML with a stable, unique ``id`` on every ``<note>``.

    music21 itself writes no note ids, and verovio would then invent random ones; numbering the
    ``<note>`` elements in document order makes them stable across runs. Pitched notes (chord
    members included) get ``n00001``, ``n00002``...; rests ``r00001``... The part and instrument
    ids (random in music21's output) and the encoding date are made stable too, so that the same
    score gives the same string on every run.

    The score must be well-formed notation (measures, notes of writable durations), as
    :func:`load_score` returns: music21's ``makeNotation`` is skipped here, being slow.
    """
    from music21.musicxml.m21ToXml import ScoreExporter

    exporter = ScoreExporter(score, makeNotation=False)
    root = exporter.parse()
    _stabilize_ids(root)
    return exporter.asBytes().decode("utf-8")


def _stabilize_ids(root: ET.Element) -> None:
    n_notes = n_rests = 0
    for note in root.iter("note"):
        if note.find("rest") is not None:
            n_rests += 1
            note.set("id", f"r{n_rests:05d}")
        else:
            n_notes += 1
            note.set("id", f"n{n_notes:05d}")
    # music21 names parts and instruments by random hex strings: number them instead.
    part_ids = {p.get("id"): f"P{k}" for k, p in enumerate(root.iter("score-part"), start=1)}
    instrument_ids: dict[str, str] = {}
    for score_part in root.iter("score-part"):
        part_id = part_ids[score_part.get("id")]
        for k, instrument in enumerate(score_part.iter("score-instrument"), start=1):
            instrument_ids[instrument.get("id")] = f"{part_id}-I{k}"
    for element in [*root.iter("score-part"), *root.iter("part")]:
        element.set("id", part_ids.get(element.get("id"), element.get("id")))
    # <midi-instrument> in the part list and <instrument> in notes refer to score-instrument ids.
    for tag in ("score-instrument", "midi-instrument", "instrument"):
        for element in root.iter(tag):
            element.set("id", instrument_ids.get(element.get("id"), element.get("id")))
    for encoding in root.iter("encoding"):
        for date in encoding.findall("encoding-date"):
            encoding.remove(date)


def _excerpt(score: stream.Score, piece: CorpusPiece) -> stream.Score:
    from music21.common.enums import GatherSpanners
    from music21 import stream

    first, last = piece.measures
    numbers = [m.number for m in score.parts[0].getElementsByClass(stream.Measure)]
    if first not in numbers or last not in numbers:
        raise CorpusError(
            f"{piece.name}: measures {first}..{last} not in {piece.source} "
            f"(measures {numbers[0]}..{numbers[-1]})"
        )
    # Only spanners (slurs, wedges, ottavas) that lie wholly inside the excerpt: a slur cut in
    # half would point at notes that are not in the score.
    return score.measures(first, last, gatherSpanners=GatherSpanners.COMPLETE_ONLY)


def _staff_from_parts(
    parts: Sequence[stream.Part],
    clef_name: str,
    first_voice: int,
    skipped: set[int],
    piece_name: str,
) -> stream.PartStaff:
    """One staff from one or more source parts; each source part (or voice) becomes a voice.

    Voices are numbered from ``first_voice`` (1 for the treble staff, 5 for the bass staff, as
    notation programs do, so that voice numbers are unique within the two-staff part). Measures
    whose index is in ``skipped`` (first endings) are left out.
    """
    from music21 import bar, clef, key, layout, meter, note, spanner, stream

    staff = stream.PartStaff()
    measure_lists = [list(p.getElementsByClass(stream.Measure)) for p in parts]
    lengths = {len(ms) for ms in measure_lists}
    if len(lengths) != 1:
        raise CorpusError(
            f"{piece_name}: source parts to merge have different measure counts {sorted(lengths)}"
        )
    merge = len(parts) > 1

    for index, measures in enumerate(zip(*measure_lists)):
        if index in skipped:
            continue
        template = measures[0]
        merged = stream.Measure(number=template.number)
        merged.numberSuffix = template.numberSuffix
        merged.paddingLeft = template.paddingLeft  # pickup measures stay pickups
        merged.paddingRight = template.paddingRight
        if template.leftBarline is not None:
            merged.leftBarline = template.leftBarline
        if template.rightBarline is not None:
            merged.rightBarline = template.rightBarline
        if not staff.hasMeasures():
            # The first measure states clef, key and metre even when the source stated them
            # earlier (an excerpt) or outside the measure (music21's Score.measures puts them
            # in the part).
            if merge:
                merged.insert(0, clef.TrebleClef() if clef_name == "treble" else clef.BassClef())
            context_classes = [key.KeySignature, meter.TimeSignature]
            if not merge:
                context_classes.append(clef.Clef)
            for cls in context_classes:
                has_own = template.recurse().getElementsByClass(cls).getElementsByOffset(0)
                found = None if has_own else template.getContextByClass(cls)
                if found is not None:
                    merged.insert(0, copy.deepcopy(found))

        voice_number = first_voice - 1
        seen_marks: set[tuple[str, float, str]] = set()
        for source in measures:
            voices = list(source.voices) or [source]
            for voice in voices:
                voice_number += 1
                new_voice = stream.Voice(id=voice_number)
                for element in voice.notesAndRests:
                    if merge and isinstance(element, note.NotRest):
                        # Two voices on a staff: upper voice stems up, lower voice stems down.
                        upper_voice = (voice_number - first_voice) % 2 == 0
                        element.stemDirection = "up" if upper_voice else "down"
                    new_voice.insert(element.getOffsetBySite(voice), element)
                merged.insert(0, new_voice)
            # Measure-level marks (time/key signatures, dynamics, tempo, clefs): once per staff.
            skip = (note.GeneralNote, stream.Voice, bar.Barline, layout.LayoutBase)
            if merge:
                skip = skip + (clef.Clef,)  # the merged staff keeps the clef set above
            for element in source.getElementsNotOfClass(skip):
                signature = isinstance(element, (meter.TimeSignature, key.KeySignature))
                if merge and signature and source is not template:
                    continue
                offset = float(element.getOffsetBySite(source))
                mark = (type(element).__name__, offset, repr(element))
                if mark in seen_marks:
                    continue
                seen_marks.add(mark)
                merged.insert(element.getOffsetBySite(source), element)
        staff.append(merged)

    # Slurs, wedges, ottavas point at the notes moved above; keep those whose notes all made it
    # (a slur into a skipped first ending would point at nothing).
    kept = {id(element) for element in staff.recurse()}
    for part in parts:
        for sp in part.recurse().getElementsByClass(spanner.Spanner):
            if isinstance(sp, spanner.RepeatBracket) or (merge and isinstance(sp, spanner.Slur)):
                # Merged parts: slurs of two voices on one staff get crossed by verovio (their
                # MusicXML numbers collide) and have no sound, so they go.
                continue
            if all(id(element) in kept for element in sp.getSpannedElements()):
                staff.insert(0, sp)
    return staff


def _grand_staff_score(
    upper: stream.PartStaff, lower: stream.PartStaff, piece: CorpusPiece
) -> stream.Score:
    from music21 import instrument, layout, metadata, stream

    score = stream.Score()
    score.metadata = metadata.Metadata(title=piece.title, composer=piece.composer)
    for staff in (upper, lower):
        # A piano, so that MIDI export picks program 0; no name, so that no label is engraved.
        for old in staff.recurse().getElementsByClass(instrument.Instrument):
            old.activeSite.remove(old)
        piano = instrument.Piano()
        piano.partName = piano.partAbbreviation = ""
        piano.instrumentName = piano.instrumentAbbreviation = ""
        staff.insert(0, piano)
        staff.partName = ""
        staff.partAbbreviation = ""
        score.insert(0, staff)
    score.insert(0, layout.StaffGroup([upper, lower], symbol="brace", barTogether=True))
    return score


def _first_ending_measures(parts: Sequence[stream.Part]) -> set[int]:
    """Indices of the measures under voltas that lead back to a repeat (first endings)."""
    from music21 import bar, spanner, stream

    skipped: set[int] = set()
    for part in parts:
        index_of = {id(m): i for i, m in enumerate(part.getElementsByClass(stream.Measure))}
        for bracket in part.recurse().getElementsByClass(spanner.RepeatBracket):
            measures = [m for m in bracket.getSpannedElements() if id(m) in index_of]
            if measures and isinstance(measures[-1].rightBarline, bar.Repeat):
                skipped.update(index_of[id(m)] for m in measures)
    return skipped


def _drop_repeats(staff: stream.PartStaff) -> None:
    """No repeat barlines, voltas or D.C./D.S./Fine marks: the score is played as written.

    Together with skipping first endings (see :func:`_first_ending_measures`), this reads the
    music as on its last pass: every remaining measure once, in order, as MSMD's unrolled
    sheets need (verovio's MIDI would otherwise play repeats that the sheet shows only once).
    """
    from music21 import bar, expressions, repeat, spanner, stream

    last_measure = staff.getElementsByClass(stream.Measure).last()
    for barline in list(staff.recurse().getElementsByClass(bar.Repeat)):
        site = barline.activeSite
        if site.leftBarline is barline:
            site.leftBarline = None
        elif site.rightBarline is barline:
            # A double bar still marks the end of the section.
            site.rightBarline = bar.Barline("final" if site is last_measure else "double")
        else:
            site.remove(barline)
    jumps = (spanner.RepeatBracket, repeat.RepeatExpression)
    for element in list(staff.recurse().getElementsByClass(jumps)):
        element.activeSite.remove(element)
    for words in list(staff.recurse().getElementsByClass(expressions.TextExpression)):
        if _JUMP_WORDS_RE.search(words.content or ""):
            words.activeSite.remove(words)


def _tidy(score: stream.Score, remove_fermatas: bool) -> None:
    """Remove what clutters the engraving or has no sound."""
    from music21 import expressions, harmony, layout, note, text

    clutter = (
        harmony.Harmony,  # chord symbols
        layout.PageLayout,
        layout.SystemLayout,
        layout.StaffLayout,
        text.TextBox,  # credits: title, composer, copyright lines
    )
    for element in list(score.recurse().getElementsByClass(clutter)):
        element.activeSite.remove(element)
    for n in score.recurse().getElementsByClass(note.GeneralNote):
        n.lyrics = []
        if remove_fermatas and n.expressions:
            # Fermatas of two voices stack on one staff; the performance ignores them anyway.
            n.expressions = [e for e in n.expressions if not isinstance(e, expressions.Fermata)]


def _decide_accidentals(staff: stream.PartStaff, merged: bool) -> None:
    """Decide which accidentals are printed where the source's decision no longer holds.

    A source part decides for itself; merged onto one staff, a voice's note needs a natural
    after another voice's sharp in the same measure, and so on, so merged staves are decided
    anew. A single source part keeps its own decisions unless it left them open (Humdrum input),
    where music21 would otherwise print every accidental, even those of the key signature.
    """
    from music21 import note

    undecided = any(
        pitch.accidental is not None and pitch.accidental.displayStatus is None
        for n in staff.recurse().getElementsByClass(note.NotRest)
        for pitch in n.pitches
    )
    if merged or undecided:
        staff.makeAccidentals(
            inPlace=True, overrideStatus=merged, cautionaryNotImmediateRepeat=False
        )


def _set_start_tempo(upper: stream.PartStaff, lower: stream.PartStaff, qpm: float) -> None:
    """A metronome mark at the first beat of the treble staff, replacing any at that point."""
    from music21 import duration, meter, stream, tempo

    for mark in list(lower.recurse().getElementsByClass(tempo.MetronomeMark)):
        mark.activeSite.remove(mark)  # one tempo track: the treble staff's
    first_measure = upper.getElementsByClass(stream.Measure).first()
    text = None
    for mark in list(first_measure.recurse().getElementsByClass(tempo.MetronomeMark)):
        if mark.getOffsetBySite(mark.activeSite) == 0:
            text = text or mark.text
            mark.activeSite.remove(mark)
    # Show the tempo per beat of the metre (dotted quarter in 6/8, half in 2/2), sound per quarter.
    time_signature = (
        first_measure.timeSignature
        or upper.recurse().getElementsByClass(meter.TimeSignature).first()
    )
    beat = time_signature.beatDuration.quarterLength if time_signature is not None else 1.0
    mark = tempo.MetronomeMark(
        text=text, number=round(qpm / beat, 2), referent=duration.Duration(beat)
    )
    first_measure.insert(0, mark)
