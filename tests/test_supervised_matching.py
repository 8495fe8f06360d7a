"""The seed's regressors on the matching trunk: pre-trained trunk → ``sfgym train supervised --init-from`` →
a follower whose incremental trunk gives the plain model's outputs; frozen stays frozen; other kinds refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.networks import MatchingTrunk, TrunkConfig
from agents.runs import read_trunk
from agents.supervised.config import ModelConfig
from agents.supervised.data import EpisodeBatch, full_episode, prepare_song
from agents.supervised.follower import RegressorFollower, load_follower
from agents.supervised.model import PositionRegressor
from agents.supervised.rollout import FrozenTrunkTables, rollout

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIGS = Path(__file__).resolve().parents[1] / "agents" / "configs" / "supervised"
MATCHING = {"kind": "matching", "width": 0.25, "features": 8, "dropout": 0.0, "match_frames": 4, "match_context": 2}
PRETRAINING = {"trunk": MATCHING,
               "data": {"segment_frames": 40, "samples_per_segment": 16, "segments_per_batch": 2, "valid_pieces": 1,
                        "valid_samples": 32},
               "training": {"max_steps": 6, "max_minutes": None, "lr": 3e-3, "eval_every_steps": 6, "device": "cpu"}}


def tiny_matching_trunk_run(run: Path, dataset: Path) -> Path:
    """A tiny matching-trunk pre-training run (``sfgym train trunk``) on ``dataset``, into ``run``."""
    from agents.pretraining.train import TrunkPretrainingConfig, train

    raw = {**PRETRAINING, "data": {**PRETRAINING["data"], "dir": str(dataset)}}
    train(TrunkPretrainingConfig.from_dict(raw, "tiny matching"), run, progress=False)
    return run


@pytest.fixture(scope="module")
def matching_trunk_run(tmp_path_factory, toy_dataset):
    """A tiny matching-trunk pre-training run: what ``--init-from`` takes."""
    return tiny_matching_trunk_run(tmp_path_factory.mktemp("trunk") / "run", toy_dataset)


def train_command(toy_dataset, out: Path, init_from: Path, *extra: str) -> list[str]:
    """``sfgym train supervised`` on the tiny config with a matching trunk."""
    settings = [f"trunk.{key}={value}" for key, value in MATCHING.items()]
    return ["train", "supervised", "--config", str(CONFIGS / "tiny.yaml"), "--data", str(toy_dataset),
            "--init-from", str(init_from), "--out", str(out), "--no-progress", "--set", "training.epochs=1",
            "--set", "data.max_steps_per_song=12", *[part for s in settings for part in ("--set", s)], *extra]


def follow(follower: RegressorFollower, piece) -> np.ndarray:
    """The follower's x after every step of MSMDFollow-v0 over ``piece`` (never declared lost)."""
    from sfgym.envs import MSMDFollowEnv
    from sfgym.evaluation import run_episode

    env = MSMDFollowEnv(data=[piece], action_type="position", reward_threshold=1e9)
    return run_episode(follower, piece, env=env).follower_x[1:]


def moving(model: PositionRegressor) -> PositionRegressor:
    """The model with a head that moves a lot (a trained tiny head barely moves: the checks would be trivial)."""
    torch.manual_seed(7)
    with torch.no_grad():
        model.head.weight.normal_(0.0, 0.5)
        model.head.bias.fill_(0.05)
    return model.eval()


@pytest.mark.parametrize("target", ["relative", "absolute"])
def test_a_matching_regressor_follows_incrementally_as_the_plain_and_the_batched_model(toy_pieces, target):
    torch.manual_seed(0)
    model = moving(PositionRegressor(ModelConfig(cell="gru", hidden_size=16, num_layers=1, target=target),
                                     TrunkConfig(**MATCHING)))
    assert isinstance(model.trunk, MatchingTrunk) and model.core.input_size == model.trunk.features_dim
    piece = toy_pieces[0]
    incremental = RegressorFollower(model, incremental=True)
    xs = follow(incremental, piece)
    assert incremental.plain_frames == 0  # the matching trunk's incremental form served every frame
    assert np.ptp(xs) > 10
    np.testing.assert_allclose(xs, follow(RegressorFollower(model, incremental=False), piece), rtol=1e-5, atol=1e-4)
    with torch.no_grad():
        batched = rollout(model, EpisodeBatch.of([full_episode(prepare_song(piece))])).positions[0]
    np.testing.assert_allclose(xs, np.clip(batched, 0, piece.sheet_width), atol=1e-2)


@pytest.mark.parametrize("trunk", [TrunkConfig(**MATCHING), TrunkConfig(width=0.25, features=16, dropout=0.0)],
                         ids=["matching", "figure3"])
