"""Hyperparameter sweeps built on Optuna: `langan sweep SWEEP.yaml | show NAME | plot NAME ...`.

spec.py reads and checks SWEEP.yaml; study.py holds the Optuna study (storage, stale trials, claiming a point);
trial.py runs a point's seed runs as `langan train` processes; worker.py is the loop of one worker;
report.py prints the trials table and draws the scaling curve. Optuna is imported only when a sweep runs
(the `sweep` extra).
"""
