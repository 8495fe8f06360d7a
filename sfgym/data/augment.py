"""Sound augmentation for training performances, with nothing to download: timbre, room, noise, level, pedal.

One soundfont plays all of sfgym's training data, in a dry room, without noise; real recordings differ in all
of that. An augmented take varies it, seeded:

- on the notes, before synthesis (:func:`augment_notes`): **velocity** scaled and jittered, and **sustain-pedal
  blur** (notes held to the next pedal change, as a pianist's pedal does; a note never runs into the next
  note of its own pitch);
- the **instrument** (:func:`draw_program`): a General MIDI keyboard program of the same soundfont (its acoustic,
  bright, electric and honky-tonk grands, two electric pianos, harpsichord, clavinet) — different sampled
  instruments, so a model cannot learn one piano's timbre in place of the notes;
- on the audio (:func:`augment_audio`): **timbre** (a spectral tilt and a few random peaking EQ bands, applied
  in the frequency domain), a **room** (convolution with a synthetic impulse response: exponentially decaying
  noise with a random RT60, darker as it decays, mixed at a random direct-to-reverberant ratio), **level**
  (a random gain, the peak kept below full scale) and **noise** (white to brownish, at a random SNR).

Every range is a field of :class:`AugmentSettings`; ``rng`` (a seed or a ``numpy.random.Generator``) decides the
draws, so the same seed gives bit-identical audio. The audio keeps its length, so frames and onsets stay put.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from sfgym.settings import reject_unknown_fields

Seed = int | np.random.Generator


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges of the augmentation draws (each ``(low, high)`` is drawn uniformly).

    Attributes:
        velocity_scale: every velocity is multiplied by one draw (dynamics of the whole take).
        velocity_jitter: standard deviation of per-note velocity noise.
        pedal_probability: chance that a take is pedalled; ``pedal_change_s`` the range of times between
            pedal changes; a pedalled note sounds until the next change (at most ``pedal_max_s`` longer).
        tilt_db_per_octave: spectral tilt around 1 kHz (negative = darker).
        eq_bands: how many peaking EQ bands (drawn in this range, inclusive), each ``eq_gain_db`` at a centre
            log-uniform in ``eq_hz`` with a width of ``eq_octaves`` octaves.
        reverb_probability: chance of a room; ``rt60_s`` its reverberation time, ``direct_to_reverb_db`` the
            level of the dry sound over the reverberant one.
        gain_db: level change (the peak is then kept at most ``max_peak``).
        programs: the General MIDI programs (0-based) an augmented take is played with, one drawn per take.
        snr_db: signal-to-noise ratio of the added noise (over the signal's RMS); ``noise_slope`` the noise's
            spectral slope (0 = white, -1 = pink, -2 = brown; drawn in the range).
    """

    velocity_scale: tuple[float, float] = (0.6, 1.3)
    velocity_jitter: float = 8.0
    pedal_probability: float = 0.5
    pedal_change_s: tuple[float, float] = (0.8, 3.0)
    pedal_max_s: float = 3.0
    tilt_db_per_octave: tuple[float, float] = (-2.0, 2.0)
    eq_bands: tuple[int, int] = (0, 3)
    eq_gain_db: tuple[float, float] = (-8.0, 8.0)
    eq_hz: tuple[float, float] = (80.0, 6000.0)
    eq_octaves: tuple[float, float] = (0.5, 2.0)
    reverb_probability: float = 0.7
    rt60_s: tuple[float, float] = (0.2, 1.2)
    direct_to_reverb_db: tuple[float, float] = (0.0, 15.0)
    gain_db: tuple[float, float] = (-12.0, 6.0)
    max_peak: float = 0.99
    snr_db: tuple[float, float] = (20.0, 45.0)
    noise_slope: tuple[float, float] = (-2.0, 0.0)
    programs: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7)

    def __post_init__(self) -> None:
        if not self.programs or any(not 0 <= program <= 127 for program in self.programs):
            raise ValueError(f"programs must be General MIDI programs 0..127, got {self.programs}")
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name != "programs" and isinstance(value, tuple) and (len(value) != 2 or value[0] > value[1]):
                raise ValueError(f"{field.name} must be a range (low, high) with low <= high, got {value}")
        for name in ("pedal_probability", "reverb_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")

    @classmethod
    def with_changes(cls, changes: dict[str, Any]) -> AugmentSettings:
        """The default settings with ``changes`` (field name -> value); a number for a range means that value
        always, a list is read as a tuple. Unknown names and bad values are a ``ValueError``."""
        reject_unknown_fields(cls, changes, "augment")
        known = {field.name: field.default for field in fields(cls)}
        resolved = {}
        for name, value in changes.items():
            if isinstance(value, list):
                value = tuple(value)
            if isinstance(known[name], tuple) and not isinstance(value, tuple):
                value = (value,) if name == "programs" else (value, value)
            resolved[name] = value
        return cls(**resolved)


