"""sfgym: score following on MSMD-format data."""

__version__ = "0.1.0"

from sfgym.envs import register_envs as _register_envs

_register_envs()  # makes gym.make("MSMDFollow-v0") work after `import sfgym`
