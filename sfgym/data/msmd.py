"""Reading and writing the MSMD score-following layout.

One *split* is a directory::

    <split>/score/<score>.npz              sheet, coords, coord2onset (one unrolled score)
    <split>/score/<score>.mid              optional: the score's notes at the notated tempo
    <split>/performance/<piece>.mid        the performance's notes (synthesized if no audio)
    <split>/performance/<piece>.wav        optional: the performance's audio (aligned to the .mid)
    <split>/spectrogram/<piece>.spec78.npy optional cache of the 78-bin spectrogram (written by sfgym)

A piece is named after its score (``<score>``, as in real MSMD). sfgym's builder adds further
performances of the same score (other tempi, other soundfonts) as ``<score>@<variant>``; they share
``score/<score>.npz``. Real MSMD splits therefore load unchanged.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfgym.data.midi import parse_midi
from sfgym.data.piece import FPS, N_SPEC_BINS, Piece, PieceFormatError
from sfgym.data.synth import synthesize_midi
from sfgym.files import atomic_write_bytes

SCORE_KEYS = ("sheet", "coords", "coord2onset")
SPECTROGRAM_SUFFIX = ".spec78.npy"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
VARIANT_SEPARATOR = "@"


# ---------------------------------------------------------------------------- writing
def write_score_npz(path: str | Path, sheet: np.ndarray, coords: np.ndarray, coord2onset: dict[int, int]) -> None:
    """Write a score file that loads without pickle.

    ``coord2onset`` is stored as an int64 ``(K, 2)`` array of (coord index, note index) rows in the dict's
    key order (the order :func:`sfgym.data.piece.merge_onsets` walks), not as MSMD's pickled dict.
    """
    pairs = np.array([(int(k), int(v)) for k, v in coord2onset.items()], dtype=np.int64).reshape(-1, 2)
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, sheet=np.asarray(sheet, dtype=np.uint8), coords=np.asarray(coords, dtype=np.float32),
        coord2onset=pairs,
    )
    atomic_write_bytes(path, buffer.getvalue())


def write_array_npy(path: str | Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------------------- reading
TRUST_PICKLE_HINT = (
    "if you trust the file, load it with trust_pickle=True or convert it once: sfgym data convert DIR --trust-pickle"
)

# What a legacy ``coord2onset`` (MSMD's, and sfgym's before the pickle-free format) needs to unpickle: a
# one-element object ndarray holding a dict of ints. Nothing here can call arbitrary code.
_LEGACY_PICKLE_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype")} | {
    (module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")
}


class _LegacyScoreUnpickler(pickle.Unpickler):
    """Unpickles only numpy arrays, dtypes and scalars (and the builtin containers pickle builds itself)."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _LEGACY_PICKLE_GLOBALS:
            raise _UnsafePickle(f"{module}.{name}")
        return super().find_class(module, name)


class _UnsafePickle(pickle.UnpicklingError):
    """A legacy score file's pickle needs a global outside the allow-list."""


def _npy_dtype(stream: io.BytesIO) -> np.dtype:
    """The dtype in a ``.npy`` stream's header; leaves the stream at the start of the data."""
    version = np.lib.format.read_magic(stream)
    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return header(stream)[2]


def _read_npz_member(archive: zipfile.ZipFile, key: str, path: Path, trust_pickle: bool) -> tuple[object, bool]:
    """One array of an npz archive, and whether it was a (legacy) pickled object array."""
    stream = io.BytesIO(archive.read(f"{key}.npy"))
    if not _npy_dtype(stream).hasobject:
        stream.seek(0)
        return np.load(stream, allow_pickle=False), False
    if trust_pickle:
        return pickle.load(stream, encoding="latin1"), True  # noqa: S301 - the caller vouched for the file
    try:
        return _LegacyScoreUnpickler(stream, encoding="latin1").load(), True
    except _UnsafePickle as error:
        raise PieceFormatError(
            path, f"'{key}' is a pickled object that needs {error}, which sfgym does not unpickle unless told to trust "
            f"the file (unpickling can run code); {TRUST_PICKLE_HINT}"
        ) from None


