"""Engrave a symbolic score into an MSMD-style unrolled sheet with notehead coordinates.

MSMD's score-following format stores, per piece, a ``sheet`` of 200 rows in which every staff
system of every page has been cut out (±100 px around its vertical centre) and concatenated left
to right, the ``coords`` (row, col) of every notehead in that sheet, and ``coord2onset``, which
maps each notehead to a note of the piece's time-sorted MIDI note list.

:func:`engrave` produces the same for any score verovio can read (MusicXML, MEI, Humdrum, ABC):

1. verovio lays the score out on pages with MSMD's proportions (835 × 1181 px) and MSMD's
   staff-line spacing (7 px at 835 px page width: LilyPond's 20 pt staff on an A4 page);
2. each page is rendered to SVG and rasterized with skia;
3. the SVG is parsed for the staff systems (their staff lines give the vertical centre and the
   horizontal extent) and for every note's notehead glyph (its centre, from the glyph's bounding
   box in verovio's font metrics);
4. verovio's timemap gives every note's onset and offset in seconds at the notated tempo and
   its MIDI export the pitches (matched to notes through their written pitch); tied continuation
   notes are merged into the note they are tied from (they have a notehead but no onset);
5. the systems are cut out and concatenated, and the notehead centres moved into the sheet.

Decisions worth knowing:

- Repeats are *not* expanded (verovio's ``expandNever``): the sheet is read once, left to right,
  so each notehead has exactly one onset, as MSMD's format requires.
- Grace notes are kept, with the timing verovio's MIDI export gives them (an acciaccatura takes
  its time from the following note). MSMD's own sheets annotate grace noteheads too.
- A system whose noteheads reach beyond the ±100-row cut (wide-range piano writing, many ledger lines, more
  than two staves) is cut around the middle of its staves and noteheads instead, from its page re-rendered
  at the reduced scale at which they all fit (MSMD's strip stays 200 rows): no notehead is lost. All other
  systems are cut exactly as before.
- Note ids are verovio's, seeded by the input's checksum: the same input gives the same ids.
- Neighbouring systems never bleed into a cut: verovio is asked for wide system spacing, and rows
  closer to a neighbouring system than to the cut's own system are whitened.
"""

from __future__ import annotations

import base64
import functools
import io
import os
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
import skia
import verovio

__all__ = ["EngravedScore", "engrave", "draw_alignment", "SHEET_HEIGHT"]

SHEET_HEIGHT = 200
"""Rows of the unrolled sheet: each system is cut ±100 rows around its vertical centre."""

MSMD_PAGE_WIDTH_PX = 835
MSMD_PAGE_HEIGHT_PX = 1181
MSMD_STAFF_SPACE_PX = 7.0
"""Distance between two staff lines in MSMD's sheets at 835 px page width (measured)."""
MSMD_PAGE_MARGIN_PX = 39.0
"""Left/right page margin of MSMD's pages at 835 px page width (measured)."""

# Verovio's layout unit: at scale 100, one staff space is 2 × ``unit`` (9) = 18 page units, and
# the SVG's inner viewBox counts 10 "definition" units per page unit.
_VEROVIO_PAGE_UNITS_PER_STAFF_SPACE = 18.0
_MUSIC_FONT = "Leipzig"
_SCORE_SUFFIXES = {".xml", ".musicxml", ".mxl", ".mei", ".krn", ".kern", ".abc"}

_SVG = "{http://www.w3.org/2000/svg}"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_MEI = "{http://www.music-encoding.org/ns/mei}"
_XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
_TRANSLATE_RE = re.compile(r"translate\(\s*([-\d.eE]+)[\s,]+([-\d.eE]+)\s*\)")
_SCALE_RE = re.compile(r"scale\(\s*([-\d.eE]+)(?:[\s,]+([-\d.eE]+))?\s*\)")
_ROOT_WIDTH_RE = re.compile(r'<svg[^>]*?\swidth="([\d.]+)(?:px)?"')
_PLACEHOLDER_CLASS_RE = re.compile(r'(class="[^"]*\bplaceholder\b[^"]*")')
_HORIZONTAL_LINE_RE = re.compile(
    r"^\s*M\s*([-\d.]+)[\s,]+([-\d.]+)\s*L\s*([-\d.]+)[\s,]+([-\d.]+)\s*$"
)


