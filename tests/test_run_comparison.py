"""Comparing runs: the change report (a new run lists exactly the config values that differ from the previous
run), the changed keys in `langan runs`, and seed groups (`--seeds`, `langan runs compare`)."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO, tiny_overrides
from langan.cli import main
from langan.runs.rundir import RunDir

PRESET = str(REPO / "configs" / "names-mle.yaml")


def test_change_report_lists_exactly_the_changed_keys(names_file: Path, tmp_path: Path, capsys) -> None:
    common = [PRESET, *tiny_overrides(names_file), "--runs-dir", str(tmp_path), "--quiet"]
    assert main(["train", *common, "--name", "a"]) == 0
    assert RunDir(tmp_path / "a").read_meta()["changes"] is None  # the first run of the preset
    capsys.readouterr()
    assert main(["train", *common, "optim.gen.lr=0.001", "train.seed=3", "--name", "b"]) == 0
    err = capsys.readouterr().err
    assert "changes against run 'a': 2 key(s)" in err and "optim.gen.lr: 0.003 → 0.001" in err
    changes = RunDir(tmp_path / "b").read_meta()["changes"]
    assert changes["against"] == "a"
    assert changes["changed"] == [["optim.gen.lr", 0.003, 0.001], ["train.seed", 0, 3]]
    assert main(["train", *common, "train.seed=3", "--name", "c"]) == 0  # against b, the newest: only lr
    assert RunDir(tmp_path / "c").read_meta()["changes"]["changed"] == [["optim.gen.lr", 0.001, 0.003]]
    assert main(["train", *common, "--name", "d", "--compare-to", str(tmp_path / "a")]) == 0
    assert RunDir(tmp_path / "d").read_meta()["changes"] == {"against": "a", "changed": []}


def test_runs_table_shows_changed_keys(names_file: Path, tmp_path: Path, capsys) -> None:
    common = [PRESET, *tiny_overrides(names_file), "--runs-dir", str(tmp_path), "--quiet"]
    assert main(["train", *common, "--name", "a"]) == 0
    assert main(["train", *common, "train.batch_size=4", "--name", "b"]) == 0
    capsys.readouterr()
    assert main(["runs", str(tmp_path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "changed" in table[0]
    assert table[2].startswith("b") and table[2].rstrip().endswith("vs a: train.batch_size")


def _fake_run(path: Path, best: float) -> None:
    """A run directory holding only what `runs compare` reads: config.yaml and meta.json."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("train: {seed: 0}\n")
    (path / "meta.json").write_text(f'{{"best_valid_nll": {best}, "last_eval": {{"eval/unique": 0.9}}}}')


def test_seed_group_statistics_by_hand(tmp_path: Path) -> None:
    from langan.runs.records import compare_groups, distinguishable, summarize

    s = summarize([1.0, 2.0, 3.0])
    assert (s["n"], s["mean"], s["std"]) == (3, 2.0, 1.0)
    assert abs(s["ci_high"] - (2.0 + 4.303 / 3 ** 0.5)) < 1e-9  # t(0.975, df=2) = 4.303
    for i, v in enumerate([2.00, 2.01, 2.02]):
        _fake_run(tmp_path / "a" / f"seed-{i}", v)
    for i, v in enumerate([2.005, 2.015, 2.025]):
        _fake_run(tmp_path / "b" / f"seed-{i}", v)
    for i, v in enumerate([2.30, 2.31, 2.32]):
        _fake_run(tmp_path / "c" / f"seed-{i}", v)
    lines = compare_groups([str(tmp_path / g) for g in "abc"], "best_valid_nll")
    assert lines[1].split()[:3] == ["a", "3", "2.0100"]
    assert "a vs b: NOT distinguishable from seed noise at 95%" in lines
    assert "a vs c: differ at 95%" in lines
    assert distinguishable([1.0], [2.0]) is None


def test_train_with_seeds_in_parallel_makes_a_group(names_file: Path, tmp_path: Path, capsys) -> None:
    assert main(["train", PRESET, *tiny_overrides(names_file), "--runs-dir", str(tmp_path), "--name", "g",
                 "--seeds", "0,1", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert {p.name for p in (tmp_path / "g").iterdir()} == {"seed-0", "seed-1"}
    seeds = {RunDir(tmp_path / "g" / f"seed-{s}").read_meta()["seed"] for s in (0, 1)}
    assert seeds == {0, 1} and out.splitlines()[1].startswith("g ") and " 2 " in out.splitlines()[1]
    assert main(["runs", "compare", str(tmp_path / "g"), "--metric", "eval/nll"]) == 0


def test_seeds_stopped_early_are_reported_as_stopped_and_resumable(names_file: Path, tmp_path: Path,
                                                                    capsys) -> None:
    """--stop-after reaches every seed's run, and the summary says "stopped" (resumable), not "finished"."""
    assert main(["train", PRESET, *tiny_overrides(names_file), "train.steps=4", "--runs-dir", str(tmp_path),
                 "--name", "g", "--seeds", "0", "--stop-after", "2"]) == 0
    assert "seed 0: stopped" in capsys.readouterr().err
    run = RunDir(tmp_path / "g" / "seed-0")
    assert run.read_meta()["status"] == "stopped" and run.read_meta()["steps_done"] == 2
    assert main(["train", "--resume", str(run.path), "--quiet"]) == 0
    assert run.read_meta()["status"] == "finished"
