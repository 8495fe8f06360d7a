"""Learned followers that track: a matching trunk's evidence under a forward filter over (notated
position, tempo). :class:`MatchingTracker` is the follower, :class:`TempoPositionFilter` the filter."""

from agents.tracking.filter import FilterSettings, TempoPositionFilter
from agents.tracking.follower import MatchingTracker, load_follower, save_trunk_ensemble
from agents.tracking.normalize import SpectrumNormalizer

__all__ = ["FilterSettings", "MatchingTracker", "SpectrumNormalizer", "TempoPositionFilter", "load_follower",
           "save_trunk_ensemble"]
