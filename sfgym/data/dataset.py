"""Building MSMD-format datasets offline, and the built-in default dataset.

``build_dataset`` turns public-domain scores (by default :func:`sfgym.data.corpus.default_corpus`, which
ships inside the music21 wheel) into an MSMD-layout dataset root::

    <root>/manifest.json          source, versions, parameters, the split of every score
    <root>/train|valid|test/      one MSMD split each (see :mod:`sfgym.data.msmd`)

For every score: engrave it with verovio (unrolled sheet + notehead coordinates + notehead→note map),
render its MIDI at several tempo ratios (MSMD's augmentation), synthesize each with every requested
piano soundfont, and compute the 78-bin spectrogram. Unlike MSMD, whose performances keep one constant
tempo, each performance also bends its tempo along a smooth, seeded curve (±10 % by default,
``tempo_curve_depth``), so that a follower must listen rather than count: a metronome that knows the
notated tempo is not already perfect. ``tempo_curve_depth=0`` gives MSMD's constant-tempo performances. The performance at tempo 1.0 with the first soundfont
is named after the score; the others are ``<score>@t0.90-<soundfont>`` and so on, sharing the score file.
Two options make the training data look more like real playing: ``timing="human"`` performs every score with
:func:`sfgym.data.performance.human_performance` (rubato, ritardandi, holds, spread chords, dynamics) instead of the
smooth curve, and ``augment=N`` adds N sound-augmented takes of every *train* score
(``<score>@t0.90-<soundfont>-aug0``, ...; :mod:`sfgym.data.augment`: velocity, pedal, timbre, room, level, noise).
The split is by score, never by performance, so no test score is ever heard in training.

Writes are atomic per file and ordered so that a piece only appears (its ``performance/*.mid``) once its
spectrogram is in place; the manifest is written last, so an interrupted build is resumed, not trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sfgym.data.augment import AugmentSettings, augment_audio, augment_notes, draw_program
from sfgym.data.corpus import CORPORA, corpus_pieces
from sfgym.data.engrave import engrave
from sfgym.data.msmd import (list_pieces, midi_bytes, notes_of_midi, notes_to_midi, piece_files, read_midi_notes,
                             read_score_npz, write_piece)
from sfgym.data.performance import HumanTiming, human_performance, smooth_tempo_factor
from sfgym.data.piece import Piece, note_onset_frames
from sfgym.data.synth import available_soundfonts, synthesize_midi, wav_bytes
from sfgym.files import atomic_write_bytes
from sfgym.ray_support import map_unordered
from sfgym.settings import reject_unknown_fields

DEFAULT_DATASET_NAME = "default-v1"
SAMPLE_RATE = 22050
"""Sample rate (Hz) at which the builder synthesizes, augments and analyses every performance."""
DATA_DIR_ENV = "SFGYM_DATA_DIR"
MANIFEST = "manifest.json"
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class BuildConfig:
    """Parameters of a dataset build; recorded in the manifest.

    Attributes:
        tempo_ratios: performances per score at these tempo ratios (>1 is faster), MSMD used 0.9..1.1.
        soundfonts: soundfont names (see :func:`sfgym.data.synth.available_soundfonts`) or ``.sf2`` paths; one
            performance per soundfont and tempo. The default is the one piano soundfont that pip brings
            (TimGM6mb); add e.g. Debian's ``/usr/share/sounds/sf2/FluidR3_GM.sf2`` for MSMD-like timbre variety.
        split_fractions: train / valid / test shares of the *scores*.
        seed: seeds the split.
        max_pieces: build only the first N scores of the corpus (``None`` = all).
        tempo_curve_depth: relative depth of the smooth tempo fluctuation of every performance (0 = constant).
        timing: ``"smooth"`` (the smooth tempo curve only) or ``"human"`` (:func:`sfgym.data.performance.human_performance`
            with default :class:`~sfgym.data.performance.HumanTiming`, its slow curve ``tempo_curve_depth`` deep).
        augment: extra sound-augmented takes of every train score (:mod:`sfgym.data.augment`; 0 = none). Take k
            plays at the k-th tempo ratio and soundfont (cycling), with its own timing seed.
        timing_settings: ``(field, value)`` pairs that replace fields of the human timing model
            (:class:`~sfgym.data.performance.HumanTiming`, with ``timing="human"``), e.g. ``(("jitter_s", 0.03),)``
            for rougher timing than the default; recorded in the manifest with the model's other parameters.
        augment_settings: ``(field, value)`` pairs that replace fields of the augmentation
            (:class:`~sfgym.data.augment.AugmentSettings`, with ``augment`` > 0), e.g. ``(("pedal_probability", 1.0),)``
            for takes that are all sustain-pedalled; a single number for a range field means that value always.
        corpus: the built-in corpus built when ``build_dataset`` gets no corpus (:data:`sfgym.data.corpus.CORPORA`):
            ``"default"``, ``"piano-v2"`` (vendored piano parts of songs, fewer chorales; see
            :func:`sfgym.data.corpus.piano_v2_corpus`) or ``"songs"`` (those song parts alone).
    """

    tempo_ratios: tuple[float, ...] = (0.9, 1.0, 1.1)
    soundfonts: tuple[str, ...] = ("TimGM6mb",)
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    max_pieces: int | None = None
    tempo_curve_depth: float = 0.1
    timing: str = "smooth"
    augment: int = 0
    corpus: str = "default"
    timing_settings: tuple[tuple[str, Any], ...] = ()
    augment_settings: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.corpus not in CORPORA:
            raise ValueError(f"unknown corpus {self.corpus!r}: choose one of {', '.join(CORPORA)}")
        if self.timing not in TIMING_MODELS:
            raise ValueError(f"unknown timing model {self.timing!r}: choose one of {', '.join(TIMING_MODELS)}")
        if self.augment < 0:
            raise ValueError(f"augment must be a number of takes >= 0, got {self.augment}")
        if self.timing_settings:
            if self.timing != "human":
                raise ValueError("timing settings change the human timing model: build with timing='human'")
            self.human_timing()  # unknown fields and bad values are errors now, not in a worker later
        if self.augment_settings:
            if not self.augment:
                raise ValueError("augment settings change the augmented takes: build with augment > 0")
            self.augmentation()

    def human_timing(self):
        """The :class:`~sfgym.data.performance.HumanTiming` of this build's human-timed performances."""
        settings = dict(self.timing_settings)
        reject_unknown_fields(HumanTiming, settings, "human timing")
        settings = {key: tuple(value) if isinstance(value, list) else value for key, value in settings.items()}
        return HumanTiming(**{"smooth_depth": self.tempo_curve_depth, **settings})

    def augmentation(self):
        """The :class:`~sfgym.data.augment.AugmentSettings` of this build's augmented takes."""
        return AugmentSettings.with_changes(dict(self.augment_settings))


