"""`langan runs`: list runs, `runs diff RUN_A RUN_B`, `runs compare RUN_OR_GROUP... --metric M`."""

from __future__ import annotations

import argparse

from langan.errors import LanganError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("runs", help="list runs, `langan runs diff RUN_A RUN_B`, or `langan runs compare "
                              "GROUP... --metric M`")
    p.add_argument("args", nargs="*", metavar="ARG", help="[RUNS_DIR] | diff RUN_A RUN_B | compare RUN_OR_GROUP...")
    p.add_argument("--metric", default="best_valid_nll", help="compare: the final metric (default: best_valid_nll; "
                   "also eval/... or an eval.json metric)")


def run(args: argparse.Namespace) -> int:
    from langan.runs import records

    if args.args and args.args[0] == "diff":
        if len(args.args) != 3:
            raise LanganError("usage: langan runs diff RUN_A RUN_B")
        print(records.format_diff(records.diff_runs(args.args[1], args.args[2])))
        return 0
    if args.args and args.args[0] == "compare":
        if len(args.args) < 2:
            raise LanganError("usage: langan runs compare RUN_OR_GROUP... [--metric M]")
        print("\n".join(records.compare_groups(args.args[1:], args.metric)))
        return 0
    if len(args.args) > 1:
        raise LanganError("usage: langan runs [RUNS_DIR] | langan runs diff RUN_A RUN_B | langan runs compare ...")
    print(records.format_table(records.list_runs(args.args[0] if args.args else "runs")))
    return 0
