"""Live use: following silence, exporting positions, the push-style API and torch threads of `sfgym follow`."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import soundfile

from agents.baselines import OracleFollower
from agents.registry import make_follower
from sfgym.cli import main
from sfgym.followers import register_follower
from sfgym.live import LiveFollowing, SilentInputWarning

from conftest import MSMD_SAMPLE_PIECE, MSMD_SAMPLE_SPLIT

RATE = 22050
SAMPLE_SCORE = MSMD_SAMPLE_SPLIT / "score" / f"{MSMD_SAMPLE_PIECE}.npz"


def _noise_bursts(seconds: float, every_s: float = 0.4, seed: int = 0) -> np.ndarray:
    """Quiet noise with a loud burst every ``every_s`` seconds: audio a follower can hear (not music: the tests
    that follow it do not wait for the music)."""
    rng = np.random.default_rng(seed)
    audio = (0.01 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)
    for start in range(0, len(audio), int(every_s * RATE)):
        audio[start : start + 2000] += (0.3 * rng.standard_normal(2000)).astype(np.float32)[: len(audio) - start]
    return audio


def test_follow_warns_on_a_silent_recording_and_holds_the_position(tmp_path, capsys) -> None:
    wav = tmp_path / "silence.wav"
    soundfile.write(str(wav), np.zeros(4 * RATE, dtype=np.float32), RATE)
    base = ["follow", str(wav), "--score", str(SAMPLE_SCORE), "--agent", "online_dtw", "--score-speed", "100",
            "--speed", "0"]
    held, drifting = tmp_path / "held.csv", tmp_path / "drifting.csv"
    assert main(base + ["--positions", str(held)]) == 0
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if "silent" in line]
    assert len(warning) == 1 and str(wav) in warning[0] and "holds its position" in warning[0]
    positions = pd.read_csv(held)
    assert len(positions) >= 79 and positions["x"].nunique() == 1 and positions["silent"].all()
    assert "were silent" in captured.out
    # asked on silence, on-line time warping wanders off: the hold is what keeps it in place
    assert main(base + ["--positions", str(drifting), "--no-hold-on-silence"]) == 0
    wandering = pd.read_csv(drifting)["x"]
    assert wandering.max() - wandering.min() > 20


def test_push_api_gives_the_positions_of_following_the_whole_file(toy_dataset, tmp_path) -> None:
    score = toy_dataset / "train" / "score" / "toy_b.npz"
    audio = _noise_bursts(6.0)
    wav, csv = tmp_path / "take.wav", tmp_path / "take.csv"
    soundfile.write(str(wav), audio, RATE, subtype="FLOAT")
    assert main(["follow", str(wav), "--score", str(score), "--agent", "online_dtw", "--speed", "0",
                 "--positions", str(csv), "--no-wait-for-music"]) == 0
    whole_file = pd.read_csv(csv)
    assert list(whole_file.columns) == ["frame", "time_s", "x", "system", "page_turn", "silent"]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically

    live = LiveFollowing.for_score(score, make_follower("online_dtw"), max_seconds=len(audio) / RATE,
                                   wait_for_music=None)
    live.start(RATE)
    pushed = []
    sizes = np.random.default_rng(1).integers(1, 3000, size=len(audio) // 100)
    edges = np.minimum(np.concatenate([[0], np.cumsum(sizes)]), len(audio))
    for first, end in zip(edges[:-1], edges[1:]):
        pushed += live.push(audio[first:end])  # blocks of 1 to 3000 samples, as a sound card might give them
    pushed += live.finish()
    assert [step.frame for step in pushed] == whole_file["frame"].tolist()
    np.testing.assert_allclose([step.x for step in pushed], whole_file["x"], atol=0.006)
    assert [int(step.page_turn is not None) for step in pushed] == whole_file["page_turn"].tolist()
    assert [step.system + 1 for step in pushed] == whole_file["system"].tolist()
    assert whole_file["x"].nunique() > 10  # it did follow something


def test_push_api_holds_on_silence_and_warns_once(toy_dataset) -> None:
    score = toy_dataset / "train" / "score" / "toy_b.npz"
    live = LiveFollowing.for_score(score, make_follower("constant_tempo"), max_seconds=20, wait_for_music=None)
    live.start(RATE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        steps = [step for _ in range(8) for step in live.push(np.zeros(RATE, dtype=np.float32))]  # 8 s of silence
    assert len([w for w in caught if issubclass(w.category, SilentInputWarning)]) == 1
    assert {step.x for step in steps} == {steps[0].x} and all(step.silent for step in steps)
    moving = live.push(_noise_bursts(2.0))  # sound: the metronome goes on
    assert moving[-1].x > steps[0].x and not moving[-1].silent


class ThreadRecordingOracle(OracleFollower):
    name = "thread_recording"
    seen_threads: list[int] = []

    def act(self, observation, info):
        import torch

        ThreadRecordingOracle.seen_threads.append(torch.get_num_threads())
        return super().act(observation, info)


def test_follow_runs_the_follower_on_one_torch_thread_unless_told(toy_dataset, monkeypatch) -> None:
    import torch

    register_follower("thread_recording", ThreadRecordingOracle)
    monkeypatch.setattr(ThreadRecordingOracle, "seen_threads", [])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # what torch picks by itself on a 2-core machine
    try:
        base = ["follow", "--piece", "toy_a", "--data", str(toy_dataset), "--agent", "thread_recording", "--speed", "0"]
        assert main(base) == 0
        assert set(ThreadRecordingOracle.seen_threads) == {1}
        assert torch.get_num_threads() == 2  # restored after the command
        ThreadRecordingOracle.seen_threads.clear()
        assert main(base + ["--torch-threads", "3"]) == 0
        assert set(ThreadRecordingOracle.seen_threads) == {3}
    finally:
        torch.set_num_threads(threads)


def test_follow_refuses_a_positions_path_it_cannot_write(toy_dataset, tmp_path, capsys) -> None:
    wav = tmp_path / "take.wav"
    soundfile.write(str(wav), _noise_bursts(1.0), RATE)
    score = toy_dataset / "train" / "score" / "toy_b.npz"
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    for bad in (tmp_path, a_file / "positions.csv"):
        assert main(["follow", str(wav), "--score", str(score), "--speed", "0", "--positions", str(bad)]) == 1
        err = capsys.readouterr().err
        assert "--positions" in err and len(err.strip().splitlines()) == 1


class Accelerating(OracleFollower):
    """Speeds up at every step it is asked, whatever it hears (a velocity follower)."""

    def __init__(self, action_type: str):
        self.action_type = action_type
        self.name = f"accelerating_{action_type}"

    def act(self, observation, info):
        return 2 if self.action_type == "discrete" else np.array([1.0], dtype=np.float32)


@pytest.mark.parametrize("action_type", ["continuous", "discrete"])
def test_velocity_followers_come_to_a_stop_on_silence(toy_dataset, action_type) -> None:
    live = LiveFollowing.for_score(toy_dataset / "train" / "score" / "toy_b.npz", Accelerating(action_type),
                                   max_seconds=10, wait_for_music=None)
    live.start(RATE)
    sounding = live.push(_noise_bursts(0.4))
    assert sounding[-1].x > sounding[0].x + 10  # it got going (at about 5 px/frame)
    silent = live.push(np.zeros(RATE, dtype=np.float32))
    # continuous: stopped at once; discrete: braking by the smallest speed change per frame
    stopped = [step.x for step in silent[10:]]
    assert silent[-1].silent and max(stopped) - min(stopped) < 1e-6
