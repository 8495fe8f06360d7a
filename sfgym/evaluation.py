"""Run followers over pieces in the environment and score them: the one results table for every follower.

>>> from sfgym.evaluation import evaluate                                     # doctest: +SKIP
>>> results = evaluate(["oracle", "constant_tempo", "runs/lstm/best.pt"], pieces, seeds=3, workers=2)

Every follower (a baseline name, a checkpoint, or a ``LABEL=SPEC`` pair; see
:func:`sfgym.followers.make_follower`) follows every piece once per seed (deterministic followers once,
with seed 0) in :class:`~sfgym.envs.MSMDFollowEnv` with the reference settings (loss threshold 170 px).
Each run is recorded as a :class:`~sfgym.metrics.Trajectory` and scored with
:func:`~sfgym.metrics.piece_metrics`; :func:`summarize` pools the runs of each follower with
:func:`~sfgym.metrics.aggregate`. The time spent inside ``act`` (the follower's per-frame cost, the
environment excluded) is measured on the way.

Pieces are processed in parallel worker processes, one task per piece (all followers and seeds of
that piece), so a piece is sent to a worker once and a follower's per-score caches are re-used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np
import pandas as pd

from sfgym.data.piece import Piece
from sfgym.envs import MSMDFollowEnv
from sfgym.files import atomic_write_bytes
from sfgym.followers import default_label, make_follower
from sfgym.metrics import DEFAULT_THRESHOLD_PX, PieceMetrics, Trajectory, aggregate, piece_metrics
from sfgym.threads import check_threads, set_process_threads, torch_threads

FIXED_ENV_KWARGS = {"reward_threshold": DEFAULT_THRESHOLD_PX}
"""Environment settings that every follower is evaluated under, whatever it was trained with."""


@dataclass(frozen=True)
class AgentSpec:
    """One follower to evaluate: its display ``label``, the ``spec`` for ``make_follower`` and its kwargs.

    ``instance`` instead holds a ready follower object (e.g. a model being trained); it is pickled to the
    worker processes, or used as is with ``workers=1``.
    """

    label: str
    spec: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    instance: Any = field(default=None, compare=False, hash=False, repr=False)

    @classmethod
    def of_instance(cls, follower, label: str | None = None) -> AgentSpec:
        name = label or follower.name
        return cls(label=name, spec=f"<{type(follower).__name__} {name}>", instance=follower)

    @classmethod
    def parse(cls, text: str, kwargs: dict[str, Any] | None = None) -> AgentSpec:
        """``"oracle"``, ``"path/to/model.pt"`` or ``"LABEL=SPEC"``; the label defaults to the spec's name."""
        label, _, spec = text.partition("=") if "=" in text else ("", "", text)
        spec = spec.strip()
        if not spec:
            raise ValueError(f"empty follower spec in {text!r}")
        return cls(label=label.strip() or default_label(spec), spec=spec,
                   kwargs=tuple(sorted((kwargs or {}).items())))


@dataclass
class Evaluation:
    """Everything an evaluation produced: per-run metrics and trajectories, in a stable order."""

    agents: list[AgentSpec]
    metrics: list[PieceMetrics]
    trajectories: list[Trajectory] = field(repr=False)
    workers: int = 1

    @property
    def results(self) -> pd.DataFrame:
        """One row per (agent, piece, seed): ``agent, piece, seed, tr, tue, error_mean_px, ...``."""
        return pd.DataFrame([m.as_row() for m in self.metrics])

    def summary(self) -> pd.DataFrame:
        """One row per agent, in the order given: the pooled metrics (see :func:`summarize`)."""
        return summarize(self.metrics, order=[a.label for a in self.agents])


# ---------------------------------------------------------------------------- one episode
def make_env(piece: Piece, action_type: str, **env_kwargs):
    """The evaluation environment for one piece (the class directly: no checker wrappers in the way)."""
    return MSMDFollowEnv(data=[piece], action_type=action_type, **{**env_kwargs, **FIXED_ENV_KWARGS})


