"""MSMDFollow-v0: API conformance, dynamics against the ground truth, observations, errors, rendering."""

from __future__ import annotations

import warnings

import cv2
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sfgym  # noqa: F401  (registers MSMDFollow-v0)
from sfgym.data.msmd import list_pieces, read_midi_notes, read_score_npz
from sfgym.data.piece import N_SPEC_BINS, Piece
from sfgym.data.synthetic import synthetic_piece
from sfgym.envs import ACTION_TYPES, MSMD_FOLLOW_ID, MSMDFollowEnv

from conftest import MSMD_SAMPLE_PIECE, MSMD_SAMPLE_SPLIT

THRESHOLD = 170.0


@pytest.fixture(scope="module")
def msmd_sample_piece() -> Piece:
    """The real MSMD sample piece (score npz + performance MIDI) with a zero spectrogram.

    The dynamics and the ground truth do not depend on the audio, so this skips synthesis.
    """
    files = next(f for f in list_pieces(MSMD_SAMPLE_SPLIT) if f.name == MSMD_SAMPLE_PIECE)
    sheet, coords, coord2onset = read_score_npz(files.score)
    notes = read_midi_notes(files.midi)
    n_frames = int(np.floor(notes[:, 0].max() * 20)) + 40
    return Piece(name=files.name, sheet=sheet, coords=coords, coord2onset=coord2onset, notes=notes,
                 spectrogram=np.zeros((N_SPEC_BINS, n_frames), dtype=np.float32), source=str(files.score))


def run_oracle(env: MSMDFollowEnv, piece_name: str) -> tuple[list[float], list[dict], bool, bool]:
    """Follow ``piece_name`` with actions that land exactly on the truth; returns rewards, infos, end flags."""
    _, info = env.reset(seed=0, options={"piece": piece_name})
    truth = env.piece.true_x.astype(np.float64)
    rewards, infos = [], [info]
    while True:
        target = truth[info["frame"] + 1]
        if env.action_type == "continuous":
            action = np.array([target - info["follower_x"] - info["speed"]])  # the needed speed change
        else:
            action = np.array([target / env.piece.sheet_width])
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            return rewards, infos, terminated, truncated


# ---------------------------------------------------------------------------- registration and loading
def test_registered_on_import_and_through_module_prefix(toy_pieces):
    assert MSMD_FOLLOW_ID == "MSMDFollow-v0" and MSMD_FOLLOW_ID in gym.registry
    env = gym.make("sfgym:MSMDFollow-v0", data=toy_pieces)
    assert isinstance(env.unwrapped, MSMDFollowEnv)
    assert [p.name for p in env.unwrapped.pieces] == ["toy_a", "toy_b", "toy_c"]


def test_default_data_is_the_default_datasets_train_split(toy_dataset, monkeypatch):
    import sfgym.data.dataset

    calls = []

    def fake_default_dataset_dir(**kwargs):
        calls.append(kwargs)
        return toy_dataset

    monkeypatch.setattr(sfgym.data.dataset, "default_dataset_dir", fake_default_dataset_dir)
    env = gym.make("MSMDFollow-v0")
    assert len(calls) == 1
    assert sorted(p.name for p in env.unwrapped.pieces) == ["toy_a", "toy_b", "toy_c"]


def test_loads_dataset_root_split_and_split_directory(toy_dataset):
    assert [p.name for p in MSMDFollowEnv(toy_dataset, split="test").pieces] == ["toy_b", "toy_c"]
    assert [p.name for p in MSMDFollowEnv(toy_dataset / "valid").pieces] == ["toy_a"]


# ---------------------------------------------------------------------------- API conformance
@pytest.mark.parametrize("action_type", ACTION_TYPES)
@pytest.mark.parametrize("difference_channels", [False, True])
def test_gymnasium_check_env_passes(toy_pieces, action_type, difference_channels):
    env = gym.make("MSMDFollow-v0", data=toy_pieces, action_type=action_type,
                   difference_channels=difference_channels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)  # also renders in every render mode and closes twice
    messages = [str(w.message) for w in caught]
    if action_type == "continuous":
        # Velocity changes are in px/frame on purpose (see the class docstring): the checker's
        # advice to normalise Box actions to [-1, 1] is the one warning, and the only one.
        assert len(messages) == 1 and "symmetric and normalized" in messages[0]
    else:
        assert messages == []


SB3_IMAGE_ADVICE = ("is an image but its `dtype` is (float32)", "is an image but the upper and lower bounds")


