"""Reading MIDI files with pretty_midi, shared by the MSMD reader and the synthesizer (neither imports the other)."""

from __future__ import annotations

import warnings


def parse_midi(source):
    """``pretty_midi.PrettyMIDI(source)`` (a path or a file object), quiet about tempo events on other tracks.

    MSMD's MIDIs (and verovio's) keep tempo events on every track; pretty_midi warns but reads them right.
    """
    import pretty_midi

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tempo, Key or Time signature change events", category=RuntimeWarning)
        return pretty_midi.PrettyMIDI(source)


__all__ = ["parse_midi"]
