"""One process against two (torchrun, gloo) on this CPU, at the same global batch (issue 18).

    python benchmarks/ddp_cpu.py            # names-mle (MLE) and names-reinforce (adversarial), 1 vs 2 processes

Each run trains alone; 1 process uses every core as torch threads, 2 processes one core's share each
(OMP_NUM_THREADS). Throughput is the training tokens/s langan prints at the end (evaluation time excluded).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil

from langan_cli import REPO, langan

RUNS = REPO / "runs" / "ddp-cpu"
CASES = {
    "mle": ("configs/names-mle.yaml", ["train.steps=600", "eval.every=100000"]),
    "adversarial": ("configs/names-reinforce.yaml", ["train.pretrain_steps=0", "train.steps=40",
                                                     "eval.every=100000"]),
}


def tokens_per_s(output: str) -> float:
    found = re.search(r"\(([\d,]+) tokens/s\)", output)
    assert found, output[-500:]
    return float(found.group(1).replace(",", ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    cores = os.cpu_count() or 1
    results: dict[str, dict[int, list[float]]] = {}
    for repeat in range(args.repeats):
        for case, (preset, extra) in CASES.items():
            for nproc in (1, 2):
                run = RUNS / f"{case}-{nproc}-{repeat}"
                shutil.rmtree(run, ignore_errors=True)
                threads = [f"train.threads={cores}"] if nproc == 1 else []
                out = langan("train", preset, *extra, *threads, "--runs-dir", str(RUNS), "--name", run.name,
                             "--quiet", "--nproc", str(nproc))
                results.setdefault(case, {}).setdefault(nproc, []).append(tokens_per_s(out.stdout))
    for case, by_n in results.items():
        one, two = (max(by_n[n]) for n in (1, 2))
        print(f"{case:<12} 1 process {one:9,.0f} tok/s   2 processes {two:9,.0f} tok/s   ratio {two / one:.2f}"
              f"   (best of {args.repeats}: {by_n})")


if __name__ == "__main__":
    main()
