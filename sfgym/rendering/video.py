"""Writing rendered frames to an mp4, and muxing the performance's audio into it.

Frames are encoded by OpenCV (``mp4v``, MPEG-4 part 2, which OpenCV's bundled FFmpeg always has) into a
temporary file next to the output. The audio is then muxed in by an ``ffmpeg`` executable: the one on
``PATH``, else the one the ``imageio-ffmpeg`` package ships (``pip install imageio-ffmpeg``). Without
either, the video stays silent and :func:`write_video_with_audio` says so. The finished file replaces the
output atomically (``os.replace``), so a reader never sees half a video.

The audio is the performance's own recording (``performance/<piece>.wav``) if present, else its MIDI
synthesized with the dataset's default soundfont (:func:`sfgym.data.audio.performance_audio`).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np

from sfgym.files import temporary_path_beside


def find_ffmpeg() -> str | None:
    """Path of an ffmpeg executable: ``ffmpeg`` on PATH, else imageio-ffmpeg's; ``None`` if neither."""
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the package is there but its binary is not (unsupported platform)
        return None


class VideoWriter:
    """Append RGB frames to an mp4 file (OpenCV, ``mp4v``).

    Args:
        path: the mp4 to write.
        fps: frames per second.
        size: ``(width, height)`` of every frame.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.frames_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), self.size)
        if not self._writer.isOpened():
            raise ValueError(f"{self.path}: OpenCV cannot open an mp4 video writer here (is the folder writable?)")

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[:2] != (self.size[1], self.size[0]):
            raise ValueError(f"frame of shape {rgb.shape} does not match the video size {self.size}")
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def close(self) -> None:
        self._writer.release()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@functools.lru_cache(maxsize=4)
def _has_encoder(ffmpeg: str, encoder: str) -> bool:
    result = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True)
    return result.returncode == 0 and any(line.split()[1:2] == [encoder] for line in result.stdout.splitlines())


def mux_audio(video: str | Path, audio_wav: str | Path, out: str | Path, ffmpeg: str) -> None:
    """Write ``video`` with ``audio_wav`` (AAC) into ``out``, cut to the shorter of the two.

    The video is re-encoded to H.264 when this ffmpeg has libx264 (about ten times smaller than OpenCV's
    ``mp4v`` and playable in browsers), else copied as it is.

    Raises:
        RuntimeError: ffmpeg failed (its last output lines are in the message).
    """
    video_codec = (["-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p"]
                   if _has_encoder(ffmpeg, "libx264") else ["-c:v", "copy"])
    command = [ffmpeg, "-y", "-loglevel", "error", "-i", str(video), "-i", str(audio_wav),
               "-map", "0:v:0", "-map", "1:a:0", *video_codec, "-c:a", "aac", "-b:a", "128k",
               "-shortest", "-f", "mp4", str(out)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg could not mux {audio_wav} into {video}: {result.stderr.strip()[-500:]}")


def finish_video(silent_video: Path, out: str | Path, audio: tuple[np.ndarray, int] | None,
                 start_s: float = 0.0) -> str:
    """Mux ``audio`` (samples, rate; from ``start_s`` on) into ``silent_video`` and move the result to ``out``.

    Returns a one-line account of what was written (with audio, or silent and why). ``silent_video``
    is consumed either way.
    """
    import soundfile

    out = Path(out)
    if audio is None:
        os.replace(silent_video, out)
        return f"{out}: silent video (no audio given)"
    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        os.replace(silent_video, out)
        return (f"{out}: SILENT video: no audio muxer found (install ffmpeg, or 'pip install imageio-ffmpeg', "
                "to get the performance's audio in the video)")
    samples, sample_rate = audio
    wav = temporary_path_beside(out, ".wav")
    muxed = temporary_path_beside(out, ".mp4")
    try:
        first = int(round(start_s * sample_rate))
        soundfile.write(str(wav), np.asarray(samples[first:], dtype=np.float32), int(sample_rate), subtype="PCM_16")
        mux_audio(silent_video, wav, muxed, ffmpeg)
        os.replace(muxed, out)
    except BaseException:
        muxed.unlink(missing_ok=True)
        raise
    finally:
        wav.unlink(missing_ok=True)
        silent_video.unlink(missing_ok=True)
    return f"{out}: video with audio (muxed by {ffmpeg})"


__all__ = ["VideoWriter", "find_ffmpeg", "finish_video", "mux_audio"]
