"""Shipped followers: a trained model packaged with its card (``sfgym train pretrained --from RUN``) is a named
follower that loads and follows a real piece; broken cards and models are clear errors naming the file;
the follower named ``pretrained`` is always registered, and follows the MSMD sample when one is shipped."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import MSMD_SAMPLE_PIECE, MSMD_SAMPLE_SPLIT

from agents import pretrained
from agents.pretrained.train import add_arguments, dataset_identity, main
from agents.registry import make_follower, register_followers
from sfgym.evaluation import run_evaluation
from sfgym.followers import follower_descriptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RL_TINY = Path(__file__).resolve().parent.parent / "agents" / "configs" / "rl" / "tiny.yaml"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def msmd_sample(tmp_path_factory):
    """The real MSMD sample piece, loaded from a copy of its split (loading caches its spectrogram)."""
    from sfgym.data.msmd import load_split

    split = shutil.copytree(MSMD_SAMPLE_SPLIT, tmp_path_factory.mktemp("msmd") / "msmd_sample")
    return load_split(split, [MSMD_SAMPLE_PIECE], progress=False)[0]


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """An empty shipped-followers folder in place of the package's."""
    folder = tmp_path / "shipped"
    monkeypatch.setenv(pretrained.SHIPPED_DIR_ENV, str(folder))
    return folder