@pytest.mark.parametrize("action_type", ACTION_TYPES)
def test_stable_baselines3_check_env_passes(toy_pieces, action_type):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = MSMDFollowEnv(toy_pieces, action_type=action_type)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env, warn=False)  # every API check, no SB3-specific advice

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(env, warn=True)
    # With its advice on, SB3 only recommends uint8 [0, 255] images for its CnnPolicy (the
    # observations are float32 in [0, 1] by design) and [-1, 1] Box actions.
    for warning in caught:
        message = str(warning.message)
        assert any(advice in message for advice in SB3_IMAGE_ADVICE) or (
            action_type != "discrete" and "symmetric and normalized Box action space" in message
        ), message


def test_vector_environments_with_several_copies(toy_pieces):
    from stable_baselines3.common.env_util import make_vec_env

    envs = gym.make_vec("MSMDFollow-v0", num_envs=3, vectorization_mode="sync", data=toy_pieces)
    observations, infos = envs.reset(seed=7)
    assert observations["score"].shape == (3, 1, 80, 256)
    assert observations["spectrogram"].shape == (3, 1, 78, 40)
    for _ in range(60):  # long enough for sub-environments to lose the target and auto-reset
        observations, rewards, terminated, truncated, infos = envs.step(envs.action_space.sample())
        assert observations["score"].shape == (3, 1, 80, 256) and rewards.shape == (3,)
    assert set(infos) >= {"true_x", "follower_x", "error", "frame", "piece", "onset", "speed", "tracked"}
    envs.close()

    vec_env = make_vec_env("MSMDFollow-v0", n_envs=2, seed=0, env_kwargs={"data": toy_pieces})
    observations = vec_env.reset()
    assert observations["score"].shape == (2, 1, 80, 256)
    for _ in range(60):
        observations, rewards, dones, infos = vec_env.step(np.array([2, 0]))
    assert rewards.shape == (2,) and len(infos) == 2
    vec_env.close()


# ---------------------------------------------------------------------------- dynamics and ground truth
@pytest.mark.parametrize("action_type", ["continuous", "position"])
def test_oracle_follows_every_toy_piece_to_the_end_with_zero_error(toy_pieces, action_type):
    env = MSMDFollowEnv(toy_pieces, action_type=action_type)
    for piece in toy_pieces:
        rewards, infos, terminated, truncated = run_oracle(env, piece.name)
        assert truncated and not terminated
        assert [i["frame"] for i in infos] == list(range(piece.first_onset_frame, piece.last_onset_frame + 1))
        np.testing.assert_allclose([i["follower_x"] for i in infos],
                                   piece.true_x[piece.first_onset_frame : piece.last_onset_frame + 1], atol=1e-6)
        assert max(i["error"] for i in infos) < 1e-6
        assert min(rewards) > 1 - 1e-8
        onset_frames = [i["frame"] for i in infos if i["onset"]]
        assert onset_frames == piece.onset_frames.tolist()


@pytest.mark.parametrize("action_type", ["continuous", "position"])
def test_oracle_follows_the_real_msmd_sample_to_the_end_with_zero_error(msmd_sample_piece, action_type):
    piece = msmd_sample_piece
    env = MSMDFollowEnv([piece], action_type=action_type)
    rewards, infos, terminated, truncated = run_oracle(env, piece.name)
    assert truncated and not terminated
    assert len(rewards) == piece.last_onset_frame - piece.first_onset_frame
    assert max(i["error"] for i in infos) < 1e-6
    # every merged onset is visited, at its notehead
    at_onsets = {i["frame"]: i["follower_x"] for i in infos if i["onset"]}
    assert list(at_onsets) == piece.onset_frames.tolist()
    np.testing.assert_allclose(list(at_onsets.values()), piece.onset_x, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Tempo, Key or Time signature change events")  # the sample's MIDI
def test_real_msmd_sample_loads_from_its_split_and_is_followed_to_the_end(tmp_path):
    import shutil

    split = shutil.copytree(MSMD_SAMPLE_SPLIT, tmp_path / "msmd_sample")  # loading caches the spectrogram
    env = MSMDFollowEnv(split, action_type="continuous")  # synthesizes the performance: the real spectrogram
    piece = env.pieces[0]
    assert piece.name == MSMD_SAMPLE_PIECE and piece.spectrogram.max() > 0
    rewards, infos, terminated, truncated = run_oracle(env, piece.name)
    assert truncated and not terminated and max(i["error"] for i in infos) < 1e-6
    assert len(rewards) == piece.last_onset_frame - piece.first_onset_frame


def test_reset_starts_on_the_first_notehead_at_rest(toy_pieces):
    env = MSMDFollowEnv(toy_pieces)
    _, info = env.reset(seed=0, options={"piece": "toy_b"})
    piece = env.piece
    assert piece is toy_pieces[1] and info["piece"] == "toy_b"
    assert info["frame"] == piece.first_onset_frame
    assert info["follower_x"] == float(piece.onset_x[0]) == info["true_x"]
    assert info["speed"] == 0.0 and info["error"] == 0.0 and info["onset"] and info["tracked"]
    expected_types = {"true_x": float, "follower_x": float, "error": float, "frame": int, "piece": str,
                      "onset": bool, "speed": float, "score_window_start": int, "tracked": bool}
    assert {key: type(value) for key, value in info.items()} == expected_types


def test_continuous_actions_are_clipped_to_the_documented_bounds(toy_pieces):
    env = MSMDFollowEnv(toy_pieces, action_type="continuous", reward_threshold=1e9)
    assert (env.action_space.low[0], env.action_space.high[0]) == (-512.0, 512.0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1e6], dtype=np.float32))
    assert info["speed"] == 512.0 and type(info["speed"]) is float
    _, _, _, _, info = env.step(np.array([-3e6]))
    assert info["speed"] == 0.0


