"""The change report: a new run lists exactly the config values that differ from the previous run."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO, tiny_overrides
from langan.cli import main
from langan.train.rundir import RunDir

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
