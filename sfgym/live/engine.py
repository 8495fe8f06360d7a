"""Following an audio stream as if it were live, with page-turn (system-change) events.

:class:`LiveFollowing` feeds a recording block by block at its own pace (or as fast as possible), computes
each spectrogram frame as soon as its samples have arrived (:class:`~sfgym.live.streaming.StreamingSpectrogram`:
causal, only samples up to the frame's end), and steps the follower as soon as the frames its next
observation shows exist. The score side of the observation and the follower's dynamics are those of
:class:`~sfgym.envs.MSMDFollowEnv` itself (an environment over a piece whose spectrogram is all zeros);
only the observation's spectrogram window is replaced by the frames computed so far, with the
environment's convention: at frame ``f`` the follower sees frames ``f - 40 .. f - 1``.

Without a ground truth (a user's recording) the environment's piece gets *stand-in* performance timing
(the score's notes spread evenly over the recording, :func:`sfgym.score.timing.stand_in_notes`) so that an
episode spans the whole recording; no follower may use it (fair followers never read ``Piece.notes``),
errors are not reported, and the environment's loss threshold is lifted: live following never stops early.
With a ground truth (a built piece and its own performance) errors and tracked / lost state (170 px) are
reported too.

A *system change* is emitted the first time the follower's position enters a later system than any before
(a follower hovering at a boundary does not turn pages back and forth), with its processing latency
(wall clock from the arrival of the audio block that completed the last frame the decision needed, to the
event) and, with a ground truth, how many seconds after the true position crossed the same boundary.

*Waiting for the music*: until the audio is music that matches the score's opening
(:class:`~sfgym.live.music_start.MusicStartDetector`, settings :class:`~sfgym.live.music_start.WaitForMusic`),
the follower is not asked and holds its start position, as on silence: room noise, talking or tuning before
the first note do not move it. Once the start is found (up to ``sustain_s`` after it), the follower is given
the frames since the start at once, to catch up, and follows from then on; the frames before the start are
shown to it as silence (zeros).

*Silence*: a step whose newest frame is silent (its samples' RMS below :data:`SILENCE_DBFS`) does not ask
the follower; it holds its position (a follower asked on silence may wander: on-line time warping, given
digital silence against the MSMD sample's score, moved from 85 to 154 px within 2 s), and :class:`SilentInputWarning` is issued once after
:data:`SILENCE_WARNING_S` of silence in a row.

For live use from Python, push audio as it arrives and get positions back::

    live = LiveFollowing.for_score("piece.musicxml", make_follower("online_dtw"), max_seconds=600)
    live.start(sample_rate=44100)
    for block in blocks:                 # e.g. from a sound card's callback
        for position in live.push(block):
            ...                          # position.time_s, .x, .system, .page_turn
    live.finish()

Pushing a recording in blocks of any size gives the same positions as :meth:`LiveFollowing.run` on it, and
:meth:`LiveFollowing.follow` takes any :class:`~sfgym.live.sources.AudioSource` (``sfgym follow`` gives it a
recording fed as if live, :class:`~sfgym.live.sources.RecordingSource`).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sfgym.data.engrave import engrave
from sfgym.data.msmd import PieceFiles, read_midi_notes, read_score_npz
from sfgym.data.piece import FPS, N_SPEC_BINS, Piece
from sfgym.data.systems import detect_system_bounds, system_index
from sfgym.envs import MSMDFollowEnv
from sfgym.envs.geometry import LOSS_THRESHOLD_PX, NEVER_LOST_PX
from sfgym.files import atomic_write_bytes
from sfgym.followers import Follower
from sfgym.live.music_start import MusicStartDetector, WaitForMusic, opening_profiles
from sfgym.live.sources import DEFAULT_BLOCK_SIZE, AudioSource, RecordingSource
from sfgym.live.streaming import StreamingSpectrogram
from sfgym.score.timing import stand_in_notes

SILENCE_DBFS = -60.0
"""A spectrogram frame whose samples' RMS is below this (dB relative to full scale 1.0) is silence."""
SILENCE_WARNING_S = 5.0
"""Silence this long in a row gets one :class:`SilentInputWarning` (a wrong or muted input)."""


