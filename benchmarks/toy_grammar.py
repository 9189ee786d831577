"""Benchmark: a from-scratch GAN on a toy grammar, ([abc][xyz]){1,4} (the probes behind configs/names-scratch.yaml).

    python benchmarks/toy_grammar.py [--preset configs/names-scratch.yaml] [--seeds 0,1,2] [KEY=VALUE ...]

On the built-in toy-grammar source (3,000 strings, lengths 1-4 pairs, uniform: langan.data.toy), trains the
preset with the generator and discriminator shrunk to 2 blocks of 32 (tests/test_toy_grammar.py's sizes) and no
pretraining, and prints, per seed, the fraction of valid samples at each evaluation (200 samples, every 50 steps),
and of 1,000 samples at T = 1 at the end, with their distinct fraction (1,000 draws from the grammar's own
distribution: about 0.54) and the training wall time. KEY=VALUE overrides the config (e.g.
train.disc_steps_per_gen_step=1).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from langan.config import load_config
from langan.data.toy import SCRATCH_OVERRIDES, grammar_report
from langan.generation import sample
from langan.train.session import new_session

REPO = Path(__file__).resolve().parents[1]
TINY = {**SCRATCH_OVERRIDES, "train.pretrain_steps": 0, "reward.kl_mult": 0, "train.threads": 1,
        "eval.every": 50, "eval.num_samples": 200}


def one_run(preset: str, out: Path, seed: int, overrides: list[str]) -> dict:
    settings = [f"{k}={v}" for k, v in TINY.items()] + [f"train.seed={seed}", *overrides]
    start = time.time()
    session = new_session(load_config(preset, settings), out, overwrite=True, quiet=True)
    session.train()
    wall = time.time() - start
    curve = []
    for f in sorted((out / "samples").glob("step-*.txt"), key=lambda f: int(f.stem.split("-")[1])):
        curve.append(round(grammar_report([line.split("\t", 1)[1] for line in f.read_text().splitlines()
                                           if "\t" in line])["valid"], 2))
    tokenizer, generator = session.data.tokenizer, session.algorithm.generator.eval()
    drawn = sample(generator, 1000, session.data.max_length, 1.0, generator=torch.Generator().manual_seed(1))
    texts = [tokenizer.decode(r[: int(k)].tolist()) for r, k in zip(drawn.tokens, drawn.lengths, strict=True)]
    report = grammar_report(texts)
    return {"seed": seed, "valid_during": curve, "valid": report["valid"], "unique": report["unique"],
            "seconds": round(wall, 1), "examples": texts[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=str(REPO / "configs" / "names-scratch.yaml"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE config overrides")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [one_run(args.preset, Path(tmp) / f"seed-{s}", int(s), args.overrides)
                   for s in args.seeds.split(",")]
    for r in results:
        print(json.dumps(r))
    valid = [r["valid"] for r in results]
    mean = sum(valid) / len(valid)
    spread = (sum((v - mean) ** 2 for v in valid) / max(len(valid) - 1, 1)) ** 0.5
    what = " ".join(args.overrides) or "the preset"
    print(f"valid at the end: {mean:.3f} ± {spread:.3f} over seeds {args.seeds} ({what})")


if __name__ == "__main__":
    main()
