"""Trunk pre-training on window offsets (figure-3 trunk: regression; matching trunk: which column):
batches match the trunk on the environment's windows, the loss falls, and the checkpoint starts an RL run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from agents.supervised.data import prepare_song
from agents.networks import TrunkConfig
from agents.pretraining.train import ColumnMatcher, OffsetRegressor, TrunkPretrainingConfig, draw_stretch, load_config, train
from sfgym.envs import MSMDFollowEnv

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = {"trunk": {"width": 0.25, "features": 16, "dropout": 0.0},
        "data": {"segment_frames": 40, "samples_per_segment": 16, "segments_per_batch": 2, "valid_pieces": 1,
                 "valid_samples": 32},
        "training": {"max_steps": 40, "max_minutes": None, "lr": 3e-3, "eval_every_steps": 20, "device": "cpu"}}


def test_stretch_predictions_are_the_trunk_on_the_environments_windows(toy_pieces):
    torch.manual_seed(0)
    model = OffsetRegressor(TrunkConfig(width=0.25, features=16, dropout=0.0)).eval()
    piece = toy_pieces[1]
    song = prepare_song(piece)
    frames, starts, targets = draw_stretch(song, 30, 12, 170.0, np.random.default_rng(0))
    assert np.all(np.abs(targets) <= 1.0) and np.ptp(frames) > 0
    with torch.no_grad():
        stretch = model.forward_stretch(song, frames, starts)
    env = MSMDFollowEnv([piece], action_type="position", reward_threshold=1e9)
    env.reset(seed=0)
    for k, (frame, start, target) in enumerate(zip(frames, starts, targets)):
        # the environment's window for this frame and centre (frame by frame is not needed: jump there)
        centre = piece.true_x[frame] - target * 170.0
        observation, info = env.unwrapped.observe_at(int(frame), float(centre))
        assert info["score_window_start"] == start
        with torch.no_grad():
            expected = model.head(model.trunk(torch.from_numpy(observation["spectrogram"])[None],
                                              torch.from_numpy(observation["score"])[None]))[0, 0]
        torch.testing.assert_close(stretch[k], expected, rtol=1e-4, atol=1e-5)


def test_the_offset_loss_falls_on_a_fixed_stretch(toy_pieces):
    torch.manual_seed(0)
    model = OffsetRegressor(TrunkConfig(width=0.25, features=16, dropout=0.0))
    song = prepare_song(toy_pieces[1])
    frames, starts, targets = draw_stretch(song, 40, 32, 170.0, np.random.default_rng(1))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = torch.mean((model.forward_stretch(song, frames, starts) - torch.from_numpy(targets)) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.slow
def test_tiny_run_writes_its_run_and_its_checkpoint_starts_rl(tmp_path, toy_dataset):
    from agents.runs import read_trunk

    config = TrunkPretrainingConfig.from_dict({**TINY, "data": {**TINY["data"], "dir": str(toy_dataset)}}, "tiny")
    best = train(config, tmp_path / "run")
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 3  # header + 2 evaluations
    assert best["valid_mae_px"] == min(float(row.split(",")[4]) for row in history[1:])  # best = lowest error
    for name in ("best.pt", "last.pt", "curves.png", "config.yaml"):
        assert (tmp_path / "run" / name).is_file(), name
    trunk_state, trunk = read_trunk(tmp_path / "run")  # a run directory means its best.pt
    settings = trunk.architecture()
    assert settings == {"width": 0.25, "features": 16, "kind": "figure3"}
    assert "joint.0.weight" in trunk_state
    with pytest.raises(ValueError, match="already holds a run"):
        train(config, tmp_path / "run")


MATCHING = TrunkConfig(width=0.25, features=8, dropout=0.0, kind="matching", match_frames=4, match_context=2)


def test_matching_logits_are_the_matching_trunk_on_the_environments_windows(toy_pieces):
    torch.manual_seed(0)
    model = ColumnMatcher(MATCHING).eval()
    piece = toy_pieces[1]
    song = prepare_song(piece)
    frames, starts, offsets = draw_stretch(song, 30, 12, 170.0, np.random.default_rng(0), onset_share=0.5)
    with torch.no_grad():
        logits = model.forward_stretch(song, frames, starts)
    margin = model.trunk.margin
    assert margin == 3 + 2 and logits.shape == (12, 256 - 2 * margin)
    targets = model.target_columns(song, frames, starts)
    env = MSMDFollowEnv([piece], action_type="position", reward_threshold=1e9)
    env.reset(seed=0)
    for k, (frame, start, offset) in enumerate(zip(frames, starts, offsets)):
        observation, info = env.unwrapped.observe_at(int(frame), float(piece.true_x[frame] - offset * 170.0))
        assert info["score_window_start"] == start
        with torch.no_grad():
            expected = model.trunk.match_logits(torch.from_numpy(observation["spectrogram"])[None],
                                                torch.from_numpy(observation["score"])[None])[0]
        torch.testing.assert_close(logits[k], expected, rtol=1e-4, atol=1e-5)
        # the target is the column of the truth: offset px right of the window's centre (native px = 2 columns)
        assert abs(int(targets[k]) - (128 - margin + offset * 170.0 / 2)) <= 1.5


def test_onset_share_draws_frames_just_after_onsets(toy_pieces):
    song = prepare_song(toy_pieces[1])
    frames, _, _ = draw_stretch(song, 200, 64, 170.0, np.random.default_rng(0), onset_share=1.0)
    after = set((song.piece.onset_frames[:, None] + np.array([1, 2])[None]).ravel().tolist())
    assert all(int(frame) in after for frame in frames)


def test_the_matching_loss_falls_and_its_offsets_follow_the_argmax(toy_pieces):
    torch.manual_seed(0)
    model = ColumnMatcher(MATCHING)
    song = prepare_song(toy_pieces[1])
    frames, starts, offsets = draw_stretch(song, 40, 32, 170.0, np.random.default_rng(1), onset_share=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        loss, predicted = model.stretch_loss(song, frames, starts, offsets, 170.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(np.log(model.trunk.features_dim), rel=0.05)  # chance: uniform over columns
    assert losses[-1] < 0.75 * losses[0]
    with torch.no_grad():  # a perfect column is a perfect offset (to the column's 2 px)
        perfect = torch.full((len(frames), model.trunk.features_dim), -1e9)
        perfect[torch.arange(len(frames)), model.target_columns(song, frames, starts)] = 0.0
    np.testing.assert_allclose(model._offsets(perfect, 170.0).numpy(), offsets, atol=3.0 / 170.0)


@pytest.mark.slow
def test_a_matching_run_starts_a_frozen_matching_rl_policy(tmp_path, toy_dataset, toy_pieces):
    from agents.rl.extractor import TrunkExtractor
    from agents.runs import read_trunk
    from agents.rl.frozen_trunk import TrunkFeatureTables

    raw = {**TINY, "trunk": {"width": 0.25, "features": 8, "dropout": 0.0, "kind": "matching", "match_frames": 4,
                     "match_context": 2},
           "data": {**TINY["data"], "dir": str(toy_dataset), "onset_share": 0.5}}
    train(TrunkPretrainingConfig.from_dict(raw, "tiny"), tmp_path / "run")
    state, trunk = read_trunk(tmp_path / "run")
    settings = trunk.architecture()
    assert settings == {"width": 0.25, "features": 8, "kind": "matching", "match_frames": 4, "match_context": 2}
    env = MSMDFollowEnv([toy_pieces[0]], observe_speed=True, reward_threshold=1e9)
    extractor = TrunkExtractor(env.observation_space, dropout=0.0, **settings)
    extractor.trunk.load_trunk(state)
    assert extractor.features_dim == 256 - 2 * (3 + 2) + 1  # the column distribution and the speed
    tables = TrunkFeatureTables(extractor.trunk.eval())
    observation, info = env.reset(seed=0)
    for _ in range(30):
        observation, *_, info = env.step(2)
    looked_up = tables.features(toy_pieces[0], info["frame"], info["score_window_start"])
    with torch.no_grad():
        computed = extractor({key: torch.from_numpy(value)[None] for key, value in observation.items()})[0]
    torch.testing.assert_close(torch.from_numpy(looked_up), computed[:-1], rtol=1e-4, atol=1e-6)
    assert looked_up.sum() == pytest.approx(1.0, abs=1e-5)

    # PPO on it, frozen and tabled: the saved model is an image model holding the matching trunk
    import argparse

    from agents.networks import MatchingTrunk
    from agents.rl import load_follower
    from agents.rl.train import add_arguments, main
    from sfgym.evaluation import run_episode

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    trunk_settings = [f"--set=trunk.{key}={value}" for key, value in settings.items()]
    with pytest.raises(ValueError, match="--set trunk.width=0.25 --set trunk.features=8 --set trunk.kind=matching"):
        main(parser.parse_args(["--config", "tiny", "--data", str(toy_dataset), "--out",
                                str(tmp_path / "refused"), "--init-from", str(tmp_path / "run")]))
    assert main(parser.parse_args(["--config", "tiny", "--data", str(toy_dataset), "--out",
                                   str(tmp_path / "rl"), "--init-from", str(tmp_path / "run"), "--set=frozen_trunk=true",
                                   "--set=env.observe_speed=true", *trunk_settings])) == 0
    follower = load_follower(tmp_path / "rl" / "final_model.zip")
    trunk = follower.model.policy.features_extractor.trunk
    assert isinstance(trunk, MatchingTrunk)
    assert all(torch.equal(trunk.state_dict()[key], value) for key, value in state.items())  # frozen
    # the follower computes the trunk incrementally, to the image model's own actions
    episode_env = MSMDFollowEnv([toy_pieces[1]], observe_speed=True)
    observation, info = episode_env.reset(seed=0)
    follower.reset(toy_pieces[1], seed=0)
    for _ in range(40):
        action = follower.act(observation, info)
        assert action == int(follower.model.predict(observation, deterministic=True)[0])
        observation, _, terminated, truncated, info = episode_env.step(action)
        if terminated or truncated:
            break
    assert follower._incremental is not None and follower._incremental.plain_frames == 0
    assert len(run_episode(follower, toy_pieces[1], seed=0).frames) >= 2


def test_unknown_keys_and_bad_values_are_rejected_naming_the_file(tmp_path):
    path = tmp_path / "trunk.yaml"
    path.write_text(yaml.safe_dump({"training": {"learning_rate": 1e-3}}))
    with pytest.raises(ValueError, match=r"trunk.yaml: unknown key 'training.learning_rate'"):
        load_config(path)
    path.write_text(yaml.safe_dump({"data": {"max_offset_px": -1}}))
    with pytest.raises(ValueError, match="'data.max_offset_px' must be positive"):
        load_config(path)
    path.write_text(yaml.safe_dump({"trunk": {"kind": "transformer"}}))
    with pytest.raises(ValueError, match="trunk.yaml.*unknown trunk kind 'transformer'"):
        load_config(path)
    path.write_text(yaml.safe_dump({"data": {"onset_share": 1.5}}))
    with pytest.raises(ValueError, match="'data.onset_share' must be within 0..1"):
        load_config(path)
    assert load_config("trunk_offset").trunk.width == 0.25
    assert load_config("trunk_matching").trunk.kind == "matching"


def test_cli_runs_the_trunk_kind_and_reports_a_bad_key_without_a_traceback(tmp_path, capsys):
    from sfgym.cli import main as sfgym_main

    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({"trunk": {"widht": 0.5}}))
    assert sfgym_main(["train", "trunk", "--config", str(path), "--out", str(tmp_path / "run")]) == 1
    error = capsys.readouterr().err
    assert "trunk.widht" in error and "typo.yaml" in error and "Traceback" not in error
    assert not (tmp_path / "run").exists()


def test_a_budget_that_ends_before_the_first_evaluation_still_saves_the_weights(tmp_path, toy_dataset):
    from agents.runs import read_trunk

    raw = {**TINY, "data": {**TINY["data"], "dir": str(toy_dataset)},
           "training": {**TINY["training"], "max_steps": 10_000, "eval_every_steps": 10_000, "max_minutes": 0.02}}
    best = train(TrunkPretrainingConfig.from_dict(raw, "tiny"), tmp_path / "run", progress=False)
    assert 0 < best["step"] < 10_000  # evaluated where the budget ended it
    state, trunk = read_trunk(tmp_path / "run")
    assert trunk.architecture() == {"width": 0.25, "features": 16, "kind": "figure3"} and state
    status = yaml.safe_load((tmp_path / "run" / "status.json").read_text())
    assert (status["state"], status["stopped"]) == ("complete", "time budget")


def test_ctrl_c_saves_the_run_and_resume_continues_it(tmp_path, toy_dataset, monkeypatch, capsys):
    import os
    import signal

    import agents.pretraining.train as pretraining
    from sfgym.cli import main as sfgym_main

    validate = pretraining.validate

    def validate_then_interrupt(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return validate(*args, **kwargs)

    monkeypatch.setattr(pretraining, "validate", validate_then_interrupt)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "data": {**TINY["data"], "dir": str(toy_dataset)}}))
    run = tmp_path / "run"
    assert sfgym_main(["train", "trunk", "--config", str(path), "--out", str(run), "--no-progress"]) == 0
    status = yaml.safe_load((run / "status.json").read_text())
    assert status["state"] == "interrupted" and status["step"] == 20  # stopped at the first evaluation
    assert sfgym_main(["train", "trunk", "--config", str(path), "--out", str(run)]) == 1
    assert "pass --resume" in capsys.readouterr().err

    monkeypatch.undo()
    assert sfgym_main(["train", "trunk", "--resume", "--out", str(run), "--no-progress"]) == 0
    status = yaml.safe_load((run / "status.json").read_text())
    assert (status["state"], status["stopped"], status["step"]) == ("complete", "max_steps", 40)
    history = (run / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["20", "40"]  # continued, not restarted


def test_the_progress_bar_shows_the_budget_that_ends_the_run():
    import io

    from agents.runs import Budget, BudgetProgress

    now = [0.0]
    budget = Budget(max_minutes=1.0, clock=lambda: now[0])
    out = io.StringIO()
    bar = BudgetProgress(100_000, budget, "trunk pre-training", unit="batch", file=out, mininterval=0)
    now[0] = 30.0
    bar.update(874)
    assert bar.fraction() == pytest.approx(0.5)  # the minutes end this run, not the 100000 batches
    assert "50%" in out.getvalue() and "batch 874/100000, 0.5/1 min" in out.getvalue()
    steps_only = BudgetProgress(100, Budget(None), "x", file=io.StringIO(), mininterval=0)
    steps_only.update(25)
    assert steps_only.fraction() == pytest.approx(0.25)


def test_a_pretraining_checkpoint_of_the_earlier_format_still_starts_rl(tmp_path):
    from agents.runs import read_trunk

    model = ColumnMatcher(MATCHING)
    torch.save({"format": "sfgym-trunk-pretraining", "metrics": {"step": 1},
                "config": {"model": {"trunk_width": 0.25, "trunk_features": 8, "dropout": 0.0, "trunk_kind": "matching",
                                     "match_frames": 4, "match_context": 2}, "data": {}, "training": {}},
                "model_state": model.state_dict()}, tmp_path / "best.pt")
    state, trunk = read_trunk(tmp_path)
    assert trunk == MATCHING and set(state) == set(model.trunk.state_dict())
