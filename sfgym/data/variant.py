"""An "unseen piano" copy of a built split: the same pieces, the performances played by another piano in a room.

In a built dataset the score and every performance are synthesized with the same soundfont, so a
follower that compares audio with a synthesized score hears the very same piano twice; real use does
not. :func:`build_variant` re-synthesizes the performances of one or more splits of a dataset with
another soundfont and adds room reverberation, keeping everything else (sheets, noteheads, score
MIDI at the notated tempo, performance MIDI = the ground truth)::

    <out>/manifest.json                  source dataset, soundfont, reverb, seed, the pieces
    <out>/<split>/score/<score>.npz|.mid copied unchanged
    <out>/<split>/performance/<piece>.mid|.wav   the same notes, new audio
    <out>/<split>/spectrogram/<piece>.spec78.npy the new audio's spectrogram

The room is a synthetic impulse response (:func:`room_impulse_response`): the direct sound, then
exponentially decaying noise with the requested reverberation time RT60, seeded per piece, so the
same arguments give the same audio byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import scipy.signal

from sfgym.data.msmd import PieceFiles, find_split_dir, list_pieces, piece_files, write_array_npy
from sfgym.data.spectrogram import spectrogram_from_audio
from sfgym.data.synth import available_soundfonts, synthesize_midi, write_wav_atomic
from sfgym.files import atomic_write_bytes
from sfgym.ray_support import map_unordered, on_one_blas_thread

SAMPLE_RATE = 22050
PRE_DELAY_S = 0.01
"""Gap between the direct sound and the first reflections."""


def room_impulse_response(rt60_s: float, sample_rate: int = SAMPLE_RATE, seed: int = 0,
                          direct_to_reverberant_db: float = 0.0) -> np.ndarray:
    """A synthetic room impulse response: a unit direct path, then decaying noise.

    The tail is Gaussian noise under an exponential envelope falling by 60 dB in ``rt60_s`` seconds,
    starting :data:`PRE_DELAY_S` after the direct sound and lasting ``rt60_s``; its energy is set so
    that direct / reverberant energy is ``direct_to_reverberant_db`` (0 dB: a listener at the room's
    critical distance). ``rt60_s = 0`` gives the identity (``[1.0]``). Deliberately not the room model of
    training-time augmentation (:func:`sfgym.data.augment.synthetic_room_response`: darkening tail, random
    direct level), so that an evaluation variant plays the performances in a room training never heard.
    """
    if not rt60_s >= 0:
        raise ValueError(f"reverberation time must be >= 0 seconds, got {rt60_s}")
    if rt60_s == 0:
        return np.ones(1)
    n_tail = max(1, int(round(rt60_s * sample_rate)))
    start = int(round(PRE_DELAY_S * sample_rate))
    decay = np.exp(-np.log(1000.0) * np.arange(n_tail) / n_tail)  # -60 dB over rt60
    tail = np.random.default_rng(seed).standard_normal(n_tail) * decay
    tail *= np.sqrt(10 ** (-direct_to_reverberant_db / 10) / np.sum(tail**2))
    response = np.zeros(start + n_tail)
    response[0] = 1.0
    response[start:] = tail
    return response


def reverberate(audio: np.ndarray, rt60_s: float, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """``audio`` played in a room of reverberation time ``rt60_s`` (same length, same peak level).

    The reverberant tail past the end is cut, so the recording keeps its length and timing; the
    result is scaled back to the input's peak so it neither clips nor goes quiet.
    """
    audio = np.asarray(audio, dtype=np.float64)
    wet = scipy.signal.fftconvolve(audio, room_impulse_response(rt60_s, sample_rate, seed))[: len(audio)]
    peak_in, peak_out = np.abs(audio).max(initial=0.0), np.abs(wet).max(initial=0.0)
    if peak_out > 0:
        wet *= peak_in / peak_out
    return wet.astype(np.float32)


def _piece_seed(seed: int, name: str) -> int:
    return int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:8], 16)


def _check_sf2(soundfont: str) -> str:
    if soundfont in available_soundfonts():
        return soundfont
    path = Path(soundfont)
    if not path.is_file():
        raise ValueError(f"soundfont {soundfont}: no such file (and not one of {sorted(available_soundfonts())})")
    if path.suffix.lower() == ".sf3":
        raise ValueError(f"soundfont {soundfont}: compressed SoundFont 3 files are not supported by the synthesizer "
                         "(midirenderer); use an .sf2, e.g. MuseScore_General_Full.sf2 from "
                         "'apt-get install musescore-general-soundfont-lossless'")
    return soundfont


def render_performance(midi_path: str | Path, soundfont: str, rt60_s: float, seed: int) -> np.ndarray:
    """The performance MIDI synthesized with ``soundfont`` and reverberated: mono float32 at 22.05 kHz."""
    audio = synthesize_midi(midi_path, soundfont=soundfont, sample_rate=SAMPLE_RATE)
    return reverberate(audio, rt60_s, SAMPLE_RATE, seed) if rt60_s > 0 else audio


def write_variant_piece(split: str, files: PieceFiles, out_dir: Path, soundfont: str, reverb_s: float, seed: int) -> None:
    """One piece of a variant: its score copied, its performance re-synthesized and reverberated, its
    spectrogram recomputed, into ``out_dir/split``. Runs in the builder's process or a Ray task."""
    target = piece_files(out_dir / split, files.name)
    for original, copy in ((files.score, target.score), (files.score_midi, target.score.with_suffix(".mid"))):
        if original is not None and not copy.is_file():
            atomic_write_bytes(copy, original.read_bytes())
    audio = render_performance(files.midi, soundfont, reverb_s, _piece_seed(seed, files.name))
    # audio before MIDI before spectrogram: a piece appears with its MIDI, and its cache is newest
    write_wav_atomic(target.midi.with_suffix(".wav"), audio, SAMPLE_RATE)
    atomic_write_bytes(target.midi, files.midi.read_bytes())
    write_array_npy(target.spectrogram, spectrogram_from_audio(audio, SAMPLE_RATE).astype(np.float32))


