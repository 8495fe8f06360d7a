"""sfgym's built-in corpora: public-domain scores from the music21 corpus and vendored songs.

MSMD is classical piano music engraved on a grand staff (treble + bass). sfgym's default dataset
is built offline from scores that ship inside the music21 wheel (``music21/corpus``; nothing is
downloaded). :func:`default_corpus` lists the pieces; :func:`load_score_musicxml` turns one into
a two-staff MusicXML string that the engraver (verovio) and the synthesizer can use.

What is in it (140 pieces, 118.6 min of music at the notated tempi, 20-168 s per piece)
-------------------------------------------------------------------------------------
The music21 corpus holds little keyboard music, so every keyboard piece in it is used, then real
piano writing from songs and chamber music, then ensembles that reduce cleanly to two staves:

- 12 ``piano`` pieces, i.e. all keyboard works of the corpus: J. S. Bach's C major prelude BWV
  846; C. P. E. Bach's Sonata H. 186, II; Mozart's K. 545, I (exposition); Joplin's Maple Leaf
  Rag; Clara Schumann's four Polonaises Op. 1; Chopin's Mazurka Op. 6 No. 2; Schoenberg's Op. 19
  Nos. 2 and 6; a piano arrangement of Verdi's "La donna è mobile". (Left out: two theory
  exercises.)
- 15 ``piano_accompaniment`` pieces: the piano part alone (voice or other instruments left out)
  of Schubert's "Der Lindenbaum" (2 excerpts), Schumann's Dichterliebe No. 2, Handel's "Lascia
  ch'io pianga" (aria, 2 excerpts), Liliʻuokalani's "Aloha ʻOe", Amy Beach's Op. 75 No. 4, Clara
  Schumann's Piano Trio Op. 17, III (2 excerpts) and Weber's Clarinet Concertino Op. 26 (piano
  reduction of the orchestra, 6 excerpts, one per tempo section).
- 13 ``ensemble_reduction`` pieces: one source part per voice, violins (or sopranos and altos)
  on the treble staff, viola and cello (tenors and basses) on the bass staff: 11 string-quartet
  movements (Haydn Op. 1 No. 1 I-V and Op. 74 No. 1 III; Mozart K. 80 III, K. 155 II, K. 156
  Adagio, K. 458 II; Beethoven Op. 18 No. 1 III), Corelli's Trio Sonata Op. 3 No. 1, I and J.
  Rosamond Johnson's "Lift Every Voice and Sing" (SATB). Quartets are busier than piano music
  (four voices, their rests on two staves), so only minuets, slow movements and short fast ones
  are used.
- 100 ``chorale_reduction`` pieces: J. S. Bach's four-part chorales, soprano and alto as voices
  1-2 of the treble staff, tenor and bass as voices 5-6 of the bass staff, every note kept (not
  chordified). Of the corpus' 368 four-part chorales (parts named Soprano, Alto, Tenor, Bass),
  variant files (names with a suffix such as ``-a`` or ``-lpz``) and 2 exact duplicates were left
  out (347 left), and 4 shorter than 20 s (343 left); the 100 are evenly spaced in BWV order.

Not used: Palestrina, Monteverdi, Josquin, trecento and other vocal polyphony (~1,500 files, five
or more parts in old clefs, far from piano music); the ABC folk-tune collections (one melody line,
no grand staff); lead sheets (a melody with chord symbols); long quartet movements and the Grosse
Fuge; Webern's Op. 16 No. 2 (voice and clarinet).

The ``piano-v2`` corpus (:func:`piano_v2_corpus`, ``sfgym data build --corpus piano-v2``)
------------------------------------------------------------------------------------------------
More piano writing, fewer chorales, and nothing that acceptance tests play (162 pieces):

- 100 ``piano_accompaniment`` pieces vendored in ``sfgym/data/scores/``: the piano parts of songs by
  87 composers (Brahms, Schubert, R. Schumann, Mahler, Wolf, Hensel, Chaminade, Debussy, Elgar,
  Holmès, Viardot, Beach, Satie, Webern, ...; mid-18th to early 20th century) from the OpenScore
  Lieder corpus,
  whose MusicXML exports are CC0 (``sfgym/data/scores/LICENSE.md`` and ``sources.tsv`` list each
  file's source repository, commit, path, licence, composer and title; the files are copied
  unchanged by ``scripts/vendor_openscore_lieder.py``, which also says how they were chosen). The
  voice part and lyrics are dropped like other parts; the tempo is the file's first metronome mark.
- From the default corpus: its keyboard pieces except those reserved (below), all 15 of its song
  and chamber piano parts, its 13 ensemble reductions and every 4th of its chorales (25).

Reserved for acceptance tests, never in a training corpus: ASAP / (n)ASAP, Vienna 4x22 and Batik
perform solo piano music by the composers of :data:`RESERVED_PIANO_COMPOSERS` (J. S. Bach,
Beethoven, Chopin, Debussy, Haydn, Liszt, Mozart, Schubert, R. Schumann, ...). The rule
(:func:`reserved_for_acceptance`): *no* ``piano`` piece by such a composer, whether or not that
exact piece is in a set; so ``piano-v2`` leaves out the default corpus' BWV 846 prelude, K. 545 and
Chopin's Op. 6 No. 2, which the default corpus (unchanged, for reproducibility) still has. Their
songs and chamber music are not in those sets and stay. :func:`piano_v2_corpus` raises
:class:`CorpusError` if a reserved piece gets in.

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
with ``python -m sfgym.data.corpus`` (builds each piece and loads it in verovio).

Licensing
---------
All compositions are in the public domain: every composer died before 1955 and every work was
published before 1930 (public domain in the US; Schoenberg, d. 1951, and J. R. Johnson, d. 1954,
are also out of copyright in life+70 countries since 2022 and 2025). The encodings are the music21
corpus', which music21 (BSD-licensed) distributes "with the permission of the encoders" and, to
its best knowledge, out of copyright or licensed for use in the US, possibly with restrictions on
commercial use (``music21/corpus/license.txt``). Individual notices: the Corelli encoding is
CC-BY 2014 (credit its encoder); the Liliʻuokalani and Johnson encodings are CC0 (M. S. A.
Cuthbert); the Weber encoding was released to the public domain (Oliver Seely, 1998). sfgym does
not copy the files: it reads them from the installed music21 at build time. Datasets built from
them carry these terms. One caveat: the file of the Verdi piano arrangement names no arranger
(music21 distributes it as out of copyright in the US).

The vendored songs of ``piano-v2`` are public-domain compositions (every composer died in 1945 or
earlier) in CC0 encodings (OpenScore Lieder), shipped inside the package (1.4 MB); the manifest of
a ``piano-v2`` build records each piece's licence and source.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # music21 is imported where it is used: listing the pieces needs none of it
    from music21 import stream

__all__ = [
    "CORPORA",
    "CorpusPiece",
    "CorpusError",
    "PIECE_KINDS",
    "RESERVED_PIANO_COMPOSERS",
    "corpus_pieces",
    "default_corpus",
    "piano_v2_corpus",
    "reserved_for_acceptance",
    "vendored_pieces",
    "load_score",
    "load_score_musicxml",
    "score_to_musicxml",
]

PIECE_KINDS = ("piano", "piano_accompaniment", "chorale_reduction", "ensemble_reduction")
"""What a piece is, from most to least pianistic:

- ``piano``: keyboard music as written (grand staff).
- ``piano_accompaniment``: the piano part of a song or chamber piece, the other parts left out.
- ``chorale_reduction``: a four-part chorale on a grand staff, soprano and alto as two voices of
  the treble staff, tenor and bass as two voices of the bass staff (every note kept).
- ``ensemble_reduction``: an ensemble piece (string quartet, trio sonata, choir) reduced the same
  way, one source part per voice.
"""

_NAME_RE = re.compile(r"^[A-Za-z0-9.\-]+__[A-Za-z0-9.\-]+__[A-Za-z0-9.\-]+$")
# Words that send the player elsewhere ("Menuetto da capo", "D.S. al Fine"): meaningless once
# every measure is played once, in order.
_JUMP_WORDS_RE = re.compile(
    r"\bda\s*capo\b|\bdal\s*segno\b|\bD\.\s*[CS]\.|^\s*fine\s*$", re.IGNORECASE
)


class CorpusError(ValueError):
    """A corpus piece cannot be built as described (wrong parts, measures, repeats...)."""


@dataclass(frozen=True)
class CorpusPiece:
    """One piece of the default dataset and everything needed to re-create it from music21.

    Attributes:
        name: filesystem-safe MSMD-style stem ``Composer__Work__Part``,
            e.g. ``BachJS__BWV66.6__chorale``.
        source: music21 corpus path, e.g. ``bach/bwv66.6.mxl`` (``music21.corpus.parse`` input).
        composer: composer's name, e.g. ``Johann Sebastian Bach``.
        title: human-readable title of the piece or excerpt.
        kind: one of :data:`PIECE_KINDS`.
        tempo_qpm: tempo at the start, in quarter notes per minute. It replaces whatever the
            source says at its first note, so that every piece has a notated tempo; later tempo
            changes of the source are kept.
        upper_parts: indices into ``score.parts`` of the source parts that go to the treble
            staff, one voice each (a single part keeps its own voices and clefs).
        lower_parts: likewise for the bass staff.
        measures: inclusive range of source measure numbers for an excerpt, or ``None`` for the
            whole piece.
        licence: the encoding's licence where sfgym records one per piece (the ``piano-v2``
            corpus; empty for the default corpus, whose terms are in the module docstring).
    """

    name: str
    source: str
    composer: str
    title: str
    kind: str
    tempo_qpm: float
    upper_parts: tuple[int, ...] = (0,)
    lower_parts: tuple[int, ...] = (1,)
    measures: tuple[int, int] | None = None
    licence: str = ""

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise CorpusError(
                f"piece name {self.name!r} is not a filesystem-safe 'Composer__Work__Part' stem"
            )
        if self.kind not in PIECE_KINDS:
            raise CorpusError(f"{self.name}: kind {self.kind!r} is not one of {PIECE_KINDS}")
        if not self.tempo_qpm > 0:
            raise CorpusError(f"{self.name}: tempo_qpm must be positive, got {self.tempo_qpm}")
        if not self.upper_parts or not self.lower_parts:
            raise CorpusError(f"{self.name}: both staves need at least one source part")
        if self.measures is not None and self.measures[0] > self.measures[1]:
            raise CorpusError(f"{self.name}: measure range {self.measures} is empty")


# --------------------------------------------------------------------------------------------
# The default set. Order is the order of default_corpus(): keyboard music first, then piano
# parts, ensemble reductions and chorales (by BWV number).
# --------------------------------------------------------------------------------------------

_BACH = "Johann Sebastian Bach"


def _piano(
    name: str, source: str, composer: str, title: str, tempo_qpm: float,
    measures: tuple[int, int] | None = None,
) -> CorpusPiece:
    return CorpusPiece(name, source, composer, title, "piano", tempo_qpm, (0,), (1,), measures)


def _accompaniment(
    name: str, source: str, composer: str, title: str, tempo_qpm: float,
    piano_parts: tuple[int, int], measures: tuple[int, int] | None = None,
) -> CorpusPiece:
    """The two staves of the source's piano part (music21 parts ``piano_parts``), nothing else."""
    upper, lower = piano_parts
    kind = "piano_accompaniment"
    return CorpusPiece(name, source, composer, title, kind, tempo_qpm, (upper,), (lower,), measures)


