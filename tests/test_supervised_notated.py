"""The seed's regressors in notated time (``model.space: notated``): the truth in notated frames, the follower
driving the environment as the batched rollout does, training end to end from a pre-trained matching trunk
(frozen), and the config checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from agents.networks import TrunkConfig
from agents.supervised.config import ModelConfig, SupervisedConfig
from agents.supervised.data import full_episode, prepare_song
from agents.supervised.model import PositionRegressor
from agents.supervised.notated import NotatedRegressorFollower, NotatedTables, heard_frames, notated_rollout
from sfgym.score.timing import ScoreMap, notated_notes, notated_truth

from test_supervised_matching import MATCHING, follow, moving, tiny_matching_trunk_run, train_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def matching_trunk_run(tmp_path_factory, toy_dataset):
    return tiny_matching_trunk_run(tmp_path_factory.mktemp("trunk") / "run", toy_dataset)

NOTATED = ModelConfig(cell="gru", hidden_size=16, num_layers=1, space="notated", half_window_frames=12)


def test_the_truth_in_notated_frames_pairs_the_performed_onsets_with_the_notated_ones(toy_pieces):
    piece = toy_pieces[1]
    score_map = ScoreMap.of(piece, notated_notes(piece))
    truth = notated_truth(piece, score_map)
    assert truth.shape == (piece.n_frames + 1,)
    # the toy piece is played as notated: at every onset the truth is the onset's notated frame
    np.testing.assert_allclose(truth[piece.onset_frames], score_map.onset_times * piece.fps)
    assert np.all(np.diff(truth) >= 0)
    # played 1.5 times slower, its onsets still sit on their notated frames
    slow = dataclasses.replace(piece, notes=piece.notes * [1.5, 1, 1.5],
                               spectrogram=np.repeat(piece.spectrogram, 2, axis=1))
    slow_truth = notated_truth(slow, score_map)
    np.testing.assert_allclose(slow_truth[slow.onset_frames], score_map.onset_times * piece.fps)
    with pytest.raises(ValueError, match=r"synthetic:toy_a: only \d of its 20 onsets have a notehead"):
        notated_truth(toy_pieces[0], score_map)  # another score's noteheads


def test_heard_frames_are_the_end_of_the_environment_s_spectrogram_window(toy_pieces):
    from sfgym.envs.geometry import DEFAULT_GEOMETRY

    piece = toy_pieces[0]
    for frame in (3, piece.first_onset_frame, piece.n_frames):
        window = DEFAULT_GEOMETRY.spectrogram_window(piece.spectrogram, frame)[0]
        np.testing.assert_array_equal(heard_frames(piece.spectrogram, frame, 4), window[:, -4:])


@pytest.mark.parametrize("predict_centre", [False, True])
def test_a_notated_regressor_follows_the_environment_as_the_batched_rollout(toy_pieces, predict_centre):
    torch.manual_seed(0)
    model = moving(PositionRegressor(dataclasses.replace(NOTATED, predict_centre=predict_centre), TrunkConfig(**MATCHING)))
    model.freeze_trunk()
    assert model.core.input_size == 2 * 12 + 3
    tables = NotatedTables(model.trunk)
    songs = [prepare_song(piece) for piece in toy_pieces]
    with torch.no_grad():
        batched = notated_rollout(model, [full_episode(song) for song in songs], tables, tbptt_steps=1000)
    for row, piece in enumerate(toy_pieces):
        xs = follow(NotatedRegressorFollower(model), piece)
        assert np.ptp(xs) > 10
        np.testing.assert_allclose(xs, batched.positions[row, :len(xs)], atol=1e-2)
    # the loss is in half windows of notated frames: a follower that stood still would be far off by the end
    assert batched.squared_error > 0 and batched.n_steps == sum(full_episode(song).n_steps for song in songs)


def test_on_the_sheet_the_loss_is_the_error_of_the_x_the_follower_is_scored_at(toy_pieces):
    from agents.supervised.notated import sheet_x

    position_x = torch.tensor([[0.0, 10.0, 30.0, 30.0], [5.0, 6.0, 7.0, 8.0]])
    position = torch.tensor([1.25, 9.0], requires_grad=True)
    x = sheet_x(position_x, position)
    torch.testing.assert_close(x, torch.tensor([15.0, 8.0]))  # linear between frames, held past the end
    x.sum().backward()
    torch.testing.assert_close(position.grad, torch.tensor([20.0, 0.0]))  # x moves 20 px per frame there

    torch.manual_seed(0)
    model = moving(PositionRegressor(NOTATED, TrunkConfig(**MATCHING)))
    model.freeze_trunk()
    episodes = [full_episode(prepare_song(piece)) for piece in toy_pieces]
    with torch.no_grad():
        result = notated_rollout(model, episodes, NotatedTables(model.trunk), loss_on="sheet", tbptt_steps=1000)
    errors = [(result.positions[row, :episode.n_steps] - episode.song.piece.true_x[
        episode.start_frame + 1:episode.start_frame + episode.n_steps + 1]) / NOTATED.offset_scale_px
        for row, episode in enumerate(episodes)]
    assert result.squared_error == pytest.approx(np.mean(np.concatenate(errors) ** 2), rel=1e-3)
    with pytest.raises(ValueError, match="loss_on must be 'notated' or 'sheet'"):
        notated_rollout(model, episodes, NotatedTables(model.trunk), loss_on="pixels")


def test_train_a_notated_regressor_from_a_pretrained_matching_trunk_then_follow(matching_trunk_run, toy_dataset,
                                                                                toy_pieces, tmp_path, capsys):
    from agents.registry import make_follower
    from agents.runs import read_trunk
    from sfgym.cli import main
    from sfgym.followers import needs_notated_tempo

    out = tmp_path / "notated"
    arguments = train_command(toy_dataset, out, matching_trunk_run, "--set", "training.freeze_trunk=true",
                              "--set", "model.space=notated", "--set", "model.half_window_frames=12",
                              "--set", "training.lr=0.01")
    assert main(arguments) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("valid TR ")
    assert needs_notated_tempo(str(out / "best.pt"))  # the commands give it a stand-in tempo where none is notated
    follower = make_follower(str(out / "best.pt"))
    assert isinstance(follower, NotatedRegressorFollower) and follower.name == "lstm_notated:notated"
    pretrained, _ = read_trunk(matching_trunk_run)
    for name, value in follower.model.trunk.state_dict().items():  # frozen: exactly the pre-trained weights
        torch.testing.assert_close(value, pretrained[name], rtol=0, atol=0)
    torch.manual_seed(0)  # the run's seed: its initial weights
    untrained = PositionRegressor(follower.model.config, follower.model.trunk.config)
    assert not torch.equal(untrained.head.weight, follower.model.head.weight)  # ... while the head learned
    xs = follow(follower, toy_pieces[1])
    assert len(xs) == toy_pieces[1].last_onset_frame - toy_pieces[1].first_onset_frame
    assert np.all((xs >= 0) & (xs <= toy_pieces[1].sheet_width))


@pytest.mark.parametrize("setting, message", [
    ({"trunk": {"kind": "figure3"}}, "trunk.kind is 'figure3'"),
    ({"training": {"freeze_trunk": False}}, "training.freeze_trunk is False"),
    ({"model": {"target": "absolute"}, "data": {"random_start": False}}, "model.target is 'absolute'"),
])
def test_notated_time_needs_a_frozen_matching_trunk_and_the_relative_target(setting, message):
    raw = {"model": {"space": "notated"}, "trunk": {"kind": "matching"}, "training": {"freeze_trunk": True}}
    for section, values in setting.items():
        raw[section] = {**raw.get(section, {}), **values}
    with pytest.raises(ValueError, match=rf"my\.yaml: 'model\.space: notated' .*{message}"):
        SupervisedConfig.from_dict(raw, "my.yaml")
    with pytest.raises(ValueError, match=r"model\.space"):
        SupervisedConfig.from_dict({**raw, "model": {"space": "pitch"}}, "my.yaml")


def test_the_shipped_notated_config_loads():
    from agents.config_files import find_config
    from agents.supervised.config import load_config

    config = load_config(find_config("lstm_notated", "supervised"))
    assert config.model.space == "notated" and config.model.cell == "lstm" and config.training.freeze_trunk
    gru = load_config(find_config("lstm_notated", "supervised"), ["model.cell=gru"])
    assert PositionRegressor(gru.model, gru.trunk).core.input_size == 2 * config.model.half_window_frames + 3
