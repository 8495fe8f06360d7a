"""The tracker: a forward filter over (notated position, tempo) under a matching trunk's evidence.

The filter is tested on synthetic evidence (a peak moving at a known tempo, gaps without evidence, a
wrong peak for a moment); the follower end to end on a trunk checkpoint, through the follower registry,
on toy pieces and the real MSMD sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.tracking import FilterSettings, MatchingTracker, SpectrumNormalizer, TempoPositionFilter

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EARLIER_DEFAULTS = dict(tempo_min=0.4, tempo_max=2.5, n_tempi=17, pause_start=0.0, tempo_prior_std=0.15,
                        temperature=25.0, start_frames=0, chroma_weight=0.0, cover_px=0.0)
"""The tracker's defaults before the shipped follower's settings became them: what these tests were written on."""


def earlier_settings(**changes) -> FilterSettings:
    """:data:`EARLIER_DEFAULTS` with ``changes``."""
    return FilterSettings(**{**EARLIER_DEFAULTS, **changes})


def _peak(centre: float, width: float = 2.0, height: float = 6.0):
    """Log-likelihood over positions ``low .. high - 1``: a peak at ``centre``."""
    return lambda low, high: height * np.exp(-0.5 * ((np.arange(low, high) - centre) / width) ** 2)


def test_the_filter_follows_a_peak_moving_at_another_tempo_and_learns_that_tempo():
    tracker = TempoPositionFilter(n_positions=2000, start=10.0, settings=earlier_settings())
    for frame in range(300):
        position, tempo = tracker.step(_peak(10.0 + 1.4 * frame))
    assert position == pytest.approx(10.0 + 1.4 * 299, abs=2.0)
    assert tempo == pytest.approx(1.4, rel=0.1)


def test_without_evidence_the_filter_carries_on_at_the_tempo_it_inferred():
    tracker = TempoPositionFilter(n_positions=2000, start=0.0, settings=earlier_settings())
    for frame in range(200):
        tracker.step(_peak(0.8 * frame))
    flat = lambda low, high: np.zeros(high - low)  # noqa: E731 - a held chord: nothing tells positions apart
    for frame in range(200, 260):
        position, tempo = tracker.step(flat)
    assert tempo == pytest.approx(0.8, rel=0.1)
    assert position == pytest.approx(0.8 * 259, abs=6.0)  # a metronome at the learned tempo, not a stall


def test_a_wrong_peak_for_a_few_frames_does_not_make_the_filter_jump():
    tracker = TempoPositionFilter(n_positions=3000, start=0.0, settings=earlier_settings())
    for frame in range(100):
        tracker.step(_peak(float(frame)))
    for frame in range(100, 105):  # the same notes written 150 frames later: a repeat, heard wrongly
        position, _ = tracker.step(_peak(frame + 150.0, height=4.0))
    assert position == pytest.approx(104, abs=5.0)
    for frame in range(105, 130):
        position, _ = tracker.step(_peak(float(frame)))
    assert position == pytest.approx(129, abs=2.0)


def test_after_a_fermata_the_filter_finds_the_performer_again_only_if_it_knows_pauses():
    def follow(settings):
        tracker = TempoPositionFilter(n_positions=3000, start=0.0, settings=settings)
        for frame in range(100):
            tracker.step(_peak(float(frame)))
        for frame in range(100, 130):  # a fermata: 30 frames (1.5 s) on the note at position 100
            tracker.step(_peak(100.0))
        for frame in range(130, 170):  # then on, at the tempo of before
            position, tempo = tracker.step(_peak(100.0 + frame - 130))
        return position - (100.0 + 39), tempo

    error, tempo = follow(earlier_settings(pause_start=0.005, pause_end=0.05))
    assert abs(error) < 2.0 and tempo == pytest.approx(1.0, rel=0.1)
    error, _ = follow(earlier_settings(pause_start=0.0))
    assert error > 20.0  # without a paused state it ran on through the fermata and stayed ahead


def test_a_filter_that_relocates_finds_a_performer_who_went_back_but_ignores_a_few_wrong_frames():
    def restart(settings):
        tracker = TempoPositionFilter(n_positions=3000, start=0.0, settings=settings)
        for frame in range(100):
            tracker.step(_peak(float(frame)))
        errors = []
        for frame in range(100, 200):  # the performer starts again 60 notated frames back (3 s)
            position, _ = tracker.step(_peak(40.0 + frame - 100))
            errors.append(abs(position - (40.0 + frame - 100)))
        return errors

    relocating = earlier_settings(relocate=1e-4)
    assert max(restart(relocating)[70:]) < 3.0  # found again within 3.5 s
    assert min(restart(earlier_settings(relocate=0.0))) > 20.0  # without it, never
    tracker = TempoPositionFilter(n_positions=3000, start=0.0, settings=relocating)
    for frame in range(100):
        tracker.step(_peak(float(frame)))
    for frame in range(100, 105):  # five frames of the same notes written 150 frames later
        position, _ = tracker.step(_peak(frame + 150.0, height=4.0))
    assert position == pytest.approx(104, abs=5.0)


def test_a_wide_starting_tempo_belief_follows_a_take_far_slower_than_notated_from_the_start():
    def worst_error(tempo_prior_std):
        tracker = TempoPositionFilter(n_positions=3000, start=0.0, settings=earlier_settings(tempo_prior_std=tempo_prior_std))
        errors = [tracker.step(_peak(0.55 * frame))[0] - 0.55 * frame for frame in range(200)]
        return max(abs(error) for error in errors)

    assert worst_error(0.35) < 5.0
    assert worst_error(0.15) > 8.0  # a narrow belief around the notated tempo runs ahead at first


def test_trusting_the_evidence_more_in_the_first_seconds_catches_a_take_twice_as_fast_as_notated():
    def worst_error(settings):
        tracker = TempoPositionFilter(n_positions=3000, start=0.0, settings=settings)
        return max(abs(tracker.step(_peak(2.0 * frame, height=8.0))[0] - 2.0 * frame) for frame in range(150))

    common = dict(temperature=40.0, tempo_prior_std=0.5)
    assert worst_error(earlier_settings(start_frames=60, start_temperature=10.0, **common)) < 3.0
    assert worst_error(earlier_settings(**common)) > 5.0  # at one temperature throughout it falls behind at first


def test_a_tempo_range_to_four_follows_a_score_whose_tempo_mark_is_three_times_too_slow():
    """A score read at a default tempo often is: the take then runs at three times the notated tempo, past the
    default range's fastest ratio (2.5), and the filter falls behind for good; the shipped range (0.25-4) keeps up."""
    def final_error(**range_settings):
        settings = earlier_settings(temperature=40.0, tempo_prior_std=0.5, start_frames=60, start_temperature=15.0,
                                  **range_settings)
        tracker = TempoPositionFilter(n_positions=3000, start=0.0, settings=settings)
        for frame in range(300):
            position, tempo = tracker.step(_peak(3.0 * frame, height=8.0))
        return abs(position - 3.0 * 299), tempo

    error, tempo = final_error(tempo_min=0.25, tempo_max=4.0, n_tempi=25)
    assert error < 5.0 and tempo == pytest.approx(3.0, rel=0.1)
    error, tempo = final_error()
    assert error > 100.0 and tempo < 2.6


