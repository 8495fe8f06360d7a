"""The side-by-side view: several followers on one piece, drawn with pygame.

One frame of the view (1280 × 720 by default) shows, top to bottom:

- a header: the piece, the time and frame, the playback state;
- the *system strip*: the current staff system and the ones after it, small, with every follower's
  position and the extent of the score window, for orientation;
- the *score window*: the sheet around the true position (or, without a ground truth, around the first
  follower), with the tracking zone (±threshold around the truth) tinted, the true position dashed in
  black and one vertical marker per follower in its own colour, its head stacked by follower index so
  that followers on the same column stay visible;
- the spectrogram of the last 10 s scrolling right to left (current frame at the right edge), the 2 s
  the followers observe framed, and a legend: each follower's colour, name, current error and
  tracked / lost state.

The view only draws :class:`FrameState` snapshots; who computes them (a
:class:`~sfgym.rendering.session.SideBySideSession` for recorded pieces, a live follower for streamed
audio) is not its business. :meth:`SideBySideView.score_column` maps a sheet column to the screen
column where its marker was drawn (tests check the markers' pixels there).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from sfgym.envs.geometry import LOSS_THRESHOLD_PX
from sfgym.data.systems import system_index

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

AGENT_COLORS: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (23, 190, 207), (188, 189, 34),
)
"""RGB marker colour of follower ``i`` (matplotlib's tab10 without its grey); repeats after 9 followers."""

TRUTH_COLOR = (0, 0, 0)
TRACKING_ZONE_TINT = (214, 240, 214)  # multiplies the paper inside ±threshold of the truth: pale green
_TINT_TABLE = (np.arange(256)[:, None] * np.array(TRACKING_ZONE_TINT) / 255).astype(np.uint8)  # gray -> tinted RGB
BACKGROUND = (30, 31, 36)
PANEL = (44, 46, 53)
TEXT = (235, 235, 235)
DIM_TEXT = (160, 163, 172)
TRACKING_TEXT = (120, 220, 120)
LOST_TEXT = (255, 110, 100)
WINDOW_OUTLINE = (250, 210, 60)
SPECTROGRAM_DISPLAY_MAX = 1.5  # brightest colour; synthesized piano rarely exceeds 1.3 (log10(1 + x) units)

STATUS_WAITING, STATUS_TRACKING, STATUS_LOST, STATUS_DONE = "waiting", "tracking", "lost", "done"


@dataclass
class AgentFrame:
    """One follower at one frame.

    Attributes:
        label: its name in the legend.
        x: its sheet column (unpadded native px).
        error: ``|x - true x|`` in px, ``None`` without a ground truth.
        status: ``"waiting"`` (before the first onset), ``"tracking"``, ``"lost"`` (the environment
            terminated: error above the threshold; the marker stays where it was lost) or ``"done"``.
        lost_at_s: when it lost the target, if it did.
    """

    label: str
    x: float
    error: float | None
    status: str
    lost_at_s: float | None = None


@dataclass
class FrameState:
    """Everything the view shows at one spectrogram frame."""

    frame: int
    true_x: float | None
    agents: list[AgentFrame] = field(default_factory=list)


@dataclass(frozen=True)
class Layout:
    """Pixel geometry of the view; the defaults fill 1280 × 720 (720p video)."""

    width: int = 1280
    height: int = 720
    header_height: int = 34
    strip_top: int = 40
    strip_height: int = 80
    score_top: int = 132
    score_scale: float = 1.2  # screen px per sheet px in the score window
    panel_top: int = 388
    spectrogram_frames: int = 200  # 10 s at 20 fps
    spectrogram_zoom: int = 3

    @property
    def score_height(self) -> int:
        return round(200 * self.score_scale)

    @property
    def strip_scale(self) -> float:
        return self.strip_height / 200


class SideBySideView:
    """Draws :class:`FrameState` snapshots of several followers on one piece.

    Args:
        piece_name: shown in the header.
        sheet: the unrolled sheet, uint8 ``(200, W)``.
        spectrogram: float ``(78, T)``; in live use an array that fills up as frames arrive.
        labels: the followers' names, in the order of ``FrameState.agents``; follower ``i`` is drawn
            in ``AGENT_COLORS[i % 9]``.
        system_bounds: ``(S, 2)`` system columns (see :mod:`sfgym.data.systems`).
        fps: spectrogram frames per second.
        threshold: loss threshold in px (the tinted tracking zone).
        end_frame: the last frame of the timeline (for the header).
        observed_frames: how many frames before the current one the followers observe (framed).
        layout: pixel geometry.
    """

    def __init__(
        self,
        piece_name: str,
        sheet: np.ndarray,
        spectrogram: np.ndarray,
        labels: list[str],
        system_bounds: np.ndarray,
        *,
        fps: float = 20.0,
        threshold: float = LOSS_THRESHOLD_PX,
        end_frame: int | None = None,
        observed_frames: int = 40,
        layout: Layout = Layout(),
    ):
        if not pygame.font.get_init():
            pygame.font.init()
        self.piece_name = piece_name
        self.sheet = np.asarray(sheet, dtype=np.uint8)
        self.spectrogram = spectrogram
        self.labels = list(labels)
        self.colors = [AGENT_COLORS[i % len(AGENT_COLORS)] for i in range(len(self.labels))]
        self.system_bounds = np.asarray(system_bounds, dtype=np.int64).reshape(-1, 2)
        self.fps = float(fps)
        self.threshold = float(threshold)
        self.end_frame = end_frame
        self.observed_frames = int(observed_frames)
        self.layout = layout
        self.surface = pygame.Surface((layout.width, layout.height))
        self._fonts = {size: pygame.font.Font(None, size) for size in (18, 22, 26)}
        self._strip_cache: tuple[int, pygame.Surface] | None = None
        self._score_left = 0.0  # sheet column at the score window's left edge, for score_column()

    # ------------------------------------------------------------------ geometry
    @property
    def score_columns(self) -> float:
        """Sheet columns visible in the score window."""
        return self.layout.width / self.layout.score_scale

    def score_column(self, x: float) -> int | None:
        """Screen column of sheet column ``x`` in the last drawn score window (``None`` if outside)."""
        column = int(round((x - self._score_left) * self.layout.score_scale))
        return column if 0 <= column < self.layout.width else None

    def _centre(self, state: FrameState) -> float:
        if state.true_x is not None:
            return float(state.true_x)
        return float(state.agents[0].x) if state.agents else 0.0

    # ------------------------------------------------------------------ drawing
    def draw(self, state: FrameState, *, status: str = "", hint: str = "") -> pygame.Surface:
        """Draw one frame onto :attr:`surface` and return it.

        Args:
            state: what to show.
            status: playback state for the header (e.g. ``"paused"``, ``"x1.0"``).
            hint: a line at the bottom (e.g. the keys).
        """
        self.surface.fill(BACKGROUND)
        centre = self._centre(state)
        self._draw_header(state, status)
        self._draw_strip(state, centre)
        self._draw_score(state, centre)
        self._draw_spectrogram(state)
        self._draw_legend(state)
        if hint:
            self._text(hint, (16, self.layout.height - 22), 18, DIM_TEXT)
        return self.surface

    def _text(self, text: str, position: tuple[int, int], size: int = 22, color=TEXT) -> pygame.Rect:
        rendered = self._fonts[size].render(text, True, color)
        return self.surface.blit(rendered, position)

    def _draw_header(self, state: FrameState, status: str) -> None:
        layout = self.layout
        pygame.draw.rect(self.surface, PANEL, (0, 0, layout.width, layout.header_height))
        self._text(self.piece_name, (12, 9), 26)
        seconds = state.frame / self.fps
        total = f" / {self.end_frame / self.fps:6.2f} s" if self.end_frame is not None else " s"
        clock = f"{seconds:6.2f}{total}   frame {state.frame}"
        if status:
            clock += f"   {status}"
        width = self._fonts[26].size(clock)[0]
        self._text(clock, (layout.width - width - 12, 9), 26)

    def _sheet_crop(self, left: int, width: int) -> np.ndarray:
        """Sheet columns ``[left, left + width)``, white outside the sheet."""
        crop = np.full((self.sheet.shape[0], width), 255, dtype=np.uint8)
        first, last = max(left, 0), min(left + width, self.sheet.shape[1])
        if last > first:
            crop[:, first - left : last - left] = self.sheet[:, first:last]
        return crop

    def _blit_image(self, image: np.ndarray, position: tuple[int, int]) -> None:
        """Blit a uint8 gray ``(h, w)`` or RGB ``(h, w, 3)`` image (row-major: no transposing copy)."""
        self.surface.blit(_surface_of(image), position)

    def _draw_strip(self, state: FrameState, centre: float) -> None:
        layout = self.layout
        scale = layout.strip_scale
        columns = int(layout.width / scale)
        current = system_index(self.system_bounds, centre)
        left = int(self.system_bounds[current, 0])
        left = max(0, min(left, self.sheet.shape[1] - columns))
        if self._strip_cache is None or self._strip_cache[0] != left:
            strip = cv2.resize(self._sheet_crop(left, columns), (layout.width, layout.strip_height),
                               interpolation=cv2.INTER_AREA)
            self._strip_cache = (left, _surface_of(strip))
        top = layout.strip_top
        self.surface.blit(self._strip_cache[1], (0, top))
        to_screen = lambda x: int(round((x - left) * scale))  # noqa: E731
        for k, (start, _) in enumerate(self.system_bounds):
            column = to_screen(start)
            if 0 <= column < layout.width:
                pygame.draw.line(self.surface, DIM_TEXT, (column, top), (column, top + layout.strip_height - 1), 1)
        label = f"system {current + 1} / {len(self.system_bounds)}"
        self._text(label, (6, top + 2), 18, (90, 90, 90))
        # the score window's extent, then the markers
        window_left = to_screen(centre - self.score_columns / 2)
        window_width = int(round(self.score_columns * scale))
        pygame.draw.rect(self.surface, WINDOW_OUTLINE, (window_left, top, window_width, layout.strip_height), 2)
        if state.true_x is not None:
            column = to_screen(state.true_x)
            pygame.draw.line(self.surface, TRUTH_COLOR, (column, top), (column, top + layout.strip_height - 1), 2)
        for agent, color in zip(state.agents, self.colors):
            column = to_screen(agent.x)
            if 0 <= column < layout.width:
                pygame.draw.line(self.surface, color, (column, top + 10), (column, top + layout.strip_height - 11), 3)

    def _draw_score(self, state: FrameState, centre: float) -> None:
        layout = self.layout
        columns = int(np.ceil(self.score_columns))
        left = int(np.floor(centre - self.score_columns / 2))
        self._score_left = float(left)
        crop = self._sheet_crop(left, columns)
        image = cv2.resize(crop, (int(round(columns * layout.score_scale)), layout.score_height),
                           interpolation=cv2.INTER_LINEAR)[:, : layout.width]
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        if state.true_x is not None:  # tint the tracking zone
            a = max(self.score_column(state.true_x - self.threshold) or 0, 0)
            b = self.score_column(state.true_x + self.threshold)
            b = layout.width if b is None else b
            rgb[:, a:b] = _TINT_TABLE[image[:, a:b]]
        top = layout.score_top
        self._blit_image(rgb, (0, top))
        bottom = top + layout.score_height - 1
        if state.true_x is not None:
            column = self.score_column(state.true_x)
            if column is not None:
                for y in range(top, bottom, 12):  # dashed
                    pygame.draw.line(self.surface, TRUTH_COLOR, (column, y), (column, min(y + 6, bottom)), 2)
                pygame.draw.polygon(self.surface, TRUTH_COLOR,
                                    [(column, bottom - 12), (column - 7, bottom), (column + 7, bottom)])
        for index, (agent, color) in enumerate(zip(state.agents, self.colors)):
            head_y = top + 2 + 14 * index
            column = self.score_column(agent.x)
            if column is None:  # off the window: an arrow at the edge it left by
                edge = 0 if agent.x < centre else layout.width - 1
                tip, back = (edge, head_y + 6), (edge + (14 if edge == 0 else -14))
                pygame.draw.polygon(self.surface, color, [tip, (back, head_y), (back, head_y + 12)])
                continue
            width = 2 if agent.status == STATUS_LOST else 3
            pygame.draw.line(self.surface, color, (column, top), (column, bottom), width)
            pygame.draw.polygon(self.surface, color,
                                [(column - 7, head_y), (column + 7, head_y), (column, head_y + 12)])

    def _draw_spectrogram(self, state: FrameState) -> None:
        layout = self.layout
        n, zoom = layout.spectrogram_frames, layout.spectrogram_zoom
        bins = self.spectrogram.shape[0]
        left, top = 16, layout.panel_top + 26
        self._text("spectrogram, last 10 s (framed: the 2 s the followers see)", (left, layout.panel_top + 4), 18, DIM_TEXT)
        image = np.zeros((bins, n), dtype=np.float32)
        first = state.frame - n + 1
        lo, hi = max(first, 0), min(state.frame + 1, self.spectrogram.shape[1])
        if hi > lo:
            image[:, lo - first : hi - first] = self.spectrogram[:, lo:hi]
        levels = (np.clip(image[::-1] / SPECTROGRAM_DISPLAY_MAX, 0.0, 1.0) * 255).astype(np.uint8)
        colored = cv2.applyColorMap(levels, cv2.COLORMAP_MAGMA)[..., ::-1]
        colored = cv2.resize(colored, (n * zoom, bins * zoom), interpolation=cv2.INTER_NEAREST)
        self._blit_image(colored, (left, top))
        # the observation: frames frame-40 .. frame-1 (the current column is not observed yet)
        observed_right = left + (n - 1) * zoom
        observed_left = observed_right - self.observed_frames * zoom
        pygame.draw.rect(self.surface, WINDOW_OUTLINE, (observed_left, top, observed_right - observed_left, bins * zoom), 2)

    def _draw_legend(self, state: FrameState) -> None:
        layout = self.layout
        left = 16 + layout.spectrogram_frames * layout.spectrogram_zoom + 28
        y = layout.panel_top + 26
        self._text("follower", (left + 26, layout.panel_top + 4), 18, DIM_TEXT)
        self._text("error", (left + 300, layout.panel_top + 4), 18, DIM_TEXT)
        self._text("state", (left + 390, layout.panel_top + 4), 18, DIM_TEXT)
        if state.true_x is not None:
            for dash in range(0, 16, 6):
                pygame.draw.line(self.surface, TEXT, (left + 8, y + dash), (left + 8, y + min(dash + 3, 15)), 2)
            self._text("true position", (left + 26, y), 22)
            self._text(f"x = {state.true_x:7.1f}", (left + 300, y), 22, DIM_TEXT)
            y += 28
            pygame.draw.rect(self.surface, TRACKING_ZONE_TINT, (left, y, 16, 16))
            self._text(f"tracking zone (\u00b1{self.threshold:g} px)", (left + 26, y), 22, DIM_TEXT)
            y += 28
        for agent, color in zip(state.agents, self.colors):
            pygame.draw.rect(self.surface, color, (left, y, 16, 16))
            self._text(_fit(agent.label, 34), (left + 26, y), 22)
            error = "-" if agent.error is None else f"{agent.error:6.1f} px"
            self._text(error, (left + 300, y), 22)
            if agent.status == STATUS_LOST:
                when = f" at {agent.lost_at_s:.1f} s" if agent.lost_at_s is not None else ""
                self._text(f"LOST{when}", (left + 390, y), 22, LOST_TEXT)
            else:
                self._text(agent.status, (left + 390, y), 22, TRACKING_TEXT if agent.status == STATUS_TRACKING else DIM_TEXT)
            y += 28


def _fit(text: str, length: int) -> str:
    return text if len(text) <= length else "…" + text[-(length - 1):]


def _surface_of(image: np.ndarray) -> pygame.Surface:
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else np.ascontiguousarray(image)
    return pygame.image.frombuffer(rgb.tobytes(), (rgb.shape[1], rgb.shape[0]), "RGB")


def surface_rgb(surface: pygame.Surface) -> np.ndarray:
    """The surface's pixels as a read-only RGB ``(height, width, 3)`` uint8 array."""
    width, height = surface.get_size()
    return np.frombuffer(pygame.image.tobytes(surface, "RGB"), dtype=np.uint8).reshape(height, width, 3)


__all__ = ["AGENT_COLORS", "AgentFrame", "FrameState", "Layout", "SideBySideView", "surface_rgb"]
