"""``sfgym follow``: follow the microphone, or a recording as if it were live, printing the position and page turns."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

# Like every command module, this one imports the rest of sfgym when the command runs, not when the command
# line builds its parser: `sfgym --help` and the other commands start in a third of the time.


def register(subparsers) -> None:
    from sfgym.data.audio import AUDIO_FORMATS_HELP
    from sfgym.live import SILENCE_DBFS
    from sfgym.threads import add_torch_threads_argument

    parser = subparsers.add_parser(
        "follow", help="follow the microphone (--live) or an audio file: position, page turns, per-frame latency",
        description="Follow the sound card's input (--live, --input-device) or feed a recording to a follower as "
        "if it came from a sound card: blocks at the audio's own "
        "pace, each spectrogram frame computed as soon as its samples arrive (causally), the follower stepped as "
        "soon as its observation is complete. Prints the position, emits page-turn (system-change) events with "
        "their latency, and ends with the per-frame latency (feature extraction + follower step). The score is "
        "--score (an MSMD score .npz, or a MusicXML/MEI/kern/ABC file, engraved) or the score of a built "
        "--piece; with --piece and no AUDIO the piece's own performance is followed and errors are reported. On silent "
        "frames, and before music that matches the score's opening, the follower holds its position; --positions "
        "writes every position as CSV, --record DIR keeps the whole session.")
    parser.add_argument("audio", nargs="?", type=Path,
                        help=f"the recording ({AUDIO_FORMATS_HELP}); default: --piece's own")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--score", type=Path, help="MSMD score .npz (score/<name>.npz; a <name>.mid beside it "
                        "gives the notated timing) or a score file (.xml/.musicxml/.mxl/.mei/.krn/.abc)")
    source.add_argument("--piece", help="a piece of the dataset (as in 'sfgym data info')")
    parser.add_argument("--data", type=Path, help="dataset root or split for --piece (default: the default dataset)")
    parser.add_argument("--split", help="split to look in (default: every split of --data)")
    parser.add_argument("--agent", default=None,
                        help="the follower: a name (a baseline, or a shipped follower such as pretrained) or a .pt / .zip "
                        "checkpoint (default: online_dtw; "
                        "'sfgym agents' lists them)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="1 feeds the audio in real time (default), 2 twice as fast, 0 as fast as possible")
    parser.add_argument("--print-every", type=float, default=1.0, metavar="SECONDS",
                        help="print the position every this many seconds of audio (default 1; 0: every frame)")
    parser.add_argument("--show", action="store_true", help="also show the follower in a pygame window")
    parser.add_argument("--score-speed", type=float, metavar="PX_PER_S",
                        help="stand-in notated tempo for score-side followers when the score has no timing")
    parser.add_argument("--seed", type=int, default=0, help="seed of the follower and environment (default 0)")
    parser.add_argument("--positions", type=Path, metavar="CSV",
                        help="also write the positions as CSV for other programs: frame, time_s, x, system "
                        "(from 1), page_turn (1 on a page turn), silent (1 where the position was held)")
    parser.add_argument("--live", action="store_true",
                        help="follow the sound card's input (the default input device) instead of a file; Ctrl-C stops")
    parser.add_argument("--input-device", metavar="N|NAME",
                        help="follow this input device (its number, or part of its name, in --list-devices); "
                        "implies --live")
    parser.add_argument("--list-devices", action="store_true", help="list the audio input devices and exit")
    parser.add_argument("--max-minutes", type=float, default=60.0,
                        help="live: the longest a session lasts (default 60)")
    parser.add_argument("--no-wait-for-music", dest="wait_for_music", action="store_false",
                        help="follow from the first sound (by default, on --live input and an AUDIO file, the follower "
                        "waits until the audio is music that matches the score's opening: room noise and talking "
                        "before it do not move it; a --piece's own performance, like evaluation, is followed at once)")
    parser.add_argument("--record", type=Path, metavar="DIR",
                        help="keep the session in DIR (a new directory): take.wav (the audio as heard), positions.csv, "
                        "page_turns.csv and the score, importable with 'sfgym data import --score DIR/score.* "
                        "--performance DIR/take.wav'")
    parser.add_argument("--no-hold-on-silence", dest="hold_on_silence", action="store_false",
                        help="ask the follower on silent frames too (by default it holds its position there: "
                        "on silence on-line DTW drifts)")
    parser.add_argument("--silence-dbfs", type=float, default=SILENCE_DBFS, metavar="DB",
                        help=f"frames quieter than this (RMS, dB full scale) are silence (default {SILENCE_DBFS:g})")
    add_torch_threads_argument(parser)
    parser.set_defaults(func=run)


def _score_side(args: argparse.Namespace):
    """``(LiveScore, piece files or None)``: the score of ``--score``, or of ``--piece`` with the piece's files."""
    from sfgym.data.lookup import find_piece_files
    from sfgym.live import read_live_score, read_piece_score

    if args.piece is None:
        return read_live_score(args.score), None
    files = find_piece_files(args.piece, args.data, args.split)
    return read_piece_score(files), files