def test_the_filter_stays_in_the_score_and_its_belief_is_a_distribution_in_a_band():
    settings = earlier_settings(band=50, pause_start=0.01, relocate=1e-3)
    tracker = TempoPositionFilter(n_positions=120, start=100.0, settings=settings)
    for frame in range(80):  # runs into the end of the score: it stays there
        position, _ = tracker.step(_peak(100.0 + 2 * frame))
        assert tracker.belief.sum() + tracker.paused.sum() == pytest.approx(1.0)
        assert np.count_nonzero(tracker.belief.sum(axis=0) + tracker.paused.sum(axis=0)) <= 2 * settings.band + 1
    assert tracker.paused.sum() > 0
    assert position == pytest.approx(119, abs=1.0)


def test_bad_evidence_and_settings_are_clear_errors():
    tracker = TempoPositionFilter(n_positions=100, start=0.0, settings=earlier_settings())
    with pytest.raises(ValueError, match="NaN or inf"):
        tracker.step(lambda low, high: np.full(high - low, np.nan))
    with pytest.raises(ValueError, match="must give"):
        tracker.step(lambda low, high: np.zeros(3))
    with pytest.raises(ValueError, match="tempo_min < tempo_max"):
        FilterSettings(tempo_min=2.0, tempo_max=1.0)
    with pytest.raises(ValueError, match="band"):
        FilterSettings(band=2)
    with pytest.raises(ValueError, match="start_frames"):
        FilterSettings(start_frames=-1)
    with pytest.raises(ValueError, match="start_temperature"):
        FilterSettings(start_temperature=0.0)
    with pytest.raises(ValueError, match="relocate"):
        FilterSettings(relocate=1.0)
    with pytest.raises(ValueError, match="pause_end"):
        FilterSettings(pause_end=0.0)
    with pytest.raises(ValueError, match="unknown tracker setting"):
        FilterSettings.checked({"pause": 0.1})


