"""A learned follower that reads the music: a matching trunk's evidence, tracked through notated time.

:class:`MatchingTracker` puts a pre-trained :class:`~agents.networks.MatchingTrunk` (``sfgym train
trunk``: which column of the score does the sound of the last second belong to?) under the forward
filter of :mod:`agents.tracking.filter`. Before the performance, every column of the sheet is embedded
once, and every notated frame of the score is given the column of its sheet position (through the
noteheads and the notated timing, as the metronome and on-line DTW use them). Each performed frame, the
sound of the observation's last ``match_frames`` frames is embedded and compared with the columns of the
positions the filter considers; the filter returns the notated position and tempo, and the follower asks
for the sheet x there (one frame ahead, at the inferred tempo). With ``cover_px`` > 0 (:class:`FilterSettings`;
the shipped follower's 140) it reports instead the x whose ±``cover_px`` holds the most of the filter's belief
(:func:`covering_x`): where the belief has two near peaks, a position within reach of both, not a bet on one.

What the trunk hears is first brought to the level and spectral tilt of its training data
(:class:`~agents.tracking.normalize.SpectrumNormalizer`, causal), so that a quieter or darker piano is
heard as the one it learned from. With ``chroma_weight`` > 0 (:class:`FilterSettings`) a second, classical
piece of evidence joins the trunk's logits: the cosine of the newest frame's chroma and onset-chroma features
(:class:`~sfgym.score.features.ChromaOnsetFeatures`, as on-line DTW uses them) with those of the
score synthesized at each notated position. The trunk has learned what a piano it knows sounds like in
music it knows; chroma knows neither but does not depend on the timbre, so each covers the other's blind
spot. The trunk is the learned part, the filter the recurrent one; unlike the velocity policies and the
regressors on the same trunk, nothing here can learn a typical speed in place of listening.

``sfgym evaluate --agents runs/trunk/best.pt`` follows with this tracker (a trunk checkpoint is read as
one); the shipped ``pretrained`` follower is one (:mod:`agents.pretrained`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.networks import MatchingTrunk
from agents.runs import read_checkpoint, resolve_checkpoint, trunk_of, write_checkpoint_payload
from agents.tracking.filter import FilterSettings, TempoPositionFilter
from agents.tracking.normalize import SpectrumNormalizer
from sfgym.data.piece import Piece
from sfgym.envs.geometry import DEFAULT_GEOMETRY, score_observation_values
from sfgym.followers import Follower
from sfgym.score.features import ChromaOnsetFeatures, newest_frame_features, reference_features
from sfgym.score.timing import ScoreMap, notated_notes

LOOK_AHEAD = 1.0
"""Performed frames between the newest heard frame and the frame the position is asked for."""

TAIL_S = 2.0
"""Notated seconds kept after the last onset (its notes sound on)."""


def notated_positions_x(score_map: ScoreMap, fps: float) -> np.ndarray:
    """Sheet x of each notated frame of a score, from its start to :data:`TAIL_S` after its last onset."""
    n_positions = int(np.ceil((score_map.onset_times[-1] + TAIL_S) * fps)) + 1
    return score_map.x_at(np.arange(n_positions) / fps)


@torch.no_grad()
def position_embeddings(trunk: MatchingTrunk, strip: torch.Tensor, position_x: np.ndarray,
                        geometry=DEFAULT_GEOMETRY) -> np.ndarray:
    """float32 ``(positions, features)``: the trunk's embedding of the sheet column at each position's x.

    ``strip`` is the observation's score strip, ``(1, rows, columns)``. The column is the one a score window
    centred on x is centred on, as the trunk was trained to find it (its embedding ``j`` is strip column
    ``j + margin``)."""
    column = geometry.centre_columns(position_x) - trunk.margin
    columns = trunk.column_embeddings(strip)[0].numpy()
    return columns[np.clip(column, 0, len(columns) - 1)]


class MatchingTracker(Follower):
    """A matching trunk's evidence, filtered over (notated position, tempo); see the module docstring.

    Args:
        trunk: a pre-trained :class:`~agents.networks.MatchingTrunk` (evaluated in inference mode), or several
            of the same settings (e.g. one per seed): their logits are averaged, which is steadier than any one.
        name: shown in tables and legends.
        settings: the filter's motion model and temperature (:class:`FilterSettings`).
        px_per_second: stand-in speed for pieces without notated timing
            (:func:`~sfgym.score.timing.notated_notes`).
        normalize: bring what is heard to the training data's level and tilt (:class:`SpectrumNormalizer`;
            without it, a piano 17 dB quieter than the training one was lost within seconds).
    """

    action_type = "position"
    stochastic = False
    needs_notated_tempo = True

    def __init__(self, trunk: MatchingTrunk | Sequence[MatchingTrunk], name: str = "matching_tracker",
                 settings: FilterSettings = FilterSettings(), px_per_second: float | None = None, normalize: bool = True):
        trunks = [trunk] if isinstance(trunk, MatchingTrunk) else list(trunk)
        if not trunks or not all(isinstance(member, MatchingTrunk) for member in trunks):
            raise TypeError(f"a MatchingTracker needs matching trunks, got {[type(m).__name__ for m in trunks]}")
        if trunks[0].config.spectrogram_shape[0] != 1:
            raise ValueError("a MatchingTracker reads single-channel observations (no difference channels)")
        if any(member.config != trunks[0].config for member in trunks[1:]):
            raise ValueError("the trunks of a MatchingTracker must share their settings (TrunkConfig)")
        self.trunks = [member.eval() for member in trunks]
        self.trunk = self.trunks[0]
        self.name = name
        self.settings = settings
        self.px_per_second = px_per_second
        self.normalizer = SpectrumNormalizer() if normalize else None
        self.geometry = DEFAULT_GEOMETRY
        self._chroma = ChromaOnsetFeatures()
        self._filter: TempoPositionFilter | None = None

    # ------------------------------------------------------------------ per piece
    @torch.no_grad()
    def reset(self, piece: Piece, seed: int | None = None) -> None:
        geometry = self.geometry
        strip = torch.from_numpy(score_observation_values(geometry.strip(piece.sheet)))[None]
        score_notes = notated_notes(piece, self.px_per_second)
        self._map = ScoreMap.of(piece, score_notes)
        self._fps = float(piece.fps)
        position_x = notated_positions_x(self._map, self._fps)
        n_positions = len(position_x)
        # per trunk: the embedding of each notated position's column
        self._position_columns = [position_embeddings(trunk, strip, position_x, geometry) for trunk in self.trunks]
        self._position_chroma = None  # the synthesized score's chroma features at each notated position
        if self.settings.chroma_weight > 0:
            # keyed by the features' settings, as on-line DTW keys its chroma: both followers share one synthesis
            reference = reference_features(score_notes, self._chroma, repr(self._chroma))
            self._position_chroma = reference[np.minimum(np.arange(n_positions), len(reference) - 1)]
        self._width = float(piece.sheet_width)
        self._filter = TempoPositionFilter(n_positions, self._map.first_onset_time * self._fps, self.settings)
        if self.normalizer is not None:
            self.normalizer.reset()

    # ------------------------------------------------------------------ per frame
    @torch.no_grad()
    def act(self, observation: dict[str, np.ndarray], info: dict[str, Any] | None = None) -> np.ndarray:
        if self._filter is None:
            raise RuntimeError("MatchingTracker: call reset(piece) before act()")
        spectrogram = np.asarray(observation["spectrogram"], dtype=np.float32)[0]
        heard_chroma = newest_frame_features(self._chroma, observation) if self._position_chroma is not None else None
        heard = spectrogram[:, -self.trunk.config.match_frames:]
        if self.normalizer is not None:
            self.normalizer.hear(heard[:, -1])
            heard = self.normalizer.normalize(heard)
        heard = torch.from_numpy(np.ascontiguousarray(heard))[None]
        sounds = [trunk.sound_embeddings(heard)[0].numpy() for trunk in self.trunks]

        def logits(low: int, high: int) -> np.ndarray:
            evidence = sum(columns[low:high] @ sound for columns, sound in zip(self._position_columns, sounds)) / len(sounds)
            if heard_chroma is not None:
                evidence = evidence + self.settings.chroma_weight * (self._position_chroma[low:high] @ heard_chroma)
            return evidence

        position, tempo = self._filter.step(logits)
        x = float(self._map.x_at((position + LOOK_AHEAD * tempo) / self._fps))
        if self.settings.cover_px > 0:
            low, belief = self._filter.position_belief()
            belief_x = self._map.x_at((np.arange(low, low + len(belief)) + LOOK_AHEAD * tempo) / self._fps)
            x = covering_x(belief_x, belief, self.settings.cover_px, preferred=x)
        return np.array([x / self._width], dtype=np.float32)


COVER_SLACK = 0.01
""":func:`covering_x` moves away from the preferred x only to cover this much more belief: the belief's thin tails
(a millionth here and there) would otherwise decide where in a wide plateau of full cover the follower stands."""


def covering_x(xs: np.ndarray, weights: np.ndarray, radius: float, preferred: float, slack: float = COVER_SLACK) -> float:
    """The x among ``xs`` (sheet x of each position, in score order) whose ``[x - radius, x + radius]`` holds the
    most of ``weights`` (within ``slack`` of the most); of several such, the one nearest ``preferred``.

    The target counts as lost beyond 170 px: the reported x should be within reach of as much belief as it can
    be. It is the mode where the belief has one peak, and between two near ones where it has two."""
    xs = np.maximum.accumulate(np.asarray(xs, dtype=np.float64))  # noteheads of a chord may stand a pixel apart
    cumulative = np.concatenate([[0.0], np.cumsum(weights)])
    covered = cumulative[np.searchsorted(xs, xs + radius, "right")] - cumulative[np.searchsorted(xs, xs - radius, "left")]
    best = xs[covered >= covered.max() - slack - 1e-12]
    return float(best[np.argmin(np.abs(best - preferred))])


ENSEMBLE_KEY = "member_trunks"
"""Checkpoint key of a trunk ensemble (:func:`save_trunk_ensemble`): every member's trunk weights, in order; the
checkpoint is otherwise its first member's, so ``--init-from`` and the loaders read it as that trunk."""