def _rms_dbfs(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * np.log10(rms) if rms > 0 else -np.inf


def run(args: argparse.Namespace) -> int:
    from sfgym.live import LiveInputError

    try:
        return _run(args)
    except LiveInputError as error:  # no PortAudio, no such device: said in one line, not traced
        print(f"sfgym follow: {error}", file=sys.stderr)
        return 1


def _input_source(args: argparse.Namespace, files):
    """``(source, performance notes or None)``: the sound card, the AUDIO file, or the piece's own performance."""
    from sfgym.data.audio import performance_audio
    from sfgym.data.msmd import read_midi_notes
    from sfgym.live import RecordingSource, SoundCardSource

    if args.live:
        return SoundCardSource(args.input_device), None
    if args.audio is not None:
        return RecordingSource.from_file(args.audio, speed=args.speed), None
    samples, rate, audio_name = performance_audio(files)  # the piece's own performance: its MIDI is the truth
    return RecordingSource(samples, rate, speed=args.speed, name=audio_name), read_midi_notes(files.midi)


def _run(args: argparse.Namespace) -> int:
    from sfgym.commands import check_output_path
    from sfgym.data.piece import FPS
    from sfgym.envs.geometry import LOSS_THRESHOLD_PX
    from sfgym.followers import make_follower
    from sfgym.live import LiveFollowing, SilentInputWarning, WaitForMusic, list_input_devices, write_positions_csv
    from sfgym.live.record import SessionRecorder
    from sfgym.score.timing import stand_in_tempo

    if args.list_devices:
        devices = list_input_devices()
        print("\n".join(str(device) for device in devices) if devices else "no audio input device found")
        return 0
    args.live = args.live or args.input_device is not None
    if args.score is None and args.piece is None:
        raise ValueError("give the score to follow: --score FILE or --piece NAME")
    if args.speed < 0:
        raise ValueError(f"--speed must be >= 0, got {args.speed}")
    if args.live and args.audio is not None:
        raise ValueError("give either an AUDIO file or --live (the sound card), not both")
    if not args.live and args.audio is None and args.piece is None:
        raise ValueError("give the AUDIO file to follow (or --piece NAME to follow a piece's own performance)")
    if args.positions is not None:
        check_output_path(args.positions, "--positions", directory=False)
    if args.record is not None and args.record.exists():
        raise ValueError(f"--record {args.record} exists: give a new directory for the session")
    score, files = _score_side(args)
    source, performance_notes = _input_source(args, files)
    # a built piece's own performance is followed as evaluation follows it, from its first frame
    wait_for_music = args.wait_for_music and args.hold_on_silence and performance_notes is None
    if not args.live:
        loudness = _rms_dbfs(source.samples)
        if loudness < args.silence_dbfs:
            hold = "holds its position" if args.hold_on_silence else "is asked all the same (--no-hold-on-silence)"
            print(f"warning: {source.name} is silent (RMS {loudness:.1f} dBFS, below {args.silence_dbfs:g}): there "
                  f"is nothing to follow; the follower {hold}", file=sys.stderr)

    spec = args.agent or "online_dtw"
    tempo = stand_in_tempo([(spec, spec)], timing_missing=score.score_notes is None, score_speed=args.score_speed,
                           score_name=score.name)
    follower = make_follower(spec, **tempo.get(spec, {}))
    duration_s = 60.0 * args.max_minutes if args.live else source.duration_s
    live = LiveFollowing.for_score(score, follower, max_seconds=duration_s, seed=args.seed,
                                   performance_notes=performance_notes, hold_on_silence=args.hold_on_silence,
                                   silence_dbfs=args.silence_dbfs,
                                   wait_for_music=WaitForMusic() if wait_for_music else None)
    bounds = score.system_bounds
    pace = ("live: Ctrl-C stops" if args.live else "real time" if args.speed == 1
            else "as fast as possible" if args.speed == 0 else f"x{args.speed:g}")
    length = "" if args.live else f" ({source.duration_s:.1f} s)"
    print(f"following {source.name}{length} in {score.name}: {len(bounds)} systems, follower {spec}, {pace}")
    if wait_for_music:
        print("waiting for the music (the score's opening) before following; --no-wait-for-music follows at once")
    sys.stdout.flush()
    printer = _Printer(args.print_every, len(bounds))
    window = _Window(live, score.name, spec, bounds) if args.show else None
    score_file = args.score if args.score is not None else files.score
    recorder = SessionRecorder(args.record, score_file, source.sample_rate) if args.record is not None else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SilentInputWarning)  # silence is reported below, once
            on_step = (lambda step: (printer.step(step), window.show(step))) if window else printer.step
            # The follower runs on this (the main) thread; a sound card's callback, on PortAudio's thread, only
            # queues its blocks. So Ctrl-C reaches the follower's loop here, and --show's window (pygame wants the
            # main thread) is drawn where the positions are made.
            try:
                report = live.follow(recorder.listen(source) if recorder else source, on_step=on_step,
                                     on_event=printer.event, should_stop=window.closed if window else None)
            except KeyboardInterrupt:
                report = live.report  # what was followed until then
                print("stopped (Ctrl-C)")
    except BaseException:
        if recorder is not None:
            recorder.abandon()
        raise
    finally:
        live.close()
        if window is not None:
            window.close()

    latency = report.latency_summary()
    feature = np.array(report.feature_ms) if report.feature_ms else np.array([np.nan])
    print(f"done: {len(report.steps)} frames in {report.wall_seconds:.1f} s for {report.audio_seconds:.1f} s of "
          f"audio; {len(report.events)} page turns")
    if args.live and getattr(source, "dropped_blocks", 0):
        print(f"warning: {source.dropped_blocks} audio blocks were dropped (the follower fell behind the sound card)",
              file=sys.stderr)
    if report.music_start_frame is not None:
        print(f"the music started at t={report.music_start_frame / FPS:.2f} s (found at "
              f"t={report.music_found_frame / FPS:.2f} s); before it the follower held its start position")
    elif wait_for_music and report.steps:
        print("no music matching the score's opening was heard: the follower held its start position "
              "(--no-wait-for-music follows from the first sound)")
    if report.silent_steps:
        print(f"{report.silent_steps} of {len(report.steps)} frames ({report.silent_steps / FPS:.1f} s) were silent "
              f"(below {args.silence_dbfs:g} dBFS): the follower held its position there")
    print(f"per-frame latency (audio block arrival -> follower position), ms: mean {latency['mean_ms']:.2f}, "
          f"median {latency['median_ms']:.2f}, p95 {latency['p95_ms']:.2f}, max {latency['max_ms']:.2f}; "
          f"feature extraction alone {feature.mean():.2f} ms per block")
    tracking = report.tracking_summary()
    if tracking is not None:
        print(f"against the ground truth: mean error {tracking['mean_error_px']:.1f} px, median "
              f"{tracking['median_error_px']:.1f} px, {100 * tracking['tracked_share']:.1f} % of frames within {LOSS_THRESHOLD_PX:g} px")
    if args.positions is not None:
        write_positions_csv(args.positions, report.steps)
        print(f"positions: {args.positions} ({len(report.steps)} rows)")
    if recorder is not None:
        kept = recorder.finish(report)
        kept_score = kept / f"score{score_file.suffix}"
        print(f"session kept in {kept}; import it as a piece with: sfgym data import --score {kept_score} "
              f"--performance {kept / 'take.wav'} --out DIR")
    return 0