# ---------------------------------------------------------------------------- the follower
def _trunk_checkpoint(path, trained_on=None, seed=0, features=8):
    """A tiny matching trunk's checkpoint as ``sfgym train trunk`` writes it (untrained weights)."""
    from agents.networks import TrunkConfig
    from agents.pretraining.train import TrunkPretrainingConfig, pretraining_model
    from agents.runs import save_checkpoint

    torch.manual_seed(seed)
    trunk = TrunkConfig(kind="matching", width=0.25, features=features, match_frames=4, match_context=2, dropout=0.0)
    config = TrunkPretrainingConfig(trunk=trunk)
    model = pretraining_model(trunk)
    save_checkpoint(path, "trunk", model, config.to_dict(), trunk, metrics={"valid_mae_px": 50.0})
    return path


def test_a_trunk_checkpoint_is_a_tracker_follower_that_moves_through_the_notated_time(tmp_path, toy_pieces):
    from agents.registry import make_follower
    from sfgym.evaluation import run_episode
    from sfgym.followers import needs_notated_tempo

    checkpoint = _trunk_checkpoint(tmp_path / "trunk" / "best.pt")
    assert needs_notated_tempo(str(checkpoint))  # the commands give it a stand-in tempo where none is notated
    follower = make_follower(str(checkpoint), **EARLIER_DEFAULTS)
    assert isinstance(follower, MatchingTracker) and follower.action_type == "position"
    assert follower.name == "tracker:trunk"
    # toy pieces are played at their notated tempo: even an untrained trunk's evidence (flat-ish), filtered,
    # moves at the notated tempo and keeps the target (a stalled or jumping filter would lose it)
    piece = toy_pieces[0]
    trajectory = run_episode(follower, piece)
    assert not trajectory.lost and trajectory.n_steps == piece.last_onset_frame - piece.first_onset_frame
    assert np.all(np.diff(trajectory.follower_x) >= -1e-6)
    again = run_episode(make_follower(str(checkpoint), **EARLIER_DEFAULTS), piece)
    np.testing.assert_array_equal(again.follower_x, trajectory.follower_x)  # deterministic


def test_a_checkpoint_that_is_no_matching_trunk_is_a_clear_error(tmp_path):
    from agents.networks import TrunkConfig
    from agents.pretraining.train import TrunkPretrainingConfig, pretraining_model
    from agents.registry import make_follower
    from agents.runs import save_checkpoint
    from agents.tracking import load_follower

    trunk = TrunkConfig(width=0.25, features=8, dropout=0.0)  # the figure-3 trunk
    path = save_checkpoint(tmp_path / "offset.pt", "trunk", pretraining_model(trunk),
                           TrunkPretrainingConfig(trunk=trunk).to_dict(), trunk)
    with pytest.raises(ValueError, match=r"offset\.pt: a 'figure3' trunk; the tracker needs a matching trunk"):
        make_follower(str(path), **EARLIER_DEFAULTS)
    with pytest.raises(ValueError, match=r"unknown tracker setting\(s\) \['speed'\]"):
        load_follower(_trunk_checkpoint(tmp_path / "m.pt"), speed=2)