def _reduction(
    name: str, source: str, composer: str, title: str, tempo_qpm: float,
    upper: tuple[int, ...] = (0, 1), lower: tuple[int, ...] = (2, 3),
    measures: tuple[int, int] | None = None,
) -> CorpusPiece:
    kind = "ensemble_reduction"
    return CorpusPiece(name, source, composer, title, kind, tempo_qpm, upper, lower, measures)


def _chorale(bwv: str, tempo_qpm: float) -> CorpusPiece:
    return CorpusPiece(
        name=f"BachJS__BWV{bwv}__chorale",
        source=f"bach/bwv{bwv}.mxl",
        composer=_BACH,
        title=f"Chorale BWV {bwv}",
        kind="chorale_reduction",
        tempo_qpm=tempo_qpm,
        upper_parts=(0, 1),  # soprano, alto
        lower_parts=(2, 3),  # tenor, bass
    )


_KEYBOARD = (
    _piano("BachJS__BWV846__prelude", "bach/bwv846.mxl", _BACH,
           "Prelude in C major, BWV 846 (The Well-Tempered Clavier I)", 72),
    _piano("BachCPE__H186__mvt2", "cpebach/h186.mxl", "Carl Philipp Emanuel Bach",
           "Sonata in A major, H. 186 (Wq. 55/4): II. Poco adagio", 60),
    _piano("MozartWA__KV545__mvt1-exposition", "mozart/k545/movement1_exposition.mxl",
           "Wolfgang Amadeus Mozart",
           "Piano Sonata in C major, K. 545: I. Allegro (exposition)", 132),
    _piano("JoplinS__MapleLeafRag__rag", "joplin/maple_leaf_rag.mxl", "Scott Joplin",
           "Maple Leaf Rag", 100),
    _piano("SchumannC__Op1No1__polonaise", "schumann_clara/polonaise_op1n1.mxl", "Clara Schumann",
           "Polonaise, Op. 1 No. 1", 96),
    _piano("SchumannC__Op1No2__polonaise", "schumann_clara/polonaise_op1n2.mxl", "Clara Schumann",
           "Polonaise, Op. 1 No. 2", 92),
    _piano("SchumannC__Op1No3__polonaise", "schumann_clara/polonaise_op1n3.mxl", "Clara Schumann",
           "Polonaise, Op. 1 No. 3", 96),
    _piano("SchumannC__Op1No4__polonaise", "schumann_clara/polonaise_op1n4.mxl", "Clara Schumann",
           "Polonaise, Op. 1 No. 4", 92),
    _piano("ChopinFF__Op6No2__mazurka", "chopin/mazurka06-2.krn", "Frédéric Chopin",
           "Mazurka in C-sharp minor, Op. 6 No. 2", 189),
    _piano("SchoenbergA__Op19No2__piece", "schoenberg/opus19/movement2.mxl", "Arnold Schoenberg",
           "Sechs kleine Klavierstücke, Op. 19: No. 2 (Langsam)", 60),
    _piano("SchoenbergA__Op19No6__piece", "schoenberg/opus19/movement6.mxl", "Arnold Schoenberg",
           "Sechs kleine Klavierstücke, Op. 19: No. 6 (Sehr langsam)", 50),
    _piano("VerdiG__Rigoletto__la-donna-e-mobile", "verdi/laDonnaEMobile.mxl", "Giuseppe Verdi",
           "Rigoletto: La donna è mobile (piano arrangement)", 120),
)