class SilentInputWarning(UserWarning):
    """The live input has been silent for a while (the follower holds its position meanwhile)."""


@dataclass
class LiveStep:
    """The follower after one step."""

    frame: int  # the environment frame the position is for
    x: float
    system: int
    audio_time_s: float  # audio received when the step was taken
    latency_ms: float  # arrival of the audio block that completed the needed frame -> step done
    true_x: float | None = None
    silent: bool = False  # the newest frame was silence: the follower was not asked and held its position
    waiting: bool = False  # the music had not started: the follower was not asked and held its position
    page_turn: SystemChange | None = None  # the system change this step made, if any

    @property
    def time_s(self) -> float:
        """The frame's time in the recording, in seconds."""
        return self.frame / FPS

    @property
    def error(self) -> float | None:
        return None if self.true_x is None else abs(self.x - self.true_x)


@dataclass
class SystemChange:
    """The follower entered a later system: turn the page."""

    frame: int
    from_system: int
    to_system: int
    audio_time_s: float
    latency_ms: float
    true_frame: int | None = None  # when the true position entered ``to_system``, if known

    @property
    def delay_s(self) -> float | None:
        """Seconds after the true crossing (negative: early), if the truth is known."""
        return None if self.true_frame is None else (self.frame - self.true_frame) / FPS


@dataclass
class LiveReport:
    """Everything a live run produced."""

    steps: list[LiveStep] = field(default_factory=list)
    events: list[SystemChange] = field(default_factory=list)
    feature_ms: list[float] = field(default_factory=list)  # per audio block: spectrogram frames computed
    wall_seconds: float = 0.0
    audio_seconds: float = 0.0
    music_start_frame: int | None = None  # where the music was found to start (when waiting for it)
    music_found_frame: int | None = None  # the frame on which that was decided

    @property
    def latencies_ms(self) -> np.ndarray:
        return np.array([step.latency_ms for step in self.steps])

    def latency_summary(self) -> dict[str, float]:
        """Mean, median, 95th percentile and maximum per-frame latency in ms."""
        values = self.latencies_ms
        if len(values) == 0:
            return {"mean_ms": math.nan, "median_ms": math.nan, "p95_ms": math.nan, "max_ms": math.nan}
        return {"mean_ms": float(values.mean()), "median_ms": float(np.median(values)),
                "p95_ms": float(np.percentile(values, 95)), "max_ms": float(values.max())}

    @property
    def silent_steps(self) -> int:
        """Steps taken on silence (the follower held its position)."""
        return sum(step.silent for step in self.steps)

    @property
    def waiting_steps(self) -> int:
        """Steps taken before the music started (the follower held its position)."""
        return sum(step.waiting for step in self.steps)

    def tracking_summary(self) -> dict[str, float] | None:
        """Mean / median error and share of steps within 170 px, if the truth was known."""
        errors = np.array([s.error for s in self.steps if s.error is not None])
        if len(errors) == 0:
            return None
        return {"mean_error_px": float(errors.mean()), "median_error_px": float(np.median(errors)),
                "tracked_share": float(np.mean(errors <= LOSS_THRESHOLD_PX))}


def live_piece(name: str, sheet: np.ndarray, coords: np.ndarray, coord2onset: dict[int, int], n_frames: int,
               *, notes: np.ndarray | None = None, score_notes: np.ndarray | None = None,
               pitches: np.ndarray | None = None, spectrogram: np.ndarray | None = None) -> Piece:
    """The environment's piece for live following: the score, a zero spectrogram of ``n_frames``, and the
    performance ``notes`` if known (the ground truth), else :func:`stand_in_notes` (with ``pitches`` if given).

    ``spectrogram``: the recording's, ``(78, n_frames)``, where it is known in advance (``sfgym render`` of a
    recording); live, the frames are computed as the audio arrives and the piece's stay zeros.
    """
    if notes is None:
        n_notes = len(pitches) if pitches is not None else max(int(v) for v in coord2onset.values()) + 1
        notes = stand_in_notes(score_notes, n_notes, n_frames, pitches=pitches)
    if spectrogram is None:
        spectrogram = np.zeros((N_SPEC_BINS, n_frames), dtype=np.float32)
    return Piece(name=name, sheet=sheet, coords=coords, coord2onset=dict(coord2onset), notes=notes,
                 spectrogram=spectrogram, source=f"live:{name}", score_notes=score_notes)


