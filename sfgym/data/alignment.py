"""Automatic offline alignment of a performance (audio or MIDI) to its score, note by note.

Used by ``sfgym data import`` when a performance comes without an alignment CSV. Two stages:

1. **Global path.** synctoolbox's memory-restricted multi-resolution DTW (MrMsDTW; Müller et al., "Sync
   Toolbox", JOSS 2021), the standard method of offline music synchronization, on features that do not
   depend on the piano's timbre: quantized chroma on every level (so the path cannot stray far) and DLNCO
   (decaying locally-adaptive normalized chroma onset) features on the finest, 20 ms level. The score side is
   the score's own notes at the notated tempo turned into the same features symbolically (synctoolbox's
   ``df_to_pitch_*``): nothing is synthesized, so no soundfont is favoured. Each score note's onset is mapped
   through the warping path with sub-frame (linear) interpolation.
2. **Local refinement.** The path lags behind the notes in a reverberant room (the previous chord's chroma
   rings on), by ~30 ms on average. So each score chord is moved to where its own pitches start: the peak of
   the summed half-wave rectified log-magnitude rise at the chord's partials (an ~12 ms-hop STFT, peak
   interpolated), searched within 100 ms of the path and less than half-way to the neighbouring chords.
   A MIDI performance's notes are instead snapped to the closest performed note of the same pitch, which makes
   them exact wherever the performer played the score's notes.

``benchmarks/alignment_accuracy.py`` measures the accuracy (docs/data.md, "Automatic alignment accuracy").
"""

from __future__ import annotations

import contextlib
import csv
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfgym.data.midi import parse_midi
from sfgym.data.msmd import notes_of_midi
from sfgym.data.piece import PieceFormatError
from sfgym.files import atomic_write_bytes

SAMPLE_RATE = 22050
"""Audio rate of the alignment features (synctoolbox's pitch filterbank is designed for it)."""

FEATURE_RATE = 50
"""DTW frames per second (20 ms)."""

DOUBTFUL_COST = 0.4
"""Mean chroma cosine distance along the path above which the alignment is reported as doubtful: matching
performances stay below ~0.2 (another piano, a reverberant room) and a different piece scores ~0.5 and more."""

REFINE_WINDOW_S = 0.1
"""How far from the path a chord's onset is looked for in the audio (the path lags ~30 ms in a 0.8 s room)."""

REFINE_PRIOR_S = 0.05
"""Width (std) of the Gaussian preference for onsets near the path, so a louder later onset does not win."""

REFINE_FFT, REFINE_HOP = 1024, 256
"""STFT of the refinement: 46 ms windows every 11.6 ms at 22050 Hz."""

LEAD_IN_S = 0.1
"""Silence kept before the first note on both sides of the DTW."""

SNAP_WINDOW_S = 0.25
"""How far from the path a MIDI performance's note of the same pitch is looked for."""


@dataclass(frozen=True)
class Alignment:
    """Where each score note was played.

    Attributes:
        onsets_s: performed onset (seconds) of every score note, in the order of the score notes given.
        cost: mean chroma cosine distance along the warping path (0: the same pitches sound throughout).
        matched: for a MIDI performance, which score notes were matched to a performed note of the same pitch
            (the others keep the path's estimate); for audio, all True.
    """

    onsets_s: np.ndarray
    cost: float
    matched: np.ndarray

    @property
    def is_doubtful(self) -> bool:
        """The performance matches the score poorly (another piece? another file?): a high chroma cost, or
        fewer than half of the score notes found in a MIDI performance."""
        return self.cost > DOUBTFUL_COST or float(np.mean(self.matched)) < 0.5


