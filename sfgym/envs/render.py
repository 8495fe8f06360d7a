"""The environment's own view: its score window with the follower and the truth, its spectrogram, a few numbers.

Deliberately small (numpy + OpenCV drawing, pygame only to show a window); the side-by-side view of
several followers lives in :mod:`sfgym.rendering`.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

FOLLOWER_COLOR = (0, 102, 204)  # RGB, the reference's agent colour
TRUTH_COLOR = (220, 30, 30)
THRESHOLD_COLOR = (150, 150, 150)
TEXT_COLOR = (255, 255, 255)
SPECTROGRAM_ZOOM = 4
SPECTROGRAM_DISPLAY_MAX = 3.0  # log10(1 + 1024): the loudest value of audio in [-1, 1]
TEXT_PANEL_WIDTH = 220


def render_frame(
    score: np.ndarray,
    spectrogram: np.ndarray,
    true_offset: float,
    threshold: float,
    scale: float,
    lines: list[str],
) -> np.ndarray:
    """Compose one RGB frame (uint8, height × width × 3).

    Args:
        score: the score observation, ``(rows, columns)`` in [0, 1] with ink = 1; the follower is
            at its centre column.
        spectrogram: the spectrogram observation, ``(bins, frames)``, low frequencies first.
        true_offset: the true position minus the follower's, in ``score`` columns.
        threshold: the loss threshold in ``score`` columns (drawn as two thin lines).
        scale: zoom of the score panel (``1 / score_factor`` shows it at native resolution).
        lines: text shown beside the spectrogram.
    """
    zoom = max(1, round(scale))
    sheet = np.repeat(np.repeat(((1.0 - score) * 255).astype(np.uint8), zoom, 0), zoom, 1)
    sheet = np.ascontiguousarray(np.stack([sheet] * 3, axis=-1))
    height, width = sheet.shape[:2]
    centre = width // 2
    for offset in (-threshold, threshold):
        column = round(centre + offset * zoom)
        cv2.line(sheet, (column, 0), (column, height - 1), THRESHOLD_COLOR, 1)
    truth = round(centre + true_offset * zoom)
    cv2.line(sheet, (truth, 0), (truth, height - 1), TRUTH_COLOR, 2)
    cv2.line(sheet, (centre, 0), (centre, height - 1), FOLLOWER_COLOR, 2)

    levels = np.clip(spectrogram[::-1] / SPECTROGRAM_DISPLAY_MAX, 0.0, 1.0)
    spec = cv2.applyColorMap((levels * 255).astype(np.uint8), cv2.COLORMAP_MAGMA)[..., ::-1]  # BGR -> RGB
    spec = np.repeat(np.repeat(spec, SPECTROGRAM_ZOOM, 0), SPECTROGRAM_ZOOM, 1)

    canvas_width = max(width, spec.shape[1] + TEXT_PANEL_WIDTH)
    canvas = np.zeros((height + spec.shape[0], canvas_width, 3), dtype=np.uint8)
    canvas[:height, :width] = sheet
    canvas[height:, : spec.shape[1]] = spec
    for row, text in enumerate(lines):
        position = (spec.shape[1] + 10, height + 25 + 22 * row)
        cv2.putText(canvas, text[:32], position, cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT_COLOR, 1, cv2.LINE_AA)
    return canvas


class HumanWindow:
    """A pygame window showing RGB frames at a fixed rate (works headless with ``SDL_VIDEODRIVER=dummy``)."""

    def __init__(self, title: str, fps: float):
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        self._pygame = pygame
        self._title = title
        self._fps = fps
        self._screen = None
        self._clock = None

    def show(self, frame: np.ndarray) -> None:
        pygame = self._pygame
        size = (frame.shape[1], frame.shape[0])
        if self._screen is None or self._screen.get_size() != size:
            pygame.display.init()  # the display only: pygame.init() would also open audio devices
            pygame.display.set_caption(self._title)
            self._screen = pygame.display.set_mode(size)
            self._clock = pygame.time.Clock()
        self._screen.blit(pygame.surfarray.make_surface(frame.swapaxes(0, 1)), (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self._clock.tick(self._fps)

    def close(self) -> None:
        if self._screen is not None:
            self._pygame.display.quit()
            self._pygame.quit()
            self._screen = None
