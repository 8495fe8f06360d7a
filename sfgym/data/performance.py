"""Performances of a score timed and shaped like people play: rubato, ritardandi, holds, spread chords, dynamics.

The builder's default performances (:func:`sfgym.data.dataset.expressive_timing`) bend the notated timing along a
smooth ±10 % tempo curve and play every note at one velocity. :func:`human_performance` adds what real
performances show (see docs/data.md):

- **Phrase rubato**: the score is cut into phrases (4–10 s of notated time, ending at the longest
  inter-onset gap near the cut); each phrase moves ahead in its middle and broadens at its ends
  (±``rubato`` of the tempo, drawn per phrase).
- **Ritardandi**: the tempo falls by up to ``phrase_ritardando`` over the last ``ritardando_s`` of a phrase and by
  ``final_ritardando`` at the end of the piece.
- **Holds**: some phrase ends (``fermata_probability``) are held ``fermata_s`` longer (a fermata-like breath);
  some chords (``agogic_probability``) come ``agogic_s`` late (an agogic accent, lengthening the note before).
- **Chord asynchrony**: the top note of a chord leads by up to ``melody_lead_s``; some chords
  (``roll_probability``) are rolled upwards over ``roll_s``; every note gets Gaussian ``jitter_s``.
- **Dynamics**: one level per performance, an arch over each phrase, accents, the melody above its chord,
  and per-note noise, as MIDI velocities.

The score stays readable through all of it: every performed note plays the same score note, and the spread of
a chord (lead, roll, jitter) is clipped to ``max_spread_fraction`` (< 0.5) of the gaps to its neighbouring
chords, so chords never cross. Sorted by onset, the performance keeps the score's chords in order, so
``coord2onset`` (which indexes notes sorted by onset then pitch) points into the right chord, and
:func:`sfgym.data.piece.reconcile_onsets` takes each chord's time as the median of its notes: the ground truth
stays monotone. Everything is drawn from one seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID_S = 0.01
"""Step (notated seconds) of the tempo curve's grid."""


@dataclass(frozen=True)
class HumanTiming:
    """Parameters of :func:`human_performance` (times in seconds; tempo factors relative to the notated tempo).

    Attributes:
        smooth_depth: depth of the slow tempo curve (three sinusoids, periods 4–16 s), as in the default build.
        phrase_s: range of phrase lengths in notated seconds; a phrase ends at the longest gap near its cut.
        rubato: the largest per-phrase tempo arch (drawn uniformly in [0, rubato] per phrase): the middle of a
            phrase runs up to this much faster, its ends as much slower.
        phrase_ritardando: range of the tempo drop at a phrase end (0.2 = to 80 % of the tempo).
        final_ritardando: range of the tempo drop at the end of the piece.
        ritardando_s: notated seconds over which a ritardando takes the tempo down.
        fermata_probability: share of phrase ends held longer; ``fermata_s`` the range of the hold.
        agogic_probability: share of chords played late; ``agogic_s`` the range of the delay.
        tempo_bounds: the local tempo factor (before holds) is clipped to this range.
        melody_lead_s: the top note of a chord leads the chord by up to this (uniform in [0, melody_lead_s]).
        roll_probability: share of chords of 3+ notes rolled upwards, over a span drawn from ``roll_s``.
        jitter_s: standard deviation of each note's onset jitter.
        max_spread_fraction: a note moves at most this fraction of the gap to the neighbouring chords (< 0.5,
            so chords never cross).
        velocity: range of the performance's base MIDI velocity.
        phrase_dynamics: the largest per-phrase velocity arch (crescendo to the middle, diminuendo after).
        accent_probability: share of chords accented by ``accent`` velocity (agogic accents always are).
        melody_emphasis: velocity added to the top note of a chord.
        velocity_noise: standard deviation of per-note velocity noise.
    """

    smooth_depth: float = 0.1
    phrase_s: tuple[float, float] = (4.0, 10.0)
    rubato: float = 0.15
    phrase_ritardando: tuple[float, float] = (0.1, 0.3)
    final_ritardando: tuple[float, float] = (0.3, 0.5)
    ritardando_s: float = 1.5
    fermata_probability: float = 0.25
    fermata_s: tuple[float, float] = (0.3, 1.2)
    agogic_probability: float = 0.05
    agogic_s: tuple[float, float] = (0.03, 0.12)
    tempo_bounds: tuple[float, float] = (0.5, 1.6)
    melody_lead_s: float = 0.03
    roll_probability: float = 0.1
    roll_s: tuple[float, float] = (0.03, 0.09)
    jitter_s: float = 0.008
    max_spread_fraction: float = 0.4
    velocity: tuple[int, int] = (55, 85)
    phrase_dynamics: float = 15.0
    accent_probability: float = 0.08
    accent: float = 12.0
    melody_emphasis: float = 8.0
    velocity_noise: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.max_spread_fraction < 0.5:
            raise ValueError(f"max_spread_fraction must be in [0, 0.5) so chords never cross, got {self.max_spread_fraction}")
        if not 0 < self.tempo_bounds[0] <= 1 <= self.tempo_bounds[1]:
            raise ValueError(f"tempo_bounds must enclose 1 and be positive, got {self.tempo_bounds}")
        if not 0 < self.phrase_s[0] <= self.phrase_s[1]:
            raise ValueError(f"phrase_s must be an increasing positive range, got {self.phrase_s}")


