"""``sfgym data build | import | convert | info``: make and inspect MSMD-format data."""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="build, import and inspect MSMD-format data",
                                   description="Build, import and inspect MSMD-format data.")
    data_commands = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    build = data_commands.add_parser(
        "build", help="build the default dataset (or a custom one) from public-domain scores",
        description="Engrave, synthesize and analyse the built-in public-domain corpus into an MSMD-format "
        "dataset. Without --out it builds the default dataset into the cache ($SFGYM_DATA_DIR or "
        "~/.cache/sfgym/default-v1); an interrupted build resumes where it stopped.")
    build.add_argument("--out", type=Path, help="dataset root to write (default: the default dataset's cache)")
    build.add_argument("--max-pieces", type=int, help="build only the first N scores of the corpus")
    build.add_argument("--tempo-ratios", default="0.9,1.0,1.1",
                       help="comma-separated tempo ratios, one performance each (default: 0.9,1.0,1.1)")
    build.add_argument("--soundfonts", default="TimGM6mb",
                       help="comma-separated soundfont names or .sf2 paths (default: TimGM6mb, shipped by pretty_midi)")
    build.add_argument("--tempo-curve-depth", type=float, default=0.1,
                       help="depth of each performance's smooth tempo fluctuation (default 0.1 = ±10%%; 0 = MSMD's "
                       "constant tempo)")
    build.add_argument("--timing", choices=("smooth", "human"), default="smooth",
                       help="performance timing: 'smooth' (the tempo curve only, default) or 'human' (phrase rubato, "
                       "ritardandi, holds, spread chords, jitter and dynamics; see sfgym.data.performance)")
    build.add_argument("--timing-set", action="append", default=[], metavar="KEY=VALUE",
                       help="with --timing human: a setting of the human timing model (sfgym.data.performance."
                       "HumanTiming), a number or a comma-separated range, e.g. jitter_s=0.03 or fermata_s=0.5,2.0 "
                       "(repeatable)")
    build.add_argument("--augment", type=int, default=0, metavar="N",
                       help="N extra sound-augmented takes of every train score (velocity, pedal, EQ, room, level, "
                       "noise; see sfgym.data.augment), named <score>@t<ratio>-<soundfont>-aug<k> (default 0)")
    build.add_argument("--augment-set", action="append", default=[], metavar="KEY=VALUE",
                       help="with --augment: a setting of the augmentation (sfgym.data.augment.AugmentSettings), a "
                       "number or a comma-separated range, e.g. pedal_probability=1 or rt60_s=0.3,1.5 (repeatable)")
    from sfgym.data.corpus import CORPORA  # stdlib-only module: cheap at start-up

    build.add_argument("--corpus", choices=CORPORA, default="default",
                       help="built-in corpus: default (140 music21 scores), piano-v2 (piano parts of songs "
                       "vendored from OpenScore Lieder, fewer chorales) or songs (those 100 song parts alone, none "
                       "of them in the default corpus); without --out NAME goes to ~/.cache/sfgym/NAME")
    build.add_argument("--seed", type=int, default=0, help="seed of the train/valid/test split (default 0)")
    build.add_argument("--workers", type=int, help="parallel processes (default: number of CPUs); with --ray, scores "
                       "at a time (default: as the cluster's CPUs allow)")
    _add_ray_options(build, "scores")
    build.set_defaults(func=run_build)

    importer = data_commands.add_parser(
        "import", help="import your own score (and performance) as an MSMD-format piece",
        description="Engrave a score and write it, with a performance, as one MSMD-format piece into a split "
        "directory. Without --performance the score's own MIDI is synthesized. A performance (MIDI or audio) "
        "follows the alignment given with --alignment (a note_id,onset_s CSV or a match file); without one it is "
        "aligned to the score automatically and the alignment written beside the piece "
        "(<out>/performance/<piece>.alignment.csv) to check and correct. Notes an alignment has out of score order (grace notes, rolled chords, alignment "
        "noise) are reconciled with a warning. Repeated imports into one --out accumulate; a piece of the same "
        "name is replaced only with --overwrite.")
    importer.add_argument("--score", type=Path, required=True, help="MusicXML (.xml/.musicxml/.mxl), MEI, .krn or .abc")
    importer.add_argument("--performance", type=Path, help="the performance: .mid or .wav/.flac/.ogg")
    importer.add_argument("--alignment", type=Path,
                          help="CSV with columns note_id,onset_s, or a match file (.match: Vienna 4x22, Batik, (n)ASAP) "
                          "(default: align the performance automatically)")
    importer.add_argument("--out", type=Path, required=True, help="split directory to add the piece to")
    importer.add_argument("--soundfont", default="TimGM6mb", help="soundfont for synthesis (default TimGM6mb)")
    importer.add_argument("--overwrite", action="store_true", help="replace a piece of the same name in --out")
    importer.set_defaults(func=run_import)

    convert = data_commands.add_parser(
        "convert", help="rewrite legacy score files (pickled coord2onset, e.g. real MSMD) in the pickle-free format",
        description="Rewrite every score/*.npz of a dataset root or split whose coord2onset is a pickled dict (real "
        "MSMD's files, sfgym's before the pickle-free format) with coord2onset as a plain int array, in place "
        "(atomically). sfgym reads such legacy files anyway, through an unpickler that builds only numpy arrays "
        "and dicts of ints; a file whose pickle needs anything else is refused unless --trust-pickle says you "
        "trust where it came from (unpickling an untrusted file can run code).")
    convert.add_argument("dir", type=Path, help="dataset root or split directory")
    convert.add_argument("--trust-pickle", action="store_true",
                         help="unpickle legacy files without the allow-list (only for files from a trusted source)")
    convert.set_defaults(func=run_convert)

    variant = data_commands.add_parser(
        "variant", help="copy splits with the performances re-synthesized by another piano in a room",
        description="Write an 'unseen piano' copy of splits of a built dataset: the same scores and performance "
        "MIDI, the performances re-synthesized with --soundfont (one the followers' score synthesis does not use) "
        "and reverberated with a seeded synthetic room impulse response; spectrograms recomputed. The manifest "
        "records soundfont, reverb and seed.")
    variant.add_argument("--from", dest="source", type=Path,
                         help="dataset root to copy (default: the default dataset)")
    variant.add_argument("--split", default="test", help="comma-separated splits to copy (default: test)")
    variant.add_argument("--soundfont", required=True,
                         help="the performances' .sf2 (e.g. /usr/share/sounds/sf2/MuseScore_General_Full.sf2)")
    variant.add_argument("--reverb", type=float, default=0.4,
                         help="reverberation time RT60 of the synthetic room in seconds (default 0.4; 0 = dry)")
    variant.add_argument("--seed", type=int, default=0, help="seed of the room impulse responses (default 0)")
    variant.add_argument("--out", type=Path, required=True, help="the variant's dataset root (outside the source)")
    variant.add_argument("--workers", type=int, help="with --ray, pieces at a time (default: as the cluster's CPUs "
                         "allow); without, the pieces are made one after the other in this process")
    _add_ray_options(variant, "pieces")
    variant.set_defaults(func=run_variant)

    info = data_commands.add_parser(
        "info", help="split sizes; with --pieces or --piece, each piece's duration, notes and onsets",
        description="Summarize a dataset root or split directory: by default the scores, performances and minutes "
                    "of each split; --pieces lists every performance (a dataset holds hundreds), --split and --piece "
                    "narrow both.")
    info.add_argument("dir", nargs="?", type=Path, help="dataset root or split (default: the default dataset)")
    info.add_argument("--split", action="append", metavar="SPLIT",
                      help="only this split (train, valid, test; repeatable)")
    info.add_argument("--piece", metavar="PATTERN",
                      help="only performances whose name matches this shell pattern (e.g. 'bach*' or '*@t1.00*'; "
                           "lists them)")
    info.add_argument("--pieces", action="store_true", help="list every performance, one line each")
    info.set_defaults(func=run_info)


