"""`langan sweep`: run an Optuna search over config keys, `sweep show NAME`, `sweep plot NAME --x KEY --y METRIC`."""

from __future__ import annotations

import argparse
from pathlib import Path

from langan.cli.arguments import positive_int
from langan.errors import LanganError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sweep", help="a search over config keys (Optuna): `sweep SWEEP.yaml`, `sweep show "
                              "NAME`, `sweep plot NAME --x KEY --y METRIC`",
                              description="Run a sweep (a base preset plus a grid / random / TPE search space; every "
                              "trial is one recorded run per seed under RUNS_DIR/sweeps/NAME/). Start the same command "
                              "in several processes or machines sharing the storage to run trials in parallel; run it "
                              "again after a kill to continue. `show NAME` prints the trials, best first; `plot NAME` "
                              "draws mean ± std over seeds of --y against --x, one line per --hue value (PNG + CSV).")
    p.add_argument("args", nargs="+", metavar="ARG", help="SWEEP.yaml | show NAME | plot NAME")
    p.add_argument("--runs-dir", default="runs", help="runs go to RUNS_DIR/sweeps/NAME/ (default: runs)")
    p.add_argument("--storage", metavar="URL", help="show/plot: the database of a sweep whose storage is not under "
                   "--runs-dir")
    p.add_argument("--seeds", help="comma-separated seeds of every trial (replaces the file's seeds:)")
    p.add_argument("--jobs", type=positive_int, default=1, help="seed runs of a trial in parallel processes")
    p.add_argument("--n-trials", type=positive_int, metavar="N", help="this worker runs at most N trials")
    p.add_argument("--quiet", action="store_true", help="no per-trial lines, only the summary")
    p.add_argument("--x", metavar="KEY", help="plot: the config key on the x axis (e.g. reward.gamma)")
    p.add_argument("--y", metavar="METRIC", help="plot: the final metric (e.g. eval/nll, best_valid_nll)")
    p.add_argument("--hue", metavar="KEY", help="plot: one line per value of this config key")
    p.add_argument("--out", help="plot: the PNG (default NAME.png); the CSV goes beside it")


def run(args: argparse.Namespace) -> int:
    words = args.args
    plotting = [f"--{k}" for k in ("x", "y", "hue", "out") if getattr(args, k)]
    if words[0] == "show" and len(words) == 2 and not plotting:
        from langan.sweeps.report import show

        print(show(words[1], args.runs_dir, args.storage))
        return 0
    if words[0] == "plot" and len(words) == 2 and args.x and args.y:
        from langan.sweeps.report import plot

        png, csv_path, _ = plot(words[1], args.x, args.y, args.hue, Path(args.out or f"{words[1]}.png"),
                                args.runs_dir, args.storage)
        print(f"wrote {png} and {csv_path}")
        return 0
    if words[0] in ("show", "plot") or len(words) != 1 or plotting or args.storage:
        raise LanganError("usage: langan sweep SWEEP.yaml [--seeds S] [--jobs J] [--n-trials N] | langan sweep "
                          "show NAME | langan sweep plot NAME --x KEY --y METRIC [--hue KEY] [--out F.png]")
    from langan.sweeps.spec import load_spec
    from langan.sweeps.worker import run_sweep

    spec = load_spec(words[0], args.seeds)
    print("\n".join(run_sweep(spec, args.runs_dir, jobs=args.jobs, max_trials=args.n_trials, quiet=args.quiet)))
    return 0