@dataclass
class EngravedScore:
    """A score engraved into an MSMD-style unrolled sheet, with its performance notes.

    Attributes:
        sheet: uint8 ``(200, W)``, white = 255: all systems, cut ±100 rows around their vertical
            centre and concatenated left to right.
        coords: float32 ``(N, 2)``: (row, col) of each notehead centre in ``sheet``, ordered like
            the notes they belong to (by onset, then pitch).
        note_ids: score element id (verovio / MEI ``xml:id``) of each coord's note.
        system_of_coord: int ``(N,)``: index of the system each coord lies in.
        system_bounds: int ``(S, 2)``: first and one-past-last column of each system in ``sheet``.
        notes: float64 ``(M, 3)``: onset_s, MIDI pitch, duration_s of every played note at the
            score's notated tempo, sorted by onset then pitch (tied notes merged into one).
        note_ids_of_notes: score element id of each row of ``notes``.
        coord2onset: coord index -> row in ``notes`` (MSMD's ``coord2onset``).
        pages: the rendered pages (uint8 grayscale), for debugging.
    """

    sheet: np.ndarray
    coords: np.ndarray
    note_ids: list[str]
    system_of_coord: np.ndarray
    system_bounds: np.ndarray
    notes: np.ndarray
    note_ids_of_notes: list[str]
    coord2onset: dict[int, int]
    pages: list[np.ndarray]

    def to_midi(self, tempo_ratio: float = 1.0, velocity: int = 80) -> pretty_midi.PrettyMIDI:
        """The notes as a one-instrument (acoustic grand piano) MIDI performance.

        Args:
            tempo_ratio: playback speed; > 1 is faster (onsets and durations are divided by it).
            velocity: MIDI velocity of every note.
        """
        if not tempo_ratio > 0:
            raise ValueError(f"tempo_ratio must be positive, got {tempo_ratio}")
        midi = pretty_midi.PrettyMIDI()
        piano = pretty_midi.Instrument(program=0, name="Acoustic Grand Piano")
        for onset, pitch, duration in self.notes:
            start = onset / tempo_ratio
            piano.notes.append(
                pretty_midi.Note(
                    velocity=velocity,
                    pitch=int(pitch),
                    start=float(start),
                    end=float(start + duration / tempo_ratio),
                )
            )
        midi.instruments.append(piano)
        return midi


@dataclass
class _SystemOnPage:
    """One staff system as found in a page's SVG, in page pixels."""

    page: int
    top: float  # top staff line of the first staff
    bottom: float  # bottom staff line of the last staff
    left: float
    right: float
    noteheads: dict[str, tuple[float, float]]  # note id -> (x, y) of the notehead centre

    @property
    def centre(self) -> float:
        return 0.5 * (self.top + self.bottom)


