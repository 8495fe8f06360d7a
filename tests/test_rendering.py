"""Tests for sfgym.rendering: the side-by-side view, video export, system bounds and live following."""

from __future__ import annotations

import os
import subprocess

import cv2
import numpy as np
import pytest

from sfgym.data.piece import FPS, SHEET_HEIGHT, Piece
from sfgym.data.spectrogram import SpectrogramParams, spectrogram_from_audio
from sfgym.data.synthetic import synthetic_piece
from sfgym.data.systems import detect_system_bounds, system_index
from sfgym.followers import Follower
from sfgym.live import LiveFollowing, live_piece
from sfgym.live.streaming import StreamingSpectrogram
from sfgym.rendering.player import export_video
from sfgym.rendering.session import SideBySideSession
from sfgym.rendering.video import find_ffmpeg
from sfgym.rendering.view import AGENT_COLORS, SideBySideView, surface_rgb
from sfgym.score.timing import stand_in_notes

from conftest import MSMD_SAMPLE_PIECE, MSMD_SAMPLE_SPLIT

HOP = SpectrogramParams().hop_size


class OffsetFollower(Follower):
    """Stays ``offset`` px from the true position (reads the truth, like the oracle) and records what it sees."""

    action_type = "position"

    def __init__(self, offset: float, name: str = "offset"):
        self.offset = offset
        self.name = name

    def reset(self, piece: Piece, seed: int | None = None) -> None:
        self.piece = piece
        self.spectrograms: list[np.ndarray] = []

    def act(self, observation, info):
        self.spectrograms.append(np.array(observation["spectrogram"]))
        frame = min(int(info["frame"]) + 1, self.piece.n_frames - 1)
        return np.array([(self.piece.true_x[frame] + self.offset) / self.piece.sheet_width])


def _view(session: SideBySideSession, piece: Piece) -> SideBySideView:
    return SideBySideView(piece.name, piece.sheet, piece.spectrogram, session.labels,
                          np.array([[0, piece.sheet_width]]), threshold=session.threshold,
                          end_frame=session.end_frame, observed_frames=session.observed_frames)


@pytest.fixture
def two_follower_session():
    piece = synthetic_piece("toy_render", n_onsets=12, frames_per_onset=5, seed=4)
    session = SideBySideSession(piece, [("behind", OffsetFollower(-30.0)), ("ahead", OffsetFollower(+45.0))])
    yield piece, session
    session.close()


# ---------------------------------------------------------------------------- the view
def test_view_draws_each_follower_marker_in_its_colour(two_follower_session) -> None:
    piece, session = two_follower_session
    view = _view(session, piece)
    layout = view.layout
    for frame in range(session.start_frame + 1, session.start_frame + 4):
        state = session.state(frame)
        rgb = surface_rgb(view.draw(state))
        assert rgb.shape == (layout.height, layout.width, 3)
        score_rows = rgb[layout.score_top : layout.score_top + layout.score_height]
        for index, agent in enumerate(state.agents):
            assert agent.status == "tracking" and agent.error == pytest.approx(abs(session._runners[index].follower.offset), abs=1e-3)
            column = view.score_column(agent.x)
            assert column is not None
            color = np.array(AGENT_COLORS[index])
            at_marker = np.all(score_rows[:, column - 1 : column + 2] == color, axis=-1)
            # the marker runs through the whole score window
            assert at_marker.any(axis=1).mean() > 0.9, f"{agent.label}'s marker is missing at column {column}"
            # and no other follower's colour is there
            other = np.array(AGENT_COLORS[1 - index])
            assert not np.all(score_rows[:, column - 1 : column + 2] == other, axis=-1).any()
        # the two markers are as far apart on screen as the followers are in the sheet (x1.2)
        columns = [view.score_column(a.x) for a in state.agents]
        assert columns[1] - columns[0] == pytest.approx(75 * layout.score_scale, abs=2)


