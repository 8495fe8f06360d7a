"""Supervised recurrent regressors: config checks, loss, windows = env observations, training, checkpoints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from agents.networks import TrunkConfig
from agents.supervised.checkpoint import load_regressor, save_checkpoint
from agents.supervised.config import ModelConfig, SupervisedConfig, load_config
from agents.supervised.data import EpisodeBatch, Episode, full_episode, prepare_song
from agents.supervised.follower import RegressorFollower, load_follower
from agents.supervised.model import PositionRegressor
from agents.supervised.rollout import rollout, step_loss
from agents.supervised.train import final_line
from agents.supervised.validation import constant_position_metrics, validate

CONFIGS = Path(__file__).resolve().parents[1] / "agents" / "configs" / "supervised"
TINY_MODEL = ModelConfig(cell="lstm", hidden_size=16, num_layers=1)
TINY_TRUNK = TrunkConfig(width=0.25, features=32, dropout=0.0)


def tiny_model(seed: int = 0, **changes) -> PositionRegressor:
    """A tiny untrained regressor whose head is scaled up so that its follower moves a lot (a new model's
    head starts near zero, which would make a follower stand still and the checks below trivial)."""
    torch.manual_seed(seed)
    model = PositionRegressor(dataclasses.replace(TINY_MODEL, **changes), TINY_TRUNK).eval()
    with torch.no_grad():
        model.head.weight.normal_(0.0, 0.5)
        model.head.bias.fill_(0.05)
    return model


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: tiny convolutions gain nothing from two, and lose a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def short_pieces():
    """Three short pieces (~50 frames): every test here runs the trunk once per frame."""
    from sfgym.data.synthetic import synthetic_piece

    return [synthetic_piece(f"short_{i}", n_onsets=8, frames_per_onset=5, px_per_onset=30 + 10 * i, seed=i,
                            tail_frames=5) for i in range(3)]


@pytest.fixture(scope="module")
def toy_songs(short_pieces):
    return [prepare_song(piece) for piece in short_pieces]


def run_in_env(follower, piece):
    """The follower's x after every step of MSMDFollow-v0 over ``piece``, driven by the evaluation runner
    (in an environment that never declares the target lost, so that whole pieces are compared)."""
    from sfgym.envs import MSMDFollowEnv
    from sfgym.evaluation import run_episode

    env = MSMDFollowEnv(data=[piece], action_type="position", reward_threshold=1e9)
    trajectory = run_episode(follower, piece, env=env)
    assert trajectory.frames[-1] == piece.last_onset_frame
    return trajectory.follower_x[1:]


# ---------------------------------------------------------------------------- config
@pytest.mark.parametrize("name", ["srn", "gru", "lstm", "tiny", "lstm_matching"])
def test_shipped_configs_load(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config.model.cell == (name if name in ("srn", "gru", "lstm") else "lstm")


def test_unknown_yaml_key_is_rejected_naming_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  cell: gru\ntraining:\n  lrr: 0.1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*unknown key 'training\.lrr'"):
        load_config(path)
    path.write_text("optimizer:\n  lr: 0.1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*unknown section 'optimizer'"):
        load_config(path)


@pytest.mark.parametrize("override, message", [
    ("model.cell=transformer", r"'model\.cell' must be one of"),
    ("training.lr=fast", r"'training\.lr' must be float"),
    ("training.epochs=0", r"'training\.epochs' must be positive"),
    ("model.target=absolute", r"random_start"),  # an absolute model cannot start mid-song
    ("training.bogus=1", r"unknown key 'training\.bogus'"),
    ("trunk.kind=transformer", r"unknown trunk kind 'transformer'"),
])
def test_bad_values_are_rejected(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(CONFIGS / "tiny.yaml", [override])


# ---------------------------------------------------------------------------- loss
class ScriptedModel(nn.Module):
    """Stands in for a regressor: outputs a fixed sequence, one value per step (absolute target)."""

    def __init__(self, outputs):
        super().__init__()
        self.config = ModelConfig(target="absolute")
        self.outputs = torch.tensor(outputs, dtype=torch.float32)
        self.calls = 0

    def initial_state(self, batch_size, device=None):
        return torch.zeros(1, batch_size, 1)

    def step(self, spectrogram, score, state):
        output = self.outputs[self.calls].expand(len(spectrogram))
        self.calls += 1
        return output, state


def test_step_loss_by_hand():
    # position 130, previous 100, truth 110, unit 10: squared ((130-110)/10)^2 = 4, jump ((130-100)/10)^2 = 9
    squared, jump = step_loss(torch.tensor([130.0]), torch.tensor([100.0]), torch.tensor([110.0]), 10.0, 0.2)
    assert squared.item() == pytest.approx(4.0) and jump.item() == pytest.approx(9.0)


def test_rollout_jump_term_by_hand(toy_songs):
    song = toy_songs[0]
    piece = song.piece
    width = piece.sheet_width
    start = float(piece.onset_x[0])
    outputs = [0.05, 0.10, 0.10]  # absolute: positions 44, 88, 88 px
    batch = EpisodeBatch.of([Episode(song, 0, 3)])
    result = rollout(ScriptedModel(outputs), batch, jump_penalty=0.2, tbptt_steps=2)
    # x̂_{-1} is the start (the first notehead); every term is divided by the sheet width
    positions = np.array(outputs) * width
    expected_jump = ((positions[0] - start) / width) ** 2 + (0.05) ** 2 + 0.0
    truth = piece.true_x[piece.first_onset_frame + 1: piece.first_onset_frame + 4]  # scored one frame later
    expected_squared = np.sum(((positions - truth) / width) ** 2)
    assert result.n_steps == 3
    assert result.jump_sum == pytest.approx(expected_jump, rel=1e-5)
    assert result.squared_error_sum == pytest.approx(expected_squared, rel=1e-5)
    assert result.loss == pytest.approx((expected_squared + 0.2 * expected_jump) / 3, rel=1e-5)
    np.testing.assert_allclose(result.positions[0], positions, rtol=1e-6)


# ---------------------------------------------------------------------------- windows and rollouts = the env
def test_windows_are_the_environment_observations(short_pieces, toy_songs):
    from sfgym.envs import MSMDFollowEnv

    piece, song = short_pieces[1], toy_songs[1]
    env = MSMDFollowEnv(data=[piece], action_type="position", reward_threshold=1e9)
    observation, info = env.reset(options={"piece": piece.name})
    batch = EpisodeBatch.of([full_episode(song)])
    rng = np.random.default_rng(0)
    for step in range(25):
        np.testing.assert_array_equal(batch.spectrogram_windows(step, 1)[0].numpy(), observation["spectrogram"])
        centre = torch.tensor([info["follower_x"]], dtype=torch.float32)
        # (ink / 255 in torch and in numpy may differ in the last bit)
        np.testing.assert_allclose(batch.score_windows(centre)[0].numpy(), observation["score"], rtol=0, atol=1e-6)
        # jump around, including off both ends of the sheet
        x = rng.uniform(-0.1, 1.1) if step % 5 == 4 else rng.uniform(0.0, 1.0)
        observation, _, _, _, info = env.step(np.array([x], dtype=np.float32))


@pytest.mark.parametrize("target, incremental", [("relative", True), ("absolute", True), ("relative", False)])
def test_follower_in_env_matches_batched_validation(short_pieces, toy_songs, target, incremental):
    model = tiny_model(seed=1, target=target)
    result = validate(model, toy_songs, jump_penalty=0.2)
    with torch.no_grad():
        positions = rollout(model, EpisodeBatch.of([full_episode(toy_songs[0])])).positions[0]
    follower = RegressorFollower(model, name="tiny", incremental=incremental)
    xs = run_in_env(follower, short_pieces[0])
    assert follower.plain_frames == 0  # the incremental path was taken on every frame (when enabled)
    assert np.ptp(xs) > 10  # the follower moved: the comparison below is not trivial
    np.testing.assert_allclose(xs, np.clip(positions, 0, short_pieces[0].sheet_width), atol=1e-2)
    assert 0.0 <= result.tr <= 1.0 and np.isfinite(result.loss)


def test_incremental_follower_uses_the_geometry_of_its_env_kwargs(short_pieces):
    from sfgym.envs import MSMDFollowEnv
    from sfgym.evaluation import run_episode

    model = tiny_model(seed=5)
    piece = short_pieces[1]
    env_kwargs = {"score_window": (80, 256), "score_factor": 1.0}  # another window of the model's (80, 256) shape
    xs = {}
    for incremental in (True, False):
        follower = RegressorFollower(model, incremental=incremental, env_kwargs=env_kwargs)
        env = MSMDFollowEnv(data=[piece], action_type="position", reward_threshold=1e9, **env_kwargs)
        xs[incremental] = run_episode(follower, piece, env=env).follower_x
        if incremental:
            assert follower.plain_frames == 0  # its strip and window starts are those of this environment
    assert np.ptp(xs[False]) > 10
    np.testing.assert_allclose(xs[True], xs[False], atol=1e-3)


def test_state_resets_between_songs(short_pieces):
    model = tiny_model(seed=2)
    fresh = run_in_env(RegressorFollower(model), short_pieces[1])
    follower = RegressorFollower(model)
    run_in_env(follower, short_pieces[2])  # another song first
    np.testing.assert_array_equal(run_in_env(follower, short_pieces[1]), fresh)


def test_batched_songs_do_not_influence_each_other(toy_songs):
    model = tiny_model(seed=3)
    with torch.no_grad():
        alone = rollout(model, EpisodeBatch.of([full_episode(toy_songs[0])])).positions[0]
        together = rollout(model, EpisodeBatch.of([full_episode(s) for s in toy_songs]))
    row = [e.song.name for e in EpisodeBatch.of([full_episode(s) for s in toy_songs]).episodes].index(toy_songs[0].name)
    np.testing.assert_allclose(together.positions[row, : len(alone)], alone, atol=1e-3)


# ---------------------------------------------------------------------------- training
def test_training_reduces_the_loss(toy_songs):
    torch.manual_seed(4)
    model = PositionRegressor(TINY_MODEL, TINY_TRUNK)  # as training starts it: standing still on the first notehead
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = EpisodeBatch.of([Episode(song, 0, 12) for song in toy_songs])

    def loss_now() -> float:
        with torch.no_grad():
            return rollout(model.eval(), batch, jump_penalty=0.2).loss

    before = loss_now()
    for _ in range(8):
        rollout(model.train(), batch, jump_penalty=0.2, tbptt_steps=6, optimizer=optimizer, grad_clip=1.0)
    assert loss_now() < 0.3 * before


def test_train_command_end_to_end_with_resume(toy_dataset, tmp_path, capsys):
    from sfgym.cli import main

    run_dir = tmp_path / "run"
    base = ["train", "supervised", "--config", str(CONFIGS / "tiny.yaml"), "--set", f"data.dir={toy_dataset}",
            "--set", "data.max_steps_per_song=12", "--out", str(run_dir), "--no-progress"]
    arguments = base + ["--set", "training.epochs=1"]
    assert main(arguments) == 0
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line.startswith("valid TR ") and "mean error" in last_line and "constant-position" in last_line
    for name in ("best.pt", "last.pt", "metrics.json", "history.csv", "curves.png", "config.yaml"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["epochs_run"] == 1 and summary["best_epoch"] == 1
    assert set(summary["valid"]) >= {"tr", "tue", "error_mean_px", "loss"}
    assert f"valid TR {summary['valid']['tr']:.3f}" in last_line

    # a run dir that holds a run is not overwritten
    assert main(arguments) == 1
    assert "--resume" in capsys.readouterr().err
    # --resume continues with a raised epoch budget ...
    assert main(base + ["--set", "training.epochs=2", "--resume"]) == 0
    history = (run_dir / "history.csv").read_text().strip().splitlines()
    assert len(history) == 3 and history[2].startswith("2,")
    # ... but refuses another config
    assert main(base + ["--set", "training.epochs=3", "--set", "training.lr=0.5", "--resume"]) == 1
    assert "training.lr" in capsys.readouterr().err


# ---------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_gives_the_same_predictions(tmp_path, short_pieces, toy_songs):
    model = tiny_model(seed=5)
    path = save_checkpoint(tmp_path / "model.pt", model, SupervisedConfig(model=model.config, trunk=model.trunk.config))
    loaded, config = load_regressor(path)
    assert config.model == model.config
    batch = EpisodeBatch.of([full_episode(toy_songs[2])])
    with torch.no_grad():
        np.testing.assert_array_equal(rollout(model, batch).positions, rollout(loaded.eval(), batch).positions)
    follower = load_follower(path)
    np.testing.assert_array_equal(run_in_env(follower, short_pieces[2]), run_in_env(RegressorFollower(model), short_pieces[2]))


def test_mismatched_checkpoint_gives_a_clear_error(tmp_path):
    model = tiny_model()
    path = save_checkpoint(tmp_path / "small.pt", model, SupervisedConfig(model=model.config, trunk=model.trunk.config))
    with pytest.raises(ValueError, match=r"small\.pt.*model\.hidden_size: 32 != 16"):
        load_regressor(path, model=tiny_model(hidden_size=32))
    with pytest.raises(ValueError, match=r"small\.pt.*do not fit this model"):
        tiny_model(cell="gru").load_weights(torch.load(path, weights_only=True)["model_state"], source=path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pt: not a readable checkpoint"):
        load_regressor(tmp_path / "junk.pt")


def test_constant_position_baseline_is_scored_like_the_follower(toy_pieces):
    from agents.baselines.constant_position import ConstantPositionFollower

    piece = toy_pieces[0]  # noteheads 40 px apart (±3): standing still keeps the onsets within 170 px
    metrics = constant_position_metrics([prepare_song(piece)])
    xs = run_in_env(ConstantPositionFollower(), piece)
    assert np.allclose(xs, piece.onset_x[0])
    lost = np.flatnonzero(np.abs(piece.true_x - piece.onset_x[0]) > 170)[0]
    assert metrics["tr"] == pytest.approx(np.sum(piece.onset_frames < lost) / len(piece.onset_frames))
    assert 0.0 < metrics["tr"] < 0.5
    line = final_line({"valid": {"tr": 0.5, "error_mean_px": 1.0}, "constant_position": metrics,
                       "best_epoch": 1, "epochs_run": 1, "stopped": "epochs", "run_dir": "x"})
    assert line.startswith("valid TR 0.500, mean error 1.0 px") and f"TR {metrics['tr']:.3f}" in line


def test_ctrl_c_saves_the_run_and_resume_continues_it(toy_dataset, tmp_path, monkeypatch, capsys):
    """Packaged config by name, --data like 'train rl'; Ctrl-C during the first epoch keeps its weights."""
    import os
    import signal

    import agents.supervised.train as supervised_train
    from agents.supervised.checkpoint import read_checkpoint
    from sfgym.cli import main

    rollout_once = supervised_train.rollout
    calls = []

    def rollout_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return rollout_once(*args, **kwargs)

    monkeypatch.setattr(supervised_train, "rollout", rollout_then_interrupt)
    run_dir = tmp_path / "run"
    arguments = ["train", "supervised", "--config", "tiny", "--data", str(toy_dataset), "--set",
                 "data.max_steps_per_song=12", "--set", "training.epochs=1", "--out", str(run_dir), "--no-progress"]
    torch.manual_seed(0)  # as the run starts (training.seed 0)
    untrained = PositionRegressor(TINY_MODEL, TINY_TRUNK).state_dict()
    assert main(arguments) == 0
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted" and status["epoch"] == 0
    last = read_checkpoint(run_dir / "last.pt")
    assert last["run"]["epoch"] == 0 and len(calls) == 1  # stopped after the first batch ...
    assert any(not torch.equal(value, untrained[key]) for key, value in last["model_state"].items())  # ... kept
    assert "interrupted after epoch 0" in capsys.readouterr().out

    monkeypatch.undo()
    assert main(arguments + ["--resume"]) == 0
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "complete" and status["stopped"] == "epochs" and status["epoch"] == 1
    assert len((run_dir / "history.csv").read_text().strip().splitlines()) == 2


def test_a_checkpoint_of_the_earlier_format_still_loads(tmp_path, short_pieces):
    """Checkpoints written before the one format (their trunk settings in the config's model section)."""
    model = tiny_model(seed=3)
    config = SupervisedConfig(model=model.config, trunk=model.trunk.config).to_dict()
    legacy_model = {**config["model"], "trunk_width": 0.25, "trunk_features": 32, "dropout": 0.0}
    torch.save({"format": "sfgym-supervised-regressor", "version": 1,
                "config": {"model": legacy_model, "data": config["data"], "training": config["training"]},
                "model_state": model.state_dict()}, tmp_path / "old.pt")
    loaded, loaded_config = load_regressor(tmp_path / "old.pt")
    assert loaded_config.trunk == TINY_TRUNK and loaded_config.model == TINY_MODEL
    assert all(torch.equal(value, model.state_dict()[key]) for key, value in loaded.state_dict().items())