def align_performance(score_notes: np.ndarray, performance: str | Path) -> Alignment:
    """Align a performance file to its score: a MIDI file (``.mid``/``.midi``) with :func:`align_midi`, an
    audio file (anything libsndfile reads: ``.wav``, ``.flac``, ``.ogg``, ...) with :func:`align_audio`.

    Args:
        score_notes: ``(M, 3)`` rows of (onset s, MIDI pitch, duration s) at the notated tempo.
        performance: the performance file.

    Raises:
        PieceFormatError: the file is missing, unreadable, empty or silent (the message names it).
    """
    import soundfile

    performance = Path(performance)
    if not performance.is_file():
        raise PieceFormatError(performance, "performance file does not exist")
    try:
        if performance.suffix.lower() in (".mid", ".midi"):
            try:
                midi = parse_midi(str(performance))
            except Exception as error:  # noqa: BLE001 - mido raises many kinds
                raise PieceFormatError(performance, f"not a readable MIDI file: {error}") from error
            return align_midi(score_notes, notes_of_midi(midi, source=performance))
        try:
            audio, rate = soundfile.read(str(performance), dtype="float32", always_2d=True)
        except Exception as error:  # noqa: BLE001 - libsndfile's errors
            raise PieceFormatError(performance, f"not a readable audio or MIDI file: {error}") from error
        return align_audio(score_notes, audio.mean(axis=1), int(rate))
    except PieceFormatError:
        raise
    except ValueError as error:
        raise PieceFormatError(performance, f"cannot align it to the score: {error}") from error


def alignment_csv_path(split_dir: str | Path, piece_name: str) -> Path:
    """Where the importer writes an automatic alignment: ``<split>/performance/<piece>.alignment.csv``, beside
    the piece's performance MIDI (``list_pieces`` looks only at ``*.mid``)."""
    return Path(split_dir) / "performance" / f"{piece_name}.alignment.csv"


def align_to_csv(score_notes: np.ndarray, note_ids: list[str], performance: str | Path,
                 path: str | Path) -> Alignment:
    """Align ``performance`` to the score (:func:`align_performance`) and write the result to ``path`` as a
    ``note_id,onset_s`` CSV (:func:`write_alignment_csv`); warn when the alignment is doubtful.

    Args:
        score_notes: ``(M, 3)`` score notes at the notated tempo.
        note_ids: the score's note id of each row of ``score_notes``.
        performance: the performance file (MIDI or audio).
        path: the CSV to write.
    """
    found = align_performance(score_notes, performance)
    write_alignment_csv(path, note_ids, found.onsets_s)
    if found.is_doubtful:
        found_notes = "" if found.matched.all() else f", {np.mean(found.matched):.0%} of the score's notes played"
        warnings.warn(f"{performance}: the automatic alignment matches the score poorly (chroma cost "
                      f"{found.cost:.2f}{found_notes}); is it a performance of this score? Check {path}", stacklevel=2)
    return found


