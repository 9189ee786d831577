"""`langan report RUN_DIR...`: training curves of one or several runs overlaid, as a PNG and a small HTML page.

One panel per quantity that any of the runs logged (in this order): generator loss, reward, discriminator loss
and accuracy, entropy, KL to the pretrained generator, validation NLL, sample metrics, temperature, learning
rates. Needs matplotlib (`pip install 'langan[plot]'`).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from langan.errors import LanganError
from langan.eval.plotting import pyplot
from langan.fileio import atomic_write_text
from langan.runs.rundir import RunDir

PANELS = [  # (title, metric keys drawn in the panel)
    ("generator loss", ["gen/loss"]), ("reward", ["reward/mean"]), ("discriminator loss", ["disc/loss"]),
    ("discriminator accuracy", ["disc/acc_real", "disc/acc_fake"]), ("entropy", ["gen/entropy"]),
    ("KL to pretrained", ["gen/kl"]), ("validation NLL", ["eval/nll"]),
    ("samples", ["eval/unique", "eval/novelty"]), ("LM scores", ["eval/lm_score", "eval/reverse_lm_score"]),
    ("real vs generated", ["eval/c2st_acc", "eval/disc_acc"]), ("temperature", ["gen/tau", "train/tau"]),
    ("learning rates", ["gen/lr", "disc/lr"]),
]


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return [p[0] for p in points], [p[1] for p in points]


def write_report(run_dirs: list[str], out: Path, labels: list[str] | None = None) -> tuple[Path, Path]:
    """Writes OUT (PNG) and OUT with .html; returns both paths. `labels` name the runs (default: their names)."""
    plt = pyplot()
    opened = [RunDir.open(d) for d in run_dirs]
    runs = {label: run.read_metrics() for label, run in zip(labels or [r.name for r in opened], opened, strict=True)}
    panels = [(t, keys) for t, keys in PANELS if any(_series(rows, k)[0] for rows in runs.values() for k in keys)]
    if not panels:
        raise LanganError("none of these runs has logged metrics yet (metrics.jsonl is empty)")
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), dpi=110, squeeze=False)
    for ax, (title, keys) in zip(axes.flat, panels, strict=False):
        for name, rows in runs.items():
            for key in keys:
                steps, values = _series(rows, key)
                if steps:
                    label = name if len(keys) == 1 else f"{name} {key}"
                    ax.plot(steps, values, label=label, linewidth=1.2, marker="o" if len(steps) < 30 else None,
                            markersize=3)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    except OSError as err:
        raise LanganError(f"cannot write the report '{out}': {err.strerror or err}") from None
    finally:
        plt.close(fig)
    page = out.with_suffix(".html")
    names = ", ".join(html.escape(n) for n in runs)
    atomic_write_text(page, f"<!doctype html><meta charset='utf-8'><title>langan report: {names}</title>"
                            f"<h1>Training curves: {names}</h1><img src='{html.escape(out.name)}' "
                            f"style='max-width:100%'>\n")
    return out, page
