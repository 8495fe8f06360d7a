"""RL run configurations: one YAML file per run, validated before anything is built.

A config names the algorithm, its hyperparameters *in stable-baselines3's own names* (checked
against the algorithm's constructor), the environment's keyword arguments (checked against
:class:`sfgym.envs.MSMDFollowEnv`), the trunk, and how the run evaluates and saves itself::

    algorithm: ppo            # ppo | a2c | recurrent_ppo
    total_timesteps: 2000000
    max_minutes: null         # wall-clock budget: stop (and save) when it is spent; null = none
    seed: 0
    device: auto              # auto | cpu | cuda
    torch_threads: null       # CPU threads of torch in the training process; null = torch's default
    n_envs: 8
    vec_env: subproc          # subproc (one process per env) | dummy (all in this process)
    data: null                # dataset root or split dir; null = the built-in default dataset
    env: {reward_threshold: 170, actions: [-1.0, 0.0, 1.0]}
    trunk: {features: 512, dropout: 0.0, width: 1.0}   # kind: figure3 | matching, match_frames: 8
    hyperparameters:          # keyword arguments of PPO / A2C / RecurrentPPO
      learning_rate: 1.0e-4
      policy_kwargs: {net_arch: {pi: [256], vf: [256]}, activation_fn: elu}
    evaluation: {every_steps: 50000, split: valid, max_pieces: null, deterministic: true}
    checkpoint_every_steps: 200000
    init_from: null           # supervised checkpoint whose trunk initializes the policy's
    freeze_trunk_steps: 0     # keep that trunk frozen for the first N steps
    frozen_trunk: false       # keep it frozen for the whole run, its features looked up per piece
                              # (agents.rl.frozen_trunk: ~100x faster steps on a CPU)
    progress_bar: true

Every unknown key is an error that names the key, where it is and the file.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agents.config_files import apply_overrides, read_yaml_config
from agents.networks import TrunkConfig

ALGORITHMS = ("ppo", "a2c", "recurrent_ppo")

# YAML cannot hold Python classes; these names stand for the ones a policy_kwargs may need.
ACTIVATIONS: dict[str, type[nn.Module]] = {"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                                                      "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}

# Constructor arguments that the training code sets itself, never the config.
_RESERVED_ALGORITHM_ARGS = {"self", "policy", "env", "seed", "device", "verbose", "tensorboard_log", "_init_setup_model"}
_RESERVED_POLICY_ARGS = {"self", "observation_space", "action_space", "lr_schedule", "features_extractor_class",
                         "features_extractor_kwargs"}
_RESERVED_ENV_ARGS = {"self", "data", "split", "render_mode"}


def algorithm_class(name: str):
    """The SB3 class of an algorithm name (imported lazily: sb3-contrib only for recurrent_ppo)."""
    if name == "ppo":
        from stable_baselines3 import PPO
        return PPO
    if name == "a2c":
        from stable_baselines3 import A2C
        return A2C
    if name == "recurrent_ppo":
        from sb3_contrib import RecurrentPPO
        return RecurrentPPO
    raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}")


def policy_name(algorithm: str) -> str:
    """The SB3 policy alias for dict observations."""
    return "MultiInputLstmPolicy" if algorithm == "recurrent_ppo" else "MultiInputPolicy"


@dataclass
class TrunkSettings:
    """The parts of :class:`agents.networks.TrunkConfig` not fixed by the observation space."""

    features: int = 512
    dropout: float = 0.0
    width: float = 1.0
    kind: str = "figure3"
    match_frames: int = 8
    match_context: int = 0


@dataclass
class EvaluationSettings:
    """Periodic evaluation on held-out pieces (model selection on their tracking ratio).

    Attributes:
        every_steps: environment steps (summed over all envs) between evaluations; 0 = only at the end.
        split: the split evaluated.
        max_pieces: evaluate only N pieces of the split (the canonical performances of the first scores
            by name, see :func:`sfgym.data.msmd.load_canonical_first`); ``None`` = all.
        deterministic: greedy actions (the default) or sampled ones.
    """

    every_steps: int = 50_000
    split: str = "valid"
    max_pieces: int | None = None
    deterministic: bool = True


@dataclass
class RLConfig:
    """A validated RL run configuration (see the module docstring for the YAML form)."""

    algorithm: str
    total_timesteps: int
    max_minutes: float | None = None
    seed: int = 0
    device: str = "auto"
    torch_threads: int | None = None
    n_envs: int = 8
    vec_env: str = "subproc"
    data: str | None = None
    env: dict[str, Any] = field(default_factory=dict)
    trunk: TrunkSettings = field(default_factory=TrunkSettings)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    checkpoint_every_steps: int = 0
    init_from: str | None = None
    freeze_trunk_steps: int = 0
    frozen_trunk: bool = False
    progress_bar: bool = True
    source: str = "<memory>"
    """The file the config came from (for error messages); not a YAML key."""

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (without ``source``), as written to a run directory's ``config.yaml``."""
        data = asdict(self)
        data.pop("source")
        return data

    def algorithm_kwargs(self) -> dict[str, Any]:
        """The hyperparameters, with class names in ``policy_kwargs`` turned into classes."""
        kwargs = copy.deepcopy(self.hyperparameters)
        policy_kwargs = kwargs.get("policy_kwargs") or {}
        if "activation_fn" in policy_kwargs:
            policy_kwargs["activation_fn"] = ACTIVATIONS[policy_kwargs["activation_fn"]]
        if "optimizer_class" in policy_kwargs:
            policy_kwargs["optimizer_class"] = OPTIMIZERS[policy_kwargs["optimizer_class"]]
        kwargs["policy_kwargs"] = policy_kwargs
        return kwargs