def engrave(
    score: str | Path,
    *,
    page_width_px: int = MSMD_PAGE_WIDTH_PX,
    staff_space_px: float = MSMD_STAFF_SPACE_PX,
    system_margin_px: float = 4.0,
    breaks: str = "auto",
) -> EngravedScore:
    """Engrave a score into an MSMD-style unrolled sheet with notehead coordinates and notes.

    Args:
        score: path to a MusicXML (.xml/.musicxml/.mxl), MEI, Humdrum (.krn) or ABC file, or the
            file's text content.
        page_width_px: width of the rendered pages; the page height follows MSMD's 835 × 1181.
        staff_space_px: distance between staff lines at ``page_width_px`` (MSMD: 7 px at 835 px).
        system_margin_px: white columns kept left and right of each system's staff lines.
        breaks: verovio's ``breaks`` option: ``"auto"`` (verovio fills the page width),
            ``"encoded"`` (the score's own system and page breaks), ``"smart"``, ...

    Raises:
        FileNotFoundError: ``score`` names a score file that does not exist.
        ValueError: the score cannot be parsed or has no notes.
    """
    verovio.enableLog(verovio.LOG_OFF)
    toolkit = verovio.toolkit()
    page_units_wide = round(page_width_px / staff_space_px * _VEROVIO_PAGE_UNITS_PER_STAFF_SPACE)
    px_per_page_unit = page_width_px / page_units_wide
    page_height_px = round(page_width_px * MSMD_PAGE_HEIGHT_PX / MSMD_PAGE_WIDTH_PX)
    margin_units = round(MSMD_PAGE_MARGIN_PX / MSMD_PAGE_WIDTH_PX * page_units_wide)
    toolkit.setOptions(
        {
            "pageWidth": page_units_wide,
            "pageHeight": round(page_height_px / px_per_page_unit),
            "scale": 100,
            "pageMarginLeft": margin_units,
            "pageMarginRight": margin_units,
            "pageMarginTop": margin_units,
            "pageMarginBottom": margin_units,
            "header": "none",
            "footer": "none",
            "breaks": breaks,
            # 24 MEI units = 12 staff spaces (84 px) at least between systems, so that the ±100
            # row cut of even a one-staff system stays clear of its neighbours.
            "spacingSystem": 24,
            # Slightly heavier lines than verovio's defaults: at 7 px per staff space its
            # 0.5 px staff lines fade into grey, while MSMD's (LilyPond) lines are ~1 px dark.
            "staffLineWidth": 0.3,
            "stemWidth": 0.25,
            "ledgerLineThickness": 0.3,
            "barLineWidth": 0.35,
            "font": _MUSIC_FONT,
            # Read repeats once: each notehead must have exactly one onset.
            "expandNever": True,
            # Element ids derived from the input's checksum: the same score, the same ids.
            "xmlIdChecksum": True,
        }
    )
    name = _load_score(toolkit, score)
    note_ids, notes = _performed_notes(toolkit, name)

    page_count = toolkit.getPageCount()
    if page_count < 1:
        raise ValueError(f"{name}: verovio produced no pages; is this a score?")
    glyph_boxes = _notehead_glyph_boxes(toolkit.getResourcePath())
    pages: list[np.ndarray] = []
    svgs: list[str] = []
    systems: list[_SystemOnPage] = []
    for page_number in range(1, page_count + 1):
        svg = toolkit.renderToSVG(page_number)
        svgs.append(svg)
        pages.append(_rasterize(svg, page_width_px, page_height_px))
        systems.extend(_parse_page(svg, page_number - 1, page_width_px, glyph_boxes))
    if not systems:
        raise ValueError(f"{name}: verovio engraved no staff systems (no staves in the score?)")

    @functools.lru_cache(maxsize=None)
    def page_at_scale(page: int, scale: float) -> np.ndarray:
        return pages[page] if scale == 1.0 else _rasterize(svgs[page], page_width_px, page_height_px, scale)

    sheet, system_bounds, cut_origins, cut_scales = _unroll(page_at_scale, systems, system_margin_px, staff_space_px)

    # Noteheads, in note order (onset, then pitch), moved into the unrolled sheet.
    system_of_note_id = {nid: k for k, system in enumerate(systems) for nid in system.noteheads}
    coords: list[tuple[float, float]] = []
    coord_note_ids: list[str] = []
    system_of_coord: list[int] = []
    coord2onset: dict[int, int] = {}
    outside = 0
    for row, nid in enumerate(note_ids):
        k = system_of_note_id.get(nid)
        if k is None:
            continue  # played but not drawn (e.g. an invisible note)
        x, y = systems[k].noteheads[nid]
        sheet_row = y * cut_scales[k] - cut_origins[k, 0]
        sheet_col = x * cut_scales[k] - cut_origins[k, 1] + system_bounds[k, 0]
        if not (0 <= sheet_row < SHEET_HEIGHT and 0 <= sheet_col < sheet.shape[1]):
            outside += 1
            continue
        coord2onset[len(coords)] = row
        coords.append((sheet_row, sheet_col))
        coord_note_ids.append(nid)
        system_of_coord.append(k)
    if outside:
        warnings.warn(
            f"{name}: {outside} noteheads fall outside the {SHEET_HEIGHT}-row cut of their system; "
            "they have no coords",
            stacklevel=2,
        )
    if not coords:
        raise ValueError(f"{name}: no notehead of a played note could be located in the engraving")

    return EngravedScore(
        sheet=sheet,
        coords=np.asarray(coords, dtype=np.float32),
        note_ids=coord_note_ids,
        system_of_coord=np.asarray(system_of_coord, dtype=np.int64),
        system_bounds=system_bounds,
        notes=notes,
        note_ids_of_notes=note_ids,
        coord2onset=coord2onset,
        pages=pages,
    )