def test_a_frozen_trunk_looked_up_from_tables_gives_the_trunks_own_rollout(toy_pieces, trunk):
    torch.manual_seed(1)
    model = moving(PositionRegressor(ModelConfig(cell="lstm", hidden_size=16, num_layers=1), trunk))
    model.freeze_trunk()
    batch = EpisodeBatch.of([full_episode(prepare_song(piece)) for piece in toy_pieces])
    with torch.no_grad():
        computed = rollout(model, batch, max_centre_error_px=170.0)
        looked_up = rollout(model, batch, max_centre_error_px=170.0, tables=FrozenTrunkTables(model.trunk))
    assert np.ptp(computed.positions[0]) > 10
    np.testing.assert_allclose(looked_up.positions, computed.positions, atol=1e-2)
    assert looked_up.loss == pytest.approx(computed.loss, rel=1e-4)


def test_train_from_a_pretrained_matching_trunk_frozen_then_follow(matching_trunk_run, toy_dataset, toy_pieces,
                                                                  tmp_path, capsys):
    from sfgym.cli import main

    pretrained, trunk = read_trunk(matching_trunk_run)
    assert trunk.kind == "matching"
    out = tmp_path / "frozen"
    assert main(train_command(toy_dataset, out, matching_trunk_run, "--set", "training.freeze_trunk=true")) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("valid TR ")

    follower = load_follower(out)  # its best.pt
    model = follower.model
    assert model.trunk.config.kind == "matching"
    for name, value in model.trunk.state_dict().items():  # frozen: exactly the pre-trained weights
        torch.testing.assert_close(value, pretrained[name], rtol=0, atol=0)
    torch.manual_seed(0)  # the run's seed: its initial weights
    untrained = PositionRegressor(model.config, model.trunk.config)
    for name, value in untrained.core.state_dict().items():  # ... while the recurrent core learned
        assert not torch.equal(value, model.core.state_dict()[name]), name

    moving(model)
    xs = follow(follower, toy_pieces[1])
    assert follower.plain_frames == 0 and np.ptp(xs) > 10
    np.testing.assert_allclose(xs, follow(RegressorFollower(model, incremental=False), toy_pieces[1]),
                               rtol=1e-5, atol=1e-4)


def test_a_fine_tuned_trunk_starts_from_the_pretrained_one_and_learns(matching_trunk_run, toy_dataset, tmp_path):
    from agents.supervised.checkpoint import read_checkpoint
    from sfgym.cli import main

    pretrained, _ = read_trunk(matching_trunk_run)
    out = tmp_path / "fine_tuned"
    assert main(train_command(toy_dataset, out, matching_trunk_run, "--set", "training.freeze_trunk=false")) == 0
    payload = read_checkpoint(out / "last.pt")
    assert payload["config"].training.init_from == str(matching_trunk_run)
    trained = {k[len("trunk."):]: v for k, v in payload["model_state"].items() if k.startswith("trunk.")}
    changes = [float((trained[name] - value).abs().max()) for name, value in pretrained.items()]
    assert max(changes) > 0  # the trunk learned ...
    assert max(changes) < 0.1  # ... a little, from the pre-trained weights (a fresh init differs by ~1)


def test_a_checkpoint_of_another_trunk_kind_is_refused_before_the_run_starts(toy_dataset, tmp_path, capsys):
    from agents.pretraining.train import OffsetRegressor
    from agents.runs import save_checkpoint
    from sfgym.cli import main

    figure3 = TrunkConfig(width=0.25, features=16, dropout=0.0)
    checkpoint = save_checkpoint(tmp_path / "figure3.pt", "trunk", OffsetRegressor(figure3), {}, figure3)
    out = tmp_path / "run"
    assert main(train_command(toy_dataset, out, checkpoint)) != 0
    error = capsys.readouterr().err
    assert "figure3.pt" in error and "kind figure3" in error and "kind matching" in error
    assert "--set trunk.kind=figure3" in error and "Traceback" not in error
    assert not out.exists()


def test_a_frozen_trunk_needs_a_pretrained_one(toy_dataset, tmp_path, capsys):
    from sfgym.cli import main

    command = [part for part in train_command(toy_dataset, tmp_path / "run", tmp_path) if part not in
               ("--init-from", str(tmp_path))]
    assert main(command + ["--set", "training.freeze_trunk=true"]) != 0
    assert "--init-from" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_shipped_matching_config_and_its_one_line_variants_load():
    from agents.supervised.config import load_config

    config = load_config(CONFIGS / "lstm_matching.yaml")
    assert config.trunk.kind == "matching" and config.training.freeze_trunk and config.training.num_threads == 1
    assert config.training.max_minutes <= 30
    for cell in ("gru", "srn"):
        assert load_config(CONFIGS / "lstm_matching.yaml", [f"model.cell={cell}"]).model.cell == cell
    absolute = load_config(CONFIGS / "lstm_matching.yaml", ["model.target=absolute"])  # one line: songs start at their beginning
    assert absolute.model.target == "absolute"
    # the trunk section is the shipped pre-training config's, so that --init-from fits
    from agents.pretraining.train import load_config as load_pretraining_config

    pretraining = load_pretraining_config(CONFIGS.parent / "trunk" / "trunk_matching.yaml")
    assert pretraining.trunk.architecture() == config.trunk.architecture()
    assert dataclasses.replace(config.trunk, dropout=pretraining.trunk.dropout) == pretraining.trunk
