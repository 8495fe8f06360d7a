"""Non-learned followers: the references every learned follower is compared with.

- ``oracle``: on the ground truth (a sanity check; the one follower that reads the performance side).
- ``constant_tempo``: a metronome at the score's notated tempo, deaf to the audio.
- ``online_dtw``: on-line time warping (Arzt's, on chroma and onset features) of the audio against the
  synthesized score; ``online_dtw_spectrum``: the earlier Dixon (2005) form on the raw spectrum.
- ``constant_position``: stays on the first notehead; the floor any learned regressor must clear.
"""

from agents.baselines.constant_tempo import ConstantTempoFollower
from agents.baselines.online_dtw import OnlineDTWFollower, SpectrumDTWFollower
from agents.baselines.oracle import OracleFollower
from agents.baselines.constant_position import ConstantPositionFollower

BASELINES = {
    OracleFollower.name: OracleFollower,
    ConstantTempoFollower.name: ConstantTempoFollower,
    OnlineDTWFollower.name: OnlineDTWFollower,
    ConstantPositionFollower.name: ConstantPositionFollower,
    SpectrumDTWFollower.name: SpectrumDTWFollower,
}
"""Baseline followers by name (the names ``make_follower`` and ``sfgym evaluate --agents`` accept)."""

__all__ = ["BASELINES", "ConstantPositionFollower", "ConstantTempoFollower", "OnlineDTWFollower", "OracleFollower",
           "SpectrumDTWFollower"]