def draw_alignment(engraved: EngravedScore, radius: int = 3) -> np.ndarray:
    """Debug view: the sheet in RGB with every coord drawn as a dot, coloured by system.

    System boundaries are drawn as thin grey vertical lines.
    """
    import cv2  # only needed for this debug view

    palette = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180)]
    image = np.repeat(engraved.sheet[:, :, None], 3, axis=2).copy()
    for start, _ in engraved.system_bounds:
        image[:, max(int(start) - 1, 0)] = (160, 160, 160)
    for (row, col), k in zip(engraved.coords, engraved.system_of_coord):
        cv2.circle(
            image, (round(float(col)), round(float(row))), radius, palette[k % len(palette)], -1
        )
    return image


# --------------------------------------------------------------------------------------------
# Loading


def _load_score(toolkit: verovio.toolkit, score: str | Path) -> str:
    """Load ``score`` (a path or the text of a score) into ``toolkit``; return a name for errors."""
    if isinstance(score, Path) or _looks_like_path(score):
        path = Path(score)
        if not path.is_file():
            raise FileNotFoundError(f"score file not found: {path}")
        name = str(path)
        # loadFile also unpacks compressed MusicXML (.mxl)
        loaded = toolkit.loadFile(str(path))
    else:
        name = "<score text>"
        if not score.strip():
            raise ValueError(f"{name}: the score text is empty")
        loaded = toolkit.loadData(score)
    if not loaded:
        raise ValueError(f"{name}: verovio could not parse the score")
    return name


def _looks_like_path(score: str) -> bool:
    if "\n" in score or "<" in score or len(score) > 4096:
        return False
    return Path(score).suffix.lower() in _SCORE_SUFFIXES or os.path.exists(score)


# --------------------------------------------------------------------------------------------
# Rendering and SVG parsing


def _rasterize(svg: str, width_px: int, height_px: int, scale: float = 1.0) -> np.ndarray:
    """Render one verovio SVG page to a uint8 grayscale image of ``width_px`` × ``height_px``, or reduced
    by ``scale`` (a page pixel (row, col) lands on (row·scale, col·scale))."""
    svg = _inline_verovio_css(svg)
    # copyData: the stream must not point into a bytes object Python may free meanwhile.
    dom = skia.SVGDOM.MakeFromStream(skia.MemoryStream(svg.encode(), copyData=True))
    if dom is None:
        raise ValueError("skia could not parse the SVG verovio produced")
    svg_width = float(_ROOT_WIDTH_RE.search(svg).group(1))
    surface = skia.Surface(int(np.ceil(width_px * scale)), int(np.ceil(height_px * scale)))
    with surface as canvas:
        canvas.clear(skia.ColorWHITE)
        canvas.scale(width_px * scale / svg_width, width_px * scale / svg_width)
        dom.render(canvas)
    rgba = surface.makeImageSnapshot().toarray()
    # Verovio draws in black only, so any colour channel is the gray level.
    return np.ascontiguousarray(rgba[:, :, 1])


