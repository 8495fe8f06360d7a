"""Trunk pre-training (``sfgym train trunk``): the shared trunk alone, taught where the music is in the
score window, as the start of an RL run (:mod:`agents.pretraining.train`)."""
