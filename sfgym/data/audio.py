"""Reading audio: a user's recording, or the audio a built piece's spectrogram was computed from.

Recordings are read with libsndfile (the ``soundfile`` package), which reads WAV, FLAC, OGG (Vorbis / Opus),
MP3, AIFF and the other formats ``soundfile.available_formats()`` lists. Everything comes back mono
float32 (channels averaged), at the file's own sample rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from sfgym.data.msmd import PieceFiles
from sfgym.data.synth import available_soundfonts, synthesize_midi

AUDIO_FORMATS_HELP = ".wav/.flac/.ogg/.mp3/.aiff, or any other format libsndfile reads"
"""The audio files :func:`read_audio` reads, as the command-line help says it."""


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """The recording in ``path``: ``(mono float32 samples, sample rate)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file cannot be read as audio, or holds no samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: audio file not found")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile's errors are of several types
        raise ValueError(f"{path}: cannot read audio ({error})") from error
    if len(samples) == 0:
        raise ValueError(f"{path}: the audio file holds no samples")
    return samples.mean(axis=1), int(rate)


def performance_audio(piece_files: PieceFiles, soundfont: str | None = None) -> tuple[np.ndarray, int, str]:
    """The audio a piece's spectrogram was computed from: ``(mono float32 samples, sample rate, source)``.

    The performance's recording if the split has one, else its MIDI synthesized as the dataset builder
    does: with the soundfont named in the performance's name (``<score>@t1.10-<soundfont>``) when that
    soundfont is installed, else ``soundfont`` (default ``TimGM6mb``).
    """
    if piece_files.audio is not None:
        samples, sample_rate = soundfile.read(str(piece_files.audio), dtype="float32", always_2d=True)
        return samples.mean(axis=1), int(sample_rate), str(piece_files.audio)
    if soundfont is None:
        _, _, variant = piece_files.name.partition("@")
        named = variant.split("-", 1)[1] if "-" in variant else ""
        soundfont = named if named in available_soundfonts() else "TimGM6mb"
    sample_rate = 22050
    samples = synthesize_midi(piece_files.midi, soundfont=soundfont, sample_rate=sample_rate)
    return np.asarray(samples, dtype=np.float32), sample_rate, f"{piece_files.midi.name} synthesized with {soundfont}"


__all__ = ["AUDIO_FORMATS_HELP", "performance_audio", "read_audio"]
