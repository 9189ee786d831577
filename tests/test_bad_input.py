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


@pytest.mark.parametrize(("override", "fragment"), [
    ("train.log_every=0", "train.log_every must be at least 1"),
    ("generator.num_heads=0", "generator.num_heads must be at least 1"),
    ("generator.dropout=2", "dropouts must be in [0, 1)"),
    ("optim.gen.eps=-1", "eps must be > 0"),
    ("optim.gen.cycle_beta1=[2,3]", "cycle_beta1 must be two values in [0, 1)"),
    ("eval.batch_size=0", "eval.batch_size must be at least 1"),
    ("train.device=mps", "train.device='mps' is not supported"),
    ("data.oracle.length=0", "data.oracle.length must be at least 1"),
    ("disc.num_heads=0", "num_heads and grad_accumulation must be at least 1"),  # was a ZeroDivisionError
    ("eval.metrics=[bleu9]", "eval.metrics: unknown metric 'bleu9'; known: unique, novelty"),
    ("eval.metrics=[nll_oracle]", "eval.metrics: nll_oracle needs data.source=oracle"),
])
def test_out_of_range_values(capsys, tmp_path: Path, names_file: Path, override: str, fragment: str) -> None:
    assert_one_line(*train(capsys, tmp_path, names_file, override), fragment)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no junk run left


def test_max_length_without_room_for_eos(capsys, tmp_path: Path, names_file: Path) -> None:
    """data.max_length=1 used to train on first letters only (every text cut, no EOS ever seen)."""
    assert_one_line(*train(capsys, tmp_path, names_file, "data.max_length=1"),
                    "data.max_length must be at least 2, got 1", "needs n + 1 (its EOS)")
    assert not (tmp_path / "runs").exists()


def test_bpe_vocabulary_smaller_than_the_byte_alphabet(capsys, tmp_path: Path, names_file: Path) -> None:
    """data.vocab_size=5 used to train silently with 260 ids (tokenizers keeps the byte alphabet)."""
    assert_one_line(*train(capsys, tmp_path, names_file, "data.tokenizer=bpe", "data.vocab_size=5"),
                    "data.vocab_size=5 is too small for data.tokenizer=bpe", "data.vocab_size to at least 260")
    assert not (tmp_path / "runs").exists()
    code = main(["train", PRESET, *tiny_overrides(names_file), "data.tokenizer=bpe", "data.vocab_size=260",
                 "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert code == 0  # the smallest value the message names works


def test_bad_sampling_arguments(capsys, tmp_path: Path) -> None:
    for args in (["--top-p", "0"], ["--temperature", "-1"], ["--top-k", "-3"]):
        with pytest.raises(SystemExit) as done:
            main(["sample", str(tmp_path), *args])
        assert done.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_oracle_params_not_an_npz(capsys, tmp_path: Path) -> None:
    (tmp_path / "o.npz").write_text("not numpy")
    code, err = run_cli(capsys, "train", PRESET, "data.source=oracle", f"data.oracle.params={tmp_path / 'o.npz'}",
                        "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert_one_line(code, err, "is not a readable .npz")


def test_eval_refuses_changed_data(capsys, tmp_path: Path, names_file: Path) -> None:
    assert train(capsys, tmp_path, names_file, "--name", "r")[0] == 0
    with open(names_file, "a") as f:
        f.write("zed\nyul\nxan\n")
    assert_one_line(*run_cli(capsys, "eval", str(tmp_path / "runs" / "r")), "changed since the run started")
