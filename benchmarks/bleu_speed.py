"""Benchmark: BLEU-2..5 of 10,000 samples against 10,000 references, and self-BLEU-2..5 of 10,000 samples.

    python benchmarks/bleu_speed.py [--n 10000] [--nltk-sample 20]

Character tokens of census surnames (two disjoint random halves: "samples" and "references"), or with
--samples / --references two files read as words (COCO: 10,000 training captions against the 10,000 test
ones). Also times
nltk's sentence_bleu on a few samples to estimate what the same job costs with it, and checks on those
samples that both agree to 1e-9.
"""

from __future__ import annotations

import argparse
import random
import time

from langan.data.sources import census_surnames
from langan.eval.bleu import bleu, self_bleu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--nltk-sample", type=int, default=20)
    parser.add_argument("--samples", help="a one-text-per-line file as the samples, read as words (e.g. "
                        "../shared/data/coco_train.txt); default: census surnames as characters")
    parser.add_argument("--references", help="with --samples: the reference file (e.g. ../shared/data/coco_test.txt)")
    args = parser.parse_args()
    if args.samples:
        def words(path: str) -> list[list[str]]:
            return [line.split() for line in open(path, encoding="utf-8").read().splitlines() if line.strip()]

        hyps, refs = words(args.samples)[: args.n], words(args.references)[: args.n]
    else:
        texts = list(census_surnames().texts)
        random.Random(0).shuffle(texts)
        hyps, refs = [list(t) for t in texts[: args.n]], [list(t) for t in texts[args.n: 2 * args.n]]
    total = time.perf_counter()
    print("| job | n | seconds |\n|---|---|---|")
    for order in range(2, 6):
        t = time.perf_counter()
        bleu(hyps, refs, order)
        print(f"| BLEU-{order} vs {len(refs):,} references | {len(hyps):,} | {time.perf_counter() - t:.1f} |")
    for order in range(2, 6):
        t = time.perf_counter()
        self_bleu(hyps, order)
        print(f"| self-BLEU-{order} | {len(hyps):,} | {time.perf_counter() - t:.1f} |")
    print(f"| all eight | {len(hyps):,} | {time.perf_counter() - total:.1f} |")
    if args.nltk_sample:
        from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

        few = hyps[: args.nltk_sample]
        t = time.perf_counter()
        ref_scores = [sentence_bleu(refs, h, (0.25,) * 4, smoothing_function=SmoothingFunction().method1) for h in few]
        per = (time.perf_counter() - t) / len(few)
        assert abs(sum(ref_scores) / len(few) - bleu(few, refs, 4)) < 1e-9
        print(f"| nltk sentence_bleu BLEU-4, per sample (estimate for {len(hyps):,}: {per * len(hyps) / 60:.0f} min) "
              f"| {len(few)} | {per:.3f} |")


if __name__ == "__main__":
    main()