def _rl_run(run: Path, data: Path, toy_pieces) -> Path:
    """An RL run directory as ``sfgym train rl`` leaves it (config, best model, best.json), untrained weights."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.rl.config import config_from_dict
    from agents.rl.follower import save_model
    from agents.rl.train import build_model, model_metadata
    from sfgym.envs import MSMDFollowEnv

    config = config_from_dict({**yaml.safe_load(RL_TINY.read_text()), "data": str(data)}, "tiny")
    model = build_model(config, DummyVecEnv([lambda: MSMDFollowEnv(data=toy_pieces[:1])]))
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    (run / "status.json").write_text(json.dumps({"trainer": "rl", "state": "complete"}))
    (run / "best.json").write_text(json.dumps({"step": 128, "tr": 0.25, "tue": 0.0}))
    save_model(model, run / "best_model.zip", model_metadata(config))
    return run


def _supervised_run(run: Path, data: Path) -> Path:
    """A supervised run directory with a ``best.pt`` of a tiny untrained regressor trained on ``data``."""
    from agents.networks import TrunkConfig
    from agents.supervised.checkpoint import save_checkpoint
    from agents.supervised.config import DataConfig, ModelConfig, SupervisedConfig
    from agents.supervised.model import PositionRegressor

    torch.manual_seed(0)
    config = SupervisedConfig(model=ModelConfig(cell="gru", hidden_size=8, num_layers=1),
                              trunk=TrunkConfig(width=0.25, features=16, dropout=0.0), data=DataConfig(dir=str(data)))
    save_checkpoint(run / "best.pt", PositionRegressor(config.model, config.trunk), config, epoch=1,
                    metrics={"tr": 0.5, "tue": 0.0})
    return run


# ---------------------------------------------------------------------------- shipping and loading
def test_an_rl_run_shipped_with_from_is_a_named_follower_that_follows_the_msmd_sample(
        tmp_path, shipped, toy_dataset, toy_pieces, msmd_sample, capsys):
    run = _rl_run(tmp_path / "runs" / "rl", toy_dataset, toy_pieces)
    assert main(_parse(["--from", str(run), "--ship", "tiny_ppo", "--workers", "1", "--no-progress"])) == 0
    assert "shipped" in capsys.readouterr().out

    # the model file is the run's best model, byte for byte, and the card says how it was made
    assert (shipped / "tiny_ppo.zip").read_bytes() == (run / "best_model.zip").read_bytes()
    card = pretrained.read_card(shipped / "tiny_ppo.json")
    assert card["name"] == "tiny_ppo" and card["kind"] == "rl" and card["seed"] == 0
    assert card["model_sha256"] == hashlib.sha256((run / "best_model.zip").read_bytes()).hexdigest()
    assert card["command"] == f"sfgym train pretrained --from {run} --ship tiny_ppo --workers 1 --no-progress"
    assert card["commands"] == [f"sfgym train rl --config {run / 'config.yaml'} --out NEW_RUN_DIR"]
    assert card["data"] == json.loads(json.dumps(dataset_identity(toy_dataset)))
    assert card["data"]["splits"]["train"]["scores"] == 3
    assert card["data"]["splits"]["test"]["score_names_sha256"] == hashlib.sha256(b"toy_b\ntoy_c").hexdigest()
    assert card["selection_on_valid"]["tr"] == 0.25
    assert set(card["evaluation"]) == {"valid", "test"}
    assert card["evaluation"]["test"]["pieces"] == 2 and 0.0 <= card["evaluation"]["test"]["tr"] <= 1.0

    # registered by name, with a line from its card, and loaded only when made
    register_followers()
    description = follower_descriptions()["tiny_ppo"]
    assert description == (f"shipped, ready to use: PPO on a figure3 trunk, trained on {toy_dataset.name}; test TR "
                           f"{card['evaluation']['test']['tr']:.2f}, TUE {card['evaluation']['test']['tue']:.2f}")
    follower = make_follower("tiny_ppo")
    assert follower.name == "tiny_ppo" and follower.action_type == "discrete"

    # it follows the real MSMD sample through the evaluation API, to the end of its episode, on one thread
    evaluation = run_evaluation(["tiny_ppo"], [msmd_sample], workers=1, progress=False)
    (metrics,) = evaluation.metrics
    (trajectory,) = evaluation.trajectories
    assert metrics.piece == MSMD_SAMPLE_PIECE and 0.0 <= metrics.tr <= 1.0
    assert len(trajectory.frames) >= 2 and (np.diff(trajectory.frames) == 1).all()

    # shipping again under the same name needs --overwrite
    with pytest.raises(ValueError, match=r"tiny_ppo\.json.*--overwrite"):
        main(_parse(["--from", str(run), "--ship", "tiny_ppo", "--evaluate", "none"]))


def test_a_supervised_run_ships_and_replaces_a_model_of_the_other_kind(tmp_path, shipped, toy_dataset, toy_pieces,
                                                                         msmd_sample):
    rl_run = _rl_run(tmp_path / "rl", toy_dataset, toy_pieces)
    assert main(_parse(["--from", str(rl_run), "--ship", "mine", "--evaluate", "none"])) == 0
    run = _supervised_run(tmp_path / "supervised", toy_dataset)
    assert main(_parse(["--from", str(run), "--ship", "mine", "--overwrite", "--evaluate", "test", "--workers", "1",
                        "--no-progress"])) == 0
    assert sorted(path.name for path in shipped.iterdir()) == ["mine.json", "mine.pt"]  # the .zip is gone
    card = pretrained.read_card(shipped / "mine.json")
    assert card["kind"] == "supervised" and card["description"].startswith("GRU position regressor")
    assert card["selection_on_valid"] == {"epoch": 1, "tr": 0.5, "tue": 0.0} and list(card["evaluation"]) == ["test"]
    follower = make_follower("mine")
    assert follower.action_type == "position" and follower.name == "mine"
    (metrics,) = run_evaluation([follower], [msmd_sample], workers=1, progress=False).metrics
    assert metrics.piece == MSMD_SAMPLE_PIECE


def test_a_missing_corrupt_or_replaced_shipped_model_is_an_error_naming_the_file(tmp_path, shipped, toy_dataset,
                                                                                   toy_pieces):
    run = _rl_run(tmp_path / "rl", toy_dataset, toy_pieces)
    assert main(_parse(["--from", str(run), "--ship", "broken", "--evaluate", "none"])) == 0
    card, model = shipped / "broken.json", shipped / "broken.zip"

    model.write_bytes(model.read_bytes()[:-100])  # truncated
    with pytest.raises(ValueError, match=r"broken\.zip: the model file of shipped follower 'broken' is corrupt"):
        make_follower("broken")
    model.unlink()
    with pytest.raises(FileNotFoundError, match=r"broken\.zip: the model file of shipped follower 'broken' is missing"):
        make_follower("broken")
    card.write_text('{"format": "sfgym-shipped-follower", "version": 1, "name": ')  # truncated JSON
    with pytest.raises(ValueError, match=r"broken\.json: unreadable shipped-follower card"):
        make_follower("broken")
    assert follower_descriptions()["broken"].startswith("shipped, but unusable:")  # listed, with what is wrong
    card.write_text(json.dumps({"format": "sfgym-shipped-follower", "version": 1, "name": "broken"}))
    with pytest.raises(ValueError, match=r"broken\.json: the card lacks kind, model_file"):
        make_follower("broken")


def test_a_model_whose_card_matches_but_which_torch_cannot_read_names_the_file(tmp_path, shipped, toy_dataset):
    run = _supervised_run(tmp_path / "supervised", toy_dataset)
    assert main(_parse(["--from", str(run), "--ship", "junk", "--evaluate", "none"])) == 0
    model = shipped / "junk.pt"
    model.write_bytes(b"not a checkpoint")
    card = json.loads((shipped / "junk.json").read_text())
    card["model_sha256"] = hashlib.sha256(b"not a checkpoint").hexdigest()
    (shipped / "junk.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match=r"junk\.pt: not a readable checkpoint"):
        make_follower("junk")


def test_bad_sources_and_names_are_one_line_errors(tmp_path, shipped, capsys, monkeypatch):
    from sfgym.cli import main as sfgym_main
    from sfgym.commands import train as train_command

    with pytest.raises(FileNotFoundError, match="nothing.zip"):
        main(_parse(["--from", str(tmp_path / "nothing.zip")]))
    with pytest.raises(ValueError, match="cannot name a shipped follower"):
        main(_parse(["--from", str(tmp_path), "--ship", "Bad-Name"]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: run directory holds no model"):
        main(_parse(["--from", str(tmp_path / "empty")]))
    assert not shipped.exists()  # nothing written
    # the command line turns them into a message, not a traceback (its entry point as pyproject.toml declares it,
    # whether or not this checkout's metadata is installed)
    modules = {**train_command.trainer_modules(), "pretrained": "agents.pretrained.train"}
    monkeypatch.setattr(train_command, "trainer_modules", lambda: modules)
    assert sfgym_main(["train", "pretrained", "--from", str(tmp_path / "empty")]) != 0
    error = capsys.readouterr().err
    assert "empty: run directory holds no model" in error and "Traceback" not in error


def _trunk_run(run: Path, data: Path, seed: int, extra: list[Path] = ()) -> Path:
    """A matching trunk's run directory as ``sfgym train trunk`` leaves it (config, best.pt), untrained; ``extra``:
    more datasets it says it trained on (``data.extra_train_dirs``)."""
    from agents.networks import TrunkConfig
    from agents.pretraining.train import TrunkPretrainingConfig, pretraining_model
    from agents.runs import save_checkpoint

    torch.manual_seed(seed)
    trunk = TrunkConfig(kind="matching", width=0.25, features=8, match_frames=4, match_context=2, dropout=0.0)
    config = TrunkPretrainingConfig(trunk=trunk).to_dict()
    config["data"]["dir"], config["training"]["seed"] = str(data), seed
    config["data"]["extra_train_dirs"] = [str(root) for root in extra]
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    save_checkpoint(run / "best.pt", "trunk", pretraining_model(trunk), config, trunk, metrics={"valid_mae_px": 50.0})
    return run


def test_several_trunk_runs_shipped_with_from_are_one_tracker_averaging_them(tmp_path, shipped, toy_dataset):
    from agents.tracking import MatchingTracker

    runs = [_trunk_run(tmp_path / f"trunk-seed{seed}", toy_dataset, seed, extra=[toy_dataset]) for seed in (0, 1)]
    assert main(_parse(["--from", ",".join(str(run) for run in runs), "--evaluate", "test", "--workers", "1",
                        "--no-progress"])) == 0
    card = pretrained.read_card(shipped / "pretrained.json")
    assert card["kind"] == "tracker" and card["description"].startswith("2 matching trunks averaged")
    assert card["source"] == [str(run / "best.pt") for run in runs]  # its members, not the file staged to ship
    # the datasets whose train splits the trunks trained on besides their own are on the card, by identity
    assert [entry["name"] for entry in card["extra_training_data"]] == [card["data"]["name"]]
    assert card["extra_training_data"][0]["splits"] == card["data"]["splits"]
    assert card["description"].endswith(f"trained on {card['data']['name']} + {card['data']['name']}")
    assert card["seed"] is None and card["data"]["name"] and "tr" in card["evaluation"]["test"]
    assert [command.split(" --config ")[1].split(" ")[0] for command in card["commands"]] == [
        str(run / "config.yaml") for run in runs]
    follower = make_follower("pretrained")
    assert isinstance(follower, MatchingTracker) and len(follower.trunks) == 2


# ---------------------------------------------------------------------------- the follower named pretrained
def test_pretrained_is_registered_and_says_how_to_make_it_when_none_is_shipped(shipped):
    register_followers()
    assert "pretrained" in follower_descriptions()
    assert "none installed yet" in follower_descriptions()["pretrained"]
    with pytest.raises(FileNotFoundError, match=r"pretrained\.json: no shipped follower 'pretrained' is installed.*"
                                                r"sfgym train pretrained"):
        make_follower("pretrained")


def test_the_shipped_followers_are_package_data_and_the_command_an_entry_point():
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    package_data = next(line for line in pyproject.splitlines() if line.startswith("agents = ["))
    assert all(f'"pretrained/*{suffix}"' in package_data for suffix in (".json", ".zip", ".pt"))
    assert 'pretrained = "agents.pretrained.train"' in pyproject  # sfgym train pretrained
    assert pretrained.shipped_dir() == Path(pretrained.__file__).resolve().parent or os.environ.get(
        pretrained.SHIPPED_DIR_ENV)


def test_the_shipped_pretrained_follower_follows_the_msmd_sample(monkeypatch, msmd_sample):
    monkeypatch.delenv(pretrained.SHIPPED_DIR_ENV, raising=False)
    register_followers()
    assert "pretrained" in follower_descriptions()
    if not pretrained.card_path("pretrained").is_file():
        pytest.skip(f"no follower is shipped yet ({pretrained.card_path('pretrained')} is missing): make one with "
                    "'sfgym train pretrained' (docs/model-card.md)")
    card = pretrained.read_card(pretrained.card_path("pretrained"))
    assert card["data"]["name"] and card["data"]["splits"] and card["commands"]
    assert (pretrained.shipped_dir() / card["model_file"]).stat().st_size < 20 * 2**20  # a few MB
    evaluation = run_evaluation(["pretrained"], [msmd_sample], workers=1, progress=False)
    (metrics,) = evaluation.metrics
    assert metrics.piece == MSMD_SAMPLE_PIECE and metrics.agent == "pretrained"


def test_the_shipped_pretrained_follower_follows_a_recording_of_the_msmd_sample_live(tmp_path, monkeypatch, msmd_sample):
    """``sfgym follow take.wav --score SAMPLE --agent pretrained``, as a user would, on a fresh install."""
    import pandas as pd
    import soundfile

    from sfgym.cli import main as sfgym_main
    from sfgym.data.synth import synthesize_midi

    monkeypatch.delenv(pretrained.SHIPPED_DIR_ENV, raising=False)
    if not pretrained.card_path("pretrained").is_file():
        pytest.skip("no follower is shipped yet")
    take, positions_csv = tmp_path / "take.wav", tmp_path / "positions.csv"
    performance = MSMD_SAMPLE_SPLIT / "performance" / f"{MSMD_SAMPLE_PIECE}.mid"
    soundfile.write(str(take), synthesize_midi(performance, sample_rate=22050), 22050)
    score = MSMD_SAMPLE_SPLIT / "score" / f"{MSMD_SAMPLE_PIECE}.npz"
    assert sfgym_main(["follow", str(take), "--score", str(score), "--agent", "pretrained", "--speed", "0",
                       "--positions", str(positions_csv)]) == 0
    positions = pd.read_csv(positions_csv)
    played = positions[(positions["frame"] >= msmd_sample.first_onset_frame)
                       & (positions["frame"] <= msmd_sample.last_onset_frame)]
    error = np.abs(played["x"].to_numpy() - msmd_sample.true_x[played["frame"].to_numpy()])
    assert len(played) > 0.9 * (msmd_sample.last_onset_frame - msmd_sample.first_onset_frame)
    # measured: median 16 px, 100 % within 170 px (one of its trunks alone: 5 px, 98.7 %); the metronome at
    # the same speed: 132 px, 69 %
    assert np.median(error) < 20 and np.mean(error < 170) > 0.95  # it follows the piece, to its end


# ---------------------------------------------------------------------------- all stages
MATCHING_TRUNK = {"trunk.width": 0.25, "trunk.features": 8, "trunk.match_frames": 4, "trunk.match_context": 2}
TINY_TRUNK_RUN = {**MATCHING_TRUNK, "training.max_steps": 4, "training.eval_every_steps": 2, "training.device": "cpu",
                  "training.max_minutes": None, "data.segment_frames": 40, "data.samples_per_segment": 16,
                  "data.segments_per_batch": 2, "data.valid_pieces": 1, "data.valid_samples": 32}
TINY_PPO_RUN = {**MATCHING_TRUNK, "total_timesteps": 128, "max_minutes": None, "n_envs": 2,
                "hyperparameters.n_steps": 32, "hyperparameters.batch_size": 32, "hyperparameters.n_epochs": 1,
                "hyperparameters.policy_kwargs.net_arch": "{pi: [8], vf: [8]}", "evaluation.every_steps": 64,
                "evaluation.max_pieces": 1, "checkpoint_every_steps": 0, "progress_bar": False}


def _sets(option: str, values: dict) -> list[str]:
    return [word for key, value in values.items()
            for word in (option, f"{key}={'null' if value is None else value}")]


@pytest.mark.slow
def test_all_stages_train_the_trunk_then_ppo_per_seed_and_ship_the_best_on_valid(tmp_path, shipped, toy_dataset,
                                                                                   capsys):
    out = tmp_path / "runs" / "pretrained"
    arguments = ["--out", str(out), "--jobs", "1", "--follower", "ppo", "--data", str(toy_dataset), "--seeds", "0,1", "--evaluate",
                 "test", "--workers", "1", "--no-progress", *_sets("--trunk-set", TINY_TRUNK_RUN),
                 *_sets("--rl-set", TINY_PPO_RUN)]
    assert main(_parse(arguments)) == 0
    for name in ("trunk/best.pt", "rl-seed0/best_model.zip", "rl-seed1/best_model.zip"):
        assert (out / name).is_file(), name
    card = pretrained.read_card(shipped / "pretrained.json")
    best = {seed: json.loads((out / f"rl-seed{seed}" / "best.json").read_text())["tr"] for seed in (0, 1)}
    chosen = max((tr, -seed) for seed, tr in best.items())
    assert card["source"] == str(out / f"rl-seed{-chosen[1]}" / "best_model.zip")
    assert card["description"] == f"PPO on a frozen matching trunk, trained on {toy_dataset.name}"
    assert card["commands"][0].startswith(f"sfgym train trunk --config trunk_matching --out {out / 'trunk'}")
    assert card["commands"][1].startswith(f"sfgym train rl --config ppo_matching --init-from {out / 'trunk'}")
    assert len(card["commands"]) == 3 and card["command"].startswith("sfgym train pretrained --out")
    assert card["data"]["name"] == toy_dataset.name and list(card["evaluation"]) == ["test"]
    assert make_follower("pretrained").name == "pretrained"

    # run again: the complete stages are re-used, not trained again
    assert main(_parse([*arguments, "--overwrite"])) == 0
    assert capsys.readouterr().out.count("complete, re-used") == 3


def test_jobs_run_the_seeds_in_processes_of_their_own_and_a_failed_one_is_named(tmp_path, monkeypatch):
    from agents.pretrained import train as pretrained_train

    monkeypatch.setitem(pretrained_train.STAGE_MODULES, "rl", "stage_stub")  # tests/stage_stub.py: no training
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    check_stage_runner(lambda stages: pretrained_train._run_stages_in_parallel("rl", stages, jobs=2), tmp_path)


def check_stage_runner(run_stages, tmp_path: Path) -> None:
    """``run_stages(stages)`` (a runner of ``rl`` stages, ``tests/stage_stub.py`` standing in for the trainer)
    runs each, re-uses a complete run, names a failed one and stops at an interrupted one."""
    from agents.pretrained import train as pretrained_train

    runs = [tmp_path / f"rl-seed{seed}" for seed in range(3)]
    stages = [(["--seed", str(seed), "--out", str(run)], run) for seed, run in enumerate(runs)]
    commands = run_stages(stages)
    assert commands == [f"sfgym train rl --seed {seed} --out {run}" for seed, run in enumerate(runs)]
    assert [json.loads((run / "arguments.json").read_text())[1] for run in runs] == ["0", "1", "2"]
    (runs[1] / "arguments.json").unlink()
    run_stages(stages)  # complete runs are re-used
    assert not (runs[1] / "arguments.json").exists()
    with pytest.raises(ValueError, match=r"failing: 'sfgym train rl' stopped with exit code 3"):
        run_stages([(["--fail"], tmp_path / "failing")] * 2)
    # a stage stopped by Ctrl-C (saved, marked interrupted) stops the command, which a second run resumes
    interrupted = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        run_stages([(["--interrupt", "--out", str(interrupted)], interrupted)] * 2)
    assert pretrained_train._stage_arguments(["--out", str(interrupted)], interrupted)[-1] == "--resume"


@pytest.mark.parametrize("trainer", ["trunk", "rl"])
def test_every_stage_trainer_runs_as_the_process_jobs_start(trainer):
    """``--jobs N`` starts ``python -m STAGE_MODULES[trainer]``: a module without a script entry exits 0 doing
    nothing (which once made every trunk stage of the tracker 'not started')."""
    import subprocess
    import sys

    from agents.pretrained import train as pretrained_train

    completed = subprocess.run([sys.executable, "-m", pretrained_train.STAGE_MODULES[trainer], "--help"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and f"sfgym train {trainer}" in completed.stdout and "--out" in completed.stdout


def test_all_stages_of_the_tracker_train_a_trunk_per_seed_and_ship_the_one_that_tracks_best_on_valid(
        tmp_path, shipped, toy_dataset, capsys, monkeypatch):
    out = tmp_path / "runs" / "pretrained"
    arguments = ["--out", str(out), "--jobs", "1", "--data", str(toy_dataset), "--seeds", "0,1", "--evaluate", "test",
                 "--workers", "1", "--no-progress", *_sets("--trunk-set", TINY_TRUNK_RUN)]
    assert main(_parse(arguments)) == 0
    valid = {name: json.loads((out / name / "valid.json").read_text())["figures"]
             for name in ("trunk-seed0", "trunk-seed1", "ensemble")}
    assert all(set(figures) >= {"tr", "tue", "pieces"} and figures["pieces"] == 1 for figures in valid.values())
    # the two trunks averaged are a candidate too (RUN/ensemble), and win a tie; among single trunks the lowest seed
    ranked = {name: (figures["tr"], figures["tue"], float("inf") if name == "ensemble" else -int(name[-1]))
              for name, figures in valid.items()}
    chosen = max(ranked, key=ranked.get)
    card = pretrained.read_card(shipped / "pretrained.json")
    assert card["kind"] == "tracker" and card["model_file"] == "pretrained.pt"
    if chosen == "ensemble":
        assert card["seed"] is None and card["source"] == [str(out / f"trunk-seed{seed}" / "best.pt") for seed in (0, 1)]
    else:
        assert card["seed"] == int(chosen[-1]) and card["source"] == str(out / chosen / "best.pt")
    assert card["selection_on_valid"]["tr"] == valid[chosen]["tr"]
    assert set(card["selection_on_valid"]["chosen_from"]) == {str(out / name) for name in valid}
    assert [command.split(" --out ")[0] for command in card["commands"]] == ["sfgym train trunk --config trunk_matching"] * 2
    assert "--set=training.seed=1" in card["commands"][1]
    # the shipped follower is the tracker on that trunk; it brings its own stand-in speed for scores without
    # notated timing (its training data's median), so the commands need not find one; a given speed wins
    from agents.tracking import MatchingTracker
    from sfgym.score.timing import median_speed_px_per_s
    from sfgym.followers import needs_notated_tempo

    follower = make_follower("pretrained")
    assert isinstance(follower, MatchingTracker) and follower.name == "pretrained"
    assert card["stand_in_px_per_second"] == pytest.approx(median_speed_px_per_s(toy_dataset / "train"))
    assert follower.px_per_second == card["stand_in_px_per_second"] and not needs_notated_tempo("pretrained")
    assert make_follower("pretrained", px_per_second=123.0).px_per_second == 123.0
    del card["stand_in_px_per_second"]  # a card without one: the commands must supply a speed
    (shipped / "pretrained.json").write_text(json.dumps(card))
    assert needs_notated_tempo("pretrained") and make_follower("pretrained").px_per_second is None
    (shipped / "pretrained.json").unlink()  # the second run below ships again

    # run again: trunks and their valid figures are re-used
    assert main(_parse([*arguments, "--overwrite"])) == 0
    output = capsys.readouterr().out
    assert output.count("complete, re-used") == 2

    # when the averaged trunks tie the single ones on valid, they are what ships: one file, both trunks, both commands
    from agents.pretrained import train as pretrained_train

    real_valid_figures = pretrained_train._valid_figures
    better = {}  # run name -> TR it is given; the others all tie at 0.5

    def tied_figures(model, data, workers, progress, settings=None, cache_name="valid.json"):
        chosen_with.append(settings)
        figures = dict(real_valid_figures(model, data, workers, progress, settings, cache_name))
        return {**figures, "tr": better.get(model.parent.name, 0.5), "tue": 0.5}

    chosen_with = []
    monkeypatch.setattr(pretrained_train, "_valid_figures", tied_figures)
    # ... with the tracker's settings given: chosen with them, shipped with them on the card, made with them
    assert main(_parse([*arguments, "--overwrite", "--tracker-set", "temperature=40"])) == 0
    card = pretrained.read_card(shipped / "pretrained.json")
    assert card["source"] == [str(out / f"trunk-seed{seed}" / "best.pt") for seed in (0, 1)] and card["seed"] is None
    assert card["description"].startswith("2 matching trunks averaged") and len(card["commands"]) == 2
    assert chosen_with == [{"temperature": 40}] * 3 and card["follower_settings"] == {"temperature": 40}
    follower = make_follower("pretrained")
    assert isinstance(follower, MatchingTracker) and len(follower.trunks) == 2
    assert follower.settings.temperature == 40 and make_follower("pretrained", temperature=5).settings.temperature == 5
    # a single trunk ships only when it tracks more than the average on valid
    better["trunk-seed1"] = 0.6
    assert main(_parse([*arguments, "--overwrite"])) == 0
    card = pretrained.read_card(shipped / "pretrained.json")
    assert card["seed"] == 1 and card["source"] == str(out / "trunk-seed1" / "best.pt")
    with pytest.raises(ValueError, match=r"--tracker-set: unknown tracker setting\(s\) \['warmth'\]"):
        main(_parse([*arguments, "--overwrite", "--tracker-set", "warmth=2"]))


def test_trunks_trained_side_by_side_share_the_cores(tmp_path, monkeypatch):
    from agents.pretrained import train as pretrained_train

    started = []

    def record(trainer, stages, jobs):
        started.append((trainer, [arguments for arguments, _ in stages], jobs))
        raise KeyboardInterrupt  # stop before the (not trained) trunks are evaluated

    monkeypatch.setattr(pretrained_train, "_run_stages_in_parallel", record)
    monkeypatch.setattr(pretrained_train.os, "cpu_count", lambda: 4)
    with pytest.raises(KeyboardInterrupt):
        pretrained_train.train_tracker_stages(tmp_path, [0, 1, 2], data=str(tmp_path), jobs=2,
                                              trunk_set=["training.max_minutes=1"])
    trainer, arguments, jobs = started[0]
    assert trainer == "trunk" and jobs == 2 and len(arguments) == 3
    for seed, stage in enumerate(arguments):  # 2 threads each, not torch's every-core default in each process
        sets = [item for item in stage if item.startswith("--set=")]
        assert sets == ["--set=training.num_threads=2", "--set=training.max_minutes=1", f"--set=training.seed={seed}"]
    # a --trunk-set of the threads comes later, so it wins
    started.clear()
    with pytest.raises(KeyboardInterrupt):
        pretrained_train.train_tracker_stages(tmp_path, [0, 1], data=str(tmp_path), jobs=2,
                                              trunk_set=["training.num_threads=1"])
    assert [item for item in started[0][1][0] if "num_threads" in item][-1] == "--set=training.num_threads=1"


def test_the_tracker_s_training_data_are_the_default_corpus_with_human_timing_and_augmentation(
        tmp_path, monkeypatch):
    from agents.pretrained import train as pretrained_train
    from sfgym.data import dataset

    built = []
    monkeypatch.setattr(dataset, "build_dataset", lambda root, config, **kwargs: built.append((root, config)) or root)
    roots = pretrained_train.build_training_data(tmp_path, workers=1, progress=False)
    assert roots == [tmp_path / "data" / name for name in ("default-human", "wide", "piano-wide")]
    assert [(config.corpus, config.timing, config.augment, config.tempo_ratios) for _, config in built] == [
        ("default", "human", 2, (0.9, 1.0, 1.1)), ("default", "human", 1, (0.6, 0.8, 1.0, 1.25, 1.5)),
        ("piano-v2", "human", 1, (0.7, 1.0, 1.4))]
    # the first is where the trunks are validated; all three train them
    started = []

    def record(trainer, stages, jobs):
        started.append([arguments for arguments, _ in stages])
        raise KeyboardInterrupt  # stop before anything trains

    monkeypatch.setattr(pretrained_train, "_run_stages_in_parallel", record)
    with pytest.raises(KeyboardInterrupt):
        pretrained_train.train_tracker_stages(tmp_path, [0, 1], jobs=2, progress=False)
    for stage in started[0]:
        assert stage[stage.index("--data") + 1] == str(roots[0])
        assert f"--set=data.extra_train_dirs={json.dumps([str(root) for root in roots[1:]])}" in stage


def test_the_tracker_is_chosen_on_the_mean_valid_tr_over_all_its_training_datasets(tmp_path, toy_dataset, monkeypatch):
    """With several training datasets each counts once in the choice: a trunk best on the first alone loses to one
    that tracks every dataset's valid split well; the figures of each are kept beside the trunk."""
    import shutil

    from agents.pretrained import train as pretrained_train

    other = tmp_path / "far"
    shutil.copytree(toy_dataset, other)
    monkeypatch.setattr(pretrained_train, "build_training_data", lambda out, workers, progress: [toy_dataset, other])
    scores = {("trunk-seed0", toy_dataset.name): 1.0, ("trunk-seed0", "far"): 0.0,  # best on the first alone
              ("trunk-seed1", toy_dataset.name): 0.6, ("trunk-seed1", "far"): 0.6,
              ("ensemble", toy_dataset.name): 0.5, ("ensemble", "far"): 0.5}
    evaluated = []

    def figures(model, data, splits, label, workers, progress, settings):
        evaluated.append((model.parent.name, Path(data).name))
        return {"valid": {"tr": scores[(model.parent.name, Path(data).name)], "tue": 0.0, "pieces": 1}}

    monkeypatch.setattr(pretrained_train, "evaluate_model", figures)
    trained = pretrained_train.train_tracker_stages(tmp_path / "run", [0, 1], progress=False,
                                                    trunk_set=[item for item in _sets("--trunk-set", TINY_TRUNK_RUN)
                                                               if item != "--trunk-set"])
    assert trained.model == tmp_path / "run" / "trunk-seed1" / "best.pt"
    assert trained.selection["valid_tr_by_data"] == {toy_dataset.name: 0.6, "far": 0.6}
    assert set(evaluated) == set(scores)
    assert (tmp_path / "run" / "trunk-seed0" / "valid-far.json").is_file()
    config = yaml.safe_load((tmp_path / "run" / "trunk-seed0" / "config.yaml").read_text())
    assert config["data"]["dir"] == str(toy_dataset) and config["data"]["extra_train_dirs"] == [str(other)]