def run_episode(follower, piece: Piece, seed: int = 0, *, label: str | None = None, env=None) -> Trajectory:
    """Let ``follower`` follow ``piece`` from the first onset until the end or the loss of the target.

    Args:
        follower: a :class:`~sfgym.followers.Follower`.
        piece: the piece.
        seed: seeds the follower's ``reset`` and the environment's.
        label: the agent name recorded in the trajectory (default: ``follower.name``).
        env: an environment holding ``piece`` (default: :func:`make_env` with the follower's
            ``action_type`` and its ``env_kwargs``, if it has any).
    """
    if env is None:
        env = make_env(piece, follower.action_type, **getattr(follower, "env_kwargs", {}))
    started = time.perf_counter()
    follower.reset(piece, seed=seed)
    reset_seconds = time.perf_counter() - started
    observation, info = env.reset(seed=seed, options={"piece": piece.name})
    frames, follower_x, true_x = [info["frame"]], [info["follower_x"]], [info["true_x"]]
    act_seconds = 0.0
    while True:
        started = time.perf_counter()
        action = follower.act(observation, info)
        act_seconds += time.perf_counter() - started
        observation, _, terminated, truncated, info = env.step(action)
        frames.append(info["frame"])
        follower_x.append(info["follower_x"])
        true_x.append(info["true_x"])
        if terminated or truncated:
            break
    return Trajectory(agent=label or follower.name, piece=piece.name, seed=seed, frames=frames,
                      follower_x=follower_x, true_x=true_x, threshold=env.unwrapped.reward_threshold,
                      act_seconds=act_seconds, reset_seconds=reset_seconds)


# ---------------------------------------------------------------------------- tasks
_FOLLOWERS: dict[AgentSpec, Any] = {}
"""Followers built in this process, re-used across pieces (they keep per-score caches)."""


def _follower(agent: AgentSpec):
    if agent.instance is not None:
        return agent.instance
    if agent not in _FOLLOWERS:
        _FOLLOWERS[agent] = make_follower(agent.spec, **dict(agent.kwargs))
    return _FOLLOWERS[agent]


def _evaluate_piece(piece: Piece, agents: Sequence[AgentSpec], seeds: int) -> list[tuple[PieceMetrics, Trajectory]]:
    """All agents and seeds on one piece (a worker's task)."""
    out = []
    for agent in agents:
        follower = _follower(agent)
        for seed in range(seeds if follower.stochastic else 1):
            try:
                trajectory = run_episode(follower, piece, seed, label=agent.label)
            except ValueError as error:  # bad input (e.g. a piece without what the follower needs)
                raise ValueError(f"follower {agent.label!r} on piece {piece.name!r}: {error}") from error
            out.append((piece_metrics(trajectory, piece), trajectory))
    return out


def _init_worker(threads: int) -> None:
    """Keep each worker's torch and math libraries to ``threads`` threads (before torch is imported)."""
    set_process_threads(threads)


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_evaluation(
    agents: Iterable[str | AgentSpec],
    pieces: Sequence[Piece],
    seeds: int = 1,
    workers: int | None = None,
    *,
    follower_kwargs: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    threads: int = 1,
) -> Evaluation:
    """Evaluate followers on pieces; see the module docstring.

    Args:
        agents: follower specs (strings for :meth:`AgentSpec.parse`), :class:`AgentSpec` or follower objects.
        pieces: the pieces to follow.
        seeds: runs per piece for stochastic followers (seeds ``0 .. seeds-1``).
        workers: worker processes (default ``min(2, cpus)``); 1 runs everything in this process.
        follower_kwargs: extra ``make_follower`` kwargs per spec or label, e.g.
            ``{"constant_tempo": {"px_per_second": 180.0}}``.
        progress: show a progress bar.
        threads: torch threads per worker process (this process's with ``workers=1``, restored after).
            One by default: a follower's per-frame work is too small to share (see :mod:`sfgym.threads`).
    """
    from tqdm.auto import tqdm

    follower_kwargs = follower_kwargs or {}
    specs = []
    for agent in agents:
        if isinstance(agent, AgentSpec):
            specs.append(agent)
        elif not isinstance(agent, str):
            specs.append(AgentSpec.of_instance(agent))
        else:
            parsed = AgentSpec.parse(agent)
            extra = follower_kwargs.get(parsed.label, follower_kwargs.get(parsed.spec))
            specs.append(AgentSpec.parse(agent, extra) if extra else parsed)
    labels = [spec.label for spec in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"followers must have distinct labels, got {labels}; name them with LABEL=SPEC")
    if not pieces:
        raise ValueError("no pieces to evaluate on")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    check_threads(threads)
    workers = default_workers() if workers is None else max(1, int(workers))
    workers = min(workers, len(pieces))

    # Build every follower once here first: a missing checkpoint fails now, not in a worker. Followers of
    # an earlier evaluation are dropped: the checkpoint behind a path may have changed since.
    _FOLLOWERS.clear()
    for spec in specs:
        _follower(spec)

    bar = tqdm(total=len(pieces), desc="evaluating", unit="piece", disable=not progress)
    results: list[tuple[PieceMetrics, Trajectory]] = []
    try:
        if workers == 1:
            with torch_threads(threads):
                for piece in pieces:
                    results += _evaluate_piece(piece, specs, seeds)
                    bar.update()
        else:
            # spawn, not fork: workers must not inherit torch's thread pools or open files mid-state
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                     initargs=(threads,)) as pool:
                futures = [pool.submit(_evaluate_piece, piece, specs, seeds) for piece in pieces]
                for future in as_completed(futures):
                    results += future.result()
                    bar.update()
    finally:
        bar.close()

    agent_order = {label: i for i, label in enumerate(labels)}
    piece_order = {piece.name: i for i, piece in enumerate(pieces)}
    results.sort(key=lambda r: (agent_order[r[0].agent], piece_order[r[0].piece], r[0].seed))
    return Evaluation(agents=specs, metrics=[m for m, _ in results], trajectories=[t for _, t in results],
                      workers=workers)