def test_lost_follower_freezes_and_others_go_on() -> None:
    piece = synthetic_piece("toy_lost", n_onsets=12, frames_per_onset=5, seed=5)
    session = SideBySideSession(piece, [("far", OffsetFollower(400.0)), ("near", OffsetFollower(0.0))])
    first = session.state(session.start_frame + 1)
    later = session.state(session.start_frame + 10)
    assert first.agents[0].status == "lost" and first.agents[0].lost_at_s == pytest.approx(first.frame / FPS)
    assert later.agents[0].x == first.agents[0].x  # frozen where it was lost
    assert later.agents[1].status == "tracking" and later.agents[1].error < 1e-3
    last = session.state(10**9)  # clamped to the end of the timeline
    assert last.frame == piece.last_onset_frame and last.agents[1].status == "done"
    session.close()


# ---------------------------------------------------------------------------- video
def _read_video(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def test_video_is_written_and_reads_back(two_follower_session, tmp_path, monkeypatch) -> None:
    piece, session = two_follower_session
    view = _view(session, piece)
    monkeypatch.setattr("sfgym.rendering.video.find_ffmpeg", lambda: None)  # no muxer: silent, and said so
    out = tmp_path / "clip.mp4"
    report = export_video(session, view, out, speed=0, audio=(np.zeros(22050, np.float32), 22050), max_frames=6)
    assert "SILENT" in report.message and report.frames == 6
    frames = _read_video(out)
    assert len(frames) == 6 and frames[0].shape == (720, 1280, 3)
    # the last decoded frame looks like the last drawn one (lossy codec: compare coarsely)
    drawn = cv2.cvtColor(surface_rgb(view.draw(session.state(5))), cv2.COLOR_RGB2BGR)
    assert np.abs(frames[-1].astype(int) - drawn.astype(int)).mean() < 8
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


@pytest.mark.skipif(find_ffmpeg() is None, reason="no ffmpeg (PATH or imageio-ffmpeg) to mux audio")
def test_video_gets_the_audio_when_a_muxer_exists(two_follower_session, tmp_path) -> None:
    piece, session = two_follower_session
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)).astype(np.float32)
    out = tmp_path / "clip.mp4"
    report = export_video(session, _view(session, piece), out, speed=0, audio=(tone, 22050), max_frames=8)
    assert "with audio" in report.message
    probe = subprocess.run([find_ffmpeg(), "-hide_banner", "-i", str(out)], capture_output=True, text=True)
    assert "Audio:" in probe.stderr and "Video:" in probe.stderr
    assert len(_read_video(out)) == 8


# ---------------------------------------------------------------------------- systems
def _staff(width: int, top: int, gray: int = 0) -> np.ndarray:
    sheet = np.full((SHEET_HEIGHT, width), 255, dtype=np.uint8)
    for line in range(5):
        sheet[top + 7 * line, :] = gray
    for column in range(20, width - 20, 37):  # noteheads and stems, which must not split systems
        sheet[top + 10 : top + 14, column : column + 5] = 0
        sheet[top - 15 : top + 12, column + 4] = 0
    return sheet


def test_system_bounds_from_line_shifts_and_gaps() -> None:
    # three systems: the 2nd shifted by one row against the 1st (no gap, as in real MSMD), the 3rd after a gap
    gap = np.full((SHEET_HEIGHT, 8), 255, dtype=np.uint8)
    sheet = np.concatenate([_staff(300, 80), _staff(250, 81), gap, _staff(200, 81)], axis=1)
    sheet[82:84, 100:180] = 0  # a long horizontal beam across lines: adds ink, must not split the system
    bounds = detect_system_bounds(sheet)
    assert bounds.tolist() == [[0, 300], [300, 554], [554, 758]]
    assert system_index(bounds, 299.5) == 0 and system_index(bounds, 300) == 1 and system_index(bounds, 1e6) == 2
    assert detect_system_bounds(np.full((SHEET_HEIGHT, 50), 255, np.uint8)).tolist() == [[0, 50]]


