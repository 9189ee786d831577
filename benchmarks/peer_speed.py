"""Benchmark: langan beside TextGAN-PyTorch (github.com/williamSYSU/TextGAN-PyTorch) on SeqGAN's oracle shape, CPU.

    git clone https://github.com/williamSYSU/TextGAN-PyTorch /work/peer/TextGAN-PyTorch
    PYTHONPATH=src python benchmarks/peer_speed.py --json benchmarks/out/peer_speed.json   # ~12 min, 2 cores
    PYTHONPATH=src python benchmarks/peer_speed.py --negatives 10000 --repeats 1   # TextGAN's full D schedule
    PYTHONPATH=src python benchmarks/peer_speed.py --threads 1 --repeats 1 --samples 640 --rollouts 1 \\
        --vocab 1000 --negatives 128 --d-steps 1 --d-epochs 1                      # a smoke test, under a minute

Defaults: 2 threads, the median of 2 repeats, 500 negatives per D round (see phase 3). Sampling dominates
both sides (rollouts, negatives, metric samples), and on CPU torch.multinomial over 5,000 tokens costs about
0.2 ms a row whatever the thread count, so more threads shorten little but the discriminator's passes.

Shape (SeqGAN on the synthetic oracle, TextGAN's run/run_seqgan.py): LSTM generator, embedding 32, hidden 32,
vocabulary 5,000, length 20, batch 64; 16 Monte Carlo rollouts of every prefix; SeqGAN's CNN discriminator
(embedding 64, widths 1-10, 15, 20 with 100-200 filters, highway, dropout 0.25). Both sides run on CPU with
torch.set_num_threads(--threads), each in its own subprocess, one after the other. Each phase runs --repeats
times; the table shows medians and the ratio TextGAN time / langan time (above 1: langan is faster).

Phases, each side through its own code (TextGAN: the calls of instructor/oracle_data/seqgan_instructor.py on
objects built directly, not its training script; langan: its public API):
  1. MLE epoch: one pass over the oracle samples at batch 64 (TextGAN: BasicInstructor.train_gen_epoch over
     its GenDataIter loader; langan: Reinforce.step on BatchIterator batches while step_count < pretrain_steps).
  2. Rollout reward of one batch of 64 samples x --rollouts completions of every prefix (TextGAN:
     utils/rollout.py ROLLOUT.get_reward; langan: Reinforce.rewards(tokens, mask) with reward.mode=rollout),
     timed as the reward call inside each generator step of phase 3 (the rollout is most of that step, so it
     is not computed a second time on its own).
  3. Adversarial epoch at equal work: one generator policy-gradient step with rollout rewards (3a), then
     --d-steps discriminator rounds, each on --negatives fresh generated rows plus as many real ones, --d-epochs
     epochs over them in batches of 64 rows (3b). TextGAN's SeqGAN schedule is 4 rounds x 10,000 negatives x 2
     epochs (run/run_seqgan.py: ADV_g_step = 1, ADV_d_step = 4, ADV_d_epoch = 2, samples_num = 10000;
     seqgan_instructor.py train_discriminator); that is about 7 minutes a repeat per side on 2 cores, so the
     default here is 500 negatives (a twentieth of each round; the rest of the schedule as TextGAN's). Both the
     sampling and the training of 3b scale linearly in --negatives (20 x 3b ~ TextGAN's full rounds). Left out
     on the TextGAN side: the metric line adv_train_generator logs after each step (a full phase-4
     evaluation) and the validation accuracy train_discriminator computes per round.
  4. Metric evaluation: --samples generated samples scored by NLL_oracle (TextGAN: gen.sample + GenDataIter +
     metrics/nll.py NLL.get_score, as BasicInstructor.cal_metrics; langan: eval.samples.draw_samples +
     eval.metrics.nll_oracle).

TextGAN's global config.py is imported and its fields set (CUDA off) without its argument parser; its oracle
is made in memory as utils/helpers.py create_oracle makes it (random N(0, 1) weights: speed does not depend on
them), so nothing is written into its repository. torch.load is wrapped with map_location='cpu' in its
subprocess (its instructor maps to cuda:N), though the timed calls load nothing.

langan's discriminator rounds: when `load_config` accepts disc.negatives and disc.epochs, one Reinforce.step
after pretraining is the whole adversarial epoch ("config" path); otherwise the script times the pieces
itself: Reinforce.gen_update on 64 fresh samples, then per round --negatives rows drawn in batches of 256 and,
per epoch, disc_update on pairs of 32 real + 32 generated rows ("pieces" path). The output says which ran.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "configs" / "oracle-seqgan.yaml"  # used when present, with the overrides below on top
DEFAULT_PEER = "/work/peer/TextGAN-PyTorch"
BATCH = 64  # run_seqgan.py batch_size
LENGTH = 20  # run_seqgan.py max_seq_len
SAMPLE_BATCH = 4 * BATCH  # TextGAN samples negatives and evaluation sets 4 x batch_size rows at a time
# SeqGAN's CNN discriminator, models/SeqGAN_D.py (langan: disc.filter_sizes / disc.num_filters)
FILTER_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20]
NUM_FILTERS = [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160]
LANGAN_BF16 = "langan-bf16"  # langan's side again under bf16 autocast (--langan-bf16): a third column
BF16 = "train.dtype=bfloat16"
PHASES = {
    "mle_epoch": "1. MLE epoch",
    "rollout_reward": "2. rollout reward of one batch (inside 3a)",
    "adv_epoch": "3. adversarial epoch (3a + 3b)",
    "adv_gen_step": "3a. generator step: sample, rollout reward, update",
    "adv_disc_rounds": "3b. discriminator rounds",
    "metric_eval": "4. metric: samples + NLL_oracle",
}


def log(side: str, text: str) -> None:
    print(f"[{side}] {text}", file=sys.stderr, flush=True)


def repeat(side: str, name: str, fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Seconds of each of `repeats` calls of fn, and the last call's result."""
    times, result = [], None
    for i in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        log(side, f"{name} {i + 1}/{repeats}: {times[-1]:.2f} s")
    return times, result