_ACCOMPANIMENTS = (
    _accompaniment("SchubertF__D911-5__m1-44", "schubert/Lindenbaum.xml", "Franz Schubert",
                   "Der Lindenbaum, D. 911 No. 5 (piano part), mm. 1-44", 80, (1, 2), (1, 44)),
    _accompaniment("SchubertF__D911-5__m45-82", "schubert/Lindenbaum.xml", "Franz Schubert",
                   "Der Lindenbaum, D. 911 No. 5 (piano part), mm. 45-82", 80, (1, 2), (45, 82)),
    _accompaniment("SchumannR__Op48No2__song", "schumann_robert/opus48no2.mxl", "Robert Schumann",
                   "Dichterliebe, Op. 48: II. Aus meinen Tränen sprießen (piano part)", 50,
                   (1, 2)),
    _accompaniment("HandelGF__HWV7a__lascia-m13-42", "handel/rinaldo/Lascia_chio_pianga.mxl",
                   "George Frideric Handel", "Rinaldo: Lascia ch'io pianga (piano part), mm. 13-42",
                   60, (1, 2), (13, 42)),
    _accompaniment("HandelGF__HWV7a__lascia-m43-54", "handel/rinaldo/Lascia_chio_pianga.mxl",
                   "George Frideric Handel", "Rinaldo: Lascia ch'io pianga (piano part), mm. 43-54",
                   60, (1, 2), (43, 54)),
    _accompaniment("Liliuokalani__AlohaOe__song", "liliuokalani/aloha_oe.mxl", "Liliʻuokalani",
                   "Aloha ʻOe (piano part)", 90, (5, 6)),
    _accompaniment("BeachA__Op75No4__song", "beach/prayer_of_a_tired_child.musicxml", "Amy Beach",
                   "Prayer of a Tired Child, Op. 75 No. 4 (piano part)", 72, (4, 5)),
    _accompaniment("SchumannC__Op17__mvt3-m1-40", "schumann_clara/opus17/movement3.xml",
                   "Clara Schumann", "Piano Trio, Op. 17: III. Andante (piano part), mm. 1-40",
                   56, (2, 3), (1, 40)),
    _accompaniment("SchumannC__Op17__mvt3-m41-80", "schumann_clara/opus17/movement3.xml",
                   "Clara Schumann", "Piano Trio, Op. 17: III. Andante (piano part), mm. 41-80",
                   56, (2, 3), (41, 80)),
    # Weber's Clarinet Concertino: the piano reduction of the orchestra, one excerpt per tempo
    # section (first measure, last measure, tempo).
    *(
        _accompaniment(f"WeberCM__Op26__m{first}-{last}", "weber/concertino_clarinet.mxl",
                       "Carl Maria von Weber",
                       f"Clarinet Concertino, Op. 26 (piano part), mm. {first}-{last}", qpm,
                       (1, 2), (first, last))
        for first, last, qpm in (
            (1, 37, 60), (38, 72, 90), (73, 109, 100), (110, 146, 100), (147, 194, 150),
            (195, 241, 150),
        )
    ),
)

