"""`langan report`: training curves of runs overlaid, a PNG and an HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="training curves of runs overlaid: a PNG and an HTML page")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="report.png", help="PNG path; the HTML page goes beside it")


def run(args: argparse.Namespace) -> int:
    from langan.report.curves import write_report

    png, page = write_report(args.run_dirs, Path(args.out))
    print(f"wrote {png} and {page}")
    return 0