def test_discrete_actions_change_the_speed_and_rewards_follow_the_error(toy_pieces):
    env = MSMDFollowEnv(toy_pieces, actions=(-2.0, 0.0, 3.0))
    _, info = env.reset(seed=0, options={"piece": "toy_a"})
    x, speed = info["follower_x"], 0.0
    for action, change in [(2, 3.0), (2, 3.0), (1, 0.0), (0, -2.0)]:
        _, reward, terminated, truncated, info = env.step(action)
        speed += change
        x += speed
        assert info["speed"] == speed and info["follower_x"] == pytest.approx(x)
        assert info["error"] == pytest.approx(abs(x - info["true_x"]))
        assert reward == pytest.approx((THRESHOLD - info["error"]) / THRESHOLD)
        assert info["true_x"] == pytest.approx(float(env.piece.true_x[info["frame"]]))
    with pytest.raises(ValueError, match="action"):
        env.step(3)


def test_losing_the_target_terminates_with_zero_reward(toy_pieces):
    env = MSMDFollowEnv(toy_pieces)
    env.reset(seed=0, options={"piece": "toy_c"})
    for steps in range(1, 1000):
        _, reward, terminated, truncated, info = env.step(2)  # accelerate until lost
        if terminated or truncated:
            break
        assert info["error"] <= THRESHOLD and info["tracked"]
    assert terminated and not truncated
    assert info["error"] > THRESHOLD and not info["tracked"] and reward == 0.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(1)


