"""Benchmark: the synthetic-oracle table (SeqGAN's oracle; RelGAN, ICLR 2019, Table 1), with langan's four presets.

    python benchmarks/oracle_table.py train --presets mle seqgan relgan relgan100 reinforce --seeds 0,1,2
    python benchmarks/oracle_table.py report --seeds 0,1,2

`train` runs configs/oracle-<preset>.yaml once per seed (train.seed) into runs/oracle/oracle-<preset>-s<seed>. The
MLE run of a seed is the pretraining of that seed's GANs: they start from its generator (train.init_from, with
train.pretrain_steps=0) instead of repeating the same 12,000 MLE steps; --own-pretraining runs each GAN preset as it
is, pretraining included. A finished run is kept (--overwrite trains it again). Wall times go to
runs/oracle/times.json.

`report` evaluates every run with 10,000 samples at temperature 1 (`langan eval --n 10000`): NLL_oracle (the
oracle's NLL of the samples: quality) and NLL_gen (the generator's NLL of the 1,000 held-out oracle sequences,
EOS not counted: coverage) and the share of distinct samples (a collapsed generator scores a low NLL_oracle
with few distinct rows), prints the Markdown table (mean ± standard deviation over the seeds, beside the
published rows), and draws benchmarks/figures/oracle_curves.png (NLL_oracle over training, from each run's
evaluations of 2,000 samples) and, with `langan sweep-temperature`, benchmarks/figures/oracle_frontier.png (the
(NLL_oracle, NLL_gen) frontier over temperatures 0.6-1.4 of the seed-0 run of each preset).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from langan_cli import REPO, langan, table_parser

RUNS = REPO / "runs" / "oracle"
FIGURES = REPO / "benchmarks" / "figures"
PRESETS = ("mle", "seqgan", "relgan", "relgan100", "reinforce")
GANS = ("seqgan", "relgan", "relgan100", "reinforce")
LABELS = {"mle": "MLE", "seqgan": "SeqGAN", "relgan": "RelGAN (Gumbel-softmax, beta 1)",
          "relgan100": "RelGAN, beta rising to 100", "reinforce": "REINFORCE (per step)"}
TABLE_METRICS = ("nll_oracle", "nll_gen", "unique")  # the table's columns, in order
# a row that is a preset with other settings: (its config, overrides)
VARIANTS = {"relgan100": ("relgan", ["gumbel.beta_max=100"])}
# NLL_oracle with SeqGAN's oracle, as quoted by RelGAN (Nie et al., ICLR 2019, Table 1); MetaEx-GAN later 6.321
PUBLISHED = [("real data", "5.750"), ("MLE", "9.038"), ("SeqGAN", "8.736"), ("RankGAN", "8.247"),
             ("LeakGAN", "7.038"), ("RelGAN(100)", "6.680 ± 0.343")]


def run_name(preset: str, seed: int) -> str:
    return f"oracle-{preset}-s{seed}"


def finished(name: str) -> bool:
    meta = RUNS / name / "meta.json"
    return meta.is_file() and json.loads(meta.read_text()).get("status") == "finished"


def train(args: argparse.Namespace) -> None:
    times_path = RUNS / "times.json"
    RUNS.mkdir(parents=True, exist_ok=True)
    times = json.loads(times_path.read_text()) if times_path.is_file() else {}
    order = [p for p in PRESETS if p in args.presets]
    if not args.own_pretraining and set(order) & set(GANS) and "mle" not in order:
        order.insert(0, "mle")  # the GANs start from it; kept if already finished
    for seed in args.seeds:
        for preset in order:
            name = run_name(preset, seed)
            if finished(name) and not (args.overwrite and preset in args.presets):  # an implied MLE run is kept
                print(f"{name}: finished before, kept", file=sys.stderr)
                continue
            extra = [f"train.seed={seed}"]
            if preset in GANS and not args.own_pretraining:
                extra += [f"train.init_from={RUNS / run_name('mle', seed)}", "train.init_checkpoint=latest",
                          "train.pretrain_steps=0"]
            print(f"{name}: training ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            config, variant = VARIANTS.get(preset, (preset, []))
            langan("train", f"configs/oracle-{config}.yaml", *variant, *extra, *args.overrides, "--runs-dir", str(RUNS),
                   "--name", name, "--overwrite", "--quiet")
            times[name] = round(time.perf_counter() - t0, 1)
            times_path.write_text(json.dumps(times, indent=2) + "\n")
            print(f"{name}: {times[name]:.0f} s", file=sys.stderr, flush=True)


def evaluate(name: str, n: int, checkpoint: str = "auto") -> dict:
    out = langan("eval", str(RUNS / name), "--n", str(n), "--metrics", ",".join(TABLE_METRICS), "--json",
                 "--checkpoint", checkpoint)
    return json.loads(out.stdout)


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f} (1 seed)"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def metric_cells(evals: dict[str, dict]) -> str:
    """The table cells of the evaluated metrics, each mean ± std over the runs in `evals`."""
    return " | ".join(mean_std([e[m] for e in evals.values()]) for m in TABLE_METRICS)


def report(args: argparse.Namespace) -> None:
    times_path = RUNS / "times.json"
    times = json.loads(times_path.read_text()) if times_path.is_file() else {}
    rows, results = [], {}
    for preset in PRESETS:
        names = [run_name(preset, s) for s in args.seeds if finished(run_name(preset, s))]
        if not names:
            continue
        print(f"{preset}: evaluating {len(names)} runs with {args.n} samples ...", file=sys.stderr, flush=True)
        # MLE: its last checkpoint, the GANs' starting point and the papers' fixed-epoch convention; its
        # best-valid-NLL checkpoint (early stopping) gets a row of its own
        evals = {name: evaluate(name, args.n, "latest") for name in names}
        results[preset] = evals
        extra = ""
        if preset == "mle":
            best = results["mle-best"] = {name: evaluate(name, args.n, "best") for name in names}
            extra = f"\n| langan MLE, its best valid NLL checkpoint | {metric_cells(best)} | - | - | {len(names)} |"
        pre = [e["compare"]["pretrained"]["nll_oracle"] for e in evals.values() if "compare" in e]
        # wall times of runs made while nothing else ran (a run timed beside other work is left out of times.json)
        own = [times[n] for n in names if n in times]
        mle = [times[m] for m in (run_name("mle", s) for s in args.seeds) if m in times]
        wall = f"{statistics.mean(own) / 60:.1f}" if own else "-"
        pretraining = "" if preset == "mle" or not mle else f" + {statistics.mean(mle) / 60:.1f} (MLE run)"
        rows.append(f"| langan {LABELS[preset]} | {metric_cells(evals)} | {mean_std(pre)} | "
                    f"{wall}{pretraining} | {len(names)} |{extra}")
    print(f"# {platform.machine()} CPU, python {platform.python_version()}; {args.n} samples at temperature 1 per run")
    print("| generator | NLL_oracle (lower: better samples) | NLL_gen (lower: better coverage) | unique samples | "
          "its pretrained G's NLL_oracle | wall min per run | seeds |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    for label, value in PUBLISHED:
        print(f"| published: {label} (RelGAN Table 1) | {value} | - | - | - | - | - |")
    (RUNS / "table.json").write_text(json.dumps(results, indent=2) + "\n")
    plot_curves([p for p in PRESETS if p in results], args.seeds)
    if args.frontier:
        frontier = [str(RUNS / run_name(p, args.seeds[0])) for p in PRESETS if finished(run_name(p, args.seeds[0]))]
        langan("sweep-temperature", *frontier, "--pair", "oracle", "--n", str(args.frontier_n),
               "--out", str(FIGURES / "oracle_frontier.png"))
        add_cold_points(FIGURES / "oracle_frontier.png", str(RUNS / run_name("mle", args.seeds[0])), args.frontier_n)
        print(f"frontier: {FIGURES / 'oracle_frontier.png'} (+ .csv)", file=sys.stderr)


def add_cold_points(png: Path, mle_run: str, n: int) -> None:
    """The early-stopped MLE run's points at temperatures 0.3-0.5 added to the frontier's CSV and figure: where a
    temperature-tuned MLE reaches the NLL_oracle of the collapsed GANs."""
    from langan.eval.sweep import sweep_temperature, write_outputs

    with png.with_suffix(".csv").open() as f:
        rows = [{k: v if k in ("run", "quality_metric", "diversity_metric") else float(v) for k, v in row.items()}
                for row in csv.DictReader(f)]
    rows += sweep_temperature([mle_run], [0.3, 0.4, 0.5], n=n, pair="oracle")
    write_outputs(rows, png)


def plot_curves(presets: list[str], seeds: list[int]) -> None:
    """NLL_oracle of the evaluation samples over training steps: MLE, SeqGAN (its rounds) and the step-wise GANs
    (adversarial steps) in three panels; one colour per preset, one line style per seed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panel = {"mle": 0, "seqgan": 1}
    colours = dict(zip(PRESETS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    for preset in presets:
        for seed, style in zip(seeds, ("-", "--", ":", "-."), strict=False):
            path = RUNS / run_name(preset, seed) / "metrics.jsonl"
            if not path.is_file():
                continue
            points = [json.loads(line) for line in path.read_text().splitlines()]
            points = [(p["step"], p["eval/nll_oracle"]) for p in points if "eval/nll_oracle" in p]
            axes[panel.get(preset, 2)].plot(*zip(*points, strict=True), style, color=colours[preset], marker=".",
                                             label=f"{preset} s{seed}")
    axes[0].set(title="MLE (the GANs' pretraining)", xlabel="step", ylabel="NLL_oracle of 2,000 samples")
    axes[1].set(title="SeqGAN from its seed's MLE run", xlabel="round (the first 10: D pretraining)")
    axes[2].set(title="Gumbel and REINFORCE GANs from their seed's MLE run", xlabel="adversarial step")
    for ax in axes:
        ax.axhline(5.75, color="grey", linestyle=":", label="real data 5.75")
        ax.legend(fontsize=7, ncol=2)
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(FIGURES / "oracle_curves.png", dpi=110)
    print(f"curves: {FIGURES / 'oracle_curves.png'}", file=sys.stderr)


def main() -> None:
    parser, _, r = table_parser(__doc__, PRESETS)
    r.add_argument("--no-frontier", dest="frontier", action="store_false", help="skip the temperature sweep")
    r.add_argument("--frontier-n", type=int, default=2000, help="samples per temperature in the sweep")
    args = parser.parse_args()
    train(args) if args.command == "train" else report(args)


if __name__ == "__main__":
    main()