_REDUCTIONS = (
    _reduction("CorelliA__Op3No1__mvt1", "corelli/opus3no1/1grave.xml", "Arcangelo Corelli",
               "Trio Sonata, Op. 3 No. 1: I. Grave", 60, upper=(0, 1), lower=(2,)),
    _reduction("JohnsonJR__LiftEveryVoice__hymn", "johnson_j_r/lift_every_voice.mxl",
               "J. Rosamond Johnson", "Lift Every Voice and Sing", 84),
    _reduction("HaydnFJ__Op1No1__mvt1", "haydn/opus1no1/movement1.mxl", "Joseph Haydn",
               "String Quartet, Op. 1 No. 1: I. Presto", 240),
    _reduction("HaydnFJ__Op1No1__mvt2", "haydn/opus1no1/movement2.mxl", "Joseph Haydn",
               "String Quartet, Op. 1 No. 1: II. Menuet", 100),
    _reduction("HaydnFJ__Op1No1__mvt3", "haydn/opus1no1/movement3.mxl", "Joseph Haydn",
               "String Quartet, Op. 1 No. 1: III. Adagio", 66),
    _reduction("HaydnFJ__Op1No1__mvt4", "haydn/opus1no1/movement4.mxl", "Joseph Haydn",
               "String Quartet, Op. 1 No. 1: IV. Menuet", 80),
    _reduction("HaydnFJ__Op1No1__mvt5", "haydn/opus1no1/movement5.mxl", "Joseph Haydn",
               "String Quartet, Op. 1 No. 1: V. Finale. Presto", 144),
    _reduction("HaydnFJ__Op74No1__mvt3", "haydn/opus74no1/movement3.mxl", "Joseph Haydn",
               "String Quartet, Op. 74 No. 1: III. Menuet. Allegretto", 144),
    _reduction("MozartWA__KV80__mvt3", "mozart/k80/movement3.mxl", "Wolfgang Amadeus Mozart",
               "String Quartet in G major, K. 80: III. Menuetto and Trio", 126),
    _reduction("MozartWA__KV155__mvt2", "mozart/k155/movement2.mxl", "Wolfgang Amadeus Mozart",
               "String Quartet in D major, K. 155: II. Andante", 76),
    _reduction("MozartWA__KV156__mvt4", "mozart/k156/movement4.mxl", "Wolfgang Amadeus Mozart",
               "String Quartet in G major, K. 156: Adagio (first version)", 56),
    _reduction("MozartWA__KV458__mvt2", "mozart/k458/movement2.mxl", "Wolfgang Amadeus Mozart",
               "String Quartet in B-flat major, K. 458: II. Menuetto and Trio", 138),
    _reduction("BeethovenLv__Op18No1__mvt3", "beethoven/opus18no1/movement3.mxl",
               "Ludwig van Beethoven",
               "String Quartet, Op. 18 No. 1: III. Scherzo. Allegro molto", 240),
)

