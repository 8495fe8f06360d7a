"""Learning code: baselines, supervised recurrent regressors and RL agents."""