def test_system_bounds_of_the_real_msmd_sample() -> None:
    from sfgym.data.msmd import read_score_npz

    sheet, _, _ = read_score_npz(MSMD_SAMPLE_SPLIT / "score" / f"{MSMD_SAMPLE_PIECE}.npz")
    bounds = detect_system_bounds(sheet)
    # its four systems start right after the thick end barline of the previous one (checked by eye)
    assert len(bounds) == 4
    assert np.abs(bounds[1:, 0] - np.array([699, 1456, 2213])).max() <= 3


def test_system_bounds_match_the_engraver() -> None:
    from sfgym.data.engrave import engrave
    from scores import melody_musicxml

    engraved = engrave(melody_musicxml(["C4", "E4", "G4", "C5", "A4", "F4", "D4", "B3"] * 6, chord_every=3))
    assert len(engraved.system_bounds) >= 2
    np.testing.assert_array_equal(detect_system_bounds(engraved.sheet), engraved.system_bounds)


# ---------------------------------------------------------------------------- streaming features
def test_streaming_spectrogram_equals_the_offline_one() -> None:
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(22050 * 2 + 123)).astype(np.float32)
    stream = StreamingSpectrogram(22050)
    blocks, position = [], 0
    while position < len(audio):
        size = int(rng.integers(1, 3000))
        blocks.append(stream.push(audio[position : position + size]))
        position += size
        # causal: every frame emitted so far has all its samples
        assert stream.frame_ready_sample(stream.frames_done - 1) <= stream.samples_received or stream.frames_done == 0
    blocks.append(stream.finish())
    streamed = np.concatenate(blocks, axis=1)
    offline = spectrogram_from_audio(audio, 22050)
    assert streamed.shape == offline.shape
    np.testing.assert_allclose(streamed, offline, atol=1e-5)


# ---------------------------------------------------------------------------- live following
def _audible_piece(seed: int = 6) -> tuple[Piece, np.ndarray]:
    """A toy piece whose spectrogram is that of real audio (noise bursts at its onsets)."""
    toy = synthetic_piece("toy_live", n_onsets=10, frames_per_onset=6, seed=seed)
    rng = np.random.default_rng(seed)
    audio = (0.01 * rng.standard_normal(int(toy.n_frames * HOP) - 5)).astype(np.float32)
    for onset in toy.onset_frames:
        start = int(onset * HOP)
        audio[start : start + 2000] += (0.3 * rng.standard_normal(2000)).astype(np.float32)[: len(audio) - start]
    spectrogram = spectrogram_from_audio(audio, 22050)
    piece = Piece(name=toy.name, sheet=toy.sheet, coords=toy.coords, coord2onset=toy.coord2onset, notes=toy.notes,
                  spectrogram=spectrogram, score_notes=toy.score_notes)
    return piece, audio


def test_live_following_sees_what_the_environment_shows() -> None:
    from sfgym.evaluation import run_episode

    piece, audio = _audible_piece()
    offline = OffsetFollower(10.0)
    run_episode(offline, piece)
    live_follower = OffsetFollower(10.0)
    live = LiveFollowing(live_follower, live_piece(piece.name, piece.sheet, piece.coords, piece.coord2onset,
                                                   piece.n_frames, notes=piece.notes),
                         np.array([[0, 200], [200, piece.sheet_width]]), truth_known=True)
    report = live.run(audio, 22050, speed=0, block_size=700)
    assert len(live_follower.spectrograms) == len(offline.spectrograms) == len(report.steps)
    np.testing.assert_allclose(np.stack(live_follower.spectrograms), np.stack(offline.spectrograms), atol=1e-5)
    assert max(step.error for step in report.steps) < 12
    # one page turn, when the position passes column 200, at most a frame off the true crossing
    assert [(e.from_system, e.to_system) for e in report.events] == [(0, 1)]
    assert abs(report.events[0].delay_s) <= 1 / FPS and report.events[0].latency_ms > 0
    assert report.latency_summary()["p95_ms"] > 0


