"""What a follower may know before the performance starts: the score's notated timing (``timing``) and the
features of the score that followers compare the audio with (``features``). The baselines, the tracker and
the notated regressors in ``agents`` all import them from here."""