def _trunk(weights: dict[str, torch.Tensor], config, source: str) -> MatchingTrunk:
    trunk = MatchingTrunk(config)
    trunk.load_trunk(weights, source=source)
    return trunk


def load_follower(path: str | Path, name: str | None = None, **settings: Any) -> MatchingTracker:
    """A :class:`MatchingTracker` on the matching trunk of a checkpoint (a ``sfgym train trunk`` run's
    ``best.pt``, or its directory), or on all the trunks of an ensemble (:func:`save_trunk_ensemble`);
    ``settings`` override :class:`FilterSettings` fields, except ``px_per_second`` and ``normalize`` which go
    to the tracker."""
    path = resolve_checkpoint(path)
    payload = read_checkpoint(path)
    weights, trunk_config = trunk_of(payload)
    if trunk_config.kind != MatchingTrunk.KIND:
        raise ValueError(f"{path}: a {trunk_config.kind!r} trunk; the tracker needs a matching trunk "
                         "(sfgym train trunk --config trunk_matching)")
    members = payload.get(ENSEMBLE_KEY)
    if members is None:
        trunks = [_trunk(weights, trunk_config, str(path))]
    elif isinstance(members, list) and members and all(isinstance(member, dict) for member in members):
        trunks = [_trunk(member, trunk_config, f"{path} (trunk {index} of {len(members)})")
                  for index, member in enumerate(members)]
    else:
        raise ValueError(f"{path}: its '{ENSEMBLE_KEY}' must be a non-empty list of trunk weights")
    px_per_second = settings.pop("px_per_second", None)
    normalize = bool(settings.pop("normalize", True))
    filter_settings = FilterSettings.checked(settings)
    run = path.parent.name if path.name in ("best.pt", "last.pt") else path.stem
    return MatchingTracker(trunks, name=name or f"tracker:{run}", settings=filter_settings,
                           px_per_second=px_per_second, normalize=normalize)