SCORE_FILE_SUFFIXES = (".xml", ".musicxml", ".mxl", ".mei", ".krn", ".abc")
"""Score files :func:`read_live_score` engraves (besides MSMD score ``.npz`` files)."""


@dataclass
class LiveScore:
    """The score side of live following, read from one file (see :func:`read_live_score`)."""

    name: str
    sheet: np.ndarray
    coords: np.ndarray
    coord2onset: dict[int, int]
    score_notes: np.ndarray | None  # notated timing, if the score has it
    pitches: np.ndarray | None  # the notes' pitches, when there is no notated timing but a performance MIDI
    system_bounds: np.ndarray  # (S, 2) system columns of the sheet


def read_live_score(path: str | Path) -> LiveScore:
    """The score in ``path``: an MSMD score ``.npz`` (a ``<name>.mid`` beside it gives the notated timing) or a
    MusicXML / MEI / kern / ABC file, engraved.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown kind of file, or one that cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: score file not found")
    if path.suffix.lower() == ".npz":
        sheet, coords, coord2onset = read_score_npz(path)
        score_midi = path.with_suffix(".mid")
        score_notes = read_midi_notes(score_midi) if score_midi.is_file() else None
        performance_midi = path.parent.parent / "performance" / f"{path.stem}.mid"  # MSMD layout
        pitches = (read_midi_notes(performance_midi)[:, 1]
                   if score_notes is None and performance_midi.is_file() else None)
        return LiveScore(path.stem, sheet, coords, coord2onset, score_notes, pitches, detect_system_bounds(sheet))
    if path.suffix.lower() in SCORE_FILE_SUFFIXES:
        engraved = engrave(path)
        return LiveScore(path.stem, engraved.sheet, engraved.coords, engraved.coord2onset, engraved.notes, None,
                         engraved.system_bounds)
    raise ValueError(f"{path}: unknown score type {path.suffix!r}; give an MSMD .npz or "
                     f"{'/'.join(SCORE_FILE_SUFFIXES)}")


def read_piece_score(files: PieceFiles) -> LiveScore:
    """The score of a built piece (its files in a split).

    ``LiveScore.pitches``: the notes' pitches from the performance MIDI when the score has no notated timing
    (MSMD score files hold no pitches; a stand-in timing for score-side followers needs them).
    """
    sheet, coords, coord2onset = read_score_npz(files.score)
    score_notes = read_midi_notes(files.score_midi) if files.score_midi is not None else None
    pitches = read_midi_notes(files.midi)[:, 1] if score_notes is None else None
    return LiveScore(files.name, sheet, coords, coord2onset, score_notes, pitches, detect_system_bounds(sheet))


def write_positions_csv(path: str | Path, steps: list[LiveStep]) -> None:
    """Write the positions of ``steps`` as CSV (atomically): ``frame, time_s, x, system, page_turn, silent``.

    ``system`` counts from 1; ``page_turn`` is 1 on the step that entered a later system, ``silent`` 1 on a
    step where the position was held (silence, or before the music started).
    """
    lines = ["frame,time_s,x,system,page_turn,silent"]
    lines += [f"{s.frame},{s.time_s:.2f},{s.x:.2f},{s.system + 1},{int(s.page_turn is not None)},"
              f"{int(s.silent or s.waiting)}" for s in steps]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


class LiveFollowing:
    """One follower following one recording live.

    Args:
        follower: the follower.
        piece: the score side (sheet, coords, coord2onset, score_notes) and the timeline (see :func:`live_piece`);
            its spectrogram is never shown to the follower.
        system_bounds: ``(S, 2)`` system columns of the sheet.
        truth_known: whether ``piece.notes`` are the recording's real timing (errors are then reported).
        seed: seeds the follower and the environment.
        hold_on_silence: on a step whose newest frame is silence (RMS below ``silence_dbfs``; the frames
            before the recording's start count as silence) the follower is not asked and holds its position,
            so that it neither drifts on silence (on-line DTW would) nor learns from it. Position and
            continuous-speed followers stop at once; discrete ones brake as fast as their actions allow.
        silence_dbfs: the silence threshold in dB relative to full scale.
        wait_for_music: hold the follower until the audio is music matching the score's opening (see the
            module's docstring); ``None`` (here the default, as in the environment) follows from the first
            sound; :meth:`for_score`, for a musician's recordings and live input, waits by default. Off where
            ``hold_on_silence`` is (the follower is then asked on every frame).
        opening_pitches: the pitches of the score's first notes, in onset order, for ``wait_for_music``
            (default: those of ``piece.score_notes``; without either only the loudness is tested).

    Feed it with :meth:`follow` (any :class:`~sfgym.live.sources.AudioSource`), :meth:`run` (a whole
    recording, paced) or push-style, as audio arrives from a sound card: :meth:`start`, then :meth:`push` per
    block (each returns the new positions), then :meth:`finish`.
    """

    def __init__(self, follower: Follower, piece: Piece, system_bounds: np.ndarray, *, truth_known: bool,
                 seed: int = 0, hold_on_silence: bool = True, silence_dbfs: float = SILENCE_DBFS,
                 wait_for_music: WaitForMusic | None = None, opening_pitches: np.ndarray | None = None):
        self.follower = follower
        self.piece = piece
        self.system_bounds = np.asarray(system_bounds, dtype=np.int64).reshape(-1, 2)
        self.truth_known = truth_known
        env_kwargs = {**getattr(follower, "env_kwargs", {}), "reward_threshold": NEVER_LOST_PX}
        self.env = MSMDFollowEnv(data=[piece], action_type=follower.action_type, **env_kwargs)
        self.spec_window = self.env.spec_window
        self.difference_channels = self.env.difference_channels
        self.seed = seed
        #: spectrogram frames computed so far (columns ``[0, frames_computed)``); grows as audio arrives
        self.spectrogram = np.zeros((N_SPEC_BINS, piece.n_frames + 8), dtype=np.float32)
        self.frames_computed = 0
        self.hold_on_silence = hold_on_silence
        self.silence_dbfs = float(silence_dbfs)
        self._silence_rms = 10.0 ** (self.silence_dbfs / 20.0)
        self._rms: list[float] = []  # per computed frame
        self.wait_for_music = wait_for_music if hold_on_silence else None
        if opening_pitches is None and piece.score_notes is not None:
            opening_pitches = np.asarray(piece.score_notes)[:, 1]
        self._opening = None if wait_for_music is None else opening_profiles(opening_pitches,
                                                                            wait_for_music.opening_notes)
        self._music: MusicStartDetector | None = None
        self._stream: StreamingSpectrogram | None = None
        self._state: dict[str, Any] | None = None
        #: what the current (or last) stream produced
        self.report = LiveReport()

    @classmethod
    def for_score(cls, score: str | Path | LiveScore, follower: Follower, *, max_seconds: float, seed: int = 0,
                  performance_notes: np.ndarray | None = None,
                  wait_for_music: WaitForMusic | None = WaitForMusic(), **kwargs) -> LiveFollowing:
        """Live following of a performance of ``score`` (a file for :func:`read_live_score`, or one read).

        ``max_seconds``: the longest the performance may last; the follower's timeline ends there (later
        audio is ignored). ``performance_notes``: the performance's own notes, when it is a built piece's
        (``(onset s, pitch, duration s)`` rows from its MIDI): the ground truth, so errors are reported, and
        the timeline lasts at least to the last onset. Without them (a user's recording) the positions are
        the follower's alone. ``wait_for_music``: wait for music that matches the score's opening before
        following (default :class:`~sfgym.live.music_start.WaitForMusic`'s settings; ``None``: follow from the
        first sound). ``kwargs``: those of the constructor (``hold_on_silence``, ``silence_dbfs``).
        """
        if not max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0, got {max_seconds!r}")
        if not isinstance(score, LiveScore):
            score = read_live_score(score)
        n_frames = int(math.ceil(max_seconds * FPS))
        if performance_notes is not None:
            n_frames = max(n_frames, int(np.floor(performance_notes[:, 0].max() * FPS)) + 1)
        piece = live_piece(score.name, score.sheet, score.coords, score.coord2onset, n_frames,
                           notes=performance_notes, score_notes=score.score_notes, pitches=score.pitches)
        # the opening's pitches: the constructor takes them from the piece's notated timing, else these
        return cls(follower, piece, score.system_bounds, truth_known=performance_notes is not None, seed=seed,
                   wait_for_music=wait_for_music, opening_pitches=score.pitches, **kwargs)

    # ------------------------------------------------------------------ observation
    def spectrogram_window(self, frame: int) -> np.ndarray:
        """Frames ``frame - spec_window .. frame - 1`` of the computed spectrogram, zeros before frame 0."""
        if frame > self.frames_computed:
            raise RuntimeError(f"frame {frame - 1} is needed but only {self.frames_computed} frames have arrived")
        return self.env.geometry.spectrogram_window(self.spectrogram, frame)  # the environment's own window

    # ------------------------------------------------------------------ feeding (push)
    def start(self, sample_rate: int) -> None:
        """Begin following a stream of ``sample_rate`` samples per second (resets the follower and the report)."""
        self._stream = StreamingSpectrogram(sample_rate)
        self.report = LiveReport()
        self.frames_computed = 0
        self._rms = []
        self._silent_run = 0
        self._warned_silence = False
        self._music = (None if self.wait_for_music is None
                       else MusicStartDetector(self.wait_for_music, self._opening, self._silence_rms))
        self.follower.reset(self.piece, seed=self.seed)
        observation, info = self.env.reset(seed=self.seed, options={"piece": self.piece.name})
        self._state = {"observation": observation, "info": info, "over": False, "previous_window": None,
                       "music_heard": False, "reached": system_index(self.system_bounds, info["follower_x"])}

    @property
    def over(self) -> bool:
        """Whether the piece's timeline has ended (further audio is ignored)."""
        return self._state is not None and self._state["over"]

    def push(self, samples: np.ndarray) -> list[LiveStep]:
        """Feed the next block of mono samples; return the steps (positions) it completed, oldest first.

        Call :meth:`start` first, and :meth:`finish` after the last block.
        """
        return self._feed(samples, last=False)

    def finish(self) -> list[LiveStep]:
        """End of the stream: the last frames (the end zero-padded, as offline) and the steps they complete."""
        return self._feed(None, last=True)

    def _feed(self, samples: np.ndarray | None, last: bool) -> list[LiveStep]:
        if self._stream is None:
            raise RuntimeError("call start(sample_rate) before push() / finish()")
        if self.over:  # the timeline has ended: nothing more to compute
            if last:
                self._stream = None
            return []
        arrival = time.perf_counter()
        frames = self._stream.push(samples) if samples is not None else self._stream.finish()
        self._add_frames(frames, self._stream.frame_rms[len(self._rms):])
        self.report.feature_ms.append(1000.0 * (time.perf_counter() - arrival))
        self.report.audio_seconds = self._stream.samples_received / self._stream.params.sample_rate
        steps = self._step_while_ready(arrival, self.report.audio_seconds)
        if last:
            self._stream = None
        return steps

    def _add_frames(self, frames: np.ndarray, rms: list[float]) -> None:
        k = frames.shape[1]
        end = self.frames_computed + k
        if end > self.spectrogram.shape[1]:
            grown = np.zeros((N_SPEC_BINS, max(end, 2 * self.spectrogram.shape[1])), dtype=np.float32)
            grown[:, : self.frames_computed] = self.spectrogram[:, : self.frames_computed]
            self.spectrogram = grown
        self.spectrogram[:, self.frames_computed : end] = frames
        self._rms.extend(rms)
        self.frames_computed = end
        if self._music is not None and not self._music.started:
            for column, loudness in zip(frames.T, rms):
                if self._music.add(column, loudness):
                    self.report.music_start_frame = self._music.start_frame
                    self.report.music_found_frame = self._music.found_at
                    break

    def music_started_by(self, frame: int) -> bool:
        """Whether the music had been found to start by spectrogram frame ``frame`` (always, when not waiting)."""
        return self._music is None or (self._music.found_at is not None and self._music.found_at <= frame)

    def _follower_window(self, frame: int) -> np.ndarray:
        """The spectrogram window the follower sees at ``frame``: the frames before the music's start as
        zeros (silence), with the difference channels if the follower takes them."""
        window = self.spectrogram_window(frame)
        start = 0 if self._music is None or self._music.start_frame is None else self._music.start_frame
        before_start = int(np.clip(start - (frame - window.shape[-1]), 0, window.shape[-1]))
        if before_start:
            window = window.copy()
            window[..., :before_start] = 0.0
        if self.difference_channels:
            state = self._state
            previous = window if state["previous_window"] is None else state["previous_window"]
            state["previous_window"] = window
            window = np.concatenate([window, window - previous])
        return window

    def _catch_up(self, frame: int) -> None:
        """The music was found late (up to ``sustain_s``): give the follower the frames since its start,
        up to the one before ``frame``, so that it follows from the first note (its answers are dropped)."""
        state = self._state
        start = self._music.start_frame
        state["previous_window"] = None
        for earlier in range(start + 1, frame):
            window = self._follower_window(earlier)
            if not self.is_silent(earlier - 1):
                self.follower.act({**state["observation"], "spectrogram": window}, state["info"])

    def is_silent(self, frame: int) -> bool:
        """Whether spectrogram frame ``frame`` is silence (RMS below ``silence_dbfs``); before the start, yes."""
        return frame < 0 or self._rms[frame] < self._silence_rms

    # ------------------------------------------------------------------ following a source
    def follow(self, source: AudioSource, *, on_step: Callable[[LiveStep], None] | None = None,
               on_event: Callable[[SystemChange], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> LiveReport:
        """Follow ``source`` block by block as its blocks arrive (:meth:`push` each, :meth:`finish` at its end).

        Args:
            source: the audio (resampled on the fly to 22.05 kHz if its rate differs).
            on_step, on_event: called after every step / system change (printing, drawing).
            should_stop: polled once per block; ``True`` ends the run early (e.g. a closed window).

        Returns:
            the report; its ``audio_seconds`` is the audio fed (all of it, unless stopped early).
        """
        self.start(source.sample_rate)
        started = time.perf_counter()
        samples_fed = 0
        blocks = source.blocks()
        try:
            for block in blocks:
                samples_fed += len(block)
                self._announce(self.push(block), on_step, on_event)
                if self.over or (should_stop is not None and should_stop()):
                    break
            else:
                self._announce(self.finish(), on_step, on_event)
        finally:  # also when interrupted (Ctrl-C): the source is closed (a sound card's stream with it) and the
            # report holds what was followed
            if hasattr(blocks, "close"):
                blocks.close()
            self.report.audio_seconds = samples_fed / source.sample_rate
            self.report.wall_seconds = time.perf_counter() - started
        return self.report

    def run(self, audio: np.ndarray, sample_rate: int, *, speed: float = 1.0, block_size: int = DEFAULT_BLOCK_SIZE,
            on_step: Callable[[LiveStep], None] | None = None,
            on_event: Callable[[SystemChange], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> LiveReport:
        """Follow a whole recording fed as if live: :meth:`follow` of a :class:`~sfgym.live.sources.RecordingSource`.

        Args:
            audio: the recording, 1-D (float in [-1, 1] or integer PCM).
            sample_rate: its rate (resampled on the fly to 22.05 kHz if different).
            speed: 1 feeds the audio at its own pace (block ``i`` arrives when it would from a sound
                card), 2 twice as fast, 0 as fast as possible.
            block_size: samples per block (512 at 22.05 kHz: 23 ms, a usual audio buffer).
            on_step, on_event, should_stop: as for :meth:`follow`.
        """
        source = RecordingSource(audio, sample_rate, speed=speed, block_size=block_size)
        return self.follow(source, on_step=on_step, on_event=on_event, should_stop=should_stop)

    @staticmethod
    def _announce(steps: list[LiveStep], on_step: Callable[[LiveStep], None] | None,
                  on_event: Callable[[SystemChange], None] | None) -> None:
        """Tell the callbacks of ``steps`` (a step's system change before the step itself)."""
        for step in steps:
            if step.page_turn is not None and on_event is not None:
                on_event(step.page_turn)
            if on_step is not None:
                on_step(step)

    # ------------------------------------------------------------------ stepping
    def _hold_action(self, info: dict) -> Any:
        """The action that keeps the follower where it is (as near as the action space allows)."""
        speed = float(info["speed"])
        if self.env.action_type == "position":
            return np.array([info["follower_x"] / self.piece.sheet_width])
        if self.env.action_type == "continuous":
            return np.array([-speed], dtype=np.float32)
        return int(np.argmin([abs(speed + change) for change in self.env.actions]))  # discrete: brake

    def _step_while_ready(self, arrival: float, audio_time_s: float) -> list[LiveStep]:
        state = self._state
        steps = []
        while not state["over"] and self.frames_computed >= state["info"]["frame"]:
            frame = state["info"]["frame"]
            # the newest frame the observation shows is frame - 1: before the music, or silent, the follower
            # is not asked and holds
            waiting = not self.music_started_by(frame - 1)
            if not waiting and not state["music_heard"]:
                state["music_heard"] = True
                if self._music is not None:
                    self._catch_up(frame)
            window = self._follower_window(frame)
            silent = self.hold_on_silence and self.is_silent(frame - 1)
            self._note_silence(silent)
            if silent or waiting:
                action = self._hold_action(state["info"])
            else:
                action = self.follower.act({**state["observation"], "spectrogram": window}, state["info"])
            state["observation"], _, terminated, truncated, state["info"] = self.env.step(action)
            state["over"] = terminated or truncated
            info = state["info"]
            latency_ms = 1000.0 * (time.perf_counter() - arrival)
            system = system_index(self.system_bounds, info["follower_x"])
            step = LiveStep(frame=info["frame"], x=float(info["follower_x"]), system=system,
                            audio_time_s=audio_time_s, latency_ms=latency_ms,
                            true_x=float(info["true_x"]) if self.truth_known else None, silent=silent,
                            waiting=waiting)
            if system > state["reached"]:
                step.page_turn = SystemChange(frame=step.frame, from_system=state["reached"], to_system=system,
                                              audio_time_s=audio_time_s, latency_ms=latency_ms,
                                              true_frame=self._true_crossing(system))
                state["reached"] = system
                self.report.events.append(step.page_turn)
            self.report.steps.append(step)
            steps.append(step)
        return steps

    def _note_silence(self, silent: bool) -> None:
        """Warn once when the input has been silent for :data:`SILENCE_WARNING_S` in a row."""
        self._silent_run = self._silent_run + 1 if silent else 0
        if not self._warned_silence and self._silent_run >= SILENCE_WARNING_S * FPS:
            self._warned_silence = True
            warnings.warn(SilentInputWarning(
                f"the input has been silent (RMS below {self.silence_dbfs:g} dBFS) for {SILENCE_WARNING_S:g} s: "
                "is the right input connected? The follower holds its position while it is silent"), stacklevel=5)

    def _true_crossing(self, system: int) -> int | None:
        if not self.truth_known:
            return None
        crossed = np.flatnonzero(self.piece.true_x >= self.system_bounds[system, 0])
        return int(crossed[0]) if len(crossed) else None

    def close(self) -> None:
        self.env.close()


__all__ = ["SCORE_FILE_SUFFIXES", "SILENCE_DBFS", "SILENCE_WARNING_S", "LiveFollowing", "LiveReport", "LiveScore",
           "LiveStep", "SilentInputWarning", "SystemChange", "live_piece", "read_live_score", "read_piece_score",
           "write_positions_csv"]