def _add_ray_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--ray", action="store_true",
                        help=f"build the {what} as Ray tasks (local Ray, or a cluster with --address; the output must "
                        "be on a path every machine sees); needs the ray extra: pip install -e \".[ray]\"")
    parser.add_argument("--address", help="a running Ray cluster to build on ('auto', or HOST:6379; implies --ray); "
                        "default with --ray: start local Ray")


def _ray_unavailable(error: Exception) -> int:
    """A missing Ray extra as one line saying how to install it, not a traceback."""
    print(f"sfgym: error: {error}", file=sys.stderr)
    return 1


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def settings_pairs(pairs: list[str], flag: str) -> tuple[tuple[str, int | float | tuple], ...]:
    """``KEY=VALUE`` pairs of a ``flag`` such as ``--timing-set`` as ``(key, value)`` pairs for
    :class:`~sfgym.data.dataset.BuildConfig` (a comma makes a range)."""
    settings = []
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip() or not value.strip():
            raise ValueError(f"{flag}: expected KEY=VALUE, got {pair!r}")
        try:
            parsed = tuple(_number(item) for item in value.split(",")) if "," in value else _number(value)
        except ValueError:
            raise ValueError(f"{flag} {key}: a number or comma-separated numbers, got {value!r}") from None
        settings.append((key.strip(), parsed))
    return tuple(settings)


