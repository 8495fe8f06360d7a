"""Live input without a sound card (a fake ``sounddevice``), waiting for the music, and keeping a session."""

from __future__ import annotations

import _thread
import sys
import threading
import time
import types

import numpy as np
import pandas as pd
import pytest
import soundfile

from sfgym.cli import main
from sfgym.data.audio import performance_audio
from sfgym.data.engrave import engrave
from sfgym.data.importer import import_piece
from sfgym.data.msmd import list_pieces, load_piece, read_midi_notes
from sfgym.data.piece import FPS
from sfgym.live import SoundCardSource

from scores import melody_musicxml

RATE = 22050
MELODY = ["C4", "E4", "G4", "C5", "B4", "G4", "D4", "F4", "A4", "G4", "E4", "C4", "D4", "F4", "A4", "C5"] * 3


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    """A score engraved to several systems and its performance synthesized: ``(score, take.wav, notes)``."""
    folder = tmp_path_factory.mktemp("take")
    score = folder / "melody.musicxml"
    score.write_text(melody_musicxml(MELODY, tempo_bpm=150))
    files = import_piece(score, folder / "split")
    samples, rate, _ = performance_audio(files)
    wav = folder / "take.wav"
    soundfile.write(str(wav), samples, rate, subtype="FLOAT")
    assert len(engrave(score).system_bounds) >= 2  # so that pages (systems) turn
    return score, wav, read_midi_notes(files.midi)


# ---------------------------------------------------------------------------- a fake sound card
def fake_sounddevice(recording: np.ndarray | None = None, *, channels: int = 2, interrupt_at_end: bool = True):
    """A stand-in for the ``sounddevice`` module: one input device whose stream calls the callback from its
    own thread with ``recording``'s blocks (on every channel) at 20 times their pace, then presses Ctrl-C once
    they have been taken."""
    module = types.ModuleType("sounddevice")

    class PortAudioError(Exception):
        pass

    class InputStream:
        def __init__(self, *, device, channels, samplerate, blocksize, dtype, callback):
            self.callback, self.blocksize, self.channels = callback, blocksize, channels
            self.active = False

        def _play(self) -> None:
            for first in range(0, len(recording), self.blocksize):
                block = recording[first:first + self.blocksize]
                self.callback(np.repeat(block[:, None], self.channels, axis=1).astype(np.float32), len(block),
                              None, None)
                time.sleep(len(block) / RATE / 20)
            source = self.callback.__self__
            while not source._queue.empty():  # the follower has taken every block
                time.sleep(0.01)
            time.sleep(0.2)
            if interrupt_at_end:
                _thread.interrupt_main()  # the musician presses Ctrl-C

        def __enter__(self):
            self.active = True
            self._thread = threading.Thread(target=self._play, daemon=True)
            self._thread.start()
            return self

        def __exit__(self, *exc):
            self.active = False

    module.PortAudioError = PortAudioError
    module.InputStream = InputStream
    module.default = types.SimpleNamespace(device=[1, 3])
    module.query_devices = lambda: [
        {"name": "HDMI out", "max_input_channels": 0, "default_samplerate": 48000.0},
        {"name": "USB Microphone", "max_input_channels": channels, "default_samplerate": float(RATE)},
    ]
    return module


def test_follow_live_gives_the_positions_of_following_the_file(take, tmp_path, monkeypatch, capsys) -> None:
    score, wav, _ = take
    samples, _ = soundfile.read(str(wav), dtype="float32")
    base = ["follow", "--score", str(score), "--agent", "online_dtw", "--print-every", "0"]
    assert main(base + [str(wav), "--speed", "0", "--positions", str(tmp_path / "file.csv")]) == 0
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(samples))
    assert main(["follow", "--list-devices"]) == 0
    listing = capsys.readouterr().out
    assert "USB Microphone" in listing and "(default)" in listing and "HDMI" not in listing
    assert main(base + ["--input-device", "usb", "--positions", str(tmp_path / "live.csv")]) == 0
    out = capsys.readouterr().out
    assert "dropped" not in capsys.readouterr().err
    assert "stopped (Ctrl-C)" in out and "input device 1 (USB Microphone)" in out and "PAGE TURN" in out
    from_file, live = pd.read_csv(tmp_path / "file.csv"), pd.read_csv(tmp_path / "live.csv")
    common = min(len(live), len(from_file))  # live has no end of the recording: it stopped at Ctrl-C
    assert common >= len(from_file) - 5
    pd.testing.assert_frame_equal(live.iloc[:common], from_file.iloc[:common], atol=0.01)
    assert live["page_turn"].sum() >= 1


