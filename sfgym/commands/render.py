"""``sfgym render``: watch several followers follow one piece side by side, live or into a video."""

from __future__ import annotations

import argparse
from pathlib import Path

def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "render", help="show followers side by side on one piece (pygame window or mp4 video)",
        description="Every follower follows the same performance at once (one environment each). The view shows "
        "the score around the true position with one marker per follower, the current system strip, the "
        "scrolling spectrogram and each follower's error and tracked/lost state. In a window it plays in real "
        "time (space: pause, right arrow: step while paused / +5 s, left arrow: -5 s, esc: quit). With --video, "
        "or headless (SDL_VIDEODRIVER=dummy), the frames go into an mp4, with the performance's audio muxed in "
        "when ffmpeg (or the imageio-ffmpeg package) is available. Instead of a --piece of a dataset, --score and "
        "--audio render a recording of a score (both read as 'sfgym follow' reads them); without a ground truth "
        "the view shows no true position and no errors.")
    from sfgym.data.audio import AUDIO_FORMATS_HELP
    from sfgym.followers import follower_descriptions
    from sfgym.threads import add_torch_threads_argument

    parser.add_argument("--agents", required=True,
                        help=f"comma-separated followers: by name ({', '.join(follower_descriptions())}), "
                        ".pt / .zip checkpoints, each optionally as LABEL=SPEC (see 'sfgym agents')")
    shown = parser.add_mutually_exclusive_group(required=True)
    shown.add_argument("--piece", help="the piece's name (as in 'sfgym data info')")
    shown.add_argument("--score", type=Path, help="a score file, as for 'sfgym follow' (MSMD score .npz or "
                       "MusicXML/MEI/kern/ABC), with --audio")
    parser.add_argument("--audio", type=Path, help=f"with --score: the recording ({AUDIO_FORMATS_HELP})")
    parser.add_argument("--data", type=Path, help="dataset root or split (default: the default dataset)")
    parser.add_argument("--split", help="split to look in (default: every split of --data)")
    parser.add_argument("--video", type=Path, help="write an mp4 instead of (or, with a window, as well as) playing")
    parser.add_argument("--speed", type=float,
                        help="playback speed: 1 = real time (20 frames per second of audio), 0 = as fast as "
                        "possible (video export only) (default: 1 in a window, 0 when headless)")
    parser.add_argument("--max-seconds", type=float, help="video: stop after this many seconds of the piece")
    parser.add_argument("--no-audio", action="store_true", help="no sound in the window, a silent video")
    parser.add_argument("--score-speed", type=float, metavar="PX_PER_S",
                        help="for pieces without a score MIDI: the stand-in notated tempo of constant_tempo / "
                        "online_dtw (default: the median of the train split next to the piece)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the followers and environments (default 0)")
    add_torch_threads_argument(parser)
    parser.add_argument("--still", type=Path, metavar="PNG",
                        help="save the frame at --still-at seconds as a PNG (e.g. for a README); headless "
                        "without --video, only the still is made")
    parser.add_argument("--still-at", type=float, default=20.0, help="time of the --still frame in seconds (default 20)")
    parser.set_defaults(func=run)


def make_followers(agents: str, piece, split_dir: Path | None, score_speed: float | None) -> list[tuple[str, object]]:
    """``(label, follower)`` for each comma-separated spec; score-side baselines get a stand-in tempo if needed."""
    from sfgym.evaluation import AgentSpec
    from sfgym.followers import make_follower
    from sfgym.score.timing import stand_in_tempo

    specs = [AgentSpec.parse(text) for text in agents.split(",") if text.strip()]
    if not specs:
        raise ValueError("--agents: no follower given")
    tempo = stand_in_tempo([(spec.label, spec.spec) for spec in specs], timing_missing=piece.score_notes is None,
                           score_speed=score_speed, split_dir=split_dir, score_name=piece.name)
    return [(spec.label, make_follower(spec.spec, **tempo.get(spec.label, {}))) for spec in specs]


