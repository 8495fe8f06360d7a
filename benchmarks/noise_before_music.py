"""Noise before the music: does a follower stay at the start until the first note, and follow as well after?

    python benchmarks/noise_before_music.py [--data DIR] [--agents online_dtw,pretrained] [--noise-s 60]
                                            [--dbfs -50] [--no-wait]

Each piece's performance is followed as ``sfgym follow`` follows a file (:class:`sfgym.live.LiveFollowing`,
as fast as possible), alone and after ``--noise-s`` of noise at ``--dbfs`` (RMS): *room* noise (pink noise,
an air conditioner's hum at 50 Hz and its harmonics), *hiss* (white noise: a distant microphone turned up)
and *speech* (``espeak-ng`` reading a text, if installed,
else noise bursts band-passed to the voice's range at a syllable rate). Printed per follower and noise:

- ``turns before``: page turns before the first note (pieces with any / all turns);
- ``moved``: how far the position moved from the start before the first note (px; the most of any piece);
- ``TR alone`` / ``TR after noise``: the share of frames from the first note on within 170 px of the truth;
- ``start found``: how late after the first note the music was found (median, max; a negative time is a
  false start, in the noise).

The pieces: the MSMD sample of the tests (its score has no notated timing: a stand-in 70 px/s) and every
piece under ``--data`` (e.g. a dataset built by ``sfgym data build --max-pieces 6 --out DIR``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile
import soxr

REPO = Path(__file__).resolve().parent.parent
SAMPLE_SPLIT = REPO / "tests" / "fixtures" / "msmd_sample"
RATE = 22050
SPEECH_TEXT = ("Good evening, and thank you for coming. Tonight we begin with a short piece, and after that "
               "there will be a few words about the composer, his life and his time in the city. ") * 4


def scaled_to_dbfs(audio: np.ndarray, dbfs: float) -> np.ndarray:
    """``audio`` with RMS ``dbfs`` dB full scale."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return (audio * (10.0 ** (dbfs / 20.0) / rms)).astype(np.float32)


def room_noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Pink noise and a 50 Hz hum with harmonics: a room with a fan."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0))  # 1/f power
    pink = np.fft.irfft(spectrum, n)
    t = np.arange(n) / RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3))
    return (pink / pink.std() + 0.3 * hum).astype(np.float32)


