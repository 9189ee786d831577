"""Run directories below training and evaluation: layout and record (`rundir`), the lock of a live run
(`lock`), checkpoints (`checkpoint`), loading a trained run (`loading.load_run`) and the records of many
runs (`records`: list, diff, compare). Kept free of imports so that `langan.runs.rundir` stays torch-free."""
