"""``sfgym sweep``: seeds × settings of any trainer on Ray Tune, one ordinary run directory per trial.

A sweep is planned here (:func:`plan_trials`: every ``--set key=v1,v2`` value combination, or ``samples``
of them, times every seed), run on Ray Tune (:func:`run_sweep`: local Ray, or a running cluster at
``address``), and tabulated from its trial directories (:func:`sweep_tables`):

    SWEEP_DIR/sweep.json            the plan (kind, trainer options, settings, seeds, trials)
    SWEEP_DIR/trials/NAME-seedK/    each trial: a run directory of its trainer, as ``sfgym train`` writes it
    SWEEP_DIR/summary.csv, .md      per setting: mean ± std over seeds of the valid and test figures
    SWEEP_DIR/trials.csv            per trial: its seed, state and figures

A trial calls its trainer's own ``main`` (the module of ``sfgym train KIND``) with ``--out``, its seed
(``--set SEED_KEY=k``) and its setting's ``--set``s, so a sweep's trial is the run the same command line
makes by hand. The trainer module says what a sweep reads of a run (``selection_figures``, ``SEED_KEY``,
``SELECTION_FIGURE``, ``RESUME_FILE``), so this module knows no trainer's files. Its chosen model is then
followed on the test split of its dataset (:func:`figures_on_test`, cached in the trial's
``test_figures.json``).

``resume=True`` runs only the trials not complete (``status.json``): an interrupted one continues with
the trainer's ``--resume``, one with nothing to resume starts again.

Ray is an optional dependency (``pip install -e ".[ray]"``): it is imported only when a sweep runs
(:func:`import_ray`), so that every other command works without it.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import yaml

from sfgym import ray_support
from sfgym.commands.train import kind_parser, trainer_modules
from sfgym.data.dataset import default_dataset_dir
from sfgym.data.msmd import find_split_dir, load_split
from sfgym.evaluation import run_evaluation
from sfgym.files import atomic_write_bytes
from sfgym.ray_support import INSTALL_HINT, RayUnavailable

TRIALS = "trials"
PLAN = "sweep.json"
TEST_FIGURES = "test_figures.json"
TRIAL_LOG = "sweep.log"
TEST_SPLIT = "test"


class TrialsFailed(RuntimeError):
    """Some trials of a sweep did not complete (the tables are written, those trials marked)."""


def import_ray():
    """``ray`` and ``ray.tune`` (:func:`sfgym.ray_support.import_ray`: an optional extra, imported when a
    sweep runs)."""
    return ray_support.import_ray("sfgym sweep runs on Ray Tune", tune=True)


# ---------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its directory name, its setting (``--set key=value`` pairs) and its seed."""

    name: str
    setting: str
    overrides: tuple[str, ...]
    seed: int


def split_values(text: str) -> list[str]:
    """``v1,v2,[1,2]`` → ``['v1', 'v2', '[1,2]']``: commas split values except inside brackets or quotes."""
    values, current, depth, quote = [], "", 0, None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(current.strip())
            current = ""
            continue
        current += char
    values.append(current.strip())
    return values


def parse_sets(sets: Sequence[str]) -> dict[str, list[str]]:
    """``--set key=v1,v2`` options → ``{key: [v1, v2]}`` (a key given twice: its values joined)."""
    swept: dict[str, list[str]] = {}
    for text in sets:
        key, equals, values = text.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"--set {text!r}: expected KEY=VALUE or KEY=V1,V2,...")
        swept.setdefault(key.strip(), []).extend(split_values(values))
    return swept