# 100 of the 343 four-part chorales that pass the checks (see the module docstring), evenly
# spaced in BWV order, with their tempo in quarter notes per minute.
_CHORALE_TEMPI: tuple[tuple[str, float], ...] = (
    ("2.6", 92), ("5.7", 80), ("10.7", 92), ("14.5", 92), ("20.11", 96), ("26.6", 92),
    ("33.6", 100), ("39.7", 84), ("42.7", 92), ("45.7", 88), ("48.7", 84), ("57.8", 80),
    ("64.4", 80), ("66.6", 96), ("70.7", 100), ("77.6", 96), ("81.7", 80), ("86.6", 100),
    ("89.6", 96), ("94.8", 100), ("101.7", 80), ("108.6", 92), ("112.5", 96), ("115.6", 92),
    ("120.6", 96), ("123.6", 92), ("133.6", 96), ("140.7", 80), ("146.8", 96), ("153.1", 92),
    ("154.8", 88), ("157.5", 96), ("165.6", 96), ("169.7", 96), ("177.4", 84), ("180.7", 80),
    ("187.7", 84), ("194.12", 96), ("226.2", 92), ("229.2", 94), ("244.15", 96), ("244.37", 88),
    ("244.46", 92), ("245.5", 96), ("245.15", 92), ("245.26", 88), ("248.5", 88), ("254", 84),
    ("258", 88), ("261", 100), ("265", 88), ("268", 100), ("272", 96), ("276", 100), ("280", 100),
    ("283", 84), ("287", 88), ("291", 80), ("294", 92), ("298", 96), ("301", 96), ("305", 100),
    ("308", 96), ("312", 100), ("315", 80), ("319", 84), ("322", 88), ("325", 100), ("329", 96),
    ("332", 92), ("336", 96), ("339", 84), ("343", 96), ("346", 92), ("350", 100), ("353", 84),
    ("357", 88), ("360", 80), ("363", 96), ("367", 92), ("371", 100), ("375", 80), ("378", 84),
    ("382", 96), ("385", 84), ("390", 92), ("393", 100), ("397", 88), ("400", 92), ("403", 84),
    ("407", 88), ("410", 96), ("414", 92), ("417", 100), ("421", 92), ("424", 80), ("428", 84),
    ("431", 88), ("435", 92), ("438", 80),
)