def test_the_shipped_settings_are_the_defaults():
    """``sfgym train pretrained`` with no flags makes what ships: the tracker's defaults are the settings on the
    shipped card, and the trainer's defaults are the options of the command that made it."""
    from dataclasses import asdict

    from agents.pretrained.train import DEFAULT_JOBS, DEFAULT_OUT, DEFAULT_TRUNK_SET
    from agents.tracking import FilterSettings

    card = pretrained.read_card(Path(pretrained.__file__).parent / "pretrained.json")
    defaults = asdict(FilterSettings())
    assert {key: defaults[key] for key in card["follower_settings"]} == card["follower_settings"]
    args = _parse([])
    assert (args.out, args.source, args.jobs, args.follower, args.seeds) == (DEFAULT_OUT, None, DEFAULT_JOBS, "tracker", "0,1,2")
    assert args.trunk_set == list(DEFAULT_TRUNK_SET) == ["training.max_minutes=20"] and args.tracker_set == []


def test_the_shipped_follower_reads_its_checkpoint_once(monkeypatch):
    """The card says what the model is (``kind``), so only its loader reads the 6 MB checkpoint."""
    from agents.tracking import MatchingTracker

    monkeypatch.delenv(pretrained.SHIPPED_DIR_ENV, raising=False)
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: loads.append(args[0]) or real_load(*args, **kwargs))
    follower = make_follower("pretrained")
    assert isinstance(follower, MatchingTracker) and len(loads) == 1


def test_the_shipped_card_follows_the_card_schema():
    """The shipped card holds every required key of :data:`agents.pretrained.card.CARD_SCHEMA`, no other, each of
    its type; its model file's hash checks; and a card with a stray or missing key is told."""
    from agents.pretrained.card import CARD_PARTS, CARD_SCHEMA, card_problems

    directory = Path(pretrained.__file__).parent
    card = pretrained.read_card(directory / "pretrained.json")
    assert card_problems(card) == [] and card["command"] == "sfgym train pretrained"
    assert {field.part for field in CARD_SCHEMA.values()} == set(CARD_PARTS)
    model, checked = pretrained.shipped_model_path("pretrained", directory)
    assert model.name == card["model_file"] and checked == card
    broken = {**{key: value for key, value in card.items() if key != "evaluation"}, "history": {}, "seed": "0"}
    assert card_problems(broken) == ["missing 'evaluation'", "unknown key 'history'", "'seed' is a str, not int or NoneType"]