# ---------------------------------------------------------------------------------------------- TextGAN side


def peer_worker(args: argparse.Namespace) -> dict[str, Any]:
    peer = Path(args.peer_dir).resolve()
    os.chdir(peer)
    sys.path.insert(0, str(peer))
    torch.load = functools.partial(torch.load, map_location="cpu")  # its instructor maps loads to cuda:N
    sys.dont_write_bytecode = True  # leave no __pycache__ in its checkout
    import config as cfg  # TextGAN's global config: module fields, set here instead of by its parser

    cfg.CUDA = False
    cfg.if_real_data, cfg.dataset, cfg.data_shuffle = False, "oracle", False
    cfg.run_model, cfg.model_type, cfg.gen_init, cfg.dis_init = "seqgan", "vanilla", "normal", "uniform"
    cfg.vocab_size, cfg.max_seq_len, cfg.batch_size, cfg.samples_num = args.vocab, LENGTH, BATCH, args.samples
    cfg.gen_embed_dim = cfg.gen_hidden_dim = 32
    cfg.dis_embed_dim, cfg.gen_lr, cfg.dis_lr = 64, 0.01, 1e-4
    cfg.rollout_num, cfg.ADV_g_step = args.rollouts, 1
    cfg.ADV_d_step, cfg.ADV_d_epoch = args.d_steps, args.d_epochs

    import torch.nn as nn
    import torch.optim as optim
    from instructor.oracle_data.seqgan_instructor import SeqGANInstructor
    from metrics.nll import NLL
    from models.Oracle import Oracle
    from models.SeqGAN_D import SeqGAN_D
    from models.SeqGAN_G import SeqGAN_G
    from utils import rollout
    from utils.data_loader import DisDataIter, GenDataIter

    # what SeqGANInstructor.__init__ builds, minus its log files, signal file and oracle files on disk
    inst = SeqGANInstructor.__new__(SeqGANInstructor)
    inst.oracle = Oracle(32, 32, cfg.vocab_size, cfg.max_seq_len, cfg.padding_idx, gpu=cfg.CUDA)
    inst.oracle_samples = inst.oracle.sample(cfg.samples_num, 4 * cfg.batch_size)  # as create_oracle
    inst.oracle_data = GenDataIter(inst.oracle_samples)
    inst.gen = SeqGAN_G(cfg.gen_embed_dim, cfg.gen_hidden_dim, cfg.vocab_size, cfg.max_seq_len, cfg.padding_idx,
                        gpu=cfg.CUDA)
    inst.dis = SeqGAN_D(cfg.dis_embed_dim, cfg.vocab_size, cfg.padding_idx, gpu=cfg.CUDA)
    inst.gen_opt = optim.Adam(inst.gen.parameters(), lr=cfg.gen_lr)
    inst.gen_adv_opt = optim.Adam(inst.gen.parameters(), lr=cfg.gen_lr)
    inst.dis_opt = optim.Adam(inst.dis.parameters(), lr=cfg.dis_lr)
    inst.mle_criterion, inst.dis_criterion = nn.NLLLoss(), nn.CrossEntropyLoss()
    inst.nll_oracle = NLL("NLL_oracle", if_use=True, gpu=cfg.CUDA)
    positives = inst.oracle_samples[: args.negatives]  # TextGAN pairs all samples_num (= negatives at full size)

    def mle_epoch() -> float:  # pretrain_generator, one epoch
        return inst.train_gen_epoch(inst.gen, inst.oracle_data.loader, inst.mle_criterion, inst.gen_opt)

    reward_times: list[float] = []

    def adv_gen_step() -> None:  # adv_train_generator(ADV_g_step = 1) without its closing cal_metrics log line
        func = rollout.ROLLOUT(inst.gen, cfg.CUDA)
        for _ in range(cfg.ADV_g_step):
            inp, target = GenDataIter.prepare(inst.gen.sample(cfg.batch_size, cfg.batch_size), gpu=cfg.CUDA)
            start = time.perf_counter()
            rewards = func.get_reward(target, cfg.rollout_num, inst.dis)  # phase 2
            reward_times.append(time.perf_counter() - start)
            adv_loss = inst.gen.batchPGLoss(inp, target, rewards)
            inst.optimize(inst.gen_adv_opt, adv_loss)

    def adv_disc_rounds() -> None:  # train_discriminator(ADV_d_step, ADV_d_epoch) without its validation
        for _ in range(cfg.ADV_d_step):
            negatives = inst.gen.sample(args.negatives, 4 * cfg.batch_size)
            dis_data = DisDataIter(positives, negatives)
            for _ in range(cfg.ADV_d_epoch):
                inst.train_dis_epoch(inst.dis, dis_data.loader, inst.dis_criterion, inst.dis_opt)

    def metric_eval() -> float:  # cal_metrics, NLL_oracle only
        with torch.no_grad():
            gen_data = GenDataIter(inst.gen.sample(cfg.samples_num, 4 * cfg.batch_size))
            inst.nll_oracle.reset(inst.oracle, gen_data.loader)
        return inst.nll_oracle.get_score()

    disc_batches = args.d_steps * args.d_epochs * ((len(positives) + args.negatives) // BATCH)
    return run_phases("peer", args, mle_epoch, adv_gen_step, adv_disc_rounds, metric_eval, reward_times, {
        "mle_batches": len(inst.oracle_data.loader), "disc_batches_per_adversarial_epoch": disc_batches,
        "disc_rows_per_adversarial_epoch": disc_batches * BATCH,
        "generator_parameters": sum(p.numel() for p in inst.gen.parameters()),
        "discriminator_parameters": sum(p.numel() for p in inst.dis.parameters())})


# ----------------------------------------------------------------------------------------------- langan side


def langan_overrides(args: argparse.Namespace) -> list[str]:
    mle_batches = args.samples // BATCH
    return [
        "algorithm=reinforce", "data.source=oracle", f"data.oracle.num_samples={args.samples + 1000}",
        "data.valid_size=500", "data.test_size=500", f"data.oracle.vocab_size={args.vocab}",
        f"data.oracle.length={LENGTH}",
        "generator.arch=lstm", "generator.hidden_size=32", "generator.embedding_size=32", "generator.num_layers=1",
        "disc.arch=cnn", "disc.output=sequence", "disc.embedding_size=64",
        f"disc.filter_sizes={FILTER_SIZES}", f"disc.num_filters={NUM_FILTERS}",
        "disc.num_representations=1", "disc.head_size=0", "disc.dropout=0.25", "disc.pretrain_steps=0",
        "reward.mode=rollout", f"reward.rollout_num={args.rollouts}", "sampling.allow_eos=false",
        f"train.batch_size={BATCH}", f"train.pretrain_steps={args.repeats * mle_batches}",
        f"train.disc_steps_per_gen_step={args.d_steps}", f"train.steps={max(args.repeats, 1)}",
        f"train.threads={args.threads}",
        *args.langan_set,
    ]


def langan_worker(args: argparse.Namespace) -> dict[str, Any]:
    from langan.algorithms import build_algorithm
    from langan.config import load_config
    from langan.data.batching import BatchIterator
    from langan.data.dataset import load_data
    from langan.errors import LanganError
    from langan.eval.metrics import nll_oracle, reference_for
    from langan.eval.samples import draw_samples
    from langan.runs.loading import setup_torch
    from langan.train.session import total_steps

    preset = PRESET if PRESET.is_file() else None
    overrides = langan_overrides(args)
    try:  # disc.negatives / disc.epochs: the D rounds of an adversarial step, when langan has them
        cfg = load_config(preset, [*overrides, f"disc.negatives={args.negatives}", f"disc.epochs={args.d_epochs}"])
        path = "config (one Reinforce.step = the adversarial epoch: disc.negatives, disc.epochs)"
    except LanganError as err:
        cfg = load_config(preset, overrides)
        path = f"pieces (load_config refused disc.negatives/disc.epochs: {str(err).splitlines()[0]})"
    log("langan", f"preset: {preset or 'none (overrides only)'}; adversarial path: {path}")
    setup_torch(cfg)  # as `langan train` sets up torch: threads, denormals flushed, freed memory kept
    data = load_data(cfg.data)
    algo = build_algorithm(cfg, data, torch.device("cpu"), total_steps(cfg, len(data.train)))
    batches = BatchIterator(data.train.tokens, cfg.train.batch_size, cfg.train.seed)
    mle_batches = batches.steps_per_epoch

    disc_calls = {"updates": 0, "rows": 0}
    gen_times: list[float] = []
    reward_times: list[float] = []
    gen_update, disc_update, rewards = algo.gen_update, algo.disc_update, algo.rewards

    def counted_disc_update(real: torch.Tensor, fake: torch.Tensor) -> dict[str, Any]:
        disc_calls["updates"] += 1
        disc_calls["rows"] += len(real) + len(fake)
        return disc_update(real, fake)

    def timed_gen_update(fake: Any) -> dict[str, Any]:
        start = time.perf_counter()
        out = gen_update(fake)
        gen_times.append(time.perf_counter() - start)
        return out

    def timed_rewards(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # phase 2, inside gen_update
        start = time.perf_counter()
        out = rewards(tokens, mask)
        reward_times.append(time.perf_counter() - start)
        return out

    # instance attributes shadow the methods: Reinforce's own calls (self.rewards, ...) go through these
    algo.disc_update, algo.gen_update = counted_disc_update, timed_gen_update
    algo.rewards = timed_rewards

    def mle_epoch() -> None:
        for _ in range(mle_batches):
            if algo.step_count >= cfg.train.pretrain_steps:
                raise RuntimeError("an MLE batch past train.pretrain_steps")
            algo.step(next(batches))

    real_rows = data.train.tokens[:, 1:]  # without BOS, as disc_update takes them
    half = BATCH // 2

    def adv_gen_step() -> None:
        algo.gen_update(algo.draw(BATCH))

    def adv_disc_rounds() -> None:
        n = args.negatives
        for _ in range(args.d_steps):
            fake = torch.cat([algo.draw(min(SAMPLE_BATCH, n - i)).tokens for i in range(0, n, SAMPLE_BATCH)])
            real = real_rows[torch.randperm(len(real_rows))[:n]]
            for _ in range(args.d_epochs):
                order_real, order_fake = torch.randperm(n), torch.randperm(n)
                for i in range(0, n - half + 1, half):
                    algo.disc_update(real[order_real[i:i + half]], fake[order_fake[i:i + half]])

    if path.startswith("config"):
        def adv_step() -> None:
            if algo.step_count < cfg.train.pretrain_steps:
                raise RuntimeError("an adversarial step before the end of train.pretrain_steps")
            algo.step(next(batches))
    else:
        adv_step = None

    reference = reference_for(data, "valid")

    def metric_eval() -> float:
        samples = draw_samples(algo.generator, data.tokenizer, args.samples, data.max_length, seed=args.seed,
                               allow_eos=False)
        return nll_oracle(samples, reference)

    info = {"adversarial_path": path, "preset": str(preset) if preset else None, "mle_batches": mle_batches,
            "vocab_size_with_specials": data.tokenizer.vocab_size,
            "generator_parameters": sum(p.numel() for p in algo.gen.parameters()),
            "discriminator_parameters": sum(p.numel() for p in algo.disc.parameters())}
    result = run_phases("langan", args, mle_epoch, adv_gen_step, adv_disc_rounds, metric_eval, reward_times, info,
                        adv_step=adv_step, gen_times=gen_times)
    epochs = max(args.repeats, 1)
    result["info"] |= {"disc_batches_per_adversarial_epoch": disc_calls["updates"] / epochs,
                       "disc_rows_per_adversarial_epoch": disc_calls["rows"] / epochs}
    return result


# --------------------------------------------------------------------------------------------- both sides


def run_phases(side: str, args: argparse.Namespace, mle_epoch: Callable[[], Any], adv_gen_step: Callable[[], Any],
               adv_disc_rounds: Callable[[], Any], metric_eval: Callable[[], Any], reward_times: list[float],
               info: dict[str, Any], adv_step: Callable[[], Any] | None = None,
               gen_times: list[float] | None = None) -> dict[str, Any]:
    """Time the phases in order (MLE first: langan's pretraining steps come before its adversarial ones).
    Phase 2 is the reward call inside each generator step (`reward_times`, one per step: the rollout is the
    bulk of 3a, so it is not computed a second time on its own). With `adv_step` (langan's config path) one
    call is the adversarial epoch and 3a is read from `gen_times`."""
    phases: dict[str, list[float]] = {}
    phases["mle_epoch"], _ = repeat(side, "MLE epoch", mle_epoch, args.repeats)
    reward_times.clear()
    if adv_step is None:
        gen, disc = [], []
        for i in range(args.repeats):
            gen += repeat(side, f"adversarial {i + 1}: generator step", adv_gen_step, 1)[0]
            disc += repeat(side, f"adversarial {i + 1}: discriminator rounds", adv_disc_rounds, 1)[0]
        phases["adv_epoch"] = [g + d for g, d in zip(gen, disc, strict=True)]
    else:
        assert gen_times is not None
        gen_times.clear()
        phases["adv_epoch"], _ = repeat(side, "adversarial epoch", adv_step, args.repeats)
        gen = gen_times[-args.repeats:] if len(gen_times) >= args.repeats else [float("nan")] * args.repeats
        disc = [t - g for t, g in zip(phases["adv_epoch"], gen, strict=True)]
    if len(reward_times) != args.repeats:
        raise RuntimeError(f"{len(reward_times)} reward calls in {args.repeats} adversarial epochs (expected one each)")
    phases["adv_gen_step"], phases["adv_disc_rounds"], phases["rollout_reward"] = gen, disc, list(reward_times)
    phases["metric_eval"], nll = repeat(side, "metric evaluation", metric_eval, args.repeats)
    return {"phases": phases, "info": info | {"nll_oracle_last": nll, "threads": torch.get_num_threads()}}


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    result = peer_worker(args) if args.worker == "peer" else langan_worker(args)
    Path(args.result).write_text(json.dumps(result))


def git_head(path: Path) -> str:
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (proc.stdout.strip() or "?") + ("+dirty" if dirty else "")


def run_side(side: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one side's worker in a fresh interpreter; its progress goes to stderr."""
    fd, result = tempfile.mkstemp(prefix=f"peer_speed_{side}_", suffix=".json")
    os.close(fd)
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    worker_side, sets = ("langan", [*args.langan_set, BF16]) if side == LANGAN_BF16 else (side, args.langan_set)
    if worker_side == "langan":
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", worker_side, "--result", result,
           "--peer-dir", str(args.peer_dir), "--threads", str(args.threads), "--repeats", str(args.repeats),
           "--samples", str(args.samples), "--rollouts", str(args.rollouts), "--vocab", str(args.vocab),
           "--d-steps", str(args.d_steps), "--d-epochs", str(args.d_epochs), "--negatives", str(args.negatives),
           "--seed", str(args.seed), *(f"--langan-set={kv}" for kv in sets)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=args.peer_dir if worker_side == "peer" else REPO, env=env, stdout=sys.stderr)
        if proc.returncode != 0:
            sys.exit(f"the {side} worker failed (exit {proc.returncode}): {' '.join(cmd)}")
        out = json.loads(Path(result).read_text())
    finally:
        Path(result).unlink(missing_ok=True)
    out["info"]["wall_s"] = time.perf_counter() - start
    return out


def fmt(seconds: float | None) -> str:
    return "-" if seconds is None or seconds != seconds else f"{seconds:.2f}"


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    medians = {side: {k: statistics.median(v) for k, v in r["phases"].items()} for side, r in results.items()}
    ours = [side for side in ("langan", LANGAN_BF16) if side in medians]
    ratios = {side: {k: medians["peer"][k] / medians[side][k] for k in PHASES if medians[side][k] > 0}
              for side in ours if "peer" in medians}
    head = {"peer": git_head(args.peer_dir) if "peer" in results else None, "langan": git_head(REPO)}
    lines = [
        f"# CPU {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads per side, torch "
        f"{torch.__version__}, python {platform.python_version()}; median of {args.repeats}",
        f"# TextGAN-PyTorch {head['peer']} vs langan {head['langan']}",
        f"# shape: SeqGAN oracle, LSTM G emb 32 / hidden 32, vocab {args.vocab:,}, length {LENGTH}, batch {BATCH}, "
        f"{args.rollouts} rollouts, SeqGAN CNN D; {args.samples:,} oracle samples (MLE epoch, metric samples)",
        f"# adversarial epoch: 1 G step + {args.d_steps} D rounds x ({args.negatives:,} fresh negatives + as many "
        f"real rows) x {args.d_epochs} epochs, batches of {BATCH} rows"
        + ("" if (args.d_steps, args.d_epochs, args.negatives) == (4, 2, 10000) else
           " (reduced: TextGAN's SeqGAN schedule is 4 x 10,000 x 2)"),
    ]
    if args.langan_set:
        lines.append(f"# langan's side also set: {' '.join(args.langan_set)}")
    if ours:
        lines.append(f"# langan adversarial path: {results[ours[0]]['info']['adversarial_path']}")
    work = [f"{side} {r['info']['disc_batches_per_adversarial_epoch']:.0f} batches / "
            f"{r['info']['disc_rows_per_adversarial_epoch']:,.0f} rows" for side, r in results.items()]
    lines.append(f"# D work per adversarial epoch: {'; '.join(work)}")
    if LANGAN_BF16 in results:
        lines.append(f"# {LANGAN_BF16}: langan's side again with {BF16} (autocast; weights and optimiser float32)")
    head_row = "| phase | TextGAN-PyTorch s | " + " | ".join(f"{side} s | TextGAN / {side}" for side in ours) + " |"
    lines += ["", head_row, "|---" * (2 + 2 * len(ours)) + "|"]
    for key, label in PHASES.items():
        cells = [f"{fmt(medians[side].get(key))} | "
                 + (f"{ratios[side][key]:.2f}x" if key in ratios.get(side, {}) else "-") for side in ours]
        lines.append(f"| {label} | {fmt(medians.get('peer', {}).get(key))} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    return {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                         if k not in ("worker", "result", "json")},
            "machine": {"arch": platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
                        "python": platform.python_version()},
            "commits": head, "phase_labels": dict(PHASES), "medians": medians, "ratios": ratios,
            "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-dir", type=Path, default=Path(DEFAULT_PEER), help="TextGAN-PyTorch checkout")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in each side's process")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each phase (the median is reported)")
    parser.add_argument("--samples", type=int, default=10000, help="oracle training samples = metric samples")
    parser.add_argument("--rollouts", type=int, default=16, help="Monte Carlo completions of every prefix")
    parser.add_argument("--vocab", type=int, default=5000, help="oracle vocabulary (SeqGAN: 5,000)")
    parser.add_argument("--d-steps", type=int, default=4, help="D rounds per adversarial epoch (TextGAN: 4)")
    parser.add_argument("--d-epochs", type=int, default=2, help="epochs over each round's rows (TextGAN: 2)")
    parser.add_argument("--negatives", type=int, default=500,
                        help="fresh generated rows per D round, paired with as many real ones (TextGAN: 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--langan-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for langan's side, after the shape's own (e.g. train.dtype=bfloat16); "
                             "repeatable")
    parser.add_argument("--sides", choices=["both", "peer", "langan"], default="both")
    parser.add_argument("--langan-bf16", action="store_true",
                        help=f"also time langan's side with {BF16} (bf16 autocast: a third column)")
    parser.add_argument("--json", type=Path, help="also write every time and setting to this file")
    parser.add_argument("--worker", choices=["peer", "langan"], help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if min(args.threads, args.repeats, args.rollouts, args.d_steps, args.d_epochs) < 1 or args.samples < BATCH:
        parser.error(f"--threads, --repeats, --rollouts, --d-steps, --d-epochs must be >= 1, --samples >= {BATCH}")
    if not BATCH // 2 <= args.negatives <= args.samples:
        parser.error(f"--negatives must be between {BATCH // 2} and --samples ({args.samples})")
    sides = ["peer", "langan"] if args.sides == "both" else [args.sides]
    if args.langan_bf16:
        sides.append(LANGAN_BF16)
    if "peer" in sides and not (args.peer_dir / "models" / "SeqGAN_G.py").is_file():
        print(f"TextGAN-PyTorch not found at {args.peer_dir}: git clone https://github.com/williamSYSU/TextGAN-PyTorch "
              f"{args.peer_dir} (or pass --peer-dir)")
        sys.exit(2)
    results = {side: run_side(side, args) for side in sides}  # one after the other, never at once
    out = report(args, results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