def test_trunks_of_several_runs_are_one_tracker_that_averages_their_logits(tmp_path, toy_pieces):
    from agents.registry import make_follower
    from agents.runs import read_trunk
    from agents.tracking import save_trunk_ensemble
    from sfgym.evaluation import run_episode

    first, second = (_trunk_checkpoint(tmp_path / f"seed{seed}" / "best.pt", seed=seed) for seed in (0, 1))
    ensemble = save_trunk_ensemble([first, second.parent], tmp_path / "ensemble.pt")
    follower = make_follower(str(ensemble), **EARLIER_DEFAULTS)
    assert isinstance(follower, MatchingTracker) and len(follower.trunks) == 2
    # the file is its first trunk's checkpoint too (--init-from reads that one)
    for (ensemble_weights, _), (first_weights, _) in [(read_trunk(ensemble), read_trunk(first))]:
        assert all(torch.equal(ensemble_weights[key], first_weights[key]) for key in first_weights)
    # its evidence is the mean of the members' logits: an ensemble of one trunk twice follows as that trunk
    piece = toy_pieces[0]
    twice = make_follower(str(save_trunk_ensemble([first, first], tmp_path / "twice.pt")), **EARLIER_DEFAULTS)
    alone = run_episode(make_follower(str(first), **EARLIER_DEFAULTS), piece)
    np.testing.assert_allclose(run_episode(twice, piece).follower_x, alone.follower_x, atol=1e-4)
    follower.reset(piece)
    sound = np.random.default_rng(0).random(follower.trunk.config.spectrogram_shape, dtype=np.float32)
    follower.normalizer = None
    heard = torch.from_numpy(sound[0, :, -follower.trunk.config.match_frames:])[None]
    with torch.no_grad():
        members = [columns[:50] @ trunk.sound_embeddings(heard)[0].numpy()
                   for columns, trunk in zip(follower._position_columns, follower.trunks)]
    assert not np.allclose(members[0], members[1])  # two different trunks...
    captured = {}

    def step(logits):  # the filter's step, recording the evidence it is given
        captured["logits"] = logits(0, 50)
        return 0.0, 1.0

    follower._filter.step = step
    follower.act({"spectrogram": sound})
    np.testing.assert_allclose(captured["logits"], (members[0] + members[1]) / 2, rtol=1e-5)  # ...averaged
    # bad ensembles are clear errors
    with pytest.raises(ValueError, match=r"at least two trunks"):
        save_trunk_ensemble([first], tmp_path / "one.pt")
    other = _trunk_checkpoint(tmp_path / "other.pt", features=4)
    with pytest.raises(ValueError, match=r"other\.pt: its trunk settings differ"):
        save_trunk_ensemble([first, other], tmp_path / "mixed.pt")


# ---------------------------------------------------------------------------- hearing another piano
def _played_louder(spectrogram: np.ndarray, gain: float, tilt_per_band: float = 0.0) -> np.ndarray:
    """``spectrogram`` (log10(1 + magnitude)) with its magnitudes times ``gain`` and a tilt across the bands."""
    bands = np.arange(len(spectrogram)) - (len(spectrogram) - 1) / 2.0
    magnitude = np.expm1(spectrogram.astype(np.float64) * np.log(10.0))
    return (np.log1p(magnitude * gain * np.exp(tilt_per_band * bands)[:, None]) / np.log(10.0)).astype(np.float32)


def _normalized(spectrogram: np.ndarray) -> np.ndarray:
    """Each frame as the tracker's normalizer gives it once it has heard that frame."""
    normalizer = SpectrumNormalizer()
    frames = []
    for frame in spectrogram.T:
        normalizer.hear(frame)
        frames.append(normalizer.normalize(frame[:, None])[:, 0])
    return np.stack(frames, axis=1)