def test_a_missing_device_or_portaudio_is_one_line_not_a_traceback(take, monkeypatch, capsys) -> None:
    score = take[0]
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # not installed (without PortAudio: OSError, the same)
    assert main(["follow", "--live", "--score", str(score)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sfgym follow: live input needs sounddevice and PortAudio: pip install sounddevice; "
                          "apt-get install libportaudio2") and len(err.splitlines()) == 1
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(np.zeros(10)))
    assert main(["follow", "--input-device", "7", "--score", str(score)]) == 1
    err = capsys.readouterr().err
    assert "no input device 7" in err and "USB Microphone" in err and "Traceback" not in err


def test_the_audio_callback_drops_blocks_when_the_follower_falls_behind(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice())
    source = SoundCardSource(queue_blocks=4)
    block = np.ones((512, 2), dtype=np.float32)
    started = time.perf_counter()
    for _ in range(10):  # nobody takes them
        source._on_audio(block, 512, None, None)
    assert time.perf_counter() - started < 0.1  # it never waited
    assert source.dropped_blocks == 6 and source._queue.qsize() == 4
    assert source._queue.get().shape == (512,)  # mixed down to mono


# ---------------------------------------------------------------------------- waiting for the music
def test_noise_before_the_music_turns_no_page_and_the_take_is_followed_as_alone(take, tmp_path) -> None:
    score, wav, notes = take
    samples, _ = soundfile.read(str(wav), dtype="float32")
    noise = np.random.default_rng(0).standard_normal(20 * RATE).astype(np.float32)
    noise *= 10 ** (-50 / 20) / noise.std()  # 20 s of room noise at -50 dBFS
    noisy = tmp_path / "noisy.wav"
    soundfile.write(str(noisy), np.concatenate([noise, samples]), RATE, subtype="FLOAT")
    base = ["follow", "--score", str(score), "--agent", "online_dtw", "--speed", "0"]
    assert main(base + [str(wav), "--positions", str(tmp_path / "alone.csv")]) == 0
    assert main(base + [str(noisy), "--positions", str(tmp_path / "noisy.csv")]) == 0
    alone, after_noise = pd.read_csv(tmp_path / "alone.csv"), pd.read_csv(tmp_path / "noisy.csv")
    first_note = 20 * FPS + int(notes[:, 0].min() * FPS)
    before = after_noise[after_noise["frame"] < first_note]
    assert before["page_turn"].sum() == 0 and before["x"].nunique() == 1 and before["silent"].all()
    # after it, the take is followed as it is alone (the same frames, 20 s later)
    shifted = after_noise[after_noise["frame"] >= 20 * FPS].reset_index(drop=True).iloc[: len(alone)]
    assert shifted["page_turn"].sum() == alone["page_turn"].sum() >= 1
    close = np.abs(shifted["x"].to_numpy() - alone["x"].to_numpy()[: len(shifted)]) < 20
    assert close[2 * FPS:].mean() > 0.95  # once both have found the music
    # asked from the first sound, on-line time warping walks away on the noise
    assert main(base + [str(noisy), "--no-wait-for-music", "--positions", str(tmp_path / "eager.csv")]) == 0
    eager = pd.read_csv(tmp_path / "eager.csv")
    assert eager[eager["frame"] < first_note]["x"].nunique() > 1


# ---------------------------------------------------------------------------- keeping a session
def test_a_recorded_session_imports_as_a_piece(take, tmp_path, capsys) -> None:
    score, wav, _ = take
    session = tmp_path / "session"
    assert main(["follow", str(wav), "--score", str(score), "--speed", "0", "--record", str(session)]) == 0
    assert "sfgym data import --score" in capsys.readouterr().out
    assert sorted(p.name for p in session.iterdir()) == ["page_turns.csv", "positions.csv", "score.musicxml",
                                                          "take.wav"]
    assert not list(tmp_path.glob(".*partial"))
    heard, rate = soundfile.read(str(session / "take.wav"), dtype="float32")
    original, _ = soundfile.read(str(wav), dtype="float32")
    # as heard: all of it but the blocks past the end of the follower's timeline (less than two)
    assert rate == RATE and len(original) - 2 * 512 < len(heard) <= len(original)
    assert np.abs(heard - original[: len(heard)]).max() < 1e-3
    turns = pd.read_csv(session / "page_turns.csv")
    assert list(turns.columns) == ["frame", "time_s", "from_system", "to_system", "latency_ms"] and len(turns) >= 1
    assert main(["follow", str(wav), "--score", str(score), "--speed", "0", "--record", str(session)]) == 1  # kept
    assert main(["data", "import", "--score", str(session / "score.musicxml"), "--performance",
                 str(session / "take.wav"), "--out", str(tmp_path / "mine")]) == 0
    (files,) = list_pieces(tmp_path / "mine")
    piece = load_piece(files)
    assert piece.name == "score@take" and piece.n_frames >= len(heard) / RATE * FPS - 2
