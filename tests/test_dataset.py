"""Building MSMD-format datasets from scores, and importing a user's own piece."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from sfgym.cli import main as sfgym_main
from sfgym.data.dataset import BuildConfig, assign_splits, build_dataset, dataset_summary, expressive_timing
from sfgym.data.engrave import engrave
from sfgym.data.importer import import_piece, read_alignment_csv, read_match_alignment, read_match_info, retime_notes
from sfgym.data.msmd import find_split_dir, list_pieces, load_split, notes_to_midi
from sfgym.data.piece import PieceFormatError

from scores import SCALE, melody_musicxml

TINY_CORPUS = [
    ("tiny_scale", melody_musicxml(SCALE * 2, tempo_bpm=120)),
    ("tiny_chords", melody_musicxml(SCALE[::-1] * 2, tempo_bpm=100, chord_every=2)),
    ("tiny_long", melody_musicxml(SCALE * 5, tempo_bpm=140, chord_every=3)),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("built")
    build_dataset(root, TINY_CORPUS, BuildConfig(tempo_ratios=(0.9, 1.0)), workers=2, progress=False)
    return root


def test_build_writes_msmd_splits_with_a_manifest(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["failed"] == []
    assert manifest["split_sizes"] == {"train": 1, "valid": 1, "test": 1}
    assert manifest["build_config"]["tempo_ratios"] == [0.9, 1.0]
    assert manifest["spectrogram"]["fps"] == 20 and "verovio" in manifest["versions"]
    splits = {entry["score"]: entry["split"] for entry in manifest["scores"]}
    for score, split in splits.items():
        names = [files.name for files in list_pieces(built / split)]
        # one score file per score, one performance per tempo ratio, all in the score's split
        assert names == [score, f"{score}@t0.90-TimGM6mb"]


def test_built_pieces_are_aligned(built):
    for split in ("train", "valid", "test"):
        for piece in load_split(find_split_dir(built, split), progress=False):
            assert piece.sheet.shape[0] == 200
            # every onset maps to a notehead, and noteheads move right with time (one system here)
            assert len(piece.onset_frames) == len(np.unique(np.floor(piece.notes[:, 0] * 20 + 1e-9)))
            assert np.all(np.diff(piece.onset_x) > 0)
            # the sheet has ink under every kept notehead centre
            rows, cols = piece.onset_coords[:, 0].astype(int), piece.onset_coords[:, 1].astype(int)
            assert np.all(piece.sheet[rows, cols] < 128)
            # the performance is audible at its onsets
            assert piece.spectrogram[:, piece.onset_frames].sum(axis=0).min() > 0


def test_tempo_variant_is_slower_and_shares_the_score(built):
    split = next(s for s in ("train", "valid", "test") if any(f.name == "tiny_long" for f in list_pieces(built / s)))
    canonical, slower = load_split(built / split, ["tiny_long", "tiny_long@t0.90-TimGM6mb"], progress=False)
    # 0.9 of the tempo: about 1/0.9 as long, within the ±10 % tempo curves of both performances
    ratio = slower.notes[-1, 0] / canonical.notes[-1, 0]
    assert 1.0 < ratio < 1.12 / 0.9
    np.testing.assert_array_equal(slower.sheet, canonical.sheet)
    np.testing.assert_allclose(slower.score_notes, canonical.score_notes, atol=1e-3)


def test_rebuild_resumes_and_skips_finished_scores(built):
    build_dataset(built, TINY_CORPUS, BuildConfig(tempo_ratios=(0.9, 1.0)), workers=1, progress=False)
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["scores_built_this_run"] == 0
    assert len(manifest["scores"]) == 3


def test_a_broken_score_is_reported_not_fatal(tmp_path):
    corpus = TINY_CORPUS[:1] + [("broken", "<score-partwise>not music</score-partwise>")]
    build_dataset(tmp_path, corpus, BuildConfig(tempo_ratios=(1.0,)), workers=1, progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [f["score"] for f in manifest["failed"]] == ["broken"]
    assert [e["score"] for e in manifest["scores"]] == ["tiny_scale"]


def test_expressive_timing_bends_but_keeps_order():
    notes = np.stack([np.arange(0, 30, 0.5), np.full(60, 60.0), np.full(60, 0.5)], axis=1)
    steady = expressive_timing(notes, 1.25, 0.0, seed=0)
    np.testing.assert_allclose(steady[:, 0], notes[:, 0] / 1.25)
    bent = expressive_timing(notes, 1.0, 0.1, seed=0)
    gaps = np.diff(bent[:, 0])
    assert np.all(gaps > 0) and gaps.max() / gaps.min() > 1.1 and 0.5 / 1.1 - 1e-3 < gaps.min()
    np.testing.assert_array_equal(bent, expressive_timing(notes, 1.0, 0.1, seed=0))
    assert not np.array_equal(bent, expressive_timing(notes, 1.0, 0.1, seed=1))


def test_split_is_by_score_deterministic_and_seeded():
    names = [f"piece{i}" for i in range(50)]
    first = assign_splits(names, seed=0)
    assert first == assign_splits(list(reversed(names)), seed=0)
    assert first != assign_splits(names, seed=1)
    assert sorted(np.unique(list(first.values()), return_counts=True)[1]) == [5, 5, 40]


def test_data_info_lists_pieces(built, capsys):
    assert sfgym_main(["data", "info", str(built), "--pieces"]) == 0
    output = capsys.readouterr().out
    assert "tiny_long@t0.90-TimGM6mb" in output and "1 scores, 2 performances" in output
    rows = dataset_summary(built)
    assert len(rows) == 6 and all(row["onsets"] > 0 for row in rows)


def test_data_info_summarizes_by_default_and_filters(built, capsys):
    rows = dataset_summary(built)
    assert sfgym_main(["data", "info", str(built)]) == 0
    output = capsys.readouterr().out
    assert "1 scores, 2 performances" in output and not any(f" {row['piece']} " in output for row in rows)
    split = rows[0]["split"]
    assert sfgym_main(["data", "info", str(built), "--split", split, "--pieces"]) == 0
    output = capsys.readouterr().out
    assert all((f" {row['piece']} " in output) == (row["split"] == split) for row in rows)
    assert sfgym_main(["data", "info", str(built), "--piece", "tiny_long@*"]) == 0
    output = capsys.readouterr().out
    listed = [row["piece"] for row in rows if f" {row['piece']} " in output]
    assert listed and all(piece.startswith("tiny_long@") for piece in listed)
    assert sfgym_main(["data", "info", str(built), "--piece", "nothing*"]) == 0
    assert "no performances match" in capsys.readouterr().out


# ----------------------------------------------------------------------------- import
@pytest.fixture
def score_file(tmp_path):
    path = tmp_path / "etude.musicxml"
    path.write_text(melody_musicxml(SCALE * 2, tempo_bpm=120, chord_every=4))
    return path


def test_import_score_only_synthesizes_its_own_midi(tmp_path, score_file):
    out = tmp_path / "eval"
    import_piece(score_file, out)
    [piece] = load_split(out, progress=False)
    assert piece.name == "etude"
    np.testing.assert_allclose(piece.notes[:, 0], piece.score_notes[:, 0], atol=1e-3)
    assert piece.onset_frames[:3].tolist() == [0, 10, 20]  # quarter notes at 120 bpm: 0.5 s apart


def test_import_with_performance_follows_the_alignment(tmp_path, score_file):
    engraved = engrave(score_file)
    # The performer plays twice as slowly as notated and starts after 1 s; note n5 is missing from the CSV.
    alignment = tmp_path / "align.csv"
    with alignment.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["note_id", "onset_s"])
        for note_id, (onset, _, _) in zip(engraved.note_ids_of_notes, engraved.notes):
            if note_id != "n5":
                writer.writerow([note_id, 1.0 + 2 * onset])
    performance = tmp_path / "take1.mid"
    performed = engraved.notes.copy()
    performed[:, 0] = 1.0 + 2 * performed[:, 0]
    notes_to_midi(performed).write(str(performance))

    out = tmp_path / "eval"
    import_piece(score_file, out, performance=performance, alignment=alignment)
    import_piece(score_file, out)  # a second import accumulates in the same directory
    import_piece(score_file, out, name="Op10_3@take1")  # named by the caller (ASAP: every score has one file name)
    assert [f.name for f in list_pieces(out)] == ["Op10_3@take1", "etude", "etude@take1"]
    piece = load_split(out, ["etude@take1"], progress=False)[0]
    np.testing.assert_allclose(piece.notes[:, 0], 1.0 + 2 * piece.score_notes[:, 0], atol=1e-3)
    assert piece.onset_frames[0] == 20 and piece.onset_frames[5] == 20 + 5 * 20  # n5 interpolated
    assert (out / "performance" / "etude@take1.wav").is_file()


def test_import_without_alignment_names_a_missing_performance(tmp_path, score_file):
    with pytest.raises(PieceFormatError, match="take.mid: performance file does not exist"):
        import_piece(score_file, tmp_path / "out", performance=tmp_path / "take.mid")


def test_alignment_csv_errors_are_clear(tmp_path, score_file):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,time\nn0,0.0\n")
    performance = tmp_path / "p.mid"
    notes_to_midi(np.array([[0.0, 60, 0.5]])).write(str(performance))
    assert sfgym_main(["data", "import", "--score", str(score_file), "--performance", str(performance),
                       "--alignment", str(bad), "--out", str(tmp_path / "out")]) == 1
    with pytest.raises(PieceFormatError, match="only 0 of the score's"):
        retime_notes(np.array([[0.0, 60, 1.0], [1.0, 62, 1.0]]), ["a", "b"], {"zzz": 1.0})


def _write_alignment(path, rows, header="note_id,onset_s", bom=False):
    text = header + "\n" + "".join(f"{note_id}, {onset:.4f}\n" for note_id, onset in rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def test_alignment_from_a_spreadsheet_export_reads(tmp_path):
    path = _write_alignment(tmp_path / "a.csv", [("n0", 0.5), ("n1", 1.0)], header="note_id, onset_s", bom=True)
    assert read_alignment_csv(path) == {"n0": 0.5, "n1": 1.0}


def test_a_note_id_given_twice_names_both_lines(tmp_path):
    path = _write_alignment(tmp_path / "a.csv", [("n0", 0.5), ("n1", 1.0), ("n2", 1.5), ("n1", 1.1)])
    with pytest.raises(PieceFormatError, match=r"a\.csv: note_id 'n1' appears twice, on lines 3 and 5"):
        read_alignment_csv(path)


MATCH_HEADER = ("info(matchFileVersion,1.0.0).\ninfo(scoreFileName,etude.musicxml).\n"
                "info(midiClockUnits,480).\ninfo(midiClockRate,500000).\n")


def _match_line(note_id: str, tick: int) -> str:
    """A version-1 matched note (as Vienna 4x22's): snote(score note)-note(id, pitch, onset, offset, velocity, ...)."""
    return f"snote({note_id},[C,n],4,1:1,0,1/4,0.0000,1.0000,[v1,staff1])-note(p{note_id},60,{tick},{tick + 200},80,0,0).\n"


def test_match_file_alignments_are_read_in_seconds(tmp_path):
    # 480 ticks per quarter at 500,000 us per quarter: 960 ticks = 1 s. Deletions and insertions are skipped.
    match = tmp_path / "take.match"
    match.write_text(MATCH_HEADER + _match_line("n0", 480) + _match_line("n1", 960)
                     + "snote(n2,[D,n],4,1:2,0,1/4,1.0000,2.0000,[v1,staff1])-deletion.\n"
                     + "insertion-note(p9,61,1000,1100,70,0,0).\n"
                     # the older layout: note(id, [step, alter], octave, onset, offset, adjusted offset, velocity)
                     + "snote(n3,[E,n],4,1:3,0,1/4,2.0000,3.0000,[v1,staff1])-note(p3,[E,n],4,1920,2100,2100,80).\n")
    assert read_match_alignment(match) == pytest.approx({"n0": 0.5, "n1": 1.0, "n3": 2.0})
    assert read_match_info(match)["scoreFileName"] == "etude.musicxml"  # which score and recording it aligns


def test_match_file_errors_name_the_file_and_the_problem(tmp_path):
    no_clock = tmp_path / "no_clock.match"
    no_clock.write_text("info(matchFileVersion,1.0.0).\n" + _match_line("n0", 480))
    with pytest.raises(PieceFormatError, match=r"no_clock\.match: a match file needs numeric info\(midiClockUnits"):
        read_match_alignment(no_clock)
    empty = tmp_path / "empty.match"
    empty.write_text(MATCH_HEADER)
    with pytest.raises(PieceFormatError, match=r"empty\.match: match file has no matched notes"):
        read_match_alignment(empty)
    twice = tmp_path / "twice.match"
    twice.write_text(MATCH_HEADER + _match_line("n0", 480) + _match_line("n0", 960))
    with pytest.raises(PieceFormatError, match=r"twice\.match: line 6: score note 'n0' is matched twice"):
        read_match_alignment(twice)


def test_import_follows_a_match_file(tmp_path, score_file):
    engraved = engrave(score_file)
    # Played 1.5x slower than notated after a 0.5 s rest, as a match file records it (ticks of 1/960 s).
    lines = [_match_line(note_id, round((0.5 + 1.5 * onset) * 960))
             for note_id, (onset, _, _) in zip(engraved.note_ids_of_notes, engraved.notes)]
    match = tmp_path / "take2.match"
    match.write_text(MATCH_HEADER + "".join(lines))
    performance = tmp_path / "take2.mid"
    performed = engraved.notes.copy()
    performed[:, 0] = 0.5 + 1.5 * performed[:, 0]
    notes_to_midi(performed).write(str(performance))
    assert sfgym_main(["data", "import", "--score", str(score_file), "--performance", str(performance),
                       "--alignment", str(match), "--out", str(tmp_path / "eval")]) == 0
    [piece] = load_split(tmp_path / "eval", progress=False)
    np.testing.assert_allclose(piece.notes[:, 0], 0.5 + 1.5 * piece.score_notes[:, 0], atol=2e-3)


GRACE = '<note id="g{0}"><grace slash="yes"/><pitch><step>G</step><octave>5</octave></pitch><type>eighth</type></note>'


@pytest.fixture(scope="module")
def real_looking(tmp_path_factory):
    """A score with chords and grace notes, its unperturbed performance (a steady 1.2× slower), and a
    perturbed one as real alignments look: grace notes 80 ms before the beat, chords rolled over 150 ms
    around the beat, 2 % of the notes displaced by 0.3-0.9 s (seeded)."""
    root = tmp_path_factory.mktemp("real_looking")
    xml = melody_musicxml(SCALE * 12, tempo_bpm=240, chord_every=2)
    for k in range(3, 96, 12):
        xml = xml.replace(f'<note id="n{k}">', GRACE.format(k) + f'<note id="n{k}">', 1)
    score = root / "etude.musicxml"
    score.write_text(xml)
    engraved = engrave(score)
    ids, score_times = engraved.note_ids_of_notes, engraved.notes[:, 0]
    steady = {nid: 0.5 + 1.2 * t for nid, t in zip(ids, score_times)}
    played = dict(steady)
    for nid in ids:
        if nid.startswith("g"):  # the grace note before n{k}: 80 ms before n{k}'s beat
            played[nid] = steady["n" + nid[1:]] - 0.08
    for chord_time in np.unique(score_times):
        members = [nid for nid, t in zip(ids, score_times) if t == chord_time and not nid.startswith("g")]
        if len(members) > 1:
            for nid, offset in zip(members, np.linspace(-0.075, 0.075, len(members))):
                played[nid] = steady[nid] + offset
    rng = np.random.default_rng(7)
    candidates = [nid for nid in ids if not nid.startswith("g")]
    displaced = rng.choice(candidates, size=round(0.02 * len(ids)), replace=False)
    for nid in displaced:
        played[nid] = max(steady[nid] + rng.choice([-1, 1]) * rng.uniform(0.3, 0.9), 0.0)
    return score, engraved, steady, played, sorted(displaced)


def _import_with(tmp_path, score, engraved, onsets, name):
    alignment = _write_alignment(tmp_path / f"{name}.csv", onsets.items())
    performance = tmp_path / f"{name}.mid"
    performed = engraved.notes.copy()
    performed[:, 0] = [onsets[nid] for nid in engraved.note_ids_of_notes]
    notes_to_midi(performed[np.argsort(performed[:, 0], kind="stable")]).write(str(performance))
    out = tmp_path / "eval"
    import_piece(score, out, performance=performance, alignment=alignment)
    return load_split(out, [f"etude@{name}"], progress=False)[0]


def test_real_looking_alignment_imports_with_a_monotone_ground_truth(tmp_path, real_looking):
    score, engraved, steady, played, displaced = real_looking
    reference = _import_with(tmp_path, score, engraved, steady, "steady")
    with pytest.warns(UserWarning, match=r"reconciled \d+ of \d+ aligned notes played out of score order") as caught:
        piece = _import_with(tmp_path, score, engraved, played, "played")
    assert len([w for w in caught if "reconciled" in str(w.message)]) == 1
    assert np.all(np.diff(piece.true_x) >= 0)  # no backwards step from a rolled chord or a displaced note
    np.testing.assert_allclose(piece.notes[:, 0], np.sort(list(played.values())), atol=2e-3)  # as performed
    # At every onset of the unperturbed ground truth, the reconciled one reaches the same x within 50 ms.
    reached = np.maximum(np.searchsorted(piece.true_x, reference.onset_x - 1e-3), piece.first_onset_frame)
    assert np.max(np.abs(reached - reference.onset_frames)) <= 1, (reached - reference.onset_frames)


def test_an_alignment_mostly_out_of_order_is_refused_with_the_ids(tmp_path, real_looking):
    score, engraved, steady, _, _ = real_looking
    rng = np.random.default_rng(0)
    shuffled = dict(zip(steady, rng.permutation(list(steady.values()))))
    with pytest.raises(PieceFormatError, match=r"shuffled\.csv: the alignment is inconsistent with the score order: "
                                               r"\d+ of \d+ chords are out of order.*first: n\w+ at [\d.]+ s"):
        _import_with(tmp_path, score, engraved, shuffled, "shuffled")


def _steady_alignment(tmp_path, score_file):
    engraved = engrave(score_file)
    return _write_alignment(tmp_path / "steady.csv", [(nid, 0.5 + t) for nid, t in
                                                      zip(engraved.note_ids_of_notes, engraved.notes[:, 0])])


def test_import_of_an_unreadable_recording_names_it(tmp_path, score_file, capsys):
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    args = ["data", "import", "--score", str(score_file), "--performance", str(junk),
            "--alignment", str(_steady_alignment(tmp_path, score_file)), "--out", str(tmp_path / "out")]
    assert sfgym_main(args) == 1
    assert "junk.wav: not a readable audio file" in capsys.readouterr().err


def test_a_recording_shorter_than_its_alignment_is_named_not_the_score(tmp_path, score_file):
    import soundfile

    short = tmp_path / "take.wav"
    soundfile.write(str(short), np.zeros(22050, np.float32), 22050)
    with pytest.raises(PieceFormatError, match=r"take\.wav: the performance lasts 1\.00 s, but its alignment .* "
                                               r"last onset at 8\.00 s"):
        import_piece(score_file, tmp_path / "out", performance=short,
                     alignment=_steady_alignment(tmp_path, score_file))


def test_reimporting_a_piece_needs_overwrite(tmp_path, score_file, capsys):
    out = tmp_path / "out"
    import_piece(score_file, out)
    with pytest.raises(PieceFormatError, match=r"etude\.mid: a piece named 'etude' is already imported .*--overwrite"):
        import_piece(score_file, out)
    assert sfgym_main(["data", "import", "--score", str(score_file), "--out", str(out), "--overwrite"]) == 0
    assert "imported etude" in capsys.readouterr().out