def _coord2onset_of(value: object, path: Path) -> dict[int, int]:
    """``coord2onset`` from its stored form: a ``(K, 2)`` int array, or MSMD's dict in a 1-element object array."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, dict):
        try:
            return {int(k): int(v) for k, v in value.items()}
        except (TypeError, ValueError) as error:
            raise PieceFormatError(path, f"'coord2onset' must map ints to ints: {error}") from None
    if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[1] == 2 and value.dtype.kind in "iu":
        return {int(k): int(v) for k, v in value}
    shape = getattr(value, "shape", None)
    raise PieceFormatError(
        path, f"'coord2onset' must be a (K, 2) int array or a dict, got {type(value).__name__}"
        + (f" of shape {shape} and dtype {value.dtype}" if shape is not None else "")
    )


def read_score_npz(path: str | Path, *, trust_pickle: bool = False) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Read ``sheet``, ``coords`` and ``coord2onset`` from an MSMD score file, without running pickled code.

    Files sfgym writes hold no pickle. Legacy files (real MSMD's, and sfgym's before its pickle-free format)
    store ``coord2onset`` as a pickled dict; it is decoded with an allow-list unpickler that builds numpy
    arrays and plain dicts of ints only. A pickle needing anything else is refused unless ``trust_pickle``
    says the file comes from a trusted source (then it is unpickled as numpy would).

    Raises:
        PieceFormatError: the file is missing, not an npz archive, truncated, corrupt, lacks a key, or holds
            a pickle outside the allow-list (without ``trust_pickle``).
    """
    path = Path(path)
    if not path.is_file():
        raise PieceFormatError(path, "score file does not exist")
    with path.open("rb") as handle:
        magic = handle.read(len(np.lib.format.MAGIC_PREFIX))
    if magic == np.lib.format.MAGIC_PREFIX:
        raise PieceFormatError(path, f"is a single .npy array, not an .npz archive of {list(SCORE_KEYS)}")
    try:
        with zipfile.ZipFile(path) as archive:
            present = {name.removesuffix(".npy") for name in archive.namelist()}
            missing = [key for key in SCORE_KEYS if key not in present]
            if missing:
                raise PieceFormatError(
                    path, f"missing key(s) {missing}; an MSMD score file holds {list(SCORE_KEYS)}"
                )
            values = {key: _read_npz_member(archive, key, path, trust_pickle)[0] for key in SCORE_KEYS}
    except PieceFormatError:
        raise
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, OSError, ValueError, KeyError, TypeError,
            AttributeError, IndexError) as error:
        raise PieceFormatError(path, f"not a readable npz archive (truncated or corrupt?): {error}") from error
    for key in ("sheet", "coords"):
        if not isinstance(values[key], np.ndarray) or values[key].dtype.hasobject:
            raise PieceFormatError(path, f"'{key}' must be a numeric array, got {type(values[key]).__name__}")
    return values["sheet"], values["coords"], _coord2onset_of(values["coord2onset"], path)


