"""Benchmark: the COCO captions table (RelGAN, ICLR 2019, Table 2; Texygen's split), with langan's four presets.

    python benchmarks/coco_table.py train --presets mle relgan seqgan reinforce --seeds 0,1,2
    python benchmarks/coco_table.py report

`train` runs configs/coco-<preset>.yaml for each seed into the seed group runs/coco/coco-<preset>/seed-S
(`langan train --seeds`). The MLE group is the GANs' pretraining: each GAN seed starts from the MLE run of its
own seed (train.init_from=the group, train.pretrain_steps=0) instead of repeating the same MLE steps;
--own-pretraining runs each GAN preset as it is. A finished seed is kept (--overwrite trains it again).
Another corpus, one sentence per line: --train FILE --test FILE (nothing in the presets is COCO-specific).

`report` is one `langan compare` over the four groups: every run evaluated with 10,000 samples at temperature 1
against the whole test file (BLEU-2..5, self-BLEU-2..5 of the 10,000 samples, test NLL, ...; mean ± std over the
seeds), the published rows of benchmarks/published/coco.csv beside them, the BLEU-4 / self-BLEU-4 temperature
frontier (and, with --pairs text,lm, the LM / reverse-LM one) of each preset's seed-0 run, and where each GAN's
T = 1 point lies against MLE's curve. Writes benchmarks/figures/coco_compare.html (+ .json, the frontier PNGs)
and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from langan_cli import REPO, langan, table_parser

PRESETS = ("mle", "relgan", "seqgan", "reinforce")
PUBLISHED = REPO / "benchmarks" / "published" / "coco.csv"


def finished(run: Path) -> bool:
    meta = run / "meta.json"
    return meta.is_file() and json.loads(meta.read_text()).get("status") == "finished"


def train(args: argparse.Namespace) -> None:
    order = [p for p in PRESETS if p in args.presets]
    if not args.own_pretraining and set(order) - {"mle"} and "mle" not in order:
        order.insert(0, "mle")  # the GANs start from it; its finished seeds are kept
    data = ([f"data.source={args.train_file}"] if args.train_file else []) + \
           ([f"data.test_source={args.test_file}"] if args.test_file else [])
    for preset in order:
        group = args.runs / f"coco-{preset}"
        redo = args.overwrite and preset in args.presets
        seeds = [s for s in args.seeds if redo or not finished(group / f"seed-{s}")]
        if not seeds:
            print(f"coco-{preset}: every seed finished before, kept", file=sys.stderr)
            continue
        extra = [] if preset == "mle" or args.own_pretraining else \
            [f"train.init_from={args.runs / 'coco-mle'}", "train.pretrain_steps=0"]
        print(f"coco-{preset}: training seeds {seeds} ...", file=sys.stderr, flush=True)
        langan("train", f"configs/coco-{preset}.yaml", *data, *extra, *args.overrides, "--seeds",
               ",".join(map(str, seeds)), "--runs-dir", str(args.runs), "--name", f"coco-{preset}", "--overwrite")


def report(args: argparse.Namespace) -> None:
    groups = [str(args.runs / f"coco-{p}") for p in PRESETS if (args.runs / f"coco-{p}").is_dir()]
    out = REPO / "benchmarks" / "figures" / "coco_compare.html"
    result = langan("compare", *groups, "--n", str(args.n), "--frontier-n", str(args.frontier_n),
                    "--temperatures", args.temperatures, "--pairs", args.pairs, "--metrics", args.metrics,
                    "--published", str(PUBLISHED), "--title", "COCO captions (Texygen split): langan's presets",
                    "--out", str(out))
    print(result.stdout)


def main() -> None:
    parser, t, r = table_parser(__doc__, PRESETS)
    t.add_argument("--train", dest="train_file", help="another corpus: its training file (one sentence a line)")
    t.add_argument("--test", dest="test_file", help="another corpus: its test file")
    r.add_argument("--frontier-n", type=int, default=10000, help="samples per temperature (default 10,000)")
    r.add_argument("--temperatures", default="0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2")
    r.add_argument("--pairs", default="text", help="text, lm or text,lm (lm trains two LMs per point)")
    # the learned figures cost about 3 min a run on 2 cores (two 1,000-step LMs, a classifier, MiniLM embeddings):
    # add them with --metrics ...,lm_score,reverse_lm_score,c2st_acc,fed
    r.add_argument("--metrics", default="nll,bleu2,bleu3,bleu4,bleu5,self_bleu2,self_bleu3,self_bleu4,self_bleu5,"
                   "unique,novelty,eos_rate")
    for p in (t, r):
        p.add_argument("--runs", type=lambda s: REPO / s, default=REPO / "runs" / "coco",
                       help="where the groups go (default runs/coco)")
    args = parser.parse_args()
    train(args) if args.command == "train" else report(args)


if __name__ == "__main__":
    main()
