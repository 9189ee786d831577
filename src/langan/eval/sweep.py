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
from langan.fileio import write_csv_beside
from langan.runs.loading import load_run

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


def sweep_temperature(run_dirs: list[str], temperatures: list[float], n: int = 1000, seed: int = 0,
                      progress: Any = None, pair: str = "auto") -> list[dict[str, Any]]:
    """One row per (run, generator, temperature): the quality and the diversity figure. A GAN run adds a
    curve for its pretrained generator, so MLE and adversarial training meet on one frontier."""
    runs = [load_run(r) for r in run_dirs]
    kinds = {"oracle" if r.data.oracle is not None else "text" for r in runs}
    if len(kinds) > 1:
        raise LanganError("sweep-temperature: mix of oracle and text runs; their figures are not comparable")
    quality, diversity = PAIRS[kinds.pop() if pair == "auto" else pair]
    rows = []
    for loaded in runs:
        for t in temperatures:
            settings = {"n": n, "temperature": t, "top_p": 1.0, "top_k": 0, "seed": seed}
            results = evaluate_loaded(loaded, [quality, diversity], settings)
            label = results.get("generator")
            per_generator = {loaded.run.name + (f" ({label})" if label else ""): results}
            per_generator |= {f"{loaded.run.name} ({k})": v for k, v in results.get("compare", {}).items()}
            for name, values in per_generator.items():
                rows.append({"run": name, "temperature": t, "quality_metric": quality, "quality": values[quality],
                             "diversity_metric": diversity, "diversity": values[diversity]})
                if progress is not None:
                    progress(rows[-1])
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """One curve per run: diversity figure on x, quality on y, each point labelled with its temperature."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LanganError("the PNG needs matplotlib: pip install 'langan[plot]' (the CSV was written)") from None
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    for run in dict.fromkeys(r["run"] for r in rows):
        points = [r for r in rows if r["run"] == run]
        xs, ys = [r["diversity"] for r in points], [r["quality"] for r in points]
        ax.plot(xs, ys, marker="o", label=run)
        for r in points:
            ax.annotate(f"{r['temperature']:g}", (r["diversity"], r["quality"]), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel(rows[0]["diversity_metric"] + ("  (lower = more diverse)" if "self_bleu" in
                                                  rows[0]["diversity_metric"] else ""))
    ax.set_ylabel(rows[0]["quality_metric"])
    ax.set_title("quality-diversity over sampling temperature")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_outputs(rows: list[dict[str, Any]], png: Path) -> Path:
    """The CSV next to the PNG (same stem); returns the CSV path."""
    csv_path = write_csv_beside(png, rows)
    plot(rows, png)
    return csv_path
