"""Tests for sfgym.data.engrave: a tiny score engraved into an MSMD-style unrolled sheet."""

from __future__ import annotations

import numpy as np
import pytest

from sfgym.data.engrave import SHEET_HEIGHT, EngravedScore, draw_alignment, engrave

# 4/4 at quarter = 60 (one beat per second). Measure 1: C4, chord E4+G4, a rest, A4 tied into
# measure 2, which starts a new system: A4 (half, the tied continuation), D5, F5.
TINY_MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">
  <part-list><score-part id="P1"><part-name>Piano</part-name></score-part></part-list>
  <part id="P1">
    <measure number="1">
      <attributes><divisions>1</divisions><key><fifths>0</fifths></key>
        <time><beats>4</beats><beat-type>4</beat-type></time>
        <clef><sign>G</sign><line>2</line></clef></attributes>
      <direction placement="above"><direction-type><metronome><beat-unit>quarter</beat-unit>
        <per-minute>60</per-minute></metronome></direction-type><sound tempo="60"/></direction>
      <note><pitch><step>C</step><octave>4</octave></pitch><duration>1</duration>
        <type>quarter</type></note>
      <note><pitch><step>E</step><octave>4</octave></pitch><duration>1</duration>
        <type>quarter</type></note>
      <note><chord/><pitch><step>G</step><octave>4</octave></pitch><duration>1</duration>
        <type>quarter</type></note>
      <note><rest/><duration>1</duration><type>quarter</type></note>
      <note><pitch><step>A</step><octave>4</octave></pitch><duration>1</duration>
        <tie type="start"/><type>quarter</type><notations><tied type="start"/></notations></note>
    </measure>
    <measure number="2">
      <print new-system="yes"/>
      <note><pitch><step>A</step><octave>4</octave></pitch><duration>2</duration>
        <tie type="stop"/><type>half</type><notations><tied type="stop"/></notations></note>
      <note><pitch><step>D</step><octave>5</octave></pitch><duration>1</duration>
        <type>quarter</type></note>
      <note><pitch><step>F</step><octave>5</octave></pitch><duration>1</duration>
        <type>quarter</type></note>
    </measure>
  </part>
