"""`langan sweep-temperature`: quality vs diversity of runs over sampling temperatures (CSV + PNG)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from langan.cli.arguments import positive_int
from langan.cli.launch import relaunch, under_torchrun, without_nproc


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
    p.add_argument("--nproc", type=positive_int, default=1, metavar="N",
                   help="sample in N processes (torchrun): each draws 1/N of --n, rank 0 writes the figure")


def run(args: argparse.Namespace) -> int:
    if args.nproc > 1 and not under_torchrun():
        return relaunch(without_nproc(args.argv[1:]), args.nproc)
    from langan.eval.sweep import parse_temperatures, sweep_temperature, write_outputs

    temperatures = parse_temperatures(args.temperatures)

    from langan import dist

    def show(row: dict) -> None:
        if dist.is_main():
            print(f"{row['run']:<32} T={row['temperature']:<5g} {row['quality_metric']} {row['quality']:.4f}  "
                  f"{row['diversity_metric']} {row['diversity']:.4f}", file=sys.stderr)

    # under torchrun every rank samples its share of each temperature's --n; rank 0 writes the figure
    rows = sweep_temperature(args.run_dirs, temperatures, n=args.n, seed=args.seed, progress=show, pair=args.pair)
    if not dist.is_main():
        return 0
    csv_path = write_outputs(rows, Path(args.out))
    print(f"wrote {csv_path} and {args.out}")
    return 0
