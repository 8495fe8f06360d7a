"""Sub-commands of the ``sfgym`` command line (one module each, see :mod:`sfgym.cli`).

Every command module is imported to build the command line's parser, so each imports the rest of sfgym
(torch, the followers, the data builder) inside the functions that run the command: `sfgym --help` and each
command start in a third of the time. This is the one place where project imports stay inside functions
as a rule."""

import argparse
from pathlib import Path


class CommandParser(argparse.ArgumentParser):
    """The parser of the command line and of every command: options are taken only as written.

    argparse by default takes any unambiguous prefix of an option for the option (``allow_abbrev``), so that
    ``sfgym render --score S`` was read as ``--score-speed S``. Sub-command parsers are made of the class of
    the parser that adds them, so every ``add_parser`` below :func:`sfgym.cli.build_parser` is one of these.
    """

    def __init__(self, *args, allow_abbrev: bool = False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)


def check_output_path(path: Path, option: str, *, directory: bool) -> None:
    """Refuse, before any work is done, an output ``path`` that cannot be written.

    ``directory``: whether ``path`` is to be a directory (else a file).

    Raises:
        ValueError: ``path`` is of the wrong kind, or a folder above it is a file.
    """
    if path.exists() and path.is_dir() != directory:
        kind = "a file, not a directory" if directory else "a directory, not a file"
        raise ValueError(f"{option} {path} is {kind}: give {'a directory' if directory else 'the file'} to write")
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(f"{option} {path}: {folder} is a file, not a directory")
            break
