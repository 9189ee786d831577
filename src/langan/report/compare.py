"""`langan compare GROUP_OR_RUN...`: a table and a quality-diversity frontier of several models, as one
self-contained HTML page (figures embedded) that can be sent to a colleague.

Each argument is one entry (a row): a run, or a group of runs that differ only in their seed (`langan train
--seeds`, the directory holding seed-0/, seed-1/, ...). Every run is evaluated once with the same settings
(`langan eval`'s metrics, written to its eval.json and read back next time if nothing changed); an entry's cell
is the mean ± sample standard deviation over its runs. The first run of each entry is swept over sampling
temperatures, so every model is judged against the baseline's whole temperature curve (Caccia et al. 2020):
each entry's T = 1 point (mean over its seeds) is said to lie beyond the baseline's frontier, on it or inside
it, with its seed spread as the margin. Published rows (a CSV) stand beside the measured ones with their source.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import itertools
import json
import math
import platform
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from langan.errors import LanganError
from langan.eval.evaluate import check_metrics, record_evaluation, recorded_evaluation
from langan.eval.plotting import pyplot
from langan.eval.samples import draw_samples, one_line
from langan.eval.sweep import PAIRS, draw_curves, pair_for, sweep_loaded
from langan.fileio import atomic_write_text
from langan.report.curves import write_report
from langan.runs.loading import LoadedRun, load_run
from langan.runs.records import group_members, read_config, summarize
from langan.runs.rundir import RunDir

TEXT_METRICS = ["nll", *[f"bleu{n}" for n in range(2, 6)], *[f"self_bleu{n}" for n in range(2, 6)], "unique",
                "novelty", "eos_rate"]
ORACLE_METRICS = ["nll_oracle", "nll_gen", "unique", "novelty"]
LOWER_IS_BETTER_QUALITY = {"nll_oracle", "lm_score"}  # BLEU: higher is better; every diversity figure: lower


@dataclass
class Entry:
    """One row: a run or a seed group; `evals[i]` are run i's results at T = 1."""

    label: str
    runs: list[RunDir]
    evals: list[dict[str, Any]] = field(default_factory=list)
    samples: list[list[str]] = field(default_factory=list)
    frontier: list[dict[str, Any]] = field(default_factory=list)
    own_pretraining: bool = True  # False: a GAN whose pretrained generator is another entry's run (init_from)

    @property
    def algorithm(self) -> str:
        return str(self.runs[0].read_meta().get("algorithm", "?"))

    def own_curve(self) -> str:
        """The frontier label of the entry's trained generator (a GAN's pretrained one has another)."""
        return self.frontier[0]["run"] if self.frontier else self.label

    def values(self, metric: str, generator: str | None = None) -> list[float]:
        """The metric over the entry's runs (of its `generator` under "compare", e.g. pretrained)."""
        out = []
        for results in self.evals:
            source = results.get("compare", {}).get(generator, {}) if generator else results
            value = source.get(metric)
            if isinstance(value, (int, float)) and math.isfinite(value):
                out.append(float(value))
        return out

    def paired(self, diversity: str, quality: str) -> tuple[list[float], list[float]]:
        """The two metrics over the runs where both are finite (so that they pair up by seed)."""
        pairs = [(r.get(diversity), r.get(quality)) for r in self.evals]
        pairs = [(float(x), float(y)) for x, y in pairs if all(isinstance(v, (int, float)) and math.isfinite(v)
                                                               for v in (x, y))]
        return [x for x, _ in pairs], [y for _, y in pairs]

    def minutes(self) -> list[float]:
        """Wall minutes from start to finish of each run that ran without a resume."""
        out = []
        for run in self.runs:
            meta = run.read_meta()
            if meta.get("finished") and meta.get("started") and not meta.get("resumes"):
                fmt = "%Y-%m-%dT%H:%M:%S%z"
                span = datetime.strptime(meta["finished"], fmt) - datetime.strptime(meta["started"], fmt)
                out.append(span.total_seconds() / 60)
        return out