def test_live_features_use_no_future_audio() -> None:
    piece, audio = _audible_piece(seed=7)
    changed_from = len(audio) // 2
    altered = audio.copy()
    altered[changed_from:] = np.random.default_rng(1).standard_normal(len(audio) - changed_from).astype(np.float32)
    seen = []
    for samples in (audio, altered):
        follower = OffsetFollower(0.0)
        live = LiveFollowing(follower, live_piece(piece.name, piece.sheet, piece.coords, piece.coord2onset,
                                                  piece.n_frames), np.array([[0, piece.sheet_width]]),
                             truth_known=False, hold_on_silence=False)  # asked at every step, even the first
        live.run(samples, 22050, speed=0, block_size=512)
        seen.append(follower.spectrograms)
    differing = [i for i, (a, b) in enumerate(zip(*seen)) if not np.array_equal(a, b)]
    assert differing, "the altered half must change later observations"
    # stand-in timing starts at frame 0, so step i observes frames i-40 .. i-1: the first observation that
    # changes is exactly the first whose newest frame needs a sample from the altered half
    ready = StreamingSpectrogram(22050).frame_ready_sample
    newest = differing[0] - 1
    assert ready(newest) > changed_from >= ready(newest - 1)


def test_stand_in_notes_span_the_recording() -> None:
    notes = stand_in_notes(np.array([[1.0, 60, 0.5], [2.0, 62, 0.5], [4.0, 64, 0.5]]), 3, n_frames=100)
    frames = np.floor(notes[:, 0] * FPS + 1e-9).astype(int)
    assert frames[0] == 0 and frames[-1] == 99 and np.all(np.diff(frames) > 0)
    assert notes[:, 1].tolist() == [60, 62, 64]
    spread = stand_in_notes(None, 4, n_frames=40, pitches=np.array([50, 52, 53, 55]))
    assert spread[:, 1].tolist() == [50, 52, 53, 55] and np.floor(spread[-1, 0] * FPS) == 39


# ---------------------------------------------------------------------------- commands
def test_render_command_writes_a_video(toy_dataset, tmp_path) -> None:
    from sfgym.cli import main

    out = tmp_path / "render.mp4"
    assert os.environ.get("SDL_VIDEODRIVER") == "dummy"  # conftest: headless
    code = main(["render", "--agents", "oracle,late=constant_tempo", "--piece", "toy_b", "--data", str(toy_dataset),
                 "--video", str(out), "--max-seconds", "0.5", "--no-audio", "--still", str(tmp_path / "still.png")])
    assert code == 0
    assert len(_read_video(out)) == 11  # frames 0..10 of the timeline
    assert cv2.imread(str(tmp_path / "still.png")).shape == (720, 1280, 3)


def test_render_command_headless_needs_a_video_or_a_still(toy_dataset, tmp_path, capsys) -> None:
    from sfgym.cli import main

    assert main(["render", "--agents", "oracle", "--piece", "toy_b", "--data", str(toy_dataset)]) == 1
    assert "--video" in capsys.readouterr().err
    still = tmp_path / "only.png"
    assert main(["render", "--agents", "oracle", "--piece", "toy_b", "--data", str(toy_dataset),
                 "--still", str(still), "--still-at", "1"]) == 0
    assert cv2.imread(str(still)).shape == (720, 1280, 3) and not list(tmp_path.glob("*.mp4"))


def test_render_command_renders_a_recording_of_a_score_without_a_truth(toy_dataset, tmp_path, capsys) -> None:
    import soundfile

    from sfgym.cli import main

    score = toy_dataset / "train" / "score" / "toy_b.npz"
    wav, out = tmp_path / "take.wav", tmp_path / "take.mp4"
    rng = np.random.default_rng(0)
    soundfile.write(str(wav), (0.1 * rng.standard_normal(3 * 22050)).astype(np.float32), 22050)
    assert main(["render", "--agents", "constant_tempo,online_dtw", "--score", str(score), "--audio", str(wav),
                 "--video", str(out), "--no-audio"]) == 0
    assert len(_read_video(out)) == 60  # the whole recording (3 s), not a piece's timeline
    assert main(["render", "--agents", "oracle", "--score", str(score), "--video", str(out)]) == 1
    assert "--audio" in capsys.readouterr().err


