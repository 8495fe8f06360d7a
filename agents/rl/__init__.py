"""RL velocity agents: stable-baselines3 PPO / A2C / RecurrentPPO on MSMDFollow-v0.

- :mod:`agents.rl.extractor`: the policies' features extractor, the trunk shared with the supervised followers.
- :mod:`agents.rl.config`: YAML run configs, validated against SB3's and the environment's signatures.
- :mod:`agents.rl.train`: ``sfgym train rl`` (training, hybrid ``--init-from``).
- :mod:`agents.rl.callbacks`: validation with TR / TUE / error, best-model selection, checkpoints, trunk freezing.
- :mod:`agents.rl.follower`: a trained model as a :class:`sfgym.followers.Follower` (:func:`load_follower`).
- :mod:`agents.rl.curves`: learning curves (valid TR against steps), CSV and PNG.
"""

from agents.rl.follower import RLFollower, load_follower

__all__ = ["RLFollower", "load_follower"]