def run_build(args: argparse.Namespace) -> int:
    from sfgym.data.dataset import BuildConfig, build_dataset, corpus_dataset_root, default_dataset_dir, read_manifest

    config = BuildConfig(
        tempo_ratios=tuple(float(t) for t in args.tempo_ratios.split(",")),
        soundfonts=tuple(args.soundfonts.split(",")),
        seed=args.seed,
        tempo_curve_depth=args.tempo_curve_depth,
        max_pieces=args.max_pieces,
        timing=args.timing,
        augment=args.augment,
        corpus=args.corpus,
        timing_settings=settings_pairs(args.timing_set, "--timing-set"),
        augment_settings=settings_pairs(args.augment_set, "--augment-set"),
    )
    from sfgym.ray_support import RayUnavailable

    where = {"workers": args.workers, "ray": args.ray or args.address is not None, "ray_address": args.address}
    try:
        if args.out is None and config == BuildConfig():
            root = default_dataset_dir(**where)
        else:
            root = build_dataset(args.out or corpus_dataset_root(config.corpus), config=config, **where)
    except RayUnavailable as error:
        return _ray_unavailable(error)
    manifest = read_manifest(root)
    print(f"{root}: {manifest['split_sizes']} scores; built {manifest['scores_built_this_run']} now "
          f"in {manifest['build_seconds_this_run']:.0f} s; {len(manifest['failed'])} failed")
    for failure in manifest["failed"]:
        print(f"  failed: {failure['score']}: {failure['error']}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from sfgym.data.importer import import_piece
    from sfgym.data.msmd import load_piece

    files = import_piece(args.score, args.out, performance=args.performance, alignment=args.alignment,
                         soundfont=args.soundfont, overwrite=args.overwrite)
    piece = load_piece(files)
    if args.performance is not None and args.alignment is None:
        from sfgym.data.alignment import alignment_csv_path

        written = alignment_csv_path(args.out, piece.name)
        print(f"aligned {args.performance} to the score automatically (no --alignment given); the alignment is in "
              f"{written}: check it, correct it if needed and re-import with --alignment {written}")
    print(f"imported {piece.name} into {args.out}: {len(piece.onset_frames)} onsets, {piece.duration_s:.1f} s")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from sfgym.data.msmd import convert_score_npz
    from sfgym.data.piece import PieceFormatError

    if not args.dir.is_dir():
        raise PieceFormatError(args.dir, "directory does not exist")
    scores = sorted(args.dir.glob("score/*.npz")) + sorted(args.dir.glob("*/score/*.npz"))
    if not scores:
        raise PieceFormatError(args.dir, "holds no score/*.npz (give a dataset root or a split directory)")
    converted = sum(convert_score_npz(path, trust_pickle=args.trust_pickle) for path in scores)
    print(f"{args.dir}: converted {converted} of {len(scores)} score files to the pickle-free format "
          f"({len(scores) - converted} already were)")
    return 0


def run_variant(args: argparse.Namespace) -> int:
    from sfgym.data.dataset import default_dataset_dir
    from sfgym.data.variant import build_variant

    source = args.source or default_dataset_dir(build=False)
    splits = tuple(s for s in args.split.split(",") if s)
    from sfgym.ray_support import RayUnavailable

    try:
        root = build_variant(source, args.out, splits=splits, soundfont=args.soundfont, reverb_s=args.reverb,
                             seed=args.seed, ray=args.ray or args.address is not None, ray_address=args.address,
                             workers=args.workers)
    except RayUnavailable as error:
        return _ray_unavailable(error)
    print(f"{root}: {', '.join(splits)} of {source} re-synthesized with {args.soundfont}, reverb RT60 {args.reverb} s")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from sfgym.data.dataset import dataset_summary, default_dataset_dir, read_manifest

    root = args.dir or default_dataset_dir(build=False)
    rows = [row for row in dataset_summary(root)
            if (not args.split or row["split"] in args.split)
            and (args.piece is None or fnmatch.fnmatchcase(row["piece"], args.piece))]
    console = Console(width=None if sys.stdout.isatty() else 200)  # piped output: don't wrap names
    if args.pieces or args.piece is not None:
        table = Table(title=str(root))
        for column in ("split", "piece", "duration", "notes", "onsets", "noteheads", "audio"):
            table.add_column(column, justify="left" if column in ("split", "piece") else "right", no_wrap=True)
        for row in rows:
            table.add_row(row["split"], row["piece"], f"{row['duration_s']:.1f} s", str(row["notes"]),
                          str(row["onsets"]), str(row["noteheads"]), "wav" if row["audio"] else "synth")
        console.print(table)
    else:
        console.print(str(root))
    if not rows:
        console.print("no performances match")
    splits: dict[str, list[dict]] = {}
    for row in rows:
        splits.setdefault(row["split"], []).append(row)
    for split, split_rows in splits.items():
        scores = {r["piece"].split("@", 1)[0] for r in split_rows}
        minutes = sum(r["duration_s"] for r in split_rows) / 60
        console.print(f"{split}: {len(scores)} scores, {len(split_rows)} performances, {minutes:.1f} min")
    manifest = read_manifest(root)
    if manifest:
        console.print(f"built with {manifest.get('versions', {})}")
    return 0
