"""Tiny MusicXML scores written inline, for tests that engrave, build or import."""

from __future__ import annotations

STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def _note(note_id: str, pitch: str, duration: int, chord: bool = False) -> str:
    step, octave = pitch[0], pitch[-1]
    alter = "<alter>1</alter>" if "#" in pitch else ""
    kind = {1: "eighth", 2: "quarter", 4: "half", 8: "whole"}[duration]
    return (f'<note id="{note_id}">{"<chord/>" if chord else ""}<pitch><step>{step}</step>{alter}'
            f"<octave>{octave}</octave></pitch><duration>{duration}</duration><type>{kind}</type></note>")


def melody_musicxml(pitches: list[str], *, tempo_bpm: int = 120, chord_every: int = 0, title: str = "test") -> str:
    """A one-staff melody of quarter notes in 4/4 (ids n0, n1, ...); every ``chord_every``-th note gets a
    third above it (id ``nKc``)."""
    measures, notes = [], []
    for i, pitch in enumerate(pitches):
        notes.append(_note(f"n{i}", pitch, 2))
        if chord_every and i % chord_every == 0:
            upper = pitch[0]
            up_step = "CDEFGAB"[("CDEFGAB".index(upper) + 2) % 7]
            octave = int(pitch[-1]) + (1 if "CDEFGAB".index(upper) >= 5 else 0)
            notes.append(_note(f"n{i}c", f"{up_step}{octave}", 2, chord=True))
        if (i + 1) % 4 == 0 or i == len(pitches) - 1:
            number = len(measures) + 1
            attributes = ("<attributes><divisions>2</divisions><key><fifths>0</fifths></key><time><beats>4</beats>"
                          "<beat-type>4</beat-type></time><clef><sign>G</sign><line>2</line></clef></attributes>"
                          f'<direction placement="above"><direction-type><metronome><beat-unit>quarter</beat-unit>'
                          f"<per-minute>{tempo_bpm}</per-minute></metronome></direction-type>"
                          f'<sound tempo="{tempo_bpm}"/></direction>') if number == 1 else ""
            measures.append(f'<measure number="{number}">{attributes}{"".join(notes)}</measure>')
            notes = []
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="4.0">'
            f"<work><work-title>{title}</work-title></work>"
            '<part-list><score-part id="P1"><part-name>Piano</part-name></score-part></part-list>'
            f'<part id="P1">{"".join(measures)}</part></score-partwise>')


SCALE = ["C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5"]