def write_alignment_csv(path: str | Path, note_ids: list[str], onsets_s: np.ndarray) -> None:
    """Write ``note_id,onset_s`` rows (the format ``--alignment`` reads), atomically; a note id that occurs
    more than once is written once, at its first onset (the reader refuses duplicate ids)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["note_id", "onset_s"])
    written: set[str] = set()
    for note_id, onset in zip(note_ids, onsets_s):
        if note_id not in written:
            writer.writerow([note_id, f"{onset:.4f}"])
            written.add(note_id)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def align_audio(score_notes: np.ndarray, audio: np.ndarray, sample_rate: int = SAMPLE_RATE, *,
                refine: bool = True) -> Alignment:
    """Align a recorded (or synthesized) performance to its score.

    Args:
        score_notes: ``(M, 3)`` rows of (onset s, MIDI pitch, duration s) at the notated tempo.
        audio: mono samples of the performance.
        sample_rate: rate of ``audio`` in Hz (resampled to 22050 if different).
        refine: move each chord to where its pitches start near the DTW path (stage 2 of the module doc);
            ``False`` keeps the path's estimate (for comparison).

    Returns:
        The performed onset of every score note, and the alignment's cost.

    Raises:
        ValueError: no score notes, or less than 0.1 s of mono audio.
    """
    score_notes = _checked_notes(score_notes, "the score")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size < sample_rate // 10:
        raise ValueError(f"need at least 0.1 s of mono audio to align, got shape {audio.shape}")
    if not np.any(audio):
        raise ValueError("the performance audio is silent")
    if sample_rate != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, sample_rate, SAMPLE_RATE)
    # synctoolbox's pitch features floor quiet frames at an absolute level, so a soft piano (MuseScore General
    # plays ~20 dB below TimGM6mb) would lose its quiet passages: align the recording at full scale.
    audio = audio * (0.9 / np.abs(audio).max())
    # DTW ties both sequences' first frames together: start both a moment before their first sound, so a
    # recording's leading silence (or a score's leading rest) does not pull the first notes to the start.
    start = int(round((_first_sound_s(audio) - LEAD_IN_S) * SAMPLE_RATE))  # < 0: pad
    lead_in = audio[start:] if start >= 0 else np.concatenate([np.zeros(-start, dtype=np.float32), audio])
    score_shift = score_notes[:, 0].min() - LEAD_IN_S
    path, cost = _warp(_symbolic_features(_shifted(score_notes, -score_shift)), _audio_features(lead_in))
    estimates = _onsets_through(path, score_notes[:, 0] - score_shift) + start / SAMPLE_RATE
    onsets = _refine_at_pitch_onsets(audio, score_notes, estimates) if refine else estimates
    return Alignment(onsets_s=np.maximum(onsets, 0.0), cost=cost, matched=np.ones(len(onsets), dtype=bool))


def align_midi(score_notes: np.ndarray, performance_notes: np.ndarray) -> Alignment:
    """Align a MIDI performance to its score.

    DTW over both note lists (as features), then each score note snapped to the closest performed note of the
    same pitch within ``SNAP_WINDOW_S`` of the path, closest pairs first and each performed note used once.

    Args:
        score_notes: ``(M, 3)`` rows of (onset s, MIDI pitch, duration s) at the notated tempo.
        performance_notes: ``(P, 3)`` rows of (onset s, MIDI pitch, duration s) as performed.

    Raises:
        ValueError: either note list is empty or malformed.
    """
    score_notes = _checked_notes(score_notes, "the score")
    performance_notes = _checked_notes(performance_notes, "the MIDI performance")
    score_shift = score_notes[:, 0].min() - LEAD_IN_S  # both start a moment before their first note (see above)
    performance_shift = performance_notes[:, 0].min() - LEAD_IN_S
    path, cost = _warp(_symbolic_features(_shifted(score_notes, -score_shift)),
                       _symbolic_features(_shifted(performance_notes, -performance_shift)))
    estimates = _onsets_through(path, score_notes[:, 0] - score_shift) + performance_shift
    onsets, matched = estimates.copy(), np.zeros(len(estimates), dtype=bool)
    performed_pitches = np.round(performance_notes[:, 1])
    candidates = []
    for score_index, (estimate, pitch) in enumerate(zip(estimates, np.round(score_notes[:, 1]))):
        same_pitch = np.flatnonzero(performed_pitches == pitch)
        distances = np.abs(performance_notes[same_pitch, 0] - estimate)
        near = distances <= SNAP_WINDOW_S
        candidates += [(d, score_index, p) for d, p in zip(distances[near], same_pitch[near])]
    used: set[int] = set()
    for _, score_index, performance_index in sorted(candidates):
        if not matched[score_index] and performance_index not in used:
            onsets[score_index] = performance_notes[performance_index, 0]
            matched[score_index] = True
            used.add(performance_index)
    return Alignment(onsets_s=np.maximum(onsets, 0.0), cost=cost, matched=matched)


# ----------------------------------------------------------------------------- features and path
def _checked_notes(notes: np.ndarray, what: str) -> np.ndarray:
    notes = np.asarray(notes, dtype=np.float64)
    if notes.ndim != 2 or notes.shape[1] < 3 or len(notes) == 0:
        raise ValueError(f"{what} has no notes to align (note array of shape {notes.shape})")
    if not np.all(np.isfinite(notes[:, :3])):
        raise ValueError(f"{what}'s notes contain NaN or inf")
    return notes[:, :3]


def _shifted(notes: np.ndarray, seconds: float) -> np.ndarray:
    shifted = notes.copy()
    shifted[:, 0] += seconds
    return shifted


def _first_sound_s(audio: np.ndarray) -> float:
    """When the audio first rises within 40 dB of its loudest 23 ms frame."""
    import librosa

    _, (start, _) = librosa.effects.trim(audio, top_db=40, frame_length=512, hop_length=128)
    return start / SAMPLE_RATE


def _symbolic_features(notes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(quantized chroma, DLNCO) of a note list, each ``(12, frames)``."""
    import pandas as pd
    from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma
    from synctoolbox.feature.csv_tools import df_to_pitch_features, df_to_pitch_onset_features
    from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO

    frame = pd.DataFrame({
        "start": notes[:, 0], "duration": np.maximum(notes[:, 2], 1.0 / FEATURE_RATE),
        "pitch": np.clip(np.round(notes[:, 1]).astype(int), 21, 108),  # the pitch filterbank's piano range
        "velocity": 1.0, "instrument": "piano",
    })
    chroma = quantize_chroma(pitch_to_chroma(f_pitch=df_to_pitch_features(frame, feature_rate=FEATURE_RATE,
                                                                          ignore_velocity=True)))
    onsets = pitch_onset_features_to_DLNCO(f_peaks=df_to_pitch_onset_features(frame), feature_rate=FEATURE_RATE,
                                           feature_sequence_length=chroma.shape[1])
    return chroma, onsets