def build_variant(source: str | Path, out_dir: str | Path, *, splits: tuple[str, ...] = ("test",),
                  soundfont: str, reverb_s: float = 0.4, seed: int = 0, progress: bool = True,
                  ray: bool = False, ray_address: str | None = None, workers: int | None = None) -> Path:
    """Copy ``splits`` of the dataset ``source`` to ``out_dir`` with re-synthesized, reverberated performances.

    Args:
        source: a dataset root (``<root>/<split>/``) whose splits hold performance MIDI.
        out_dir: the variant's root; must not be ``source``. Pieces already written are redone.
        splits: the splits to copy.
        soundfont: the performances' soundfont (an .sf2 path or an installed name); it should be one
            the score synthesis of the followers does not use.
        reverb_s: reverberation time RT60 of the synthetic room in seconds (0 = dry).
        seed: seeds each piece's impulse response (with the piece's name).
        progress: show a progress bar.
        ray: make the pieces as Ray tasks (:func:`sfgym.ray_support.map_unordered`, ``workers`` at a time, on
            the cluster at ``ray_address`` or local Ray), rather than one after the other in this process: the
            same files, the same manifest but its timing.

    Returns:
        ``out_dir``, with ``manifest.json`` recording the source, soundfont, reverb, seed and pieces.
    """
    from tqdm.auto import tqdm

    source, out_dir = Path(source), Path(out_dir)
    soundfont = _check_sf2(soundfont)
    if out_dir.resolve() == source.resolve() or source.resolve() in out_dir.resolve().parents:
        raise ValueError(f"{out_dir}: the variant must be written outside its source dataset {source}")
    jobs = [(split, files) for split in splits for files in list_pieces(find_split_dir(source, split))]
    started = time.perf_counter()
    piece_jobs = [(split, files, out_dir, soundfont, reverb_s, seed) for split, files in jobs]
    if ray:
        results = map_unordered(write_variant_piece, piece_jobs, ray=True, ray_address=ray_address, workers=workers)
    else:  # one after the other in this process (on one BLAS thread, as a Ray task: the same bytes)
        results = ((index, on_one_blas_thread(write_variant_piece, *job)) for index, job in enumerate(piece_jobs))
    done = sorted(index for index, _ in tqdm(results, total=len(jobs), desc="re-synthesizing performances",
                                             disable=not progress))
    written: dict[str, list[str]] = {split: [] for split in splits}
    for index in done:  # in the source's order, however the pieces finished
        split, files = jobs[index]
        written[split].append(files.name)
    manifest = {
        "format": "msmd-score-following",
        "variant": "unseen piano: performances re-synthesized with another soundfont, in a synthetic room",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": str(source),
        "soundfont": str(soundfont),
        "reverb_rt60_s": reverb_s,
        "direct_to_reverberant_db": 0.0,
        "seed": seed,
        "build_seconds": round(time.perf_counter() - started, 1),
        "pieces": written,
    }
    atomic_write_bytes(out_dir / "manifest.json", json.dumps(manifest, indent=1).encode())
    return out_dir


__all__ = ["build_variant", "write_variant_piece", "render_performance", "reverberate", "room_impulse_response"]
