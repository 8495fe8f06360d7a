"""scripts/build_rough_dev.py: the held-out scores it builds on, and its sustain-pedalled copy."""

from __future__ import annotations

import numpy as np
import pytest

from sfgym.data.dataset import BuildConfig, assign_splits, build_dataset
from sfgym.data.msmd import load_split

from conftest import load_script
from scores import SCALE, melody_musicxml


@pytest.fixture(scope="module")
def rough_dev():
    return load_script("build_rough_dev")


def test_the_rough_dev_set_is_built_on_valid_scores_only(rough_dev):
    from sfgym.data.corpus import corpus_pieces

    chosen = rough_dev.held_out_scores()
    names = [piece.name for piece in chosen]
    assert len(names) == len(set(names)) > 10
    default_splits = assign_splits([piece.name for piece in corpus_pieces("default")])
    piano_splits = assign_splits([piece.name for piece in corpus_pieces("piano-v2")])
    for name in names:  # never a score trained on (or tested on) in either corpus
        splits = {default_splits.get(name), piano_splits.get(name)}
        assert "valid" in splits and not splits & {"train", "test"}
    BuildConfig(timing="human", timing_settings=rough_dev.ROUGH_TIMING)  # settings the timing model accepts


def test_the_pedalled_copy_blurs_the_sound_and_keeps_the_notes(rough_dev, tmp_path):
    # staccato quarter notes: without pedal each one stops long before the next
    corpus = [("staccato", melody_musicxml(SCALE * 2, tempo_bpm=90))]
    root, pedalled = tmp_path / "rough", tmp_path / "rough-pedal"
    build_dataset(root, corpus, BuildConfig(tempo_ratios=(1.0,), split_fractions=(0, 1, 0)), workers=1, progress=False)
    rough_dev.pedalled_copy(root, pedalled, "TimGM6mb")
    dry, wet = (load_split(path / "valid", progress=False)[0] for path in (root, pedalled))
    np.testing.assert_array_equal(dry.notes, wet.notes)
    np.testing.assert_array_equal(dry.onset_frames, wet.onset_frames)
    assert dry.spectrogram.shape == wet.spectrogram.shape
    # held notes ring on: more energy between the onsets, and the same seed gives the same copy
    assert wet.spectrogram.sum() > 1.05 * dry.spectrogram.sum()
    again = tmp_path / "again"
    rough_dev.pedalled_copy(root, again, "TimGM6mb")
    np.testing.assert_array_equal(load_split(again / "valid", progress=False)[0].spectrogram, wet.spectrogram)
    with pytest.raises(SystemExit, match="exists"):
        rough_dev.pedalled_copy(root, pedalled, "TimGM6mb")
