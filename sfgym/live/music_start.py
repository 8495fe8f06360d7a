"""Waiting for the music: the follower starts when the audio is music that matches the score's opening.

Before the first note a microphone hears the room: noise, talking, a page being turned, an instrument tuned.
The −60 dBFS silence gate (:data:`sfgym.live.engine.SILENCE_DBFS`) holds the follower only on near-silence;
room noise just above it walked on-line time warping six systems ahead before a note was played.
:class:`MusicStartDetector` looks at each spectrogram frame as it arrives and says when the music began:

- *louder than the room*: the frames of the last :attr:`WaitForMusic.sustain_s` are, by their median,
  :attr:`WaitForMusic.above_room_db` louder than the room (a low percentile of the loudness of the
  :attr:`WaitForMusic.room_s` before them; in a recording's first ``room_s``, while the room is not known
  yet, louder than :attr:`WaitForMusic.unknown_room_dbfs`);
- *the score's opening*: the chroma of what those frames add to the room's spectrum (the room's own
  spectrum, a low percentile of each band over all that was heard, subtracted) correlates with the pitch
  classes of the score's first notes by at least :attr:`WaitForMusic.min_opening_match`, on every frame of a
  run :attr:`WaitForMusic.sustain_s` long.

The music's start is then the first of the loud frames that lead, without a quiet one, into that run (the
opening may match only after a few notes). Where the score gives no pitches only the
loudness test is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sfgym.data.piece import FPS
from sfgym.score.features import pitch_class_map


@dataclass(frozen=True)
class WaitForMusic:
    """When audio counts as the music beginning (see :mod:`sfgym.live.music_start`).

    Args:
        sustain_s: how long both tests must hold (the start is found this late, at most; the follower
            then catches up on the frames since the start).
        above_room_db: how much louder than the room the music is.
        min_opening_match: least correlation of the audio's chroma with the opening's pitch classes.
        room_s: how much of the audio before is the room's loudness and spectrum taken from.
        room_percentile: the percentile of that audio's loudness (and of each band) that is the room's.
        unknown_room_dbfs: until ``room_s`` of the room has been heard (a recording that starts with the
            music), the music must be at least this loud (RMS, dB full scale).
        opening_notes: how many of the score's first notes make its opening: the best match of these
            (an opening heard for ``sustain_s`` may be its first few notes or more).
    """

    sustain_s: float = 0.75
    above_room_db: float = 8.0
    min_opening_match: float = 0.55
    room_s: float = 5.0
    room_percentile: float = 20.0
    unknown_room_dbfs: float = -45.0
    opening_notes: tuple[int, ...] = (4, 8, 16)


def opening_profiles(pitches: np.ndarray | None, notes: tuple[int, ...]) -> np.ndarray | None:
    """``(len(notes), 12)``: per count in ``notes``, the pitch classes of that many first ``pitches`` (in
    onset order) with their strongest overtones (the twelfth and the seventeenth); ``None`` without pitches."""
    if pitches is None or len(pitches) == 0:
        return None
    profiles = np.zeros((len(notes), 12))
    for row, count in enumerate(notes):
        for pitch in np.asarray(pitches[:count], dtype=np.float64):
            pitch_class = int(round(pitch)) % 12
            profiles[row, pitch_class] += 1.0
            profiles[row, (pitch_class + 7) % 12] += 0.3  # third harmonic
            profiles[row, (pitch_class + 4) % 12] += 0.15  # fifth harmonic
    return profiles


def _best_correlation(chroma: np.ndarray, profiles: np.ndarray) -> float:
    """The highest correlation of ``chroma`` (12,) with a row of ``profiles``."""
    a = chroma - chroma.mean()
    b = profiles - profiles.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(b, axis=1) * np.linalg.norm(a)
    return float(np.max(np.where(norms > 0, b @ a / np.maximum(norms, 1e-12), 0.0)))


class MusicStartDetector:
    """Decides, frame by frame, whether the music has started (once started, it stays so).

    Args:
        settings: the tests' thresholds.
        opening: :func:`opening_profiles` of the score (``None``: the loudness test only).
        silence_rms: frames quieter than this (the silence gate) never count as music.
    """

    def __init__(self, settings: WaitForMusic, opening: np.ndarray | None, silence_rms: float):
        self.settings = settings
        self.opening = opening
        self.silence_rms = float(silence_rms)
        self._sustain = max(1, int(round(settings.sustain_s * FPS)))
        self._room = max(1, int(round(settings.room_s * FPS)))
        self._folding = pitch_class_map()
        self._rms: list[float] = []
        self._spectra: list[np.ndarray] = []
        self._run = 0  # frames in a row that passed both tests
        self._frames_seen = 0
        self._loud_enough = self.silence_rms  # the loudness the music must reach, given the room
        #: the first frame of the music, once found
        self.start_frame: int | None = None
        #: the frame on which the start was found (``start_frame`` + up to ``sustain_s``)
        self.found_at: int | None = None
        #: the best opening match seen (for reports)
        self.best_match = -1.0

    @property
    def started(self) -> bool:
        return self.start_frame is not None

    def add(self, spectrum: np.ndarray, rms: float) -> bool:
        """Take the next frame (its 78-bin spectrum and RMS); return whether the music has started."""
        if self.started:
            return True
        self._rms.append(float(rms))
        self._spectra.append(np.asarray(spectrum, dtype=np.float64))
        keep = self._room + self._sustain
        if len(self._rms) > keep:  # only the room's stretch and the candidate run are needed
            del self._rms[0], self._spectra[0]
        self._frames_seen += 1
        self._run = self._run + 1 if self._frame_passes() else 0
        if self._run >= self._sustain:
            self.found_at = self._frames_seen - 1
            self.start_frame = self._frames_seen - len(self._rms) + self._music_began()
        return self.started

    def _music_began(self) -> int:
        """Where, in the frames kept, the music began: the first of the loud frames that lead without a quiet
        one into the passing run (the opening may match only after its first notes)."""
        loud = np.array(self._rms) >= self._loud_enough
        first = len(loud) - self._sustain
        while first > 0 and loud[first - 1]:
            first -= 1
        while first < len(loud) - 1 and not loud[first]:  # the run itself may open on a quiet frame
            first += 1
        return first

    def _frame_passes(self) -> bool:
        """Whether the newest ``sustain_s`` of audio is louder than the room and sounds like the opening."""
        sustain, settings = self._sustain, self.settings
        recent_rms = np.array(self._rms[-sustain:])
        before_rms = np.array(self._rms[:-sustain])
        room_rms = float(np.percentile(before_rms, settings.room_percentile)) if len(before_rms) else 0.0
        self._loud_enough = max(self.silence_rms, room_rms * 10.0 ** (settings.above_room_db / 20.0))
        if len(before_rms) < self._room:  # the room is not known yet: the music must be loud
            self._loud_enough = max(self.silence_rms, 10.0 ** (settings.unknown_room_dbfs / 20.0))
        if len(recent_rms) < sustain or np.median(recent_rms) < self._loud_enough:
            return False
        if self.opening is None:
            return True
        # the room's spectrum: a low percentile of each band over all that was heard, the run included (the run
        # is too short to raise it where the room was heard before; at the very start it is all there is)
        room_spectrum = np.percentile(np.array(self._spectra), settings.room_percentile, axis=0)
        added = np.maximum(0.0, np.array(self._spectra[-sustain:]) - room_spectrum).sum(axis=0)
        match = _best_correlation(added @ self._folding, self.opening)
        self.best_match = max(self.best_match, match)
        return match >= settings.min_opening_match


__all__ = ["MusicStartDetector", "WaitForMusic", "opening_profiles"]
