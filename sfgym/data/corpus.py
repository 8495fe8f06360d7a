"""sfgym's built-in corpora: public-domain scores from the music21 corpus and vendored songs.

MSMD is classical piano music engraved on a grand staff (treble + bass). sfgym's default dataset
is built offline from scores that ship inside the music21 wheel (``music21/corpus``; nothing is
downloaded). This module is the catalogue: :func:`default_corpus` and :func:`corpus_pieces` list the
pieces, with their sources, parts, measures, tempi and licences (plain data: listing needs no music21).
:func:`sfgym.data.reduction.load_score_musicxml` turns one into a two-staff MusicXML string that the
engraver (verovio) and the synthesizer can use (how: that module's docstring), and
``python -m sfgym.data.corpus_check`` checks that every piece builds (:mod:`sfgym.data.corpus_check`).

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

import dataclasses
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

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
    "vendored_path",
    "vendored_pieces",
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

    Nothing is parsed: this only lists what :func:`sfgym.data.reduction.load_score_musicxml` can build.
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


def vendored_path(source: str) -> str:
    """The file of a vendored piece's ``source`` (``sfgym:NAME``, :data:`VENDORED_PREFIX`)."""
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
