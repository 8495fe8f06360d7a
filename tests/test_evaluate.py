"""`sfgym evaluate` end to end on the toy dataset, and the Python evaluation API."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from agents.baselines import OracleFollower
from sfgym.cli import main
from sfgym.data.msmd import write_piece
from sfgym.data.piece import with_wrong_tempo_mark
from sfgym.evaluation import evaluate, run_evaluation
from sfgym.followers import register_follower

TIMING_COLUMNS = ["ms_per_frame", "reset_s"]


def test_evaluate_command_on_the_toy_dataset(toy_dataset, tmp_path, capsys):
    out = tmp_path / "results"
    rc = main(["evaluate", "--agents", "oracle,constant_tempo", "--data", str(toy_dataset), "--split", "test",
               "--workers", "1", "--out", str(out)])
    assert rc == 0

    results = pd.read_csv(out / "results.csv")
    for column in ("agent", "piece", "tr", "tue", "error_mean_px", "error_median_px", "within_0.5s", "ms_per_frame"):
        assert column in results.columns
    assert sorted(results["piece"].unique()) == ["toy_b", "toy_c"]  # the test split
    assert list(results["agent"].unique()) == ["oracle", "constant_tempo"] and len(results) == 4
    oracle = results[results["agent"] == "oracle"]
    assert (oracle["tr"] == 1.0).all() and oracle["tue"].all()
    assert np.allclose(oracle[["error_mean_px", "error_median_px"]], 0.0, atol=1e-9)
    # the toy pieces are performed in strict notated time (up to the MIDI's tick rounding), so the metronome
    # follows them to the end
    assert (results[results["agent"] == "constant_tempo"]["tr"] == 1.0).all()
    assert (results["ms_per_frame"] > 0).all()

    summary = (out / "summary.md").read_text()
    assert "| agent | TR | TUE |" in summary and "ms/frame" in summary
    oracle_row = next(line for line in summary.splitlines() if line.startswith("| oracle |"))
    assert oracle_row.startswith("| oracle | 1.000 | 1.000 | 0.0 |")
    assert "| constant_tempo |" in summary
    assert (out / "plots" / "error_histogram.png").stat().st_size > 1000
    assert sorted(p.name for p in (out / "plots" / "positions").iterdir()) == ["toy_b.png", "toy_c.png"]
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files
    assert "| oracle | 1.000" in capsys.readouterr().out


def test_a_wrong_tempo_mark_scales_the_notated_times_and_keeps_the_ground_truth(toy_pieces):
    piece = toy_pieces[1]
    scaled = with_wrong_tempo_mark(piece, 2.0)
    assert np.allclose(scaled.score_notes[:, [0, 2]], 2.0 * piece.score_notes[:, [0, 2]])
    assert np.array_equal(scaled.score_notes[:, 1], piece.score_notes[:, 1])
    assert np.array_equal(scaled.onset_frames, piece.onset_frames) and np.array_equal(scaled.true_x, piece.true_x)
    assert scaled.score_notes is not piece.score_notes and piece.score_notes[-1, 0] < scaled.score_notes[-1, 0]
    with pytest.raises(ValueError, match="must be positive"):
        with_wrong_tempo_mark(piece, 0.0)
    with pytest.raises(ValueError, match="toy_b.*no notated timing"):
        with_wrong_tempo_mark(replace(piece, score_notes=None), 2.0)


def test_evaluate_command_with_a_wrong_tempo_mark_misleads_the_metronome(toy_dataset, tmp_path, capsys):
    """The toy pieces are played in notated time: the metronome follows them to the end, unless it reads a mark
    twice too slow (it then plays at half the speed and is lost)."""
    rc = main(["evaluate", "--agents", "constant_tempo,oracle", "--data", str(toy_dataset), "--workers", "1",
               "--no-plots", "--tempo-mark-error", "2", "--out", str(tmp_path / "out")])
    assert rc == 0
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert (results[results["agent"] == "constant_tempo"]["tr"] < 0.8).all()
    assert (results[results["agent"] == "oracle"]["tr"] == 1.0).all()  # the ground truth is the performance's
    assert "tempo marks off by 2" in (tmp_path / "out" / "summary.md").read_text()
    capsys.readouterr()
    assert main(["evaluate", "--agents", "constant_tempo", "--data", str(toy_dataset), "--workers", "1",
                 "--no-plots", "--tempo-mark-error", "-1", "--out", str(tmp_path / "bad")]) == 1
    assert "must be positive" in capsys.readouterr().err
    # checked before any data is read: a missing dataset is not what the error is about
    assert main(["evaluate", "--agents", "constant_tempo", "--data", str(tmp_path / "missing"), "--workers", "1",
                 "--no-plots", "--tempo-mark-error", "0", "--out", str(tmp_path / "bad2")]) == 1
    assert "must be positive" in capsys.readouterr().err


def test_evaluate_command_accepts_a_split_directory(toy_dataset, tmp_path):
    out = tmp_path / "results"
    rc = main(["evaluate", "--agents", "oracle", "--data", str(toy_dataset / "valid"), "--workers", "1",
               "--no-plots", "--out", str(out)])
    assert rc == 0
    assert pd.read_csv(out / "results.csv")["piece"].tolist() == ["toy_a"]
    assert not (out / "plots").exists()


def test_evaluate_command_reports_bad_followers(toy_dataset, tmp_path, capsys):
    assert main(["evaluate", "--agents", "oracle,metronome", "--data", str(toy_dataset), "--out", str(tmp_path)]) == 1
    assert "unknown follower 'metronome'" in capsys.readouterr().err
    missing = tmp_path / "nothing.pt"
    assert main(["evaluate", "--agents", str(missing), "--data", str(toy_dataset), "--out", str(tmp_path)]) == 1
    assert "no such checkpoint" in capsys.readouterr().err


def test_pieces_without_score_midi_use_the_train_median_speed(toy_pieces, tmp_path, capsys):
    root = tmp_path / "unnotated"
    for split, pieces in {"train": toy_pieces, "test": toy_pieces[:1]}.items():
        for piece in pieces:
            write_piece(root / split, replace(piece, score_notes=None))
    rc = main(["evaluate", "--agents", "constant_tempo", "--data", str(root), "--workers", "1", "--no-plots",
               "--out", str(tmp_path / "out")])
    assert rc == 0
    assert "median speed" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "out" / "results.csv")["tr"].iloc[0] > 0


class JitteryOracle(OracleFollower):
    """A stochastic follower: the truth plus seeded noise of a few pixels."""

    name = "jittery"
    stochastic = True

    def reset(self, piece, seed=None):
        super().reset(piece, seed)
        self._rng = np.random.default_rng(seed)

    def act(self, observation, info):
        return super().act(observation, info) + self._rng.normal(0, 3 / self._width)


def test_stochastic_followers_run_once_per_seed(toy_pieces):
    register_follower("jittery", JitteryOracle)
    results = evaluate(["oracle", "jittery"], toy_pieces[:2], seeds=3, workers=1, progress=False)
    counts = results.groupby("agent").size()
    assert counts["oracle"] == 2 and counts["jittery"] == 6
    jittery = results[results["agent"] == "jittery"]
    assert jittery["seed"].tolist() == [0, 1, 2, 0, 1, 2]
    assert jittery["error_mean_px"].nunique() == 6 and (jittery["error_mean_px"] > 0).all()
    again = evaluate(["jittery"], toy_pieces[:2], seeds=3, workers=1, progress=False)
    pd.testing.assert_series_equal(again["error_mean_px"], jittery["error_mean_px"].reset_index(drop=True))


@pytest.mark.slow
def test_parallel_workers_give_the_same_results(toy_pieces):
    serial = evaluate(["oracle", "constant_tempo"], toy_pieces, workers=1, progress=False)
    parallel = run_evaluation(["oracle", "constant_tempo"], toy_pieces, workers=2, progress=False)
    pd.testing.assert_frame_equal(serial.drop(columns=TIMING_COLUMNS),
                                  parallel.results.drop(columns=TIMING_COLUMNS))
    summary = parallel.summary()
    assert summary["agent"].tolist() == ["oracle", "constant_tempo"]
    assert summary.loc[0, "tr"] == 1.0 and summary.loc[0, "error_mean_px"] == pytest.approx(0.0, abs=1e-9)


def test_labels_must_be_distinct(toy_pieces):
    with pytest.raises(ValueError, match="distinct labels"):
        evaluate(["oracle", "oracle"], toy_pieces[:1], workers=1, progress=False)
    results = evaluate(["a=oracle", "b=oracle"], toy_pieces[:1], workers=1, progress=False)
    assert results["agent"].tolist() == ["a", "b"]


def test_follower_objects_can_be_evaluated_directly(toy_pieces):
    follower = JitteryOracle()  # e.g. a model in training, never saved
    results = evaluate([follower], toy_pieces[:1], seeds=2, workers=1, progress=False)
    assert results["agent"].tolist() == ["jittery", "jittery"] and (results["tr"] == 1.0).all()


def test_evaluate_command_refuses_an_out_that_is_a_file_or_holds_results(toy_dataset, tmp_path, capsys):
    a_file = tmp_path / "results.txt"
    a_file.write_text("keep me")
    base = ["evaluate", "--agents", "oracle", "--data", str(toy_dataset / "valid"), "--workers", "1", "--no-plots"]
    for out in (a_file, a_file / "inside"):
        assert main(base + ["--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert "is a file, not a directory" in err and len(err.strip().splitlines()) == 1
    assert a_file.read_text() == "keep me"

    out = tmp_path / "results"
    assert main(base + ["--out", str(out)]) == 0
    first = (out / "results.csv").read_text()
    assert main(base + ["--out", str(out), "--pieces", "nothing"]) == 1  # refused before anything runs
    err = capsys.readouterr().err
    assert "already holds the results" in err and "--overwrite" in err
    assert (out / "results.csv").read_text() == first
    assert main(base + ["--out", str(out), "--overwrite"]) == 0
    assert "replacing the results" in capsys.readouterr().out


class ThreadCountingOracle(OracleFollower):
    """The oracle, off by 10 px per torch thread beyond the first: its errors show the threads it ran on."""

    name = "thread_counting"
    seen_threads: list[int] = []

    def act(self, observation, info):
        import torch

        threads = torch.get_num_threads()
        ThreadCountingOracle.seen_threads.append(threads)
        return super().act(observation, info) + 10 * (threads - 1) / self._width


@pytest.fixture
def two_torch_threads():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # what torch picks by itself on a 2-core machine
    yield
    torch.set_num_threads(threads)


def test_evaluate_runs_followers_on_one_torch_thread_unless_told(toy_dataset, tmp_path, monkeypatch,
                                                                 two_torch_threads):
    import torch

    register_follower("thread_counting", ThreadCountingOracle)
    monkeypatch.setattr(ThreadCountingOracle, "seen_threads", [])
    base = ["evaluate", "--agents", "thread_counting", "--data", str(toy_dataset / "valid"), "--workers", "1",
            "--no-plots"]
    assert main(base + ["--out", str(tmp_path / "default")]) == 0
    assert set(ThreadCountingOracle.seen_threads) == {1}
    assert torch.get_num_threads() == 2  # restored afterwards
    ThreadCountingOracle.seen_threads.clear()
    assert main(base + ["--out", str(tmp_path / "three"), "--torch-threads", "3"]) == 0
    assert set(ThreadCountingOracle.seen_threads) == {3}
    assert main(base + ["--out", str(tmp_path / "zero"), "--torch-threads", "0"]) == 1


def test_evaluation_workers_run_on_one_torch_thread(toy_pieces, monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 16)  # a big machine: still one thread per worker
    evaluation = run_evaluation([ThreadCountingOracle()], toy_pieces[:2], workers=2, progress=False)
    assert evaluation.workers == 2
    assert evaluation.results["error_mean_px"].max() == pytest.approx(0.0, abs=1e-6)
