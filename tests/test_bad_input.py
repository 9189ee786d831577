"""Every user mistake: one clear line on stderr, exit code 2, no traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, tiny_overrides
from langan.cli import main

PRESET = str(REPO / "configs" / "names-mle.yaml")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("langan ") and ": error: " in last
    for fragment in fragments:
        assert fragment in last, last


def train(capsys: pytest.CaptureFixture[str], tmp_path: Path, source: Path | str, *extra: str) -> tuple[int, str]:
    return run_cli(capsys, "train", PRESET, *tiny_overrides(source), *extra, "--runs-dir", str(tmp_path / "runs"),
                   "--quiet")


def test_missing_file(capsys, tmp_path: Path) -> None:
    assert_one_line(*train(capsys, tmp_path, tmp_path / "nope.txt"), "nope.txt' not found")


def test_empty_file(capsys, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("\n \n")
    assert_one_line(*train(capsys, tmp_path, tmp_path / "empty.txt"), "empty.txt' is empty")


def test_invalid_utf8_names_file_and_line(capsys, tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_bytes(b"anna\nbob\ncaf\xe9\ndora\n")
    assert_one_line(*train(capsys, tmp_path, tmp_path / "bad.txt"), "bad.txt' line 3: invalid UTF-8", "iconv")


def test_binary_file_with_nul_bytes(capsys, tmp_path: Path) -> None:
    (tmp_path / "bin.txt").write_bytes(b"anna\nbo\x00b\n")
    assert_one_line(*train(capsys, tmp_path, tmp_path / "bin.txt"), "line 2: NUL byte")


def test_overlong_line_rejected_by_config(capsys, tmp_path: Path, names_file: Path) -> None:
    with open(names_file, "a") as f:
        f.write("x" * 500 + "\n")
    assert_one_line(*train(capsys, tmp_path, names_file, "data.overlong=error"),
                    "more than data.max_length=16", "data.overlong=truncate")


def test_overlong_line_truncated_by_default_and_counted(capsys, tmp_path: Path, names_file: Path) -> None:
    with open(names_file, "a") as f:
        f.write("x" * 500 + "\n")
    code = main(["train", PRESET, *tiny_overrides(names_file), "data.valid_size=0", "data.test_size=1",
                 "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 0
    assert "were longer than data.max_length=16 and were cut" in err


def test_missing_label_column(capsys, tmp_path: Path) -> None:
    (tmp_path / "d.tsv").write_text("text\tgender\nanna\tf\nbob\tm\n" * 10)
    assert_one_line(*train(capsys, tmp_path, tmp_path / "d.tsv", "data.label_columns=[gendre]"),
                    "has no column 'gendre' (did you mean 'gender'?)", "data.label_columns")


def test_missing_text_column(capsys, tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("name,gender\nanna,f\n")
    assert_one_line(*train(capsys, tmp_path, tmp_path / "d.csv"), "no column 'text'", "data.text_column")


def test_missing_run_directory(capsys, tmp_path: Path) -> None:
    for command in ("sample", "eval"):
        assert_one_line(*run_cli(capsys, command, str(tmp_path / "ghost")), "ghost' does not exist")
    assert_one_line(*run_cli(capsys, "train", "--resume", str(tmp_path / "ghost")), "does not exist")


def test_missing_config_file(capsys, tmp_path: Path) -> None:
    assert_one_line(*run_cli(capsys, "train", str(tmp_path / "x.yaml")), "config file", "not found")


def test_bad_override(capsys, tmp_path: Path, names_file: Path) -> None:
    assert_one_line(*train(capsys, tmp_path, names_file, "train.batch_sise=4"), "did you mean 'train.batch_size'")


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "langan", "sample", str(tmp_path / "ghost")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
