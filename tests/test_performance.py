"""Human-like performance timing and dynamics (sfgym.data.performance)."""

from __future__ import annotations

import numpy as np
import pytest

from sfgym.data.msmd import notes_of_midi, notes_to_midi
from sfgym.data.performance import HumanTiming, human_performance
from sfgym.data.piece import pair_score_notes, reconcile_onsets


@pytest.fixture(scope="module")
def score():
    """40 s of three-note chords every 0.25 s (notated), pitches varying, sorted by onset then pitch."""
    rng = np.random.default_rng(0)
    times = np.repeat(np.arange(0, 40, 0.25), 3)
    pitches = np.tile([48, 60, 67], 160) + rng.integers(0, 3, 480)
    notes = np.stack([times, pitches, np.full(480, 0.25)], axis=1)
    return notes[np.lexsort((notes[:, 1], notes[:, 0]))]


def test_same_seed_same_performance_other_seed_another(score):
    first, again, other = (human_performance(score, 1.0, seed) for seed in (3, 3, 4))
    np.testing.assert_array_equal(first.notes, again.notes)
    np.testing.assert_array_equal(first.velocities, again.velocities)
    assert not np.allclose(first.notes[:, 0], other.notes[:, 0], atol=0.01)


def test_every_note_plays_its_score_note_and_chords_stay_in_order(score):
    settings = HumanTiming()
    for seed in range(5):
        played = human_performance(score, 1.1, seed, settings)
        np.testing.assert_array_equal(played.notes[:, 1], score[:, 1])  # row i plays score note i
        midi_notes = notes_of_midi(notes_to_midi(played.notes))  # as the builder stores it: sorted
        order = np.lexsort((played.notes[:, 1], played.notes[:, 0]))
        np.testing.assert_array_equal(np.sort(midi_notes[:, 1]), np.sort(score[:, 1]))  # the same pitch multiset
        pairing = pair_score_notes(midi_notes, score)
        np.testing.assert_array_equal(pairing, order)  # per-pitch pairing recovers which score note each plays
        # chords never cross: every note of a chord comes before every note of the next one
        chord = np.searchsorted(played.chord_score_times, score[:, 0])
        latest = np.full(len(played.chord_times), -np.inf)
        earliest = np.full(len(played.chord_times), np.inf)
        np.maximum.at(latest, chord, played.notes[:, 0])
        np.minimum.at(earliest, chord, played.notes[:, 0])
        assert np.all(latest[:-1] < earliest[1:])
        # the ground truth is monotone and each chord sits at its median, within the asynchrony bound
        reconciled = reconcile_onsets(score[pairing, 0], midi_notes[:, 0])
        assert len(reconciled.outliers) == 0 and np.all(np.diff(reconciled.chord_onsets) > 0)
        np.testing.assert_allclose(reconciled.chord_onsets, played.chord_times, atol=0.04)


def test_asynchrony_and_tempo_stay_within_their_bounds(score):
    settings = HumanTiming()
    bound = settings.melody_lead_s + max(settings.roll_s) / 2 + 4 * settings.jitter_s
    spreads, leads = [], []
    for seed in range(5):
        played = human_performance(score, 1.0, seed, settings)
        chord = np.searchsorted(played.chord_score_times, score[:, 0])
        deviation = played.notes[:, 0] - played.chord_times[chord]
        assert np.abs(deviation).max() <= bound
        spreads.append(np.ptp(deviation))
        top = np.flatnonzero(np.diff(chord, append=len(played.chord_times)))  # last (highest) note of each chord
        leads.append(np.mean(deviation[top]))
        lo, hi = settings.tempo_bounds
        assert lo - 1e-9 <= played.tempo.min() and played.tempo.max() <= hi + 1e-9
        # the tempo really moves: local tempo between chords spans more than the old ±10 % curve
        local = np.diff(played.chord_score_times) / np.diff(played.chord_times)
        assert local.min() < 0.8 and local.max() > 1.1
    assert np.mean(leads) < -0.005  # the melody leads on average
    assert max(spreads) > 0.02  # chords really are spread


def test_dynamics_vary_within_midi_range(score):
    played = human_performance(score, 1.0, 0)
    assert 1 <= played.velocities.min() and played.velocities.max() <= 127
    assert played.velocities.std() > 5


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_spread_fraction"):
        HumanTiming(max_spread_fraction=0.5)
    with pytest.raises(ValueError, match="tempo ratio"):
        human_performance(np.array([[0.0, 60, 1.0]]), 0.0, 0)
