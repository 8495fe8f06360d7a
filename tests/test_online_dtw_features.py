"""On-line DTW that follows another instrument in a room: timbre-independent features, Arzt's time warping."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import OnlineDTWFollower, SpectrumDTWFollower
from sfgym.score.features import ChromaOnsetFeatures, newest_frame_features, pitch_class_map
from agents.baselines.oltw import ArztTimeWarping
from sfgym.data.dataset import expressive_timing
from sfgym.data.engrave import engrave
from sfgym.data.msmd import notes_to_midi
from sfgym.data.piece import N_SPEC_BINS, Piece
from sfgym.data.spectrogram import spectrogram_from_audio
from sfgym.data.synth import synthesize_midi
from sfgym.data.synthetic import synthetic_piece
from sfgym.data.variant import reverberate
from sfgym.evaluation import run_episode
from sfgym.metrics import piece_metrics
from sfgym.live.streaming import StreamingSpectrogram

from scores import melody_musicxml
from test_baselines import performed


def test_pitch_class_map_folds_each_band_onto_its_pitch_class():
    folding = pitch_class_map()
    assert folding.shape == (N_SPEC_BINS, 12)
    # the band nearest to A4 (440 Hz) goes to pitch class A (9) above all
    from sfgym.data.spectrogram import band_center_frequencies
    a4 = int(np.argmin(np.abs(band_center_frequencies() - 440.0)))
    assert int(np.argmax(folding[a4])) == 9


def test_chroma_features_ignore_loudness_and_spectral_tilt():
    rng = np.random.default_rng(0)
    spectrogram = rng.random((N_SPEC_BINS, 30)) * (rng.random((N_SPEC_BINS, 1)) > 0.7)
    features = ChromaOnsetFeatures()
    np.testing.assert_allclose(np.linalg.norm(features(spectrogram), axis=1), 1.0)
    np.testing.assert_allclose(features(3.0 * spectrogram), features(spectrogram), atol=1e-9)
    # a different piano: the same notes with another balance of low and high bands
    tilt = np.linspace(1.5, 0.5, N_SPEC_BINS)[:, None]
    similarity = np.sum(features(tilt * spectrogram) * features(spectrogram), axis=1)
    assert similarity.min() > 0.9


def test_streamed_features_equal_the_offline_ones():
    """Live: audio blocks -> streaming spectrogram -> streaming features; the same as offline, frame by frame."""
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal(22050 * 2)).astype(np.float32)
    offline = ChromaOnsetFeatures()(spectrogram_from_audio(audio, 22050))
    spectrogram_stream, feature_stream = StreamingSpectrogram(22050), ChromaOnsetFeatures().stream()
    columns = [spectrogram_stream.push(block) for block in np.array_split(audio, 37)] + [spectrogram_stream.finish()]
    streamed = np.array([feature_stream.push(column) for column in np.concatenate(columns, axis=1).T])
    np.testing.assert_allclose(streamed, offline, atol=1e-5)


def test_the_follower_computes_the_offline_features_from_its_observations(score):
    piece = performed(score, tempo_ratio=0.9)
    follower = OnlineDTWFollower()
    offline = ChromaOnsetFeatures()(piece.spectrogram)
    for frame in range(1, 60):
        window = piece.spectrogram[None, :, max(0, frame - 40) : frame + 1]
        heard = newest_frame_features(follower._features, {"spectrogram": window})
        np.testing.assert_allclose(heard, offline[frame], atol=1e-12)


def _warped_sequence(rng, n=300, ratio=0.8):
    reference = np.zeros((N_SPEC_BINS, n))
    start = 0
    while start < n:  # chords of random length
        length = int(rng.integers(3, 10))
        reference[rng.integers(0, N_SPEC_BINS, 3), start : start + length] = 1 + rng.random()
        start += length
    truth = np.arange(0, n - 1, ratio)
    live = reference[:, np.round(truth).astype(int)] + 0.05 * rng.random((N_SPEC_BINS, len(truth)))
    features = ChromaOnsetFeatures()
    return features(reference), features(live), truth


def test_arzt_time_warping_aligns_within_its_step_bound_and_never_goes_back():
    rng = np.random.default_rng(0)
    reference, live, truth = _warped_sequence(rng, ratio=0.8)
    dtw = ArztTimeWarping(reference, window=60, max_step=2)
    path = np.array([dtw.start(0, live[0])] + [dtw.step(f) for f in live[1:]])
    assert np.median(np.abs(path - truth)) <= 2.0
    steps = np.diff(path)
    assert steps.min() >= 0 and steps.max() <= 2


def test_arzt_time_warping_recovers_when_started_behind():
    rng = np.random.default_rng(2)
    reference, live, truth = _warped_sequence(rng, ratio=0.8)
    dtw = ArztTimeWarping(reference, window=60, max_step=2)
    path = np.array([dtw.start(0, live[40])] + [dtw.step(f) for f in live[41:]])  # 32 frames behind at the start
    errors = np.abs(path - truth[40:])
    assert errors[0] > 25 and np.median(errors[-100:]) <= 2.0


def test_arzt_time_warping_rejects_bad_arguments():
    with pytest.raises(ValueError, match="non-empty"):
        ArztTimeWarping(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="max_step"):
        ArztTimeWarping(np.ones((5, 3)), max_step=0)
    with pytest.raises(RuntimeError, match="start"):
        ArztTimeWarping(np.ones((5, 3))).step(np.ones(3))
    with pytest.raises(ValueError, match="features must be"):
        OnlineDTWFollower(features="mfcc")


@pytest.fixture(scope="module")
def score():
    return synthetic_piece("score", n_onsets=40, frames_per_onset=5, seed=7)


@pytest.fixture(scope="module")
def chords():
    """An engraved one-staff piece of 32 random quarter notes at 160 bpm, every other one a third."""
    rng = np.random.default_rng(0)
    pitches = [f"{'CDEFGAB'[step]}{octave}" for step, octave in zip(rng.integers(0, 7, 32), rng.integers(3, 6, 32))]
    return engrave(melody_musicxml(pitches, tempo_bpm=160, chord_every=2))


def test_online_dtw_follows_an_organ_in_a_reverberant_room_where_spectrum_matching_fails(chords):
    """The score is synthesized with TimGM6mb's piano; the performance is its organ (GM 19), 1.2 times
    faster with a ±15 % tempo curve, in a room of RT60 1.5 s."""
    played = expressive_timing(chords.notes, 1.2, 0.15, seed=3)
    audio = synthesize_midi(notes_to_midi(played, program=19), force_piano=False)
    piece = Piece(name="organ", sheet=chords.sheet, coords=chords.coords, coord2onset=chords.coord2onset,
                  notes=played, spectrogram=spectrogram_from_audio(reverberate(audio, 1.5, seed=0), 22050),
                  score_notes=chords.notes)
    metrics = piece_metrics(run_episode(OnlineDTWFollower(), piece), piece)
    assert metrics.tr == 1.0 and metrics.tue
    assert np.median(metrics.onset_errors_px) < 15
    spectrum_matching = piece_metrics(run_episode(SpectrumDTWFollower(), piece), piece)
    assert not spectrum_matching.tue  # the earlier features compare timbres and lose it