def run(args: argparse.Namespace) -> int:
    from sfgym.data.audio import performance_audio
    from sfgym.data.lookup import find_piece_files
    from sfgym.data.msmd import load_piece
    from sfgym.data.systems import system_bounds_of
    from sfgym.rendering.player import export_video, headless, play_interactive
    from sfgym.rendering.session import SideBySideSession
    from sfgym.rendering.view import SideBySideView, surface_rgb

    no_display = headless()
    if no_display and args.video is None and args.still is None:
        raise ValueError("no display (SDL_VIDEODRIVER is dummy/offscreen): give --video out.mp4 to write the "
                         "frames (or --still out.png for one frame)")
    speed = args.speed if args.speed is not None else (0.0 if no_display else 1.0)
    if speed < 0:
        raise ValueError(f"--speed must be >= 0, got {speed}")
    if speed == 0 and args.video is None and not no_display:
        raise ValueError("--speed 0 renders as fast as possible and is for video export: give --video")

    wants_sound = (args.video is not None or not no_display) and not args.no_audio
    if args.piece is not None:
        files = find_piece_files(args.piece, args.data, args.split)
        piece = load_piece(files)
        bounds, split_dir, truth_known = system_bounds_of(piece), files.split_dir, True
        recording = performance_audio(files) if wants_sound else None
    else:
        if args.audio is None:
            raise ValueError("--score needs the recording to render: --audio FILE")
        piece, bounds, recording = _recording_piece(args.score, args.audio)
        split_dir, truth_known = None, False
    followers = make_followers(args.agents, piece, split_dir, args.score_speed)
    session = SideBySideSession(piece, followers, seed=args.seed, truth_known=truth_known)
    view = SideBySideView(piece.name, piece.sheet, piece.spectrogram, session.labels, bounds,
                          fps=piece.fps, threshold=session.threshold, end_frame=session.end_frame,
                          observed_frames=session.observed_frames)
    audio = None
    if wants_sound:
        samples, rate, source = recording
        audio = (samples, rate)
        print(f"audio: {source}")
    try:
        if args.still is not None:
            _save_still(view, session, args.still, args.still_at, surface_rgb)
        if args.video is not None:
            max_frames = None if args.max_seconds is None else int(round(args.max_seconds * piece.fps)) + 1
            report = export_video(session, view, args.video, speed=speed, audio=audio, window=not no_display,
                                  max_frames=max_frames)
            print(f"{report.message}; {report.frames} frames ({report.frames / piece.fps:.1f} s of the piece) "
                  f"in {report.seconds:.1f} s, {report.ms_per_frame:.1f} ms/frame")
        elif not no_display:
            play_interactive(session, view, speed=speed, audio=audio)
    finally:
        session.close()
    return 0


def _recording_piece(score_path: Path, audio_path: Path):
    """``(piece, system bounds, (samples, rate, source))`` of a recording of a score, for rendering.

    The score is read as ``sfgym follow`` reads it, the spectrogram is the recording's, and the performance
    timing is a stand-in (:func:`sfgym.live.live_piece`): there is no ground truth.
    """
    from sfgym.data.audio import read_audio
    from sfgym.data.spectrogram import spectrogram_from_audio
    from sfgym.live import live_piece, read_live_score

    score = read_live_score(score_path)
    samples, rate = read_audio(audio_path)
    spectrogram = spectrogram_from_audio(samples, rate)
    piece = live_piece(score.name, score.sheet, score.coords, score.coord2onset, spectrogram.shape[1],
                       score_notes=score.score_notes, pitches=score.pitches, spectrogram=spectrogram)
    return piece, score.system_bounds, (samples, rate, str(audio_path))


def _save_still(view, session, path: Path, at_seconds: float, surface_rgb) -> None:
    import cv2

    from sfgym.files import atomic_write_bytes

    frame = int(round(at_seconds * session.piece.fps))
    rgb = surface_rgb(view.draw(session.state(frame)))
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise ValueError(f"{path}: could not encode the still as PNG")
    atomic_write_bytes(path, png.tobytes())
    print(f"still: {path} (frame {min(frame, session.end_frame)})")
