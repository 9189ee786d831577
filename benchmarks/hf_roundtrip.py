"""A Hugging Face model through langan and back (issue 19).

No pretrained causal LM ships in a package this machine can reach, so the stand-in is langan's own: a Llama-shaped
MLE generator on census names (SwiGLU, RoPE only), exported with `langan export --to hf` and loaded back as
`generator.arch=hf`. From that folder, for each seed: MLE fine-tuning and adversarial fine-tuning (the REINFORCE
preset, per-step rewards, KL to the start), each `--steps` steps; then their temperature frontier; and the time per
step of the wrapper against langan's own model with the same weights (MLE and adversarial steps, interleaved).

    python benchmarks/hf_roundtrip.py train --seeds 0,1,2      # base MLE run, export, 2 fine-tunings per seed
    python benchmarks/hf_roundtrip.py speed                    # wrapper overhead, as ratios in one process
    python benchmarks/hf_roundtrip.py report --seeds 0,1,2     # eval table (mean +- std) and the frontier plot
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from langan_cli import REPO, langan

RUNS = REPO / "runs" / "hf"
EXPORT = RUNS / "names-llama"
LLAMA_SHAPED = ["generator.activation=swiglu", "generator.learned_positions=false"]


def train(seeds: list[int], base_steps: int, steps: int) -> None:
    base = RUNS / "base-mle"
    if not (base / "checkpoints" / "latest").exists():
        langan("train", "configs/names-mle.yaml", *LLAMA_SHAPED, f"train.steps={base_steps}", "--name", "base-mle",
               "--runs-dir", str(RUNS), "--quiet")
    if not EXPORT.exists():
        print(langan("export", str(base), "--to", "hf", str(EXPORT)).stdout.strip())
    hf = ["generator.arch=hf", f"generator.path={EXPORT}", f"train.steps={steps}", "eval.every=100"]
    for seed in seeds:
        for name, preset, extra in (
                ("mle-ft", "configs/names-mle.yaml", ["optim.gen.lr=3e-4", "optim.gen.warmup_steps=0",
                                                      "optim.gen.ema_decay=0"]),
                ("adv-ft", "configs/names-reinforce.yaml", ["train.pretrain_steps=0"])):
            run = RUNS / f"{name}-s{seed}"
            if (run / "checkpoints" / "latest").exists():
                continue
            t0 = time.time()
            langan("train", preset, *hf, *extra, f"train.seed={seed}", "--name", run.name, "--runs-dir", str(RUNS),
                   "--quiet")
            print(f"{run.name}: {time.time() - t0:.0f} s")


def _time_steps(algorithm, batches, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        algorithm.step(next(batches))
    return (time.perf_counter() - start) / n


def speed(rounds: int, n: int) -> None:
    import torch

    from langan.algorithms import build_algorithm
    from langan.config import load_config
    from langan.data.batching import BatchIterator
    from langan.runs.loading import load_run, setup_torch

    base = load_run(RUNS / "base-mle")
    weights, data = base.algorithm.generator.state_dict(), base.data  # the checkpoint that was exported
    shape = [f"generator.{k}={getattr(base.cfg.generator, k)}" for k in
             ("hidden_size", "intermediate_size", "num_layers", "num_heads", "rope_theta", "tie_word_embeddings")]
    results: dict[str, list[float]] = {}
    for phase, preset in (("mle", "configs/names-mle.yaml"), ("adversarial", "configs/names-reinforce.yaml")):
        algos = {}
        for arch in ("transformer", "hf"):
            overrides = [*LLAMA_SHAPED, *shape, *(["train.pretrain_steps=0"] if phase == "adversarial" else [])]
            if arch == "hf":
                overrides += ["generator.arch=hf", f"generator.path={EXPORT}"]  # the same weights, from the folder
            cfg = load_config(REPO / preset, overrides)
            setup_torch(cfg)
            torch.manual_seed(0)
            algo = build_algorithm(cfg, data, torch.device("cpu"), 10_000)
            if arch == "transformer":
                algo.gen.load_state_dict(weights)
            if phase == "adversarial":
                algo.reference.load_state_dict(algo.gen.state_dict())
            algos[arch] = (algo, iter(BatchIterator(data.train.tokens, cfg.train.batch_size, seed=0)))
        for algo, batches in algos.values():  # warm-up
            _time_steps(algo, batches, 3)
        for _ in range(rounds):
            for arch, (algo, batches) in algos.items():
                results.setdefault(f"{phase}/{arch}", []).append(_time_steps(algo, batches, n))
    print(f"torch threads {torch.get_num_threads()}; seconds per step, median of {rounds} rounds of {n} steps:")
    for phase in ("mle", "adversarial"):
        own, hf = (statistics.median(results[f"{phase}/{a}"]) for a in ("transformer", "hf"))
        print(f"  {phase:<12} langan {own * 1000:7.1f} ms   hf {hf * 1000:7.1f} ms   hf / langan {hf / own:.2f}")
    (RUNS / "speed.json").write_text(json.dumps(results, indent=2))


def report(seeds: list[int], n: int) -> None:
    rows: dict[str, dict[str, list[float]]] = {}
    for name in ("base-mle", "mle-ft", "adv-ft"):  # base-mle's best checkpoint is the exported model: the start
        for seed in [0] if name == "base-mle" else seeds:
            run = RUNS / (name if name == "base-mle" else f"{name}-s{seed}")
            langan("eval", str(run), "--n", str(n), "--metrics", "nll,bleu4,self_bleu4,unique,novelty")
            result = json.loads((run / "eval.json").read_text())
            for key, value in result.items():
                if isinstance(value, (int, float)):
                    rows.setdefault(name, {}).setdefault(key, []).append(float(value))
    for name, metrics in rows.items():
        cells = [f"{k} {statistics.mean(v):.4f} ± {statistics.stdev(v) if len(v) > 1 else 0:.4f}"
                 for k, v in metrics.items() if k in ("nll", "bleu4", "self_bleu4", "unique", "novelty", "disc_acc")]
        print(f"{name}: " + ", ".join(cells))
    figure = REPO / "benchmarks" / "figures" / "hf_frontier.png"
    runs = [RUNS / "base-mle", *(RUNS / f"{m}-s{seeds[0]}" for m in ("mle-ft", "adv-ft"))]
    out = langan("sweep-temperature", *map(str, runs),
                 "--temperatures", "0.6:1.4:0.2", "--n", str(n), "--out", str(figure))
    print(out.stdout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["train", "speed", "report"])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--base-steps", type=int, default=3000)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.command == "train":
        train(seeds, args.base_steps, args.steps)
    elif args.command == "speed":
        speed(args.rounds, 20)
    else:
        report(seeds, args.n)


if __name__ == "__main__":
    main()