@dataclass
class HumanPerformance:
    """One performance from :func:`human_performance`.

    Attributes:
        notes: ``(M, 3)`` (onset s, pitch, duration s), row i playing score note i (score order, not sorted).
        velocities: ``(M,)`` MIDI velocities 1–127.
        chord_score_times / chord_times: every distinct notated onset and when the performance places the chord
            (before per-note lead, roll and jitter): strictly increasing.
        tempo: ``(K,)`` local tempo factor of the curve at each chord (× ``tempo_ratio``), holds excluded.
        phrase_starts: notated times at which phrases start.
    """

    notes: np.ndarray
    velocities: np.ndarray
    chord_score_times: np.ndarray
    chord_times: np.ndarray
    tempo: np.ndarray
    phrase_starts: np.ndarray


def _phrase_starts(chord_times: np.ndarray, phrase_s: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Notated times at which phrases start: cut every ``phrase_s`` seconds, moved to the chord after the longest
    gap within a quarter phrase of the cut (a breath where the music has one)."""
    starts = [float(chord_times[0])]
    end = float(chord_times[-1])
    while True:
        length = rng.uniform(*phrase_s)
        target = starts[-1] + length
        if target > end - phrase_s[0] / 2:
            break
        near = np.flatnonzero((chord_times > starts[-1] + phrase_s[0] / 2)
                              & (np.abs(chord_times - target) <= length / 4))
        near = near[near > 0]
        if len(near) == 0:
            starts.append(target)
            continue
        gaps = chord_times[near] - chord_times[near - 1]
        starts.append(float(chord_times[near[np.argmax(gaps)]]))
    return np.array(starts)


def _phrase_bounds(phrase_starts: np.ndarray, end: float) -> np.ndarray:
    """Notated start of every phrase and the end of the last one (at least one grid step after its start)."""
    return np.append(phrase_starts, max(end, phrase_starts[-1] + GRID_S))


def smooth_tempo_factor(grid: np.ndarray, depth: float, rng: np.random.Generator) -> np.ndarray:
    """The slow tempo curve of every built performance on ``grid`` (seconds): ``1 + depth * c(t)``, ``c`` the
    mean of three sinusoids with periods 4–16 s and phases drawn from ``rng``."""
    periods, phases = rng.uniform(4.0, 16.0, size=3), rng.uniform(0, 2 * np.pi, size=3)
    curve = np.sin(2 * np.pi * grid[:, None] / periods + phases).sum(axis=1) / 3.0
    return 1.0 + depth * curve


def _tempo_curve(grid: np.ndarray, phrase_starts: np.ndarray, end: float, settings: HumanTiming,
                 rng: np.random.Generator) -> np.ndarray:
    """The local tempo factor on ``grid`` (notated seconds): slow curve × phrase arches × ritardandi, clipped."""
    factor = smooth_tempo_factor(grid, settings.smooth_depth, rng)
    bounds = _phrase_bounds(phrase_starts, end)
    for index, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        inside = (grid >= start) & (grid < stop)
        position = (grid[inside] - start) / (stop - start)
        factor[inside] *= 1.0 + rng.uniform(0, settings.rubato) * (2 * np.sin(np.pi * position) - 1)
        last = index == len(bounds) - 2
        drop = rng.uniform(*(settings.final_ritardando if last else settings.phrase_ritardando))
        ramp = np.clip((grid - (stop - settings.ritardando_s)) / settings.ritardando_s, 0, 1)
        slowing = inside | (last & (grid >= stop))
        factor[slowing] *= 1.0 - drop * ramp[slowing] ** 2
    return np.clip(factor, *settings.tempo_bounds)


def human_performance(score_notes: np.ndarray, tempo_ratio: float, seed: int,
                      settings: HumanTiming = HumanTiming()) -> HumanPerformance:
    """Perform notes ``(onset, pitch, duration)`` at notated time like a person might, at ``tempo_ratio``.

    See the module docstring for what is modelled; ``settings`` gives every range. The same seed gives the same
    performance. Row i of the result plays row i of ``score_notes``.
    """
    if tempo_ratio <= 0:
        raise ValueError(f"tempo ratio must be positive, got {tempo_ratio}")
    score = np.asarray(score_notes, dtype=np.float64)[:, :3]
    if len(score) == 0:
        raise ValueError("cannot perform a score without notes")
    rng = np.random.default_rng(seed)
    chord_score_times, chord_of_note = np.unique(score[:, 0], return_inverse=True)
    n_chords = len(chord_score_times)
    end = float((score[:, 0] + score[:, 2]).max())

    # The time map: integrate the tempo curve, then add the holds as steps from their chord on.
    phrase_starts = _phrase_starts(chord_score_times, settings.phrase_s, rng)
    grid = np.arange(0.0, end + 1.0 + GRID_S, GRID_S)
    factor = _tempo_curve(grid, phrase_starts, end, settings, rng)
    curve_time = np.concatenate([[0.0], np.cumsum(GRID_S / (tempo_ratio * factor[:-1]))])
    step_at, step_size = [], []
    phrase_chords = np.searchsorted(chord_score_times, phrase_starts[1:])
    held = phrase_chords[rng.random(len(phrase_chords)) < settings.fermata_probability]
    step_at += chord_score_times[held].tolist()
    step_size += rng.uniform(*settings.fermata_s, size=len(held)).tolist()
    agogic = np.flatnonzero(rng.random(n_chords) < settings.agogic_probability)
    agogic = agogic[agogic > 0]
    step_at += chord_score_times[agogic].tolist()
    step_size += rng.uniform(*settings.agogic_s, size=len(agogic)).tolist()
    step_at, step_size = np.array(step_at), np.array(step_size) / tempo_ratio

    def performed(times: np.ndarray) -> np.ndarray:
        holds = (times[:, None] >= step_at[None, :]) @ step_size if len(step_at) else 0.0
        return np.interp(times, grid, curve_time) + holds

    chord_times = performed(chord_score_times)

    # Per-note asynchrony: melody lead, rolled chords, jitter; clipped to a share of the neighbouring gaps.
    sizes = np.bincount(chord_of_note, minlength=n_chords)
    rank = np.empty(len(score), dtype=np.int64)  # a note's rank by pitch within its chord (0 = lowest)
    by_chord_pitch = np.lexsort((score[:, 1], chord_of_note))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank[by_chord_pitch] = np.arange(len(score)) - starts[chord_of_note[by_chord_pitch]]
    melody = (rank == sizes[chord_of_note] - 1) & (sizes[chord_of_note] > 1)  # the top note of a chord
    offset = rng.normal(0.0, settings.jitter_s, size=len(score))
    lead = rng.uniform(0, settings.melody_lead_s, size=n_chords)
    offset[melody] -= lead[chord_of_note][melody]
    rolled = (rng.random(n_chords) < settings.roll_probability) & (sizes >= 3)
    span = rng.uniform(*settings.roll_s, size=n_chords)
    roll_position = rank / np.maximum(sizes[chord_of_note] - 1, 1) - 0.5
    offset += np.where(rolled[chord_of_note], roll_position * span[chord_of_note], 0.0)
    gaps = np.diff(chord_times)
    room_before = np.concatenate([[chord_times[0]], gaps])
    room_after = np.concatenate([gaps, [np.inf]])
    limit = settings.max_spread_fraction * np.minimum(room_before, room_after)
    offset = np.clip(offset, -limit[chord_of_note], limit[chord_of_note])
    onsets = np.maximum(chord_times[chord_of_note] + offset, 0.0)
    offsets = performed(score[:, 0] + score[:, 2])
    notes = np.stack([onsets, score[:, 1], np.maximum(offsets - onsets, 0.02)], axis=1)

    # Dynamics: base level, phrase arches, accents, melody, noise.
    phrase_of_chord = np.searchsorted(phrase_starts, chord_score_times, side="right") - 1
    bounds = _phrase_bounds(phrase_starts, end)
    position = (chord_score_times - bounds[phrase_of_chord]) / (bounds[phrase_of_chord + 1] - bounds[phrase_of_chord])
    arch = rng.uniform(0, settings.phrase_dynamics, size=len(phrase_starts))[phrase_of_chord]
    chord_level = arch * (2 * np.sin(np.pi * np.clip(position, 0, 1)) - 1)
    accented = rng.random(n_chords) < settings.accent_probability
    accented[agogic] = True
    chord_level += np.where(accented, settings.accent, 0.0)
    velocity = (rng.uniform(*settings.velocity) + chord_level[chord_of_note]
                + np.where(melody, settings.melody_emphasis, 0.0)
                + rng.normal(0.0, settings.velocity_noise, size=len(score)))
    velocities = np.clip(np.round(velocity), 1, 127).astype(np.int64)
    tempo = tempo_ratio * np.interp(chord_score_times, grid, factor)
    return HumanPerformance(notes, velocities, chord_score_times, chord_times, tempo, phrase_starts)


__all__ = ["HumanPerformance", "HumanTiming", "human_performance", "smooth_tempo_factor"]
