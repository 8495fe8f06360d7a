"""The seed's recurrent regressors in notated time (``model.space: notated``): a frozen matching trunk's evidence
over the notated positions around the previous estimate, read by the SRN / GRU / LSTM.

Why notated time: the sheet-space regressor reads the environment's score window, sheet columns centred on its
previous estimate. How far the music moves through that window per frame depends on the engraving (note spacing,
line breaks), so its recurrent core cannot hold a tempo; on the matching trunk it tracked at most 0.48 of the
default test split, where the tracker reading the same trunk in notated time tracks it all. In notated time a
steady performance moves a steady number of notated frames per performed frame (its tempo ratio), which a
recurrent state can carry.

Before a piece (as :class:`~agents.tracking.MatchingTracker` does) every notated frame of the score gets the
trunk's embedding of its sheet column, through the notated timing (:class:`~sfgym.score.timing.ScoreMap`).
At each step the sound of the last ``match_frames`` frames (level and tilt normalized,
:class:`~agents.tracking.normalize.SpectrumNormalizer`) is embedded and matched against the ``2H + 1`` positions
``centre - H .. centre + H`` around the previous estimate (``H`` = ``model.half_window_frames``; positions off the
score count as impossible). The core reads that distribution, its mean offset and its own last move
(:meth:`PositionRegressor.notated_features`) and outputs the offset of the position from the centre in units of
``H``: the relative target, as in the sheet space, and the seed's loss in those units::

    ((p̂_t − p_t) / H)² + λ ((p̂_t − p̂_{t−1}) / H)²

with ``p_t`` the true notated position at the frame the position is scored at (:func:`notated_truth`). The next
window is centred on the estimate (in training plus noise, clamped near the truth, as in the sheet space), or
with ``model.predict_centre`` on where the estimate's last move would take it, so that an output of 0 keeps the
pace instead of standing still. The follower's x is the sheet x of the estimated notated position.

Training looks the trunk's side up from per-song tables (:class:`NotatedTables`: the embedding of what the
follower hears at each frame, and of each notated position's column), so it costs little more than the core.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agents.networks import MatchingTrunk
from agents.supervised.bptt import RolloutResult, step_loss, truncated_bptt
from agents.supervised.data import Episode, PreparedSong
from agents.supervised.model import PositionRegressor, RecurrentState
from agents.tracking.follower import notated_positions_x, position_embeddings
from agents.tracking.normalize import SpectrumNormalizer
from sfgym.data.piece import Piece
from sfgym.envs.geometry import DEFAULT_GEOMETRY, score_observation_values
from sfgym.followers import Follower
from sfgym.score.timing import ScoreMap, notated_notes, notated_truth

OFF_SCORE_LOGIT = -30.0
"""Logit of a window position before the score's start or after its end (a probability of ~0)."""


def heard_frames(spectrogram: np.ndarray, frame: int, match_frames: int) -> np.ndarray:
    """The frames a follower at ``frame`` hears: the last ``match_frames`` of the environment's observation
    (frames ``frame - match_frames .. frame - 1``, zeros before the start)."""
    return DEFAULT_GEOMETRY.spectrogram_window(spectrogram, frame)[0][:, -match_frames:]


def score_positions(trunk: MatchingTrunk, piece: Piece,
                    px_per_second: float | None = None) -> tuple[ScoreMap, np.ndarray, np.ndarray]:
    """``(score map, sheet x of each notated position, float32 (positions, features) embeddings of their
    columns)``: what a follower in notated time knows of the score before the performance (``px_per_second``:
    :func:`~sfgym.score.timing.notated_notes`' stand-in speed)."""
    score_map = ScoreMap.of(piece, notated_notes(piece, px_per_second))
    strip = torch.from_numpy(score_observation_values(DEFAULT_GEOMETRY.strip(piece.sheet)))[None]
    position_x = notated_positions_x(score_map, piece.fps)
    return score_map, position_x, position_embeddings(trunk, strip, position_x, DEFAULT_GEOMETRY).astype(np.float32)