def read_sweep_file(path: str | Path) -> dict[str, Any]:
    """A sweep YAML: ``set: {key: [v1, v2] | value}``, optional ``seeds: [0, 1, 2]`` and ``samples: N``."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(raw, dict) or set(raw) - {"set", "seeds", "samples"}:
        raise ValueError(f"{path}: a sweep file holds 'set' (key: [values]), and optionally 'seeds' and 'samples'")
    sets = {str(key): [_yaml_value(v) for v in (values if isinstance(values, list) else [values])]
            for key, values in (raw.get("set") or {}).items()}
    return {"set": sets, "seeds": raw.get("seeds"), "samples": raw.get("samples")}


def _yaml_value(value: Any) -> str:
    """A value of a sweep file as ``--set`` takes it (YAML flow text: ``0.001``, ``true``, ``[16, 16]``)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def plan_trials(swept: dict[str, list[str]], seeds: Sequence[int], samples: int | None = None,
                sample_seed: int = 0) -> list[Trial]:
    """Every setting (the grid of ``swept``'s values, or ``samples`` settings drawn from it without
    repetition) times every seed, setting by setting."""
    keys = list(swept)
    settings = list(itertools.product(*(swept[key] for key in keys)))
    if samples is not None:
        if samples < 1:
            raise ValueError(f"--samples must be >= 1, got {samples}")
        drawn = np.random.default_rng(sample_seed).permutation(len(settings))[:samples]
        settings = [settings[i] for i in sorted(drawn)]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"--seeds: give distinct seeds, got {list(seeds)}")
    varied = [i for i, key in enumerate(keys) if len(swept[key]) > 1]  # a key of one value is no part of a name
    names = [keys[i].rsplit(".", 1)[-1] for i in varied]
    if len(set(names)) != len(names):  # two keys end alike (model.dropout, trunk.dropout): spell them out
        names = [keys[i] for i in varied]
    labels = [_setting_label(names, [values[i] for i in varied]) for values in settings]
    trials = []
    for label, values in zip(labels, settings):
        overrides = tuple(f"{key}={value}" for key, value in zip(keys, values))
        setting = " ".join(overrides[i] for i in varied) or "(the config)"
        trials += [Trial(f"{label}-seed{seed}", setting, overrides, int(seed)) for seed in seeds]
    return trials


def _setting_label(names: Sequence[str], values: Sequence[str]) -> str:
    """A setting as a directory name: ``lr-0.001_hidden_size-16`` (``config`` for none; no ``=``, which
    ``sfgym evaluate --agents LABEL=SPEC`` would read as a label)."""
    parts = [f"{name}-{value}" for name, value in zip(names, values)]
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", "_".join(parts)).strip("-") or "config"


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-4`` → seeds."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        first, dash, last = part.partition("-")
        try:
            seeds += list(range(int(first), int(last) + 1)) if dash and first else [int(part)]
        except ValueError:
            raise ValueError(f"--seeds {text!r}: expected integers, e.g. 0,1,2 or 0-4") from None
    return seeds


# ---------------------------------------------------------------------------- one trial
def trial_state(trial_dir: Path) -> str | None:
    """The run's state from its ``status.json`` (``running``, ``interrupted``, ``complete``), None without."""
    try:
        return json.loads((trial_dir / "status.json").read_text()).get("state")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def trainer_module(kind: str):
    """The parser and module of ``sfgym train KIND``, checked to say what a sweep reads of its runs."""
    if kind not in trainer_modules():
        raise ValueError(f"unknown trainer kind {kind!r} (known: {', '.join(sorted(trainer_modules()))})")
    parser, module = kind_parser(kind)
    missing = [name for name in ("selection_figures", "SEED_KEY", "SELECTION_FIGURE", "RESUME_FILE") if not hasattr(module, name)]
    if missing:
        raise ValueError(f"'sfgym train {kind}' cannot be swept: its module {module.__name__} has no "
                         f"{', '.join(missing)}")
    return parser, module


def trainer_arguments(trial: Trial, trainer_args: Sequence[str], seed_key: str, trial_dir: Path) -> list[str]:
    """The command line of a trial's trainer: the sweep's trainer options, the setting, the seed, ``--out``."""
    sets = [item for override in trial.overrides for item in ("--set", override)]
    return [*trainer_args, *sets, "--set", f"{seed_key}={trial.seed}", "--out", str(trial_dir), "--no-progress"]


