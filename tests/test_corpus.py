"""Tests for sfgym.data.corpus and sfgym.data.reduction: the built-in default dataset from the music21 corpus."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from sfgym.data.corpus import (
    PIECE_KINDS,
    CorpusError,
    CorpusPiece,
    default_corpus,
)
from sfgym.data.reduction import load_score, load_score_musicxml

music21 = pytest.importorskip("music21")
verovio = pytest.importorskip("verovio")


def _piece(name: str) -> CorpusPiece:
    return next(p for p in default_corpus() if p.name == name)


def _pitches(stream_or_part) -> Counter:
    """Multiset of (offset-free) MIDI pitches of every sounding note, chord members included."""
    return Counter(p.midi for n in stream_or_part.recurse().notes for p in n.pitches)


def test_default_corpus_names_are_unique_safe_and_deterministic():
    pieces = default_corpus()
    names = [p.name for p in pieces]
    assert len(pieces) >= 100
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9.\-]+__[A-Za-z0-9.\-]+__[A-Za-z0-9.\-]+", n) for n in names)
    assert [p.name for p in default_corpus()] == names  # same order every call
    assert {p.kind for p in pieces} <= set(PIECE_KINDS)
    # Real keyboard music comes first, and the set is not chorales only.
    assert pieces[0].kind == "piano"
    assert sum(p.kind != "chorale_reduction" for p in pieces) >= 30


def test_default_corpus_sources_ship_with_music21():
    corpus_dir = Path(music21.__file__).parent / "corpus"
    missing = [p.source for p in default_corpus() if not (corpus_dir / p.source).is_file()]
    assert missing == []


def test_corpus_piece_rejects_unsafe_names_and_unknown_kinds():
    with pytest.raises(CorpusError, match="filesystem-safe"):
        CorpusPiece("Bach/BWV1__x__y", "bach/bwv1.6.mxl", "J. S. Bach", "t", "piano", 90)
    with pytest.raises(CorpusError, match="kind"):
        CorpusPiece("BachJS__BWV1__x", "bach/bwv1.6.mxl", "J. S. Bach", "t", "organ", 90)


def test_chorale_reduction_is_a_grand_staff_that_keeps_every_note():
    piece = _piece("BachJS__BWV66.6__chorale")
    original = music21.corpus.parse(piece.source)
    soprano, alto, tenor, bass = original.parts

    reduced = load_score(piece)

    upper, lower = reduced.parts
    assert all(isinstance(staff, music21.stream.PartStaff) for staff in (upper, lower))
    assert _pitches(upper) == _pitches(soprano) + _pitches(alto)
    assert _pitches(lower) == _pitches(tenor) + _pitches(bass)
    assert len(reduced.recurse().notes) == len(original.recurse().notes)
    # Two voices per staff, the voices kept apart (not chordified).
    first_measure = upper.getElementsByClass(music21.stream.Measure).first()
    assert len(first_measure.voices) == 2
    assert not any(isinstance(n, music21.chord.Chord) for n in reduced.recurse().notes)
    clefs = [s.recurse().getElementsByClass(music21.clef.Clef).first() for s in (upper, lower)]
    assert [type(c).__name__ for c in clefs] == ["TrebleClef", "BassClef"]


def test_musicxml_has_two_staves_stable_ids_tempo_and_loads_in_verovio():
    piece = _piece("BachJS__BWV66.6__chorale")
    musicxml = load_score_musicxml(piece)

    root = ET.fromstring(musicxml.encode("utf-8"))
    assert len(root.findall("part")) == 1
    assert root.find("part/measure/attributes/staves").text == "2"
    ids = [n.get("id") for n in root.iter("note")]
    assert all(re.fullmatch(r"[nr]\d{5}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert load_score_musicxml(piece) == musicxml  # ids, part ids, everything: the same string
    assert float(root.find("part/measure/direction/sound").get("tempo")) == piece.tempo_qpm
    assert root.find(".//lyric") is None and root.find(".//fermata") is None
    assert root.find(".//part-name").text in (None, "")

    toolkit = verovio.toolkit()
    assert toolkit.loadData(musicxml)
    assert toolkit.getPageCount() >= 1
    # verovio keeps our ids as its element ids, and plays at our tempo.
    assert 'xml:id="n00001"' in toolkit.getMEI()
    timemap = toolkit.renderToTimemap({"includeRests": False})
    quarter_notes = music21.corpus.parse(piece.source).highestTime
    assert timemap[-1]["tstamp"] / 1000 == pytest.approx(quarter_notes * 60 / piece.tempo_qpm)


def test_excerpt_states_clef_key_and_metre_in_its_first_measure():
    piece = _piece("HandelGF__HWV7a__lascia-m43-54")
    score = load_score(piece)

    numbers = [m.number for m in score.parts[0].getElementsByClass(music21.stream.Measure)]
    assert (numbers[0], numbers[-1]) == piece.measures
    for staff in score.parts:
        first = staff.getElementsByClass(music21.stream.Measure).first()
        for cls in (music21.clef.Clef, music21.key.KeySignature, music21.meter.TimeSignature):
            assert first.recurse().getElementsByClass(cls).getElementsByOffset(0), cls.__name__


def test_repeats_are_dropped_and_first_endings_skipped():
    piece = _piece("HaydnFJ__Op1No1__mvt4")  # repeats with first and second endings
    source_measures = len(music21.corpus.parse(piece.source).parts[0].getElementsByClass("Measure"))

    root = ET.fromstring(load_score_musicxml(piece).encode("utf-8"))

    assert root.find(".//repeat") is None and root.find(".//ending") is None
    first_endings = 2  # measures 27 and 44: volta 1 of each repeat, which ends in a repeat sign
    assert len(root.findall("part/measure")) == source_measures - first_endings


def test_a_music21_warning_is_shown_once_spaced_and_only_for_the_excerpt_it_concerns():
    import warnings

    from sfgym.data import reduction

    music21_says = ("Warning: measure 40 in part Bb Clarinetis overfull: 4.5 > 4.0,assuming 4.0 is correct.")
    caught = [warnings.WarningMessage(music21_says, UserWarning, "xmlToM21.py", 1)]
    excerpt = CorpusPiece("WeberCM__Op26__m38-72", "weber/x.mxl", "Carl Maria von Weber", "t", "piano_accompaniment",
                          90, measures=(38, 72))
    elsewhere = CorpusPiece("WeberCM__Op26__m1-37", "weber/x.mxl", "Carl Maria von Weber", "t", "piano_accompaniment",
                            60, measures=(1, 37))
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        for piece in (elsewhere, excerpt, excerpt):
            reduction._warn_once(piece, caught)
    assert [str(warning.message) for warning in shown] == [
        "weber/x.mxl: Warning: measure 40 in part Bb Clarinet is overfull: 4.5 > 4.0, assuming 4.0 is correct."]