def test_max_episode_steps_truncates(toy_pieces):
    env = MSMDFollowEnv(toy_pieces, max_episode_steps=3)
    env.reset(seed=0)
    flags = [env.step(1)[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_follower_is_clipped_to_the_padded_sheet_and_the_window_stays_full(toy_pieces):
    piece = toy_pieces[0]
    env = MSMDFollowEnv([piece], reward_threshold=1e9, actions=(-50.0, 50.0))
    env.reset(seed=0)
    for _ in range(20):
        observation, _, _, _, info = env.step(0)
    assert info["follower_x"] == 256 - 512  # half a window left of column 0: the window shows padding only
    assert observation["score"].shape == (1, 80, 256) and observation["score"].max() == 0.0
    env.reset(seed=0)
    for _ in range(40):
        observation, _, _, _, info = env.step(1)
    assert info["follower_x"] == piece.sheet_width + 512 - 256 - 1
    assert observation["score"].shape == (1, 80, 256)
    assert info["speed"] == 40 * 50.0  # clipping keeps the speed, as the reference does


# ---------------------------------------------------------------------------- observations
def reference_score_window(sheet: np.ndarray, x: int) -> np.ndarray:
    """The reference's way: pad 512 white columns, crop rows 20..180 and 512 columns at x, resize by 0.5."""
    padded = np.pad(sheet, ((0, 0), (512, 512)), constant_values=255)
    start = int(x + 512 - 256)
    crop = 1.0 - padded[20:180, start : start + 512].astype(np.float32) / 255.0
    return cv2.resize(crop, (256, 80), interpolation=cv2.INTER_LINEAR)


def test_observations_are_the_reference_windows(toy_pieces):
    piece = toy_pieces[1]
    env = MSMDFollowEnv([piece], action_type="position", reward_threshold=1e9)  # jump anywhere
    observation, info = env.reset(seed=0)
    assert observation["spectrogram"].dtype == np.float32 and observation["score"].dtype == np.float32
    padded_spectrogram = np.pad(piece.spectrogram, ((0, 0), (40, 40)))  # the reference's padding
    for x in (300, 512, 700):  # even columns: the reference's crop starts on our downscaled grid
        observation, _, _, _, info = env.step(np.array([x / piece.sheet_width], dtype=np.float64))
        assert info["follower_x"] == x
        expected = reference_score_window(piece.sheet, x)
        # stored as uint8 after area averaging: within half a grey level of the float reference
        np.testing.assert_allclose(observation["score"][0], expected, atol=0.5 / 255 + 1e-6)
        frame = info["frame"]
        # the reference's right_most excerpt: the 40 padded frames before the current (padded) one
        np.testing.assert_array_equal(observation["spectrogram"][0], padded_spectrogram[:, frame : frame + 40])
    assert observation["score"].max() > 0.9  # noteheads are visible, as ink = 1


def test_spectrogram_window_is_zero_padded_before_the_first_frame(toy_pieces):
    piece = toy_pieces[0]  # first onset at frame 10
    env = MSMDFollowEnv([piece])
    observation, info = env.reset(seed=0)
    spectrogram = observation["spectrogram"][0]
    frame = info["frame"]
    assert frame < 40
    np.testing.assert_array_equal(spectrogram[:, : 40 - frame], 0.0)
    np.testing.assert_array_equal(spectrogram[:, 40 - frame :], piece.spectrogram[:, :frame])


def test_difference_channels_hold_the_change_since_the_previous_step(toy_pieces):
    env = MSMDFollowEnv(toy_pieces, difference_channels=True)
    first, _ = env.reset(seed=3)
    assert first["score"].shape == (2, 80, 256) and first["spectrogram"].shape == (2, 78, 40)
    assert not first["score"][1].any() and not first["spectrogram"][1].any()
    previous = first
    for _ in range(5):
        current, *_ = env.step(2)
        for key in ("score", "spectrogram"):
            np.testing.assert_allclose(current[key][1], current[key][0] - previous[key][0])
        previous = current
    assert np.abs(current["score"][1]).max() > 0  # the follower moved, so the score window changed


def test_observe_speed_adds_the_followers_speed_and_info_names_the_window_start(toy_pieces):
    from sfgym.envs.msmd_follow import prepare_score_strip

    piece = toy_pieces[1]
    env = MSMDFollowEnv([piece], observe_speed=True)
    assert env.observation_space["speed"].shape == (1,)
    observation, info = env.reset(seed=0)
    assert observation["speed"].dtype == np.float32 and observation["speed"][0] == 0.0
    strip = prepare_score_strip(piece.sheet).astype(np.float32) / 255.0
    for action in (2, 2, 2, 1, 0, 2):  # +1, +1, +1, 0, -1, +1 px/frame
        observation, _, _, _, info = env.step(action)
        assert observation["speed"][0] == info["speed"]
        assert env.observation_space.contains(observation)
        start = info["score_window_start"]
        np.testing.assert_allclose(observation["score"][0], strip[:, start : start + 256], atol=1e-6)
    assert info["speed"] == 3.0


def test_the_geometry_is_the_environments_and_observe_at_jumps_where_steps_go(toy_pieces):
    from sfgym.envs import ObservationGeometry

    assert MSMDFollowEnv(toy_pieces).geometry == ObservationGeometry()
    kwargs = {"spec_window": 20, "score_window": (120, 384), "score_factor": 0.25, "actions": (-2.0, 0.0, 2.0)}
    env = MSMDFollowEnv(toy_pieces, **kwargs)
    geometry = ObservationGeometry.of(kwargs)
    assert env.geometry == geometry and (geometry.out_rows, geometry.out_columns) == (30, 96)
    assert env.observation_space["score"].shape == (1, 30, 96)
    observation, info = env.reset(seed=0, options={"piece": "toy_b"})
    strip_columns = geometry.strip(env.piece.sheet).shape[1]
    visited = [(info["frame"], info["follower_x"], observation, info)]
    for action in (2, 2, 2, 1, 0, 2, 2):
        observation, _, _, _, info = env.step(action)
        visited.append((info["frame"], info["follower_x"], observation, info))
        assert info["score_window_start"] == geometry.window_start(info["follower_x"], strip_columns)
    jumper = MSMDFollowEnv(toy_pieces, **kwargs)
    with pytest.raises(RuntimeError, match="reset"):
        jumper.observe_at(50, 100.0)
    jumper.reset(seed=1, options={"piece": "toy_b"})
    for frame, x, expected, expected_info in reversed(visited):
        jumped, jumped_info = jumper.observe_at(frame, x)
        for key in ("spectrogram", "score"):
            np.testing.assert_array_equal(jumped[key], expected[key])
        assert {**jumped_info, "speed": None} == {**expected_info, "speed": None}  # the jump keeps the speed
    x_low, _ = geometry.x_range(jumper.piece.sheet_width)
    assert jumper.observe_at(60, -1e6)[1]["follower_x"] == x_low  # clipped as a step clips
    with pytest.raises(ValueError, match="frame: .* is outside piece 'toy_b'"):
        jumper.observe_at(jumper.piece.n_frames, 100.0)


def test_same_seed_gives_identical_observation_sequences(toy_pieces):
    def episode_observations(seed: int) -> tuple[list[str], list[dict]]:
        env = MSMDFollowEnv(toy_pieces, difference_channels=True)
        actions = np.random.default_rng(123).integers(0, 3, size=200)
        pieces, observations = [], []
        observation, info = env.reset(seed=seed)
        for action in actions:
            pieces.append(info["piece"])
            observations.append(observation)
            observation, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                observation, info = env.reset()
        return pieces, observations

    pieces_1, observations_1 = episode_observations(seed=42)
    pieces_2, observations_2 = episode_observations(seed=42)
    assert pieces_1 == pieces_2 and len(set(pieces_1)) > 1  # several episodes, random pieces
    for a, b in zip(observations_1, observations_2, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    other_pieces, _ = episode_observations(seed=43)
    assert other_pieces != pieces_1


# ---------------------------------------------------------------------------- bad arguments
def test_bad_arguments_raise_clear_errors(toy_pieces, toy_dataset, tmp_path):
    with pytest.raises(ValueError, match="no split 'tset'"):
        MSMDFollowEnv(toy_dataset, split="tset")
    with pytest.raises(ValueError, match="no split 'train'.*none"):
        MSMDFollowEnv(tmp_path)
    with pytest.raises(ValueError, match="data: the list of pieces is empty"):
        MSMDFollowEnv([])
    with pytest.raises(ValueError, match="score_window: 240 rows do not fit the 200-row sheet of piece 'toy_a'"):
        MSMDFollowEnv(toy_pieces, score_window=(240, 512))
    short = synthetic_piece("short", n_onsets=3, frames_per_onset=3, tail_frames=1)
    with pytest.raises(ValueError, match="piece 'short' has 17 spectrogram frames, fewer than spec_window=40"):
        MSMDFollowEnv([short])
    with pytest.raises(ValueError, match="action_type: 'teleport'"):
        MSMDFollowEnv(toy_pieces, action_type="teleport")
    with pytest.raises(ValueError, match="repeated: \\['toy_a'\\]"):
        MSMDFollowEnv([toy_pieces[0], toy_pieces[0]])
    with pytest.raises(ValueError, match="render_mode"):
        MSMDFollowEnv(toy_pieces, render_mode="video")
    env = MSMDFollowEnv(toy_pieces)
    with pytest.raises(ValueError, match="options\\['piece'\\]: unknown piece 'toy_z'"):
        env.reset(options={"piece": "toy_z"})
    with pytest.raises(ValueError, match="options: unknown key"):
        env.reset(options={"song": "toy_a"})
    with pytest.raises(RuntimeError, match="reset"):
        MSMDFollowEnv(toy_pieces).step(1)


# ---------------------------------------------------------------------------- rendering
def test_rgb_array_render_draws_follower_and_truth(toy_pieces):
    env = MSMDFollowEnv(toy_pieces, render_mode="rgb_array", actions=(0.0, 20.0))
    env.reset(seed=0, options={"piece": "toy_a"})
    env.step(1)
    _, _, _, _, info = env.step(0)  # 40 px ahead of the truth, give or take its own motion
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[1] == 512 and frame.shape[0] >= 160 + 78
    score_panel = frame[:160]
    centre = 256
    assert tuple(score_panel[80, centre]) == (0, 102, 204)  # the follower, at the centre
    truth_column = round(centre + (info["true_x"] - info["follower_x"]))
    assert truth_column < centre - 10
    assert tuple(score_panel[80, truth_column]) == (220, 30, 30)


def test_human_render_runs_headless(toy_pieces, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = gym.make("MSMDFollow-v0", data=toy_pieces, render_mode="human")
    env.reset(seed=0)
    for _ in range(2):
        env.step(1)
    assert env.render() is None
    env.close()
    env.close()  # closing twice is allowed
