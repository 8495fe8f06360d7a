"""Finding one piece by name in a dataset, for the commands that show or follow a single piece."""

from __future__ import annotations

from pathlib import Path

from sfgym.data.dataset import default_dataset_dir
from sfgym.data.msmd import PieceFiles, find_split_dir, list_pieces

SPLITS = ("train", "valid", "test")


def find_piece_files(name: str, data: str | Path | None = None, split: str | None = None) -> PieceFiles:
    """The files of piece ``name`` in ``data`` (a dataset root or a split; default: the default dataset).

    Without ``split`` every split of the root is searched.

    Raises:
        ValueError: no such piece (the message lists some that exist).
    """
    data = Path(default_dataset_dir() if data is None else data)
    if split is not None or (data / "score").is_dir():
        split_dirs = [find_split_dir(data, split or "test")]
    else:
        split_dirs = []
        for candidate in SPLITS:
            try:
                split_dirs.append(find_split_dir(data, candidate))
            except ValueError:
                continue
        if not split_dirs:
            raise ValueError(f"{data}: no split ({', '.join(SPLITS)}) found; give --data a dataset root or split")
    names: list[str] = []
    for split_dir in split_dirs:
        for files in list_pieces(split_dir):
            if files.name == name:
                return files
            names.append(files.name)
    where = ", ".join(str(d) for d in split_dirs)
    close = sorted(n for n in names if name.lower().split("@")[0] in n.lower())[:8] or sorted(names)[:8]
    raise ValueError(f"no piece named {name!r} in {where}; e.g. {', '.join(close)}")


__all__ = ["find_piece_files"]
