"""Tests for ``sfgym sweep`` (sfgym.sweep): the plan, the tables, a tiny sweep on local Ray, its equality with
the same runs started by hand, its resume, and the message without Ray."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sfgym.cli import main
from sfgym.sweep import (Trial, parse_seeds, parse_sets, plan_trials, read_sweep_file, setting_rows, split_values,
                         summary_markdown, figures_on_test)

ROOT = Path(__file__).resolve().parents[1]
TINY_SUPERVISED = ["--config", "tiny", "--set", "data.max_steps_per_song=12"]
SEEDS = (0, 1, 2)
LEARNING_RATES = ("0.001", "0.003")


# ---------------------------------------------------------------------------- the plan
def test_values_split_on_commas_outside_brackets_and_quotes():
    assert split_values("1e-3, 3e-3") == ["1e-3", "3e-3"]
    assert split_values("[16,16],[32, 32]") == ["[16,16]", "[32, 32]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert parse_sets(["training.lr=1,2", "model.cell=lstm", "training.lr=3"]) == {
        "training.lr": ["1", "2", "3"], "model.cell": ["lstm"]}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_sets(["training.lr"])
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3-5") == [3, 4, 5]


def test_the_plan_is_the_grid_times_the_seeds_named_by_what_varies():
    trials = plan_trials({"training.lr": ["0.001", "0.003"], "model.cell": ["lstm"], "model.hidden_size": ["8", "16"]},
                         seeds=[0, 1])
    assert len(trials) == 8
    assert trials[0] == Trial("lr-0.001_hidden_size-8-seed0", "training.lr=0.001 model.hidden_size=8",
                              ("training.lr=0.001", "model.cell=lstm", "model.hidden_size=8"), 0)
    assert len({t.name for t in trials}) == 8
    # keys that end alike are spelled out; no swept key: the config's own setting
    alike = plan_trials({"model.dropout": ["0", "0.1"], "trunk.dropout": ["0", "0.1"]}, seeds=[0])
    assert alike[1].name == "model.dropout-0_trunk.dropout-0.1-seed0"
    assert [t.name for t in plan_trials({}, seeds=[0, 1])] == ["config-seed0", "config-seed1"]
    samples = plan_trials({"a": ["1", "2", "3"], "b": ["1", "2"]}, seeds=[0], samples=4)
    assert len(samples) == 4 and len({t.setting for t in samples}) == 4
    assert samples == plan_trials({"a": ["1", "2", "3"], "b": ["1", "2"]}, seeds=[0], samples=4)  # the same draw
    with pytest.raises(ValueError, match="distinct seeds"):
        plan_trials({}, seeds=[0, 0])


def test_a_sweep_file_gives_settings_as_set_takes_them(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("set:\n  training.lr: [0.001, 0.003]\n  model.cell: gru\n  trunk.widths: [[16, 16]]\n"
                    "seeds: [0, 1]\n")
    assert read_sweep_file(path) == {"set": {"training.lr": ["0.001", "0.003"], "model.cell": ["gru"],
                                             "trunk.widths": ["[16, 16]"]}, "seeds": [0, 1], "samples": None}
    path.write_text("settings: {}\n")
    with pytest.raises(ValueError, match="'set'"):
        read_sweep_file(path)


def test_the_table_is_mean_and_std_over_the_complete_seeds():
    trials = pd.DataFrame([
        {"setting": "lr=1", "seed": 0, "trial": "a", "state": "complete", "valid_tr": 0.5, "test_tr": 0.4},
        {"setting": "lr=1", "seed": 1, "trial": "b", "state": "complete", "valid_tr": 0.7, "test_tr": 0.6},
        {"setting": "lr=2", "seed": 0, "trial": "c", "state": "complete", "valid_tr": 0.9, "test_tr": 0.8},
        {"setting": "lr=2", "seed": 1, "trial": "d", "state": "running", "valid_tr": None, "test_tr": None},
    ])
    settings = setting_rows(trials)
    assert list(settings["setting"]) == ["lr=1", "lr=2"] and list(settings["seeds"]) == [2, 1]
    assert settings["valid_tr_mean"][0] == pytest.approx(0.6) and settings["valid_tr_std"][0] == pytest.approx(0.1414, abs=1e-4)
    assert pd.isna(settings["valid_tr_std"][1])  # one seed: no spread
    markdown = summary_markdown(settings, "valid_tr", "title")
    assert "| lr=1 | 2/2 | 0.600 ± 0.141 | 0.500 ± 0.141 |" in markdown
    assert "| lr=2 | 1/2 | 0.900 | 0.800 |" in markdown


# ---------------------------------------------------------------------------- without Ray
def test_without_ray_the_sweep_says_how_to_install_it(monkeypatch, tmp_path, capsys, toy_dataset):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code = main(["sweep", "supervised", *TINY_SUPERVISED, "--data", str(toy_dataset), "--set", "training.lr=1e-3,3e-3",
                 "--out", str(tmp_path / "sweep")])
    assert code == 1
    err = capsys.readouterr().err
    assert 'pip install -e ".[ray]"' in err and "Traceback" not in err
    assert not (tmp_path / "sweep").exists()


def test_other_commands_never_import_ray():
    script = ("import sys; from sfgym.cli import build_parser; build_parser().parse_args(['sweep', 'supervised']); "
              "import sfgym.sweep; assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)


# ---------------------------------------------------------------------------- on local Ray
@pytest.fixture(scope="module")
def local_ray():
    """One local Ray session (2 CPUs) for the module's sweeps; its workers import this checkout."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.tune")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_sweep(local_ray, tmp_path_factory, toy_dataset):
    """A 2 learning rates × 3 seeds sweep of the tiny supervised config, run once: its directory, command
    line and printed output."""
    sweep_dir = tmp_path_factory.mktemp("sweep") / "lr"
    arguments = ["sweep", "supervised", *TINY_SUPERVISED, "--data", str(toy_dataset),
                 "--set", f"training.lr={','.join(LEARNING_RATES)}", "--seeds", ",".join(map(str, SEEDS)),
                 "--out", str(sweep_dir)]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(arguments) == 0
    return sweep_dir, arguments, out.getvalue()