@pytest.fixture(scope="module")
def piano_spectrogram() -> np.ndarray:
    """17 s of chords and a melody played by the training soundfont at the builder's level."""
    from sfgym.data.engrave import engrave
    from sfgym.data.msmd import midi_bytes, notes_to_midi
    from sfgym.data.spectrogram import spectrogram_from_audio
    from sfgym.data.synth import synthesize_midi

    from scores import SCALE, melody_musicxml

    notes = engrave(melody_musicxml(SCALE * 5, tempo_bpm=140, chord_every=3)).notes
    return spectrogram_from_audio(synthesize_midi(midi_bytes(notes_to_midi(notes)), sample_rate=22050), 22050)


def test_the_normalizer_hears_a_quieter_darker_piano_as_the_training_one(piano_spectrogram):
    clean = piano_spectrogram
    heard = _normalized(clean)
    # 17 dB quieter (the unseen piano's level): undone exactly, frame by frame
    np.testing.assert_allclose(_normalized(_played_louder(clean, 0.14)), heard, atol=1e-4)
    # quieter and darker (27 dB less at the top band): most of the difference is gone after a second
    darker = _played_louder(clean, 0.14, -0.04)
    assert np.abs(darker - clean).mean() > 0.5 * clean.mean()
    assert np.abs(_normalized(darker) - heard)[:, 20:].mean() < 0.2 * np.abs(darker - clean)[:, 20:].mean()
    # silence before the music passes unchanged, and so does everything before a first loud frame
    silence = np.zeros((78, 5), dtype=np.float32)
    np.testing.assert_array_equal(_normalized(silence), silence)
    with pytest.raises(ValueError, match="smoothing"):
        SpectrumNormalizer(smoothing=0)


def test_the_tracker_s_trunk_hears_a_quieter_recording_as_the_original(tmp_path, toy_pieces, monkeypatch):
    from dataclasses import replace

    from agents.tracking import load_follower
    from sfgym.evaluation import run_episode

    checkpoint = _trunk_checkpoint(tmp_path / "trunk" / "best.pt")
    piece = toy_pieces[1]
    quiet = replace(piece, spectrogram=_played_louder(piece.spectrogram, 0.1))

    def heard_by_the_trunk(follower, played) -> np.ndarray:
        sounds = []
        embed = follower.trunk.sound_embeddings
        monkeypatch.setattr(follower.trunk, "sound_embeddings", lambda sound: sounds.append(sound.numpy().copy()) or embed(sound))
        run_episode(follower, played)
        return np.concatenate(sounds)

    original = heard_by_the_trunk(load_follower(checkpoint, **EARLIER_DEFAULTS), piece)
    np.testing.assert_allclose(heard_by_the_trunk(load_follower(checkpoint, **EARLIER_DEFAULTS), quiet), original, atol=1e-4)
    unnormalized = heard_by_the_trunk(load_follower(checkpoint, normalize=False, **EARLIER_DEFAULTS), quiet)
    assert np.abs(unnormalized - original).mean() > 0.1 * np.abs(original).mean()


# ---------------------------------------------------------------------------- chroma evidence beside the trunk's
@pytest.fixture(scope="module")
def slow_take(tmp_path_factory):
    """A melody with thirds (notated at 120 bpm), played at 0.6 of its notated tempo on the score's own piano."""
    from sfgym.data.engrave import engrave
    from sfgym.data.importer import import_piece
    from sfgym.data.msmd import load_split, notes_to_midi

    from scores import SCALE, melody_musicxml

    root = tmp_path_factory.mktemp("slow_take")
    score = root / "etude.musicxml"
    score.write_text(melody_musicxml(SCALE[:6] * 3, tempo_bpm=120, chord_every=2))
    engraved = engrave(score)
    performed = engraved.notes.copy()
    performed[:, 0] = 0.5 + performed[:, 0] / 0.6
    performed[:, 2] /= 0.6
    notes_to_midi(performed).write(str(root / "slow.mid"))
    alignment = root / "slow.csv"
    alignment.write_text("note_id,onset_s\n" + "".join(
        f"{note_id},{onset:.4f}\n" for note_id, onset in zip(engraved.note_ids_of_notes, performed[:, 0])))
    import_piece(score, root / "eval", performance=root / "slow.mid", alignment=alignment)
    return load_split(root / "eval", progress=False)[0]


