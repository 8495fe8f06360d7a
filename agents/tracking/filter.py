"""Where in the notated time is the performer, and how fast? Forward filtering over (position, tempo).

The state of a performance is a position in the score's *notated* time (frames of the score played at
its written tempo, ``fps`` per second) and a tempo ratio (notated frames per performed frame). Each
performed frame the position advances by the tempo, and the tempo drifts to a neighbouring value now and
then: the bar-pointer model of Whiteley, Cemgil and Godsill (2006), used for score following by Krebs,
Böck and Widmer among others. An observation model says how well the sound of the frame fits each
position (for sfgym's learned followers: a matching trunk's logits, :mod:`agents.tracking.follower`);
the filter multiplies the predicted belief with it and renormalizes.

A performer also stops: a fermata, a breath between phrases, a held chord. A pause is not a slower tempo
(reaching the slowest tempo takes many tempo changes, and the tempo after the pause is the one before it),
so the filter carries a second, *paused* copy of the belief: each frame a share ``pause_start`` of the
moving belief stops where it is, keeping its tempo, and a share ``pause_end`` of the paused belief moves
on. Pauses then last ``1 / pause_end`` frames on average.

A follower that has lost the performer must be able to find it again: each frame a share ``relocate`` of
the belief is spread evenly over the band, at the tempi the belief holds, so that evidence that keeps
pointing elsewhere (the tracker was wrong, or the performer jumped back to repeat a bar) wins within seconds,
while a few frames of it do not.

At the start the tempo is not known yet (performers often play far from the written tempo, and a score without
a metronome mark gets an arbitrary one): the starting belief over the tempo is spread by ``tempo_prior_std``,
and for the first ``start_frames`` frames the observations are tempered by ``start_temperature`` instead of
``temperature``, so that the evidence can move the tempo quickly.

Why this and not the observation alone: a frame's sound is often ambiguous (a held chord, a repeated
figure, a passage the matcher has never heard), and the filter carries the position through such frames
at the tempo it has inferred, instead of stalling or jumping.

The belief is computed in a band of :attr:`TempoPositionFilter.band` notated frames around its mode; mass
outside is zero. A frame costs ``O(tempi × band)``, whatever the length of the piece.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sfgym.settings import reject_unknown_fields


@dataclass(frozen=True)
class FilterSettings:
    """The motion model and the start of :class:`TempoPositionFilter`, and how the tracker weighs what it hears.

    Attributes:
        tempo_min, tempo_max, n_tempi: the tempo ratios (performed / notated speed), log-spaced.
        tempo_change: chance per frame of moving to each neighbouring tempo.
        pause_start: chance per frame that the performer stops where they are (0: never).
        pause_end: chance per paused frame that the performance goes on, at the tempo it had.
        relocate: share of the belief spread evenly over the band each frame (0: none).
        tempo_prior_std: spread of the starting belief over log tempo (around the notated tempo, 1.0).
        start_spread: spread (notated frames) of the starting belief around the first onset.
        band: notated frames on each side of the mode where the belief is computed.
        temperature: the observation log-likelihoods are divided by it (> 1 trusts them less).
        start_frames, start_temperature: for the first ``start_frames`` frames the observations are divided by
            ``start_temperature`` instead (the tempo is unknown then, and the evidence must be able to move it).
        chroma_weight: weight of the chroma evidence beside the trunk's logits
            (:class:`~agents.tracking.follower.MatchingTracker`; 0: the trunk alone).
        cover_px: the tracker reports the sheet x whose ±``cover_px`` holds the most belief
            (:class:`~agents.tracking.follower.MatchingTracker`; 0: the belief's mode). Where two readings are
            near, a position between them can be near enough to both; the mode bets on one.
    """

    # The defaults are the settings of the shipped follower ``pretrained`` (its card's ``follower_settings``,
    # chosen on the valid splits; docs/model-card.md): ``sfgym train pretrained`` with no flags makes it.
    # A wide tempo range, since performers often play far from the written tempo (0.25-4x in 25 steps,
    # about 12 % apart).
    tempo_min: float = 0.25
    tempo_max: float = 4.0
    n_tempi: int = 25
    # A tempo moves by one step (~12 %) every 100 frames (5 s) on average: a stall must last seconds
    # before it reads as a slower tempo.
    tempo_change: float = 0.005
    pause_start: float = 0.005
    pause_end: float = 0.1
    relocate: float = 0.0
    tempo_prior_std: float = 0.5
    start_spread: float = 3.0
    band: int = 300
    # Each observation hears the last second of sound, so consecutive ones are nearly the same evidence:
    # counted at face value, a repeated figure pinned the belief and the performance moved on without it.
    # Chosen on the valid splits (earlier: default 0.84 -> 0.91, unseen piano 0.61 -> 0.94 from temperature 3
    # to 25; then 40 with the chroma evidence).
    temperature: float = 40.0
    start_frames: int = 60
    start_temperature: float = 15.0
    chroma_weight: float = 40.0
    cover_px: float = 140.0

    def __post_init__(self):
        if not 0 < self.tempo_min < self.tempo_max or self.n_tempi < 2:
            raise ValueError(f"filter: need 0 < tempo_min < tempo_max and n_tempi >= 2, got {self.tempo_min}, "
                             f"{self.tempo_max}, {self.n_tempi}")
        if not 0 <= self.tempo_change < 0.5:
            raise ValueError(f"filter: tempo_change must be in [0, 0.5), got {self.tempo_change}")
        if not 0 <= self.pause_start < 1 or not 0 < self.pause_end <= 1:
            raise ValueError(f"filter: need 0 <= pause_start < 1 and 0 < pause_end <= 1, got {self.pause_start}, "
                             f"{self.pause_end}")
        if not 0 <= self.relocate < 1:
            raise ValueError(f"filter: relocate must be in [0, 1), got {self.relocate}")
        for key in ("chroma_weight", "cover_px"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"filter: {key} must be >= 0, got {getattr(self, key)}")
        if self.start_frames < 0:
            raise ValueError(f"filter: start_frames must be >= 0, got {self.start_frames}")
        for key in ("tempo_prior_std", "start_spread", "temperature", "start_temperature"):
            if not getattr(self, key) > 0:
                raise ValueError(f"filter: {key} must be positive, got {getattr(self, key)}")
        if self.band < 2 * np.ceil(self.tempo_max):
            raise ValueError(f"filter: band must be at least {2 * int(np.ceil(self.tempo_max))} frames, got {self.band}")

    @classmethod
    def checked(cls, settings: dict) -> "FilterSettings":
        """Settings from a mapping of field names, with a clear error naming unknown ones."""
        reject_unknown_fields(cls, settings, "tracker")
        return cls(**settings)

    @property
    def tempi(self) -> np.ndarray:
        return np.geomspace(self.tempo_min, self.tempo_max, self.n_tempi)


class TempoPositionFilter:
    """Forward filtering of (notated position, tempo) for one performance.

    Args:
        n_positions: notated frames of the score (positions ``0 .. n_positions - 1``).
        start: the notated frame where the performance starts (its first onset).
        settings: the motion model (:class:`FilterSettings`).

    Per performed frame call :meth:`step` with the observation's log-likelihood of each position (or a
    callable that computes it for a range of positions: only the band is asked for); it returns the
    estimated position (notated frames, fractional) and tempo.
    """

    def __init__(self, n_positions: int, start: float, settings: FilterSettings = FilterSettings()):
        if n_positions < 1:
            raise ValueError(f"filter: a score of {n_positions} notated frames")
        self.settings = settings
        self.n_positions = int(n_positions)
        self.tempi = settings.tempi
        self._floor = np.floor(self.tempi).astype(int)
        self._fraction = self.tempi - self._floor
        positions = np.arange(self.n_positions)
        tempo_prior = np.exp(-0.5 * (np.log(self.tempi) / settings.tempo_prior_std) ** 2)
        position_prior = np.exp(-0.5 * ((positions - start) / settings.start_spread) ** 2)
        self.belief = tempo_prior[:, None] * position_prior[None, :]
        self.belief /= self.belief.sum()
        self.low, self.high = self._band(int(np.argmax(position_prior)))
        self.belief[:, : self.low] = 0.0
        self.belief[:, self.high :] = 0.0
        # the paused copy (see the module docstring); `belief` and `paused` together sum to one
        self.paused = np.zeros_like(self.belief)
        self._frames = 0  # frames observed so far

    def _band(self, centre: int) -> tuple[int, int]:
        band = self.settings.band
        return max(0, centre - band), min(self.n_positions, centre + band + 1)

    def predict(self) -> None:
        """Advance the belief by one performed frame (tempo drift, then each tempo's move)."""
        low, high = self.low, self.high
        new_low, new_high = low, min(self.n_positions, high + int(self._floor[-1]) + 1)
        belief = self.belief[:, low:high]
        paused = self.paused[:, low:high]
        stopping = self.settings.pause_start * belief
        resuming = self.settings.pause_end * paused
        belief = belief - stopping
        change = self.settings.tempo_change
        drifted = (1.0 - 2.0 * change) * belief
        drifted[1:] += change * belief[:-1]
        drifted[:-1] += change * belief[1:]
        drifted[0] += change * belief[0]  # the slowest and fastest tempo keep what would leave the range
        drifted[-1] += change * belief[-1]
        moved = np.zeros((len(self.tempi), new_high - new_low))
        width = high - low
        last = moved.shape[1] - 1
        for index, (whole, fraction) in enumerate(zip(self._floor, self._fraction)):
            for shift, weight in ((whole, 1.0 - fraction), (whole + 1, fraction)):
                if weight == 0.0:
                    continue
                kept = max(0, min(width, last + 1 - shift))  # what lands before the end of the score
                moved[index, shift : shift + kept] += weight * drifted[index, :kept]
                if kept < width:  # the end of the score holds what would move past it
                    moved[index, last] += weight * drifted[index, kept:].sum()
        moved[:, :width] += resuming  # new_low == low: column j of `moved` is position low + j
        self.paused[:, low:high] = paused - resuming + stopping
        if self.settings.relocate > 0:
            tempo_belief = moved.sum(axis=1) + self.paused[:, low:high].sum(axis=1)
            moved *= 1.0 - self.settings.relocate
            self.paused[:, low:high] *= 1.0 - self.settings.relocate
            moved += (self.settings.relocate / moved.shape[1]) * (tempo_belief / tempo_belief.sum())[:, None]
        self.belief[:, low:high] = 0.0
        self.belief[:, new_low:new_high] = moved
        self.low, self.high = new_low, new_high

    def update(self, log_likelihood) -> tuple[float, float]:
        """Weigh the belief with the observation: ``log_likelihood`` is an array over all positions or a
        callable ``(low, high) -> array`` over positions ``low .. high - 1``. Returns :meth:`estimate`."""
        low, high = self.low, self.high
        values = log_likelihood(low, high) if callable(log_likelihood) else np.asarray(log_likelihood)[low:high]
        self._frames += 1
        starting = self._frames <= self.settings.start_frames
        temperature = self.settings.start_temperature if starting else self.settings.temperature
        values = np.asarray(values, dtype=np.float64) / temperature
        if values.shape != (high - low,) or not np.all(np.isfinite(values)):
            raise ValueError(f"filter: the observation must give {high - low} finite log-likelihoods, got "
                             f"shape {values.shape}" + ("" if np.all(np.isfinite(values)) else " with NaN or inf"))
        likelihood = np.exp(values - values.max())[None, :]
        posterior, paused_posterior = self.belief[:, low:high] * likelihood, self.paused[:, low:high] * likelihood
        total = posterior.sum() + paused_posterior.sum()
        if total > 0:  # else the observation contradicts every position the belief allows: ignore it
            self.belief[:, low:high] = posterior / total
            self.paused[:, low:high] = paused_posterior / total
        mode = int(np.argmax(self._marginal(low, high))) + low
        self.low, self.high = self._band(mode)
        for part in (self.belief, self.paused):
            part[:, low : self.low] = 0.0
            part[:, self.high : high] = 0.0
        total = self.belief.sum() + self.paused.sum()
        self.belief /= total
        self.paused /= total
        return self.estimate()

    def position_belief(self) -> tuple[int, np.ndarray]:
        """``(low, belief)``: the belief over positions ``low .. low + len(belief) - 1`` (the band; moving or
        paused, any tempo; it sums to one)."""
        return self.low, self._marginal(self.low, self.high)

    def _marginal(self, low: int, high: int) -> np.ndarray:
        """The belief over positions ``low .. high - 1``, moving or paused, any tempo."""
        return self.belief[:, low:high].sum(axis=0) + self.paused[:, low:high].sum(axis=0)

    def step(self, log_likelihood) -> tuple[float, float]:
        """One performed frame: :meth:`predict` (except at the first frame), then :meth:`update`."""
        if self._frames > 0:
            self.predict()
        return self.update(log_likelihood)

    def estimate(self, reach: int = 5) -> tuple[float, float]:
        """``(position, tempo)``: the mean within ``reach`` frames of the most probable position (not the
        global mean, which a second hypothesis far away would pull between the two), and the mean tempo
        there."""
        marginal = self._marginal(self.low, self.high)
        mode = int(np.argmax(marginal))
        low, high = max(0, mode - reach), min(len(marginal), mode + reach + 1)
        near = marginal[low:high]
        position = float((near * np.arange(low, high)).sum() / near.sum()) + self.low
        near_positions = slice(self.low + low, self.low + high)
        tempo_weights = self.belief[:, near_positions].sum(axis=1) + self.paused[:, near_positions].sum(axis=1)
        tempo = float((tempo_weights * self.tempi).sum() / tempo_weights.sum())
        return position, tempo


__all__ = ["FilterSettings", "TempoPositionFilter"]
