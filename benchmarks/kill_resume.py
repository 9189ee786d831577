"""Kill test: SIGKILL a training run at random moments, resume it each time, and check that its final
parameters equal those of an uninterrupted run with the same seed (CPU, torch.equal).

    python benchmarks/kill_resume.py --kills 12                 # MLE and REINFORCE, 12 kills each
    python benchmarks/kill_resume.py --algorithm reinforce --kills 3
    python benchmarks/kill_resume.py --algorithm mle --kills 2 --steps 60 --json   # what the test runs

Checkpoints are written every 2 steps, so many kills land while a checkpoint is being written. Prints a
Markdown row per algorithm: kills survived, damaged checkpoints skipped on resume, tracebacks, and whether
the final parameters equal the uninterrupted run's (--json: the result of each algorithm as one JSON line).
tests/test_reliability.py runs a reduced count.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail",
         "liam", "noah", "oliver", "elijah", "william", "james", "benjamin", "lucas", "henry", "alexander"]
TINY = ["data.valid_size=2", "data.test_size=2", "data.max_length=12", "generator.hidden_size=16",
        "generator.intermediate_size=32", "generator.num_layers=1", "generator.num_heads=2", "train.batch_size=8",
        "eval.every=25", "eval.num_samples=2", "eval.metrics=[]", "optim.gen.warmup_steps=0",
        "generator.dropout=0.1", "train.checkpoint_every=2", "train.keep_checkpoints=2", "train.log_every=1"]
GAN = ["disc.hidden_size=16", "disc.intermediate_size=32", "disc.num_layers=1", "disc.num_heads=2",
       "disc.grad_accumulation=3", "train.pretrain_steps=10"]


def command(algorithm: str, data: Path, runs: Path, name: str, steps: int) -> list[str]:
    preset = "configs/names-reinforce.yaml" if algorithm == "reinforce" else "configs/names-mle.yaml"
    extra = GAN if algorithm == "reinforce" else []
    return [sys.executable, "-m", "langan", "train", str(REPO / preset), f"data.source={data}", *TINY, *extra,
            f"train.steps={steps}", "--runs-dir", str(runs), "--name", name, "--quiet"]


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    last = max((p for p in (run / "checkpoints").glob("step-*")), key=lambda p: int(p.name[5:]))
    return {f"{f.stem}.{k}": v for f in sorted(last.glob("*.safetensors")) for k, v in load_file(str(f)).items()}


def logged_losses(run: Path) -> list[tuple[int, float]]:
    """(step, gen/loss) of every training record in metrics.jsonl, in file order."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [(r["step"], r["gen/loss"]) for r in rows if "gen/loss" in r]


def _started(run: Path) -> bool:
    return (run / "checkpoints").is_dir() and any((run / "checkpoints").glob("step-*"))


def run_kill_test(algorithm: str, kills: int, workdir: Path, seed: int = 0, steps: int = 120) -> dict[str, object]:
    """Returns kills done, damaged checkpoints reported on resume, tracebacks seen and whether weights match."""
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "names.txt"
    data.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    runs = workdir / f"runs-{algorithm}"
    subprocess.run(command(algorithm, data, runs, "straight", steps), check=True, capture_output=True)
    run = runs / "killed"
    cmd = command(algorithm, data, runs, "killed", steps)
    done, damaged, tracebacks, stderr, mid_write = 0, 0, 0, "", 0
    while True:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done < kills:
            deadline = time.monotonic() + 60
            while not _started(run) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.6))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                done += 1
        _, stderr = proc.communicate()
        # a kill inside save_checkpoint leaves its temporary folder behind (the next save removes it)
        mid_write += proc.returncode == -signal.SIGKILL and any((run / "checkpoints").glob(".tmp-*"))
        tracebacks += stderr.count("Traceback")
        damaged += stderr.count("skipping damaged checkpoint")
        if proc.returncode == 0:
            break
        if proc.returncode not in (-signal.SIGKILL,):
            raise RuntimeError(f"run failed with {proc.returncode}: {stderr[-1000:]}")
        cmd = [sys.executable, "-m", "langan", "train", "--resume", str(run), "--quiet"]
    a, b = final_weights(runs / "straight"), final_weights(run)
    equal = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # data lost: every training record of the uninterrupted run must be in the killed run's log, once, equal
    expected, got = logged_losses(runs / "straight"), logged_losses(run)
    lost = len(set(expected) - set(got)) + (len(got) - len(set(got)))
    return {"algorithm": algorithm, "kills": done, "during_checkpoint_write": mid_write,
            "damaged_skipped": damaged, "tracebacks": tracebacks,
            "equal": equal, "tensors": len(a), "records_lost_or_repeated": lost, "records": len(expected)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithm", choices=["mle", "reinforce"], action="append")
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--workdir", default=str(REPO / "benchmarks" / "out" / "kill"))
    parser.add_argument("--json", action="store_true", help="print each result as a JSON line, not a table")
    args = parser.parse_args()
    if args.json:
        for algorithm in args.algorithm or ["mle", "reinforce"]:
            print(json.dumps(run_kill_test(algorithm, args.kills, Path(args.workdir) / algorithm, args.seed,
                                           args.steps)), flush=True)
        return
    print("| algorithm | kills survived | of them while writing a checkpoint | damaged checkpoints skipped "
          "| tracebacks | final parameters equal | metric records lost or repeated |")
    print("|---|---|---|---|---|---|---|")
    for algorithm in args.algorithm or ["mle", "reinforce"]:
        r = run_kill_test(algorithm, args.kills, Path(args.workdir) / algorithm, args.seed, args.steps)
        print(f"| {algorithm} | {r['kills']} | {r['during_checkpoint_write']} | {r['damaged_skipped']} | "
              f"{r['tracebacks']} | "
              f"{'yes' if r['equal'] else 'NO'} ({r['tensors']} tensors) | "
              f"{r['records_lost_or_repeated']} of {r['records']} |", flush=True)


if __name__ == "__main__":
    main()
