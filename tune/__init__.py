"""The tuning service: Ray Tune + Optuna search over JoyfulConfig, and its result store."""
