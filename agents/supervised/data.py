"""Training inputs: songs precomputed once as padded arrays, batched, and sliced into windows per step.

The windows are exactly the observations of :class:`sfgym.envs.MSMDFollowEnv` (checked by a test):

- spectrogram: the 40 frames *before* the current frame (``padded[:, frame : frame + 40]`` of the
  spectrogram with 40 zero frames in front);
- score: 256 columns of the inverted, row-cropped (rows 20..180), padded (512 white columns on each
  side) and ×0.5 downscaled sheet, starting at ``floor((x + 256) * 0.5)``, i.e. centred on ``x``,
  scaled to [0, 1].

The sizes and the score strip are the environment's own (:class:`sfgym.envs.ObservationGeometry`), so
that the two cannot drift apart; a step then only slices tensors (no resizing), which is what makes the
``relative`` formulation cheap: its score window follows the model's own previous estimate and so
can only be cut once that estimate is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sfgym.data.msmd import list_pieces, load_split
from sfgym.data.piece import Piece
from sfgym.envs.geometry import DEFAULT_GEOMETRY, LOSS_THRESHOLD_PX, SCORE_FACTOR, SCORE_WINDOW, SPEC_WINDOW

GEOMETRY = DEFAULT_GEOMETRY
"""The observation the regressors are trained on: the environment's defaults."""

SCORE_COLUMNS = GEOMETRY.out_columns
"""Columns of a score window (256)."""


@dataclass
class PreparedSong:
    """One piece as the padded arrays the windows are sliced from.

    Attributes:
        piece: the piece itself (for metrics).
        spectrogram: float32 ``(78, 40 + T)``, 40 zero frames in front.
        score: uint8 ``(80, S)``: the inverted (ink = 255), row-cropped, padded, downscaled sheet.
    """

    piece: Piece
    spectrogram: torch.Tensor
    score: torch.Tensor

    @property
    def name(self) -> str:
        return self.piece.name


def prepare_song(piece: Piece) -> PreparedSong:
    """Precompute a piece's padded arrays with the environment's own score preparation."""
    score = np.ascontiguousarray(GEOMETRY.strip(piece.sheet))
    spectrogram = np.zeros((piece.spectrogram.shape[0], SPEC_WINDOW + piece.n_frames), dtype=np.float32)
    spectrogram[:, SPEC_WINDOW:] = piece.spectrogram
    return PreparedSong(piece=piece, spectrogram=torch.from_numpy(spectrogram), score=torch.from_numpy(score))


@dataclass
class Episode:
    """Where a song is followed from and for how long.

    The follower starts on the notehead of onset ``start_onset`` at its frame (the environment's reset
    for onset 0) and takes ``n_steps`` steps; step ``k`` observes frame ``start_frame + k`` and its
    output is the position at frame ``start_frame + k + 1`` (the environment moves the follower, then
    advances the frame, then scores it).
    """

    song: PreparedSong
    start_onset: int
    n_steps: int

    @property
    def start_frame(self) -> int:
        return int(self.song.piece.onset_frames[self.start_onset])

    @property
    def start_x(self) -> float:
        return float(self.song.piece.onset_x[self.start_onset])


def full_episode(song: PreparedSong) -> Episode:
    """The environment's episode: from the first onset to the last."""
    piece = song.piece
    return Episode(song, 0, piece.last_onset_frame - piece.first_onset_frame)


def training_episode(song: PreparedSong, rng: np.random.Generator, *, random_start: bool,
                     max_steps: int | None) -> Episode:
    """An episode to train on: from the first onset (or a random one), at most ``max_steps`` long."""
    piece = song.piece
    start = int(rng.integers(len(piece.onset_frames) - 1)) if random_start else 0
    n_steps = piece.last_onset_frame - int(piece.onset_frames[start])
    return Episode(song, start, min(n_steps, max_steps) if max_steps else n_steps)