class _Printer:
    """Prints the position every ``every`` seconds of audio and every page turn."""

    def __init__(self, every: float, n_systems: int):
        self.every = every
        self.n_systems = n_systems
        self._next = 0.0

    def step(self, step) -> None:
        from sfgym.data.piece import FPS

        time_s = step.frame / FPS
        if time_s + 1e-9 < self._next:
            return
        self._next = time_s + self.every
        error = "" if step.error is None else f"  error {step.error:6.1f} px"
        print(f"  t={time_s:7.2f} s  x={step.x:8.1f} px  system {step.system + 1}/{self.n_systems}"
              f"{error}  ({step.latency_ms:.1f} ms)")

    def event(self, event) -> None:
        from sfgym.data.piece import FPS

        truth = "" if event.delay_s is None else f", {event.delay_s:+.2f} s after the true position"
        print(f"PAGE TURN  system {event.from_system + 1} -> {event.to_system + 1} at t={event.frame / FPS:.2f} s "
              f"(latency {event.latency_ms:.1f} ms{truth})")
        sys.stdout.flush()


class _Window:
    """``--show``: the side-by-side view with the one follower, updated every step."""

    def __init__(self, live, name: str, label: str, bounds):
        from sfgym.rendering.view import SideBySideView

        import pygame

        self._pygame = pygame
        self.view = SideBySideView(name, live.piece.sheet, live.spectrogram, [label], bounds,
                                   end_frame=live.piece.last_onset_frame, observed_frames=live.spec_window)
        self.live = live
        pygame.display.init()
        pygame.display.set_caption(f"sfgym follow: {name}")
        self.screen = pygame.display.set_mode((self.view.layout.width, self.view.layout.height))
        self._closed = False

    def show(self, step) -> None:
        from sfgym.rendering.view import STATUS_TRACKING, AgentFrame, FrameState

        self.view.spectrogram = self.live.spectrogram  # the buffer may have been re-allocated as it grew
        agent = AgentFrame(self.view.labels[0], step.x, step.error, STATUS_TRACKING)
        state = FrameState(frame=step.frame, true_x=step.true_x, agents=[agent])
        self.screen.blit(self.view.draw(state, status="live"), (0, 0))
        self._pygame.display.flip()
        for event in self._pygame.event.get():
            if event.type == self._pygame.QUIT or (event.type == self._pygame.KEYDOWN and event.key == self._pygame.K_ESCAPE):
                self._closed = True

    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._pygame.display.quit()