def _inline_verovio_css(svg: str) -> str:
    """Turn the rules of verovio's <style> block that matter into presentation attributes.

    Skia's SVG renderer ignores <style>: without this, staff lines, stems and barlines (stroked
    through ``path {stroke: currentColor}``) vanish and hidden placeholders (``g.placeholder
    {visibility: hidden}``) show up as dots.
    """
    svg = svg.replace(
        '<svg class="definition-scale"', '<svg stroke="currentColor" class="definition-scale"', 1
    )
    return _PLACEHOLDER_CLASS_RE.sub(r'\1 visibility="hidden"', svg)


@functools.lru_cache(maxsize=4)
def _notehead_glyph_boxes(resource_path: str) -> dict[str, tuple[float, float, float, float]]:
    """Bounding boxes (x, y, w, h; font units, y up) of the music font's glyphs, by SMuFL code."""
    tree = ET.parse(os.path.join(resource_path, f"{_MUSIC_FONT}.xml"))
    units_per_em = float(tree.getroot().get("units-per-em", "1000"))
    # Verovio draws glyphs with scale(k) where k maps 1000 font units to its em; normalise to it.
    norm = 1000.0 / units_per_em
    boxes = {}
    for glyph in tree.getroot().iter("g"):
        code = glyph.get("c")
        if code:
            boxes[code] = tuple(norm * float(glyph.get(key, "0")) for key in ("x", "y", "w", "h"))
    return boxes


def _classes(element: ET.Element) -> list[str]:
    return (element.get("class") or "").split()


def _parse_page(
    svg: str,
    page_index: int,
    page_width_px: int,
    glyph_boxes: dict[str, tuple[float, float, float, float]],
) -> list[_SystemOnPage]:
    """Find the systems of one SVG page and the notehead centres of their notes, in pixels."""
    root = ET.fromstring(svg)
    inner = next(el for el in root.iter(f"{_SVG}svg") if "definition-scale" in _classes(el))
    viewbox_width = float(inner.get("viewBox").split()[2])
    px = page_width_px / viewbox_width  # pixels per SVG definition unit
    margin = next(el for el in inner.iter(f"{_SVG}g") if "page-margin" in _classes(el))
    offset_x, offset_y = (float(v) for v in _TRANSLATE_RE.search(margin.get("transform")).groups())

    systems = []
    for system in margin.iter(f"{_SVG}g"):
        if "system" not in _classes(system):
            continue
        line_ys: list[float] = []
        line_xs: list[float] = []
        for staff in system.iter(f"{_SVG}g"):
            if "staff" not in _classes(staff):
                continue
            for path in staff.findall(f"{_SVG}path"):
                match = _HORIZONTAL_LINE_RE.match(path.get("d", ""))
                if match and match.group(2) == match.group(4):
                    x1, y, x2, _ = (float(v) for v in match.groups())
                    line_ys.append(y)
                    line_xs.extend((x1, x2))
        if not line_ys:
            continue  # a system without staff lines has nothing to follow
        # The brace/bracket and the system's opening barline sit left of the staff lines.
        for child in system.iter(f"{_SVG}g"):
            if "grpSym" in _classes(child):
                for use in child.iter(f"{_SVG}use"):
                    line_xs.append(float(_TRANSLATE_RE.search(use.get("transform")).group(1)))
        noteheads = {}
        for note in system.iter(f"{_SVG}g"):
            if "note" not in _classes(note):
                continue
            centre = _notehead_centre(note, glyph_boxes)
            if centre is not None:
                noteheads[note.get("id")] = (
                    (centre[0] + offset_x) * px,
                    (centre[1] + offset_y) * px,
                )
        systems.append(
            _SystemOnPage(
                page=page_index,
                top=(min(line_ys) + offset_y) * px,
                bottom=(max(line_ys) + offset_y) * px,
                left=(min(line_xs) + offset_x) * px,
                right=(max(line_xs) + offset_x) * px,
                noteheads=noteheads,
            )
        )
    return systems


