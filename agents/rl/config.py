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
    extra_train_dirs: []      # more dataset roots whose train split is trained on too (validation: data's)
    env: {reward_threshold: 170, actions: [-1.0, 0.0, 1.0]}
    trunk: {features: 512, dropout: 0.0, width: 1.0}   # agents.networks.TrunkConfig; with init_from
                              # taken from the checkpoint: set only what you mean to check or override
    hyperparameters:          # keyword arguments of PPO / A2C / RecurrentPPO
      learning_rate: 1.0e-4
      policy_kwargs: {net_arch: {pi: [256], vf: [256]}, activation_fn: elu}
    learning_rate_final: null # decay the learning rate linearly to this over total_timesteps; null = constant
    policy_average: null      # decay per update of a moving average of the policy's weights, which is evaluated
                              # and saved in the policy's place; null = off (agents.rl.callbacks.PolicyAverageCallback)
    evaluation: {every_steps: 50000, split: valid, max_pieces: null, deterministic: true}
    checkpoint_every_steps: 200000
    init_from: null           # checkpoint (supervised or trunk pre-training) whose trunk initializes the policy's
    freeze_trunk_steps: 0     # keep that trunk frozen for the first N steps
    frozen_trunk: false       # keep it frozen for the whole run, its features looked up per piece
                              # (agents.rl.frozen_trunk: ~100x faster steps on a CPU)
    progress_bar: true

Every unknown key is an error that names the key, where it is and the file; every value is checked
(type and range, with the messages of :mod:`agents.config_files` that all trainers share) before a
run directory is made.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agents.config_files import (build_section, check_ranges, checked_value, find_config, load_yaml_with_overrides,
                                 mapping, reject_unknown)
from agents.networks import TrunkConfig
from agents.runs import read_trunk
from sfgym.envs import MSMDFollowEnv

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
    extra_train_dirs: list[str] = field(default_factory=list)
    """More dataset roots whose train split joins ``data``'s (other corpora, other timing); validation stays
    on ``data``."""
    env: dict[str, Any] = field(default_factory=dict)
    trunk: TrunkConfig = field(default_factory=TrunkConfig)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    checkpoint_every_steps: int = 0
    init_from: str | None = None
    freeze_trunk_steps: int = 0
    frozen_trunk: bool = False
    progress_bar: bool = True
    learning_rate_final: float | None = None
    """Decay ``hyperparameters.learning_rate`` linearly to this value over ``total_timesteps`` (steady the
    policy at the end of a run); ``None``: constant. A run that a ``max_minutes`` budget ends early stops
    before the decay ends, so set ``total_timesteps`` to what the budget holds."""
    policy_average: float | None = None
    """Keep an exponential moving average of the policy's weights, ``decay`` per update (0.99: about the last
    100 updates), and evaluate, select and save it instead of the policy itself; ``None``: off
    (:class:`~agents.rl.callbacks.PolicyAverageCallback`)."""
    source: str = "<memory>"
    """The file the config came from (for error messages); not a YAML key."""
    trunk_keys: tuple[str, ...] = TrunkConfig.YAML_KEYS
    """The ``trunk`` keys the file sets (the others come from ``init_from``'s checkpoint); not a YAML key."""

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (without ``source``), as written to a run directory's ``config.yaml``."""
        data = asdict(self)
        data.pop("source")
        data.pop("trunk_keys")
        data["trunk"] = self.trunk.settings()
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
        if self.learning_rate_final is not None:
            from stable_baselines3.common.utils import LinearSchedule

            start = kwargs.get("learning_rate", inspect.signature(algorithm_class(self.algorithm).__init__)
                               .parameters["learning_rate"].default)
            kwargs["learning_rate"] = LinearSchedule(start, self.learning_rate_final, end_fraction=1.0)
        return kwargs


def _constructor_args(cls, reserved: set[str]) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - reserved


def env_argument_names() -> set[str]:
    """Keyword arguments of the environment a config's ``env`` section may set."""
    return _constructor_args(MSMDFollowEnv, _RESERVED_ENV_ARGS)


def validate_hyperparameters(algorithm: str, hyperparameters: dict, source: str) -> None:
    """Check ``hyperparameters`` against the algorithm's and its policy's constructor signatures."""
    cls = algorithm_class(algorithm)
    reject_unknown(hyperparameters, _constructor_args(cls, _RESERVED_ALGORITHM_ARGS),
                    f"'hyperparameters' (arguments of {cls.__name__})", source)
    policy_kwargs = mapping(hyperparameters.get("policy_kwargs"), "'hyperparameters.policy_kwargs'", source)
    policy_cls = cls.policy_aliases[policy_name(algorithm)]
    reject_unknown(policy_kwargs, _constructor_args(policy_cls, _RESERVED_POLICY_ARGS),
                    f"'hyperparameters.policy_kwargs' (arguments of {policy_cls.__name__}; the features "
                    "extractor is always the trunk, set in 'trunk')", source)
    for key, table in (("activation_fn", ACTIVATIONS), ("optimizer_class", OPTIMIZERS)):
        if key in policy_kwargs and policy_kwargs[key] not in table:
            raise ValueError(f"{source}: hyperparameters.policy_kwargs.{key} must be one of {sorted(table)}, "
                             f"got {policy_kwargs[key]!r}")


