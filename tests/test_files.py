"""Atomic file writes: all or nothing, and with the permissions a plain new file would get."""

import os
import stat

import numpy as np
import pytest

from sfgym.data.synth import write_wav_atomic
from sfgym.files import atomic_write_bytes, current_umask, temporary_path_beside


@pytest.fixture
def umask():
    """Run a test under a chosen umask, restoring the old one after it."""
    old = current_umask()
    yield os.umask
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("value", [0o022, 0o002, 0o077])
def test_written_files_respect_the_umask(tmp_path, umask, value):
    umask(value)
    assert current_umask() == value
    atomic_write_bytes(tmp_path / "new" / "results.csv", b"a,b\n")
    write_wav_atomic(tmp_path / "take.wav", np.zeros(100, dtype=np.float32), 22050)
    beside = temporary_path_beside(tmp_path / "video.mp4", ".mp4")
    for path in (tmp_path / "new" / "results.csv", tmp_path / "take.wav", beside):
        assert mode(path) == 0o666 & ~value, path


def test_the_umask_is_found_without_proc_too(monkeypatch, umask):
    import sfgym.files

    def no_proc(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(sfgym.files, "open", no_proc, raising=False)
    umask(0o027)
    assert current_umask() == 0o027
    assert current_umask() == 0o027  # and it is left as it was


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "data.bin"
    atomic_write_bytes(path, b"old")
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "data.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]