def _audio_features(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(quantized chroma, DLNCO) of mono audio at 22050 Hz, each ``(12, frames)``."""
    from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma
    from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO
    from synctoolbox.feature.pitch import audio_to_pitch_features
    from synctoolbox.feature.pitch_onset import audio_to_pitch_onset_features
    from synctoolbox.feature.utils import estimate_tuning

    audio = np.asarray(audio, dtype=np.float64)
    tuning = estimate_tuning(audio, SAMPLE_RATE)
    with contextlib.redirect_stdout(io.StringIO()):  # synctoolbox 1.4 prints a dot per pitch even when quiet
        f_pitch = audio_to_pitch_features(f_audio=audio, Fs=SAMPLE_RATE, tuning_offset=tuning,
                                          feature_rate=FEATURE_RATE)
        peaks = audio_to_pitch_onset_features(f_audio=audio, Fs=SAMPLE_RATE, tuning_offset=tuning)
    chroma = quantize_chroma(pitch_to_chroma(f_pitch=f_pitch))
    onsets = pitch_onset_features_to_DLNCO(f_peaks=peaks, feature_rate=FEATURE_RATE,
                                           feature_sequence_length=chroma.shape[1])
    return chroma, onsets


def _warp(score_features, performance_features) -> tuple[np.ndarray, float]:
    """Strictly monotonic warping path ``(2, L)`` (score frame, performance frame) and its mean chroma cost."""
    from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw
    from synctoolbox.dtw.utils import make_path_strictly_monotonic

    (score_chroma, score_onsets), (performance_chroma, performance_onsets) = score_features, performance_features
    with warnings.catch_warnings():  # synctoolbox warns about calls it makes itself (numba, libfmp)
        warnings.simplefilter("ignore")
        # Parameters of synctoolbox's own audio-to-audio and audio-to-score examples.
        path = sync_via_mrmsdtw(f_chroma1=score_chroma, f_onset1=score_onsets, f_chroma2=performance_chroma,
                                f_onset2=performance_onsets, input_feature_rate=FEATURE_RATE,
                                step_weights=np.array([1.5, 1.5, 2.0]), threshold_rec=10**6)
    path = make_path_strictly_monotonic(path).astype(np.float64)
    return path, _path_cost(path, score_chroma, performance_chroma)


def _path_cost(path: np.ndarray, score_chroma: np.ndarray, performance_chroma: np.ndarray) -> float:
    """Mean cosine distance of the chroma vectors the path pairs, over the frames where both sides sound."""
    i, j = path.astype(int)
    a, b = score_chroma[:, i], performance_chroma[:, j]
    norms = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    sounding = norms > 1e-6
    if not sounding.any():
        return 1.0
    return float(np.mean(1.0 - (a * b).sum(axis=0)[sounding] / norms[sounding]))


def _onsets_through(path: np.ndarray, score_times_s: np.ndarray) -> np.ndarray:
    """Performed time of each score time: linear interpolation between the path's points (sub-frame)."""
    return np.interp(np.asarray(score_times_s) * FEATURE_RATE, path[0], path[1]) / FEATURE_RATE


# ----------------------------------------------------------------------------- refinement (audio)
def _pitch_onset_strength(audio: np.ndarray) -> np.ndarray:
    """Onset strength of every MIDI pitch, ``(128, frames)`` at ``SAMPLE_RATE / REFINE_HOP`` frames per second:
    the half-wave rectified rise of the log magnitude at the pitch's first three partials."""
    import librosa

    magnitude = np.abs(librosa.stft(audio, n_fft=REFINE_FFT, hop_length=REFINE_HOP, center=True))
    log_magnitude = np.log1p(1000.0 * magnitude / max(float(magnitude.max()), 1e-9))
    rise = np.maximum(np.diff(log_magnitude, axis=1, prepend=log_magnitude[:, :1]), 0.0)
    strength = np.zeros((128, rise.shape[1]))
    bin_hz = SAMPLE_RATE / REFINE_FFT
    for pitch in range(21, 109):
        for partial in (1, 2, 3):  # low notes' fundamentals fall below the STFT's resolution; partials do not
            frequency = partial * 440.0 * 2 ** ((pitch - 69) / 12)
            if 2 * bin_hz <= frequency <= SAMPLE_RATE / 2 - bin_hz:
                strength[pitch] += rise[int(round(frequency / bin_hz))]
    return strength


def _refine_at_pitch_onsets(audio: np.ndarray, score_notes: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Each score chord moved from the path's estimate to where its pitches start sounding (see the module doc)."""
    strength = _pitch_onset_strength(audio)
    rate = SAMPLE_RATE / REFINE_HOP
    _, chord_of_note = np.unique(score_notes[:, 0], return_inverse=True)
    chord_estimates = np.bincount(chord_of_note, weights=estimates) / np.bincount(chord_of_note)
    gaps = np.concatenate([[np.inf], np.diff(chord_estimates), [np.inf]])
    refined = chord_estimates.copy()
    for k, estimate in enumerate(chord_estimates):
        window = min(REFINE_WINDOW_S, 0.45 * gaps[k], 0.45 * gaps[k + 1])
        first = max(int(np.ceil((estimate - window) * rate)), 0)
        last = min(int(np.floor((estimate + window) * rate)), strength.shape[1] - 1)
        if last - first < 2:
            continue
        pitches = np.unique(np.round(score_notes[chord_of_note == k, 1]).astype(int)).clip(0, 127)
        local = strength[pitches, first : last + 1]
        local = local / np.maximum(local.max(axis=1, keepdims=True), 1e-9)  # every pitch of the chord votes alike
        times = np.arange(first, last + 1) / rate
        evidence = local.sum(axis=0) * np.exp(-0.5 * ((times - estimate) / REFINE_PRIOR_S) ** 2)
        best = int(np.argmax(evidence))
        if evidence[best] <= 0:
            continue
        offset = 0.0
        if 0 < best < len(evidence) - 1:  # parabolic interpolation of the peak
            left, middle, right = evidence[best - 1 : best + 2]
            curvature = left - 2 * middle + right
            offset = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
        # rise[f] is the change from STFT frame f-1 to f: it happens half a hop before frame f.
        refined[k] = (first + best + offset - 0.5) / rate
    return np.maximum.accumulate(refined)[chord_of_note]
