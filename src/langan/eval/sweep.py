"""`langan sweep-temperature`: the quality-diversity frontier of several runs over sampling temperatures.

A GAN that "beats" MLE at temperature 1 may only have traded diversity for quality, which an MLE model
does too when sampled colder (Caccia et al. 2020). So each run is scored at every temperature with one
quality and one diversity figure, and the curves are compared as a whole:
  text:    BLEU-4 against the test split (quality, higher is better) vs self-BLEU-4 (lower = more diverse);
  oracle:  nll_oracle (quality, lower is better) vs nll_gen (held-out NLL of the tempered model);
  --pair lm: lm_score vs reverse_lm_score (both lower is better; each point trains two small LMs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langan.errors import LanganError
from langan.eval.evaluate import evaluate_loaded
from langan.eval.plotting import pyplot
from langan.fileio import write_csv_beside
from langan.runs.loading import LoadedRun, load_run

PAIRS = {"text": ("bleu4", "self_bleu4"), "oracle": ("nll_oracle", "nll_gen"), "lm": ("lm_score", "reverse_lm_score")}


def parse_temperatures(spec: str) -> list[float]:
    """'0.6:1.4:0.1' (start:stop:step, stop included) or '0.7,1.0,1.3' -> temperatures."""
    try:
        if ":" in spec:
            start, stop, step = (float(x) for x in spec.split(":"))
            if step <= 0 or start <= 0 or stop < start:
                raise ValueError
            count = round((stop - start) / step) + 1
            values = [round(start + i * step, 6) for i in range(count)]
        else:
            values = [float(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise LanganError(f"--temperatures '{spec}': use start:stop:step (e.g. 0.6:1.4:0.1) or a list "
                          "(0.7,1.0,1.3) of positive numbers") from None
    if not values or any(v <= 0 for v in values):
        raise LanganError(f"--temperatures '{spec}': temperatures must be positive")
    return values


def pair_for(runs: list[LoadedRun], pair: str = "auto") -> tuple[str, str]:
    """(quality, diversity) metric names: `pair`, or for auto the text pair / the oracle pair by the runs' data."""
    kinds = {"oracle" if r.data.oracle is not None else "text" for r in runs}
    if len(kinds) > 1:
        raise LanganError("mix of oracle and text runs: their quality-diversity figures are not comparable")
    return PAIRS[kinds.pop() if pair == "auto" else pair]


def sweep_temperature(run_dirs: list[str], temperatures: list[float], n: int = 1000, seed: int = 0,
                      progress: Any = None, pair: str = "auto") -> list[dict[str, Any]]:
    """One row per (run, generator, temperature): the quality and the diversity figure. A GAN run adds a
    curve for its pretrained generator, so MLE and adversarial training meet on one frontier."""
    runs = [load_run(r) for r in run_dirs]
    metrics = pair_for(runs, pair)
    rows, pretrained_seen = [], set()
    for loaded in runs:
        # GANs started from one run's checkpoint share their pretrained generator: its curve is drawn once
        source = pretrained_source(loaded)
        others = source is None or source not in pretrained_seen
        pretrained_seen.add(source)
        gan = loaded.algorithm.generators_to_compare()  # a GAN's curves are named by generator either way
        label = loaded.run.name if others or not gan else f"{loaded.run.name} ({loaded.algorithm.generator_label})"
        rows += sweep_loaded(loaded, label, temperatures, metrics, n, seed, others, progress)
    return rows


def pretrained_source(loaded: LoadedRun) -> tuple[str, str] | None:
    """(run directory, checkpoint) a GAN's pretrained generator was copied from (train.init_from with no
    pretraining of its own), or None when the run pretrained itself."""
    t = loaded.cfg.train
    if not t.init_from or t.pretrain_steps:
        return None
    return str(Path(t.init_from).resolve()), t.init_checkpoint


def sweep_loaded(loaded: LoadedRun, label: str, temperatures: list[float], metrics: tuple[str, str], n: int,
                 seed: int, others: bool = True, progress: Any = None) -> list[dict[str, Any]]:
    """Rows of one loaded run (named `label`) over temperatures; with `others`, its pretrained generator too."""
    quality, diversity = metrics
    rows = []
    for t in temperatures:
        settings = {"n": n, "temperature": t, "top_p": 1.0, "top_k": 0, "seed": seed}
        results = evaluate_loaded(loaded, [quality, diversity], settings, others)
        own = results.get("generator")
        per_generator = {label + (f" ({own})" if own and others else ""): results}
        if others:
            per_generator |= {f"{label} ({k})": v for k, v in results.get("compare", {}).items()}
        for name, values in per_generator.items():
            rows.append({"run": name, "temperature": t, "quality_metric": quality, "quality": values[quality],
                         "diversity_metric": diversity, "diversity": values[diversity]})
            if progress is not None:
                progress(rows[-1])
    return rows


def draw_curves(ax: Any, rows: list[dict[str, Any]], styles: dict[str, dict] | None = None) -> None:
    """One curve per row label on a matplotlib axis: diversity on x, quality on y, points labelled with T."""
    for run in dict.fromkeys(r["run"] for r in rows):
        points = [r for r in rows if r["run"] == run]
        xs, ys = [r["diversity"] for r in points], [r["quality"] for r in points]
        ax.plot(xs, ys, marker="o", markersize=3, label=run, **(styles or {}).get(run, {}))
        for r in points:
            ax.annotate(f"{r['temperature']:g}", (r["diversity"], r["quality"]), fontsize=6,
                        textcoords="offset points", xytext=(3, 3))
    metric = rows[0]["diversity_metric"]
    ax.set_xlabel(metric + ("  (lower = more diverse)" if "self_bleu" in metric else ""))
    ax.set_ylabel(rows[0]["quality_metric"])
    ax.grid(alpha=0.3)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """One curve per run: diversity figure on x, quality on y, each point labelled with its temperature."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    draw_curves(ax, rows)
    ax.set_title("quality-diversity over sampling temperature")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_outputs(rows: list[dict[str, Any]], png: Path) -> Path:
    """The CSV next to the PNG (same stem); returns the CSV path."""
    csv_path = write_csv_beside(png, rows)
    try:
        plot(rows, png)
    except LanganError as err:
        raise LanganError(f"{err} (the CSV was written: {csv_path})") from None
    return csv_path