def evaluate(
    followers_specs: Iterable[str | AgentSpec], pieces: Sequence[Piece], seeds: int = 1, workers: int | None = None,
    **kwargs,
) -> pd.DataFrame:
    """Evaluate followers on pieces: one row per (agent, piece, seed). See :func:`run_evaluation`."""
    return run_evaluation(followers_specs, pieces, seeds, workers, **kwargs).results


def summarize(metrics: Sequence[PieceMetrics], order: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per agent: :func:`~sfgym.metrics.aggregate` of its runs."""
    by_agent: dict[str, list[PieceMetrics]] = {}
    for m in metrics:
        by_agent.setdefault(m.agent, []).append(m)
    labels = list(order) if order is not None else list(by_agent)
    return pd.DataFrame([{"agent": label, **aggregate(by_agent[label])} for label in labels if label in by_agent])


# ---------------------------------------------------------------------------- reports
SUMMARY_COLUMNS = (
    ("TR", "tr", "{:.3f}"), ("TUE", "tue", "{:.3f}"), ("err mean px", "error_mean_px", "{:.1f}"),
    ("err mean cm", "error_mean_cm", "{:.2f}"), ("err median px", "error_median_px", "{:.1f}"),
    ("err std px", "error_std_px", "{:.1f}"),
    ("≤0.05 s", "within_0.05s", "{:.3f}"), ("≤0.1 s", "within_0.1s", "{:.3f}"),
    ("≤0.5 s", "within_0.5s", "{:.3f}"), ("≤1 s", "within_1s", "{:.3f}"), ("≤5 s", "within_5s", "{:.3f}"),
    ("ms/frame", "ms_per_frame", "{:.3f}"), ("reset s", "reset_s", "{:.2f}"), ("runs", "runs", "{:d}"),
)
"""(header, summary column, format) of the table in ``summary.md``."""


def summary_markdown(summary: pd.DataFrame) -> str:
    """The per-agent summary as a Markdown table."""
    header = ["agent"] + [title for title, _, _ in SUMMARY_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in summary.iterrows():
        cells = [str(row["agent"])]
        for _, column, fmt in SUMMARY_COLUMNS:
            value = row[column]
            cells.append("–" if value is None or (isinstance(value, float) and np.isnan(value))
                         else fmt.format(int(value) if fmt == "{:d}" else float(value)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _figure_png(figure) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def plot_positions(piece: Piece, trajectories: Sequence[Trajectory]) -> bytes:
    """PNG: score x against time of each trajectory and of the ground truth on one piece."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4.5), layout="constrained")
    axes = figure.add_subplot()
    frames = np.arange(piece.first_onset_frame, piece.last_onset_frame + 1)
    axes.plot(frames / piece.fps, piece.true_x[frames], color="black", linewidth=2.5, alpha=0.35, label="truth")
    axes.plot(piece.onset_frames / piece.fps, piece.onset_x, "k.", markersize=3)
    for trajectory in trajectories:
        (line,) = axes.plot(trajectory.frames / piece.fps, trajectory.follower_x, linewidth=1.2,
                            label=f"{trajectory.agent}" + (" (lost)" if trajectory.lost else ""))
        if trajectory.lost:
            axes.plot(trajectory.frames[-1] / piece.fps, trajectory.follower_x[-1], "x", color=line.get_color(),
                      markersize=9, markeredgewidth=2)
    axes.set(xlabel="performance time (s)", ylabel="sheet x (px)", title=piece.name)
    axes.legend(loc="upper left", fontsize="small")
    axes.grid(alpha=0.3)
    return _figure_png(figure)


def plot_error_histogram(metrics: Sequence[PieceMetrics], order: Sequence[str], threshold: float) -> bytes:
    """PNG: histogram of the alignment error at reached onsets, one outline per agent."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    bins = np.linspace(0, threshold, 35)
    for label in order:
        errors = np.concatenate([m.onset_errors_px for m in metrics if m.agent == label] or [np.empty(0)])
        if len(errors):
            axes.hist(np.minimum(errors, threshold), bins=bins, histtype="step", linewidth=1.5,
                      weights=np.full(len(errors), 1 / len(errors)), label=f"{label} (n={len(errors)})")
    axes.set(xlabel="|x - x_true| at reached onsets (px)", ylabel="share of onsets",
             title="alignment error at onsets")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _figure_png(figure)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)


def write_report(evaluation: Evaluation, pieces: Sequence[Piece], out_dir: str | os.PathLike, *,
                 title: str = "Evaluation", plots: bool = True, progress: bool = False) -> dict[str, Any]:
    """Write ``results.csv``, ``summary.csv``, ``summary.md`` and (with ``plots``) ``plots/`` into ``out_dir``.

    Every file is written atomically (a temporary file in the same folder, then ``os.replace``).
    Returns the paths written, by kind.
    """
    from pathlib import Path

    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = evaluation.summary()
    written: dict[str, Any] = {}
    written["results"] = out_dir / "results.csv"
    atomic_write_bytes(written["results"], evaluation.results.to_csv(index=False).encode())
    written["summary_csv"] = out_dir / "summary.csv"
    atomic_write_bytes(written["summary_csv"], summary.to_csv(index=False).encode())

    n_runs = len(evaluation.metrics)
    text = [f"# {title}\n", f"{len({m.piece for m in evaluation.metrics})} pieces, {n_runs} runs, "
            f"{evaluation.workers} worker process(es) on {os.cpu_count()} CPUs.\n",
            summary_markdown(summary),
            "TR: onsets reached before the target is first lost (error > "
            f"{DEFAULT_THRESHOLD_PX:.0f} px), over all onsets. TUE: share of runs tracked to the last onset. "
            "Errors: |x - x_true| at reached onsets (native px; cm at 72 dpi). ≤t s: share of all onsets whose "
            "position maps back (through the ground truth) to within t s of the onset's time; missed onsets "
            "count as misses. ms/frame: mean time of one `act` call (environment excluded), measured during "
            "this evaluation; reset s: mean time of `reset` per piece (e.g. score synthesis). "
            "Definitions: `sfgym.metrics`.\n"]
    written["summary_md"] = out_dir / "summary.md"
    atomic_write_bytes(written["summary_md"], "\n".join(text).encode())

    if plots:
        plot_dir = out_dir / "plots"
        written["error_histogram"] = plot_dir / "error_histogram.png"
        atomic_write_bytes(written["error_histogram"], plot_error_histogram(
            evaluation.metrics, [a.label for a in evaluation.agents], DEFAULT_THRESHOLD_PX))
        first_runs: dict[str, list[Trajectory]] = {}
        for trajectory in evaluation.trajectories:
            runs = first_runs.setdefault(trajectory.piece, [])
            if all(t.agent != trajectory.agent for t in runs):  # the first seed of each agent
                runs.append(trajectory)
        written["positions"] = []
        for piece in tqdm(pieces, desc="plotting", unit="piece", disable=not progress):
            if piece.name in first_runs:
                path = plot_dir / "positions" / f"{_safe_name(piece.name)}.png"
                atomic_write_bytes(path, plot_positions(piece, first_runs[piece.name]))
                written["positions"].append(path)
    return written


__all__ = ["AgentSpec", "Evaluation", "default_workers", "evaluate", "make_env", "run_episode", "plot_error_histogram",
           "plot_positions", "run_evaluation", "summarize", "summary_markdown", "write_report"]