def run_trial(kind: str, trial: Trial, trainer_args: Sequence[str], trial_dir: str | Path, test: bool) -> dict[str, Any]:
    """Train one trial in ``trial_dir`` (unless complete there; resumed when interrupted) and follow its
    chosen model on the test split (``test``); returns its valid figures. The trainer's output goes to
    the trial's ``sweep.log``, so that the sweep prints one line per trial."""
    trial_dir = Path(trial_dir)
    parser, module = trainer_module(kind)
    arguments = trainer_arguments(trial, trainer_args, module.SEED_KEY, trial_dir)
    state = trial_state(trial_dir)
    if state != "complete":
        trial_dir.mkdir(parents=True, exist_ok=True)
        with open(trial_dir / TRIAL_LOG, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            resume = state is not None and (trial_dir / module.RESUME_FILE).is_file()
            if state is not None and not resume:  # killed before its first checkpoint: nothing to resume
                print("nothing to resume: starting the trial again")
                for path in trial_dir.iterdir():
                    if path.name != TRIAL_LOG:
                        shutil.rmtree(path) if path.is_dir() else path.unlink()
            module.main(parser.parse_args(arguments + (["--resume"] if resume else [])))
    figures = module.selection_figures(trial_dir)
    if test and figures.get("model") and not (trial_dir / TEST_FIGURES).is_file():
        atomic_write_bytes(trial_dir / TEST_FIGURES,
                           (json.dumps(figures_on_test(figures["model"], figures.get("data")), indent=2) + "\n").encode())
    return figures


def figures_on_test(model: str, data: str | None) -> dict[str, float]:
    """TR and TUE of ``model`` (a follower file) followed over the test split of ``data`` (None: the
    default dataset), once per piece, in this process."""
    if data is None:
        data = default_dataset_dir()
    pieces = load_split(find_split_dir(data, TEST_SPLIT), progress=False)
    summary = run_evaluation([f"chosen={model}"], pieces, seeds=1, workers=1, progress=False).summary()
    return {"test_tr": float(summary["tr"].iloc[0]), "test_tue": float(summary["tue"].iloc[0])}


def trial_done(trial_dir: Path, test: bool) -> bool:
    """Whether a trial needs no more work: complete, and tested when it has a model to test."""
    if trial_state(trial_dir) != "complete":
        return False
    return not test or (trial_dir / TEST_FIGURES).is_file() or not _has_tested_model(trial_dir)


def _has_tested_model(trial_dir: Path) -> bool:
    """Whether a complete trial's model is followed on test (a trunk, say, has no follower to test)."""
    kind = json.loads((trial_dir.parents[1] / PLAN).read_text())["kind"]
    return bool(trainer_module(kind)[1].selection_figures(trial_dir).get("model"))


# ---------------------------------------------------------------------------- the table
def trial_rows(sweep_dir: Path, kind: str, trials: Sequence[Trial]) -> pd.DataFrame:
    """One row per trial: its setting, seed, directory, state, valid figures and test figures."""
    module = trainer_module(kind)[1]
    rows = []
    for trial in trials:
        trial_dir = sweep_dir / TRIALS / trial.name
        row: dict[str, Any] = {"setting": trial.setting, "seed": trial.seed, "trial": trial.name,
                               "state": trial_state(trial_dir) or "not run"}
        if row["state"] == "complete":
            figures = module.selection_figures(trial_dir)
            row.update({k: v for k, v in figures.items() if k not in ("model", "data")})
            if (trial_dir / TEST_FIGURES).is_file():
                row.update(json.loads((trial_dir / TEST_FIGURES).read_text()))
        rows.append(row)
    return pd.DataFrame(rows)


def setting_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """Per setting (in plan order): the complete seeds and mean and std (over seeds, ddof 1) of each figure."""
    figures = [c for c in trials.columns if c not in ("setting", "seed", "trial", "state")]
    rows = []
    for setting, group in trials.groupby("setting", sort=False):
        complete = group[group["state"] == "complete"]
        row: dict[str, Any] = {"setting": setting, "seeds": len(complete), "of": len(group)}
        for figure in figures:
            values = pd.to_numeric(complete[figure], errors="coerce").dropna()
            row[f"{figure}_mean"] = float(values.mean()) if len(values) else None
            row[f"{figure}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None
        rows.append(row)
    return pd.DataFrame(rows)


def summary_markdown(settings: pd.DataFrame, selection_figure: str, title: str) -> str:
    """The per-setting table as Markdown: ``mean ± std`` of each figure, the selection figure first."""
    found = [c.removesuffix("_mean") for c in settings.columns if c.endswith("_mean")]
    figures = sorted(found, key=lambda f: (f != selection_figure, not f.startswith("valid"), found.index(f)))
    lines = [f"# {title}", "",
             "| setting | seeds | " + " | ".join(f.replace("_", " ") for f in figures) + " |",
             "|---|---|" + "---|" * len(figures)]
    for _, row in settings.iterrows():
        cells = [_mean_std(row[f"{f}_mean"], row[f"{f}_std"]) for f in figures]
        lines.append(f"| {row['setting']} | {row['seeds']}/{row['of']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None or pd.isna(mean):
        return "–"
    digits = 1 if abs(mean) >= 10 else 3
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None and not pd.isna(std) else "")


def write_tables(sweep_dir: Path, kind: str, trials: Sequence[Trial]) -> pd.DataFrame:
    """``trials.csv``, ``summary.csv`` and ``summary.md`` of the sweep's trial directories, atomically;
    returns the per-setting table."""
    module = trainer_module(kind)[1]
    per_trial = trial_rows(sweep_dir, kind, trials)
    per_setting = setting_rows(per_trial)
    atomic_write_bytes(sweep_dir / "trials.csv", per_trial.to_csv(index=False).encode())
    atomic_write_bytes(sweep_dir / "summary.csv", per_setting.to_csv(index=False).encode())
    title = f"sfgym sweep {kind}: mean ± std over seeds (valid: the selection figure; test: the model chosen on valid)"
    atomic_write_bytes(sweep_dir / "summary.md", summary_markdown(per_setting, module.SELECTION_FIGURE, title).encode())
    return per_setting


# ---------------------------------------------------------------------------- the sweep
@dataclass(frozen=True)
class SweepPlan:
    """What ``sweep.json`` records: a resumed sweep must be the same sweep."""

    kind: str
    trainer_args: tuple[str, ...]
    trials: tuple[Trial, ...]

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "trainer_args": list(self.trainer_args),
                           "trials": [asdict(t) for t in self.trials]}, indent=2) + "\n"