def _notehead_centre(
    note: ET.Element, glyph_boxes: dict[str, tuple[float, float, float, float]]
) -> tuple[float, float] | None:
    """Centre of a note's notehead glyph in SVG definition units, or None if it has none."""
    head = next((g for g in note.iter(f"{_SVG}g") if "notehead" in _classes(g)), None)
    if head is None:
        return None
    use = head.find(f"{_SVG}use")
    if use is None:
        return None
    transform = use.get("transform", "")
    translate = _TRANSLATE_RE.search(transform)
    if translate is None:
        return None
    x, y = float(translate.group(1)), float(translate.group(2))
    scale = _SCALE_RE.search(transform)
    sx = float(scale.group(1)) if scale else 1.0
    sy = float(scale.group(2) or scale.group(1)) if scale else 1.0
    code = use.get(_XLINK_HREF, use.get("href", "")).lstrip("#").split("-")[0]
    # SMuFL noteheads: origin at the left edge, on the staff position (their vertical centre);
    # the box of an unknown glyph defaults to that of a black notehead.
    bx, by, bw, bh = glyph_boxes.get(code, glyph_boxes.get("E0A4", (0.0, -125.0, 300.0, 250.0)))
    # Glyphs are drawn flipped (font y up, SVG y down).
    return x + sx * (bx + 0.5 * bw), y - sy * (by + 0.5 * bh)


# --------------------------------------------------------------------------------------------
# Timing and pitch

_PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ACCID_SEMITONES = {
    "s": 1, "f": -1, "ss": 2, "x": 2, "ff": -2, "xs": 3, "sx": 3, "ts": 3, "tf": -3,
    "n": 0, "nf": -1, "ns": 1, "su": 1, "sd": 1, "fu": -1, "fd": -1,
}


def _performed_notes(toolkit: verovio.toolkit, name: str) -> tuple[list[str], np.ndarray]:
    """Played notes (ties merged): their ids and (onset_s, pitch, duration_s), sorted."""
    timemap = toolkit.renderToTimemap({"includeRests": False, "includeMeasures": False})
    onset_ms: dict[str, int] = {}
    offset_ms: dict[str, int] = {}
    for event in timemap:
        for nid in event.get("on", []):
            onset_ms.setdefault(nid, int(event["tstamp"]))
        for nid in event.get("off", []):
            offset_ms[nid] = int(event["tstamp"])
    if not onset_ms:
        raise ValueError(f"{name}: the score has no notes")
    mei = ET.fromstring(toolkit.getMEI())
    written = _written_pitches(mei)

    # A tied continuation is heard as part of the note it is tied from: drop its onset and
    # extend that note (following chains of ties back to the first note).
    tied_from: dict[str, str] = {}
    for start, end in _ties(mei, written):
        if start in onset_ms and end in onset_ms:
            tied_from[end] = start

    def first_of_tie(nid: str) -> str:
        seen = {nid}
        while nid in tied_from and tied_from[nid] not in seen:
            nid = tied_from[nid]
            seen.add(nid)
        return nid

    for end in tied_from:
        first = first_of_tie(end)
        if first != end:
            offset_ms[first] = max(offset_ms.get(first, 0), offset_ms.get(end, 0))

    played = [nid for nid in onset_ms if first_of_tie(nid) == nid]
    pitches = _sounding_pitches(toolkit, played, onset_ms, written)
    onset = np.array([onset_ms[nid] for nid in played], dtype=np.float64) / 1000.0
    pitch = np.array([pitches[nid] for nid in played], dtype=np.float64)
    # The floor guards against zero-length notes (a grace note verovio gives no time).
    duration = np.array(
        [max(offset_ms.get(nid, 0) - onset_ms[nid], 10) for nid in played], dtype=np.float64
    ) / 1000.0
    order = np.lexsort((pitch, onset))  # stable: by onset, then pitch
    notes = np.stack([onset, pitch, duration], axis=1)[order]
    return [played[i] for i in order], notes


