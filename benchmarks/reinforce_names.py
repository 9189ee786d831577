"""Benchmark: the names-reinforce preset — speed of the adversarial phase and what it does to the generator.

    python benchmarks/reinforce_names.py                       # trains configs/names-reinforce.yaml, then reports
    python benchmarks/reinforce_names.py --run runs/NAME       # reports on a finished run only
    python benchmarks/reinforce_names.py train.steps=500       # overrides go to `langan train`

Reports adversarial steps/s and generated tokens/s (median over the logged intervals of the adversarial
phase), and the `langan eval` table of the adversarial generator beside the pretrained one (test NLL,
unique fraction and novelty of 1,000 samples, balanced accuracy of the final discriminator).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def langan(*args: str) -> str:
    cmd = [sys.executable, "-m", "langan", *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return proc.stdout


def speed(run: Path) -> dict[str, float]:
    """Median steps/s and generated tokens/s over the logged intervals of the adversarial phase."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())["train"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    adv = [r for r in rows if r.get("train/phase") == 2 and "train/steps_per_s" in r]
    if not adv:
        return {}
    steps = statistics.median(r["train/steps_per_s"] for r in adv)
    per_step = cfg["batch_size"] * cfg["gen_steps_per_disc_step"]
    tokens = statistics.median(r["train/steps_per_s"] * per_step * r["gen/mean_length"] for r in adv)
    return {"adversarial_steps_per_s": steps, "generated_tokens_per_s": tokens, "logged_intervals": len(adv)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="report on this finished run instead of training one")
    parser.add_argument("--runs-dir", default=str(REPO / "benchmarks" / "out" / "runs"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    run = Path(args.run) if args.run else Path(args.runs_dir) / "names-reinforce"
    if not args.run:
        langan("train", "configs/names-reinforce.yaml", *args.overrides, "--runs-dir", args.runs_dir,
               "--name", "names-reinforce", "--overwrite", "--quiet")
    print(json.dumps(speed(run), indent=2))
    print(langan("eval", str(run), "--n", "1000"))


if __name__ == "__main__":
    main()