def speech(seconds: float, seed: int = 0) -> tuple[np.ndarray, str]:
    """``espeak-ng`` reading a text (looped to ``seconds``), else voice-band noise bursts; and which."""
    n = int(seconds * RATE)
    if shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as folder:
            wav = Path(folder) / "speech.wav"
            subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), SPEECH_TEXT], check=True)
            voice, rate = soundfile.read(str(wav), dtype="float32")
        voice = soxr.resample(voice, rate, RATE)
        return np.resize(voice, n).astype(np.float32), "espeak-ng"
    rng = np.random.default_rng(seed)
    sos = scipy.signal.butter(4, [200, 3000], btype="band", fs=RATE, output="sos")
    voice = scipy.signal.sosfilt(sos, rng.standard_normal(n))
    syllable_rate = np.sin(2 * np.pi * 4.0 * np.arange(n) / RATE) > 0.3  # four syllables a second
    talking = (rng.random(n // RATE + 1) > 0.3).repeat(RATE)[:n]  # pauses between words
    syllables = syllable_rate * talking
    return (voice * syllables).astype(np.float32), "band-passed noise bursts"


def pieces(data: Path | None) -> list:
    """The pieces' files: the MSMD sample, then every piece under ``data``."""
    from sfgym.data.lookup import find_piece_files
    from sfgym.data.msmd import list_pieces

    found = [find_piece_files("Anonymous__lesgraces__lesgraces", SAMPLE_SPLIT, None)]
    if data is not None:
        splits = [data] if (data / "score").is_dir() else sorted(p for p in data.iterdir() if (p / "score").is_dir())
        found += [files for split in splits for files in list_pieces(split)]
    return found


def follow(files, spec: str, audio: np.ndarray, rate: int, delay_s: float, wait: bool) -> dict:
    """Follow ``audio`` (the performance delayed by ``delay_s``): turns before the first note, TR after."""
    from sfgym.data.msmd import read_midi_notes
    from sfgym.data.piece import FPS
    from sfgym.envs.geometry import LOSS_THRESHOLD_PX
    from sfgym.followers import make_follower
    from sfgym.live import LiveFollowing, WaitForMusic, read_piece_score
    from sfgym.score.timing import stand_in_tempo

    score = read_piece_score(files)
    notes = read_midi_notes(files.midi)
    notes[:, 0] += delay_s
    tempo = stand_in_tempo([(spec, spec)], timing_missing=score.score_notes is None, score_speed=70.0,
                           score_name=score.name)
    live = LiveFollowing.for_score(score, make_follower(spec, **tempo.get(spec, {})),
                                   max_seconds=len(audio) / rate, performance_notes=notes,
                                   wait_for_music=WaitForMusic() if wait else None)
    report = live.run(audio, rate, speed=0)
    live.close()
    first_note = int(np.floor(notes[:, 0].min() * FPS))
    errors = np.array([s.error for s in report.steps if s.frame >= first_note])
    before = [s.x for s in report.steps if s.frame < first_note]
    found = report.music_found_frame
    return {"turns_before": sum(e.frame < first_note for e in report.events),
            "moved_px": max(before) - min(before) if before else 0.0,
            "tr": float(np.mean(errors <= LOSS_THRESHOLD_PX)),
            "found_late_s": None if found is None else (found - first_note) / FPS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a built dataset (or split) whose pieces are followed too")
    parser.add_argument("--agents", default="online_dtw,pretrained")
    parser.add_argument("--noise-s", type=float, default=60.0)
    parser.add_argument("--dbfs", type=float, default=-50.0, help="the noise's RMS, dB full scale")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the music (the -60 dBFS gate only)")
    args = parser.parse_args()

    from sfgym.data.audio import performance_audio
    from sfgym.threads import torch_threads

    voice, voice_kind = speech(args.noise_s)
    hiss = np.random.default_rng(1).standard_normal(int(args.noise_s * RATE)).astype(np.float32)
    noises = {"room": scaled_to_dbfs(room_noise(args.noise_s), args.dbfs), "hiss": scaled_to_dbfs(hiss, args.dbfs),
              "speech": scaled_to_dbfs(voice, args.dbfs)}
    found = pieces(args.data)
    print(f"{len(found)} pieces; {args.noise_s:g} s of noise at {args.dbfs:g} dBFS before the music (speech: "
          f"{voice_kind}); {'no waiting (the -60 dBFS gate only)' if args.no_wait else 'waiting for the music'}")
    print(f"{'follower':<12} {'noise':<7} {'turns before (pieces)':>22} {'moved':>6} {'TR alone':>9} "
          f"{'TR after noise':>15} {'start found after (median, max)':>32}")
    with torch_threads(1):
        takes = [(files, *performance_audio(files)[:2]) for files in found]
        for spec in [s.strip() for s in args.agents.split(",") if s.strip()]:
            alone = [follow(files, spec, audio, rate, 0.0, not args.no_wait) for files, audio, rate in takes]
            for name, noise in noises.items():
                after = []
                for files, audio, rate in takes:
                    lead = noise if rate == RATE else soxr.resample(noise, RATE, rate)
                    after.append(follow(files, spec, np.concatenate([lead, audio]), rate, args.noise_s,
                                        not args.no_wait))
                turned = [r["turns_before"] for r in after]
                late = [r["found_late_s"] for r in after if r["found_late_s"] is not None]
                late_text = f"{np.median(late):.2f} s, {max(late):.2f} s" if late else "-"
                if late and min(late) < 0:
                    late_text += f" ({sum(t < 0 for t in late)} false)"
                if len(late) < len(after):
                    late_text += f" ({len(after) - len(late)} never)"
                moved = max(r["moved_px"] for r in after)
                tr_alone, tr_after = np.mean([r["tr"] for r in alone]), np.mean([r["tr"] for r in after])
                print(f"{spec:<12} {name:<7} {sum(turned):>10} ({sum(t > 0 for t in turned)}/{len(turned)}){'':>7} "
                      f"{moved:>6.0f} {tr_alone:>9.3f} {tr_after:>15.3f} {late_text:>32}")


if __name__ == "__main__":
    main()