def _run(arguments, capsys) -> str:
    capsys.readouterr()
    assert main(arguments) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_a_tiny_sweep_writes_run_directories_and_its_table(tiny_sweep, tmp_path):
    sweep_dir, _, out = tiny_sweep
    names = [f"lr-{lr}-seed{seed}" for lr in LEARNING_RATES for seed in SEEDS]
    assert sorted(path.name for path in (sweep_dir / "trials").iterdir()) == sorted(names)
    assert sum(line.startswith("[") and ": valid_tr " in line for line in out.splitlines()) == 6  # one line a trial
    for name in names:
        trial = sweep_dir / "trials" / name
        assert json.loads((trial / "status.json").read_text())["state"] == "complete"
        assert {"best.pt", "metrics.json", "config.yaml", "test_figures.json"} <= {p.name for p in trial.iterdir()}

    trials = pd.read_csv(sweep_dir / "trials.csv")
    settings = pd.read_csv(sweep_dir / "summary.csv")
    assert list(settings["setting"]) == [f"training.lr={lr}" for lr in LEARNING_RATES]
    assert list(settings["seeds"]) == [3, 3]
    for setting, group in trials.groupby("setting"):
        row = settings[settings["setting"] == setting].iloc[0]
        for figure in ("valid_tr", "valid_tue", "test_tr", "test_tue"):
            assert row[f"{figure}_mean"] == pytest.approx(group[figure].mean())
            assert row[f"{figure}_std"] == pytest.approx(group[figure].std(ddof=1))
    markdown = (sweep_dir / "summary.md").read_text()
    assert "| setting | seeds | valid tr | valid tue | test tr | test tue |" in markdown and markdown in out

    # an ordinary run directory: `sfgym evaluate` takes its model
    trial = sweep_dir / "trials" / names[0]
    assert main(["evaluate", "--agents", str(trial / "best.pt"), "--data", _data_dir(trial),
                 "--out", str(tmp_path / "eval"), "--no-plots", "--workers", "1"]) == 0
    evaluated = pd.read_csv(tmp_path / "eval" / "summary.csv")
    assert evaluated["tr"][0] == pytest.approx(trials["test_tr"][0])


def _data_dir(trial: Path) -> str:
    import yaml

    return yaml.safe_load((trial / "config.yaml").read_text())["data"]["dir"]