TIMING_MODELS = ("smooth", "human")


def expressive_timing(notes: np.ndarray, tempo_ratio: float, depth: float, seed: int) -> np.ndarray:
    """Notes ``(onset, pitch, duration)`` at notated time, played at ``tempo_ratio`` with a smooth tempo curve.

    The local tempo factor is ``1 + depth * c(t)``, ``c`` a sum of three slow sinusoids (periods 4–16 s,
    seeded phases) scaled to [-1, 1]; performance time is the integral of ``1 / (ratio * factor)``.
    """
    if tempo_ratio <= 0:
        raise ValueError(f"tempo ratio must be positive, got {tempo_ratio}")
    notes = np.asarray(notes, dtype=np.float64)
    end = float((notes[:, 0] + notes[:, 2]).max()) + 1.0
    grid = np.arange(0.0, end + 0.01, 0.01)
    factor = smooth_tempo_factor(grid, depth, np.random.default_rng(seed))
    performance_time = np.concatenate([[0.0], np.cumsum(0.01 / (tempo_ratio * factor[:-1]))])
    onsets = np.interp(notes[:, 0], grid, performance_time)
    offsets = np.interp(notes[:, 0] + notes[:, 2], grid, performance_time)
    return np.stack([onsets, notes[:, 1], np.maximum(offsets - onsets, 0.01)], axis=1)


def _performance_seed(seed: int, score_name: str, tempo_ratio: float) -> int:
    return int(hashlib.sha256(f"{seed}:{score_name}:{tempo_ratio}".encode()).hexdigest()[:8], 16)


