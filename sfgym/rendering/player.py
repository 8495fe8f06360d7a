"""Playing a side-by-side session: live in a window, or frame by frame into a video.

- :func:`play_interactive`: a pygame window at ``speed`` × real time (20 frames per second of audio at
  speed 1), with the performance's audio when playing at speed 1. Keys: space pauses, → steps one
  frame while paused and seeks +5 s while playing, ← seeks −5 s, Esc / q quits.
- :func:`export_video`: every frame of the timeline in order into an mp4 (20 fps, so the video runs in
  real time), as fast as possible (``speed=0``) or paced; with a window it is shown as it is written
  (space pauses; seeking is off, the video must stay in order). Headless (``SDL_VIDEODRIVER=dummy``)
  it needs no display at all.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfgym.files import temporary_path_beside
from sfgym.rendering.session import SideBySideSession
from sfgym.rendering.video import VideoWriter, finish_video
from sfgym.rendering.view import SideBySideView, surface_rgb

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

SEEK_SECONDS = 5.0
KEYS_HINT = "space: pause   \u2192: step (paused) / +5 s   \u2190: \u22125 s   esc: quit"


def headless() -> bool:
    """Whether SDL has no real display (``SDL_VIDEODRIVER=dummy`` or ``offscreen``)."""
    return os.environ.get("SDL_VIDEODRIVER", "").lower() in ("dummy", "offscreen")


@dataclass
class ExportReport:
    """What :func:`export_video` wrote."""

    path: Path
    frames: int
    seconds: float
    message: str  # with or without audio, and why

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / max(self.frames, 1)


def _open_window(view: SideBySideView, title: str) -> pygame.Surface:
    pygame.display.init()
    pygame.display.set_caption(title)
    return pygame.display.set_mode((view.layout.width, view.layout.height))


def export_video(session: SideBySideSession, view: SideBySideView, out: str | Path, *,
                 speed: float = 0.0, audio: tuple[np.ndarray, int] | None = None, window: bool = False,
                 max_frames: int | None = None) -> ExportReport:
    """Render the session's timeline (from frame 0) into ``out`` (mp4), with ``audio`` muxed in if possible.

    Args:
        session: the followers and piece.
        view: draws each frame.
        out: the mp4 to write (replaced atomically when complete).
        speed: 0 renders as fast as it can; otherwise frames are paced at ``speed`` × real time.
        audio: ``(samples, sample_rate)`` of the performance, from time 0, or ``None`` for a silent video.
        window: also show the frames in a pygame window.
        max_frames: stop after this many frames (a short clip); default: the whole timeline.
    """
    fps = session.piece.fps
    n_frames = session.n_frames if max_frames is None else min(max_frames, session.n_frames)
    if n_frames < 1:
        raise ValueError("nothing to render: the timeline is empty")
    screen = _open_window(view, f"sfgym render: {session.piece.name}") if window else None
    silent = temporary_path_beside(out, ".mp4")
    started = time.perf_counter()
    frame = 0
    paused = False
    try:
        with VideoWriter(silent, fps, (view.layout.width, view.layout.height)) as writer:
            while frame < n_frames:
                if screen is not None:
                    for event in pygame.event.get():
                        if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE, pygame.K_q)):
                            n_frames = frame  # stop here: the video ends where the user quit
                        elif event.type == pygame.KEYDOWN and event.key == pygame.K_SPACE:
                            paused = not paused
                    if paused:
                        time.sleep(0.02)
                        started += 0.02  # keep the pacing's clock still while paused
                        continue
                    if frame >= n_frames:
                        break
                surface = view.draw(session.state(frame), status=("as fast as possible" if speed <= 0 else f"x{speed:g}"))
                writer.write(surface_rgb(surface))
                if screen is not None:
                    screen.blit(surface, (0, 0))
                    pygame.display.flip()
                frame += 1
                if speed > 0:
                    delay = started + frame / (fps * speed) - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
        elapsed = time.perf_counter() - started
        if frame == 0:
            raise ValueError("no frame was rendered")
        message = finish_video(silent, out, audio)
    finally:
        silent.unlink(missing_ok=True)
        if screen is not None:
            pygame.display.quit()
    return ExportReport(path=Path(out), frames=frame, seconds=elapsed, message=message)


class _AudioPlayback:
    """The performance's audio through pygame.mixer, restarted at the playback position on every seek.

    Silently does nothing when there is no audio or no audio device (the caller is told once).
    """

    def __init__(self, audio: tuple[np.ndarray, int] | None):
        self.available = False
        self.problem = "no audio"
        if audio is None:
            return
        samples, rate = audio
        try:
            pygame.mixer.init(frequency=int(rate), size=-16, channels=1)
            _, _, channels = pygame.mixer.get_init()
        except pygame.error as error:
            self.problem = f"no audio device ({error})"
            return
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
        self._pcm = np.repeat(pcm[:, None], channels, axis=1) if channels > 1 else pcm
        self._rate = int(rate)
        self._channel: pygame.mixer.Channel | None = None
        self.available = True

    def play_from(self, seconds: float) -> None:
        if not self.available:
            return
        self.stop()
        first = int(max(seconds, 0.0) * self._rate)
        if first < len(self._pcm):
            self._channel = pygame.sndarray.make_sound(np.ascontiguousarray(self._pcm[first:])).play()

    def stop(self) -> None:
        if self.available and self._channel is not None:
            self._channel.stop()
            self._channel = None

    def close(self) -> None:
        if self.available:
            self.stop()
            pygame.mixer.quit()


@dataclass
class Transport:
    """The playback position and its keys (kept apart from pygame so that it can be tested).

    ``position`` is in frames, fractional while playing; it stays within ``[0, last_frame]``.
    """

    last_frame: int
    fps: float
    speed: float = 1.0
    position: float = 0.0
    paused: bool = False

    @property
    def frame(self) -> int:
        return int(self.position)

    def toggle_pause(self) -> None:
        self.paused = not self.paused

    def right(self) -> None:
        """Step one frame while paused, else seek +5 s."""
        self._seek(np.floor(self.position) + 1 if self.paused else self.position + SEEK_SECONDS * self.fps)

    def left(self) -> None:
        """Seek −5 s."""
        self._seek(self.position - SEEK_SECONDS * self.fps)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of wall-clock time pass."""
        if not self.paused:
            self._seek(self.position + seconds * self.fps * self.speed)

    def _seek(self, position: float) -> None:
        self.position = float(np.clip(position, 0.0, self.last_frame))


