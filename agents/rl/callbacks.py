"""Training callbacks: validation with the tracking metrics, model selection, checkpoints, trunk freezing,
the time budget, Ctrl-C and the progress bar.

All callbacks count *environment steps summed over the parallel envs* (SB3's ``num_timesteps``),
the unit of ``total_timesteps`` and of the learning curve's x axis. Evaluations and checkpoints
happen at the start of a rollout, when the policy has been updated on every step counted so far,
so "step N" always means "the weights trained on N steps".
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from stable_baselines3.common.callbacks import BaseCallback

from agents.rl.curves import CURVE_CSV, CURVE_PNG, plot_learning_curves, write_curve_csv
from agents.rl.extractor import set_trunk_trainable
from agents.rl.follower import RLFollower, save_model
from agents.runs import Budget, BudgetProgress, StopRequest, json_safe
from sfgym.files import atomic_write_bytes
from sfgym.data.piece import Piece
from sfgym.followers import Follower
from sfgym.evaluation import run_episode
from sfgym.metrics import PieceMetrics, aggregate, piece_metrics

BEST_MODEL = "best_model.zip"
BEST_JSON = "best.json"


def evaluate_follower(follower: Follower, pieces: Sequence[Piece], seed: int = 0) -> list[PieceMetrics]:
    """The metrics of ``follower`` on every piece, each followed once with ``seed``, in this process."""
    return [piece_metrics(run_episode(follower, piece, seed), piece) for piece in pieces]


class TrackingEvalCallback(BaseCallback):
    """Evaluate on held-out pieces every ``every_steps``; keep the model with the best TR.

    Each evaluation follows every piece once (greedy actions unless ``deterministic=False``) with
    :func:`sfgym.evaluation.run_episode`, the runner of ``sfgym evaluate``, aggregates TR / TUE /
    error with :func:`sfgym.metrics.aggregate`, logs them (``eval/*``),
    appends a row to ``learning_curve.csv`` and redraws ``learning_curve.png``. A model whose TR
    beats every earlier one (ties: lower mean error) is saved as ``best_model.zip``, its numbers
    in ``best.json``. An evaluation also runs before training (step 0) and at the end.

    Args:
        pieces: the pieces to follow.
        run_dir: where the curve and the best model go.
        every_steps: steps between evaluations (0: only at the start and the end).
        env_kwargs: the environment arguments the model trains with (its observation settings).
        metadata: stored in saved models (see :func:`agents.rl.follower.save_model`).
        deterministic: greedy actions (default) or sampled ones.
        seed: the seed of every evaluation episode.
        deployable: turns the training model into the model that is evaluated and saved (for
            ``frozen_trunk`` runs: :func:`agents.rl.frozen_trunk.export_image_model`); default: itself.
        rows / best: the evaluations of the run this one resumes (its learning curve and best row).
        spent_s: the seconds that run took (the curve's ``wall_s`` continues from them).
    """

    def __init__(self, pieces: Sequence[Piece], run_dir: str | Path, every_steps: int,
                 env_kwargs: dict[str, Any], metadata: dict[str, Any], deterministic: bool = True, seed: int = 0,
                 deployable: Callable[[Any], Any] | None = None, verbose: int = 0,
                 rows: Sequence[dict[str, Any]] = (), best: dict[str, Any] | None = None, spent_s: float = 0.0):
        super().__init__(verbose)
        if not pieces:
            raise ValueError("TrackingEvalCallback: no evaluation pieces")
        self.env_kwargs = dict(env_kwargs)
        self.pieces = list(pieces)
        self.run_dir = Path(run_dir)
        self.every_steps = int(every_steps)
        self.metadata = metadata
        self.deterministic = deterministic
        self.seed = seed
        self.deployable = deployable or (lambda model: model)
        self.rows: list[dict[str, Any]] = list(rows)
        self.best: dict[str, Any] | None = best
        self.spent_s = float(spent_s)
        self._next_evaluation = 0
        self._start_time = time.time() - self.spent_s

    def _on_training_start(self) -> None:
        self._start_time = time.time() - self.spent_s
        self._next_evaluation = self.num_timesteps
        if self.rows and self.every_steps:  # resumed: the next evaluation is the one the run was heading for
            self._next_evaluation = self.rows[-1]["step"] + self.every_steps

    def _on_rollout_start(self) -> None:
        if not self.rows or (self.every_steps and self.num_timesteps >= self._next_evaluation):
            self.evaluate()  # the first time: the starting point of the curve

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if not self.rows or self.rows[-1]["step"] != self.num_timesteps:
            self.evaluate()

    def evaluate(self) -> dict[str, Any]:
        """Evaluate the current model now; returns the aggregated metrics."""
        model = self.deployable(self.model)
        follower = RLFollower(model, name="valid", stochastic=not self.deterministic, env_kwargs=self.env_kwargs)
        summary = aggregate(evaluate_follower(follower, self.pieces, seed=self.seed))
        row = {"step": self.num_timesteps, "wall_s": round(time.time() - self._start_time, 1), **summary}
        self.rows.append(row)
        while self.every_steps and self._next_evaluation <= self.num_timesteps:
            self._next_evaluation += self.every_steps

        for key in ("tr", "tue", "error_mean_px"):
            self.logger.record(f"eval/{key}", summary[key])
        if self._is_best(row):
            self.best = row
            save_model(model, self.run_dir / BEST_MODEL, self.metadata)
            atomic_write_bytes(self.run_dir / BEST_JSON, (json.dumps(json_safe(row), indent=2) + "\n").encode())
        self.logger.record("eval/best_tr", self.best["tr"])
        write_curve_csv(self.run_dir / CURVE_CSV, self.rows)
        plot_learning_curves([(self.run_dir.name, self.rows)], self.run_dir / CURVE_PNG)
        if self.verbose:
            print(f"step {row['step']}: valid TR {row['tr']:.3f}, TUE {row['tue']:.2f}, "
                  f"error {row['error_mean_px']:.1f} px (best TR {self.best['tr']:.3f} at step {self.best['step']})")
        return row

    def _is_best(self, row: dict[str, Any]) -> bool:
        if self.best is None:
            return True
        if row["tr"] != self.best["tr"]:
            return row["tr"] > self.best["tr"]
        return row["error_mean_px"] < self.best["error_mean_px"]


class AtomicCheckpointCallback(BaseCallback):
    """Save ``checkpoints/step_<N>.zip`` every ``every_steps`` (atomically, unlike SB3's own), and with
    ``resume_path`` the training model itself there too (what ``--resume`` continues from)."""

    def __init__(self, run_dir: str | Path, every_steps: int, metadata: dict[str, Any],
                 deployable: Callable[[Any], Any] | None = None, verbose: int = 0, resume_path: str | Path | None = None):
        super().__init__(verbose)
        self.deployable = deployable or (lambda model: model)
        self.directory = Path(run_dir) / "checkpoints"
        self.every_steps = int(every_steps)
        self.metadata = metadata
        self.resume_path = resume_path
        self._next = self.every_steps

    def _on_training_start(self) -> None:
        while self.every_steps and self._next <= self.num_timesteps:  # a resumed run: the next one due
            self._next += self.every_steps

    def _on_rollout_start(self) -> None:
        if self.every_steps and self.num_timesteps >= self._next:
            path = save_model(self.deployable(self.model), self.directory / f"step_{self.num_timesteps:09d}.zip", self.metadata)
            if self.resume_path is not None:
                save_model(self.model, self.resume_path, self.metadata)
            while self._next <= self.num_timesteps:
                self._next += self.every_steps
            if self.verbose:
                print(f"checkpoint {path}")

    def _on_step(self) -> bool:
        return True


class PolicyAverageCallback(BaseCallback):
    """An exponential moving average of the policy's weights, updated after every PPO / A2C update.

    PPO at a constant learning rate keeps moving: on the matching trunk its validation TR jumps between a few
    levels from one evaluation to the next, and the last model is often well below the best. An average of the
    weights over the last ``1 / (1 - decay)`` updates moves less (Polyak averaging). :meth:`deployable` turns the
    training model into a stand-in that acts with the averaged weights, for the evaluations, the checkpoints and
    ``final_model.zip``; training goes on with the policy's own weights (``last_model.zip``).

    The first updates are averaged with a smaller decay, ``min(decay, (1 + n) / (10 + n))`` at update ``n``,
    so that the average is not dominated by the starting weights. A resumed run starts its average from the
    weights it resumes.

    Must come before the callbacks that use :meth:`deployable` in the callback list: they run at the same
    moments, after it.
    """

    def __init__(self, decay: float, verbose: int = 0):
        super().__init__(verbose)
        if not 0 < decay < 1:
            raise ValueError(f"PolicyAverageCallback: decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.averaged = None  # the policy module holding the averaged weights
        self._averaged_at = -1  # num_timesteps of the last update averaged in

    def _on_training_start(self) -> None:
        self.averaged = copy.deepcopy(self.model.policy)
        self.averaged.set_training_mode(False)
        self._averaged_at = self.model.num_timesteps

    def _on_rollout_start(self) -> None:  # the policy was just updated on the rollout before
        self._average_in()

    def _on_training_end(self) -> None:  # after the last update
        self._average_in()

    def _on_step(self) -> bool:
        return True

    @torch.no_grad()
    def _average_in(self) -> None:
        if self.averaged is None or self.model.num_timesteps == self._averaged_at:
            return  # no update since the last one averaged in
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = self.model.policy.state_dict()
        for key, average in self.averaged.state_dict().items():
            if average.is_floating_point():
                average.lerp_(current[key], 1.0 - decay)
            else:
                average.copy_(current[key])
        self.updates += 1
        self._averaged_at = self.model.num_timesteps

    def deployable(self, export: Callable[[Any], Any] | None = None) -> Callable[[Any], Any]:
        """A function of the training model that gives ``export`` (default: nothing more) a shallow copy of it
        whose policy holds the averaged weights."""
        export = export or (lambda model: model)

        def averaged_model(model):
            if self.averaged is None:
                return export(model)
            stand_in = copy.copy(model)  # shares everything but the policy
            stand_in.policy = self.averaged
            return export(stand_in)

        return averaged_model


class FreezeTrunkCallback(BaseCallback):
    """Keep the policy's trunk frozen for the first ``steps`` environment steps, then train it.

    SB3 updates once per rollout (``n_steps × n_envs`` steps); an update whose rollout ends at or
    before step ``steps`` leaves the trunk unchanged, every later one trains it.
    """

    def __init__(self, steps: int, verbose: int = 0):
        super().__init__(verbose)
        self.steps = int(steps)
        self.frozen = False
        self.unfrozen_at: int | None = None

    def _on_training_start(self) -> None:
        if self.num_timesteps < self.steps:
            set_trunk_trainable(self.model.policy, False)
            self.frozen = True

    def _on_rollout_end(self) -> None:  # just before the update on this rollout
        if self.frozen and self.num_timesteps > self.steps:
            set_trunk_trainable(self.model.policy, True)
            self.frozen = False
            self.unfrozen_at = self.num_timesteps
            if self.verbose:
                print(f"step {self.num_timesteps}: trunk unfrozen")
        self.logger.record("train/trunk_frozen", int(self.frozen))

    def _on_step(self) -> bool:
        return True


class TimeBudgetCallback(BaseCallback):
    """Stop training once the :class:`~agents.runs.Budget` is spent (the run still ends normally:
    final evaluation, final model)."""

    def __init__(self, budget: Budget, verbose: int = 0):
        super().__init__(verbose)
        self.budget = budget
        self.stopped_at: int | None = None

    def _on_step(self) -> bool:
        if not self.budget.spent():
            return True
        self.stopped_at = self.num_timesteps
        if self.verbose:
            print(f"step {self.num_timesteps}: time budget of {self.budget.seconds / 60:g} min spent, stopping")
        return False


class StopRequestCallback(BaseCallback):
    """Stop training at the next step once Ctrl-C asked for it (:class:`~agents.runs.StopRequest`); the run
    then ends normally: final evaluation, final model, the model ``--resume`` continues from."""

    def __init__(self, stop: StopRequest):
        super().__init__(0)
        self.stop = stop
        self.stopped_at: int | None = None

    def _on_step(self) -> bool:
        if self.stop.requested and self.stopped_at is None:
            self.stopped_at = self.num_timesteps
        return not self.stop.requested


class ProgressCallback(BaseCallback):
    """The run's progress bar (:class:`~agents.runs.BudgetProgress`): the share of ``total_timesteps`` or
    of the time budget spent, whichever ends the run."""

    def __init__(self, total_timesteps: int, budget: Budget):
        super().__init__(0)
        self.total_timesteps = int(total_timesteps)
        self.budget = budget
        self.bar: BudgetProgress | None = None

    def _on_training_start(self) -> None:
        self.bar = BudgetProgress(self.total_timesteps, self.budget, "rl training", done=self.num_timesteps)

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


__all__ = ["AtomicCheckpointCallback", "BEST_JSON", "BEST_MODEL", "FreezeTrunkCallback", "PolicyAverageCallback",
           "ProgressCallback", "StopRequestCallback", "TimeBudgetCallback", "TrackingEvalCallback", "evaluate_follower"]