@dataclass
class Settings:
    n: int = 10000
    metrics: list[str] | None = None  # None: TEXT_METRICS or ORACLE_METRICS by the data
    temperatures: list[float] = field(default_factory=lambda: [0.7, 0.8, 0.9, 1.0, 1.1, 1.2])
    frontier_n: int = 0  # 0: n
    pairs: list[str] = field(default_factory=lambda: ["auto"])
    seed: int = 0
    checkpoint: str = "auto"
    num_samples: int = 8
    baseline: str = ""  # entry label; empty: the first MLE entry
    published: str = ""  # CSV: label, source, then metric columns
    title: str = "langan compare"


def entries_of(paths: list[str]) -> list[Entry]:
    """One Entry per argument: a run directory or a group of runs; labels are the directories' names."""
    resolved = [Path(p).resolve() for p in paths]
    if len(set(resolved)) < len(resolved):
        raise LanganError("the same run or group is given twice; give each once")
    entries = [Entry(Path(p).resolve().name, group_members(p)) for p in paths]
    labels = [e.label for e in entries]
    if len(set(labels)) < len(labels):  # e.g. two groups both called seed-0's parent: use the given paths
        for entry, path in zip(entries, paths, strict=True):
            entry.label = path.rstrip("/")
    return entries


def evaluate_entries(entries: list[Entry], settings: Settings, progress: Any = None) -> None:
    """Fills each entry's evals (reusing a run's eval.json made the same way), samples and frontier rows."""
    sample_settings = {"n": settings.n, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "seed": settings.seed}
    kinds = set()
    for entry in entries:
        entry.own_pretraining = not started_from_entry(entry, entries)  # else its pretrained G is that entry's
        for i, run in enumerate(entry.runs):
            loaded = load_run(run.path, settings.checkpoint)
            kinds.add(loaded.data.oracle is not None)
            if len(kinds) > 1:
                raise LanganError(f"{run.path}: oracle and text runs mixed; their figures are not comparable")
            metrics = table_metrics(settings, loaded)
            check_metrics(metrics)
            results = recorded_evaluation(loaded, metrics, sample_settings, entry.own_pretraining)
            if results is None:
                _say(progress, f"{entry.label}: evaluating {run.path} with {settings.n:,} samples")
                results = record_evaluation(loaded, metrics, sample_settings, entry.own_pretraining)
            entry.evals.append(results)
            entry.samples.append(_few_samples(loaded, settings))
            if i == 0:
                entry.frontier = _sweep(loaded, entry, settings, progress)


def table_metrics(settings: Settings, loaded: LoadedRun) -> list[str]:
    """--metrics (or the default set for the run's data) plus both figures of every frontier pair, so that each
    entry's T = 1 point can be placed on the frontier."""
    chosen = settings.metrics or (ORACLE_METRICS if loaded.data.oracle is not None else TEXT_METRICS)
    has_disc = loaded.algorithm.discriminator() is not None  # a GAN: its D's accuracy on test text vs samples
    return list(dict.fromkeys(chosen + [m for pair in settings.pairs for m in pair_for([loaded], pair)]
                              + (["disc_acc"] if has_disc else [])))


def _few_samples(loaded: LoadedRun, settings: Settings) -> list[str]:
    drawn = draw_samples(loaded.algorithm.generator, loaded.data.tokenizer, settings.num_samples,
                         loaded.data.max_length, seed=settings.seed + 1, cond=loaded.algorithm.cond_for(
                             settings.num_samples), allow_eos=loaded.data.oracle is None)
    return [one_line(t) for t in drawn.texts]


def started_from_entry(entry: Entry, entries: list[Entry]) -> bool:
    """Whether the entry's first run started from a checkpoint of another entry's run (train.init_from)."""
    first = entry.runs[0]
    init = str(first.read_meta().get("init_from") or "")
    pretrained_more = (read_config(first).get("train", {}).get("pretrain_steps") or 0) > 0
    if not init or pretrained_more:
        return False
    return any(Path(init).resolve().is_relative_to(r.path.resolve()) for e in entries for r in e.runs if e is not entry)


def _sweep(loaded: LoadedRun, entry: Entry, settings: Settings, progress: Any) -> list[dict]:
    """Frontier rows of an entry's first run for every pair; its pretrained generator's curve is left out when
    that generator is another entry's run (a GAN started from a compared MLE run)."""
    rows = []
    for pair in settings.pairs:
        metrics = pair_for([loaded], pair)
        _say(progress, f"{entry.label}: {metrics[0]} / {metrics[1]} over temperatures "
                       f"{', '.join(f'{t:g}' for t in settings.temperatures)}")
        rows += sweep_loaded(loaded, entry.label, settings.temperatures, metrics, settings.frontier_n or settings.n,
                             settings.seed, others=entry.own_pretraining)
    return rows


