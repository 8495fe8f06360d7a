"""The sliding-window evaluation of the trunk's branches gives what the branches give, window by window."""

import pytest
import torch
from torch import nn

from agents.networks import MultimodalTrunk, TrunkConfig
from agents.sliding import StreamingBranch, branch_at_every_window


@pytest.fixture(scope="module")
def trunk() -> MultimodalTrunk:
    torch.manual_seed(0)
    return MultimodalTrunk(TrunkConfig(width=0.25, features=32)).eval()


def windows_one_by_one(convs: nn.Sequential, inputs: torch.Tensor, window: int, starts) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([convs(inputs[None, ..., s : s + window]) for s in starts])


@pytest.mark.parametrize("branch, shape, length", [("spectrogram_convs", (1, 78, 40), 97),
                                                    ("score_convs", (1, 80, 256), 400)])
def test_every_window_at_once_matches_each_window(trunk, branch, shape, length):
    convs = getattr(trunk, branch)
    inputs = torch.rand(shape[0], shape[1], length)
    window = shape[-1]
    # a chunk size that does not divide the window count: chunk boundaries must not matter
    every = branch_at_every_window(convs, inputs, window, chunk=13)
    assert every.shape[0] == length - window + 1
    starts = range(0, length - window + 1, 7)
    torch.testing.assert_close(every[list(starts)], windows_one_by_one(convs, inputs, window, starts),
                               rtol=1e-5, atol=1e-5)
    with_head = branch_at_every_window(convs, inputs, window, head=lambda flat: flat.sum(1, keepdim=True))
    torch.testing.assert_close(with_head, every.sum(1, keepdim=True), rtol=1e-5, atol=1e-4)


def test_streaming_branch_matches_each_window(trunk):
    convs = trunk.spectrogram_convs
    stream = torch.rand(1, 78, 90)
    streaming = StreamingBranch(convs, (1, 78, 40))
    outputs = [streaming.start(stream[..., :40])]
    outputs += [streaming.push(stream[..., end - 1]) for end in range(41, 91)]
    torch.testing.assert_close(torch.cat(outputs), windows_one_by_one(convs, stream, 40, range(51)),
                               rtol=1e-5, atol=1e-5)
    # a restart forgets the old stream
    torch.testing.assert_close(streaming.start(stream[..., 10:50]), outputs[10], rtol=1e-5, atol=1e-5)


def test_sliding_evaluation_leaves_the_branch_mode_alone(trunk):
    trunk.train()
    try:
        StreamingBranch(trunk.spectrogram_convs, (1, 78, 40))
        assert all(module.training for module in trunk.spectrogram_convs)
    finally:
        trunk.eval()


def test_unsupported_layers_are_refused():
    with pytest.raises(ValueError, match="unpadded"):
        StreamingBranch(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten()), (1, 10, 10))
    with pytest.raises(ValueError, match="BatchNorm2d"):
        branch_at_every_window(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)), torch.rand(1, 10, 20), 10)
    with pytest.raises(RuntimeError, match="before push"):
        StreamingBranch(nn.Sequential(nn.Conv2d(1, 4, 3)), (1, 10, 10)).push(torch.rand(1, 10))


def test_feature_tables_are_what_the_trunk_gives_on_the_environments_windows(trunk, toy_pieces):
    from agents.networks import IncrementalTrunk, score_features_every_start, spectrogram_features_every_frame
    from sfgym.envs import MSMDFollowEnv
    from sfgym.envs.msmd_follow import prepare_score_strip, score_observation_values

    piece = toy_pieces[1]
    env = MSMDFollowEnv([piece])
    strip = torch.from_numpy(score_observation_values(prepare_score_strip(piece.sheet)))
    spectrogram_table = spectrogram_features_every_frame(trunk, torch.from_numpy(piece.spectrogram))
    score_table = score_features_every_start(trunk, strip)
    assert spectrogram_table.shape[0] == piece.n_frames + 1
    incremental = IncrementalTrunk(trunk)
    incremental.reset(strip)
    observation, info = env.reset(seed=0)
    for action in [2] * 6 + [1] * 20:
        spectrogram = torch.from_numpy(observation["spectrogram"])[None]
        score = torch.from_numpy(observation["score"])[None]
        with torch.no_grad():
            expected_spectrogram = trunk.spectrogram_dense(trunk.spectrogram_convs(spectrogram))[0]
            expected_score = trunk.score_dense(trunk.score_convs(score))[0]
            expected = trunk(spectrogram, score)
        torch.testing.assert_close(spectrogram_table[info["frame"]], expected_spectrogram, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(score_table[info["score_window_start"]], expected_score, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(incremental(spectrogram, score, info["score_window_start"]), expected,
                                   rtol=1e-5, atol=1e-5)
        observation, _, _, _, info = env.step(action)
    assert incremental.plain_frames == 0
    # a window that is not the strip's slice at that start is computed plainly, and counted
    torch.testing.assert_close(incremental(spectrogram, score.flip(-1), info["score_window_start"]),
                               trunk(spectrogram, score.flip(-1)), rtol=1e-5, atol=1e-5)
    assert incremental.plain_frames == 1


def test_incremental_matching_trunk_is_the_trunk_and_falls_back_on_a_foreign_window():
    from agents.networks import MatchingTrunk
    from agents.networks import IncrementalMatchingTrunk

    torch.manual_seed(0)
    matching = MatchingTrunk(TrunkConfig(kind="matching", features=8, width=0.25, match_frames=4)).eval()
    incremental = matching.incremental()
    assert isinstance(incremental, IncrementalMatchingTrunk)
    strip = torch.rand(80, 700)
    incremental.reset(strip)
    spectrogram = torch.rand(1, 1, 78, 40)
    for start in (0, 123, 444):
        score = strip[:, start : start + 256][None, None].clone()
        with torch.no_grad():
            expected = matching(spectrogram, score)
        torch.testing.assert_close(incremental(spectrogram, score, start), expected, rtol=1e-4, atol=1e-6)
    assert incremental.plain_frames == 0
    foreign = torch.rand(1, 1, 80, 256)
    with torch.no_grad():
        torch.testing.assert_close(incremental(spectrogram, foreign, 10), matching(spectrogram, foreign))
    assert incremental.plain_frames == 1
