"""``MSMDFollow-v0``: follow a piano performance in its unrolled sheet music, one spectrogram frame per step.

The task and its defaults are those of Dorfer, Henkel & Widmer's score-following game (ISMIR 2018,
TISMIR 2019; code: CPJKU/score_following_game), so that results compare with the published ones.
Section 2 of the reference notes summarises it; :class:`MSMDFollowEnv` documents every detail.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sfgym.data import dataset
from sfgym.data.msmd import find_split_dir, load_split
from sfgym.data.piece import FPS, N_SPEC_BINS, Piece
from sfgym.envs.geometry import (LOSS_THRESHOLD_PX, SCORE_FACTOR, SCORE_WINDOW, SPEC_WINDOW, ObservationGeometry,
                                 prepare_score_strip, score_observation_values)
from sfgym.envs.render import HumanWindow, render_frame

__all__ = ["ACTION_TYPES", "MSMDFollowEnv", "SPECTROGRAM_HIGH", "prepare_score_strip", "score_observation_values"]

ACTION_TYPES = ("discrete", "continuous", "position")
"""The values of the ``action_type`` argument."""

SPECTROGRAM_HIGH = 10.0
"""Upper bound of the spectrogram observation.

Spectrogram values are ``log10(1 + x)`` of filtered STFT magnitudes. Audio in [-1, 1] gives at most
``log10(1 + 1024) ≈ 3.01`` (frame size 2048, Hann window, normalised filters); 10 leaves room for
any audio scaling (even raw 16-bit integers stay below 7.6). Pieces outside [0, 10] are rejected.
"""


@dataclass(frozen=True)
class _PreparedPiece:
    """What a step reads besides the :class:`Piece` itself, computed once when the piece is loaded."""

    piece: Piece
    score: np.ndarray  # uint8 (out_rows, downscaled padded width): rows cropped, padded, inverted (ink = 255), downscaled
    is_onset: np.ndarray  # bool (T,): a merged onset falls on this frame
    x_low: float  # clip range of the follower's x (unpadded columns): keeps the score window on the
    x_high: float  # padded sheet, as the reference's clip_coord does


class MSMDFollowEnv(gym.Env[dict[str, np.ndarray], Any]):
    """Follow a performance (its spectrogram) in the unrolled sheet music of the piece it plays.

    ## Description

    Each episode is one :class:`~sfgym.data.piece.Piece`: an unrolled sheet (one long strip of all
    staff systems, 200 rows) and a performance of it as a 78-bin log-frequency spectrogram at 20
    frames per second. Time advances by one spectrogram frame per step; the follower controls a
    position ``x`` (a column of the sheet) and has to keep it on the notehead being played. The
    ground truth ``true_x`` is the notehead column at every onset, linear in between
    (:attr:`Piece.true_x`). This is the game of Dorfer et al. (2018), with their defaults.

    All positions (``x``, ``true_x``, errors, speeds) are in *native* sheet pixels, in *unpadded*
    columns (0 = the sheet's first column), and frames are *unpadded* spectrogram frames, so they
    compare directly with ``Piece.true_x``, ``Piece.onset_x`` and ``Piece.onset_frames``.

    ## Action Space

    Chosen with ``action_type``; the follower has a position ``x`` and a speed ``v`` (px/frame):

    - ``"discrete"`` (default, the reference game): ``Discrete(len(actions))``; action ``i`` adds
      ``actions[i]`` to the speed. Default ``actions=(-1.0, 0.0, 1.0)``.
    - ``"continuous"``: ``Box(-W, W, (1,), float32)`` with ``W = score_window[1]`` (512 by
      default); the action is added to the speed, after clipping to the bounds. An oracle can land
      exactly on the truth at every frame whenever the ground truth moves at most ``W / 2`` px in
      one frame (a needed speed change is at most twice the fastest speed); MSMD pieces move far
      slower (the MSMD sample at most 16 px/frame). The bounds are in pixels per frame on purpose:
      a Gaussian policy's unit noise is then a sensible ±1 px/frame. Gymnasium's and SB3's checkers
      recommend [-1, 1] for Box actions: wrap with ``gymnasium.wrappers.RescaleAction`` if wanted.
    - ``"position"``: ``Box(0, 1, (1,), float32)``, the position itself as a fraction of the
      unpadded sheet width: ``x = a * sheet_width``; the speed becomes the implied change of ``x``.
      For followers that regress the position directly.

    Box actions are used at the precision they are given in (a float64 action is not rounded).

    ## Observation Space

    A ``Dict`` of two float32 images, channels first:

    | key            | shape                       | values                                    |
    |----------------|-----------------------------|-------------------------------------------|
    | `spectrogram`  | `(C, 78, spec_window)`      | `[0, 10]` (``SPECTROGRAM_HIGH``)          |
    | `score`        | `(C, rows·f, columns·f)`    | `[0, 1]`, ink = 1, paper = 0              |

    with ``(rows, columns) = score_window`` and ``f = score_factor``: by default ``(1, 78, 40)`` and
    ``(1, 80, 256)``. :attr:`geometry` (an :class:`~sfgym.envs.geometry.ObservationGeometry`) holds these
    sizes and computes the windows described here, for learning code that precomputes observations.

    - ``spectrogram``: the ``spec_window`` frames before the current one, frames
      ``frame - spec_window .. frame - 1`` (the reference's ``right_most`` excerpt, whose end is
      exclusive). Values are the spectrogram as computed (``log10(1 + x)``, non-negative).
    - ``score``: rows ``(200 - rows) // 2 ..`` (20..180 by default) of the sheet and ``columns``
      columns centred on the follower's ``x``, downscaled by ``f`` (area averaging; at 0.5 the
      mean of 2 × 2 pixels, as the reference's resize), scaled to [0, 1] in steps of 1/255 and
      inverted. The window's left edge is ``floor((x + P - columns // 2) · f)`` on the downscaled
      padded sheet, i.e. the reference's crop rounded down to an even native column.
    - Padding as the reference: ``spec_window`` zero frames before and after the spectrogram,
      ``score_window[1]`` white columns left and right of the sheet.
    - With ``difference_channels=True`` each image has a second channel (``C = 2``): its
      difference to the previous step's image (zero after reset), bounded by ``[-10, 10]``
      (spectrogram) and ``[-1, 1]`` (score), as the reference's agents observed it.
    - With ``observe_speed=True`` a third key, ``speed``: float32 ``(1,)``, the follower's own
      speed in px/frame (unbounded). A velocity agent needs to know how fast it moves; the
      difference channels show it in pixels, this states it (for agents whose trunk reads one
      channel, e.g. one pre-trained by a supervised regressor).

    ## Rewards

    ``(reward_threshold - |x - true_x|) / reward_threshold`` per step, in [0, 1]; the step that
    loses the target (error above the threshold) gets 0, as in the reference.

    ## Starting State

    A piece is drawn uniformly from :attr:`pieces` with the environment's seeded ``np_random``
    (or named with ``options={"piece": name}``). The follower starts on the notehead of the first
    onset (``x = onset_x[0]``, exactly; the reference truncated it to an integer) with speed 0, at
    the first onset's frame.

    ## Dynamics

    Each step: apply the action to the speed (or position), ``frame += 1``, ``x += speed``, clip
    ``x`` to ``[columns // 2 - P, sheet_width + P - columns // 2 - 1]`` (``P = columns`` of padding:
    the score window never leaves the padded sheet; the speed is kept), then observe and reward.

    ## Episode End

    1. Termination: the target is lost, ``|x - true_x| > reward_threshold`` (170 px). Losing the
       target is a failure state of the task: nothing the follower does afterwards counts.
    2. Truncation: the last onset's frame is reached. The ground truth ends there (it is not
       defined past the last onset), not the task: the end arrives at a time fixed by the piece,
       whatever the follower does, and nothing in the observation tells how far it is. That is a
       time limit in Gymnasium's sense, and value-based learners should bootstrap from the last
       state instead of treating it as a dead end (Pardo et al., "Time limits in reinforcement
       learning", 2018). ``truncated`` is False whenever ``terminated`` is True.
    3. Truncation: ``max_episode_steps`` steps were taken (if given).

    ## Info

    ``reset`` and ``step`` return the same keys, as Python scalars:

    - ``true_x`` (float), ``follower_x`` (float): ground-truth and follower column (unpadded, native px).
    - ``error`` (float): ``|follower_x - true_x|`` in native px.
    - ``frame`` (int): the current unpadded spectrogram frame.
    - ``piece`` (str): the piece's name.
    - ``onset`` (bool): a merged onset falls on this frame.
    - ``speed`` (float): the follower's speed in px/frame.
    - ``score_window_start`` (int): the score window's left edge, a column of the downscaled padded
      strip (:func:`prepare_score_strip`) — what learning code that precomputes the score side
      needs to look a window up.
    - ``tracked`` (bool): ``error <= reward_threshold``.

    ## Arguments

    ```python
    >>> import gymnasium as gym, sfgym
    >>> env = gym.make("MSMDFollow-v0", data="path/to/dataset", split="valid")  # doctest: +SKIP
    >>> obs, info = env.reset(seed=0, options={"piece": "BachJS__BWV117a__BWV-117a"})  # doctest: +SKIP
    ```

    | Parameter             | Type                         | Default             | Description |
    |-----------------------|------------------------------|---------------------|-------------|
    | `data`                | path or list of `Piece`      | `None`              | a dataset root, a split directory, or pieces in memory; `None`: the default dataset (built on first use) |
    | `split`               | str                          | `"train"`           | split to load when `data` is a dataset root |
    | `spec_window`         | int                          | `40`                | spectrogram frames observed (2 s) |
    | `score_window`        | (int, int)                   | `(160, 512)`        | sheet rows and columns observed, native px |
    | `score_factor`        | float                        | `0.5`               | scale of the score observation (80 × 256) |
    | `reward_threshold`    | float                        | `170`               | px; the target is lost beyond it (512 // 3) |
    | `actions`             | sequence of float            | `(-1.0, 0.0, 1.0)`  | speed changes of the discrete actions, px/frame |
    | `action_type`         | str                          | `"discrete"`        | `"discrete"`, `"continuous"` or `"position"` |
    | `difference_channels` | bool                         | `False`             | add the difference to the previous observation as a second channel |
    | `observe_speed`       | bool                         | `False`             | add the follower's speed to the observation (key `speed`) |
    | `max_episode_steps`   | int or None                  | `None`              | truncate after this many steps (``gym.make``'s own keyword of that name adds a ``TimeLimit`` wrapper instead, to the same effect) |
    | `render_mode`         | str or None                  | `None`              | `"rgb_array"` or `"human"` (pygame window) |

    ``reset(seed=..., options={"piece": name})`` follows the named piece. :attr:`pieces` lists the
    pieces and :attr:`piece` is the current one (for evaluation code:
    ``env.unwrapped.pieces`` / ``env.unwrapped.piece``). :meth:`observe_at` moves the follower to a
    given frame and column and observes there.

    Bad arguments raise ``ValueError`` naming the argument or piece: an unknown split or empty
    data directory, a score window taller than a sheet, a piece shorter than ``spec_window`` or
    with a single onset, an unknown ``action_type``, an unknown piece name in ``options``.

    ## Version History

    * v0: Initial version: the MSMD configuration of Dorfer et al. (2018), in Gymnasium 1.x's API.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": FPS}

    def __init__(
        self,
        data: str | os.PathLike | Sequence[Piece] | None = None,
        split: str = "train",
        spec_window: int = SPEC_WINDOW,
        score_window: tuple[int, int] = SCORE_WINDOW,
        score_factor: float = SCORE_FACTOR,
        reward_threshold: float = LOSS_THRESHOLD_PX,
        actions: Sequence[float] = (-1.0, 0.0, 1.0),
        action_type: str = "discrete",
        difference_channels: bool = False,
        observe_speed: bool = False,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ):
        self._check_arguments(spec_window, score_window, score_factor, reward_threshold, actions, action_type,
                              max_episode_steps, render_mode)
        self.spec_window = int(spec_window)
        self.score_window = (int(score_window[0]), int(score_window[1]))
        self.score_factor = float(score_factor)
        self.reward_threshold = float(reward_threshold)
        self.actions = tuple(float(a) for a in actions)
        self.action_type = action_type
        self.difference_channels = bool(difference_channels)
        self.observe_speed = bool(observe_speed)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode

        self.pieces: list[Piece] = _load_pieces(data, split)
        self._piece_index = {piece.name: i for i, piece in enumerate(self.pieces)}
        if len(self._piece_index) != len(self.pieces):
            duplicates = sorted(name for name, n in Counter(p.name for p in self.pieces).items() if n > 1)
            raise ValueError(f"data: piece names must be unique, repeated: {duplicates}")
        for piece in self.pieces:
            self._check_piece(piece)

        self.geometry = ObservationGeometry(self.spec_window, self.score_window, self.score_factor)
        self._prepared_pieces = [self._prepare(piece) for piece in self.pieces]

        self.observation_space = self._make_observation_space()
        self._max_speed_change = float(self.score_window[1])  # px/frame, the bound of continuous actions
        if action_type == "discrete":
            self.action_space = spaces.Discrete(len(self.actions))
        elif action_type == "continuous":
            limit = self._max_speed_change
            self.action_space = spaces.Box(-limit, limit, shape=(1,), dtype=np.float32)
        else:
            self.action_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)

        # Episode state (set by reset).
        self._prepared: _PreparedPiece | None = None
        self._frame = 0
        self._x = 0.0
        self._speed = 0.0
        self._score_start = 0
        self._steps = 0
        self._episode_over = True
        self._last_reward = 0.0
        self._previous: dict[str, np.ndarray] | None = None
        self._last_observation: dict[str, np.ndarray] | None = None
        self._window = None  # the pygame window of render_mode="human"

    # ------------------------------------------------------------------ public API
    @property
    def piece(self) -> Piece | None:
        """The piece of the current episode (``None`` before the first reset)."""
        return None if self._prepared is None else self._prepared.piece

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start following a piece: a random one, or ``options={"piece": name}``."""
        super().reset(seed=seed)
        options = dict(options or {})
        name = options.pop("piece", None)
        if options:
            raise ValueError(f"options: unknown key(s) {sorted(options)}; the only option is 'piece'")
        if name is None:
            index = int(self.np_random.integers(len(self.pieces)))
        elif name in self._piece_index:
            index = self._piece_index[name]
        else:
            shown = sorted(self._piece_index)[:10]
            raise ValueError(
                f"options['piece']: unknown piece {name!r}; this environment has {len(self.pieces)} "
                f"piece(s), e.g. {shown}"
            )

        self._prepared = self._prepared_pieces[index]
        piece = self._prepared.piece
        self._frame = piece.first_onset_frame
        self._x = float(piece.onset_x[0])
        self._speed = 0.0
        self._score_start = 0
        self._steps = 0
        self._episode_over = False
        self._last_reward = 0.0
        self._previous = None

        observation = self._observe()
        if self.render_mode == "human":
            self.render()
        return observation, self._info()

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply ``action``, advance one frame, and observe."""
        if self._episode_over:
            raise RuntimeError("the episode is over (or never started): call reset() before step()")
        prepared = self._prepared

        if self.action_type == "discrete":
            index = int(action)
            if not 0 <= index < len(self.actions):
                raise ValueError(f"action: {action!r} is not in Discrete({len(self.actions)})")
            self._speed += self.actions[index]
        elif self.action_type == "continuous":
            limit = self._max_speed_change
            self._speed += min(max(float(np.reshape(action, -1)[0]), -limit), limit)
        else:
            fraction = min(max(float(np.reshape(action, -1)[0]), 0.0), 1.0)
            target = fraction * prepared.piece.sheet_width
            self._speed = target - self._x

        self._frame += 1
        self._steps += 1
        self._x = min(max(self._x + self._speed, prepared.x_low), prepared.x_high)

        error = abs(self._x - float(prepared.piece.true_x[self._frame]))
        terminated = error > self.reward_threshold
        reward = 0.0 if terminated else (self.reward_threshold - error) / self.reward_threshold
        end_reached = self._frame >= prepared.piece.last_onset_frame
        out_of_time = self.max_episode_steps is not None and self._steps >= self.max_episode_steps
        truncated = not terminated and (end_reached or out_of_time)
        self._episode_over = terminated or truncated
        self._last_reward = reward

        observation = self._observe()
        if self.render_mode == "human":
            self.render()
        return observation, reward, terminated, truncated, self._info()

    def observe_at(self, frame: int, x: float) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Move the follower to column ``x`` (clipped as a step clips it) at ``frame`` of the current
        piece, and return what it observes there with its info; the episode goes on from there.

        For code that checks precomputed observations against the environment's own.
        """
        if self._prepared is None:
            raise RuntimeError("call reset() before observe_at()")
        piece = self._prepared.piece
        if not 0 <= frame < piece.n_frames:
            raise ValueError(f"frame: {frame} is outside piece {piece.name!r} (frames 0..{piece.n_frames - 1})")
        self._frame = int(frame)
        self._x = min(max(float(x), self._prepared.x_low), self._prepared.x_high)
        return self._observe(), self._info()

    def render(self) -> np.ndarray | None:
        """An RGB frame (``"rgb_array"``) or a window update (``"human"``); see :mod:`sfgym.envs.render`."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        if self._last_observation is None:
            raise RuntimeError("call reset() before render()")
        info = self._info()
        frame = render_frame(
            score=self._last_observation["score"][0],
            spectrogram=self._last_observation["spectrogram"][0],
            true_offset=(info["true_x"] - info["follower_x"]) * self.score_factor,
            threshold=self.reward_threshold * self.score_factor,
            scale=1.0 / self.score_factor,
            lines=[
                info["piece"],
                f"frame {info['frame']} / {self.piece.last_onset_frame}",
                f"error {info['error']:.1f} px",
                f"reward {self._last_reward:.2f}",
                f"speed {info['speed']:+.1f} px/frame",
            ],
        )
        if self.render_mode == "rgb_array":
            return frame
        if self._window is None:
            self._window = HumanWindow("sfgym: MSMDFollow", fps=self.metadata["render_fps"])
        self._window.show(frame)
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    # ------------------------------------------------------------------ observation
    def _observe(self) -> dict[str, np.ndarray]:
        prepared = self._prepared
        # The spectrogram window ends just before the current frame; frames before 0 are the
        # zero padding, frames past the end are never reached (the last onset comes earlier).
        spectrogram = self.geometry.spectrogram_window(prepared.piece.spectrogram, self._frame)
        start = self.geometry.window_start(self._x, prepared.score.shape[1])
        self._score_start = start
        # exact at 0 and 255, so the window stays within [0, 1]
        columns = self.geometry.out_columns
        score = score_observation_values(prepared.score[np.newaxis, :, start : start + columns])
        current = {"spectrogram": spectrogram, "score": score}
        if self.difference_channels:
            previous = current if self._previous is None else self._previous
            self._previous = current
            current = {key: _with_difference(image, previous[key]) for key, image in current.items()}
        if self.observe_speed:
            current["speed"] = np.array([self._speed], dtype=np.float32)
        self._last_observation = current
        return current

    def _info(self) -> dict[str, Any]:
        prepared = self._prepared
        true_x = float(prepared.piece.true_x[self._frame])
        error = abs(self._x - true_x)
        return {
            "true_x": true_x,
            "follower_x": self._x,
            "error": error,
            "frame": self._frame,
            "piece": prepared.piece.name,
            "onset": bool(prepared.is_onset[self._frame]),
            "speed": self._speed,
            "score_window_start": self._score_start,
            "tracked": error <= self.reward_threshold,
        }

    def _prepare(self, piece: Piece) -> _PreparedPiece:
        """Crop, invert, pad and downscale one sheet, once, so that a step only slices it.

        Stored as uint8 (ink = 255) and scaled to [0, 1] per window: a float32 copy of every sheet
        would take 4x the memory (about as much as the native sheets themselves), for ~15 us a step.
        """
        is_onset = np.zeros(piece.n_frames, dtype=bool)
        is_onset[piece.onset_frames] = True
        x_low, x_high = self.geometry.x_range(piece.sheet_width)
        return _PreparedPiece(piece=piece, score=self.geometry.strip(piece.sheet), is_onset=is_onset,
                              x_low=x_low, x_high=x_high)

    def _make_observation_space(self) -> spaces.Dict:
        shapes = {
            "spectrogram": ((N_SPEC_BINS, self.spec_window), SPECTROGRAM_HIGH),
            "score": ((self.geometry.out_rows, self.geometry.out_columns), 1.0),
        }
        boxes = {}
        for key, (shape, high) in shapes.items():
            if self.difference_channels:
                low = np.stack([np.zeros(shape), np.full(shape, -high)]).astype(np.float32)
                boxes[key] = spaces.Box(low, np.full((2, *shape), high, dtype=np.float32), dtype=np.float32)
            else:
                boxes[key] = spaces.Box(0.0, high, shape=(1, *shape), dtype=np.float32)
        if self.observe_speed:
            boxes["speed"] = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        return spaces.Dict(boxes)

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_arguments(spec_window, score_window, score_factor, reward_threshold, actions, action_type,
                         max_episode_steps, render_mode) -> None:
        if action_type not in ACTION_TYPES:
            raise ValueError(f"action_type: {action_type!r} is not one of {ACTION_TYPES}")
        if int(spec_window) != spec_window or spec_window < 1:
            raise ValueError(f"spec_window: must be a positive number of frames, got {spec_window!r}")
        if (len(score_window) != 2 or any(int(s) != s or s < 1 for s in score_window)):
            raise ValueError(f"score_window: must be (rows, columns), positive integers, got {score_window!r}")
        if not score_factor > 0 or min(round(s * score_factor) for s in score_window) < 1:
            raise ValueError(f"score_factor: must be > 0 and keep the window at least 1 px, got {score_factor!r}")
        if not reward_threshold > 0:
            raise ValueError(f"reward_threshold: must be > 0 px, got {reward_threshold!r}")
        if action_type == "discrete" and (len(actions) == 0 or not all(math.isfinite(a) for a in actions)):
            raise ValueError(f"actions: need at least one finite speed change, got {actions!r}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps: must be None or >= 1, got {max_episode_steps!r}")
        if render_mode is not None and render_mode not in MSMDFollowEnv.metadata["render_modes"]:
            raise ValueError(
                f"render_mode: {render_mode!r} is not one of {MSMDFollowEnv.metadata['render_modes']} (or None)"
            )

    def _check_piece(self, piece: Piece) -> None:
        rows = self.score_window[0]
        if piece.sheet.shape[0] < rows:
            raise ValueError(
                f"score_window: {rows} rows do not fit the {piece.sheet.shape[0]}-row sheet of piece {piece.name!r}"
            )
        if piece.n_frames < self.spec_window:
            raise ValueError(
                f"piece {piece.name!r} has {piece.n_frames} spectrogram frames, fewer than "
                f"spec_window={self.spec_window}"
            )
        if len(piece.onset_frames) < 2:
            raise ValueError(
                f"piece {piece.name!r} has a single onset (frame {piece.first_onset_frame}); "
                "an episode needs at least two onsets at different frames"
            )
        low, high = float(piece.spectrogram.min()), float(piece.spectrogram.max())
        if low < 0 or high > SPECTROGRAM_HIGH:
            raise ValueError(
                f"piece {piece.name!r}: spectrogram values lie in [{low:.3g}, {high:.3g}], outside "
                f"[0, {SPECTROGRAM_HIGH}]; expected log10(1 + magnitude) of the reference spectrogram"
            )


def _with_difference(image: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """``image`` (1, H, W) stacked with ``image - previous`` into (2, H, W)."""
    stacked = np.empty((2, *image.shape[1:]), dtype=np.float32)
    stacked[0] = image[0]
    np.subtract(image[0], previous[0], out=stacked[1])
    return stacked


def _load_pieces(data: str | os.PathLike | Sequence[Piece] | None, split: str) -> list[Piece]:
    """The pieces named by the ``data`` argument (see :class:`MSMDFollowEnv`)."""
    if data is None:
        # Looked up through the module, so that tests can stand in for the default dataset (built on first use).
        data = dataset.default_dataset_dir()
    if isinstance(data, (str, os.PathLike)):
        return load_split(find_split_dir(data, split), progress=False)
    if isinstance(data, Piece):
        return [data]
    pieces = list(data)
    if not pieces:
        raise ValueError("data: the list of pieces is empty")
    for position, piece in enumerate(pieces):
        if not isinstance(piece, Piece):
            raise ValueError(f"data: item {position} is a {type(piece).__name__}, expected sfgym.data.piece.Piece")
    return pieces
