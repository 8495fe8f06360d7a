"""RL agents: configs, the shared-trunk extractor, hybrid initialization, training end to end, followers."""

from __future__ import annotations

import argparse
import re
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from agents.networks import MultimodalTrunk, TrunkConfig
from agents.rl import RLFollower, load_follower
from agents.rl.config import config_from_dict, load_config
from agents.rl.curves import read_curve_csv
from agents.rl.extractor import TrunkExtractor, load_supervised_trunk, policy_trunks
from agents.rl.follower import read_metadata, save_model
from agents.rl.train import add_arguments, build_model, main
from sfgym.envs import MSMDFollowEnv
from sfgym.evaluation import run_episode

CONFIGS = Path(__file__).resolve().parent.parent / "agents" / "configs" / "rl"
TINY = CONFIGS / "tiny.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny_raw() -> dict:
    return yaml.safe_load(TINY.read_text())


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


class _SupervisedLike(nn.Module):
    """A stand-in for a supervised follower: the shared trunk under ``trunk``, plus its own head."""

    def __init__(self, trunk_config: TrunkConfig):
        super().__init__()
        self.trunk = MultimodalTrunk(trunk_config)
        self.head = nn.Linear(trunk_config.features, 1)


def _supervised_checkpoint(path: Path, observation_space, features: int, width: float) -> dict[str, torch.Tensor]:
    """Write a checkpoint in the one checkpoint format (``model_state`` with ``trunk.*``, the trunk's
    settings); returns its trunk weights."""
    from agents.runs import save_checkpoint

    torch.manual_seed(123)
    trunk_config = TrunkConfig(spectrogram_shape=observation_space["spectrogram"].shape,
                               score_shape=observation_space["score"].shape, features=features, width=width)
    model = _SupervisedLike(trunk_config)
    save_checkpoint(path, "supervised", model, {}, trunk_config)
    return {k: v.clone() for k, v in model.trunk.state_dict().items()}


def _trunk_equals(trunk: nn.Module, weights: dict[str, torch.Tensor]) -> bool:
    state = trunk.state_dict()
    return set(state) == set(weights) and all(torch.equal(state[k].cpu(), weights[k]) for k in weights)


# ---------------------------------------------------------------------------- configs
def test_shipped_configs_are_valid():
    for name in ("ppo", "a2c", "recurrent_ppo", "tiny"):
        config = load_config(CONFIGS / f"{name}.yaml")
        assert config.algorithm == {"tiny": "ppo"}.get(name, name)
    ppo = load_config(CONFIGS / "ppo.yaml")  # the reference setup
    assert ppo.n_envs == 8 and ppo.hyperparameters["learning_rate"] == 1e-4
    assert (ppo.hyperparameters["ent_coef"], ppo.hyperparameters["vf_coef"], ppo.hyperparameters["max_grad_norm"]) \
        == (0.05, 0.5, 0.5)
    # the frozen-trunk hybrid names its supervised checkpoint on the command line (--init-from)
    with pytest.raises(ValueError, match="frozen_trunk needs init_from"):
        load_config(CONFIGS / "ppo_frozen.yaml")
    frozen = load_config(CONFIGS / "ppo_frozen.yaml", ["init_from=runs/supervised/lstm_cpu"])
    assert frozen.frozen_trunk and frozen.env["observe_speed"] and not frozen.env["difference_channels"]
    assert (frozen.trunk.width, frozen.trunk.features) == (0.5, 256)  # configs/supervised/lstm_cpu.yaml's trunk


@pytest.mark.parametrize("where, key", [
    (None, "total_steps"),                 # top level
    ("hyperparameters", "n_step"),         # not an argument of PPO
    ("env", "spectrogram_window"),         # not an argument of MSMDFollowEnv
    ("trunk", "depth"),
    ("evaluation", "every"),
])
def test_unknown_key_is_rejected_naming_key_and_file(tmp_path, where, key):
    raw = _tiny_raw()
    (raw if where is None else raw.setdefault(where, {}))[key] = 1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError) as error:
        load_config(path)
    assert repr(key) in str(error.value) and str(path) in str(error.value)


def test_cli_reports_an_unknown_key_without_a_traceback(tmp_path, capsys):
    from sfgym.cli import main as sfgym_main

    raw = _tiny_raw()
    raw["hyperparameters"]["learning_rat"] = 0.1
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert sfgym_main(["train", "rl", "--config", str(path), "--out", str(tmp_path / "run")]) == 1
    error = capsys.readouterr().err
    assert "'learning_rat'" in error and "typo.yaml" in error and "Traceback" not in error


