"""Tests for the piano-v2 corpus: the vendored OpenScore Lieder scores, their licences, the exclusion of
pieces reserved for acceptance tests, and building them into a dataset."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from pathlib import Path

import pytest

import sfgym.data.corpus as corpus_module
from sfgym.data.corpus import (
    CORPORA,
    CorpusError,
    CorpusPiece,
    corpus_pieces,
    default_corpus,
    piano_v2_corpus,
    reserved_for_acceptance,
    vendored_pieces,
)
from sfgym.data.dataset import BuildConfig, build_dataset
from sfgym.data.reduction import load_score_musicxml

SCORES = Path(corpus_module.__file__).parent / "scores"
# Two short songs (~40 s each): Brahms's lullaby (3/4, 75 qpm) and Beethoven's Molly's Abschied.
SMALL = ("BrahmsJ__lc5701612__Wiegenlied", "BeethovenL__lc6491411__Mollys-Abschied")


def _rows() -> list[dict]:
    with open(SCORES / "sources.tsv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _musicxml_root(path: Path) -> ET.Element:
    with zipfile.ZipFile(path) as archive:
        container = ET.fromstring(archive.read("META-INF/container.xml"))
        rootfile = next(e for e in container.iter() if e.tag.endswith("rootfile")).get("full-path")
        return ET.fromstring(archive.read(rootfile))


def test_every_vendored_file_is_listed_with_source_and_licence():
    rows = _rows()
    files = sorted(p.relative_to(SCORES).as_posix() for p in SCORES.rglob("*.mxl"))
    assert len(rows) >= 40
    assert sorted(r["file"] for r in rows) == files  # nothing unlisted, nothing missing
    licence_text = (SCORES / "LICENSE.md").read_text(encoding="utf-8")
    for row in rows:
        assert row["licence"] == "CC0-1.0", row["file"]
        assert row["source_repo"] == "https://github.com/OpenScore/Lieder"
        assert re.fullmatch(r"[0-9a-f]{40}", row["commit"])
        assert row["source_path"].endswith(Path(row["file"]).name)
        assert row["composer"] and row["title"] and float(row["tempo_qpm"]) > 0
        assert row["file"] in licence_text
    assert sum(p.stat().st_size for p in SCORES.rglob("*")) < 10_000_000


def test_every_vendored_file_parses_as_voice_and_piano():
    for row in _rows():
        root = _musicxml_root(SCORES / row["file"])
        parts = root.findall("part")
        assert len(parts) == 2, row["file"]
        assert parts[1].find("measure/attributes/staves").text == "2", row["file"]
        assert any(n.find("pitch") is not None for n in parts[1].iter("note")), row["file"]


def test_reserved_solo_piano_pieces_are_rejected_and_songs_are_not():
    chopin_etude = CorpusPiece("ChopinFF__Op10No3__etude", "chopin/x.mxl", "Frédéric Chopin",
                               "Etude Op. 10 No. 3", "piano", 60)
    assert reserved_for_acceptance(chopin_etude)
    default = {p.name: p for p in default_corpus()}
    for name in ("BachJS__BWV846__prelude", "MozartWA__KV545__mvt1-exposition", "ChopinFF__Op6No2__mazurka"):
        assert reserved_for_acceptance(default[name])
    # Not the same composer; and a song's piano part is not solo piano music.
    assert not reserved_for_acceptance(default["BachCPE__H186__mvt2"])
    assert not reserved_for_acceptance(default["SchubertF__D911-5__m1-44"])

    pieces = piano_v2_corpus()
    assert not any(reserved_for_acceptance(p) for p in pieces)
    assert "BachJS__BWV846__prelude" not in {p.name for p in pieces}


def test_a_reserved_piece_in_piano_v2_is_an_error(monkeypatch):
    chopin = CorpusPiece("ChopinFF__Op38__ballade", "chopin/x.mxl", "Frederic Chopin", "Ballade", "piano", 60)
    monkeypatch.setattr(corpus_module, "_vendored_pieces", lambda: (chopin,))
    corpus_module._piano_v2_corpus.cache_clear()
    try:
        with pytest.raises(CorpusError, match="reserved for acceptance"):
            piano_v2_corpus()
    finally:
        corpus_module._piano_v2_corpus.cache_clear()


def test_piano_v2_has_more_piano_music_fewer_chorales_and_licences():
    default, v2 = Counter(p.kind for p in default_corpus()), Counter(p.kind for p in piano_v2_corpus())
    assert v2["chorale_reduction"] == 25 < default["chorale_reduction"]
    assert v2["piano_accompaniment"] >= default["piano_accompaniment"] + 40
    assert all(p.licence for p in piano_v2_corpus())
    assert {p.name for p in vendored_pieces()} <= {p.name for p in piano_v2_corpus()}
    assert corpus_pieces("default") == default_corpus() and set(CORPORA) == {"default", "piano-v2", "songs"}
    # the songs alone share no score with the default corpus: trained on beside it, they leak no valid/test score
    assert corpus_pieces("songs") == vendored_pieces() and len(vendored_pieces()) == 100
    assert not {p.name for p in vendored_pieces()} & {p.name for p in default_corpus()}
    with pytest.raises(CorpusError, match="unknown corpus"):
        corpus_pieces("chorales")
    with pytest.raises(ValueError, match="unknown corpus"):
        BuildConfig(corpus="chorales")


def test_vendored_songs_engrave_as_their_piano_part_with_every_note():
    from music21 import converter

    from sfgym.data.engrave import engrave

    pieces = {p.name: p for p in vendored_pieces()}
    for name in SMALL:
        piece = pieces[name]
        musicxml = load_score_musicxml(piece)
        root = ET.fromstring(musicxml.encode("utf-8"))
        assert len(root.findall("part")) == 1 and root.find(".//lyric") is None
        source = converter.parse(corpus_module.vendored_path(piece.source))
        piano_notes = sum(len(n.pitches) for part in source.parts[1:] for n in part.recurse().notes)
        assert len(re.findall(r'<note\b[^>]*\bid="n', musicxml)) == piano_notes  # voice gone, piano whole
        engraved = engrave(musicxml)
        assert len(engraved.coords) == len(engraved.notes) > 100  # every played note has its notehead


def test_build_records_the_vendored_piece_licence(tmp_path):
    piece = next(p for p in vendored_pieces() if p.name == SMALL[0])
    build_dataset(tmp_path, [piece], BuildConfig(tempo_ratios=(1.0,), corpus="piano-v2"), workers=1, progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["failed"] == []
    (entry,) = manifest["scores"]
    assert entry["licence"].startswith("CC0-1.0 (https://github.com/OpenScore/Lieder @ ")
    assert entry["source"] == "sfgym:openscore-lieder/lc5701612.mxl"
    assert manifest["build_config"]["corpus"] == "piano-v2"
