"""`langan train`: a new run from a preset and overrides, `--resume` of a run, or one run per seed (`--seeds`)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from langan.cli.arguments import positive_int
from langan.cli.launch import relaunch, under_torchrun, without_nproc
from langan.errors import LanganError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a model from a config (or resume a run)",
                              description="Train from a YAML preset with dotted overrides, or continue a run exactly "
                              "where it stopped. Ctrl-C stops cleanly after the current step with a checkpoint.")
    p.add_argument("config", nargs="?", metavar="CONFIG.yaml",
                   help="preset, e.g. configs/names-mle.yaml (omit it to start from the defaults)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides, e.g. train.steps=500")
    p.add_argument("--name", help="run name (default: the preset's name plus the next free number)")
    p.add_argument("--runs-dir", default="runs", help="where run directories live (default: runs)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory of that name")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its latest checkpoint")
    p.add_argument("--steps", type=positive_int, help="with --resume: a new train.steps "
                   "(the main phase; GAN pretraining comes on top)")
    p.add_argument("--compare-to", metavar="RUN_DIR", help="report config changes against this run (default: the "
                   "newest earlier run of the same preset in --runs-dir)")
    p.add_argument("--force", action="store_true", help="with --resume: continue even though the run's "
                   "config.yaml or the langan version differ from its checkpoint's")
    p.add_argument("--seeds", help="comma-separated seeds: one run per seed in the group RUNS_DIR/NAME/seed-S "
                   "(compare groups with `langan runs compare`)")
    p.add_argument("--jobs", type=positive_int, default=1, help="with --seeds: runs in parallel processes")
    p.add_argument("--stop-after", type=positive_int, metavar="N",
                   help="stop (with a checkpoint) after step N; --resume continues")
    p.add_argument("--nproc", type=positive_int, default=1, metavar="N",
                   help="train one run in N processes (torchrun, DDP over gloo on CPU / NCCL on GPUs): each takes "
                   "1/N of every train.batch_size batch; same as `torchrun --nproc_per_node N -m langan train ...`")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    from langan import dist
    from langan.config import load_config
    from langan.train import session as sessions

    if args.config and "=" in args.config and not Path(args.config).exists():  # only overrides, no preset
        args.overrides, args.config = [args.config, *args.overrides], None
    if args.seeds:
        if args.nproc > 1:
            raise LanganError("--seeds runs one process per seed; it does not combine with --nproc")
        return _train_seeds(args)
    if args.nproc > 1 and not under_torchrun():
        return _launch(args)
    if args.resume:
        if args.config or args.overrides:
            raise LanganError("--resume continues a run with its own recorded config; drop CONFIG and overrides "
                              "(use --steps N to extend it)")
        s = sessions.resume_session(args.resume, steps=args.steps, argv=args.argv, quiet=args.quiet,
                                    force=args.force)
        if args.stop_after is not None and args.stop_after <= s.trainer.step:
            s.close()  # nothing was trained: release the run as it was
            raise LanganError(f"--stop-after {args.stop_after}: run '{args.resume}' is already at step "
                              f"{s.trainer.step}; give a later step, or leave --stop-after out")
        print(f"resuming {s.run.path} at step {s.trainer.step} of {s.trainer.total_steps}", file=sys.stderr)
    else:
        if not args.config and not args.overrides:
            raise LanganError("give a config, e.g. `langan train configs/names-mle.yaml`, or --resume RUN_DIR")
        if args.steps:
            raise LanganError("--steps goes with --resume; for a new run use the override train.steps=N")
        cfg = load_config(args.config, args.overrides)
        runs_dir = Path(args.runs_dir)
        name = args.name or _next_name(runs_dir, Path(args.config).stem if args.config else cfg.algorithm)
        s = sessions.new_session(cfg, runs_dir / name, overwrite=args.overwrite, argv=args.argv, quiet=args.quiet,
                                 preset=Path(args.config).stem if args.config else None, compare_to=args.compare_to)
    main = dist.is_main()  # under torchrun rank 0 alone speaks
    for line in ([] if args.quiet or not main else s.describe()) + (s.change_lines() if main else []):
        print(line, file=sys.stderr)  # changes are shown even when quiet
    try:
        status = s.train(stop_after=args.stop_after)  # records how it ended, then releases the run's lock
    except RuntimeError as err:  # a collective failed: another process of this run died
        import torch.distributed

        if not (dist.active() and isinstance(err, torch.distributed.DistError)):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LanganError(f"rank {dist.rank()} lost another process of this run ({first[:160]}); the last "
                          f"checkpoint is intact. Resume with: langan train --resume {s.run.path} "
                          f"--nproc {dist.world_size()}") from None
    if not main:
        return 0
    t = s.trainer
    print(f"{status}: {t.step}/{t.total_steps} steps in {t.elapsed:.0f}s training time "
          f"({t.tokens_seen / max(t.elapsed, 1e-9):,.0f} tokens/s), best valid nll {t.best_valid_nll:.4f} "
          f"-> {s.run.path}")
    return 0


def _launch(args: argparse.Namespace) -> int:
    """`langan train ... --nproc N` -> torchrun with N processes of the same command (the run's name fixed here, so
    the resume line can name it)."""
    argv = without_nproc(args.argv[1:])
    run_dir = Path(args.resume) if args.resume else None
    if run_dir is None:
        from langan.config import load_config

        stem = Path(args.config).stem if args.config else load_config(None, args.overrides).algorithm
        name = args.name or _next_name(Path(args.runs_dir), stem)
        argv = argv if args.name else [*argv, "--name", name]
        run_dir = Path(args.runs_dir) / name
    code = relaunch(argv, args.nproc)
    if code != 0 and (run_dir / "checkpoints").is_dir():
        print(f"langan train: a process of the run ended with an error (exit {code}); its last checkpoint is intact. "
              f"Resume with: langan train --resume {run_dir} --nproc {args.nproc}", file=sys.stderr)
    return code


def _next_name(runs_dir: Path, stem: str) -> str:
    taken = {p.name for p in runs_dir.iterdir()} if runs_dir.is_dir() else set()
    numbers = [int(m.group(1)) for n in taken if (m := re.fullmatch(re.escape(stem) + r"-(\d+)", n))]
    return f"{stem}-{max(numbers, default=0) + 1}"


def _train_seeds(args: argparse.Namespace) -> int:
    """One `langan train` process per seed, `--jobs` at a time, into the group RUNS_DIR/NAME/seed-S."""
    import subprocess

    from langan.runs import records
    from langan.runs.rundir import RunDir

    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError:
        raise LanganError(f"--seeds '{args.seeds}': give whole numbers separated by commas, e.g. 0,1,2") from None
    if args.resume or not args.config or not seeds:
        raise LanganError("--seeds needs a config (e.g. `langan train configs/names-mle.yaml --seeds 0,1,2`) and "
                          "does not combine with --resume (resume each seed-S run on its own)")
    group = Path(args.runs_dir) / (args.name or _next_name(Path(args.runs_dir), Path(args.config).stem))
    threads = max((os.cpu_count() or 1) // args.jobs, 1)  # share the cores between parallel runs
    pending = [(s, [sys.executable, "-m", "langan", "train", args.config, *args.overrides, f"train.seed={s}",
                    *([f"train.threads={threads}"] if args.jobs > 1 else []), "--runs-dir", str(group),
                    "--name", f"seed-{s}", "--quiet", *(["--overwrite"] if args.overwrite else []),
                    *(["--stop-after", str(args.stop_after)] if args.stop_after is not None else [])]) for s in seeds]
    running: list[tuple[int, subprocess.Popen]] = []
    failed, stopped = [], []
    while pending or running:
        while pending and len(running) < args.jobs:
            seed, cmd = pending.pop(0)
            running.append((seed, subprocess.Popen(cmd)))
        seed, proc = running.pop(0)
        if proc.wait() != 0:
            failed.append(seed)
        run = RunDir(group / f"seed-{seed}")
        status = "failed" if proc.returncode else run.read_meta().get("status", "finished")
        if status == "stopped":
            stopped.append(f"langan train --resume {run.path}")
        print(f"seed {seed}: {status} -> {run.path}", file=sys.stderr)
    if failed:
        raise LanganError(f"seeds {failed} failed (see their output above); finished runs are kept in {group}")
    if stopped:  # no final figures to compare yet
        print("stopped before the end; continue each with:\n  " + "\n  ".join(stopped), file=sys.stderr)
        return 0
    print("\n".join(records.compare_groups([str(group)], "best_valid_nll")))
    return 0