def _sounding_pitches(
    toolkit: verovio.toolkit,
    played: list[str],
    onset_ms: dict[str, int],
    written: dict[str, int],
) -> dict[str, int]:
    """MIDI pitch of every played note, as verovio's MIDI export plays it.

    ``toolkit.getMIDIValuesForElement`` is exact but costs time proportional to the score per
    call (seconds for a long piece). So the pitches written in the MEI are used wherever they
    agree, onset by onset, with the multiset of pitches in verovio's MIDI export; only notes at
    onsets where they do not (transposing staves, octave lines, ...) are looked up one by one.
    """
    midi = _midi_from_base64(toolkit.renderToMIDI())
    midi_pitches_at: dict[int, list[int]] = {}
    for instrument in midi.instruments:
        for note in instrument.notes:
            midi_pitches_at.setdefault(round(note.start * 1000.0), []).append(note.pitch)
    ids_at: dict[int, list[str]] = {}
    for nid in played:
        ids_at.setdefault(onset_ms[nid], []).append(nid)

    pitches: dict[str, int] = {}
    for ms, ids in ids_at.items():
        guesses = [written.get(nid) for nid in ids]
        heard = [p for t in (ms - 1, ms, ms + 1) for p in midi_pitches_at.get(t, [])]
        if None not in guesses and sorted(guesses) == sorted(heard):
            pitches.update(zip(ids, guesses))
        else:
            for nid in ids:
                pitches[nid] = int(toolkit.getMIDIValuesForElement(nid)["pitch"])
    return pitches


def _midi_from_base64(encoded: str) -> pretty_midi.PrettyMIDI:
    """Parse verovio's base64 MIDI export."""
    with warnings.catch_warnings():
        # Verovio writes tempo events on every track, which pretty_midi warns about.
        warnings.simplefilter("ignore", RuntimeWarning)
        return pretty_midi.PrettyMIDI(io.BytesIO(base64.b64decode(encoded)))


def _written_pitches(mei: ET.Element) -> dict[str, int]:
    """MIDI pitch of each MEI note from its pitch name, octave and (gestural) accidental.

    Ignores transposition and octave lines: the caller checks the result against verovio's MIDI.
    """
    pitches = {}
    for note in mei.iter(f"{_MEI}note"):
        nid = note.get(_XML_ID)
        if note.get("pnum"):
            pitches[nid] = int(note.get("pnum"))
            continue
        pname = note.get("pname.ges") or note.get("pname")
        octave = note.get("oct.ges") or note.get("oct")
        if pname not in _PITCH_CLASS or not octave or not octave.lstrip("-").isdigit():
            continue
        accid = note.get("accid.ges") or note.get("accid")
        child = note.find(f"{_MEI}accid")
        if accid is None and child is not None:
            accid = child.get("accid.ges") or child.get("accid")
        pitches[nid] = 12 * (int(octave) + 1) + _PITCH_CLASS[pname] + _ACCID_SEMITONES.get(accid, 0)
    return pitches


def _ties(mei: ET.Element, written: dict[str, int]) -> list[tuple[str, str]]:
    """(start note id, end note id) of every tie between notes of the same written pitch.

    A tie between two chords (MEI allows it) ties each note to the note of equal pitch.
    """
    chord_members: dict[str, list[str]] = {}
    for chord in mei.iter(f"{_MEI}chord"):
        chord_members[chord.get(_XML_ID, "")] = [
            note.get(_XML_ID, "") for note in chord.iter(f"{_MEI}note")
        ]
    ties = []
    for tie in mei.iter(f"{_MEI}tie"):
        starts = _tie_ends(tie.get("startid"), chord_members)
        ends = _tie_ends(tie.get("endid"), chord_members)
        ties.extend(
            (start, end)
            for start in starts
            for end in ends
            if written.get(start) == written.get(end)
            and (written.get(start) is not None or len(starts) == len(ends) == 1)
        )
    return ties


def _tie_ends(reference: str | None, chord_members: dict[str, list[str]]) -> list[str]:
    if not reference:
        return []
    element_id = reference.lstrip("#")
    return chord_members.get(element_id, [element_id])