def _say(progress: Any, text: str) -> None:
    if progress is not None:
        progress(text)


# ----------------------------------------------------------------------------- the frontier verdict

def curve_at(curve: list[tuple[float, float]], x: float) -> tuple[float, float] | None:
    """(quality, slope) of a piecewise-linear curve [(diversity, quality)] at diversity x; None outside it."""
    points = sorted(curve)
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 <= x <= x1:
            slope = 0.0 if x1 == x0 else (y1 - y0) / (x1 - x0)
            return y0 + slope * (x - x0), slope
    return None


def frontier_position(point: tuple[list[float], list[float]], curve: list[tuple[float, float]],
                      curve_spread: float, higher_is_better: bool) -> str:
    """Where a model's point (its seeds' diversity and quality values) lies against a temperature curve:
    'beyond' (better quality at its diversity than the curve by more than the spread), 'inside', or 'on'.

    The margin is the seed standard deviation of the point's quality, of its diversity times the curve's
    slope, and of the baseline's quality (`curve_spread`), added in quadrature."""
    xs, ys = point
    x, y = sum(xs) / len(xs), sum(ys) / len(ys)
    found = curve_at(curve, x)
    if not curve:
        return "no baseline curve to compare with"
    if found is None:
        span = sorted(p[0] for p in curve)
        return f"outside the swept range of the baseline's curve (diversity {x:.3f}, curve {span[0]:.3f}-" \
               f"{span[-1]:.3f})"
    at, slope = found
    gap = (y - at) if higher_is_better else (at - y)
    margin = math.sqrt(spread(ys) ** 2 + (slope * spread(xs)) ** 2 + curve_spread ** 2)
    if margin == 0:  # one seed on each side: no yardstick for a difference
        return f"undetermined (one seed on each side; {'+' if gap >= 0 else '-'}{abs(gap):.3f} in quality at its " \
               "diversity)"
    where = "beyond" if gap > margin else "inside" if gap < -margin else "on"
    seeds = f"{len(ys)} seeds" if len(ys) > 1 else "1 seed"
    return f"{where} ({'+' if gap >= 0 else '-'}{abs(gap):.3f} in quality at its diversity; margin {margin:.3f}, " \
           f"{seeds})"


def spread(values: list[float]) -> float:
    """Sample standard deviation; 0 for fewer than two values."""
    return summarize(values)["std"] if len(values) > 1 else 0.0


def verdicts(entries: list[Entry], baseline: Entry) -> list[tuple[str, str, str]]:
    """(entry, pair, verdict) for every non-baseline entry and every swept pair."""
    out = []
    pairs = dict.fromkeys((r["quality_metric"], r["diversity_metric"]) for r in baseline.frontier)
    for quality, diversity in pairs:
        curve = [(r["diversity"], r["quality"]) for r in baseline.frontier
                 if r["run"] == baseline.own_curve() and r["quality_metric"] == quality]
        baseline_spread = spread(baseline.values(quality))
        for entry in entries:
            xs, ys = entry.paired(diversity, quality)
            if entry is baseline or not ys:
                continue
            where = frontier_position((xs, ys), curve, baseline_spread, quality not in LOWER_IS_BETTER_QUALITY)
            out.append((entry.label, f"{quality} vs {diversity}", where))
    return out


def pick_baseline(entries: list[Entry], label: str) -> Entry | None:
    if label:
        found = [e for e in entries if e.label == label]
        if not found:
            raise LanganError(f"--baseline '{label}' is none of the entries: {', '.join(e.label for e in entries)}")
        return found[0]
    return next((e for e in entries if e.algorithm == "mle"), None)


# ----------------------------------------------------------------------------- the table