def _perform(score_notes: np.ndarray, tempo_ratio: float, config: BuildConfig, seed: int):
    """The performed notes (score order) and their velocities (``None``: the builder's constant 80)."""
    if config.timing == "human":
        played = human_performance(score_notes, tempo_ratio, seed, config.human_timing())
        return played.notes, played.velocities
    return expressive_timing(score_notes, tempo_ratio, config.tempo_curve_depth, seed), None


def augmented_takes(config: BuildConfig, soundfonts: tuple[str, ...]) -> list[tuple[int, float, str]]:
    """``(take, tempo ratio, soundfont)`` of every augmented take of a train score: ratios and soundfonts cycle."""
    return [(k, config.tempo_ratios[k % len(config.tempo_ratios)], soundfonts[k % len(soundfonts)])
            for k in range(config.augment)]


def augmented_name(score_name: str, take: int, tempo_ratio: float, soundfont: str) -> str:
    return f"{performance_name(score_name, tempo_ratio, soundfont_label(soundfont), False)}-aug{take}"


def assign_splits(score_names: list[str], fractions=(0.8, 0.1, 0.1), seed: int = 0) -> dict[str, str]:
    """Deterministic split of scores: order by a seeded hash, cut by ``fractions``.

    With three or more scores, valid and test get at least one each.
    """
    order = sorted(score_names, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())
    n = len(order)
    n_valid = max(1 if n >= 3 else 0, round(n * fractions[1]))
    n_test = max(1 if n >= 3 else 0, round(n * fractions[2]))
    n_train = n - n_valid - n_test
    return {name: ("train" if i < n_train else "valid" if i < n_train + n_valid else "test")
            for i, name in enumerate(order)}


def performance_name(score_name: str, tempo_ratio: float, soundfont: str, canonical: bool) -> str:
    return score_name if canonical else f"{score_name}@t{tempo_ratio:.2f}-{soundfont}"


def soundfont_label(soundfont: str) -> str:
    """The soundfont's short name in performance names: a registered name, or an .sf2 file's stem."""
    return Path(soundfont).stem if soundfont.endswith(".sf2") else soundfont


def _check_soundfonts(soundfonts: tuple[str, ...]) -> tuple[str, ...]:
    known = available_soundfonts()
    unknown = [s for s in soundfonts if s not in known and not Path(s).is_file()]
    if unknown or not soundfonts:
        raise ValueError(f"unknown soundfont(s) {unknown}: give installed names {sorted(known)} or .sf2 paths")
    return tuple(soundfonts)


