"""Running the `langan` command from a benchmark script: one subprocess, its error shown on failure."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def langan(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m langan ARGS` in the repository root; exits with the command and its stderr tail if it fails."""
    cmd = [sys.executable, "-m", "langan", *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return proc


def table_parser(doc: str, presets: tuple[str, ...]) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser,
                                                                 argparse.ArgumentParser]:
    """The `train` / `report` command line shared by the paper-table benchmarks: (parser, train, report)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the presets' runs (the GANs from the MLE run of their seed)")
    t.add_argument("--presets", nargs="+", choices=presets, default=list(presets))
    t.add_argument("--own-pretraining", action="store_true", help="GANs pretrain themselves (the preset as it is)")
    t.add_argument("--overwrite", action="store_true", help="train finished runs again")
    t.add_argument("overrides", nargs="*", help="config overrides for every run (key=value)")
    r = sub.add_parser("report", help="evaluate, print the table, draw the figures")
    r.add_argument("--n", type=int, default=10000, help="samples per run at T = 1 (default 10,000)")
    for p in (t, r):
        p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    return parser, t, r