def _rng(rng: Seed) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def augment_notes(notes: np.ndarray, velocities: np.ndarray | None, rng: Seed,
                  settings: AugmentSettings = AugmentSettings()) -> tuple[np.ndarray, np.ndarray]:
    """Notes ``(onset, pitch, duration)`` and velocities for synthesis: velocity variation and sustain-pedal blur.

    Onsets and pitches are unchanged (the ground truth does not move); only durations grow and velocities
    change. ``velocities`` default to 80 (the builder's). Returns new arrays in the order given.
    """
    rng = _rng(rng)
    notes = np.array(notes, dtype=np.float64)[:, :3]
    velocity = np.full(len(notes), 80.0) if velocities is None else np.asarray(velocities, dtype=np.float64)
    velocity = velocity * rng.uniform(*settings.velocity_scale) + rng.normal(0, settings.velocity_jitter, len(notes))
    if rng.random() < settings.pedal_probability and len(notes):
        ends = notes[:, 0] + notes[:, 2]
        changes = np.cumsum(rng.uniform(*settings.pedal_change_s, size=int(ends.max() / settings.pedal_change_s[0]) + 2))
        release = changes[np.searchsorted(changes, notes[:, 0], side="right")]
        pedalled = np.minimum(np.maximum(ends, release), ends + settings.pedal_max_s)
        # a held note stops where its pitch is struck again (a piano string is re-struck, not doubled)
        order = np.lexsort((notes[:, 0], notes[:, 1]))
        same_pitch_next = np.full(len(notes), np.inf)
        repeated = notes[order[1:], 1] == notes[order[:-1], 1]
        same_pitch_next[order[:-1][repeated]] = notes[order[1:][repeated], 0] - 0.005
        offsets = np.maximum(ends, np.minimum(pedalled, same_pitch_next))  # never shorter than written
        notes[:, 2] = np.where(offsets > ends, offsets - notes[:, 0], notes[:, 2])
    return notes, np.clip(np.round(velocity), 1, 127).astype(np.int64)


def draw_program(rng: Seed, settings: AugmentSettings = AugmentSettings()) -> int:
    """The General MIDI program (0-based) a take is synthesized with, drawn from ``settings.programs``."""
    return int(_rng(rng).choice(settings.programs))


def _spectral_gain(frequencies: np.ndarray, rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    """Gain (linear) at ``frequencies`` of a random tilt around 1 kHz plus random Gaussian EQ bumps in octaves."""
    octaves = np.log2(np.maximum(frequencies, 20.0) / 1000.0)
    gain_db = rng.uniform(*settings.tilt_db_per_octave) * octaves
    for _ in range(rng.integers(settings.eq_bands[0], settings.eq_bands[1] + 1)):
        centre = np.log2(np.exp(rng.uniform(*np.log(settings.eq_hz))) / 1000.0)
        width = rng.uniform(*settings.eq_octaves)
        gain_db += rng.uniform(*settings.eq_gain_db) * np.exp(-0.5 * ((octaves - centre) / (width / 2)) ** 2)
    return 10.0 ** (gain_db / 20.0)


def synthetic_room_response(sample_rate: int, rt60_s: float, rng: Seed) -> np.ndarray:
    """A room's impulse response without the direct sound: Gaussian noise decaying by 60 dB in ``rt60_s``,
    low-passed more as it decays (air and walls absorb the highs first), with unit energy. The evaluation
    variant's room (:func:`sfgym.data.variant.room_impulse_response`) is deliberately another model."""
    rng = _rng(rng)
    length = max(int(rt60_s * sample_rate), 1)
    time = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.908 * time / rt60_s)  # 6.908 = ln(1000): -60 dB at rt60
    smoothed = np.convolve(tail, np.ones(8) / 8, mode="same")  # the dark part
    darkening = np.clip(time / rt60_s, 0, 1)
    response = (1 - darkening) * tail + darkening * smoothed
    return response / np.sqrt(np.sum(response ** 2))


def augment_audio(samples: np.ndarray, sample_rate: int, rng: Seed,
                  settings: AugmentSettings = AugmentSettings()) -> np.ndarray:
    """Mono audio with random timbre, room, level and noise (see :class:`AugmentSettings`); same length, float32.

    The same ``rng`` seed gives bit-identical output.
    """
    from scipy import fft

    rng = _rng(rng)
    audio = np.asarray(samples, dtype=np.float64)
    if audio.ndim != 1 or len(audio) == 0:
        raise ValueError(f"augment_audio takes non-empty mono audio, got shape {audio.shape}")
    n = len(audio)
    # Timbre and room in one pass in the frequency domain: (direct + room response) x EQ, padded so the room's
    # tail does not wrap around; the audio keeps its length (the tail past the end is cut).
    response = np.zeros(1)
    direct_gain = 1.0
    if rng.random() < settings.reverb_probability:
        response = synthetic_room_response(sample_rate, rng.uniform(*settings.rt60_s), rng)
        direct_gain = 10.0 ** (rng.uniform(*settings.direct_to_reverb_db) / 20.0)
    padded = fft.next_fast_len(n + len(response) - 1, real=True)
    frequencies = np.fft.rfftfreq(padded, 1.0 / sample_rate)
    transfer = _spectral_gain(frequencies, rng, settings)
    if len(response) > 1:
        transfer = transfer * (direct_gain + fft.rfft(response, padded)) / (direct_gain + 1.0)
    audio = fft.irfft(fft.rfft(audio, padded) * transfer, padded)[:n]

    audio = audio * 10.0 ** (rng.uniform(*settings.gain_db) / 20.0)
    signal_rms = np.sqrt(np.mean(audio ** 2))
    noise_spectrum = rng.standard_normal(len(frequencies)) + 1j * rng.standard_normal(len(frequencies))
    slope = np.maximum(frequencies, 20.0) ** (rng.uniform(*settings.noise_slope) / 2)  # power ~ f ** noise_slope
    noise = fft.irfft(noise_spectrum * slope, padded)[:n]
    noise *= signal_rms / max(np.sqrt(np.mean(noise ** 2)), 1e-12) * 10.0 ** (-rng.uniform(*settings.snr_db) / 20.0)
    audio = audio + noise
    peak = np.max(np.abs(audio))
    if peak > settings.max_peak:
        audio *= settings.max_peak / peak
    return audio.astype(np.float32)


__all__ = ["AugmentSettings", "augment_audio", "augment_notes", "synthetic_room_response"]