def test_a_session_without_a_truth_shows_no_true_position_and_loses_no_one(toy_pieces) -> None:
    piece = toy_pieces[0]
    stand_in = live_piece(piece.name, piece.sheet, piece.coords, piece.coord2onset, piece.n_frames,
                          score_notes=piece.score_notes, spectrogram=piece.spectrogram)
    session = SideBySideSession(stand_in, [("far", OffsetFollower(offset=400.0))], truth_known=False)
    states = [session.state(frame) for frame in range(session.n_frames)]
    session.close()
    assert all(state.true_x is None for state in states)
    assert all(agent.error is None and agent.status != "lost" for state in states for agent in state.agents)


def test_follow_command_follows_a_pieces_own_performance(toy_dataset, capsys) -> None:
    from sfgym.cli import main

    code = main(["follow", "--piece", "toy_a", "--data", str(toy_dataset), "--agent", "oracle", "--speed", "0"])
    assert code == 0
    out = capsys.readouterr().out
    # exact but for the first step, taken on the silence before the first note: there the follower holds
    assert "per-frame latency" in out and "median 0.0 px, 100.0 % of frames within 170 px" in out


# ---------------------------------------------------------------------------- interactive playback
def test_transport_keys_pause_step_and_seek() -> None:
    from sfgym.rendering.player import Transport

    transport = Transport(last_frame=300, fps=20)
    transport.advance(1.0)
    assert transport.frame == 20  # real time: 20 frames per second of audio
    transport.right()
    assert transport.frame == 120  # playing: +5 s
    transport.left()
    transport.left()
    assert transport.frame == 0  # -5 s, clamped at the start
    transport.toggle_pause()
    transport.advance(3.0)
    transport.right()
    assert transport.frame == 1 and transport.paused  # paused: time stands still, right steps one frame
    transport.toggle_pause()
    transport.speed = 2.0
    transport.advance(0.5)
    assert transport.frame == 21
    transport.advance(100.0)
    assert transport.frame == 300  # clamped at the end


def test_window_playback_follows_the_keys(two_follower_session, monkeypatch) -> None:
    import pygame

    from sfgym.rendering import player

    piece, session = two_follower_session
    view = _view(session, piece)
    key = lambda k: pygame.event.Event(pygame.KEYDOWN, key=k)  # noqa: E731
    script = iter([[key(pygame.K_SPACE)], [key(pygame.K_RIGHT)], [key(pygame.K_RIGHT)], [pygame.event.Event(pygame.QUIT)]])
    monkeypatch.setattr(pygame.event, "get", lambda: next(script))
    drawn = []
    original_draw = view.draw
    monkeypatch.setattr(view, "draw", lambda state, **kw: (drawn.append((state.frame, kw["status"])), original_draw(state, **kw))[1])
    player.play_interactive(session, view, speed=1.0, audio=None)
    assert drawn == [(0, "paused"), (1, "paused"), (2, "paused")]


def test_follow_command_on_a_recording_against_a_score_file(toy_dataset, tmp_path, capsys) -> None:
    import soundfile

    from sfgym.cli import main

    wav = tmp_path / "take.wav"
    soundfile.write(str(wav), (0.05 * np.random.default_rng(0).standard_normal(22050 * 2)).astype(np.float32), 22050)
    score = toy_dataset / "train" / "score" / "toy_a.npz"
    assert main(["follow", str(wav), "--score", str(score), "--agent", "constant_tempo", "--speed", "0"]) == 0
    out = capsys.readouterr().out
    assert "per-frame latency" in out and "ground truth" not in out  # a user's recording: no truth, no errors
    assert main(["follow", str(wav), "--score", str(tmp_path / "missing.npz")]) == 1
    assert "missing.npz" in capsys.readouterr().err
