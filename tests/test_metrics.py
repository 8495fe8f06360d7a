"""The metric definitions, pinned on hand-made trajectories whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from sfgym.data.piece import N_SPEC_BINS, SHEET_HEIGHT, Piece
from sfgym.metrics import PX_TO_CM, Trajectory, aggregate, piece_metrics, x_to_time


def make_piece(onset_frames, onset_x, name="hand", tail=10) -> Piece:
    """A piece with one notehead per onset at exactly the given frames and columns."""
    onset_frames = np.asarray(onset_frames)
    onset_x = np.asarray(onset_x, dtype=np.float32)
    notes = np.stack([onset_frames / 20 + 0.001, np.full(len(onset_frames), 60), np.full(len(onset_frames), 0.2)], 1)
    coords = np.stack([np.full(len(onset_x), SHEET_HEIGHT / 2), onset_x], 1)
    width = int(onset_x.max()) + 50
    return Piece(name=name, sheet=np.full((SHEET_HEIGHT, width), 255, np.uint8), coords=coords,
                 coord2onset={i: i for i in range(len(onset_x))}, notes=notes,
                 spectrogram=np.zeros((N_SPEC_BINS, int(onset_frames[-1]) + tail), np.float32))


@pytest.fixture
def piece():
    # onsets every 10 frames (0.5 s), noteheads every 100 px: 200 px/s
    return make_piece([10, 20, 30, 40], [100, 200, 300, 400])


def run(piece, follower_x, frames=None, **kwargs) -> Trajectory:
    frames = np.arange(piece.first_onset_frame, piece.last_onset_frame + 1) if frames is None else np.asarray(frames)
    follower_x = np.broadcast_to(np.asarray(follower_x, dtype=float), frames.shape) if np.ndim(follower_x) == 0 \
        else np.asarray(follower_x, dtype=float)
    return Trajectory(agent="a", piece=piece.name, seed=0, frames=frames, follower_x=follower_x,
                      true_x=piece.true_x[frames], **kwargs)


def test_following_the_truth_scores_perfectly(piece):
    m = piece_metrics(run(piece, piece.true_x[10:41]), piece)
    row = m.as_row()
    assert (m.tr, m.tue, m.n_reached, m.lost_frame) == (1.0, True, 4, None)
    assert row["error_mean_px"] == row["error_median_px"] == row["error_std_px"] == 0.0
    assert all(row[k] == 1.0 for k in ("within_0.05s", "within_0.1s", "within_0.5s", "within_1s", "within_5s"))


def test_constant_offset_gives_that_error_and_its_time(piece):
    # 30 px ahead of the truth = 0.15 s ahead (200 px/s); the last onset's x + 30 lies right of every
    # notehead, which maps to the last onset time, i.e. no time error there.
    m = piece_metrics(run(piece, piece.true_x[10:41] + 30), piece)
    row = m.as_row()
    assert m.tr == 1.0 and m.tue
    assert row["error_mean_px"] == pytest.approx(30) and row["error_median_px"] == pytest.approx(30)
    assert row["error_std_px"] == pytest.approx(0, abs=1e-9)
    assert row["error_mean_cm"] == pytest.approx(30 * PX_TO_CM)
    np.testing.assert_allclose(m.onset_time_errors_s, [0.15, 0.15, 0.15, 0.0], atol=1e-9)
    assert row["within_0.05s"] == 0.25 and row["within_0.1s"] == 0.25
    assert row["within_0.5s"] == 1.0


def test_losing_the_target_stops_counting_onsets(piece):
    # on the truth until frame 24, then 200 px off: lost at frame 25, so onsets 10 and 20 were reached
    x = piece.true_x[10:41].astype(float).copy()
    x[15:] += 200  # frame 25 onwards
    m = piece_metrics(run(piece, x), piece)
    assert m.lost_frame == 25
    assert m.tr == 0.5 and not m.tue
    np.testing.assert_array_equal(m.reached, [True, True, False, False])
    np.testing.assert_allclose(m.onset_errors_px, [0, 0])
    assert np.isinf(m.onset_time_errors_s[2:]).all()
    row = m.as_row()
    assert row["within_5s"] == 0.5  # missed onsets count as misses


def test_the_onset_at_the_frame_of_loss_is_not_reached(piece):
    x = piece.true_x[10:41].astype(float).copy()
    x[20:] += 171  # lost exactly at frame 30, an onset frame
    m = piece_metrics(run(piece, x), piece)
    assert m.lost_frame == 30
    np.testing.assert_array_equal(m.reached, [True, True, False, False])


def test_episode_ending_early_without_loss_misses_the_rest(piece):
    # an episode cut at frame 22 (e.g. a time limit) reached onsets 10 and 20 only
    m = piece_metrics(run(piece, piece.true_x[10:23], frames=np.arange(10, 23)), piece)
    assert m.lost_frame is None and m.tr == 0.5 and not m.tue


def test_error_is_measured_at_the_same_frame_as_the_truth(piece):
    # a follower that plays the truth two frames late is wrong at every onset by 2 frames' motion
    late = piece.true_x[np.arange(10, 41) - 2]
    m = piece_metrics(run(piece, late), piece)
    np.testing.assert_allclose(m.onset_errors_px, [0, 20, 20, 20])


def test_aggregate_pools_onsets_not_ratios():
    short = make_piece([10, 20, 30, 40], [100, 200, 300, 400], name="short")
    long = make_piece(np.arange(10, 90, 10), np.arange(100, 900, 100), name="long")
    all_reached = piece_metrics(run(short, short.true_x[10:41] + 10), short)
    x = long.true_x[10:81].astype(float).copy()
    x[15:] += 500  # lost at frame 25: onsets 10, 20 reached out of 8
    two_of_eight = piece_metrics(run(long, x), long)
    summary = aggregate([all_reached, two_of_eight])
    assert summary["tr"] == pytest.approx(6 / 12)  # not the mean of ratios, (1 + 0.25) / 2
    assert summary["tue"] == 0.5
    # errors pooled over the 6 reached onsets: four of 10 px, two of 0 px
    assert summary["error_mean_px"] == pytest.approx(40 / 6)
    assert summary["error_median_px"] == pytest.approx(10)
    assert summary["onsets"] == 12 and summary["runs"] == 2 and summary["pieces"] == 2


def test_ms_per_frame_is_act_time_over_steps(piece):
    m = piece_metrics(run(piece, piece.true_x[10:41], act_seconds=0.3), piece)  # 31 frames, 30 steps
    assert m.as_row()["ms_per_frame"] == pytest.approx(10.0)
    assert aggregate([m, m])["ms_per_frame"] == pytest.approx(10.0)


def test_x_to_time_inverts_the_ground_truth():
    onset_x, onset_t = np.array([100.0, 200, 400]), np.array([1.0, 2, 3])
    np.testing.assert_allclose(x_to_time([100, 150, 300, 400, 50, 999], onset_x, onset_t), [1, 1.5, 2.5, 3, 1, 3])


def test_x_to_time_takes_the_passage_nearest_the_true_time_when_x_repeats():
    # the score goes 100 -> 300 -> 100 -> 300 (a repeat): x = 200 is passed at 1.5 s, 2.5 s and 3.5 s
    onset_x, onset_t = np.array([100.0, 300, 100, 300]), np.array([1.0, 2, 3, 4])
    np.testing.assert_allclose(x_to_time([200, 200, 200], onset_x, onset_t, reference_times=[1.4, 2.6, 4.0]),
                               [1.5, 2.5, 3.5])


def test_trajectory_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        Trajectory("a", "p", 0, frames=[1, 2, 3], follower_x=[1, 2], true_x=[1, 2, 3])
    with pytest.raises(ValueError, match="strictly increasing"):
        Trajectory("a", "p", 0, frames=[1, 1], follower_x=[1, 2], true_x=[1, 2])
    with pytest.raises(ValueError, match="NaN"):
        Trajectory("a", "p", 0, frames=[1, 2], follower_x=[1, np.nan], true_x=[1, 2])


def test_scoring_against_the_wrong_piece_is_an_error(piece):
    other = make_piece([10, 20], [100, 200], name="other")
    with pytest.raises(ValueError, match="scored against"):
        piece_metrics(run(piece, piece.true_x[10:41]), other)