def play_interactive(session: SideBySideSession, view: SideBySideView, *, speed: float = 1.0,
                     audio: tuple[np.ndarray, int] | None = None) -> None:
    """Show the session in a window at ``speed`` × real time, with pause, step and seek keys (see module doc)."""
    if speed <= 0:
        raise ValueError("interactive playback needs --speed > 0 (speed 0 is for video export)")
    transport = Transport(last_frame=session.end_frame, fps=session.piece.fps, speed=speed)
    screen = _open_window(view, f"sfgym render: {session.piece.name}")
    sound = _AudioPlayback(audio if speed == 1.0 else None)
    clock = pygame.time.Clock()
    sound.play_from(0.0)
    try:
        while True:
            moved = False
            for event in pygame.event.get():
                if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE, pygame.K_q)):
                    return
                if event.type != pygame.KEYDOWN:
                    continue
                if event.key == pygame.K_SPACE:
                    transport.toggle_pause()
                    moved = True
                elif event.key == pygame.K_RIGHT:
                    transport.right()
                    moved = True
                elif event.key == pygame.K_LEFT:
                    transport.left()
                    moved = True
            if moved:  # the audio follows the picture: silent while paused, restarted after a seek
                sound.stop() if transport.paused else sound.play_from(transport.position / transport.fps)
            frame = transport.frame
            status = "paused" if transport.paused else (f"x{speed:g}" if frame < transport.last_frame else "end")
            screen.blit(view.draw(session.state(frame), status=status, hint=KEYS_HINT), (0, 0))
            pygame.display.flip()
            transport.advance(clock.tick(60) / 1000.0)
    finally:
        sound.close()
        pygame.display.quit()


__all__ = ["ExportReport", "KEYS_HINT", "Transport", "export_video", "headless", "play_interactive"]