_CHORALES = tuple(_chorale(bwv, qpm) for bwv, qpm in _CHORALE_TEMPI)
_PIECES: tuple[CorpusPiece, ...] = _KEYBOARD + _ACCOMPANIMENTS + _REDUCTIONS + _CHORALES


def _check_unique_names(pieces: Sequence[CorpusPiece], corpus: str) -> None:
    names = [piece.name for piece in pieces]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise CorpusError(f"duplicate piece names in the {corpus} corpus: {duplicates}")


@functools.cache
def _default_corpus() -> tuple[CorpusPiece, ...]:
    _check_unique_names(_PIECES, "default")
    return _PIECES


def default_corpus() -> list[CorpusPiece]:
    """The pieces of sfgym's built-in dataset, in a fixed order.

    Nothing is parsed: this only lists what :func:`load_score_musicxml` can build.
    """
    return list(_default_corpus())


# --------------------------------------------------------------------------------------------
# The piano-v2 corpus: vendored piano parts of songs, the default corpus' piano music, fewer
# chorales, and nothing reserved for acceptance tests
# --------------------------------------------------------------------------------------------

CORPORA = ("default", "piano-v2", "songs")
"""Names of the built-in corpora (:func:`corpus_pieces`); ``sfgym data build --corpus NAME``. ``songs`` is the
vendored piano parts of songs alone (:func:`vendored_pieces`): none of them is in the default corpus, so it can
be trained on beside the default data without sharing a score with its valid or test split."""

VENDORED_PREFIX = "sfgym:"
"""``CorpusPiece.source`` of a file shipped in ``sfgym/data/scores/``, e.g.
``sfgym:openscore-lieder/lc5701612.mxl``."""

_SOURCES_TSV = "sources.tsv"

# Composers whose solo piano music is in a performance set reserved for acceptance tests:
# ASAP / (n)ASAP (composer list of its metadata), Vienna 4x22 (Chopin, Mozart, Schubert) and
# Batik (Mozart). Rather than list their pieces, NO solo piano ("piano") piece by these
# composers may be in a training corpus. Their songs' accompaniments and chamber music are
# not in those sets and stay allowed. Brahms is listed to be safe (unsure whether ASAP has him).
RESERVED_PIANO_COMPOSERS = frozenset({
    "johann sebastian bach", "mily balakirev", "ludwig van beethoven", "johannes brahms",
    "frederic chopin", "claude debussy", "mikhail glinka", "joseph haydn", "franz liszt",
    "wolfgang amadeus mozart", "sergei prokofiev", "sergei rachmaninoff", "maurice ravel",
    "franz schubert", "robert schumann", "alexander scriabin",
})
"""Composers (ASCII-folded, lower case) whose solo piano pieces no training corpus may hold."""

_PIANO_V2_CHORALE_STEP = 4  # every 4th of the default corpus' 100 chorales: 25


