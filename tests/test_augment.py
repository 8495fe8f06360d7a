"""Sound augmentation (sfgym.data.augment) and the builder's --timing human / --augment options."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sfgym.cli import main as sfgym_main
from sfgym.data.augment import AugmentSettings, augment_audio, augment_notes, draw_program, synthetic_room_response
from sfgym.data.dataset import BuildConfig, build_dataset
from sfgym.data.engrave import engrave
from sfgym.data.msmd import list_pieces, load_piece, load_split, midi_bytes, notes_to_midi, parse_midi, piece_files
from sfgym.data.piece import note_onset_frames
from sfgym.data.spectrogram import spectrogram_from_audio
from sfgym.data.synth import synthesize_midi

from scores import SCALE, melody_musicxml

RATE = 22050


@pytest.fixture(scope="module")
def clean():
    """A 17 s melody with chords, synthesized with the pip soundfont: (notes, audio, spectrogram)."""
    notes = engrave(melody_musicxml(SCALE * 5, tempo_bpm=140, chord_every=3)).notes
    audio = synthesize_midi(midi_bytes(notes_to_midi(notes)), sample_rate=RATE)
    return notes, audio, spectrogram_from_audio(audio, RATE)


def _onset_strength(spectrogram: np.ndarray) -> np.ndarray:
    """Positive spectral flux per frame."""
    return np.concatenate([[0.0], np.maximum(np.diff(spectrogram, axis=1), 0).sum(axis=0)])


def test_same_seed_same_audio_other_seed_other_audio(clean):
    _, audio, _ = clean
    first = augment_audio(audio, RATE, 5)
    assert first.dtype == np.float32 and first.shape == audio.shape  # frames stay where they were
    np.testing.assert_array_equal(first, augment_audio(audio, RATE, 5))  # bit-identical
    np.testing.assert_array_equal(first, augment_audio(audio, RATE, np.random.default_rng(5)))
    assert not np.array_equal(first, augment_audio(audio, RATE, 6))


def test_augmented_spectrograms_differ_within_bounds_and_keep_their_onsets(clean):
    notes, audio, spectrogram = clean
    onsets = np.unique(note_onset_frames(notes))
    between = np.setdiff1d(np.arange(spectrogram.shape[1]), np.concatenate([onsets - 1, onsets, onsets + 1]))
    differences = []
    for seed in range(6):
        augmented = spectrogram_from_audio(augment_audio(audio, RATE, seed), RATE)
        assert augmented.shape == spectrogram.shape
        differences.append(np.abs(augmented - spectrogram).mean())
        strength, clean_strength = _onset_strength(augmented), _onset_strength(spectrogram)
        # the notes still start where they did: onset frames stand out of the frames between them (clean: 11x,
        # augmented: 1.7-12x over 40 seeds), and the onset strength lines up with the clean one at lag 0
        assert np.median(strength[onsets]) > 1.5 * np.median(strength[between])
        lags = range(-3, 4)
        alignment = [np.dot(np.roll(strength, lag), clean_strength) for lag in lags]
        assert list(lags)[int(np.argmax(alignment))] == 0
    # clearly another sound, not another piece: mean |difference| 10-100 % of the clean spectrogram's mean
    # (15-83 % over 40 seeds)
    assert 0.1 * spectrogram.mean() < min(differences) and max(differences) < spectrogram.mean()


def test_no_effect_settings_leave_the_audio_nearly_alone(clean):
    _, audio, _ = clean
    dry = AugmentSettings(tilt_db_per_octave=(0, 0), eq_bands=(0, 0), reverb_probability=0, gain_db=(0, 0),
                          snr_db=(120, 120))
    np.testing.assert_allclose(augment_audio(audio, RATE, 0, dry), audio, atol=1e-5)


def test_room_response_decays_by_its_rt60():
    response = synthetic_room_response(RATE, 0.5, 0)
    energy = np.cumsum(response[::-1] ** 2)[::-1]  # Schroeder decay curve
    decay_db = 10 * np.log10(energy / energy[0])
    at_half_rt60 = decay_db[int(0.25 * RATE)]
    assert -36 < at_half_rt60 < -24  # -30 dB at half the RT60, within a sampling margin
    assert np.sum(response ** 2) == pytest.approx(1.0)


def test_augment_notes_blurs_with_the_pedal_but_keeps_onsets_and_pitches(clean):
    notes, _, _ = clean
    pedal = AugmentSettings(pedal_probability=1.0)
    sounding, velocities = augment_notes(notes, None, 3, pedal)
    np.testing.assert_array_equal(sounding[:, :2], notes[:, :2])
    assert np.all(sounding[:, 2] >= notes[:, 2]) and np.mean(sounding[:, 2] > notes[:, 2] + 0.05) > 0.3
    assert np.all(sounding[:, 2] <= notes[:, 2] + pedal.pedal_max_s + 1e-9)
    for pitch in np.unique(notes[:, 1]):  # a held note stops before its pitch is struck again
        same = sounding[sounding[:, 1] == pitch]
        same = same[np.argsort(same[:, 0])]
        assert np.all(same[:-1, 0] + same[:-1, 2] <= np.maximum(same[1:, 0], same[:-1, 0] + notes[0, 2]) + 1e-9)
    assert 1 <= velocities.min() and velocities.max() <= 127 and velocities.std() > 3
    again, again_velocities = augment_notes(notes, None, 3, pedal)
    np.testing.assert_array_equal(again, sounding)
    np.testing.assert_array_equal(again_velocities, velocities)


def test_augmented_takes_are_played_on_other_keyboards_of_the_soundfont(clean):
    notes, audio, spectrogram = clean
    draws = [draw_program(seed) for seed in range(40)]
    assert draws == [draw_program(seed) for seed in range(40)]  # seeded
    assert set(draws) == set(AugmentSettings().programs) == set(range(8))  # every keyboard program is drawn
    assert draw_program(3, AugmentSettings(programs=(0,))) == 0
    with pytest.raises(ValueError, match="programs"):
        AugmentSettings(programs=(128,))
    # another program is another sampled instrument: same notes and onsets, a different spectrum
    midi = midi_bytes(notes_to_midi(notes))
    np.testing.assert_array_equal(synthesize_midi(midi, sample_rate=RATE, piano_program=0), audio)
    harpsichord = spectrogram_from_audio(synthesize_midi(midi, sample_rate=RATE, piano_program=6), RATE)
    frames = min(harpsichord.shape[1], spectrogram.shape[1])
    assert np.abs(harpsichord[:, :frames] - spectrogram[:, :frames]).mean() > 0.1 * np.abs(spectrogram).mean()
    flux = np.corrcoef(_onset_strength(harpsichord[:, :frames]), _onset_strength(spectrogram[:, :frames]))[0, 1]
    assert flux > 0.5  # the onsets are the same notes'


def test_augment_audio_refuses_stereo():
    with pytest.raises(ValueError, match="mono"):
        augment_audio(np.zeros((100, 2)), RATE, 0)


TINY_CORPUS = [
    ("tiny_scale", melody_musicxml(SCALE * 2, tempo_bpm=120)),
    ("tiny_chords", melody_musicxml(SCALE[::-1] * 2, tempo_bpm=100, chord_every=2)),
    ("tiny_long", melody_musicxml(SCALE * 4, tempo_bpm=140, chord_every=3)),
]


def test_build_with_human_timing_and_augmented_takes(tmp_path):
    config = BuildConfig(tempo_ratios=(1.0, 0.9), timing="human", augment=2)
    build_dataset(tmp_path, TINY_CORPUS, config, workers=1, progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["failed"] == []
    assert manifest["build_config"]["timing"] == "human" and manifest["build_config"]["augment"] == 2
    assert manifest["build_config"]["human_timing"]["rubato"] > 0
    assert "velocity_scale" in manifest["build_config"]["augment_settings"]
    for entry in manifest["scores"]:
        score, split = entry["score"], entry["split"]
        names = sorted(files.name for files in list_pieces(tmp_path / split))
        expected = [score, f"{score}@t0.90-TimGM6mb"]
        if split == "train":  # only training scores get augmented takes, cycling through the tempo ratios
            expected += [f"{score}@t1.00-TimGM6mb-aug0", f"{score}@t0.90-TimGM6mb-aug1"]
        assert names == sorted(expected) and sorted(entry["performances"]) == sorted(expected)
        for piece in load_split(tmp_path / split, progress=False):
            assert np.all(np.diff(piece.true_x) >= 0)  # the ground truth stays monotone
            # every performed note plays a score note of its pitch, and in onset order the score's chords keep theirs
            np.testing.assert_array_equal(piece.notes[:, 1], piece.score_notes[:, 1])
            assert np.all(np.diff(piece.score_notes[:, 0]) >= 0)
            velocities = [n.velocity for n in parse_midi(str(tmp_path / split / "performance" / f"{piece.name}.mid"))
                          .instruments[0].notes]
            assert len(set(velocities)) > 3  # the dynamics are kept in the performance MIDI
    # an augmented take keeps its sound: with its spectrogram cache deleted it rebuilds the same one, not a clean one
    train_split = tmp_path / "train"
    take = next(files for files in list_pieces(train_split) if files.name.endswith("-aug0"))
    assert take.audio is not None and take.audio.is_file()
    cached = np.load(take.spectrogram)
    take.spectrogram.unlink()
    rebuilt = load_piece(piece_files(train_split, take.name)).spectrogram
    assert np.abs(rebuilt - cached).max() < 0.02  # 16-bit audio, same sound
    # a rebuild finds every take in place
    build_dataset(tmp_path, TINY_CORPUS, config, workers=1, progress=False)
    assert json.loads((tmp_path / "manifest.json").read_text())["scores_built_this_run"] == 0


def test_timing_settings_change_the_human_timing_of_a_build_and_are_recorded(tmp_path):
    plain, rough = tmp_path / "plain", tmp_path / "rough"
    corpus = TINY_CORPUS[:1]
    build_dataset(plain, corpus, BuildConfig(tempo_ratios=(1.0,), timing="human", split_fractions=(0, 1, 0)),
                  workers=1, progress=False)
    settings = (("jitter_s", 0.03), ("agogic_probability", 0.5), ("agogic_s", (0.1, 0.2)))
    build_dataset(rough, corpus, BuildConfig(tempo_ratios=(1.0,), timing="human", split_fractions=(0, 1, 0),
                                             timing_settings=settings), workers=1, progress=False)
    recorded = json.loads((rough / "manifest.json").read_text())["build_config"]["human_timing"]
    assert recorded["jitter_s"] == 0.03 and recorded["agogic_s"] == [0.1, 0.2] and recorded["rubato"] == 0.15
    plain_onsets, rough_onsets = (load_split(root / "valid", progress=False)[0].notes[:, 0] for root in (plain, rough))
    # agogic delays of 0.1-0.2 s on half the chords: the rough take runs later and less evenly than the plain one
    assert rough_onsets[-1] > plain_onsets[-1] + 0.3
    assert np.std(np.diff(rough_onsets)) > np.std(np.diff(plain_onsets))


def test_augment_settings_change_the_augmented_takes_of_a_build_and_are_recorded(tmp_path):
    """--augment-set pedal_probability=1 pedals every augmented take; the rest of the sound is held fixed here so
    that the pedal is the only difference between the two builds."""
    fixed = (("reverb_probability", 0.0), ("gain_db", 0.0), ("snr_db", 90.0), ("tilt_db_per_octave", 0.0),
             ("eq_bands", (0, 0)), ("programs", 0), ("velocity_jitter", 0.0), ("velocity_scale", 1.0))
    takes = {}
    for pedal in (0.0, 1.0):
        root = tmp_path / f"pedal{pedal}"
        config = BuildConfig(tempo_ratios=(1.0,), augment=1, split_fractions=(1, 0, 0),
                             augment_settings=fixed + (("pedal_probability", pedal),))
        build_dataset(root, TINY_CORPUS[2:], config, workers=1, progress=False)
        recorded = json.loads((root / "manifest.json").read_text())["build_config"]["augment_settings"]
        assert recorded["pedal_probability"] == pedal and recorded["programs"] == [0]
        assert recorded["snr_db"] == [90.0, 90.0] and recorded["rt60_s"] == [0.2, 1.2]  # untouched fields stay
        takes[pedal] = next(piece for piece in load_split(root / "train", progress=False)
                            if piece.name.endswith("-aug0"))
    dry, pedalled = takes[0.0].spectrogram, takes[1.0].spectrogram
    frames = min(dry.shape[1], pedalled.shape[1])
    np.testing.assert_array_equal(takes[0.0].onset_frames, takes[1.0].onset_frames)  # the pedal moves no onset
    # held notes: more energy between the onsets, in most frames
    assert (pedalled[:, :frames].sum(axis=0) > dry[:, :frames].sum(axis=0) + 1e-3).mean() > 0.5


def test_a_build_refuses_to_resume_into_a_dataset_built_with_other_settings(tmp_path):
    """Its takes would be kept under the same names and the manifest would claim the new settings."""
    config = BuildConfig(tempo_ratios=(1.0,), augment=1, split_fractions=(1, 0, 0))
    build_dataset(tmp_path, TINY_CORPUS[:1], config, workers=1, progress=False)
    manifest = (tmp_path / "manifest.json").read_bytes()
    pedalled = BuildConfig(tempo_ratios=(1.0,), augment=1, split_fractions=(1, 0, 0),
                           augment_settings=(("pedal_probability", 1.0),))
    with pytest.raises(ValueError, match=r"manifest.json: this dataset was built with other settings "
                                         r"\(augment_settings.pedal_probability 0.5 -> 1.0\)"):
        build_dataset(tmp_path, TINY_CORPUS[:1], pedalled, workers=1, progress=False)
    with pytest.raises(ValueError, match=r"tempo_ratios \[1.0\] -> \[0.9\]"):
        build_dataset(tmp_path, TINY_CORPUS[:1], BuildConfig(tempo_ratios=(0.9,), augment=1, split_fractions=(1, 0, 0)),
                      workers=1, progress=False)
    assert (tmp_path / "manifest.json").read_bytes() == manifest  # nothing was rebuilt or rewritten
    # more pieces complete a partial build: the same settings otherwise, so it goes on
    build_dataset(tmp_path, TINY_CORPUS[:2], config, workers=1, progress=False)
    assert json.loads((tmp_path / "manifest.json").read_text())["scores_built_this_run"] == 1


def test_cli_build_refuses_bad_options_in_one_line(tmp_path, capsys):
    assert sfgym_main(["data", "build", "--out", str(tmp_path), "--augment", "-1"]) == 1
    assert "augment must be a number of takes >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse names the choices
        sfgym_main(["data", "build", "--out", str(tmp_path), "--timing", "swing"])
    assert "invalid choice: 'swing'" in capsys.readouterr().err
    assert sfgym_main(["data", "build", "--out", str(tmp_path), "--timing", "human", "--timing-set", "jiter_s=0.1"]) == 1
    assert "unknown human timing setting(s) ['jiter_s']" in capsys.readouterr().err
    assert sfgym_main(["data", "build", "--out", str(tmp_path), "--timing-set", "jitter_s=0.1"]) == 1
    assert "build with timing='human'" in capsys.readouterr().err
    assert sfgym_main(["data", "build", "--out", str(tmp_path), "--timing", "human", "--timing-set", "jitter_s=x"]) == 1
    assert "--timing-set jitter_s: a number" in capsys.readouterr().err
    assert sfgym_main(["data", "build", "--out", str(tmp_path), "--augment-set", "pedal_probability=1"]) == 1
    assert "build with augment > 0" in capsys.readouterr().err
    assert sfgym_main(["data", "build", "--out", str(tmp_path), "--augment", "1", "--augment-set", "pedal=1"]) == 1
    assert "unknown augment setting(s) ['pedal']" in capsys.readouterr().err
    assert sfgym_main(["data", "build", "--out", str(tmp_path), "--augment", "1",
                       "--augment-set", "pedal_probability=1.5"]) == 1
    assert "pedal_probability must be a probability in [0, 1], got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "manifest.json").exists()
