"""Fingerprint of what each preset trains, to show a refactor changed no behaviour, bit for bit.

Trains every preset for a few hundred fixed-seed steps through the `langan` command line (so the same script
runs before and after a change of the code's layout) and records the SHA-256 of every tensor in every
checkpoint: the safetensors weights and every tensor in `state.pt` (optimisers, RNG states, baselines).

    python benchmarks/behaviour_snapshot.py --out /tmp/before.json          # at the old commit
    python benchmarks/behaviour_snapshot.py --out /tmp/after.json --compare /tmp/before.json

With --compare it prints each run's verdict and exits 1 when any tensor differs (equal hashes of the raw
bytes, dtypes and shapes = `torch.equal`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import safetensors.torch
import torch

ROOT = Path(__file__).resolve().parents[1]

# preset -> overrides: a few hundred steps of each phase, with checkpoints in the middle and at the end
RUNS = {
    "names-mle": ["configs/names-mle.yaml", "train.steps=300", "eval.every=100"],
    "names-mle-lstm": ["configs/names-mle-lstm.yaml", "train.steps=300", "eval.every=100"],
    "names-reinforce": ["configs/names-reinforce.yaml", "train.pretrain_steps=100", "train.steps=60",
                        "eval.every=80"],
    "names-reinforce-rollout": ["configs/names-reinforce.yaml", "train.pretrain_steps=40", "train.steps=8",
                                "reward.mode=rollout", "disc.output=sequence", "reward.rollout_num=2",
                                "eval.every=24", "data.max_length=16"],
    "names-ctrlgen": ["configs/names-ctrlgen.yaml", "train.pretrain_steps=150", "train.steps=150",
                      "eval.every=150"],
}


def tensor_hash(t: torch.Tensor) -> str:
    flat = t.detach().contiguous().cpu().reshape(-1)  # 0-dim tensors too
    raw = flat.to(torch.uint8) if flat.dtype == torch.bool else flat.view(torch.uint8)
    return hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode() + raw.numpy().tobytes()).hexdigest()[:20]


def walk(obj: object, prefix: str, out: dict[str, str]) -> None:
    """Every tensor in a nested state (dicts, lists), keyed by its path."""
    if isinstance(obj, torch.Tensor):
        out[prefix] = tensor_hash(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            walk(v, f"{prefix}/{k}", out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            walk(v, f"{prefix}/{i}", out)


def fingerprint(run: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for ckpt in sorted((run / "checkpoints").iterdir()):
        for f in sorted(ckpt.glob("*.safetensors")):
            for k, v in safetensors.torch.load_file(str(f)).items():
                out[f"{ckpt.name}/{f.stem}/{k}"] = tensor_hash(v)
        walk(torch.load(ckpt / "state.pt", weights_only=True), f"{ckpt.name}/state", out)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="JSON of tensor hashes per run")
    p.add_argument("--compare", help="an earlier --out to compare with")
    p.add_argument("--only", help="comma-separated run names (default: all)")
    args = p.parse_args()
    names = args.only.split(",") if args.only else list(RUNS)
    result: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as runs_dir:
        for name in names:
            cmd = [sys.executable, "-m", "langan", "train", *RUNS[name], "train.seed=3", "--runs-dir", runs_dir,
                   "--name", name, "--quiet"]
            subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            result[name] = fingerprint(Path(runs_dir) / name)
            print(f"{name}: {len(result[name])} tensors", file=sys.stderr)
    Path(args.out).write_text(json.dumps(result, indent=1, sort_keys=True))
    if not args.compare:
        return 0
    before = json.loads(Path(args.compare).read_text())
    failed = False
    for name in names:
        old, new = before.get(name, {}), result[name]
        differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        failed |= bool(differ) or not old
        verdict = "identical" if old and not differ else f"{len(differ)} of {len(old)} tensors differ: {differ[:4]}"
        print(f"{name:<26} {len(new):>5} tensors  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