def _build_one_score(score_source, score_name: str, split_dir: Path, config: BuildConfig, soundfonts,
                     augment: bool = False) -> dict:
    """Engrave one score and write all its performances (and, with ``augment``, its augmented takes) into
    ``split_dir``. Runs in a worker process."""
    from sfgym.data.spectrogram import spectrogram_from_audio  # here: scipy.fft, ~130 ms of `import sfgym`

    started = time.perf_counter()
    engraved = engrave(score_source)
    score_notes = engraved.notes
    performances = []
    for tempo_ratio in config.tempo_ratios:
        played, velocities = _perform(score_notes, tempo_ratio, config, _performance_seed(config.seed, score_name, tempo_ratio))
        midi = notes_to_midi(played, velocities=velocities)
        notes = notes_of_midi(midi, source=score_name)
        midi_data = midi_bytes(midi)  # serialized once: every soundfont plays it
        performance_midi = None if velocities is None else midi_data  # keeps the dynamics
        for soundfont_index, soundfont in enumerate(soundfonts):
            canonical = tempo_ratio == 1.0 and soundfont_index == 0
            name = performance_name(score_name, tempo_ratio, soundfont_label(soundfont), canonical)
            audio = synthesize_midi(midi_data, soundfont=soundfont, sample_rate=SAMPLE_RATE)
            spectrogram = spectrogram_from_audio(audio, SAMPLE_RATE)
            piece = Piece(name=name, sheet=engraved.sheet, coords=engraved.coords,
                          coord2onset=engraved.coord2onset, notes=notes, spectrogram=spectrogram,
                          source=f"{score_name} (built)", score_notes=score_notes)
            write_piece(split_dir, piece, write_score=not performances, performance_midi=performance_midi)
            performances.append({"name": name, "tempo_ratio": tempo_ratio, "soundfont": soundfont,
                                 "duration_s": round(piece.duration_s, 2), "onsets": len(piece.onset_frames)})
    augmentation = config.augmentation()
    for take, tempo_ratio, soundfont in augmented_takes(config, soundfonts) if augment else []:
        take_seed = _performance_seed(config.seed, f"{score_name}:aug{take}", tempo_ratio)
        played, velocities = _perform(score_notes, tempo_ratio, config, take_seed)
        rng = np.random.default_rng([take_seed, 1])  # independent of the timing's draws
        sounding, velocities = augment_notes(played, velocities, rng, augmentation)  # pedal lengthens what sounds
        audio = synthesize_midi(midi_bytes(notes_to_midi(sounding, velocities=velocities)), soundfont=soundfont,
                                sample_rate=SAMPLE_RATE, piano_program=draw_program(rng, augmentation))
        audio = augment_audio(audio, SAMPLE_RATE, rng, augmentation)
        spectrogram = spectrogram_from_audio(audio, SAMPLE_RATE)
        midi = notes_to_midi(played, velocities=velocities)
        name = augmented_name(score_name, take, tempo_ratio, soundfont)
        piece = Piece(name=name, sheet=engraved.sheet, coords=engraved.coords, coord2onset=engraved.coord2onset,
                      notes=notes_of_midi(midi, source=score_name), spectrogram=spectrogram,
                      source=f"{score_name} (built, augmented)", score_notes=score_notes)
        # the augmented sound is kept as audio: a deleted spectrogram cache then rebuilds from it, not clean
        write_piece(split_dir, piece, write_score=False, performance_midi=midi_bytes(midi),
                    audio=wav_bytes(audio, SAMPLE_RATE, source=name))
        performances.append({"name": name, "tempo_ratio": tempo_ratio, "soundfont": soundfont, "augmented": True,
                             "duration_s": round(piece.duration_s, 2), "onsets": len(piece.onset_frames)})
    return {"score": score_name, "noteheads": len(engraved.coords), "sheet_width": int(engraved.sheet.shape[1]),
            "performances": performances, "seconds": round(time.perf_counter() - started, 2)}


