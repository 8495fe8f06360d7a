"""Several followers on one piece at once: one environment each, stepped frame by frame together.

A :class:`SideBySideSession` gives the :class:`~sfgym.rendering.view.FrameState` of any frame of the
piece's timeline (frame 0 to the last onset). It computes frames on demand, in order, and keeps them,
so the player can seek back (replay what was computed) and forward (compute up to there first: the
followers are causal, so jumping ahead means running them over the skipped frames).

Each follower runs in the evaluation's environment (:func:`sfgym.evaluation.make_env`: the reference
loss threshold of 170 px, plus the follower's own ``env_kwargs``), so what the view shows is exactly
what ``sfgym evaluate`` measures. Before the first onset the followers wait at their start position;
a follower that loses the target (the environment terminates) stays where it was lost, marked lost,
while the others go on. On a recording without a ground truth (``truth_known=False``: a user's recording of
a score, its performance timing a stand-in) there is no true position, no error and no loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from sfgym.data.piece import Piece
from sfgym.envs import MSMDFollowEnv
from sfgym.envs.geometry import NEVER_LOST_PX
from sfgym.followers import Follower
from sfgym.rendering.view import (
    STATUS_DONE, STATUS_LOST, STATUS_TRACKING, STATUS_WAITING, AgentFrame, FrameState,
)
from sfgym.evaluation import make_env

EnvFactory = Callable[..., Any]


def _evaluation_env(piece: Piece, action_type: str, **env_kwargs):
    return make_env(piece, action_type, **env_kwargs)


def _never_lost_env(piece: Piece, action_type: str, **env_kwargs):
    """An environment over a recording without a ground truth: no distance from the stand-in truth ends it."""
    return MSMDFollowEnv(data=[piece], action_type=action_type, **{**env_kwargs, "reward_threshold": NEVER_LOST_PX})


@dataclass
class _Runner:
    """One follower with its environment and where it stands."""

    label: str
    follower: Follower
    env: Any
    observation: Any = None
    info: dict | None = None
    over: bool = False
    lost_at_frame: int | None = None


class SideBySideSession:
    """Run followers side by side on ``piece`` and serve :class:`FrameState` per frame.

    Args:
        piece: the piece every follower follows.
        followers: ``(label, follower)`` pairs, in legend order.
        seed: seeds every follower's ``reset`` and every environment.
        env_factory: ``env_factory(piece, action_type, **env_kwargs)`` builds a follower's environment
            (default: the evaluation's, :func:`sfgym.evaluation.make_env`; without a ground truth, one that
            never ends early).
        truth_known: whether ``piece.notes`` are the performance's real timing; without it the states carry
            no true position and no errors.
    """

    def __init__(self, piece: Piece, followers: Sequence[tuple[str, Follower]], seed: int = 0,
                 env_factory: EnvFactory | None = None, *, truth_known: bool = True):
        if not followers:
            raise ValueError("no follower to render: give at least one")
        factory = env_factory or (_evaluation_env if truth_known else _never_lost_env)
        self.piece = piece
        self.truth_known = truth_known
        self.labels = [label for label, _ in followers]
        self._runners: list[_Runner] = []
        for label, follower in followers:
            env = factory(piece, follower.action_type, **getattr(follower, "env_kwargs", {}))
            follower.reset(piece, seed=seed)
            observation, info = env.reset(seed=seed, options={"piece": piece.name})
            self._runners.append(_Runner(label, follower, env, observation, info))
        self.threshold = float(self._runners[0].env.unwrapped.reward_threshold)
        self.observed_frames = int(self._runners[0].env.unwrapped.spec_window)
        self.start_frame = int(self._runners[0].info["frame"])
        self.end_frame = piece.last_onset_frame
        self._history: list[FrameState] = [self._waiting_state(f) for f in range(self.start_frame)]
        self._history.append(self._snapshot(self.start_frame))

    @property
    def n_frames(self) -> int:
        """Frames on the timeline: 0 .. last onset frame."""
        return self.end_frame + 1

    @property
    def frames_computed(self) -> int:
        return len(self._history)

    def state(self, frame: int) -> FrameState:
        """The state at ``frame`` (clamped to the timeline), computing the frames up to it if needed."""
        frame = max(0, min(int(frame), self.end_frame))
        while len(self._history) <= frame:
            self._step_all()
        return self._history[frame]

    def close(self) -> None:
        for runner in self._runners:
            runner.env.close()

    # ------------------------------------------------------------------ stepping
    def _step_all(self) -> None:
        frame = len(self._history)
        for runner in self._runners:
            if runner.over:
                continue
            action = runner.follower.act(runner.observation, runner.info)
            runner.observation, _, terminated, truncated, runner.info = runner.env.step(action)
            if runner.info["frame"] != frame:
                raise RuntimeError(f"{runner.label}: environment at frame {runner.info['frame']}, expected {frame}")
            if terminated:
                runner.lost_at_frame = frame
            runner.over = terminated or truncated
        self._history.append(self._snapshot(frame))

    def _true_x(self, frame: int) -> float | None:
        return float(self.piece.true_x[frame]) if self.truth_known else None

    def _waiting_state(self, frame: int) -> FrameState:
        agents = [AgentFrame(r.label, float(r.info["follower_x"]), None, STATUS_WAITING) for r in self._runners]
        return FrameState(frame=frame, true_x=self._true_x(frame), agents=agents)

    def _snapshot(self, frame: int) -> FrameState:
        true_x = self._true_x(frame)
        agents = []
        for runner in self._runners:
            x = float(runner.info["follower_x"])
            if runner.lost_at_frame is not None:
                status, lost_at = STATUS_LOST, runner.lost_at_frame / self.piece.fps
            else:
                status, lost_at = (STATUS_DONE if runner.over else STATUS_TRACKING), None
            agents.append(AgentFrame(runner.label, x, None if true_x is None else abs(x - true_x), status, lost_at))
        return FrameState(frame=frame, true_x=true_x, agents=agents)


__all__ = ["SideBySideSession"]