def score_npz_is_pickled(path: str | Path) -> bool:
    """Whether a score file stores ``coord2onset`` in the legacy pickled form (see :func:`convert_score_npz`)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            stream = io.BytesIO(archive.read("coord2onset.npy"))
    except (zipfile.BadZipFile, OSError, KeyError) as error:
        raise PieceFormatError(path, f"not a readable npz archive (truncated or corrupt?): {error}") from error
    try:
        return bool(_npy_dtype(stream).hasobject)
    except ValueError as error:
        raise PieceFormatError(path, f"'coord2onset' is not a readable array: {error}") from error


def convert_score_npz(path: str | Path, *, trust_pickle: bool = False) -> bool:
    """Rewrite a legacy (pickled ``coord2onset``) score file in the pickle-free format; ``True`` if it did.

    The sheet, coords and mapping (in its key order) are unchanged; the file is replaced atomically.
    """
    if not score_npz_is_pickled(path):
        return False
    sheet, coords, coord2onset = read_score_npz(path, trust_pickle=trust_pickle)
    write_score_npz(path, sheet, coords, coord2onset)
    return True


def read_midi_notes(path: str | Path) -> np.ndarray:
    """Note events ``(onset s, pitch, duration s)`` of a MIDI file, sorted by onset then pitch.

    All non-drum instruments are merged, as MSMD's note list (and pretty_midi's ``get_onsets``) does.
    """
    path = Path(path)
    if not path.is_file():
        raise PieceFormatError(path, "performance MIDI does not exist")
    try:
        midi = parse_midi(str(path))
    except Exception as error:  # pretty_midi/mido raise many types for broken files
        raise PieceFormatError(path, f"not a readable MIDI file: {error}") from error
    return notes_of_midi(midi, source=path)


def notes_of_midi(midi, source: str | Path = "<midi>") -> np.ndarray:
    """Sorted ``(onset, pitch, duration)`` rows of a ``pretty_midi.PrettyMIDI``; raises if it has none."""
    rows = [
        (note.start, note.pitch, note.end - note.start)
        for instrument in midi.instruments
        if not instrument.is_drum
        for note in instrument.notes
    ]
    if not rows:
        raise PieceFormatError(source, "empty performance: the MIDI contains no notes")
    notes = np.array(rows, dtype=np.float64)
    return notes[np.lexsort((notes[:, 1], notes[:, 0]))]


@dataclass(frozen=True)
class PieceFiles:
    """Where one piece's files live in a split directory."""

    name: str
    score: Path
    midi: Path
    audio: Path | None
    spectrogram: Path
    score_midi: Path | None = None

    @property
    def split_dir(self) -> Path:
        return self.score.parent.parent


def piece_files(split_dir: str | Path, name: str) -> PieceFiles:
    """The paths of piece ``name`` (``score`` or ``score@variant``) in ``split_dir``."""
    split_dir = Path(split_dir)
    score_name = name.split(VARIANT_SEPARATOR, 1)[0]
    performance = split_dir / "performance"
    audio = next((performance / f"{name}{s}" for s in AUDIO_SUFFIXES if (performance / f"{name}{s}").is_file()), None)
    return PieceFiles(
        name=name,
        score=split_dir / "score" / f"{score_name}.npz",
        midi=performance / f"{name}.mid",
        audio=audio,
        spectrogram=split_dir / "spectrogram" / f"{name}{SPECTROGRAM_SUFFIX}",
        score_midi=score_midi if (score_midi := split_dir / "score" / f"{score_name}.mid").is_file() else None,
    )


def list_pieces(split_dir: str | Path) -> list[PieceFiles]:
    """All pieces of a split: one per performance MIDI whose score exists, sorted by name.

    Raises:
        PieceFormatError: the directory is not an MSMD split or holds no piece.
    """
    split_dir = Path(split_dir)
    if not (split_dir / "score").is_dir():
        raise PieceFormatError(split_dir, "not an MSMD split directory (no 'score/' folder inside)")
    pieces = []
    for midi in sorted((split_dir / "performance").glob("*.mid")):
        files = piece_files(split_dir, midi.stem)
        if files.score.is_file():
            pieces.append(files)
    if not pieces:
        raise PieceFormatError(split_dir, "holds no piece (no performance/*.mid with a matching score/*.npz)")
    return pieces


