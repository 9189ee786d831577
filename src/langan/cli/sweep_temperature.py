"""`langan sweep-temperature`: quality vs diversity of runs over sampling temperatures (CSV + PNG)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from langan.cli.arguments import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sweep-temperature", help="quality vs diversity of runs over sampling temperatures "
                              "(CSV + PNG)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--temperatures", default="0.6:1.4:0.1", help="start:stop:step or a list (default: 0.6:1.4:0.1)")
    p.add_argument("--n", type=positive_int, default=1000, help="samples per run and temperature (default: 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="sweep-temperature.png", help="PNG path; the CSV goes beside it")
    p.add_argument("--pair", default="auto", choices=["auto", "text", "oracle", "lm"],
                   help="quality/diversity figures: auto = bleu4/self_bleu4 on text, nll_oracle/nll_gen on the "
                   "oracle; lm = lm_score/reverse_lm_score")


def run(args: argparse.Namespace) -> int:
    from langan.eval.sweep import parse_temperatures, sweep_temperature, write_outputs

    temperatures = parse_temperatures(args.temperatures)

    def show(row: dict) -> None:
        print(f"{row['run']:<32} T={row['temperature']:<5g} {row['quality_metric']} {row['quality']:.4f}  "
              f"{row['diversity_metric']} {row['diversity']:.4f}", file=sys.stderr)

    rows = sweep_temperature(args.run_dirs, temperatures, n=args.n, seed=args.seed, progress=show, pair=args.pair)
    csv_path = write_outputs(rows, Path(args.out))
    print(f"wrote {csv_path} and {args.out}")
    return 0
