"""RL velocity agents: stable-baselines3 PPO / A2C / RecurrentPPO on MSMDFollow-v0.

- :mod:`agents.rl.extractor`: the policies' features extractor, the trunk shared with the supervised followers.
- :mod:`agents.rl.config`: YAML run configs, validated against SB3's and the environment's signatures.
- :mod:`agents.rl.train`: ``sfgym train rl`` (training, hybrid ``--init-from``).
- :mod:`agents.rl.callbacks`: validation with TR / TUE / error, best-model selection, checkpoints, trunk
  freezing, time budget.
- :mod:`agents.rl.follower`: a trained model as a :class:`sfgym.followers.Follower` (:func:`load_follower`).
- :mod:`agents.rl.curves`: learning curves (valid TR against steps), CSV and PNG, and the comparison plot.

Training::

    sfgym train rl --config ppo --out runs/rl/ppo                            # the reference setup (GPU-sized)
    sfgym train rl --config ppo --set trunk.width=0.25 ...                   # any key: --set KEY.PATH=VALUE
    sfgym train rl --resume --out runs/rl/ppo                                # continue an interrupted run

Hybrid training (supervised → RL)
---------------------------------
``--init-from SUPERVISED_CHECKPOINT`` (a ``best.pt`` or a supervised run directory) copies the
supervised regressor's trunk into the policy's features extractor before the first step; the heads
start fresh. ``--freeze-trunk-steps N`` keeps that trunk fixed during the updates on the first N
steps, so the random heads' first gradients cannot wreck it. The trunk's settings come from the
checkpoint; a ``trunk`` section that sets them otherwise (``width``, ``features``, ``kind``...) makes
the run refuse to start, naming both values and what to pass;
a policy with ``difference_channels`` gets the supervised first convolutions with zero weights for
the difference channels, so it starts out computing exactly the supervised features.

Does it speed RL up? Compare valid TR against steps with and without the initialization, all else
equal (same config, seed, trunk and steps), in one plot::

    python -m agents.rl.curves runs/rl/ppo-scratch runs/rl/ppo-init \\
        --labels "from scratch" "supervised init" --out runs/rl/init_comparison.png

The question is whether the initialized run reaches a given TR in fewer steps (and whether it
ends higher at equal steps); the curves only answer it for the steps and seeds actually run.
"""

from agents.rl.follower import RLFollower, load_follower

__all__ = ["RLFollower", "load_follower"]