def test_hyperparameters_are_checked_against_the_algorithm_and_its_policy():
    raw = _tiny_raw()
    raw["hyperparameters"]["batch_size"] = 64
    raw["algorithm"] = "a2c"  # A2C has no batch_size
    with pytest.raises(ValueError, match="'batch_size'.*A2C"):
        config_from_dict(raw, "a2c-test.yaml")
    raw = _tiny_raw()
    raw["hyperparameters"]["policy_kwargs"]["lstm_hidden_size"] = 8  # only recurrent policies have an LSTM
    with pytest.raises(ValueError, match="'lstm_hidden_size'"):
        config_from_dict(raw, "ppo-test.yaml")
    raw["algorithm"] = "recurrent_ppo"
    assert config_from_dict(raw, "rppo-test.yaml").hyperparameters["policy_kwargs"]["lstm_hidden_size"] == 8
    raw["hyperparameters"]["policy_kwargs"]["activation_fn"] = "swish"
    with pytest.raises(ValueError, match="activation_fn"):
        config_from_dict(raw, "rppo-test.yaml")


def test_set_overrides_any_key_and_is_validated(tmp_path):
    config = load_config(TINY, ["trunk.width=0.5", "hyperparameters.policy_kwargs.net_arch.pi=[8]",
                                "total_timesteps=1e3", "env.actions=[-2, 0, 2]"])
    assert config.trunk.width == 0.5 and config.total_timesteps == 1000 and config.env["actions"] == [-2, 0, 2]
    assert config.hyperparameters["policy_kwargs"]["net_arch"] == {"pi": [8], "vf": [16]}
    with pytest.raises(ValueError, match="tiny.yaml.*'widht'"):
        load_config(TINY, ["trunk.widht=0.5"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        load_config(TINY, ["trunk.width"])


# ---------------------------------------------------------------------------- extractor and hybrid init
def test_extractor_is_the_shared_trunk_and_loads_a_supervised_checkpoint(tmp_path, toy_pieces):
    env = MSMDFollowEnv(data=toy_pieces)
    config = config_from_dict(_tiny_raw(), "tiny")
    from stable_baselines3.common.vec_env import DummyVecEnv

    model = build_model(config, DummyVecEnv([lambda: env]))
    extractor = model.policy.features_extractor
    assert isinstance(extractor, TrunkExtractor) and isinstance(extractor.trunk, MultimodalTrunk)
    assert extractor.trunk.config.score_shape == env.observation_space["score"].shape

    weights = _supervised_checkpoint(tmp_path / "supervised.pt", env.observation_space, features=32, width=0.25)
    assert not _trunk_equals(extractor.trunk, weights)
    assert load_supervised_trunk(model.policy, tmp_path / "supervised.pt") == 1
    assert _trunk_equals(extractor.trunk, weights)

    # a trunk of another shape is refused, naming the checkpoint
    _supervised_checkpoint(tmp_path / "wide.pt", env.observation_space, features=32, width=0.5)
    with pytest.raises(ValueError, match="wide.pt"):
        load_supervised_trunk(model.policy, tmp_path / "wide.pt")
    # with separate actor and critic extractors, both trunks are initialized
    separate = config_from_dict(_tiny_raw(), "tiny")
    separate.hyperparameters["policy_kwargs"]["share_features_extractor"] = False
    separate_policy = build_model(separate, DummyVecEnv([lambda: env])).policy
    assert load_supervised_trunk(separate_policy, tmp_path / "supervised.pt") == 2
    assert all(_trunk_equals(trunk, weights) for trunk in policy_trunks(separate_policy))

    torch.save({"model_state": {"head.weight": torch.zeros(1)}}, tmp_path / "no_trunk.pt")
    with pytest.raises(ValueError, match="trunk"):
        load_supervised_trunk(model.policy, tmp_path / "no_trunk.pt")


def test_a_plain_trunk_initializes_a_policy_with_difference_channels(tmp_path, toy_pieces):
    """The policy's trunk starts out computing the supervised features, ignoring the difference channel."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    plain_env = MSMDFollowEnv(data=toy_pieces)
    weights = _supervised_checkpoint(tmp_path / "supervised.pt", plain_env.observation_space, features=32, width=0.25)
    raw = _tiny_raw()
    raw["env"] = {"difference_channels": True}
    diff_env = MSMDFollowEnv(data=toy_pieces, difference_channels=True)
    policy = build_model(config_from_dict(raw, "tiny"), DummyVecEnv([lambda: diff_env])).policy
    load_supervised_trunk(policy, tmp_path / "supervised.pt")
    trunk = policy.features_extractor.trunk
    first = trunk.state_dict()["score_convs.0.weight"]
    assert first.shape[1] == 2 and torch.equal(first[:, :1], weights["score_convs.0.weight"])
    assert not first[:, 1:].any()

    supervised_trunk = MultimodalTrunk(TrunkConfig(features=32, width=0.25)).eval()
    supervised_trunk.load_trunk(weights)
    diff_env.reset(seed=0, options={"piece": "toy_b"})
    for _ in range(3):
        observation, *_ = diff_env.step(2)  # speeding up: the difference channels are non-zero
    assert observation["score"][1].any()
    tensors = {k: torch.as_tensor(v)[None] for k, v in observation.items()}
    with torch.no_grad():
        expected = supervised_trunk(tensors["spectrogram"][:, :1], tensors["score"][:, :1])
        assert torch.allclose(trunk.eval()(tensors["spectrogram"], tensors["score"]), expected, atol=1e-6)


def test_init_from_a_trunk_of_other_settings_says_what_to_set(tmp_path, toy_dataset, toy_pieces):
    observation_space = MSMDFollowEnv(data=toy_pieces).observation_space
    _supervised_checkpoint(tmp_path / "wide.pt", observation_space, features=32, width=0.5)
    with pytest.raises(ValueError, match=r"--set trunk.width=0.5 --set trunk.features=32"):
        main(_parse(["--config", str(TINY), "--data", str(toy_dataset), "--out", str(tmp_path / "run"),
                     "--init-from", str(tmp_path / "wide.pt")]))
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_real_supervised_checkpoint_initializes_the_policy_trunk(tmp_path, toy_pieces):
    """The supervised engineer's own checkpoint format (agents.supervised.checkpoint)."""
    checkpoint = pytest.importorskip("agents.supervised.checkpoint")
    from agents.supervised.config import ModelConfig, SupervisedConfig
    from agents.supervised.model import PositionRegressor

    model_config = ModelConfig(hidden_size=8, num_layers=1)
    trunk_config = TrunkConfig(width=0.25, features=32, dropout=0.0)
    regressor = PositionRegressor(model_config, trunk_config)
    checkpoint.save_checkpoint(tmp_path / "best.pt", regressor, SupervisedConfig(model=model_config, trunk=trunk_config))

    from stable_baselines3.common.vec_env import DummyVecEnv

    config = config_from_dict(_tiny_raw(), "tiny")
    policy = build_model(config, DummyVecEnv([lambda: MSMDFollowEnv(data=toy_pieces)])).policy
    load_supervised_trunk(policy, tmp_path)  # a run directory means its best.pt
    assert _trunk_equals(policy.features_extractor.trunk, {k: v for k, v in regressor.trunk.state_dict().items()})


# ---------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_tiny_training_end_to_end_with_hybrid_init_and_freezing(tmp_path, toy_dataset, toy_pieces):
    """``train rl`` with tiny.yaml: init from a supervised trunk, frozen for the first update only."""
    observation_space = MSMDFollowEnv(data=toy_pieces).observation_space
    weights = _supervised_checkpoint(tmp_path / "supervised.pt", observation_space, features=32, width=0.25)
    run = tmp_path / "run"
    # 2 envs x 64 steps = 128 steps per update, 256 in all: the update on steps 1-128 is frozen,
    # the one on steps 129-256 (past 200) trains the trunk.
    assert main(_parse(["--config", str(TINY), "--data", str(toy_dataset), "--out", str(run),
                        "--init-from", str(tmp_path / "supervised.pt"), "--freeze-trunk-steps", "200"])) == 0

    for name in ("config.yaml", "best_model.zip", "best.json", "final_model.zip", "learning_curve.csv",
                 "learning_curve.png", "summary.json", "checkpoints/step_000000128.zip"):
        assert (run / name).is_file(), name
    curve = read_curve_csv(run)
    assert [row["step"] for row in curve] == [0, 128, 256]
    assert all(0.0 <= row["tr"] <= 1.0 for row in curve)
    best = json.loads((run / "best.json").read_text())
    assert best["tr"] == max(row["tr"] for row in curve)
    assert yaml.safe_load((run / "config.yaml").read_text())["init_from"] == str(tmp_path / "supervised.pt")

    # the with/without-init comparison plot reads run directories
    from agents.rl.curves import main as plot_main

    assert plot_main([str(run), str(run / "learning_curve.csv"), "--labels", "with init", "again",
                      "--out", str(tmp_path / "compare.png")]) == 0
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The policy before any update: the same config and seed build the same initial heads.
    from stable_baselines3.common.vec_env import DummyVecEnv

    initial = build_model(load_config(TINY), DummyVecEnv([lambda: MSMDFollowEnv(data=toy_pieces)])).policy
    after_frozen_update = load_follower(run / "checkpoints" / "step_000000128.zip").model.policy
    final = load_follower(run / "final_model.zip").model.policy
    # the loaded trunk survives the frozen update unchanged while the heads learn ...
    assert _trunk_equals(after_frozen_update.features_extractor.trunk, weights)
    assert not torch.equal(initial.action_net.weight, after_frozen_update.action_net.weight)
    # ... and trains once unfrozen
    assert not _trunk_equals(final.features_extractor.trunk, weights)

    # the saved model is a follower like any other
    follower = load_follower(run)  # a run directory means its best model
    assert isinstance(follower, RLFollower) and follower.action_type == "discrete" and not follower.stochastic
    assert read_metadata(run / "best_model.zip")["algorithm"] == "ppo"
    trajectory = run_episode(follower, toy_pieces[1], seed=0)
    assert trajectory.piece == "toy_b" and len(trajectory.frames) >= 2


def test_frozen_trunk_training_looks_features_up_and_saves_an_ordinary_image_model(tmp_path, toy_dataset,
                                                                                   toy_pieces):
    """``frozen_trunk: true``: the policy heads train on tabled trunk features; what is saved is an
    image-observation model with the supervised trunk, acting exactly as the tabled policy did."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.rl.frozen_trunk import FrozenTrunkObservations, TrunkFeatureTables

    env_kwargs = {"observe_speed": True}
    observation_space = MSMDFollowEnv(data=toy_pieces, **env_kwargs).observation_space
    weights = _supervised_checkpoint(tmp_path / "supervised.pt", observation_space, features=32, width=0.25)
    run = tmp_path / "run"
    assert main(_parse(["--config", str(TINY), "--data", str(toy_dataset), "--out", str(run),
                        "--init-from", str(tmp_path / "supervised.pt"), "--set", "frozen_trunk=true",
                        "--set", "env.observe_speed=true"])) == 0
    follower = load_follower(run / "final_model.zip")
    policy = follower.model.policy
    assert isinstance(policy.features_extractor, TrunkExtractor)
    assert _trunk_equals(policy.features_extractor.trunk, weights)  # frozen: exactly the supervised trunk
    initial = build_model(load_config(TINY, ["env.observe_speed=true"]),
                          DummyVecEnv([lambda: MSMDFollowEnv(data=toy_pieces, **env_kwargs)])).policy
    assert not torch.equal(initial.action_net.weight, policy.action_net.weight)  # the heads learned

    # the image policy (plain predict and the follower's incremental path) sees what the tabled one saw
    tables = TrunkFeatureTables(policy.features_extractor.trunk)
    tabled_env = FrozenTrunkObservations(MSMDFollowEnv(data=toy_pieces, **env_kwargs), tables)
    image_env = MSMDFollowEnv(data=toy_pieces, **env_kwargs)
    tabled, _ = tabled_env.reset(seed=0, options={"piece": "toy_b"})
    image, info = image_env.reset(seed=0, options={"piece": "toy_b"})
    follower.reset(toy_pieces[1], seed=0)
    for action in [2, 2, 2, 1, 1, 0, 1, 2, 1, 1]:
        with torch.no_grad():
            tensors = {key: torch.from_numpy(value)[None] for key, value in image.items()}
            from_images = policy.extract_features(tensors, policy.features_extractor)
        expected = np.concatenate([tabled["trunk"], tabled["speed"] * 0.1])
        np.testing.assert_allclose(from_images[0].numpy(), expected, rtol=1e-4, atol=1e-5)
        assert follower.act(image, info) == int(follower.model.predict(image, deterministic=True)[0])
        tabled, *_ = tabled_env.step(action)
        image, _, _, _, info = image_env.step(action)
    assert follower._incremental is not None and follower._incremental.plain_frames == 0


def test_an_unknown_trunk_kind_is_rejected_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"tiny: trunk: unknown trunk kind 'resnet' \(known: figure3, matching\)"):
        config_from_dict({**_tiny_raw(), "trunk": {"kind": "resnet"}}, "tiny")
    matching = load_config(CONFIGS / "ppo_matching.yaml", ["init_from=runs/supervised/trunk_matching"])
    assert matching.frozen_trunk and (matching.trunk.kind, matching.trunk.features) == ("matching", 32)


def test_frozen_trunk_needs_a_supervised_trunk_and_the_speed(tmp_path):
    raw = _tiny_raw()
    with pytest.raises(ValueError, match="frozen_trunk needs init_from"):
        config_from_dict({**raw, "frozen_trunk": True, "env": {"observe_speed": True}}, "tiny")
    with pytest.raises(ValueError, match="observe_speed"):
        config_from_dict({**raw, "frozen_trunk": True, "init_from": str(tmp_path / "x.pt")}, "tiny")


def test_time_budget_stops_training_and_still_saves(tmp_path, toy_dataset):
    run = tmp_path / "run"
    assert main(_parse(["--config", str(TINY), "--data", str(toy_dataset), "--out", str(run),
                        "--max-minutes", "1e-6"])) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert 0 < summary["steps"] < 256
    assert (run / "final_model.zip").is_file()
    assert read_curve_csv(run)[-1]["step"] == summary["steps"]


def test_run_directory_is_not_overwritten(tmp_path, toy_dataset):
    run = tmp_path / "run"
    run.mkdir()
    (run / "final_model.zip").write_bytes(b"")
    with pytest.raises(ValueError, match="already holds a finished run"):
        main(_parse(["--config", str(TINY), "--data", str(toy_dataset), "--out", str(run)]))


def test_freeze_without_init_is_rejected(tmp_path, toy_dataset):
    with pytest.raises(ValueError, match="freeze_trunk_steps needs init_from"):
        main(_parse(["--config", str(TINY), "--data", str(toy_dataset), "--out", str(tmp_path / "run"),
                     "--freeze-trunk-steps", "10"]))


# ---------------------------------------------------------------------------- followers
def _untrained_model(algorithm: str, toy_pieces, tmp_path: Path) -> Path:
    raw = _tiny_raw()
    raw["algorithm"] = algorithm
    if algorithm == "recurrent_ppo":
        raw["hyperparameters"]["policy_kwargs"]["lstm_hidden_size"] = 8
    config = config_from_dict(raw, "tiny")
    from stable_baselines3.common.vec_env import DummyVecEnv

    model = build_model(config, DummyVecEnv([lambda: MSMDFollowEnv(data=toy_pieces)]))
    return save_model(model, tmp_path / f"{algorithm}.zip", {"algorithm": algorithm, "env": {}})


def _observations(toy_pieces, n: int) -> list[dict[str, np.ndarray]]:
    env = MSMDFollowEnv(data=toy_pieces)
    observation, _ = env.reset(seed=0, options={"piece": "toy_b"})
    observations = [observation]
    for action in np.random.default_rng(0).integers(3, size=n - 1):
        observation, _, terminated, truncated, _ = env.step(int(action))
        if terminated or truncated:
            observation, _ = env.reset(options={"piece": "toy_b"})
        observations.append(observation)
    return observations


def test_recurrent_follower_keeps_lstm_state_across_acts_and_clears_it_on_reset(tmp_path, toy_pieces):
    follower = load_follower(_untrained_model("recurrent_ppo", toy_pieces, tmp_path))
    assert follower.recurrent
    observations = _observations(toy_pieces, 3)
    follower.reset(toy_pieces[1])
    follower.act(observations[0], {})
    state_1 = [s.copy() for s in follower._lstm_state]
    follower.act(observations[1], {})
    state_2 = [s.copy() for s in follower._lstm_state]
    assert not all(np.array_equal(a, b) for a, b in zip(state_1, state_2))  # the state moves on

    follower.reset(toy_pieces[1])
    assert follower._lstm_state is None
    follower.act(observations[0], {})
    assert all(np.allclose(a, b) for a, b in zip(state_1, follower._lstm_state))  # same start, same state


def test_follower_actions_deterministic_by_default_and_seeded_when_stochastic(tmp_path, toy_pieces):
    path = _untrained_model("ppo", toy_pieces, tmp_path)
    observations = _observations(toy_pieces, 40)
    greedy = load_follower(path)
    policy = greedy.model.policy
    expected = []
    with torch.no_grad():
        for observation in observations:
            tensors = {k: torch.as_tensor(v)[None] for k, v in observation.items()}
            expected.append(int(policy.get_distribution(tensors).distribution.probs.argmax()))
    greedy.reset(toy_pieces[1])
    assert [greedy.act(o, {}) for o in observations] == expected

    sampler = load_follower(path, stochastic=True)
    assert sampler.stochastic

    def run(seed: int) -> list[int]:
        sampler.reset(toy_pieces[1], seed=seed)
        return [sampler.act(o, {}) for o in observations]

    torch.manual_seed(0)
    global_state = torch.get_rng_state()
    first = run(1)
    assert torch.equal(torch.get_rng_state(), global_state)  # the global torch random state is untouched
    assert run(1) == first
    assert any(run(seed) != first for seed in (2, 3, 4))
    assert all(0 <= a < 3 for a in first)


def test_load_follower_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_follower(tmp_path / "missing.zip")
    with pytest.raises(FileNotFoundError, match="no model"):
        load_follower(tmp_path)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.zip"):
        load_follower(tmp_path / "junk.zip")


# ---------------------------------------------------------------------------- hardening
@pytest.mark.parametrize("override, message", [
    ("hyperparameters.n_steps=abc", r"'hyperparameters\.n_steps' must be int, got 'abc'"),
    ("hyperparameters.n_steps=-64", r"'hyperparameters\.n_steps' must be positive, got -64"),
    ("hyperparameters.gamma=2", r"'hyperparameters\.gamma' must be within 0\.\.1, got 2"),
    ("trunk.width=-1", r"'trunk\.width' must be positive, got -1"),
    ("hyperparameters.batch_size=1000", r"'hyperparameters\.batch_size' must not exceed a rollout, "
                                        r"n_steps × n_envs = 64 × 2 = 128, got 1000"),
])
def test_bad_values_are_one_line_errors_before_a_run_directory_exists(tmp_path, toy_dataset, capsys, override, message):
    from sfgym.cli import main as sfgym_main

    run = tmp_path / "run"
    assert sfgym_main(["train", "rl", "--config", "tiny", "--data", str(toy_dataset), "--out", str(run),
                       "--set", override]) == 1
    error = capsys.readouterr().err
    assert re.search(message, error) and "tiny.yaml with --set" in error, error
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert not run.exists()  # no run directory holding only config.yaml


def test_init_from_takes_the_trunk_from_the_checkpoint_and_names_both_values_on_a_conflict(tmp_path, toy_pieces):
    from agents.rl.config import with_checkpoint_trunk

    observation_space = MSMDFollowEnv(data=toy_pieces).observation_space
    _supervised_checkpoint(tmp_path / "wide.pt", observation_space, features=32, width=0.5)
    raw = _tiny_raw()
    raw["trunk"] = {"dropout": 0.0}  # only what it overrides
    config = with_checkpoint_trunk(config_from_dict({**raw, "init_from": str(tmp_path / "wide.pt")}, "tiny"))
    assert (config.trunk.width, config.trunk.features, config.trunk.kind, config.trunk.dropout) == (0.5, 32, "figure3", 0.0)
    with pytest.raises(ValueError, match=r"wide.pt: the checkpoint's trunk has width 0.5, .* but tiny asks for width 0.25"):
        with_checkpoint_trunk(config_from_dict({**_tiny_raw(), "init_from": str(tmp_path / "wide.pt")}, "tiny"))


def test_an_sb3_model_or_a_foreign_file_as_init_from_says_what_it_is(tmp_path, toy_dataset, toy_pieces, capsys):
    from sfgym.cli import main as sfgym_main

    model_path = _untrained_model("ppo", toy_pieces, tmp_path)
    arguments = ["train", "rl", "--config", "tiny", "--data", str(toy_dataset), "--out", str(tmp_path / "run")]
    assert sfgym_main(arguments + ["--init-from", str(model_path)]) == 1
    error = capsys.readouterr().err
    assert "a stable-baselines3 model" in error and "not a readable" not in error
    torch.save({"anything": Path("x")}, tmp_path / "random.pt")  # a pickled object: weights_only refuses it
    assert sfgym_main(arguments + ["--init-from", str(tmp_path / "random.pt")]) == 1
    error = capsys.readouterr().err
    assert "random.pt: not a readable checkpoint" in error
    assert "weights_only" not in error and "Traceback" not in error
    assert not (tmp_path / "run").exists()


def _interrupt_at_evaluation(monkeypatch, number: int) -> None:
    """Send this process SIGINT (Ctrl-C) during the ``number``-th evaluation of the run."""
    import os
    import signal

    from agents.rl.callbacks import TrackingEvalCallback

    evaluate = TrackingEvalCallback.evaluate
    calls = []

    def evaluate_then_interrupt(self):
        calls.append(self.num_timesteps)
        if len(calls) == number:
            os.kill(os.getpid(), signal.SIGINT)
        return evaluate(self)

    monkeypatch.setattr(TrackingEvalCallback, "evaluate", evaluate_then_interrupt)


def test_ctrl_c_saves_a_final_model_and_resume_finishes_the_run(tmp_path, toy_dataset, monkeypatch, capsys):
    run = tmp_path / "run"
    arguments = ["--config", "tiny", "--data", str(toy_dataset), "--out", str(run), "--set", "progress_bar=true",
                 "--max-minutes", "10"]
    _interrupt_at_evaluation(monkeypatch, 2)  # the evaluation at step 128
    assert main(_parse(arguments)) == 0
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and 128 <= status["steps"] < 256
    assert (run / "final_model.zip").is_file() and (run / "last_model.zip").is_file()
    # the progress bar shows the budget that ends the run: steps and minutes
    assert re.search(r"step \d+/256, [\d.]+/10 min", capsys.readouterr().err)
    with pytest.raises(ValueError, match="already holds a run \\(interrupted"):
        main(_parse(arguments))

    monkeypatch.undo()
    assert main(_parse(["--resume", "--out", str(run), "--no-progress"])) == 0
    status = json.loads((run / "status.json").read_text())
    # (PPO collects whole rollouts: the run ends on the first rollout past 256 steps)
    assert status["state"] == "complete" and 256 <= status["steps"] < 256 + 128 and status["stopped"] == "total_timesteps"
    steps = [row["step"] for row in read_curve_csv(run)]
    assert steps[0] == 0 and steps[-1] == status["steps"] and steps == sorted(steps) and len(steps) == len(set(steps))
    assert json.loads((run / "summary.json").read_text())["steps"] == status["steps"]


def test_learning_rate_final_decays_the_learning_rate_over_the_run(tmp_path, toy_dataset):
    """``learning_rate_final``: the optimizer's learning rate falls linearly from the hyperparameter's value to
    it over ``total_timesteps`` (PPO's constant rate keeps a policy wandering); the saved model loads."""
    run = tmp_path / "run"
    assert main(_parse(["--config", str(TINY), "--data", str(toy_dataset), "--out", str(run),
                        "--set", "learning_rate_final=1.0e-6", "--set", "hyperparameters.learning_rate=1.0e-3"])) == 0
    follower = load_follower(run / "final_model.zip")
    last_rate = follower.model.policy.optimizer.param_groups[0]["lr"]
    assert last_rate == pytest.approx(1.0e-6)  # the last update ran at the end of the decay
    assert follower.model.lr_schedule(1.0) == pytest.approx(1.0e-3)
    assert follower.model.lr_schedule(0.0) == pytest.approx(1.0e-6)
    with pytest.raises(ValueError, match="learning_rate_final"):
        config_from_dict({**_tiny_raw(), "learning_rate_final": -1.0}, source="tiny.yaml")


class _PolicyLike(nn.Module):
    """A stand-in for an SB3 policy: one weight, and ``set_training_mode``."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(3))

    def set_training_mode(self, mode: bool) -> None:
        self.train(mode)


def test_policy_average_is_the_exponential_moving_average_of_the_updates():
    """``PolicyAverageCallback`` averages the policy's weights after each update (decay ``min(decay,
    (1 + n) / (10 + n))`` at update n), leaves the policy itself alone, and hands the average to what it deploys."""
    from types import SimpleNamespace

    from agents.rl.callbacks import PolicyAverageCallback

    model = SimpleNamespace(policy=_PolicyLike(), num_timesteps=0, get_env=lambda: None)
    averager = PolicyAverageCallback(decay=0.5)
    averager.init_callback(model)
    averager.on_training_start({}, {})
    expected = torch.zeros(3)
    for update, value in enumerate([1.0, 2.0, 4.0, 8.0]):
        with torch.no_grad():
            model.policy.weight.fill_(value)
        model.num_timesteps += 16
        averager.on_rollout_start()
        averager.on_rollout_start()  # no update in between: nothing more is averaged in
        decay = min(0.5, (1 + update) / (10 + update))
        expected = decay * expected + (1 - decay) * value
        assert torch.allclose(averager.averaged.weight, expected)
    assert 0 < expected[0] < 8.0 and torch.all(model.policy.weight == 8.0)  # the average lags the policy
    deployed = averager.deployable(lambda stand_in: stand_in)(model)
    assert deployed is not model and torch.allclose(deployed.policy.weight, expected)
    assert deployed.num_timesteps == model.num_timesteps and model.policy.weight[0] == 8.0
    with pytest.raises(ValueError, match="decay"):
        PolicyAverageCallback(decay=1.0)


def test_policy_average_run_saves_the_average_and_trains_on(tmp_path, toy_dataset):
    """A run with ``policy_average``: ``final_model.zip`` holds the averaged weights (not the training
    policy's, which ``last_model.zip`` keeps for --resume), loads and follows; a decay outside (0, 1) is refused."""
    run = tmp_path / "run"
    assert main(_parse(["--config", str(TINY), "--data", str(toy_dataset), "--out", str(run), "--no-progress",
                        "--set", "policy_average=0.5", "--set", "hyperparameters.learning_rate=1.0e-2"])) == 0
    final, last = load_follower(run / "final_model.zip"), load_follower(run / "last_model.zip")
    final_weights, last_weights = final.model.policy.state_dict(), last.model.policy.state_dict()
    heads = [key for key in final_weights if "features_extractor" not in key and final_weights[key].is_floating_point()]
    assert heads and any(not torch.equal(final_weights[key], last_weights[key]) for key in heads)
    piece = MSMDFollowEnv(data=str(toy_dataset), split="valid").pieces[0]
    assert len(run_episode(final, piece, seed=0).frames) > 1
    with pytest.raises(ValueError, match="policy_average"):
        config_from_dict({**_tiny_raw(), "policy_average": 1.5}, source="tiny.yaml")


def test_extra_train_dirs_join_the_training_pieces(tmp_path, toy_dataset, toy_pieces):
    """``extra_train_dirs``: their train splits join ``data``'s in every env (a name already taken gets the
    folder's name), in process and in a worker's env; a missing one is an error naming it."""
    import shutil

    from agents.rl.train import _environment, make_training_env
    from sfgym.data.msmd import write_piece
    from sfgym.data.synthetic import synthetic_piece

    other = tmp_path / "other"
    shutil.copytree(toy_dataset / "train", other / "train")
    write_piece(other / "train", synthetic_piece("toy_d", n_onsets=20, frames_per_onset=6, seed=4))
    raw = {**_tiny_raw(), "data": str(toy_dataset), "extra_train_dirs": [str(other)], "vec_env": "dummy", "n_envs": 1}
    config = config_from_dict(raw, source="tiny.yaml")
    expected = {"toy_a", "toy_b", "toy_c", "toy_a#other", "toy_b#other", "toy_c#other", "toy_d"}
    env = make_training_env(config, toy_dataset)
    try:
        assert {piece.name for piece in env.envs[0].unwrapped.pieces} == expected
    finally:
        env.close()
    worker_env = _environment(train_roots=[str(toy_dataset), str(other)], **config.env)
    assert {piece.name for piece in worker_env.pieces} == expected
    renamed = next(piece for piece in worker_env.pieces if piece.name == "toy_a#other")
    assert np.array_equal(renamed.spectrogram, toy_pieces[0].spectrogram)  # the same piece, renamed
    run = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="missing"):
        main(_parse(["--config", str(TINY), "--data", str(toy_dataset), "--out", str(run), "--no-progress",
                     "--set", f"extra_train_dirs=[\"{tmp_path / 'missing'}\"]"]))
    assert not run.exists()  # refused before anything was written
    with pytest.raises(ValueError, match="extra_train_dirs"):
        config_from_dict({**raw, "extra_train_dirs": [3]}, source="tiny.yaml")
