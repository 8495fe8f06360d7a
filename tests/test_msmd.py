"""The MSMD layout: loading the real sample, round trips, and every bad-input case."""

from __future__ import annotations

import shutil

import numpy as np
import pretty_midi
import pytest

from sfgym.data.msmd import (
    find_split_dir, list_pieces, load_piece, load_split, piece_files, read_midi_notes, read_score_npz,
    write_piece, write_score_npz,
)
from sfgym.data.piece import Piece, PieceFormatError, ground_truth_x, merge_onsets

from conftest import MSMD_SAMPLE_PIECE, MSMD_SAMPLE_SPLIT


def test_real_msmd_sample_merges_to_113_increasing_onsets():
    sheet, coords, coord2onset = read_score_npz(MSMD_SAMPLE_SPLIT / "score" / f"{MSMD_SAMPLE_PIECE}.npz")
    notes = read_midi_notes(MSMD_SAMPLE_SPLIT / "performance" / f"{MSMD_SAMPLE_PIECE}.mid")
    assert sheet.shape == (200, 2968) and sheet.dtype == np.uint8
    assert len(coords) == len(coord2onset) == len(notes) == 228
    piece = Piece("sample", sheet, coords, coord2onset, notes, np.zeros((78, 900), np.float32))
    assert len(piece.onset_frames) == 113
    assert np.all(np.diff(piece.onset_frames) > 0)
    assert np.all(np.diff(piece.onset_x) > 0)
    # Ground truth: exact at onsets, constant before the first and after the last.
    assert np.allclose(piece.true_x[piece.onset_frames], piece.onset_x)
    assert piece.true_x[0] == piece.onset_x[0] and piece.true_x[-1] == piece.onset_x[-1]


def test_real_msmd_sample_loads_with_synthesized_spectrogram(tmp_path):
    split = tmp_path / "sample"
    shutil.copytree(MSMD_SAMPLE_SPLIT, split)
    [piece] = load_split(split, progress=False)
    assert piece.name == MSMD_SAMPLE_PIECE
    assert piece.spectrogram.shape[0] == 78
    # 41.9 s of MIDI at 20 fps, synthesized with release tails
    assert 41.8 * 20 <= piece.n_frames <= 47 * 20
    assert piece.spectrogram.max() > 0.5
    assert piece_files(split, piece.name).spectrogram.is_file(), "the spectrogram is cached next to the split"
    again = load_piece(piece_files(split, piece.name))
    np.testing.assert_array_equal(again.spectrogram, piece.spectrogram)


def test_merge_keeps_first_coord_per_frame_and_sorts():
    onset_frames_of_notes = np.array([5, 5, 9, 2])
    coords = np.array([[10, 100], [50, 101], [10, 150], [10, 40]], dtype=np.float32)
    frames, kept = merge_onsets(onset_frames_of_notes, coords, {0: 0, 1: 1, 2: 2, 3: 3})
    assert frames.tolist() == [2, 5, 9]
    assert kept[:, 1].tolist() == [40, 100, 150]
    assert ground_truth_x(12, frames, kept[:, 1])[[0, 2, 3, 5, 7, 11]].tolist() == [40, 40, 60, 100, 125, 150]


def test_write_and_load_round_trip(tmp_path, toy_pieces):
    piece = toy_pieces[0]
    write_piece(tmp_path / "train", piece)
    [loaded] = load_split(tmp_path / "train", progress=False)
    np.testing.assert_array_equal(loaded.onset_frames, piece.onset_frames)
    np.testing.assert_allclose(loaded.true_x, piece.true_x)
    np.testing.assert_array_equal(loaded.sheet, piece.sheet)
    assert loaded.score_notes is not None and len(loaded.score_notes) == len(piece.notes)


def test_find_split_dir_accepts_roots_msmd_names_and_splits(tmp_path, toy_dataset):
    assert find_split_dir(toy_dataset, "valid") == toy_dataset / "valid"
    assert find_split_dir(toy_dataset / "test", "train") == toy_dataset / "test"
    (tmp_path / "msmd_all_test" / "score").mkdir(parents=True)
    assert find_split_dir(tmp_path, "test") == tmp_path / "msmd_all_test"
    with pytest.raises(PieceFormatError, match="no split 'nope'"):
        find_split_dir(toy_dataset, "nope")


# ----------------------------------------------------------------------------- bad input
@pytest.fixture
def toy_split(tmp_path, toy_pieces):
    write_piece(tmp_path / "split", toy_pieces[0])
    return tmp_path / "split", toy_pieces[0].name


def _rewrite_score(split, name, **changes):
    sheet, coords, coord2onset = read_score_npz(split / "score" / f"{name}.npz")
    values = {"sheet": sheet, "coords": coords, "coord2onset": coord2onset} | changes
    write_score_npz(split / "score" / f"{name}.npz", **values)