@dataclass
class EpisodeBatch:
    """Episodes side by side, longest first, as padded tensors on one device.

    Longest first means that the episodes still running at step ``k`` are always the first
    ``active[k]`` rows, so a step computes on exactly those rows (no wasted work on finished ones).
    """

    episodes: list[Episode]
    spectrogram: torch.Tensor  # (B, 78, L) padded spectrograms (zeros past each song's end)
    score: torch.Tensor  # (B, 80, S) uint8 padded score strips (zeros = white past each song's end)
    last_window_start: torch.Tensor  # (B,) long: the last valid score-window start of each song
    true_x: torch.Tensor  # (B, K + 1) truth at frames start_frame + 0 .. K (held after each end)
    start_frame: torch.Tensor  # (B,) long
    start_x: torch.Tensor  # (B,)
    width: torch.Tensor  # (B,) sheet widths, native px
    n_steps: np.ndarray  # (B,) int, non-increasing
    active: np.ndarray  # (K,) int: episodes still running at each step

    @property
    def size(self) -> int:
        return len(self.episodes)

    @property
    def max_steps(self) -> int:
        return int(self.n_steps[0])

    @classmethod
    def of(cls, episodes: list[Episode], device: torch.device | str = "cpu") -> "EpisodeBatch":
        episodes = sorted(episodes, key=lambda e: e.n_steps, reverse=True)
        if not episodes or episodes[0].n_steps < 1:
            raise ValueError("an episode batch needs at least one episode with at least one step")
        songs = [e.song for e in episodes]
        spectrogram = _stack_padded([s.spectrogram for s in songs])
        score = _stack_padded([s.score for s in songs])
        n_steps = np.array([e.n_steps for e in episodes])
        total = int(n_steps[0])
        true_x = np.empty((len(episodes), total + 1), dtype=np.float32)
        for row, episode in enumerate(episodes):
            truth = episode.song.piece.true_x
            frames = np.minimum(episode.start_frame + np.arange(total + 1), len(truth) - 1)
            true_x[row] = truth[frames]
        as_tensor = lambda values, dtype=torch.float32: torch.as_tensor(values, dtype=dtype, device=device)  # noqa: E731
        return cls(
            episodes=episodes,
            spectrogram=spectrogram.to(device),
            score=score.to(device),
            last_window_start=as_tensor([s.score.shape[1] - SCORE_COLUMNS for s in songs], torch.long),
            true_x=as_tensor(true_x),
            start_frame=as_tensor([e.start_frame for e in episodes], torch.long),
            start_x=as_tensor([e.start_x for e in episodes]),
            width=as_tensor([s.piece.sheet_width for s in songs]),
            n_steps=n_steps,
            active=np.array([(n_steps > k).sum() for k in range(total)]),
        )

    def spectrogram_windows(self, step: int, rows: int) -> torch.Tensor:
        """``(rows, 1, 78, 40)``: the first ``rows`` episodes' spectrogram windows at ``step``."""
        frames = self.start_frame[:rows] + step  # window = padded[:, frame : frame + 40]
        windows = self.spectrogram[:rows].unfold(2, SPEC_WINDOW, 1)  # (rows, 78, L - 39, 40), a view
        return windows[torch.arange(rows, device=frames.device), :, frames].unsqueeze(1)

    def score_windows(self, centre_x: torch.Tensor) -> torch.Tensor:
        """``(rows, 1, 80, 256)``: score windows centred on ``centre_x`` (native unpadded px, one per row)."""
        rows = len(centre_x)
        starts = score_window_start(centre_x)
        starts = torch.minimum(starts.clamp_min(0), self.last_window_start[:rows])
        windows = self.score[:rows].unfold(2, SCORE_COLUMNS, 1)  # (rows, 80, S - 255, 256), a view
        # uint8 ink / 255 in float32, exactly as the environment scales its observation
        return windows[torch.arange(rows, device=starts.device), :, starts].unsqueeze(1).float() / 255.0


def score_window_start(x: torch.Tensor) -> torch.Tensor:
    """First downscaled column of the window centred on native x (:meth:`ObservationGeometry.window_start`
    for a tensor of positions)."""
    return torch.floor((x.double() + GEOMETRY.window_offset) * GEOMETRY.score_factor).long()


def _stack_padded(arrays: list[torch.Tensor]) -> torch.Tensor:
    """``(B, rows, max columns)``: 2-D arrays of equal height and dtype, zero-padded on the right."""
    length = max(a.shape[1] for a in arrays)
    out = torch.zeros((len(arrays), arrays[0].shape[0], length), dtype=arrays[0].dtype)
    for row, array in enumerate(arrays):
        out[row, :, : array.shape[1]] = array
    return out


# ---------------------------------------------------------------------------- the song cache
class SongCache:
    """At most ``size`` prepared songs of a split in memory, redrawn at random each epoch.

    The seed paper trained on a cache of 15 songs; a small cache overfits, a whole split may not fit
    in memory. Songs kept from one draw to the next are not loaded again.
    """

    def __init__(self, split_dir: str | Path, size: int):
        self.split_dir = Path(split_dir)
        self.size = size
        self.names = [f.name for f in list_pieces(split_dir)]
        if not self.names:
            raise ValueError(f"{split_dir}: no pieces to train on")
        self.songs: dict[str, PreparedSong] = {}

    def refresh(self, rng: np.random.Generator) -> list[PreparedSong]:
        """Draw ``size`` songs (all of them when the split is smaller), load the new ones, drop the rest."""
        count = min(self.size, len(self.names))
        drawn = sorted(rng.choice(self.names, size=count, replace=False).tolist())
        to_load = [name for name in drawn if name not in self.songs]
        self.songs = {name: song for name, song in self.songs.items() if name in drawn}
        if to_load:
            for piece in load_split(self.split_dir, to_load, progress=False):
                self.songs[piece.name] = prepare_song(piece)
        return [self.songs[name] for name in drawn]


def load_songs(split_dir: str | Path, max_songs: int | None = None) -> list[PreparedSong]:
    """All songs of a split, prepared; or ``max_songs`` of them, evenly spaced in name order.

    Evenly spaced rather than the first ones: performances of one score (``score@variant``) sort
    together, and a subset should cover many scores.
    """
    names = [f.name for f in list_pieces(split_dir)]
    if not names:
        raise ValueError(f"{split_dir}: no pieces in this split")
    if max_songs is not None and max_songs < len(names):
        names = [names[i] for i in np.linspace(0, len(names) - 1, max_songs).round().astype(int)]
    return [prepare_song(piece) for piece in load_split(split_dir, names, progress=False)]


def batches(items: list, size: int) -> list[list]:
    """``items`` in consecutive groups of ``size`` (the last may be smaller)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


__all__ = ["Episode", "EpisodeBatch", "GEOMETRY", "LOSS_THRESHOLD_PX", "PreparedSong", "SCORE_COLUMNS", "SCORE_FACTOR",
           "SCORE_WINDOW", "SPEC_WINDOW", "SongCache", "batches", "full_episode", "load_songs", "prepare_song",
           "score_window_start", "training_episode"]
