"""Writing files so that a reader never sees half of one: a temporary file beside the target, then a rename.

Datasets, checkpoints, results and videos are all written this way. The temporary file gets the
permissions a plain new file would (``0o666`` less the umask): ``tempfile.mkstemp`` makes it private
(0600), and a rename keeps that, so a dataset built by one user would be unreadable to the group.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask: from ``/proc/self/status`` where Linux shows it, else by setting it and
    restoring it at once (to the most private value meanwhile, and one sfgym thread at a time)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        umask = os.umask(0o077)
        os.umask(umask)
    return umask


def _new_file_mode() -> int:
    return 0o666 & ~current_umask()


def temporary_path_beside(path: str | Path, suffix: str) -> Path:
    """A fresh, empty temporary file in ``path``'s folder (created with its parents), so that ``os.replace``
    onto ``path`` is atomic; it has the permissions a plain new file would."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=suffix)
    os.close(fd)
    os.chmod(name, _new_file_mode())
    return Path(name)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.

    The folder is created if needed; the file gets the permissions a plain new file would (the umask
    is respected).
    """
    tmp = temporary_path_beside(path, ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = ["atomic_write_bytes", "current_umask", "temporary_path_beside"]
