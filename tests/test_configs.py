"""Every shipped config loads and validates; configs are found by name from the package; the three
trainers check their configs with the same typed checks and messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.config_files import CONFIG_DIR, apply_overrides, find_config, shipped_configs


def _loader(kind: str):
    if kind == "supervised":
        from agents.supervised.config import load_config
    elif kind == "rl":
        from agents.rl.config import load_config
    else:
        from agents.pretraining.train import load_config
    return load_config


# configs that name their starting checkpoint on the command line (--init-from)
NEEDS_INIT_FROM = {"ppo_frozen", "ppo_matching"}


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_every_shipped_config_loads_and_validates(path):
    kind = path.parent.name
    overrides = ["init_from=some/run"] if path.stem in NEEDS_INIT_FROM else []
    config = _loader(kind)(path, overrides)
    assert config.trunk.kind in ("figure3", "matching")  # every config has the one trunk section


def test_the_shipped_configs_are_all_there_and_packaged():
    names = {f"{path.parent.name}/{path.stem}" for path in shipped_configs()}
    assert {"supervised/lstm_cpu", "supervised/tiny", "rl/ppo", "rl/tiny", "rl/ppo_matching",
            "trunk/trunk_matching", "trunk/trunk_offset"} <= names
    assert CONFIG_DIR.parent.name == "agents"  # inside the package (pyproject: package-data)
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"configs/*/*.yaml"' in next(line for line in pyproject.splitlines() if line.startswith("agents = ["))


def test_a_config_is_found_by_name_or_path(tmp_path):
    assert find_config("lstm_cpu", "supervised") == CONFIG_DIR / "supervised" / "lstm_cpu.yaml"
    assert find_config("tiny", "rl") == CONFIG_DIR / "rl" / "tiny.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("model: {}\n")
    assert find_config(own, "supervised") == own
    with pytest.raises(FileNotFoundError, match=r"nope: config file does not exist.*lstm_cpu"):
        find_config("nope", "supervised")


@pytest.mark.parametrize("kind, override, message", [
    ("supervised", "trunk.width=-1", r"'trunk\.width' must be positive, got -1"),
    ("rl", "trunk.width=-1", r"'trunk\.width' must be positive, got -1"),
    ("trunk", "trunk.width=-1", r"'trunk\.width' must be positive, got -1"),
    ("supervised", "training.lr=fast", r"'training\.lr' must be float, got 'fast'"),
    ("trunk", "training.lr=fast", r"'training\.lr' must be float, got 'fast'"),
    ("rl", "hyperparameters.learning_rate=fast", r"'hyperparameters\.learning_rate' must be float, got 'fast'"),
    ("supervised", "trunk.depth=3", r"unknown key 'trunk\.depth'"),
    ("rl", "trunk.depth=3", r"unknown key 'trunk\.depth'"),
    ("trunk", "trunk.depth=3", r"unknown key 'trunk\.depth'"),
])
def test_the_three_trainers_check_values_with_the_same_messages(kind, override, message):
    with pytest.raises(ValueError, match=f"tiny.yaml with --set: {message}" if kind != "trunk" else message):
        _loader(kind)(find_config("tiny" if kind != "trunk" else "trunk_offset", kind), [override])


def test_quoted_override_stays_a_string():
    # --data and --init-from pass paths quoted, so that a path that looks like a number stays a path
    assert apply_overrides({}, ['data.dir="2024"'])["data"]["dir"] == "2024"
    assert apply_overrides({}, ["data.dir='1e5'"])["data"]["dir"] == "1e5"
    assert apply_overrides({}, ["total_timesteps=1e5"])["total_timesteps"] == 100000
    assert apply_overrides({}, ["training.lr=3e-4"])["training"]["lr"] == pytest.approx(3e-4)


def test_resuming_refuses_a_config_that_differs_beyond_its_budgets():
    from agents.runs import check_resumable

    before = {"total_timesteps": 10, "seed": 0, "hyperparameters": {"n_steps": 128, "gamma": 0.99}}
    check_resumable("run/config.yaml", before, {**before, "total_timesteps": 20}, ("total_timesteps",))  # a budget
    with pytest.raises(ValueError, match=r"run/config.yaml: the run was started with another config.*"
                                         r"seed: 0 != 1; hyperparameters.n_steps: 128 != 64"):
        check_resumable("run/config.yaml", before,
                        {"total_timesteps": 20, "seed": 1, "hyperparameters": {"n_steps": 64, "gamma": 0.99}},
                        ("total_timesteps",))
