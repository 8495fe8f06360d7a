"""The baseline followers, the on-line time warping they use, and the follower registry."""

from __future__ import annotations

import subprocess
import sys
import types
from dataclasses import replace

import numpy as np
import pytest

from agents.baselines import ConstantTempoFollower, OnlineDTWFollower, OracleFollower
from agents.baselines.oltw import OnlineTimeWarping, unit_features
from agents.registry import make_follower
from sfgym.data.piece import N_SPEC_BINS, Piece
from sfgym.data.synthetic import synthetic_piece
from sfgym.evaluation import run_episode
from sfgym.metrics import piece_metrics
from sfgym.score.timing import MissingScoreTiming, median_speed_px_per_s


def toy_spectrogram(notes: np.ndarray, n_frames: int | None = None) -> np.ndarray:
    """The toy pieces' audio rule (see sfgym.data.synthetic) applied to any notes."""
    frames = np.floor(notes[:, 0] * 20 + 1e-9).astype(int)
    n_frames = n_frames or int(frames.max()) + 20
    spectrogram = np.zeros((N_SPEC_BINS, n_frames), dtype=np.float32)
    for frame, pitch in zip(frames, notes[:, 1], strict=True):
        band = int(np.clip(pitch - 35, 0, N_SPEC_BINS - 1))
        end = min(n_frames, frame + 6)
        spectrogram[band, frame:end] += np.exp(-np.arange(end - frame) / 2.0)
    return np.log10(1.0 + 10.0 * spectrogram).astype(np.float32)


def performed(score: Piece, tempo_ratio: float, rubato: float = 0.0, name: str = "performed") -> Piece:
    """``score`` (notes at the notated tempo) played at ``tempo_ratio`` × its tempo with a tempo wobble."""
    notated = score.notes[:, 0]
    grid = np.linspace(0, notated.max() + 1, 2000)
    tempo = tempo_ratio * (1 + rubato * np.sin(2 * np.pi * grid / 4.0))
    performance_time = np.concatenate([[0.0], np.cumsum(np.diff(grid) / tempo[:-1])])
    notes = score.notes.copy()
    notes[:, 0] = np.interp(notated, grid, performance_time) + 0.5  # half a second of silence first
    return Piece(name=name, sheet=score.sheet, coords=score.coords, coord2onset=score.coord2onset, notes=notes,
                 spectrogram=toy_spectrogram(notes), score_notes=score.notes.copy())


@pytest.fixture(scope="module")
def score() -> Piece:
    return synthetic_piece("score", n_onsets=40, frames_per_onset=8, seed=7)


# ---------------------------------------------------------------------------- oracle
def test_oracle_follows_the_truth_exactly(toy_pieces):
    for piece in toy_pieces:
        metrics = piece_metrics(run_episode(OracleFollower(), piece), piece)
        assert metrics.tr == 1.0 and metrics.tue
        assert np.max(metrics.onset_errors_px) < 1e-9


# ---------------------------------------------------------------------------- constant tempo
def test_constant_tempo_is_exact_when_the_performance_keeps_the_notated_tempo(score):
    piece = performed(score, tempo_ratio=1.0)
    metrics = piece_metrics(run_episode(ConstantTempoFollower(), piece), piece)
    assert metrics.tue and np.max(metrics.onset_errors_px) < 1e-6


def test_constant_tempo_moves_at_the_notated_tempo_and_loses_a_slower_performance(score):
    slow = performed(score, tempo_ratio=0.6)
    trajectory = run_episode(ConstantTempoFollower(), slow)
    assert trajectory.lost  # it runs ahead of a performance at 60 % of the tempo
    # Until then it is exactly where a performance in strict notated time would be.
    in_time = performed(score, tempo_ratio=1.0)
    shift = in_time.first_onset_frame - slow.first_onset_frame
    np.testing.assert_allclose(trajectory.follower_x, in_time.true_x[trajectory.frames + shift], atol=1e-6)


def test_constant_tempo_without_notated_timing_needs_a_speed(score):
    unnotated = replace(score, score_notes=None)
    with pytest.raises(MissingScoreTiming, match="no notated timing"):
        ConstantTempoFollower().reset(unnotated)
    follower = ConstantTempoFollower(px_per_second=100.0)
    trajectory = run_episode(follower, unnotated)
    # one second (20 frames) after the start the stand-in score has moved 100 px
    moved = trajectory.follower_x[20] - trajectory.follower_x[0]
    assert moved == pytest.approx(100.0, abs=2.0)


def test_median_speed_of_a_split(toy_dataset, toy_pieces):
    speeds = [(p.onset_x[-1] - p.onset_x[0]) / ((p.onset_frames[-1] - p.onset_frames[0]) / 20) for p in toy_pieces]
    assert median_speed_px_per_s(toy_dataset / "train") == pytest.approx(np.median(speeds), rel=1e-3)