@pytest.mark.slow
def test_the_sweep_gives_the_figures_of_the_same_runs_started_by_hand(tiny_sweep, tmp_path, toy_dataset, capsys):
    sweep_dir, _, _ = tiny_sweep
    trials = pd.read_csv(sweep_dir / "trials.csv").set_index("trial")
    for lr in LEARNING_RATES:
        for seed in SEEDS:
            run = tmp_path / f"lr{lr}-seed{seed}"
            _run(["train", "supervised", *TINY_SUPERVISED, "--data", str(toy_dataset), "--set", f"training.lr={lr}",
                  "--set", f"training.seed={seed}", "--out", str(run), "--no-progress"], capsys)
            by_hand = json.loads((run / "metrics.json").read_text())["valid"]
            swept = trials.loc[f"lr-{lr}-seed{seed}"]
            assert (swept["valid_tr"], swept["valid_tue"]) == (by_hand["tr"], by_hand["tue"])
            swept_history = pd.read_csv(sweep_dir / "trials" / f"lr-{lr}-seed{seed}" / "history.csv")
            hand_history = pd.read_csv(run / "history.csv")
            columns = [c for c in hand_history.columns if c != "seconds"]
            pd.testing.assert_frame_equal(swept_history[columns], hand_history[columns])
            test = figures_on_test(str(run / "best.pt"), str(toy_dataset))
            assert (swept["test_tr"], swept["test_tue"]) == (test["test_tr"], test["test_tue"])


@pytest.mark.slow
def test_a_resumed_sweep_runs_only_the_trials_left(tiny_sweep, capsys):
    sweep_dir, arguments, _ = tiny_sweep
    before = (sweep_dir / "trials.csv").read_text()
    trials = sweep_dir / "trials"
    deleted, interrupted, unsaved = trials / "lr-0.001-seed1", trials / "lr-0.003-seed2", trials / "lr-0.003-seed0"
    kept = {path.name: (path / "best.pt").stat().st_mtime_ns for path in trials.iterdir()
            if path not in (deleted, interrupted, unsaved)}
    shutil.rmtree(deleted)
    status = json.loads((interrupted / "status.json").read_text())
    (interrupted / "status.json").write_text(json.dumps({**status, "state": "interrupted"}))
    # killed before its first checkpoint: a run directory with nothing to resume
    for name in ("best.pt", "last.pt", "metrics.json", "history.csv", "test_figures.json"):
        (unsaved / name).unlink()
    (unsaved / "status.json").write_text(json.dumps({**status, "state": "running"}))

    assert main(arguments) == 1  # without --resume: refused
    assert "--resume" in capsys.readouterr().err
    out = _run(arguments + ["--resume"], capsys)
    assert "sweep of 6 trials (3 done before)" in out
    finished = [line for line in out.splitlines() if line.startswith("[")]
    assert {line.split()[1] for line in finished} == {f"{deleted.name}:", f"{interrupted.name}:", f"{unsaved.name}:"}
    assert len(finished) == 3
    assert "resuming" in (interrupted / "sweep.log").read_text()  # continued from its last.pt, not started again
    assert "nothing to resume: starting the trial again" in (unsaved / "sweep.log").read_text()
    assert {name: (trials / name / "best.pt").stat().st_mtime_ns for name in kept} == kept
    assert (sweep_dir / "trials.csv").read_text() == before  # the same seeds: the same figures

    # a resumed sweep must be the same sweep
    assert main([a.replace("0.001,0.003", "0.001,0.01") for a in arguments] + ["--resume"]) == 1
    assert "holds another sweep" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("kind, options, seed_key, figure, tested", [
    ("rl", ["--config", "tiny", "--set", "total_timesteps=128"], ("seed",), "valid_tr", True),
    ("trunk", ["--config", "trunk_offset", "--set", "training.max_steps=2", "--set", "training.eval_every_steps=2",
               "--set", "training.device=cpu", "--set", "training.num_threads=1", "--set", "data.valid_pieces=1",
               "--set", "data.valid_samples=8"], ("training", "seed"), "valid_mae_px", False),
])
def test_every_trainer_sweeps_with_its_seed_and_its_figure(local_ray, tmp_path, toy_dataset, kind, options, seed_key,
                                                           figure, tested):
    import yaml

    sweep_dir = tmp_path / kind
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["sweep", kind, *options, "--data", str(toy_dataset), "--seeds", "3", "--out", str(sweep_dir)]) == 0
    assert f"config-seed3: {figure} " in out.getvalue()
    config = yaml.safe_load((sweep_dir / "trials" / "config-seed3" / "config.yaml").read_text())
    assert config[seed_key[0]] == 3 if len(seed_key) == 1 else config[seed_key[0]][seed_key[1]] == 3
    settings = pd.read_csv(sweep_dir / "summary.csv")
    assert settings["seeds"][0] == 1 and not pd.isna(settings[f"{figure}_mean"][0])
    assert ("test_tr_mean" in settings.columns) == tested