def test_chroma_evidence_carries_an_untrained_trunk_through_a_take_far_from_the_notated_tempo(tmp_path, slow_take):
    from agents.tracking import load_follower
    from sfgym.evaluation import run_episode

    checkpoint = _trunk_checkpoint(tmp_path / "trunk.pt")  # untrained: its logits say nothing about the music
    alone = run_episode(load_follower(checkpoint, **EARLIER_DEFAULTS), slow_take)
    with_chroma = run_episode(load_follower(checkpoint, **{**EARLIER_DEFAULTS, "chroma_weight": 10.0}), slow_take)
    reached = {label: trajectory.reached_onsets(slow_take.onset_frames).mean()
               for label, trajectory in (("alone", alone), ("with chroma", with_chroma))}
    # alone it runs on at the notated tempo and loses the take; the chroma of what it hears holds it there
    assert alone.lost and reached["alone"] < 0.6, reached
    assert not with_chroma.lost and reached["with chroma"] == 1.0, reached
    with pytest.raises(ValueError, match="chroma_weight must be >= 0"):
        FilterSettings(chroma_weight=-1.0)


def test_the_covering_x_holds_the_most_belief_within_reach():
    """``covering_x``: with one peak, the peak; with two near peaks, a point within reach of both (nearest the
    preferred x); with two far apart, the heavier one."""
    from agents.tracking.follower import covering_x

    xs = np.arange(0.0, 1000.0, 10.0)
    one = np.zeros(len(xs)); one[30] = 1.0
    assert covering_x(xs, one, 100.0, preferred=300.0) == 300.0
    near = np.zeros(len(xs)); near[20], near[35] = 0.55, 0.45  # x 200 (the mode) and 350: both within 100 of 250..300
    x = covering_x(xs, near, 100.0, preferred=200.0)
    assert x == 250.0 and abs(x - 200.0) <= 100.0 and abs(x - 350.0) <= 100.0
    far = np.zeros(len(xs)); far[20], far[60] = 0.55, 0.45
    assert covering_x(xs, far, 100.0, preferred=200.0) == 200.0
    # the belief's thin tails do not pull it off a peak (only more than COVER_SLACK of the belief does)
    tailed = np.where(xs >= 400.0, 0.005 / np.count_nonzero(xs >= 400.0), 0.0); tailed[30] = 0.995
    assert covering_x(xs, tailed, 140.0, preferred=300.0) == 300.0
    assert covering_x(xs, tailed, 140.0, preferred=300.0, slack=0.0) > 300.0
    # a chord's noteheads a pixel out of order do not break it
    assert covering_x(np.array([0.0, 10.0, 9.0, 20.0]), np.array([0.0, 0.5, 0.5, 0.0]), 1.0, preferred=9.0) == 10.0


def test_a_tracker_that_covers_reports_other_positions_and_still_follows(tmp_path, toy_pieces):
    from agents.tracking import load_follower
    from sfgym.evaluation import run_episode

    checkpoint = _trunk_checkpoint(tmp_path / "trunk.pt")
    piece = toy_pieces[1]
    at_mode = run_episode(load_follower(checkpoint, **EARLIER_DEFAULTS), piece)
    covering = run_episode(load_follower(checkpoint, **{**EARLIER_DEFAULTS, "cover_px": 60.0}), piece)
    # an untrained trunk's belief is broad: at its mode the follower loses this take, covering it keeps it
    assert at_mode.lost and not covering.lost
    steps = len(at_mode.follower_x)  # its episode ended when it was lost
    assert np.any(np.abs(covering.follower_x[:steps] - at_mode.follower_x) > 1.0)
    with pytest.raises(ValueError, match="cover_px must be >= 0"):
        FilterSettings(cover_px=-1.0)
