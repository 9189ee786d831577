"""`langan compare`: a table and quality-diversity frontier of runs or seed groups, as one self-contained HTML page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from langan.cli.arguments import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare", help="table + temperature frontier of runs or seed groups as one self-contained HTML page",
        description="Evaluate every run the same way (mean ± std over a group's seeds), sweep each entry's first "
        "run over temperatures, say where each model's T=1 point lies against the baseline's frontier, and write "
        "one HTML page (figures embedded, samples beside them) plus a JSON of every figure. `langan runs compare` "
        "is the quick text version over recorded figures.")
    p.add_argument("entries", nargs="+", metavar="RUN_OR_GROUP",
                   help="a run directory, or a group of seed runs (`langan train --seeds`): one row each")
    p.add_argument("--out", default="compare.html", help="the HTML page (default: compare.html; .json beside it)")
    p.add_argument("--n", type=positive_int, default=10000, help="samples per run at T=1 (default: 10000)")
    p.add_argument("--metrics", help="comma-separated metrics of the table (default: test NLL, BLEU-2..5, "
                   "self-BLEU-2..5, unique, novelty, eos_rate; oracle runs: nll_oracle, nll_gen, unique, novelty); "
                   "add c2st_acc, lm_score, reverse_lm_score, fed as wanted")
    p.add_argument("--temperatures", default="0.7,0.8,0.9,1.0,1.1,1.2",
                   help="frontier temperatures: start:stop:step or a list (default: 0.7,0.8,0.9,1.0,1.1,1.2)")
    p.add_argument("--frontier-n", type=positive_int, default=None, help="samples per temperature (default: --n; "
                   "self-BLEU grows with the count, so the verdicts need the same count as --n)")
    p.add_argument("--pairs", default="auto", help="frontier figures, comma-separated: auto (bleu4/self_bleu4 on "
                   "text, nll_oracle/nll_gen on the oracle), text, oracle, lm (lm_score/reverse_lm_score); "
                   "'none': no frontier")
    p.add_argument("--baseline", default="", help="the entry whose curve is the frontier (default: the first MLE)")
    p.add_argument("--published", default="", help="CSV of published rows: label, source, then metric columns")
    p.add_argument("--checkpoint", default="auto", help="auto (best valid NLL for MLE runs, else latest), latest, "
                   "best, or step-N")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.add_argument("--title", default="langan compare", help="the page's title")


def run(args: argparse.Namespace) -> int:
    from langan.eval.sweep import parse_temperatures
    from langan.report.compare import Settings, compare

    pairs = [p.strip() for p in args.pairs.split(",") if p.strip() and p.strip() != "none"]
    settings = Settings(n=args.n, temperatures=parse_temperatures(args.temperatures), frontier_n=args.frontier_n or 0,
                        metrics=[m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None,
                        pairs=pairs, seed=args.seed, checkpoint=args.checkpoint, baseline=args.baseline,
                        published=args.published, title=args.title)
    table, page = compare(args.entries, Path(args.out), settings, " ".join(args.argv),
                          progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(table)
    print(f"wrote {page} and {page.with_suffix('.json')}", file=sys.stderr)
    return 0