def padded_positions(embeddings: list[np.ndarray], half: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The embeddings of several scores as ``(B, N + 2H, F)``, padded by ``H`` on each side and at the end to the
    longest, and ``(B, N + 2H)`` whether each entry is a position of the score (see :func:`window_logits`)."""
    width = max(len(rows) for rows in embeddings) + 2 * half
    positions = torch.zeros((len(embeddings), width, embeddings[0].shape[1]))
    on_score = torch.zeros((len(embeddings), width), dtype=torch.bool)
    for row, rows in enumerate(embeddings):
        positions[row, half:half + len(rows)] = torch.from_numpy(rows)
        on_score[row, half:half + len(rows)] = True
    return positions, on_score


@dataclass
class NotatedSong:
    """A piece's tables for training in notated time.

    Attributes:
        sound: float32 ``(n_frames + 1, features)``: the embedding of what a follower hears at each frame, its
            normalizer started at the first onset (the environment's start; zeros before it).
        positions: float32 ``(n_positions, features)``: the embedding of each notated position's sheet column.
        truth: float64 ``(n_frames + 1,)``: the true notated position at each frame.
        score_map: notated time → sheet x.
        position_x: float64 ``(n_positions,)``: the sheet x of each notated position.
        true_x: float64 ``(n_frames,)``: the ground truth's x at each frame.
    """

    sound: np.ndarray
    positions: np.ndarray
    truth: np.ndarray
    score_map: ScoreMap
    position_x: np.ndarray
    true_x: np.ndarray


def notated_song(trunk: MatchingTrunk, piece: Piece) -> NotatedSong:
    """The tables of ``piece`` for ``trunk`` (see :class:`NotatedSong`)."""
    score_map, position_x, positions = score_positions(trunk, piece)
    match_frames = trunk.config.match_frames
    heard = np.zeros((piece.n_frames + 1, piece.spectrogram.shape[0], match_frames), dtype=np.float32)
    normalizer = SpectrumNormalizer()
    for frame in range(piece.first_onset_frame, piece.n_frames + 1):  # as the follower hears, frame by frame
        frames = heard_frames(piece.spectrogram, frame, match_frames)
        normalizer.hear(frames[:, -1])
        heard[frame] = normalizer.normalize(frames)
    with torch.no_grad():
        sound = np.concatenate([trunk.sound_embeddings(torch.from_numpy(heard[start:start + 1024])).numpy()
                                for start in range(0, len(heard), 1024)])
    sound[: piece.first_onset_frame] = 0.0
    return NotatedSong(sound=sound, positions=positions, truth=notated_truth(piece, score_map),
                       score_map=score_map, position_x=position_x, true_x=piece.true_x.astype(np.float64))


class NotatedTables:
    """The tables of the songs used last (at most ``capacity``), for a frozen matching trunk (copied to the CPU)."""

    def __init__(self, trunk: MatchingTrunk, capacity: int = 256):
        if not isinstance(trunk, MatchingTrunk):
            raise TypeError(f"notated time needs a matching trunk, got {type(trunk).__name__}")
        self.trunk = copy.deepcopy(trunk).cpu().eval()
        self.capacity = capacity
        self._songs: OrderedDict[str, NotatedSong] = OrderedDict()

    def song(self, song: PreparedSong) -> NotatedSong:
        if song.name in self._songs:
            self._songs.move_to_end(song.name)
        else:
            self._songs[song.name] = notated_song(self.trunk, song.piece)
            if len(self._songs) > self.capacity:
                self._songs.popitem(last=False)
        return self._songs[song.name]


def window_logits(positions: torch.Tensor, on_score: torch.Tensor, sound: torch.Tensor, centre: torch.Tensor,
                  half: int) -> torch.Tensor:
    """``(B, 2H + 1)`` matching logits of ``sound`` ``(B, F)`` against the positions ``round(centre) - H ..
    round(centre) + H``; ``positions`` ``(B, N + 2H, F)`` and ``on_score`` ``(B, N + 2H)`` are padded by ``H`` on
    each side."""
    offsets = torch.arange(-half, half + 1, device=centre.device)
    index = (centre.round().long()[:, None] + offsets[None] + half).clamp(0, positions.shape[1] - 1)
    window = torch.gather(positions, 1, index[:, :, None].expand(-1, -1, positions.shape[2]))
    logits = torch.einsum("bwk,bk->bw", window, sound)
    return torch.where(torch.gather(on_score, 1, index), logits, torch.full_like(logits, OFF_SCORE_LOGIT))


def notated_step(model: PositionRegressor, positions: torch.Tensor, on_score: torch.Tensor, sound: torch.Tensor,
                 centre: torch.Tensor, motion: torch.Tensor, state: RecurrentState) -> tuple[torch.Tensor, RecurrentState]:
    """One frame of the model: the window around ``centre`` → its core → ``(the estimated position (B,), new state)``
    (the output is the offset from the window's centre, in half windows)."""
    half = model.config.half_window_frames
    logits = window_logits(positions, on_score, sound, centre, half)
    output, state = model.advance(model.notated_features(logits, motion), state)
    return centre.round() + output * half, state


def sheet_x(position_x: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """``(B,)`` sheet x of fractional notated positions ``(B,)`` (linear between frames, held at the ends), through
    each row's ``position_x`` ``(B, N)``; differentiable in ``position``."""
    last = position_x.shape[1] - 1
    clamped = position.clamp(0.0, float(last))
    below = clamped.detach().floor().long().clamp(max=max(last - 1, 0))
    left = torch.gather(position_x, 1, below[:, None])[:, 0]
    right = torch.gather(position_x, 1, (below + 1).clamp(max=last)[:, None])[:, 0]
    return left + (clamped - below) * (right - left)


class NotatedSpace:
    """Episodes followed in notated time (a :class:`~agents.supervised.bptt.Space`): positions are notated
    frames, the model reads the window of notated positions around the centre (:func:`notated_step`) and its
    own last move; the next window is centred on the estimate, or with ``model.predict_centre`` on where its
    last move would take it. ``loss_on``: the error in notated frames (units of ``H``), or on the sheet
    (``sheet``: the x it is scored on, units of ``model.offset_scale_px``). Every row runs to the longest
    episode's end (the finished ones count for nothing); all of it on the CPU (the tables live there)."""

    device = "cpu"
    sums_dtype = torch.float64

    def __init__(self, model: PositionRegressor, episodes: list[Episode], tables: NotatedTables, loss_on: str):
        if loss_on not in ("notated", "sheet"):
            raise ValueError(f"loss_on must be 'notated' or 'sheet', got {loss_on!r}")
        half = model.config.half_window_frames
        self.songs = songs = [tables.song(episode.song) for episode in episodes]
        self.fps = [episode.song.piece.fps for episode in episodes]
        self.size = size = len(episodes)
        steps = np.array([episode.n_steps for episode in episodes])
        self.total_steps = total_steps = int(steps.max(initial=0))
        self.positions, self.on_score = padded_positions([song.positions for song in songs], half)
        width = self.positions.shape[1]
        self.sound = torch.zeros((size, total_steps, self.positions.shape[2]))
        truth = torch.zeros((size, total_steps + 1), dtype=torch.float64)
        true_x = torch.zeros((size, total_steps + 1), dtype=torch.float64)
        position_x = torch.zeros((size, width - 2 * half), dtype=torch.float64)
        for row, (episode, song) in enumerate(zip(episodes, songs)):
            n, start = int(steps[row]), episode.start_frame
            self.sound[row, :n] = torch.from_numpy(song.sound[start:start + n])
            truth[row, :n + 1] = torch.from_numpy(song.truth[start:start + n + 1])
            truth[row, n + 1:] = truth[row, n]
            true_x[row, :n + 1] = torch.from_numpy(song.true_x[start:start + n + 1])
            true_x[row, n + 1:] = true_x[row, n]
            position_x[row, :len(song.position_x)] = torch.from_numpy(song.position_x)
            position_x[row, len(song.position_x):] = song.position_x[-1]
        self.truth, self.true_x, self.position_x = truth.float(), true_x.float(), position_x.float()
        self.on_sheet = loss_on == "sheet"
        self.unit = model.config.offset_scale_px if self.on_sheet else half
        self.predict_centre = model.config.predict_centre
        self.alive = torch.from_numpy(np.arange(total_steps)[None, :] < steps[:, None])
        self.last_position = torch.tensor([len(song.positions) - 1 for song in songs], dtype=torch.float32)
        self.start = self.truth[:, 0]  # the notated position of the episode's first onset
        self.motion = torch.zeros(size)  # the estimate's last move, which the model reads

    def rows(self, step: int) -> int:
        return self.size

    def advance(self, model: PositionRegressor, step: int, centre: torch.Tensor,
                state: RecurrentState) -> tuple[torch.Tensor, RecurrentState]:
        return notated_step(model, self.positions, self.on_score, self.sound[:, step], centre, self.motion, state)

    def loss_terms(self, step: int, position: torch.Tensor, previous: torch.Tensor,
                   jump_penalty: float) -> tuple[torch.Tensor, torch.Tensor]:
        if self.on_sheet:
            return step_loss(sheet_x(self.position_x, position), sheet_x(self.position_x, previous),
                             self.true_x[:, step + 1], self.unit, jump_penalty)
        return step_loss(position, previous, self.target(step, self.size), self.unit, jump_penalty)

    def target(self, step: int, rows: int) -> torch.Tensor:
        return self.truth[:, step + 1]

    def weights(self, step: int) -> torch.Tensor:
        return self.alive[:, step].float()

    def next_centre(self, position: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        self.motion = (position - previous).detach()
        return position.detach() + (self.motion if self.predict_centre else 0.0)

    def last_centre(self, rows: int) -> torch.Tensor:
        return self.last_position

    def sheet_x(self, estimates: torch.Tensor) -> np.ndarray:
        estimates_x = np.zeros((self.size, self.total_steps))
        for row, song in enumerate(self.songs):
            estimates_x[row] = song.score_map.x_at(estimates[row].double().numpy() / self.fps[row])
        return estimates_x


def notated_rollout(model: PositionRegressor, episodes: list[Episode], tables: NotatedTables, *,
                    loss_on: str = "notated", noise_frames: float = 0.0, max_centre_error_frames: float | None = None,
                    **loop_options) -> RolloutResult:
    """Follow every episode to its end in notated time; with an ``optimizer``, train on the way. The result's
    ``positions`` are sheet x (native px). ``loss_on``: see :class:`NotatedSpace`; ``noise_frames`` and
    ``max_centre_error_frames``: :func:`~agents.supervised.bptt.truncated_bptt`'s ``noise`` and
    ``max_centre_error`` in notated frames; ``loop_options``: the rest of its keyword arguments."""
    return truncated_bptt(model, NotatedSpace(model, episodes, tables, loss_on), noise=noise_frames,
                          max_centre_error=max_centre_error_frames, **loop_options)


class NotatedRegressorFollower(Follower):
    """Drives ``MSMDFollow-v0`` (position actions) with a regressor in notated time (the module docstring).

    Args:
        model: a :class:`PositionRegressor` with ``space: notated`` (put in eval mode here).
        name: shown in tables and legends.
        px_per_second: stand-in speed for pieces without notated timing
            (:func:`~sfgym.score.timing.notated_notes`).
    """

    action_type = "position"
    stochastic = False
    needs_notated_tempo = True

    def __init__(self, model: PositionRegressor, name: str | None = None, px_per_second: float | None = None):
        if model.config.space != "notated" or not isinstance(model.trunk, MatchingTrunk):
            raise ValueError(f"a NotatedRegressorFollower needs a notated-time model on a matching trunk, got "
                             f"{model.describe()}")
        self.model = model.cpu().eval()
        self.name = name or f"{model.config.cell}_notated"
        self.px_per_second = px_per_second
        self._normalizer = SpectrumNormalizer()
        self._state: RecurrentState | None = None

    @torch.no_grad()
    def reset(self, piece: Piece, seed: int | None = None) -> None:
        """Start a piece: zero state, the estimate on the first onset's notated position."""
        self._map, _, embeddings = score_positions(self.model.trunk, piece, self.px_per_second)
        self._positions, self._on_score = padded_positions([embeddings], self.model.config.half_window_frames)
        self._last_position = float(len(embeddings) - 1)
        self._fps = float(piece.fps)
        self._width = float(piece.sheet_width)
        self._centre = torch.tensor([self._map.first_onset_time * self._fps], dtype=torch.float32)
        self._previous = self._centre.clone()
        self._motion = torch.zeros(1)
        self._state = self.model.initial_state(1, "cpu")
        self._normalizer.reset()

    @torch.no_grad()
    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any] | None = None) -> np.ndarray:
        if self._state is None:
            raise RuntimeError(f"{self.name}: call reset(piece) before act()")
        match_frames = self.model.trunk.config.match_frames
        heard = np.asarray(observation["spectrogram"], dtype=np.float32)[0][:, -match_frames:]
        self._normalizer.hear(heard[:, -1])
        heard = torch.from_numpy(np.ascontiguousarray(self._normalizer.normalize(heard)))[None]
        sound = self.model.trunk.sound_embeddings(heard)
        position, self._state = notated_step(self.model, self._positions, self._on_score, sound, self._centre,
                                             self._motion, self._state)
        self._motion = position - self._previous
        self._previous = position
        centre = position + self._motion if self.model.config.predict_centre else position
        self._centre = torch.minimum(centre.clamp_min(0.0), torch.tensor(self._last_position))
        x = float(self._map.x_at(float(position[0]) / self._fps))
        return np.array([x / self._width], dtype=np.float64)


__all__ = ["NotatedRegressorFollower", "NotatedSong", "NotatedSpace", "NotatedTables", "heard_frames", "notated_rollout",
           "notated_song", "notated_step", "padded_positions", "score_positions", "sheet_x", "window_logits"]
