"""Keeping a session (``sfgym follow --record DIR``): the audio as heard, the positions, the page turns, the score.

``DIR`` holds, once the session ends (it is written beside, as ``.DIR.partial``, and renamed: a directory
that exists is complete):

- ``take.wav``: the audio exactly as the follower heard it (mono, 16-bit, at the input's rate);
- ``positions.csv``: :func:`~sfgym.live.engine.write_positions_csv` of every step;
- ``page_turns.csv``: ``frame, time_s, from_system, to_system, latency_ms`` (systems from 1);
- ``score.<suffix>``: a copy of the score followed.

A musician's own take then becomes a piece of an evaluation set::

    sfgym data import --score DIR/score.musicxml --performance DIR/take.wav --out my_eval
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from sfgym.data.piece import FPS
from sfgym.live.engine import LiveReport, write_positions_csv
from sfgym.live.sources import AudioSource


@dataclass
class TappedSource:
    """``source`` whose every block is also handed to ``on_block`` before it is followed."""

    source: AudioSource
    on_block: Callable[[np.ndarray], None]

    @property
    def sample_rate(self) -> int:
        return self.source.sample_rate

    def blocks(self) -> Iterator[np.ndarray]:
        for block in self.source.blocks():
            self.on_block(block)
            yield block


class SessionRecorder:
    """Writes one session into ``directory`` (which must not exist yet), atomically.

    Args:
        directory: where the session goes.
        score_file: the score followed (copied as ``score<suffix>``).
        sample_rate: the audio's rate.
    """

    def __init__(self, directory: str | Path, score_file: str | Path, sample_rate: int):
        self.directory = Path(directory)
        if self.directory.exists():
            raise ValueError(f"--record {self.directory} exists: give a new directory for the session")
        self.score_file = Path(score_file)
        self._partial = self.directory.with_name(f".{self.directory.name}.partial")
        shutil.rmtree(self._partial, ignore_errors=True)
        self._partial.mkdir(parents=True)
        self._audio = soundfile.SoundFile(str(self._partial / "take.wav"), mode="w", samplerate=int(sample_rate),
                                          channels=1, subtype="PCM_16")

    def heard(self, block: np.ndarray) -> None:
        """Add a block of the audio as it arrived (float in [-1, 1] or integer PCM)."""
        block = np.asarray(block)
        if np.issubdtype(block.dtype, np.integer):
            block = block.astype(np.float32) / np.iinfo(block.dtype).max
        self._audio.write(np.clip(block, -1.0, 1.0))

    def listen(self, source: AudioSource) -> TappedSource:
        """``source``, with its blocks recorded as they are followed."""
        return TappedSource(source, self.heard)

    def finish(self, report: LiveReport) -> Path:
        """Write the positions, turns and score, and move the session into place; return its directory."""
        self._audio.close()
        write_positions_csv(self._partial / "positions.csv", report.steps)
        lines = ["frame,time_s,from_system,to_system,latency_ms"]
        lines += [f"{e.frame},{e.frame / FPS:.2f},{e.from_system + 1},{e.to_system + 1},{e.latency_ms:.2f}"
                  for e in report.events]
        (self._partial / "page_turns.csv").write_text("\n".join(lines) + "\n")
        shutil.copyfile(self.score_file, self._partial / f"score{''.join(self.score_file.suffixes[-1:])}")
        self._partial.rename(self.directory)
        return self.directory

    def abandon(self) -> None:
        """Drop the partial session (the run failed)."""
        if not self._audio.closed:
            self._audio.close()
        shutil.rmtree(self._partial, ignore_errors=True)


__all__ = ["SessionRecorder", "TappedSource"]