# --------------------------------------------------------------------------------------------
# Unrolling


def _vertical_extent(system: _SystemOnPage, pad: float) -> tuple[float, float]:
    """Top and bottom (page rows) of a system's staves and noteheads, ``pad`` beyond the outermost noteheads."""
    rows = [y for _, y in system.noteheads.values()]
    return min([system.top, *(y - pad for y in rows)]), max([system.bottom, *(y + pad for y in rows)])


def _fits_the_cut(system: _SystemOnPage) -> bool:
    """Whether every notehead centre lies inside the usual cut, ±100 rows around the system's centre."""
    top = int(round(system.centre)) - SHEET_HEIGHT // 2
    return all(0 <= y - top < SHEET_HEIGHT for _, y in system.noteheads.values())


def _unroll(
    page_at_scale, systems: list[_SystemOnPage], margin_px: float, staff_space_px: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut every system ±100 rows around its centre and concatenate them left to right.

    A system whose noteheads reach beyond that cut (ledger lines far above or below the staves) is cut around
    the middle of its staves and noteheads instead, from its page re-rendered at the reduced scale (if
    needed) at which they all fit in the 200 rows.

    ``page_at_scale(page, scale)`` renders a page. Returns the sheet, each system's (start, end) columns in
    it, each cut's (top row, left column) on its page at its scale, and that scale: sheet row = page row ·
    scale − top, sheet col = page col · scale − left + start.
    """
    half = SHEET_HEIGHT // 2
    pad = 1.5 * staff_space_px  # a whole notehead and a little paper around the outermost ones
    cuts = []
    bounds = np.zeros((len(systems), 2), dtype=np.int64)
    origins = np.zeros((len(systems), 2), dtype=np.int64)
    scales = np.ones(len(systems), dtype=np.float64)
    column = 0
    for k, system in enumerate(systems):
        neighbours = [other for other in systems[max(k - 1, 0) : k] + systems[k + 1 : k + 2] if other.page == system.page]
        above = [other for other in neighbours if other.centre < system.centre]
        below = [other for other in neighbours if other.centre >= system.centre]
        if _fits_the_cut(system):
            scale, centre = 1.0, system.centre
            # Rows nearer to a neighbouring system on the same page than to this one are whitened.
            upper = [0.5 * (other.bottom + system.top) for other in above]
            lower = [0.5 * (system.bottom + other.top) for other in below]
        else:
            low, high = _vertical_extent(system, pad)
            scale = min(1.0, (SHEET_HEIGHT - 2) / (high - low))
            centre = 0.5 * (low + high)
            # Between two systems: the paper halfway between their outermost staff lines or noteheads.
            upper = [0.5 * (_vertical_extent(other, pad)[1] + low) for other in above]
            lower = [0.5 * (high + _vertical_extent(other, pad)[0]) for other in below]
        page = page_at_scale(system.page, scale)
        height, width = page.shape
        top = int(round(centre * scale)) - half
        left = int(round((system.left - margin_px) * scale))
        right = int(round((system.right + margin_px) * scale))
        cut = np.full((SHEET_HEIGHT, right - left), 255, dtype=np.uint8)
        # Copy the part of the window that lies on the page; the rest stays white.
        row0, row1 = max(top, 0), min(top + SHEET_HEIGHT, height)
        col0, col1 = max(left, 0), min(right, width)
        cut[row0 - top : row1 - top, col0 - left : col1 - left] = page[row0:row1, col0:col1]
        for boundary in upper:
            cut[: max(int(np.ceil(boundary * scale)) - top, 0)] = 255
        for boundary in lower:
            cut[max(int(np.floor(boundary * scale)) - top, 0) :] = 255
        cuts.append(cut)
        bounds[k] = (column, column + cut.shape[1])
        origins[k] = (top, left)
        scales[k] = scale
        column += cut.shape[1]
    return np.concatenate(cuts, axis=1), bounds, origins, scales