HYPERPARAMETER_TYPES: dict[str, Any] = {
    "learning_rate": float, "n_steps": int, "batch_size": int, "n_epochs": int, "gamma": float, "gae_lambda": float,
    "clip_range": float, "clip_range_vf": float | None, "normalize_advantage": bool, "ent_coef": float,
    "vf_coef": float, "max_grad_norm": float, "use_sde": bool, "sde_sample_freq": int, "target_kl": float | None,
    "stats_window_size": int, "rms_prop_eps": float, "use_rms_prop": bool,
}
"""The types of the hyperparameters the config checks (the others are checked by SB3 when the model is built)."""


def check_hyperparameter_values(algorithm: str, hyperparameters: dict, n_envs: int, source: str) -> dict:
    """``hyperparameters`` with every value of :data:`HYPERPARAMETER_TYPES` checked (type, range), and a
    batch no larger than a rollout (``n_steps × n_envs``); a ValueError names the key and the file."""
    checked = dict(hyperparameters)
    for key, hint in HYPERPARAMETER_TYPES.items():
        if key in checked:
            checked[key] = checked_value(checked[key], hint, f"hyperparameters.{key}", source)
    h = {f"hyperparameters.{key}": value for key, value in checked.items() if key in HYPERPARAMETER_TYPES}
    check_ranges(source, positive={key: h.get(key) for key in (
        "hyperparameters.learning_rate", "hyperparameters.n_steps", "hyperparameters.batch_size",
        "hyperparameters.n_epochs", "hyperparameters.clip_range", "hyperparameters.max_grad_norm",
        "hyperparameters.target_kl", "hyperparameters.rms_prop_eps", "hyperparameters.stats_window_size")},
        non_negative={key: h.get(key) for key in ("hyperparameters.ent_coef", "hyperparameters.vf_coef")},
        unit_interval={key: h.get(key) for key in ("hyperparameters.gamma", "hyperparameters.gae_lambda")})
    defaults = inspect.signature(algorithm_class(algorithm).__init__).parameters
    if "batch_size" in defaults:
        n_steps = checked.get("n_steps", defaults["n_steps"].default)
        batch_size = checked.get("batch_size", defaults["batch_size"].default)
        if batch_size > n_steps * n_envs:
            raise ValueError(f"{source}: 'hyperparameters.batch_size' must not exceed a rollout, n_steps × n_envs "
                             f"= {n_steps} × {n_envs} = {n_steps * n_envs}, got {batch_size}")
    return checked


def config_from_dict(raw: Any, source: str = "<memory>") -> RLConfig:
    """Validate a parsed YAML mapping into an :class:`RLConfig`."""
    raw = copy.deepcopy(mapping(raw, "the config", source))
    hints = typing.get_type_hints(RLConfig)
    top_level = {f.name for f in fields(RLConfig)} - {"source", "trunk_keys"}
    reject_unknown(raw, top_level, "the top level", source)
    for required in ("algorithm", "total_timesteps"):
        if required not in raw:
            raise ValueError(f"{source}: missing required key {required!r}")
    sections = {"trunk", "evaluation", "env", "hyperparameters"}
    values = {key: checked_value(value, hints[key], key, source) for key, value in raw.items() if key not in sections}
    algorithm = values["algorithm"]
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{source}: unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")

    trunk = mapping(raw.get("trunk"), "'trunk'", source)
    values["trunk"] = build_section(TrunkConfig, trunk, "trunk", source, TrunkConfig.YAML_KEYS)
    values["trunk_keys"] = tuple(key for key in TrunkConfig.YAML_KEYS if key in trunk)
    values["evaluation"] = build_section(EvaluationSettings, raw.get("evaluation"), "evaluation", source)
    env = mapping(raw.get("env"), "'env'", source)
    reject_unknown(env, env_argument_names(), "'env' (arguments of MSMDFollowEnv)", source)
    hyperparameters = mapping(raw.get("hyperparameters"), "'hyperparameters'", source)
    validate_hyperparameters(algorithm, hyperparameters, source)
    config = RLConfig(**values, env=env, hyperparameters=hyperparameters, source=source)
    _check_values(config)
    config.hyperparameters = check_hyperparameter_values(algorithm, hyperparameters, config.n_envs, source)
    return config