def find_split_dir(data: str | Path, split: str) -> Path:
    """Resolve ``split`` inside a dataset root, or accept ``data`` if it is a split itself.

    Accepts sfgym's layout (``<root>/train``), MSMD's (``<root>/msmd_all_train``) and any
    ``<root>/*_<split>`` directory.
    """
    data = Path(data)
    if not data.is_dir():
        raise PieceFormatError(data, "data directory does not exist")
    if (data / "score").is_dir():
        return data
    candidates = [data / split] + sorted(data.glob(f"*_{split}"))
    for candidate in candidates:
        if (candidate / "score").is_dir():
            return candidate
    available = sorted(p.name for p in data.iterdir() if (p / "score").is_dir())
    raise PieceFormatError(
        data, f"no split '{split}' here (looked for {split}/ and *_{split}/); splits found: {available or 'none'}"
    )


def _read_cached_spectrogram(files: PieceFiles) -> np.ndarray | None:
    if not files.spectrogram.is_file():
        return None
    newest_input = max(p.stat().st_mtime for p in (files.midi, files.audio) if p is not None and p.exists())
    if files.spectrogram.stat().st_mtime < newest_input:
        return None  # stale: the performance changed after the cache was written
    try:
        spectrogram = np.load(files.spectrogram, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise PieceFormatError(files.spectrogram, f"unreadable spectrogram cache (delete it to rebuild): {error}") from error
    if spectrogram.dtype.kind == "f" and not np.all(np.isfinite(spectrogram)):
        raise PieceFormatError(
            files.spectrogram, f"spectrogram cache holds {int((~np.isfinite(spectrogram)).sum())} NaN/inf values "
            "(corrupt cache); delete this file and sfgym rebuilds it from the performance"
        )
    return spectrogram


def compute_spectrogram(files: PieceFiles, soundfont: str = "TimGM6mb") -> np.ndarray:
    """The performance's 78-bin spectrogram: from its audio file, or else by synthesizing its MIDI."""
    # Imported here: the spectrogram's scipy.fft costs ~130 ms, which `import sfgym` (this module) need not pay.
    from sfgym.data.spectrogram import spectrogram_from_audio, spectrogram_from_file

    if files.audio is not None:
        return spectrogram_from_file(files.audio)
    sample_rate = 22050
    try:
        audio = synthesize_midi(files.midi, soundfont=soundfont, sample_rate=sample_rate)
    except ValueError as error:
        raise PieceFormatError(files.midi, str(error)) from error
    return spectrogram_from_audio(audio, sample_rate)


def notes_to_midi(notes: np.ndarray, program: int = 0, resolution: int = 960, velocities: np.ndarray | None = None):
    """A one-instrument ``pretty_midi.PrettyMIDI`` (acoustic piano) playing ``(onset, pitch, duration)`` rows,
    at velocity 80 or the given per-note ``velocities``."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=program, name="piano")
    notes = np.asarray(notes, dtype=np.float64)[:, :3]
    velocities = np.full(len(notes), 80) if velocities is None else np.asarray(velocities)
    for (onset, pitch, duration), velocity in zip(notes, velocities):
        piano.notes.append(pretty_midi.Note(velocity=int(velocity), pitch=int(pitch), start=float(onset),
                                            end=float(onset + max(duration, 0.01))))
    midi.instruments.append(piano)
    return midi


def midi_bytes(midi) -> bytes:
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def write_piece(split_dir: str | Path, piece: Piece, *, audio: bytes | None = None, write_score: bool = True,
                performance_midi: bytes | None = None) -> PieceFiles:
    """Write ``piece`` into ``split_dir`` in the MSMD layout (each file atomically).

    The score files (``score/<score>.npz`` and, if the piece has them, the notated-tempo
    ``score/<score>.mid``) are written when ``write_score`` is set, the performance MIDI and the
    spectrogram cache always, the audio (WAV bytes) when given. The spectrogram cache is written
    last, so it is never older than the performance it was computed from. ``performance_midi`` (bytes) is
    written as the performance MIDI instead of ``piece.notes`` at velocity 80 (to keep its dynamics); its
    notes must be ``piece.notes``.
    """
    split_dir = Path(split_dir)
    files = piece_files(split_dir, piece.name)
    if write_score:
        write_score_npz(files.score, piece.sheet, piece.coords, piece.coord2onset)
        if piece.score_notes is not None:
            atomic_write_bytes(split_dir / "score" / f"{piece.score_name}.mid", midi_bytes(notes_to_midi(piece.score_notes)))
    atomic_write_bytes(files.midi, performance_midi if performance_midi is not None else midi_bytes(notes_to_midi(piece.notes)))
    if audio is not None:
        atomic_write_bytes(files.midi.with_suffix(".wav"), audio)
    write_array_npy(files.spectrogram, piece.spectrogram.astype(np.float32))
    return piece_files(split_dir, piece.name)


def load_piece(
    files: PieceFiles, *, soundfont: str = "TimGM6mb", cache_spectrogram: bool = True, trust_pickle: bool = False
) -> Piece:
    """Load and validate one piece.

    The spectrogram comes from the cache next to the split when present and up to date, else from
    the performance's audio, else from synthesizing its MIDI with ``soundfont``; a freshly computed
    one is cached (atomically) when ``cache_spectrogram`` is set and the split is writable. ``trust_pickle``:
    see :func:`read_score_npz`.
    """
    sheet, coords, coord2onset = read_score_npz(files.score, trust_pickle=trust_pickle)
    notes = read_midi_notes(files.midi)
    score_notes = read_midi_notes(files.score_midi) if files.score_midi is not None else None
    spectrogram = _read_cached_spectrogram(files)
    if spectrogram is None:
        spectrogram = compute_spectrogram(files, soundfont=soundfont)
        if cache_spectrogram and os.access(files.split_dir, os.W_OK):
            write_array_npy(files.spectrogram, spectrogram.astype(np.float32))
    source = f"{files.score} + {files.midi.name}"
    return Piece(
        name=files.name, sheet=sheet, coords=coords, coord2onset=coord2onset, notes=notes,
        spectrogram=spectrogram, source=source, fps=FPS, score_notes=score_notes,
    )


def load_split(
    split_dir: str | Path, names: list[str] | None = None, *, progress: bool = True, **load_kwargs
) -> list[Piece]:
    """Load all (or the named) pieces of a split, with a progress bar."""
    from tqdm.auto import tqdm

    available = {files.name: files for files in list_pieces(split_dir)}
    if names is not None:
        unknown = sorted(set(names) - set(available))
        if unknown:
            raise PieceFormatError(split_dir, f"unknown piece(s) {unknown}; available: {sorted(available)[:10]}...")
        selected = [available[n] for n in names]
    else:
        selected = list(available.values())
    return [
        load_piece(files, **load_kwargs)
        for files in tqdm(selected, desc=f"loading {Path(split_dir).name}", disable=not progress, leave=False)
    ]


def load_canonical_first(data: str | Path, split: str, max_pieces: int | None = None) -> list[Piece]:
    """The pieces of ``split`` in ``data`` (a dataset root or split directory); with ``max_pieces``,
    the first of them in a fixed order that takes every score's canonical performance (named after
    the score) before any other performance (``score@variant``), so that a few pieces cover as many
    scores as they can."""
    split_dir = find_split_dir(data, split)
    names = sorted((files.name for files in list_pieces(split_dir)), key=lambda name: ("@" in name, name))
    if max_pieces is not None:
        names = names[:max_pieces]
    return load_split(split_dir, names, progress=False)


__all__ = [
    "N_SPEC_BINS", "PieceFiles", "compute_spectrogram", "convert_score_npz", "find_split_dir", "list_pieces",
    "load_canonical_first", "load_piece", "load_split", "midi_bytes", "notes_of_midi", "parse_midi", "notes_to_midi", "piece_files",
    "read_midi_notes", "read_score_npz", "score_npz_is_pickled", "write_array_npy", "write_piece", "write_score_npz",
]
