"""Where live audio comes from: blocks of mono samples, in order, as they arrive.

:class:`~sfgym.live.engine.LiveFollowing` follows any :class:`AudioSource`. A sound card is one
(:class:`sfgym.live.microphone.SoundCardSource`); :class:`RecordingSource` is a recording fed *as if* it
were live, block by block at the audio's own pace (or faster), which is what ``sfgym follow`` does with a
file and what the tests and the latency benchmark measure against.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from sfgym.data.audio import read_audio

DEFAULT_BLOCK_SIZE = 512
"""Samples per block of a recording fed as if live (512 at 22.05 kHz: 23 ms, a usual sound-card buffer)."""


class AudioSource(Protocol):
    """A stream of audio: :meth:`blocks` yields mono blocks at :attr:`sample_rate`, each when it has arrived."""

    @property
    def sample_rate(self) -> int:
        """Samples per second of the blocks."""

    def blocks(self) -> Iterator[np.ndarray]:
        """The blocks, oldest first: 1-D samples (float in [-1, 1], or integer PCM), of any length."""


@dataclass
class RecordingSource:
    """A whole recording fed as if it came from a sound card.

    Args:
        samples: the recording, 1-D (float in [-1, 1] or integer PCM).
        sample_rate: its rate.
        speed: 1 yields block ``i`` when it would arrive from a sound card, 2 twice as fast, 0 at once.
        block_size: samples per block (the last block may be shorter).
        name: what the recording is (a file name), for messages.
    """

    samples: np.ndarray
    sample_rate: int
    speed: float = 1.0
    block_size: int = DEFAULT_BLOCK_SIZE
    name: str = "the recording"

    def __post_init__(self) -> None:
        self.samples = np.asarray(self.samples)
        if self.samples.ndim != 1 or len(self.samples) == 0:
            raise ValueError(f"audio must be non-empty mono samples, got shape {self.samples.shape}")
        if self.block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}")

    @classmethod
    def from_file(cls, path: str | Path, *, speed: float = 1.0,
                  block_size: int = DEFAULT_BLOCK_SIZE) -> RecordingSource:
        """The recording in ``path`` (see :func:`sfgym.data.audio.read_audio`), channels averaged."""
        samples, sample_rate = read_audio(path)
        return cls(samples, sample_rate, speed=speed, block_size=block_size, name=str(path))

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def blocks(self) -> Iterator[np.ndarray]:
        """The blocks in order; at ``speed > 0`` each is held back until its last sample would have arrived
        (the clock starts at the first request)."""
        started = time.perf_counter()
        for first in range(0, len(self.samples), self.block_size):
            end = min(first + self.block_size, len(self.samples))
            if self.speed > 0:
                delay = started + end / self.sample_rate / self.speed - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            yield self.samples[first:end]


__all__ = ["DEFAULT_BLOCK_SIZE", "AudioSource", "RecordingSource"]