def _reject_unknown(given: dict, known: set[str] | list[str], where: str, source: str) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(
            f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(repr(k) for k in unknown)} "
            f"in {where}; known keys: {', '.join(sorted(known))}"
        )


def _mapping(value: Any, where: str, source: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{source}: {where} must be a mapping, got {type(value).__name__} {value!r}")
    return value


def _constructor_args(cls, reserved: set[str]) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - reserved


def env_argument_names() -> set[str]:
    """Keyword arguments of the environment a config's ``env`` section may set."""
    from sfgym.envs import MSMDFollowEnv

    return _constructor_args(MSMDFollowEnv, _RESERVED_ENV_ARGS)


def validate_hyperparameters(algorithm: str, hyperparameters: dict, source: str) -> None:
    """Check ``hyperparameters`` against the algorithm's and its policy's constructor signatures."""
    cls = algorithm_class(algorithm)
    _reject_unknown(hyperparameters, _constructor_args(cls, _RESERVED_ALGORITHM_ARGS),
                    f"'hyperparameters' (arguments of {cls.__name__})", source)
    policy_kwargs = _mapping(hyperparameters.get("policy_kwargs"), "'hyperparameters.policy_kwargs'", source)
    policy_cls = cls.policy_aliases[policy_name(algorithm)]
    _reject_unknown(policy_kwargs, _constructor_args(policy_cls, _RESERVED_POLICY_ARGS),
                    f"'hyperparameters.policy_kwargs' (arguments of {policy_cls.__name__}; the features "
                    "extractor is always the trunk, set in 'trunk')", source)
    for key, table in (("activation_fn", ACTIVATIONS), ("optimizer_class", OPTIMIZERS)):
        if key in policy_kwargs and policy_kwargs[key] not in table:
            raise ValueError(f"{source}: hyperparameters.policy_kwargs.{key} must be one of {sorted(table)}, "
                             f"got {policy_kwargs[key]!r}")


def config_from_dict(raw: Any, source: str = "<memory>") -> RLConfig:
    """Validate a parsed YAML mapping into an :class:`RLConfig`."""
    raw = copy.deepcopy(_mapping(raw, "the config", source))
    top_level = {f.name for f in fields(RLConfig)} - {"source"}
    _reject_unknown(raw, top_level, "the top level", source)
    for required in ("algorithm", "total_timesteps"):
        if required not in raw:
            raise ValueError(f"{source}: missing required key {required!r}")
    algorithm = raw["algorithm"]
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{source}: unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")

    trunk = _mapping(raw.pop("trunk", None), "'trunk'", source)
    _reject_unknown(trunk, {f.name for f in fields(TrunkSettings)}, "'trunk'", source)
    evaluation = _mapping(raw.pop("evaluation", None), "'evaluation'", source)
    _reject_unknown(evaluation, {f.name for f in fields(EvaluationSettings)}, "'evaluation'", source)
    env = _mapping(raw.pop("env", None), "'env'", source)
    _reject_unknown(env, env_argument_names(), "'env' (arguments of MSMDFollowEnv)", source)
    hyperparameters = _mapping(raw.pop("hyperparameters", None), "'hyperparameters'", source)
    validate_hyperparameters(algorithm, hyperparameters, source)

    config = RLConfig(**raw, env=env, trunk=TrunkSettings(**trunk), hyperparameters=hyperparameters,
                      evaluation=EvaluationSettings(**evaluation), source=source)
    _check_values(config)
    return config


def _check_values(config: RLConfig) -> None:
    source = config.source
    for name in ("total_timesteps", "n_envs"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{source}: {name} must be a positive integer, got {value!r}")
    for name, value in (("checkpoint_every_steps", config.checkpoint_every_steps),
                        ("freeze_trunk_steps", config.freeze_trunk_steps),
                        ("evaluation.every_steps", config.evaluation.every_steps)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{source}: {name} must be a non-negative integer, got {value!r}")
    if config.max_minutes is not None and (isinstance(config.max_minutes, bool)
                                           or not isinstance(config.max_minutes, (int, float))
                                           or config.max_minutes <= 0):
        raise ValueError(f"{source}: max_minutes must be a positive number or null, got {config.max_minutes!r}")
    if config.torch_threads is not None and (not isinstance(config.torch_threads, int) or config.torch_threads < 1):
        raise ValueError(f"{source}: torch_threads must be a positive integer or null, got {config.torch_threads!r}")
    if config.vec_env not in ("subproc", "dummy"):
        raise ValueError(f"{source}: vec_env must be 'subproc' or 'dummy', got {config.vec_env!r}")
    if config.env.get("action_type", "discrete") != "discrete":
        raise ValueError(f"{source}: env.action_type must be 'discrete' for the RL velocity agents, "
                         f"got {config.env['action_type']!r}")
    try:
        TrunkConfig(**asdict(config.trunk))  # its own checks of kind and match settings
    except ValueError as error:
        raise ValueError(f"{source}: trunk: {error}") from None
    if config.frozen_trunk:
        if not config.init_from:
            raise ValueError(f"{source}: frozen_trunk needs init_from (the supervised checkpoint whose trunk is frozen)")
        if config.algorithm == "recurrent_ppo":
            raise ValueError(f"{source}: frozen_trunk supports ppo and a2c, not recurrent_ppo")
        if config.env.get("difference_channels") or not config.env.get("observe_speed"):
            raise ValueError(f"{source}: frozen_trunk needs env.observe_speed: true and env.difference_channels: "
                             "false (a supervised trunk reads single-channel images; the speed comes separately)")
        if config.freeze_trunk_steps:
            raise ValueError(f"{source}: frozen_trunk keeps the trunk frozen for the whole run; "
                             "drop freeze_trunk_steps")


def load_config(path: str | Path, overrides: list[str] | None = None) -> RLConfig:
    """Read an RL config file, apply ``--set`` style ``overrides`` and validate it."""
    raw = read_yaml_config(path, "RL config")
    source = f"{path} with --set" if overrides else str(path)
    return config_from_dict(apply_overrides(_mapping(raw, "the config", str(path)), overrides or []), source=source)


__all__ = ["ACTIVATIONS", "ALGORITHMS", "apply_overrides", "EvaluationSettings", "OPTIMIZERS", "RLConfig", "TrunkSettings",
           "algorithm_class", "config_from_dict", "env_argument_names", "load_config", "policy_name",
           "validate_hyperparameters"]