def _score_complete(split_dir: Path, score_name: str, expected: list[str]) -> bool:
    return all((f := piece_files(split_dir, name)).midi.is_file() and f.spectrogram.is_file() and f.score.is_file()
               for name in expected)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("sfgym", "verovio", "music21", "midirenderer", "pretty_midi", "librosa", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def build_dataset(
    out_dir: str | Path,
    corpus: list | None = None,
    config: BuildConfig = BuildConfig(),
    *,
    workers: int | None = None,
    progress: bool = True,
    ray: bool = False,
    ray_address: str | None = None,
) -> Path:
    """Build an MSMD-format dataset root from scores; resume an interrupted build.

    Args:
        out_dir: the dataset root to create (or complete).
        corpus: :class:`sfgym.data.corpus.CorpusPiece` list, or ``(name, path_or_text)`` pairs; default: the
            built-in public-domain corpus.
        config: augmentation and split parameters.
        workers: parallel processes (default: the machine's CPU count); with ``ray``, scores at a time
            (default: as the cluster's CPUs allow).
        progress: show a progress bar.
        ray: build the scores as Ray tasks (:func:`sfgym.ray_support.map_unordered`) rather than in a local process pool: the
            same worker, the same files. On a cluster ``out_dir`` must be a path every machine sees.
        ray_address: with ``ray``, the cluster to join (``auto``, ``HOST:6379``; default: start local Ray).

    Returns:
        ``out_dir``, whose ``manifest.json`` lists every score, its split and its performances.
    """
    from tqdm.auto import tqdm

    from sfgym.data.spectrogram import SpectrogramParams  # here: scipy.fft, ~130 ms of `import sfgym`
    out_dir = Path(out_dir)
    soundfonts = _check_soundfonts(config.soundfonts)
    record = _build_record(config, soundfonts)
    _check_same_build(out_dir, record)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = _resolve_corpus(corpus, config.max_pieces, config.corpus)
    splits = assign_splits([name for name, _, _ in sources], config.split_fractions, config.seed)

    entries, failures, todo = [], [], []
    for name, source, meta in sources:
        expected = [performance_name(name, t, soundfont_label(s), t == 1.0 and i == 0)
                    for t in config.tempo_ratios for i, s in enumerate(soundfonts)]
        if splits[name] == "train":
            expected += [augmented_name(name, k, t, s) for k, t, s in augmented_takes(config, soundfonts)]
        if _score_complete(out_dir / splits[name], name, expected):
            entries.append({"score": name, "split": splits[name], "performances": expected, **meta})
        else:
            todo.append((name, source, meta))

    started = time.perf_counter()
    jobs = [(source, name, out_dir / splits[name], config, soundfonts, splits[name] == "train")
            for name, source, _ in todo]
    results = map_unordered(_build_one_score_safe, jobs, workers=workers, ray_address=ray_address, ray=ray)
    for index, result in tqdm(results, total=len(jobs), desc="building scores", disable=not progress):
        name, _, meta = todo[index]
        if "error" in result:
            failures.append({"score": name, "error": result["error"]})
        else:
            entries.append({"split": splits[name], **meta, **result,
                            "performances": [p["name"] for p in result["performances"]]})
    elapsed = time.perf_counter() - started

    entries.sort(key=lambda e: e["score"])
    manifest = {
        "format": "msmd-score-following",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": "public-domain scores engraved with verovio, synthesized with midirenderer",
        "build_config": record,
        "spectrogram": SpectrogramParams().to_dict(),
        "versions": _versions(),
        "split_sizes": {s: sum(e["split"] == s for e in entries) for s in SPLITS},
        "build_seconds_this_run": round(elapsed, 1),
        "scores_built_this_run": len(todo) - len(failures),
        "scores": entries,
        "failed": failures,
    }
    atomic_write_bytes(out_dir / MANIFEST, json.dumps(manifest, indent=1).encode())
    return out_dir


def _build_record(config: BuildConfig, soundfonts: tuple[str, ...]) -> dict:
    """The manifest's ``build_config``: the config with the soundfonts resolved and the timing and augmentation
    models' parameters (the augment settings recorded resolved, every field, not as the changes), as JSON has it."""
    record = ({key: value for key, value in asdict(config).items() if key != "augment_settings"}
              | {"soundfonts": list(soundfonts)} | _model_parameters(config))
    return json.loads(json.dumps(record))


RESUME_FREE_KEYS = ("max_pieces", "timing_settings")
"""Build config keys a build may change when it resumes into a root: more pieces complete a partial build, and
the timing settings are compared resolved (``human_timing``)."""


def _check_same_build(out_dir: Path, record: dict) -> None:
    """Refuse to resume into a root built with other settings: its takes, found under the same names, would be
    kept and the manifest would then claim settings they were not made with. Keys (and fields of the models'
    parameters) that only one of the two records has are not compared (manifests of older versions lack some)."""
    built = read_manifest(out_dir).get("build_config")
    if not built:
        return
    changes = []
    for key in sorted(record.keys() & built.keys() - set(RESUME_FREE_KEYS)):
        new, old = record[key], built[key]
        if isinstance(new, dict) and isinstance(old, dict):
            changes += [f"{key}.{field} {old[field]} -> {new[field]}" for field in sorted(new.keys() & old.keys())
                        if new[field] != old[field]]
        elif new != old:
            changes.append(f"{key} {old} -> {new}")
    if changes:
        raise ValueError(f"{out_dir / MANIFEST}: this dataset was built with other settings ({'; '.join(changes)}); "
                         "build into another directory, or delete this one to rebuild it")


def _model_parameters(config: BuildConfig) -> dict:
    """The parameters of the timing and augmentation models a build uses, for the manifest."""
    parameters = {}
    if config.timing == "human":
        parameters["human_timing"] = asdict(config.human_timing())
    if config.augment:
        parameters["augment_settings"] = asdict(config.augmentation())
    return parameters


def _build_one_score_safe(source, name, split_dir, config, soundfonts, augment=False) -> dict:
    """Worker wrapper: a score that cannot be built is reported, not fatal to the whole build."""
    try:
        if not isinstance(source, (str, Path)):
            from sfgym.data.reduction import load_score_musicxml  # here: music21 costs ~200 ms to import

            source = load_score_musicxml(source)
        return _build_one_score(source, name, Path(split_dir), config, soundfonts, augment)
    except Exception as error:  # noqa: BLE001 - reported in the manifest with its traceback's last line
        return {"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc(limit=3)}


def _resolve_corpus(corpus, max_pieces, corpus_name: str = "default") -> list[tuple[str, object, dict]]:
    """``(score name, source, metadata)`` triples; a source is a path, score text or a CorpusPiece."""
    if corpus is None:
        corpus = corpus_pieces(corpus_name)
    triples = []
    for item in corpus:
        if isinstance(item, tuple):
            name, source = item
            triples.append((name, source, {}))
        else:  # a CorpusPiece: the worker loads its MusicXML (music21 parsing is the slow part)
            meta = {k: getattr(item, k) for k in ("source", "composer", "title", "kind", "licence")
                    if getattr(item, k, "")}  # licence: recorded where the corpus gives one (piano-v2)
            triples.append((item.name, item, meta))
    names = [t[0] for t in triples]
    if len(set(names)) != len(names):
        raise ValueError("corpus piece names must be unique")
    return triples[:max_pieces] if max_pieces else triples


# ---------------------------------------------------------------------------- the default dataset
def default_dataset_dir(*, build: bool = True, data_dir: str | Path | None = None, progress: bool = True,
                        workers: int | None = None, ray: bool = False, ray_address: str | None = None) -> Path:
    """The built-in default dataset's root, built on first use (``ray``: on Ray, see :func:`build_dataset`)
    and re-used afterwards.

    Location: ``data_dir`` if given, else ``$SFGYM_DATA_DIR``, else ``$XDG_CACHE_HOME/sfgym/default-v1``
    (``~/.cache/sfgym/default-v1``).
    """
    root = Path(data_dir) if data_dir else default_dataset_root()
    if (root / MANIFEST).is_file():
        manifest = json.loads((root / MANIFEST).read_text())
        if not manifest.get("failed") or not build:
            return root
    if not build:
        raise FileNotFoundError(f"{root}: the default dataset is not built yet (run 'sfgym data build')")
    print(f"Building the default dataset into {root} (once; set ${DATA_DIR_ENV} to choose another place)")
    return build_dataset(root, progress=progress, workers=workers, ray=ray, ray_address=ray_address)


def corpus_dataset_root(corpus: str) -> Path:
    """Where ``sfgym data build --corpus NAME`` writes without ``--out``: the default dataset's root for
    ``"default"``, else ``$XDG_CACHE_HOME/sfgym/<NAME>`` (``~/.cache/sfgym/piano-v2``)."""
    if corpus == "default":
        return default_dataset_root()
    return _cache_root() / corpus


def default_dataset_root() -> Path:
    """Where the default dataset lives (whether built or not)."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    return _cache_root() / DEFAULT_DATASET_NAME


def _cache_root() -> Path:
    """``$XDG_CACHE_HOME/sfgym`` (``~/.cache/sfgym``): where built datasets live unless told otherwise."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sfgym"


def read_manifest(root: str | Path) -> dict:
    path = Path(root) / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: corrupt manifest: {error}") from error


def dataset_summary(root: str | Path) -> list[dict]:
    """One row per piece of every split under ``root`` (or of ``root`` itself if it is a split)."""
    root = Path(root)
    split_dirs = [root] if (root / "score").is_dir() else sorted(p for p in root.iterdir() if (p / "score").is_dir())
    if not split_dirs:
        raise FileNotFoundError(f"{root}: no MSMD split here (no score/ folder in it or its sub-folders)")
    rows = []
    for split_dir in split_dirs:
        for files in list_pieces(split_dir):
            notes = read_midi_notes(files.midi)
            _, coords, _ = read_score_npz(files.score)
            onset_frames = np.unique(note_onset_frames(notes))
            rows.append({"split": split_dir.name, "piece": files.name, "duration_s": float(notes[:, 0].max() + notes[-1, 2]),
                         "notes": len(notes), "onsets": len(onset_frames), "noteheads": len(coords),
                         "audio": files.audio is not None})
    return rows


__all__ = ["BuildConfig", "assign_splits", "build_dataset", "dataset_summary", "default_dataset_dir",
           "default_dataset_root", "read_manifest"]