def start_sweep_dir(sweep_dir: Path, plan: SweepPlan, resume: bool) -> None:
    """Write the plan into a new sweep directory, or check that a resumed one holds the same plan."""
    saved = sweep_dir / PLAN
    if saved.is_file():
        if not resume:
            raise ValueError(f"{sweep_dir}: already holds a sweep; pass --resume to continue it, or choose another --out")
        if json.loads(saved.read_text()) != json.loads(plan.to_json()):
            raise ValueError(f"{sweep_dir}: holds another sweep ({saved} differs: other kind, trainer options, "
                             "settings or seeds); resume it with the same options, or choose another --out")
    elif resume:
        raise FileNotFoundError(f"{sweep_dir}: no sweep to resume (no {PLAN})")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(saved, plan.to_json().encode())


def run_sweep(kind: str, trainer_args: Sequence[str], trials: Sequence[Trial], sweep_dir: str | Path, *,
              address: str | None = None, cpus_per_trial: float = 1, max_concurrent: int | None = None,
              resume: bool = False, test: bool = True, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Run the trials not yet done on Ray Tune (connecting to ``address``, or starting local Ray, unless
    this process already holds a Ray session) and write the tables; returns the per-setting table.

    Raises:
        RayUnavailable: Ray is not installed.
        ValueError: the trainer options do not parse, or the sweep directory holds another sweep.
        TrialsFailed: some trials failed (the tables are written first, those trials marked).
    """
    sweep_dir = Path(sweep_dir).resolve()  # Tune's workers run in directories of their own
    parser, module = trainer_module(kind)
    try:  # the trainer options, checked now rather than in every trial
        parser.parse_args([*trainer_args, "--out", str(sweep_dir / TRIALS / "check")])
    except SystemExit:
        raise ValueError(f"sfgym sweep {kind}: the trainer options {' '.join(trainer_args)!r} do not parse "
                         f"(see 'sfgym train {kind} --help')") from None
    ray, tune = import_ray()
    plan = SweepPlan(kind, tuple(trainer_args), tuple(trials))
    start_sweep_dir(sweep_dir, plan, resume)
    todo = [t for t in trials if not trial_done(sweep_dir / TRIALS / t.name, test)]
    log(f"sweep of {len(trials)} trials ({len(trials) - len(todo)} done before) into {sweep_dir}")
    if todo:
        ray_support.connect_ray(ray, address)
        _fit(tune, kind, trainer_args, todo, sweep_dir, cpus_per_trial, max_concurrent, test, log)
    settings = write_tables(sweep_dir, kind, trials)
    failed = [t.name for t in trials if trial_state(sweep_dir / TRIALS / t.name) != "complete"]
    log(f"wrote {sweep_dir / 'summary.md'} and {sweep_dir / 'trials.csv'}")
    if failed:
        raise TrialsFailed(f"{len(failed)} trial(s) did not complete: {', '.join(failed)} (their output: "
                           f"{sweep_dir / TRIALS}/NAME/{TRIAL_LOG}); run again with --resume")
    return settings


def _tune_trial(config: dict[str, Any]) -> None:
    """Tune's trainable: one trial (:func:`run_trial`), reporting its selection figure, or its error (the
    traceback goes to the trial's ``sweep.log``: one line on the console, not Tune's pages of it).

    Tune starts a trial in a directory of its own; it runs in the sweep's working directory instead, where
    there is one, so that relative paths in the trainer options mean what they meant on the command line."""
    import os
    import traceback

    from ray import tune

    spec = config["spec"]
    if os.path.isdir(spec["cwd"]):
        os.chdir(spec["cwd"])
    trial = Trial(**{**spec["trial"], "overrides": tuple(spec["trial"]["overrides"])})
    try:
        figures = run_trial(spec["kind"], trial, spec["trainer_args"], spec["trial_dir"], spec["test"])
    except Exception as error:
        Path(spec["trial_dir"]).mkdir(parents=True, exist_ok=True)
        with open(Path(spec["trial_dir"]) / TRIAL_LOG, "a") as log:
            traceback.print_exc(file=log)
        tune.report({"error": f"{type(error).__name__}: {error}"})
        return
    tune.report({k: v for k, v in figures.items() if isinstance(v, (int, float))})


def _fit(tune, kind: str, trainer_args: Sequence[str], trials: Sequence[Trial], sweep_dir: Path,
         cpus_per_trial: float, max_concurrent: int | None, test: bool, log: Callable[[str], None]) -> None:
    """One Tune experiment over ``trials`` (a grid search over their specs), one line per trial finished.

    Tune's own experiment state (``SWEEP_DIR/tune``) is made afresh each time: what is done lives in the
    trial directories, so a resumed sweep is a new experiment over the trials left."""
    specs = [{"kind": kind, "trainer_args": list(trainer_args), "trial": asdict(t), "test": test,
              "trial_dir": str(sweep_dir / TRIALS / t.name), "cwd": str(Path.cwd())} for t in trials]
    shutil.rmtree(sweep_dir / "tune", ignore_errors=True)
    started = time.monotonic()

    class TrialLines(tune.Callback):
        finished = 0

        def _line(self, trial, outcome: str) -> None:
            TrialLines.finished += 1
            with contextlib.redirect_stdout(stdout):
                    log(f"[{TrialLines.finished}/{len(specs)}] {trial.config['spec']['trial']['name']}: {outcome} "
                    f"({time.monotonic() - started:.0f} s)")

        def on_trial_complete(self, iteration, trials, trial, **info):
            result = trial.last_result or {}
            value = result.get(module_figure)
            if "error" in result:
                self._line(trial, f"failed: {result['error']}")
            else:
                self._line(trial, f"{module_figure} {value:.3f}" if isinstance(value, (int, float)) else "done")

        def on_trial_error(self, iteration, trials, trial, **info):
            self._line(trial, "failed")

    module_figure = trainer_module(kind)[1].SELECTION_FIGURE
    tuner = tune.Tuner(
        tune.with_resources(_tune_trial, {"cpu": cpus_per_trial}),
        param_space={"spec": tune.grid_search(specs)},
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=False),
        run_config=tune.RunConfig(name="tune", storage_path=str(sweep_dir), verbose=0, callbacks=[TrialLines()],
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
    stdout = sys.stdout
    with contextlib.redirect_stdout(io.StringIO()):  # Tune's own boxes and paths: the lines above say enough
        tuner.fit()


__all__ = ["INSTALL_HINT", "RayUnavailable", "SweepPlan", "Trial", "TrialsFailed", "import_ray", "parse_seeds", "parse_sets",
           "plan_trials", "read_sweep_file", "run_sweep", "run_trial", "setting_rows", "split_values",
           "summary_markdown", "figures_on_test", "trial_rows", "trial_state", "write_tables"]