def _check_values(config: RLConfig) -> None:
    source = config.source
    check_ranges(source, positive={"total_timesteps": config.total_timesteps, "n_envs": config.n_envs,
                                   "max_minutes": config.max_minutes, "torch_threads": config.torch_threads},
                 non_negative={"checkpoint_every_steps": config.checkpoint_every_steps,
                               "learning_rate_final": config.learning_rate_final,
                               "freeze_trunk_steps": config.freeze_trunk_steps,
                               "evaluation.every_steps": config.evaluation.every_steps,
                               "evaluation.max_pieces": config.evaluation.max_pieces})
    if not all(isinstance(directory, str) for directory in config.extra_train_dirs):
        raise ValueError(f"{source}: 'extra_train_dirs' must be a list of paths, got {config.extra_train_dirs!r}")
    if config.policy_average is not None and not 0 < config.policy_average < 1:
        raise ValueError(f"{source}: 'policy_average' must be in (0, 1) (the decay per update), got {config.policy_average}")
    if config.device not in ("auto", "cpu", "cuda") and not config.device.startswith("cuda:"):
        raise ValueError(f"{source}: 'device' must be one of ['auto', 'cpu', 'cuda'], got {config.device!r}")
    if config.vec_env not in ("subproc", "dummy"):
        raise ValueError(f"{source}: vec_env must be 'subproc' or 'dummy', got {config.vec_env!r}")
    if config.env.get("action_type", "discrete") != "discrete":
        raise ValueError(f"{source}: env.action_type must be 'discrete' for the RL velocity agents, "
                         f"got {config.env['action_type']!r}")
    if config.freeze_trunk_steps and not config.init_from:
        raise ValueError(f"{source}: freeze_trunk_steps needs init_from (the checkpoint whose trunk is frozen)")
    if config.frozen_trunk:
        if not config.init_from:
            raise ValueError(f"{source}: frozen_trunk needs init_from (the checkpoint whose trunk is frozen)")
        if config.algorithm == "recurrent_ppo":
            raise ValueError(f"{source}: frozen_trunk supports ppo and a2c, not recurrent_ppo")
        if config.env.get("difference_channels") or not config.env.get("observe_speed"):
            raise ValueError(f"{source}: frozen_trunk needs env.observe_speed: true and env.difference_channels: "
                             "false (a supervised trunk reads single-channel images; the speed comes separately)")
        if config.freeze_trunk_steps:
            raise ValueError(f"{source}: frozen_trunk keeps the trunk frozen for the whole run; "
                             "drop freeze_trunk_steps")


def with_checkpoint_trunk(config: RLConfig) -> RLConfig:
    """``config`` with the trunk of its ``init_from`` checkpoint (:func:`agents.runs.read_trunk`): the
    checkpoint decides every trunk setting the config's ``trunk`` section leaves out; a setting the
    section gives that changes the weights' shapes must agree (the error names both values and what to
    pass); ``dropout`` may differ."""
    if not config.init_from:
        return config
    _, trunk = read_trunk(config.init_from)
    architecture = trunk.architecture()
    given = {key: getattr(config.trunk, key) for key in config.trunk_keys}
    if any(key in given and given[key] != value for key, value in architecture.items()):
        fix = " ".join(f"--set trunk.{name}={value}" for name, value in architecture.items())
        raise ValueError(
            f"{config.init_from}: the checkpoint's trunk has {', '.join(f'{k} {v}' for k, v in architecture.items())} "
            f"but {config.source} asks for {', '.join(f'{k} {given.get(k)}' for k in architecture)}; pass {fix} "
            "or leave those keys out of the config's trunk section (and the same to any run you compare it with)")
    merged = dataclasses.replace(trunk, dropout=given["dropout"]) if "dropout" in given else trunk
    return dataclasses.replace(config, trunk=merged, trunk_keys=TrunkConfig.YAML_KEYS)


def load_config(path: str | Path, overrides: list[str] | None = None) -> RLConfig:
    """Read an RL config file (a path, or a shipped config's name), apply ``--set`` style ``overrides``
    and validate it."""
    raw, source = load_yaml_with_overrides(find_config(path, "rl"), overrides, "RL config")
    return config_from_dict(raw, source=source)


__all__ = ["ACTIVATIONS", "ALGORITHMS", "EvaluationSettings", "HYPERPARAMETER_TYPES", "OPTIMIZERS", "RLConfig",
           "algorithm_class", "check_hyperparameter_values", "config_from_dict", "env_argument_names", "load_config",
           "policy_name", "validate_hyperparameters", "with_checkpoint_trunk"]