# ---------------------------------------------------------------------------- on-line DTW
def test_oltw_aligns_a_time_warped_sequence():
    rng = np.random.default_rng(0)
    reference = np.zeros((N_SPEC_BINS, 300))
    start = 0
    while start < 300:  # chords of random length
        length = int(rng.integers(3, 10))
        reference[rng.integers(0, N_SPEC_BINS, 3), start : start + length] = 1 + rng.random()
        start += length
    for ratio in (0.7, 1.4):
        truth = np.arange(0, 299, ratio)  # reference frame of every input frame
        live = reference[:, np.round(truth).astype(int)] + 0.05 * rng.random((N_SPEC_BINS, len(truth)))
        dtw = OnlineTimeWarping(unit_features(reference), window=60)
        features = unit_features(live)
        path = [dtw.start(0, features[0])] + [dtw.step(f) for f in features[1:]]
        assert np.median(np.abs(np.array(path) - truth)) <= 2.0, ratio


def test_online_dtw_follows_a_tempo_varied_performance_that_the_metronome_loses(score):
    piece = performed(score, tempo_ratio=0.75, rubato=0.2)
    dtw = piece_metrics(run_episode(OnlineDTWFollower(reference_spectrogram=toy_spectrogram), piece), piece)
    metronome = piece_metrics(run_episode(ConstantTempoFollower(), piece), piece)
    assert dtw.tue and np.median(dtw.onset_errors_px) < 10
    assert not metronome.tue


def test_online_dtw_reads_only_the_newest_observed_frames(score):
    """The follower must depend on the newest observed frame (and the one before, for onsets) only."""
    piece = performed(score, tempo_ratio=0.9)
    padded = np.pad(piece.spectrogram, ((0, 0), (40, 0)))  # the environment pads 40 silent frames
    frames = range(piece.first_onset_frame, piece.first_onset_frame + 30)
    actions = {}
    for blank_older_columns in (False, True):
        follower = OnlineDTWFollower(reference_spectrogram=toy_spectrogram)
        follower.reset(piece)
        actions[blank_older_columns] = []
        for frame in frames:
            window = padded[None, :, frame : frame + 40].copy()
            if blank_older_columns:
                window[:, :, :-2] = 0
            actions[blank_older_columns].append(follower.act({"spectrogram": window}, {"frame": frame})[0])
    assert len(set(actions[False])) > 5  # it moves
    np.testing.assert_array_equal(actions[False], actions[True])


# ---------------------------------------------------------------------------- registry
def test_registry_makes_every_baseline():
    for name, cls, action_type in [("oracle", OracleFollower, "position"),
                                   ("constant_tempo", ConstantTempoFollower, "position"),
                                   ("online_dtw", OnlineDTWFollower, "position")]:
        follower = make_follower(name)
        assert isinstance(follower, cls) and follower.name == name and follower.action_type == action_type
    assert make_follower("constant_tempo", px_per_second=50.0).px_per_second == 50.0


def test_sfgym_finds_the_followers_of_agents_through_its_entry_point():
    # a fresh interpreter: only the 'sfgym.followers' entry point (pyproject.toml) can bring agents in
    code = ("import sys; from sfgym.followers import make_follower, needs_notated_tempo; "
            "print(type(make_follower('online_dtw')).__name__, needs_notated_tempo('constant_tempo'), "
            "needs_notated_tempo('online_dtw'), needs_notated_tempo('oracle'), needs_notated_tempo('run/best.pt'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["OnlineDTWFollower", "True", "True", "False", "False"]


def test_registry_rejects_unknown_and_missing(tmp_path):
    with pytest.raises(ValueError, match="not a baseline.*oracle"):
        make_follower("metronome")
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        make_follower(str(tmp_path / "missing.pt"))
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="unknown follower file type '.onnx'"):
        make_follower(str(tmp_path / "model.onnx"))


def test_registry_delegates_checkpoints_to_their_loaders(tmp_path, monkeypatch):
    loaded = []

    def fake_loader(kind):
        def load_follower(path, **kwargs):
            loaded.append((kind, path.name))
            follower = OracleFollower()
            follower.name = kind
            return follower
        return load_follower

    monkeypatch.setitem(sys.modules, "agents.supervised", types.SimpleNamespace(load_follower=fake_loader("sup")))
    monkeypatch.setitem(sys.modules, "agents.rl", types.SimpleNamespace(load_follower=fake_loader("rl")))
    (tmp_path / "best.pt").write_bytes(b"x")
    (tmp_path / "ppo.zip").write_bytes(b"x")
    assert make_follower(str(tmp_path / "best.pt")).name == "sup"
    assert make_follower(str(tmp_path / "ppo.zip")).name == "rl"
    assert loaded == [("sup", "best.pt"), ("rl", "ppo.zip")]
