"""`langan compare`: seed groups as rows (mean ± std of the runs' own evaluations), published rows beside them,
a GAN's T = 1 point placed against the MLE frontier, one self-contained HTML page; `train.init_from` a group."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest

from conftest import REPO, tiny_overrides
from langan.cli import main
from langan.errors import LanganError
from langan.report.compare import curve_at, frontier_position

SMALL_GAN = ["disc.hidden_size=16", "disc.intermediate_size=32", "disc.num_layers=1", "disc.num_heads=2",
             "train.pretrain_steps=0", "train.steps=3"]


def train_group(config: str, group: Path, seeds: list[int], overrides: list[str]) -> None:
    """The layout of `langan train --seeds` (GROUP/seed-S), trained in this process."""
    for seed in seeds:
        assert main(["train", str(REPO / "configs" / config), *overrides, f"train.seed={seed}", "--runs-dir",
                     str(group), "--name", f"seed-{seed}", "--quiet"]) == 0


@pytest.fixture
def groups(names_file: Path, tmp_path: Path) -> tuple[Path, Path]:
    mle, gan = tmp_path / "mle", tmp_path / "gan"
    # the GANs' generator by MLE: the reinforce preset with algorithm=mle
    train_group("names-reinforce.yaml", mle, [0, 1], tiny_overrides(names_file, **{
        "algorithm": "mle", "train.steps": 60, "eval.every": 30}))
    train_group("names-reinforce.yaml", gan, [0, 1], tiny_overrides(names_file) + SMALL_GAN +
                [f"train.init_from={mle}"])
    return mle, gan


def test_init_from_a_group_takes_the_member_of_the_same_seed(groups: tuple[Path, Path]) -> None:
    mle, gan = groups
    for seed in (0, 1):
        init = json.loads((gan / f"seed-{seed}" / "meta.json").read_text())["init_from"]
        assert Path(init).resolve().is_relative_to((mle / f"seed-{seed}").resolve()), init


def test_compare_page_table_and_verdict(groups: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    mle, gan = groups
    published = tmp_path / "published.csv"
    published.write_text("label,source,bleu4,self_bleu4\nMLE,Some et al. 2020,.305,.583\n")
    out = tmp_path / "page" / "compare.html"
    args = ["compare", str(mle), str(gan), "--n", "40", "--temperatures", "0.5,1.0,2.0", "--published",
            str(published), "--out", str(out)]
    assert main(args) == 0
    table = capsys.readouterr().out
    page = out.read_text()
    # self-contained: every figure is embedded, nothing is fetched
    images = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(images) >= 2 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "http://" not in page and "https://" not in page
    # a row's cell is the mean ± std of its runs' own eval.json figures
    evals = [json.loads((mle / f"seed-{s}" / "eval.json").read_text()) for s in (0, 1)]
    values = [e["bleu4"] for e in evals]
    expected = f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
    mle_row = next(line for line in table.splitlines() if line.startswith("| mle |"))
    assert expected in mle_row and "| 2 |" in mle_row
    assert all(e["n_samples"] == 40 and e["temperature"] == 1.0 for e in evals)
    assert "published: MLE (Some et al. 2020)" in table and "0.305" not in table and ".305" in table
    # the GAN's pretrained generator is the MLE entry's run: no second row, no second curve for it
    assert "gan (pretrained)" not in table
    assert "compare" not in json.loads((gan / "seed-0" / "eval.json").read_text()), "its pretrained G was evaluated"
    record = json.loads(out.with_suffix(".json").read_text())
    assert {r["run"] for r in record["entries"]["gan"]["frontier"]} == {"gan"}
    assert {r["temperature"] for r in record["entries"]["mle"]["frontier"]} == {0.5, 1.0, 2.0}
    assert (out.parent / "compare_bleu4_self_bleu4.png").read_bytes()[:4] == b"\x89PNG"
    verdict = record["verdicts"][0]
    assert verdict["entry"] == "gan" and verdict["pair"] == "bleu4 vs self_bleu4"
    assert verdict["where"].split()[0] in ("beyond", "on", "inside", "outside")
    assert "samples (temperature 1)" in page.lower() and page.count("<pre>") == 4
    # a second page reuses the runs' evaluations made the same way
    stamps = [(mle / f"seed-{s}" / "eval.json").stat().st_mtime_ns for s in (0, 1)]
    assert main([*args, "--pairs", "none"]) == 0
    assert stamps == [(mle / f"seed-{s}" / "eval.json").stat().st_mtime_ns for s in (0, 1)]
    # ... and evaluates again what changed (here: eval.json claims another step than the checkpoint's)
    changed = mle / "seed-1" / "eval.json"
    changed.write_text(json.dumps(json.loads(changed.read_text()) | {"step": 999}))
    assert main([*args, "--pairs", "none"]) == 0
    assert json.loads(changed.read_text())["step"] != 999
    assert stamps[0] == (mle / "seed-0" / "eval.json").stat().st_mtime_ns


def test_frontier_position_against_a_curve() -> None:
    curve = [(0.2, 0.1), (0.5, 0.3), (0.8, 0.5)]  # (diversity, quality) of a baseline over temperatures
    assert curve_at(curve, 0.65) == pytest.approx((0.4, 2 / 3))
    assert curve_at(curve, 0.9) is None
    seeds = [0.49, 0.5, 0.51]
    assert frontier_position((seeds, [0.39, 0.40, 0.41]), curve, 0.0, True).startswith("beyond")
    assert frontier_position((seeds, [0.29, 0.30, 0.31]), curve, 0.0, True).startswith("on")
    assert frontier_position((seeds, [0.19, 0.20, 0.21]), curve, 0.0, True).startswith("inside")
    # lower quality figures are better (nll_oracle, lm_score): the same point is then inside
    assert frontier_position((seeds, [0.39, 0.40, 0.41]), curve, 0.0, False).startswith("inside")
    # the baseline's own seed spread widens the margin
    assert frontier_position((seeds, [0.33, 0.34, 0.35]), curve, 0.1, True).startswith("on")
    assert frontier_position(([0.9], [0.4]), curve, 0.0, True).startswith("outside")
    # one seed on each side: no margin to tell a difference by
    assert frontier_position(([0.5], [0.4]), curve, 0.0, True).startswith("undetermined")
    # the point's diversity spread counts through the slope of its segment (2/3 on the last one)
    wide = [0.6, 0.7, 0.8]  # mean 0.7 (curve 0.433), std 0.1: margin 0.0667
    assert frontier_position((wide, [0.48] * 3), curve, 0.0, True).startswith("on")
    assert frontier_position((wide, [0.52] * 3), curve, 0.0, True).startswith("beyond")


def test_compare_bad_inputs(names_file: Path, tmp_path: Path, capsys) -> None:
    from langan.report.compare import Settings, compare

    run = tmp_path / "runs"
    train_group("names-mle.yaml", run, [0], tiny_overrides(names_file))
    bad = tmp_path / "bad.csv"
    bad.write_text("name,bleu4\nx,.3\n")
    assert main(["compare", str(run / "seed-0"), "--n", "10", "--published", str(bad), "--out",
                 str(tmp_path / "x.html")]) == 2
    assert "'label' column" in capsys.readouterr().err and not (tmp_path / "x.html").exists()
    with pytest.raises(LanganError, match="given twice"):
        compare([str(run / "seed-0"), str(run / "seed-0")], tmp_path / "x.html", Settings(n=10))
    with pytest.raises(LanganError, match=r"an \.html name"):
        compare([str(run / "seed-0")], tmp_path / "x.json", Settings(n=10))
    with pytest.raises(LanganError, match="--baseline 'nope' is none of the entries"):
        compare([str(run / "seed-0")], tmp_path / "x.html", Settings(n=10, baseline="nope"))
    with pytest.raises(LanganError, match="neither a run nor a group"):
        compare([str(tmp_path / "empty")], tmp_path / "x.html", Settings(n=10))
    gan = tiny_overrides(names_file) + SMALL_GAN + [f"train.init_from={run}", "train.seed=5"]
    assert main(["train", str(REPO / "configs" / "names-reinforce.yaml"), *gan, "--runs-dir", str(tmp_path),
                 "--name", "g", "--quiet"]) == 2
    assert "has no run with train.seed=5" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
