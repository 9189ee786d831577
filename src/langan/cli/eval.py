"""`langan eval`: evaluate a run on its test split and samples; writes RUN_DIR/eval.json."""

from __future__ import annotations

import argparse
import json

from langan.cli.arguments import positive_int, sampling_args
from langan.cli.launch import relaunch, under_torchrun, without_nproc


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a run on its test split and samples; writes RUN_DIR/eval.json")
    sampling_args(p, 1000)
    p.add_argument("--metrics", help="comma-separated metrics (default: all available)")
    p.add_argument("--json", action="store_true", help="print eval.json instead of a table")
    p.add_argument("--nproc", type=positive_int, default=1, metavar="N",
                   help="sample in N processes (torchrun): each draws 1/N of --n, rank 0 reports")


def run(args: argparse.Namespace) -> int:
    if args.nproc > 1 and not under_torchrun():
        return relaunch(without_nproc(args.argv[1:]), args.nproc)
    from langan.eval.evaluate import evaluate_run, format_table

    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    results = evaluate_run(args.run_dir, n=args.n, temperature=args.temperature, top_p=args.top_p,
                           top_k=args.top_k, seed=args.seed, which=args.checkpoint, metrics=names)
    from langan import dist

    if dist.is_main():  # under torchrun the ranks sample their shares of --n; rank 0 reports
        print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0