def _folded(name: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower().strip()


def reserved_for_acceptance(piece: CorpusPiece) -> bool:
    """Whether a piece may not be trained on: solo piano music by a reserved composer.

    The acceptance sets (ASAP/(n)ASAP, Vienna 4x22, Batik) are performances of solo piano
    pieces by the composers in :data:`RESERVED_PIANO_COMPOSERS`; every ``piano`` piece by them
    is held out, whether or not that exact piece is in a set.
    """
    return piece.kind == "piano" and _folded(piece.composer) in RESERVED_PIANO_COMPOSERS


def _vendored_dir():
    from importlib.resources import files

    return files("sfgym.data") / "scores"


def _vendored_path(source: str) -> str:
    return str(_vendored_dir() / source.removeprefix(VENDORED_PREFIX))


@functools.cache
def _vendored_pieces() -> tuple[CorpusPiece, ...]:
    import csv
    import io

    text = (_vendored_dir() / _SOURCES_TSV).read_text(encoding="utf-8")
    pieces = []
    for row in csv.DictReader(io.StringIO(text), delimiter="\t"):
        source = f"{VENDORED_PREFIX}{row['file']}"
        piece = _accompaniment(row["name"], source, row["composer"], row["title"],
                               float(row["tempo_qpm"]), (1, 2))  # voice, then piano's 2 staves
        licence = f"{row['licence']} ({row['source_repo']} @ {row['commit']}: {row['source_path']})"
        pieces.append(dataclasses.replace(piece, licence=licence))
    return tuple(pieces)


def vendored_pieces() -> list[CorpusPiece]:
    """The scores shipped in ``sfgym/data/scores/`` (listed in its ``sources.tsv``), as pieces.

    Each is the piano part of a song of the OpenScore Lieder corpus (CC0); see
    ``sfgym/data/scores/LICENSE.md`` for every file's source, commit and licence.
    """
    return list(_vendored_pieces())


_MUSIC21_LICENCE = (
    "public-domain composition; encoding from the music21 corpus "
    "(music21/corpus/license.txt; see sfgym.data.corpus)"
)


@functools.cache
def _piano_v2_corpus() -> tuple[CorpusPiece, ...]:
    from_music21 = (
        *(p for p in _KEYBOARD if not reserved_for_acceptance(p)),
        *_ACCOMPANIMENTS,
        *_REDUCTIONS,
        *_CHORALES[::_PIANO_V2_CHORALE_STEP],
    )
    pieces = (
        *_vendored_pieces(),
        *(dataclasses.replace(p, licence=_MUSIC21_LICENCE) for p in from_music21),
    )
    reserved = [p.name for p in pieces if reserved_for_acceptance(p)]
    if reserved:
        raise CorpusError(f"pieces reserved for acceptance tests in the piano-v2 corpus: {reserved}")
    _check_unique_names(pieces, "piano-v2")
    return pieces


def piano_v2_corpus() -> list[CorpusPiece]:
    """The ``piano-v2`` corpus: more piano music, fewer chorales, no acceptance-test pieces.

    The vendored piano parts of songs (:func:`vendored_pieces`) first, then from the default
    corpus its keyboard pieces except those :func:`reserved_for_acceptance` (Bach's BWV 846, Mozart's
    K. 545 and Chopin's Op. 6 No. 2 go), its song and chamber piano parts, its ensemble
    reductions and every 4th of its chorales (25 of 100). Every piece records its licence.
    """
    return list(_piano_v2_corpus())


def corpus_pieces(name: str = "default") -> list[CorpusPiece]:
    """The pieces of the built-in corpus ``name`` (one of :data:`CORPORA`)."""
    if name == "default":
        return default_corpus()
    if name == "piano-v2":
        return piano_v2_corpus()
    if name == "songs":
        return vendored_pieces()
    raise CorpusError(f"unknown corpus {name!r}: choose one of {', '.join(CORPORA)}")


# --------------------------------------------------------------------------------------------
# Building a piece
# --------------------------------------------------------------------------------------------


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
        if piece.source.startswith(VENDORED_PREFIX):
            score = converter.parse(_vendored_path(piece.source))
        else:
            score = corpus.parse(piece.source)
    except Exception as error:  # music21 raises many unrelated types for a bad path
        where = "vendored" if piece.source.startswith(VENDORED_PREFIX) else "music21 corpus"
        raise CorpusError(
            f"{piece.name}: cannot parse {where} file {piece.source!r}: {error}"
        ) from error

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


# --------------------------------------------------------------------------------------------
# Checking the set: `python -m sfgym.data.corpus` builds every piece once and loads it in verovio
# --------------------------------------------------------------------------------------------


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
    import time
    import warnings

    import verovio

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
        from sfgym.data.engrave import engrave as engrave_score

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


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

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
    raise SystemExit(_main())
