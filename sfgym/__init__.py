"""sfgym: score following on MSMD-format data."""

__version__ = "0.1.0"
