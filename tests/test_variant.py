"""The "unseen piano" variant: performances re-synthesized with another soundfont in a synthetic room."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from sfgym.cli import main as sfgym_main
from sfgym.data.msmd import list_pieces, load_split
from sfgym.data.variant import build_variant, reverberate, room_impulse_response


def test_room_impulse_response_is_seeded_and_decays_by_60_db_over_rt60():
    response = room_impulse_response(0.4, 22050, seed=3)
    np.testing.assert_array_equal(response, room_impulse_response(0.4, 22050, seed=3))
    assert not np.array_equal(response, room_impulse_response(0.4, 22050, seed=4))
    assert response[0] == 1.0 and len(response) == int(0.41 * 22050)
    tail = response[int(0.01 * 22050):]
    # 0 dB direct-to-reverberant, and the envelope falls ~60 dB from the first to the last 10 % of the tail
    assert np.sum(tail**2) == pytest.approx(1.0)
    tenth = len(tail) // 10
    drop_db = 10 * np.log10(np.mean(tail[:tenth] ** 2) / np.mean(tail[-tenth:] ** 2))
    assert 45 < drop_db < 60
    np.testing.assert_array_equal(room_impulse_response(0.0), [1.0])
    with pytest.raises(ValueError, match="reverberation time"):
        room_impulse_response(-1.0)


def test_reverberation_keeps_length_and_peak_and_smears_a_click():
    click = np.zeros(22050, dtype=np.float32)
    click[100] = 0.5
    wet = reverberate(click, 0.3, seed=0)
    assert wet.shape == click.shape and np.abs(wet).max() == pytest.approx(0.5)
    # energy after the click: none dry, a decaying tail wet
    assert np.sum(wet[400:] ** 2) > 0.1 * np.sum(wet**2)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from sfgym.data.msmd import write_piece
    from sfgym.data.synthetic import synthetic_piece

    root = tmp_path_factory.mktemp("source")
    write_piece(root / "test", synthetic_piece("toy_v", n_onsets=12, frames_per_onset=6, seed=5))
    return root


def _audio(root, name="toy_v"):
    return soundfile.read(root / "test" / "performance" / f"{name}.wav", dtype="float32")[0]


def test_variant_resynthesizes_deterministically_and_keeps_scores_and_timing(source, tmp_path):
    first = build_variant(source, tmp_path / "a", soundfont="TimGM6mb", reverb_s=0.3, seed=0, progress=False)
    again = build_variant(source, tmp_path / "b", soundfont="TimGM6mb", reverb_s=0.3, seed=0, progress=False)
    other_seed = build_variant(source, tmp_path / "c", soundfont="TimGM6mb", reverb_s=0.3, seed=1, progress=False)
    dry = build_variant(source, tmp_path / "d", soundfont="TimGM6mb", reverb_s=0.0, progress=False)

    np.testing.assert_array_equal(_audio(first), _audio(again))  # same seed, same audio
    assert not np.array_equal(_audio(first), _audio(other_seed))
    wet, plain = _audio(first), _audio(dry)
    assert wet.shape == plain.shape
    difference = np.sqrt(np.mean((wet - plain) ** 2) / np.mean(plain**2))
    assert 0.1 < difference < 2.0  # the room changes the audio, within bounds
    assert np.corrcoef(wet, plain)[0, 1] > 0.3  # ... but it is still the same music

    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["soundfont"] == "TimGM6mb" and manifest["reverb_rt60_s"] == 0.3 and manifest["seed"] == 0
    assert manifest["pieces"] == {"test": ["toy_v"]}
    (original,), (copied,) = load_split(source / "test", progress=False), load_split(first / "test", progress=False)
    np.testing.assert_array_equal(copied.sheet, original.sheet)
    np.testing.assert_array_equal(copied.notes, original.notes)  # the ground truth is unchanged
    common = min(len(copied.true_x), len(original.true_x))  # (the toy source's spectrogram is not audio's)
    np.testing.assert_array_equal(copied.true_x[:common], original.true_x[:common])
    # the spectrogram is the new audio's, cached and up to date
    files = list_pieces(first / "test")[0]
    assert files.spectrogram.stat().st_mtime >= files.audio.stat().st_mtime
    from sfgym.data.spectrogram import spectrogram_from_audio
    np.testing.assert_allclose(copied.spectrogram, spectrogram_from_audio(wet, 22050), atol=2e-3)  # wav: 16 bit


def test_variant_refuses_sf3_missing_soundfonts_and_writing_into_its_source(source, tmp_path):
    sf3 = tmp_path / "piano.sf3"
    sf3.write_bytes(b"RIFF")
    with pytest.raises(ValueError, match="SoundFont 3"):
        build_variant(source, tmp_path / "out", soundfont=str(sf3), progress=False)
    with pytest.raises(ValueError, match="no such file"):
        build_variant(source, tmp_path / "out", soundfont=str(tmp_path / "missing.sf2"), progress=False)
    with pytest.raises(ValueError, match="outside its source"):
        build_variant(source, source / "inside", soundfont="TimGM6mb", progress=False)
    assert not (tmp_path / "out").exists()


def test_variant_command(source, tmp_path, capsys):
    assert sfgym_main(["data", "variant", "--from", str(source), "--soundfont", "TimGM6mb", "--reverb", "0.2",
                       "--out", str(tmp_path / "v")]) == 0
    assert "re-synthesized" in capsys.readouterr().out
    assert (tmp_path / "v" / "test" / "performance" / "toy_v.wav").is_file()
    assert sfgym_main(["data", "variant", "--from", str(source), "--soundfont", str(tmp_path / "nope.sf2"),
                       "--out", str(tmp_path / "w")]) != 0
    assert "nope.sf2: no such file" in capsys.readouterr().err
