"""`langan` command line: train, sample, eval, runs, config. A user's mistake is one line, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langan.errors import LanganError

EPILOG = "Examples:\n  langan train configs/names-mle.yaml train.steps=2000 --name try1\n" \
         "  langan sample runs/try1 --n 20 --temperature 0.8\n  langan eval runs/try1\n  langan runs"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _ranged(name: str, low: float, high: float, low_open: bool = False) -> object:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if not (low < value <= high if low_open else low <= value <= high):
            raise argparse.ArgumentTypeError(f"{name} must be in {'(' if low_open else '['}{low}, {high}]")
        return value

    return parse


def _sampling_args(p: argparse.ArgumentParser, n: int) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. runs/names-mle-1")
    p.add_argument("--n", type=_positive_int, default=n, help=f"number of samples (default {n})")
    p.add_argument("--temperature", type=_ranged("temperature", 0, 100), default=1.0,
                   help="softmax temperature; 0 = greedy (default 1.0)")
    p.add_argument("--top-p", type=_ranged("top-p", 0, 1, low_open=True), default=1.0,
                   help="nucleus sampling mass in (0, 1] (default 1.0 = off)")
    p.add_argument("--top-k", type=int, choices=range(0, 1 << 20), metavar="K", default=0,
                   help="keep the K most likely tokens (default 0 = off)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--checkpoint", default="auto", help="auto (default: best valid NLL for MLE runs, else latest), "
                   "latest, best, or step-N")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langan", description="Train and evaluate language GANs against "
                                     "honest maximum-likelihood baselines.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a model from a config (or resume a run)",
                       description="Train from a YAML preset with dotted overrides, or continue a run exactly "
                       "where it stopped. Ctrl-C stops cleanly after the current step with a checkpoint.")
    p.add_argument("config", nargs="?", metavar="CONFIG.yaml",
                   help="preset, e.g. configs/names-mle.yaml (omit it to start from the defaults)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides, e.g. train.steps=500")
    p.add_argument("--name", help="run name (default: the preset's name plus the next free number)")
    p.add_argument("--runs-dir", default="runs", help="where run directories live (default: runs)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory of that name")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its latest checkpoint")
    p.add_argument("--steps", type=_positive_int, help="with --resume: a new train.steps "
                   "(the main phase; GAN pretraining comes on top)")
    p.add_argument("--compare-to", metavar="RUN_DIR", help="report config changes against this run (default: the "
                   "newest earlier run of the same preset in --runs-dir)")
    p.add_argument("--force", action="store_true", help="with --resume: continue even though the run's "
                   "config.yaml or the langan version differ from its checkpoint's")
    p.add_argument("--seeds", help="comma-separated seeds: one run per seed in the group RUNS_DIR/NAME/seed-S "
                   "(compare groups with `langan runs compare`)")
    p.add_argument("--jobs", type=_positive_int, default=1, help="with --seeds: runs in parallel processes")
    p.add_argument("--stop-after", type=_positive_int, metavar="N",
                   help="stop (with a checkpoint) after step N; --resume continues")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    p = sub.add_parser("sample", help="print samples of a trained run, tagged train / valid/test / new")
    _sampling_args(p, 20)
    p.add_argument("--plain", action="store_true", help="print the texts only, without tags")
    p.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE",
                   help="ctrlgen runs: the style code to sample with, e.g. --attr gender=female (repeat for several "
                   "attributes; without it codes follow the training label distribution)")
    p.add_argument("--z-interpolate", nargs=2, metavar=("A", "B"),
                   help="ctrlgen runs: decode (greedily) --n points on the line in z between the encodings of "
                   "texts A and B")

    p = sub.add_parser("eval", help="evaluate a run on its test split and samples; writes RUN_DIR/eval.json")
    _sampling_args(p, 1000)
    p.add_argument("--metrics", help="comma-separated metrics (default: all available)")
    p.add_argument("--json", action="store_true", help="print eval.json instead of a table")

    p = sub.add_parser("sweep-temperature", help="quality vs diversity of runs over sampling temperatures "
                       "(CSV + PNG)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--temperatures", default="0.6:1.4:0.1", help="start:stop:step or a list (default: 0.6:1.4:0.1)")
    p.add_argument("--n", type=_positive_int, default=1000, help="samples per run and temperature (default: 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="sweep-temperature.png", help="PNG path; the CSV goes beside it")
    p.add_argument("--pair", default="auto", choices=["auto", "text", "oracle", "lm"],
                   help="quality/diversity figures: auto = bleu4/self_bleu4 on text, nll_oracle/nll_gen on the "
                   "oracle; lm = lm_score/reverse_lm_score")

    p = sub.add_parser("report", help="training curves of runs overlaid: a PNG and an HTML page")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="report.png", help="PNG path; the HTML page goes beside it")

    p = sub.add_parser("runs", help="list runs, `langan runs diff RUN_A RUN_B`, or `langan runs compare GROUP... "
                       "--metric M`")
    p.add_argument("args", nargs="*", metavar="ARG", help="[RUNS_DIR] | diff RUN_A RUN_B | compare RUN_OR_GROUP...")
    p.add_argument("--metric", default="best_valid_nll", help="compare: the final metric (default: best_valid_nll; "
                   "also eval/... or an eval.json metric)")

    p = sub.add_parser("sweep", help="a search over config keys (Optuna): `sweep SWEEP.yaml`, `sweep show NAME`, "
                       "`sweep plot NAME --x KEY --y METRIC`",
                       description="Run a sweep (a base preset plus a grid / random / TPE search space; every trial is "
                       "one recorded run per seed under RUNS_DIR/sweeps/NAME/). Start the same command in several "
                       "processes or machines sharing the storage to run trials in parallel; run it again after a "
                       "kill to continue. `show NAME` prints the trials, best first; `plot NAME` draws mean ± std "
                       "over seeds of --y against --x, one line per --hue value (PNG + CSV).")
    p.add_argument("args", nargs="+", metavar="ARG", help="SWEEP.yaml | show NAME | plot NAME")
    p.add_argument("--runs-dir", default="runs", help="runs go to RUNS_DIR/sweeps/NAME/ (default: runs)")
    p.add_argument("--storage", metavar="URL", help="show/plot: the database of a sweep whose storage is not under "
                   "--runs-dir")
    p.add_argument("--seeds", help="comma-separated seeds of every trial (replaces the file's seeds:)")
    p.add_argument("--jobs", type=_positive_int, default=1, help="seed runs of a trial in parallel processes")
    p.add_argument("--n-trials", type=_positive_int, metavar="N", help="this worker runs at most N trials")
    p.add_argument("--quiet", action="store_true", help="no per-trial lines, only the summary")
    p.add_argument("--x", metavar="KEY", help="plot: the config key on the x axis (e.g. reward.gamma)")
    p.add_argument("--y", metavar="METRIC", help="plot: the final metric (e.g. eval/nll, best_valid_nll)")
    p.add_argument("--hue", metavar="KEY", help="plot: one line per value of this config key")
    p.add_argument("--out", help="plot: the PNG (default NAME.png); the CSV goes beside it")

    p = sub.add_parser("config", help="print every config key with its value and meaning")
    p.add_argument("config", nargs="?", metavar="CONFIG.yaml", help="a preset to resolve (default: the defaults)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value")
    return parser


# ----------------------------------------------------------------------------- train


def _next_name(runs_dir: Path, stem: str) -> str:
    taken = {p.name for p in runs_dir.iterdir()} if runs_dir.is_dir() else set()
    numbers = [int(m.group(1)) for n in taken if (m := re.fullmatch(re.escape(stem) + r"-(\d+)", n))]
    return f"{stem}-{max(numbers, default=0) + 1}"


def cmd_train(args: argparse.Namespace) -> int:
    from langan.config import load_config
    from langan.train import session as sessions

    if args.config and "=" in args.config and not Path(args.config).exists():  # only overrides, no preset
        args.overrides, args.config = [args.config, *args.overrides], None
    if args.seeds:
        return _train_seeds(args)
    if args.resume:
        if args.config or args.overrides:
            raise LanganError("--resume continues a run with its own recorded config; drop CONFIG and overrides "
                              "(use --steps N to extend it)")
        s = sessions.resume_session(args.resume, steps=args.steps, argv=args.argv, quiet=args.quiet,
                                    force=args.force)
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
    for line in ([] if args.quiet else s.describe()) + s.change_lines():  # changes are shown even when quiet
        print(line, file=sys.stderr)
    status = s.train(stop_after=args.stop_after)  # records how it ended, then releases the run's lock
    t = s.trainer
    print(f"{status}: {t.step}/{t.total_steps} steps in {t.elapsed:.0f}s training time "
          f"({t.tokens_seen / max(t.elapsed, 1e-9):,.0f} tokens/s), best valid nll {t.best_valid_nll:.4f} "
          f"-> {s.run.path}")
    return 0


def _train_seeds(args: argparse.Namespace) -> int:
    """One `langan train` process per seed, `--jobs` at a time, into the group RUNS_DIR/NAME/seed-S."""
    import subprocess

    from langan.runs import records

    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError:
        raise LanganError(f"--seeds '{args.seeds}': give whole numbers separated by commas, e.g. 0,1,2") from None
    if args.resume or not args.config or not seeds:
        raise LanganError("--seeds needs a config (e.g. `langan train configs/names-mle.yaml --seeds 0,1,2`) and "
                          "does not combine with --resume (resume each seed-S run on its own)")
    group = Path(args.runs_dir) / (args.name or _next_name(Path(args.runs_dir), Path(args.config).stem))
    threads = max((os.cpu_count() or 1) // args.jobs, 1)  # share the cores between parallel runs
    pending = [[sys.executable, "-m", "langan", "train", args.config, *args.overrides, f"train.seed={s}",
                *([f"train.threads={threads}"] if args.jobs > 1 else []), "--runs-dir", str(group),
                "--name", f"seed-{s}", "--quiet", *(["--overwrite"] if args.overwrite else [])] for s in seeds]
    running: list[tuple[int, subprocess.Popen]] = []
    failed = []
    while pending or running:
        while pending and len(running) < args.jobs:
            cmd = pending.pop(0)
            running.append((int(cmd[cmd.index("--name") + 1][5:]), subprocess.Popen(cmd)))
        seed, proc = running.pop(0)
        if proc.wait() != 0:
            failed.append(seed)
        print(f"seed {seed}: {'failed' if proc.returncode else 'finished'} -> {group / f'seed-{seed}'}",
              file=sys.stderr)
    if failed:
        raise LanganError(f"seeds {failed} failed (see their output above); finished runs are kept in {group}")
    print("\n".join(records.compare_groups([str(group)], "best_valid_nll")))
    return 0


# ----------------------------------------------------------------------------- sample / eval


def cmd_sample(args: argparse.Namespace) -> int:
    from langan.eval.samples import draw_samples, one_line
    from langan.runs.loading import load_run

    attrs = _parse_attrs(args.attr)
    loaded = load_run(args.run_dir, args.checkpoint)
    if args.z_interpolate:
        return _interpolate(loaded, args.z_interpolate, args.n, attrs)
    gen, data = loaded.algorithm.generator, loaded.data
    samples = draw_samples(gen, data.tokenizer, args.n, data.max_length, seed=args.seed,
                           temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                           cond=loaded.algorithm.cond_for(args.n, args.seed, attrs),
                           allow_eos=data.oracle is None)
    tags = [data.origin(t) for t in samples.texts]
    for tag, text in zip(tags, samples.texts, strict=True):
        print(one_line(text) if args.plain else f"{tag:<10}  {one_line(text)}")
    if not args.plain:
        counts = {t: tags.count(t) for t in ("new", "train", "valid/test")}
        print(f"# {args.n} samples from {loaded.checkpoint.name}: {counts['new']} new, {counts['train']} in train, "
              f"{counts['valid/test']} in valid/test", file=sys.stderr)
    return 0


def _parse_attrs(items: list[str]) -> dict[str, str]:
    attrs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise LanganError(f"--attr '{item}' must look like KEY=VALUE, e.g. --attr gender=female")
        attrs[key.strip()] = value.strip()
    return attrs


def _interpolate(loaded: Any, texts: list[str], n: int, attrs: dict[str, str]) -> int:
    """Greedy decodes along z between two encoded texts (codes: --attr, else interpolated guesses)."""
    from langan.data.dataset import encode_texts
    from langan.eval.samples import one_line
    from langan.generation import sample

    algorithm, data = loaded.algorithm, loaded.data
    rows, _ = encode_texts(data.tokenizer, list(texts), data.max_length)
    cond = algorithm.interpolation_cond(rows[:, 1:], n, attrs)  # [n, Z + C]
    out = sample(algorithm.generator, len(cond), data.max_length, temperature=0.0, cond=cond)
    for i, row in enumerate(out.tokens.tolist()):
        text = data.tokenizer.decode(row)
        print(f"{i / (len(cond) - 1):4.2f}  {data.origin(text):<10}  {one_line(text)}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from langan.eval.evaluate import evaluate_run, format_table

    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    results = evaluate_run(args.run_dir, n=args.n, temperature=args.temperature, top_p=args.top_p,
                           top_k=args.top_k, seed=args.seed, which=args.checkpoint, metrics=names)
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def cmd_sweep_temperature(args: argparse.Namespace) -> int:
    from langan.eval.sweep import parse_temperatures, sweep_temperature, write_outputs

    temperatures = parse_temperatures(args.temperatures)

    def show(row: dict) -> None:
        print(f"{row['run']:<32} T={row['temperature']:<5g} {row['quality_metric']} {row['quality']:.4f}  "
              f"{row['diversity_metric']} {row['diversity']:.4f}", file=sys.stderr)

    rows = sweep_temperature(args.run_dirs, temperatures, n=args.n, seed=args.seed, progress=show, pair=args.pair)
    csv_path = write_outputs(rows, Path(args.out))
    print(f"wrote {csv_path} and {args.out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from langan.report import write_report

    png, page = write_report(args.run_dirs, Path(args.out))
    print(f"wrote {png} and {page}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    words = args.args
    plotting = [f"--{k}" for k in ("x", "y", "hue", "out") if getattr(args, k)]
    if words[0] == "show" and len(words) == 2 and not plotting:
        from langan.sweeps.report import show

        print(show(words[1], args.runs_dir, args.storage))
        return 0
    if words[0] == "plot" and len(words) == 2 and args.x and args.y:
        from langan.sweeps.report import plot

        png, csv_path, _ = plot(words[1], args.x, args.y, args.hue, Path(args.out or f"{words[1]}.png"),
                                args.runs_dir, args.storage)
        print(f"wrote {png} and {csv_path}")
        return 0
    if words[0] in ("show", "plot") or len(words) != 1 or plotting or args.storage:
        raise LanganError("usage: langan sweep SWEEP.yaml [--seeds S] [--jobs J] [--n-trials N] | langan sweep "
                          "show NAME | langan sweep plot NAME --x KEY --y METRIC [--hue KEY] [--out F.png]")
    from langan.sweeps.spec import load_spec
    from langan.sweeps.worker import run_sweep

    spec = load_spec(words[0], args.seeds)
    print("\n".join(run_sweep(spec, args.runs_dir, jobs=args.jobs, max_trials=args.n_trials, quiet=args.quiet)))
    return 0


# ----------------------------------------------------------------------------- runs / config


def cmd_runs(args: argparse.Namespace) -> int:
    from langan.runs import records

    if args.args and args.args[0] == "diff":
        if len(args.args) != 3:
            raise LanganError("usage: langan runs diff RUN_A RUN_B")
        print(records.format_diff(records.diff_runs(args.args[1], args.args[2])))
        return 0
    if args.args and args.args[0] == "compare":
        if len(args.args) < 2:
            raise LanganError("usage: langan runs compare RUN_OR_GROUP... [--metric M]")
        print("\n".join(records.compare_groups(args.args[1:], args.metric)))
        return 0
    if len(args.args) > 1:
        raise LanganError("usage: langan runs [RUNS_DIR] | langan runs diff RUN_A RUN_B | langan runs compare ...")
    print(records.format_table(records.list_runs(args.args[0] if args.args else "runs")))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from langan.config import describe, flatten, load_config, to_dict

    values = flatten(to_dict(load_config(args.config, args.overrides)))
    rows = describe()
    width = max(len(k) for k, _, _ in rows)
    for key, _, doc in rows:
        print(f"{key:<{width}}  {json.dumps(values[key]):<14}  {doc}")
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval, "runs": cmd_runs, "config": cmd_config,
            "sweep-temperature": cmd_sweep_temperature, "report": cmd_report, "sweep": cmd_sweep}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    args.argv = ["langan", *argv]  # recorded in meta.json as the command line
    # overrides may also come after options: `langan train C.yaml --name x train.steps=5`
    stray = [a for a in extra if a.startswith("-") or "=" not in a or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except LanganError as err:
        print(f"langan {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"langan {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `langan sample ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