def test_truncated_npz_names_the_file(toy_split):
    split, name = toy_split
    path = split / "score" / f"{name}.npz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(PieceFormatError, match=rf"{name}\.npz.*truncated or corrupt"):
        load_piece(piece_files(split, name))


def test_missing_key_is_named(toy_split):
    split, name = toy_split
    sheet, coords, _ = read_score_npz(split / "score" / f"{name}.npz")
    np.savez(split / "score" / f"{name}.npz", sheet=sheet, coords=coords)
    with pytest.raises(PieceFormatError, match=r"missing key\(s\) \['coord2onset'\]"):
        load_piece(piece_files(split, name))


def test_coords_outside_the_sheet(toy_split):
    split, name = toy_split
    _, coords, _ = read_score_npz(split / "score" / f"{name}.npz")
    coords = coords.copy()
    coords[3, 1] = 1e6
    _rewrite_score(split, name, coords=coords)
    with pytest.raises(PieceFormatError, match=r"outside the 200x\d+ sheet.*coord 3"):
        load_piece(piece_files(split, name))


def test_coord2onset_past_the_midi_notes(toy_split):
    split, name = toy_split
    _, _, coord2onset = read_score_npz(split / "score" / f"{name}.npz")
    _rewrite_score(split, name, coord2onset=coord2onset | {0: 999})
    with pytest.raises(PieceFormatError, match=r"to note 999, past the performance's 20 notes"):
        load_piece(piece_files(split, name))


def test_empty_performance(toy_split):
    split, name = toy_split
    pretty_midi.PrettyMIDI().write(str(split / "performance" / f"{name}.mid"))
    with pytest.raises(PieceFormatError, match=rf"{name}\.mid: empty performance"):
        load_piece(piece_files(split, name))


def test_corrupt_midi(toy_split):
    split, name = toy_split
    (split / "performance" / f"{name}.mid").write_bytes(b"MThd garbage")
    with pytest.raises(PieceFormatError, match="not a readable MIDI file"):
        load_piece(piece_files(split, name))


def test_nan_in_spectrogram(toy_pieces):
    piece = toy_pieces[0]
    spectrogram = piece.spectrogram.copy()
    spectrogram[5, 7] = np.nan
    with pytest.raises(PieceFormatError, match="1 NaN/inf"):
        Piece("bad", piece.sheet, piece.coords, piece.coord2onset, piece.notes, spectrogram, source="bad.npz")


def test_spectrogram_shorter_than_the_performance(toy_pieces):
    piece = toy_pieces[0]
    short = piece.spectrogram[:, : piece.last_onset_frame - 5]
    with pytest.raises(PieceFormatError, match="mismatched lengths"):
        Piece("short", piece.sheet, piece.coords, piece.coord2onset, piece.notes, short, source="short")


def test_wrong_spectrogram_bins(toy_pieces):
    piece = toy_pieces[0]
    with pytest.raises(PieceFormatError, match=r"shape \(78, T>0\)"):
        Piece("bins", piece.sheet, piece.coords, piece.coord2onset, piece.notes, piece.spectrogram[:40])


def test_score_notes_of_another_length(toy_pieces):
    piece = toy_pieces[0]
    with pytest.raises(PieceFormatError, match="score MIDI has 3 notes"):
        Piece("x", piece.sheet, piece.coords, piece.coord2onset, piece.notes, piece.spectrogram,
              score_notes=piece.notes[:3])


def test_empty_or_foreign_directory(tmp_path):
    with pytest.raises(PieceFormatError, match="not an MSMD split"):
        list_pieces(tmp_path)
    (tmp_path / "score").mkdir()
    with pytest.raises(PieceFormatError, match="holds no piece"):
        list_pieces(tmp_path)


# ----------------------------------------------------------------------------- score files without pickle
def _legacy_score_npz(path, coord2onset_object):
    """A score file in MSMD's legacy layout: coord2onset pickled inside a 1-element object array."""
    wrapped = np.empty(1, dtype=object)
    wrapped[0] = coord2onset_object
    np.savez(path, sheet=np.full((200, 50), 255, np.uint8), coords=np.array([[100.0, 10.0]], np.float32),
             coord2onset=wrapped)