</score-partwise>
"""

# (onset_s, pitch, duration_s) of the played notes: the tied A4 lasts 1 + 2 beats.
EXPECTED_NOTES = [(0, 60, 1), (1, 64, 1), (1, 67, 1), (3, 69, 3), (6, 74, 1), (7, 77, 1)]


@pytest.fixture(scope="module")
def tiny() -> EngravedScore:
    # "encoded" breaks honour the <print new-system="yes"/>, giving two systems.
    return engrave(TINY_MUSICXML, breaks="encoded")


def test_sheet_is_msmd_shaped(tiny: EngravedScore) -> None:
    assert tiny.sheet.dtype == np.uint8
    assert tiny.sheet.ndim == 2 and tiny.sheet.shape[0] == SHEET_HEIGHT == 200
    assert tiny.sheet.max() == 255 and tiny.sheet.min() < 64  # white paper, black ink
    assert tiny.coords.dtype == np.float32 and tiny.coords.shape == (len(tiny.note_ids), 2)
    rows, cols = tiny.coords[:, 0], tiny.coords[:, 1]
    assert np.all((rows >= 0) & (rows < SHEET_HEIGHT))
    assert np.all((cols >= 0) & (cols < tiny.sheet.shape[1]))
    assert tiny.pages and tiny.pages[0].shape == (1181, 835)


def test_notes_merge_ties_and_share_chord_onsets(tiny: EngravedScore) -> None:
    assert tiny.notes.dtype == np.float64
    np.testing.assert_allclose(tiny.notes, np.array(EXPECTED_NOTES, dtype=float), atol=2e-3)
    assert len(tiny.note_ids_of_notes) == len(tiny.notes)


def test_every_coord_is_one_played_note(tiny: EngravedScore) -> None:
    # Seven noteheads are drawn; the tied continuation has no onset and gets no coord.
    assert len(tiny.coords) == len(EXPECTED_NOTES) == 6
    assert sorted(tiny.coord2onset) == list(range(len(tiny.coords)))
    assert sorted(tiny.coord2onset.values()) == list(range(len(tiny.notes)))
    for coord, row in tiny.coord2onset.items():
        assert tiny.note_ids[coord] == tiny.note_ids_of_notes[row]


def test_coords_sit_on_noteheads(tiny: EngravedScore) -> None:
    # All played noteheads here are filled (quarters): their centre pixel is ink.
    for row, col in tiny.coords:
        assert tiny.sheet[int(row), int(col)] < 100, (row, col)
    # Higher pitch -> higher on the staff (smaller row), within a system.
    pitches = tiny.notes[[tiny.coord2onset[c] for c in range(len(tiny.coords))], 1]
    first = tiny.system_of_coord == 0
    order = np.argsort(pitches[first])
    assert np.all(np.diff(tiny.coords[first, 0][order]) < 0)


def test_systems_and_time_order(tiny: EngravedScore) -> None:
    assert tiny.system_bounds.shape == (2, 2)
    assert tiny.system_bounds[0, 0] == 0
    assert tiny.system_bounds[0, 1] == tiny.system_bounds[1, 0]
    assert tiny.system_bounds[1, 1] == tiny.sheet.shape[1]
    np.testing.assert_array_equal(tiny.system_of_coord, [0, 0, 0, 0, 1, 1])
    onsets = tiny.notes[[tiny.coord2onset[c] for c in range(len(tiny.coords))], 0]
    for k, (start, end) in enumerate(tiny.system_bounds):
        in_system = tiny.system_of_coord == k
        assert np.all((tiny.coords[in_system, 1] >= start) & (tiny.coords[in_system, 1] < end))
        cols, times = tiny.coords[in_system, 1], onsets[in_system]
        later = times[:, None] > times[None, :]
        assert np.all((cols[:, None] > cols[None, :])[later])  # later onset -> further right
    # The chord's two noteheads are stacked: same column.
    chord = [c for c in range(len(tiny.coords)) if onsets[c] == 1.0]
    assert len(chord) == 2
    assert abs(tiny.coords[chord[0], 1] - tiny.coords[chord[1], 1]) < 1.0


def test_to_midi_tempo_ratio(tiny: EngravedScore) -> None:
    normal = tiny.to_midi()
    fast = tiny.to_midi(tempo_ratio=2.0)
    assert len(fast.instruments) == 1 and fast.instruments[0].program == 0
    notes = sorted(fast.instruments[0].notes, key=lambda n: (n.start, n.pitch))
    np.testing.assert_allclose([n.start for n in notes], tiny.notes[:, 0] / 2, atol=5e-3)
    np.testing.assert_allclose([n.end - n.start for n in notes], tiny.notes[:, 2] / 2, atol=5e-3)
    assert [n.pitch for n in notes] == [int(p) for p in tiny.notes[:, 1]]
    assert fast.get_end_time() == pytest.approx(normal.get_end_time() / 2, abs=5e-3)
    with pytest.raises(ValueError):
        tiny.to_midi(tempo_ratio=0)


def test_file_input_and_abc(tmp_path) -> None:
    path = tmp_path / "tiny.musicxml"
    path.write_text(TINY_MUSICXML)
    from_file = engrave(path, breaks="encoded")
    np.testing.assert_allclose(from_file.notes, np.array(EXPECTED_NOTES, dtype=float), atol=2e-3)
    # The same music as ABC text (Q: sets the tempo; without it verovio plays 120 per minute).
    abc = "X:1\nT:tiny\nM:4/4\nL:1/4\nQ:1/4=60\nK:C\nC [EG] z A- | A2 d f |]\n"
    from_abc = engrave(abc)
    np.testing.assert_allclose(from_abc.notes, np.array(EXPECTED_NOTES, dtype=float), atol=2e-3)
    assert len(from_abc.coords) == 6


def test_draw_alignment_marks_coords(tiny: EngravedScore) -> None:
    image = draw_alignment(tiny)
    assert image.shape == (*tiny.sheet.shape, 3) and image.dtype == np.uint8
    row, col = (int(round(v)) for v in tiny.coords[0])
    red, green, blue = (int(v) for v in image[row, col])
    assert max(red, green, blue) - min(red, green, blue) > 50  # coloured, not gray


def test_bad_input_raises(tmp_path) -> None:
    broken = tmp_path / "broken.musicxml"
    broken.write_text('<?xml version="1.0"?>\n<score-partwise><part-list>')
    with pytest.raises(ValueError, match="broken.musicxml"):
        engrave(broken)
    with pytest.raises(ValueError, match="parse"):
        engrave("this is\nnot a score")
    only_rest = TINY_MUSICXML.split("<measure number=\"1\">")[0] + (
        '<measure number="1"><attributes><divisions>1</divisions></attributes>'
        "<note><rest/><duration>4</duration></note></measure></part></score-partwise>"
    )
    with pytest.raises(ValueError, match="no notes"):
        engrave(only_rest)
    with pytest.raises(FileNotFoundError):
        engrave(tmp_path / "missing.krn")


# A grand staff reaching C8 and A0 (many ledger lines above and below): taller than the 200-row cut.
WIDE_MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">
  <part-list><score-part id="P1"><part-name>Piano</part-name></score-part></part-list>
  <part id="P1">
    <measure number="1">
      <attributes><divisions>1</divisions><key><fifths>0</fifths></key>
        <time><beats>4</beats><beat-type>4</beat-type></time><staves>2</staves>
        <clef number="1"><sign>G</sign><line>2</line></clef><clef number="2"><sign>F</sign><line>4</line></clef></attributes>
      <note><pitch><step>C</step><octave>8</octave></pitch><duration>1</duration><type>quarter</type><staff>1</staff></note>
      <note><pitch><step>E</step><octave>5</octave></pitch><duration>1</duration><type>quarter</type><staff>1</staff></note>
      <note><pitch><step>A</step><octave>7</octave></pitch><duration>1</duration><type>quarter</type><staff>1</staff></note>
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>1</duration><type>quarter</type><staff>1</staff></note>
      <backup><duration>4</duration></backup>
      <note><pitch><step>A</step><octave>0</octave></pitch><duration>1</duration><type>quarter</type><staff>2</staff></note>
      <note><pitch><step>C</step><octave>3</octave></pitch><duration>1</duration><type>quarter</type><staff>2</staff></note>
      <note><pitch><step>C</step><octave>1</octave></pitch><duration>1</duration><type>quarter</type><staff>2</staff></note>
      <note><pitch><step>G</step><octave>2</octave></pitch><duration>1</duration><type>quarter</type><staff>2</staff></note>
    </measure>
    <measure number="2">
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>4</duration><type>whole</type><staff>1</staff></note>
      <backup><duration>4</duration></backup>
      <note><pitch><step>C</step><octave>3</octave></pitch><duration>4</duration><type>whole</type><staff>2</staff></note>
    </measure>
  </part>
</score-partwise>
"""


def test_a_system_taller_than_the_cut_keeps_every_notehead(recwarn) -> None:
    wide = engrave(WIDE_MUSICXML)
    assert not [w for w in recwarn if "fall outside" in str(w.message)]
    assert wide.sheet.shape[0] == SHEET_HEIGHT
    assert len(wide.coords) == len(wide.notes) == 10  # C8 and A0 included
    rows = wide.coords[:, 0]
    assert rows.min() >= 0 and rows.max() < SHEET_HEIGHT
    pitches = wide.notes[[wide.coord2onset[c] for c in range(len(wide.coords))], 1]
    assert rows[pitches == 108][0] < 20 and rows[pitches == 21][0] > 180  # far above and far below
    for (row, col), pitch in zip(wide.coords, pitches):
        if pitch not in (72, 48):  # the whole notes are hollow; the quarters' centres are ink
            assert wide.sheet[int(row), int(col)] < 100, (row, col, pitch)