def cell(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    s = summarize(values)
    return f"{s['mean']:.3f} ± {s['std']:.3f}"


def table_rows(entries: list[Entry], metrics: list[str], published: list[dict[str, str]]
               ) -> tuple[list[str], list[list[str]]]:
    """Header and rows: each entry (and, for a GAN not started from another entry, its pretrained generator),
    then the published rows."""
    header = ["model", "seeds", *metrics, "wall min / run"]
    rows = []
    for entry in entries:
        minutes = entry.minutes()
        rows.append([entry.label, str(len(entry.runs)), *(cell(entry.values(m)) for m in metrics),
                     cell(minutes) if minutes else "-"])
        others = dict.fromkeys(k for r in entry.evals for k in r.get("compare", {}))
        for other in others if entry.own_pretraining else ():  # else another entry's row is that generator
            rows.append([f"{entry.label} ({other})", str(len(entry.runs)),
                         *(cell(entry.values(m, other)) for m in metrics), "-"])
    for row in published:
        rows.append([f"published: {row.get('label', '?')} ({row.get('source', '?')})", "-",
                     *(row.get(m) or "-" for m in metrics), "-"])
    return header, rows


def read_published(path: str) -> list[dict[str, str]]:
    """Rows of a CSV with columns label, source and metric names (e.g. bleu4); empty cells are unknown."""
    if not path:
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as err:
        raise LanganError(f"--published '{path}': {err.strerror or err}") from None
    if rows and "label" not in rows[0]:
        raise LanganError(f"--published '{path}': the CSV needs a header with a 'label' column (and 'source', "
                          "then metric names such as bleu4)")
    return rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# ----------------------------------------------------------------------------- figures and the page

def frontier_figures(entries: list[Entry]) -> dict[str, bytes]:
    """One PNG per swept pair: each entry's curve (its pretrained generator's dashed) and, as a point with
    error bars, its seeds' mean ± std at T = 1 from the table's evaluation."""
    plt = pyplot()
    pairs = dict.fromkeys((r["quality_metric"], r["diversity_metric"]) for e in entries for r in e.frontier)
    figures = {}
    for quality, diversity in pairs:
        fig, ax = plt.subplots(figsize=(7.5, 5.4), dpi=110)
        for i, entry in enumerate(entries):
            rows = [r for r in entry.frontier if r["quality_metric"] == quality]
            if not rows:
                continue
            color = f"C{i % 10}"
            styles = {r["run"]: {"color": color, **({"linestyle": "--", "alpha": 0.6} if r["run"] != entry.own_curve()
                                                    else {})} for r in rows}
            draw_curves(ax, rows, styles)
            xs, ys = entry.paired(diversity, quality)
            if ys:
                ax.errorbar(sum(xs) / len(xs), sum(ys) / len(ys), xerr=spread(xs), yerr=spread(ys), color=color,
                            marker="*", markersize=11, capsize=3, linestyle="none",
                            label=f"{entry.label}: T=1, {len(ys)} seed{'s' if len(ys) > 1 else ''}")
        ax.set_title(f"{quality} vs {diversity} over sampling temperature", fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        figures[f"{quality}_{diversity}"] = _png(fig, plt)
    return figures


def curves_figure(entries: list[Entry]) -> bytes | None:
    """Training curves of each entry's first run (langan report's panels), or None if none logged any."""
    with tempfile.TemporaryDirectory() as scratch:  # write_report writes files: a PNG and its HTML
        path = Path(scratch) / "curves.png"
        try:
            write_report([str(e.runs[0].path) for e in entries], path, labels=[e.label for e in entries])
        except LanganError:
            return None
        return path.read_bytes()


def _png(fig: Any, plt: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _img(png: bytes, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def page(entries: list[Entry], settings: Settings, header: list[str], rows: list[list[str]],
         found: list[tuple[str, str, str]], baseline: Entry | None, frontiers: dict[str, bytes], command: str) -> str:
    """The whole HTML page: nothing outside it is referenced."""
    esc = html.escape
    meta = entries[0].runs[0].read_meta()
    torch_version = meta.get("versions", {}).get("torch", "?")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(settings.title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;"
             "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
             "pre{background:#f6f6f6;padding:6px;white-space:pre-wrap;font-size:12px}</style></head><body>",
             f"<h1>{esc(settings.title)}</h1>",
             f"<p>Made {esc(time.strftime('%Y-%m-%d %H:%M %Z'))} by <code>{esc(command)}</code> on "
             f"{esc(platform.machine())} ({esc(str(meta.get('device', '?')))}), torch {esc(torch_version)}."
             f" Each run: {settings.n:,} samples at temperature 1 (seed {settings.seed}); cells are mean ± sample "
             "standard deviation over an entry's runs (seeds). BLEU: against the whole test split; self-BLEU: each "
             "sample against all the others.</p>",
             "<h2>Table</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>",
             *("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows), "</table>"]
    if frontiers:
        parts.append("<h2>Quality-diversity frontier</h2><p>Curves: each entry's first run over temperatures "
                     f"{', '.join(f'{t:g}' for t in settings.temperatures)} ({settings.frontier_n or settings.n:,} "
                     "samples each; dashed: its pretrained generator). Stars: the entries' T = 1 means over "
                     f"their seeds ({settings.n:,} samples each), with the seeds' standard deviation."
                     + (" <b>The curves and the stars use different sample counts: self-BLEU grows with the "
                        "count, so compare them with care.</b>" if settings.frontier_n not in (0, settings.n)
                        else "") + "</p>")
        parts += [_img(png, name) for name, png in frontiers.items()]
    if found and baseline is not None:
        parts.append(f"<h3>Against the frontier of {esc(baseline.label)}</h3><ul>")
        parts += [f"<li><b>{esc(label)}</b> ({esc(pair)}): {esc(where)}</li>" for label, pair, where in found]
        parts.append("</ul>")
    curves = curves_figure(entries)
    if curves:
        parts += ["<h2>Training curves (each entry's first run)</h2>", _img(curves, "training curves")]
    parts.append("<h2>Samples (temperature 1)</h2>")
    for entry in entries:
        first = entry.runs[0].read_meta()
        parts.append(f"<h3>{esc(entry.label)}</h3><p>{esc(entry.algorithm)}; "
                     f"<code>{esc(str(first.get('command', '')))}</code></p>")
        for run, texts in zip(entry.runs, entry.samples, strict=True):
            parts.append(f"<p>{esc(run.name)}</p><pre>{esc(chr(10).join(texts))}</pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def compare(paths: list[str], out: Path, settings: Settings, command: str = "langan compare",
            progress: Any = None) -> tuple[str, Path]:
    """Evaluates, writes OUT (HTML), OUT with .json (every figure) and each frontier as OUT_<pair>.png beside it;
    returns the Markdown table and the page's path."""
    for pair in settings.pairs:
        if pair not in ("auto", *PAIRS):
            raise LanganError(f"--pairs: '{pair}' is not one of auto, {', '.join(PAIRS)}")
    if out.suffix.lower() == ".json":
        raise LanganError(f"--out '{out}': give the page an .html name (the .json goes beside it)")
    if settings.pairs:
        pyplot()  # a missing matplotlib is said now, not after hours of evaluation
    published = read_published(settings.published)
    entries = entries_of(paths)
    baseline = pick_baseline(entries, settings.baseline)
    evaluate_entries(entries, settings, progress)
    metrics = settings.metrics or [m for m in (TEXT_METRICS + ORACLE_METRICS) if entries[0].values(m)]
    metrics = list(dict.fromkeys(metrics + (["disc_acc"] if any(e.values("disc_acc") for e in entries) else [])))
    header, rows = table_rows(entries, metrics, published)
    found = verdicts(entries, baseline) if baseline is not None and baseline.frontier else []
    frontiers = frontier_figures(entries) if any(e.frontier for e in entries) else {}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for name, png in frontiers.items():  # also beside the page, for a README or a paper
            out.with_name(f"{out.stem}_{name}.png").write_bytes(png)
        atomic_write_text(out, page(entries, settings, header, rows, found, baseline, frontiers, command))
        record = {"entries": {e.label: {"runs": [str(r.path) for r in e.runs], "evals": e.evals,
                                        "frontier": e.frontier} for e in entries},
                  "verdicts": [{"entry": a, "pair": b, "where": c} for a, b, c in found]}
        atomic_write_text(out.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    except OSError as err:
        raise LanganError(f"cannot write '{out}': {err.strerror or err}") from None
    table = markdown(header, rows)
    if found:
        table += "\n\n" + "\n".join(f"- {a} ({b}): {c}" for a, b, c in found)
    return table, out