class _RunsCode:
    """Unpickling this would create a directory: the kind of object a handed-over file can hide."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.makedirs, (self.marker,)


def test_sfgym_writes_score_files_that_load_without_pickle(toy_split):
    split, name = toy_split
    with np.load(split / "score" / f"{name}.npz", allow_pickle=False) as archive:
        pairs = archive["coord2onset"]
    assert pairs.dtype == np.int64 and pairs.shape[1] == 2
    _, _, coord2onset = read_score_npz(split / "score" / f"{name}.npz")
    assert list(coord2onset.items()) == [tuple(row) for row in pairs.tolist()]  # key order kept


def test_legacy_pickle_with_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    _legacy_score_npz(path, {0: 0, 1: _RunsCode(marker)})
    with pytest.raises(PieceFormatError, match=r"evil\.npz: 'coord2onset' is a pickled object that needs "
                                               r"os\.makedirs.*--trust-pickle"):
        read_score_npz(path)
    assert not marker.exists()


def test_legacy_pickle_outside_the_allow_list_loads_only_when_trusted(tmp_path):
    from collections import OrderedDict

    path = tmp_path / "ordered.npz"
    _legacy_score_npz(path, OrderedDict([(0, 0)]))
    with pytest.raises(PieceFormatError, match="collections.OrderedDict"):
        read_score_npz(path)
    assert read_score_npz(path, trust_pickle=True)[2] == {0: 0}


@pytest.mark.parametrize("content", ["text", "npy"])
def test_a_score_that_is_not_an_npz_names_the_file(tmp_path, content):
    path = tmp_path / "score.npz"
    if content == "text":
        path.write_text("this is not a score\n")
        problem = "not a readable npz archive"
    else:
        with path.open("wb") as handle:
            np.save(handle, np.zeros((200, 10), np.uint8))
        problem = r"is a single \.npy array, not an \.npz archive"
    with pytest.raises(PieceFormatError, match=rf"score\.npz: {problem}"):
        read_score_npz(path)


def test_data_convert_rewrites_real_msmd_without_pickle(tmp_path, capsys):
    from sfgym.cli import main as sfgym_main

    split = tmp_path / "msmd"
    shutil.copytree(MSMD_SAMPLE_SPLIT, split)
    path = split / "score" / f"{MSMD_SAMPLE_PIECE}.npz"
    before = read_score_npz(path)
    with pytest.raises(ValueError, match="Object arrays cannot be loaded"):
        np.load(path, allow_pickle=False)["coord2onset"]
    assert sfgym_main(["data", "convert", str(split)]) == 0
    assert "converted 1 of 1" in capsys.readouterr().out
    with np.load(path, allow_pickle=False) as archive:
        assert archive["coord2onset"].shape == (len(before[2]), 2)
    after = read_score_npz(path)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert list(after[2].items()) == list(before[2].items())
    assert sfgym_main(["data", "convert", str(split)]) == 0
    assert "converted 0 of 1" in capsys.readouterr().out


def test_nan_in_a_cached_spectrogram_names_the_cache_file(toy_split):
    split, name = toy_split
    files = piece_files(split, name)
    spectrogram = np.load(files.spectrogram)
    spectrogram[3, 4] = np.inf
    np.save(files.spectrogram, spectrogram)
    with pytest.raises(PieceFormatError, match=rf"{name}\.spec78\.npy: .*1 NaN/inf.*delete this file"):
        load_piece(files)
    files.spectrogram.unlink()
    assert np.isfinite(load_piece(files).spectrogram).all()  # rebuilt from the performance


def test_reconcile_leaves_a_performance_in_score_order_alone_and_fixes_one_out_of_it():
    from sfgym.data.piece import reconcile_onsets

    score = np.repeat(np.arange(20) * 0.5, 2)  # 20 two-note chords
    played = 1.0 + 1.1 * score
    unchanged = reconcile_onsets(score, played)
    assert np.array_equal(unchanged.onsets, played) and len(unchanged.reconciled) == 0
    played[21] += 0.7  # one note of chord 10 played after chord 11
    fixed = reconcile_onsets(score, played)
    assert fixed.outliers.tolist() == [21] and fixed.reconciled.tolist() == [21]
    np.testing.assert_allclose(fixed.onsets, 1.0 + 1.1 * score)  # the chord keeps its other note's time
    assert fixed.largest_correction == pytest.approx(0.7) and fixed.inconsistent_chords == 1


def test_reconcile_keeps_the_chords_around_a_hold_in_order():
    from sfgym.data.piece import reconcile_onsets

    score = np.repeat(np.arange(20) * 0.25, 3)  # 20 three-note chords
    chords = np.arange(20) * 0.25 + np.where(np.arange(20) >= 10, 1.2, 0.0)  # a 1.2 s fermata before chord 10
    played = np.repeat(chords, 3) + np.tile([0.01, 0.0, -0.02], 20)  # spread chords, in score order
    reconciled = reconcile_onsets(score, played)
    assert len(reconciled.outliers) == 0  # the bend in the tempo line is no reason to drop a note
    np.testing.assert_allclose(reconciled.chord_onsets, chords)  # each chord at its median