def save_trunk_ensemble(checkpoints: Sequence[str | Path], out: str | Path) -> Path:
    """Write one checkpoint holding the matching trunks of ``checkpoints`` (runs or files, same trunk settings),
    which :func:`load_follower` follows with their logits averaged (atomically; returns ``out``).

    Raises:
        ValueError: fewer than two checkpoints, a trunk that is not a matching one, or trunks of other settings.
    """
    paths = [resolve_checkpoint(checkpoint) for checkpoint in checkpoints]
    if len(paths) < 2:
        raise ValueError(f"an ensemble needs at least two trunks, got {len(paths)}")
    payloads = [read_checkpoint(path) for path in paths]
    members = [trunk_of(payload) for payload in payloads]
    first_config = members[0][1]
    for path, (_, config) in zip(paths, members):
        if config.kind != MatchingTrunk.KIND:
            raise ValueError(f"{path}: a {config.kind!r} trunk; an ensemble is of matching trunks")
        if config != first_config:
            raise ValueError(f"{path}: its trunk settings differ from {paths[0]}'s; an ensemble's trunks must match")
    payload = dict(payloads[0])
    payload.pop("path")
    payload["trunk"] = first_config.settings()
    # the first member's weights are its model_state's trunk: the same tensors, so that torch stores them once
    payload["model_state"] = {**{key: value for key, value in payload["model_state"].items() if not key.startswith("trunk.")},
                              **{f"trunk.{key}": value for key, value in members[0][0].items()}}
    payload[ENSEMBLE_KEY] = [weights for weights, _ in members]
    payload["member_sources"] = [str(path) for path in paths]
    payload["member_metrics"] = [member.get("metrics") for member in payloads]
    return write_checkpoint_payload(out, payload)


__all__ = ["COVER_SLACK", "ENSEMBLE_KEY", "LOOK_AHEAD", "MatchingTracker", "covering_x", "load_follower", "notated_positions_x", "position_embeddings",
           "save_trunk_ensemble"]
