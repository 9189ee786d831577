"""Benchmark: the names-mle preset on a names list — test NLL (nats/token), wall time, tokens/s.

    python benchmarks/names_mle.py --source census-names
    python benchmarks/names_mle.py --source /path/to/names.txt --test-size 1000
    python benchmarks/names_mle.py --preset configs/names-mle-large.yaml --source names.txt --seeds 0,1,2

Trains `configs/names-mle.yaml` or `--preset` (plus any overrides), then evaluates the test split with the checkpoint
chosen on the validation split (`best`) and with the last one. Prints one Markdown table row per source and seed;
with several `--seeds` (each sets both data.split_seed and train.seed: another split and another training) also
a row of mean ± standard deviation over them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from langan_cli import REPO, langan


def run_one(preset: str, source: str, test_size: str, runs_dir: Path, overrides: list[str], seed: int | None
            ) -> dict[str, object]:
    name = Path(source).stem + ("" if seed is None else f"-seed{seed}")
    seeds = [] if seed is None else [f"data.split_seed={seed}", f"train.seed={seed}"]
    t0 = time.perf_counter()
    langan("train", preset, f"data.source={source}", f"data.test_size={test_size}", *seeds, *overrides,
           "--runs-dir", str(runs_dir), "--name", name, "--overwrite", "--quiet")
    wall = time.perf_counter() - t0
    meta = json.loads((runs_dir / name / "meta.json").read_text())
    trainer = json.loads(sorted((runs_dir / name / "checkpoints").glob("step-*/trainer.json"),
                                key=lambda p: int(p.parent.name[5:]))[-1].read_text())
    results = {}
    for which in ("best", "latest"):
        out = langan("eval", str(runs_dir / name), "--checkpoint", which, "--n", "1000", "--json")
        results[which] = json.loads(out.stdout)
    return {"source": source, "seed": seed, "steps": trainer["step"],
            "test_nll_best": results["best"]["nll"], "test_nll_last": results["latest"]["nll"],
            "best_valid_nll": meta.get("best_valid_nll"), "wall_s": wall, "train_s": trainer["elapsed_seconds"],
            "tokens_per_s": trainer["tokens_seen"] / trainer["elapsed_seconds"],
            "unique": results["latest"]["unique"], "novelty": results["latest"]["novelty"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", action="append", required=True, help="data.source (repeatable)")
    parser.add_argument("--test-size", default="1000")
    parser.add_argument("--preset", default="configs/names-mle.yaml", help="config file to train")
    parser.add_argument("--runs-dir", default=str(REPO / "benchmarks" / "out" / "runs"))
    parser.add_argument("--seeds", help="comma-separated seeds, each for data.split_seed and train.seed")
    parser.add_argument("overrides", nargs="*", help="extra config overrides")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    print("| source | seed | steps | test NLL (best valid ckpt) | test NLL (last) | train time | wall time | tokens/s "
          "| unique | novelty |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [None]
    for source in args.source:
        rows = [run_one(args.preset, source, args.test_size, Path(args.runs_dir), args.overrides, s) for s in seeds]
        for r in rows:
            print(f"| {Path(source).name} | {'-' if r['seed'] is None else r['seed']} | {r['steps']} "
                  f"| {r['test_nll_best']:.4f} | {r['test_nll_last']:.4f} | {r['train_s']:.0f} s | {r['wall_s']:.0f} s "
                  f"| {r['tokens_per_s']:,.0f} | {r['unique']:.3f} | {r['novelty']:.3f} |", flush=True)
        if len(rows) > 1:
            best = [float(r["test_nll_best"]) for r in rows]
            mean, std = statistics.mean(best), statistics.stdev(best)
            print(f"| {Path(source).name} | mean ± std of {len(rows)} | | **{mean:.4f} ± {std:.4f}** "
                  f"| | {max(float(r['train_s']) for r in rows):.0f} s (max) | | | | |", flush=True)


if __name__ == "__main__":
    main()
