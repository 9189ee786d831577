"""Tiny end-to-end runs of every command, as a user types them."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, tiny_overrides
from langan.cli import main
from langan.runs.rundir import source_fingerprint

PRESET = str(REPO / "configs" / "names-mle.yaml")


@pytest.fixture
def trained(names_file: Path, tmp_path: Path, capsys) -> Path:
    assert main(["train", PRESET, *tiny_overrides(names_file), "--runs-dir", str(tmp_path), "--name", "r"]) == 0
    capsys.readouterr()
    return tmp_path / "r"


def test_run_directory_layout_and_record(trained: Path) -> None:
    for name in ("config.yaml", "meta.json", "metrics.jsonl", "tokenizer.json", "samples/step-6.txt",
                 "checkpoints/step-6/generator.safetensors", "checkpoints/step-6/state.pt",
                 "checkpoints/best/manifest.json"):
        assert (trained / name).exists(), name
    meta = json.loads((trained / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["steps_done"] == 6 and meta["seed"] == 0
    assert "train.steps=6" in meta["command"]
    assert {"torch", "numpy", "tokenizers"} <= set(meta["versions"]) and "git_commit" in meta
    assert meta["source_sha256"] == source_fingerprint() and len(meta["source_sha256"]) == 16
    assert yaml.safe_load((trained / "config.yaml").read_text())["train"]["steps"] == 6


def test_source_fingerprint_follows_the_code_only(tmp_path: Path) -> None:
    """The code identity behind eval.json reuse: a docs file changes nothing, a changed or renamed module does."""
    fingerprint = source_fingerprint.__wrapped__  # uncached
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    first = fingerprint(tmp_path)
    (tmp_path / "README.md").write_text("docs")
    assert fingerprint(tmp_path) == first
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    changed = fingerprint(tmp_path)
    assert changed != first
    (tmp_path / "sub" / "b.py").rename(tmp_path / "sub" / "c.py")
    assert fingerprint(tmp_path) not in (first, changed)


def test_refuses_to_reuse_a_run_directory(trained: Path, names_file: Path, capsys) -> None:
    args = ["train", PRESET, *tiny_overrides(names_file), "--runs-dir", str(trained.parent), "--name", "r"]
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--quiet"]) == 0


def test_resume_of_a_finished_run_says_so(trained: Path, capsys) -> None:
    assert main(["train", "--resume", str(trained)]) == 2
    assert "already finished 6 of 6 steps" in capsys.readouterr().err


def test_saved_config_alone_repeats_the_run(trained: Path, tmp_path: Path) -> None:
    assert main(["train", str(trained / "config.yaml"), "--runs-dir", str(tmp_path), "--name", "again",
                 "--quiet"]) == 0
    from safetensors.torch import load_file

    a = load_file(str(trained / "checkpoints/step-6/generator.safetensors"))
    b = load_file(str(tmp_path / "again/checkpoints/step-6/generator.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sample_prints_tagged_texts_without_specials(trained: Path, capsys) -> None:
    assert main(["sample", str(trained), "--n", "12", "--temperature", "0.8", "--top-p", "0.9", "--seed", "3"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == 12
    assert all(line.split()[0] in ("new", "train", "valid/test") for line in lines)
    assert not any(s in out.out for s in ("<pad>", "<bos>", "<eos>", "<unk>"))
    assert "12 samples" in out.err
    assert main(["sample", str(trained), "--n", "12", "--temperature", "0.8", "--top-p", "0.9", "--seed", "3"]) == 0
    assert capsys.readouterr().out == out.out  # the seed fixes the samples


def test_eval_writes_eval_json(trained: Path, capsys) -> None:
    assert main(["eval", str(trained), "--n", "50", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((trained / "eval.json").read_text())
    assert printed == saved
    assert saved["n_samples"] == 50 and saved["nll"] > 0 and 0 <= saved["unique"] <= 1
    assert saved["checkpoint"] == "best"  # MLE runs are judged at their best validation NLL by default
    assert main(["eval", str(trained), "--metrics", "bogus"]) == 2
    # a narrower evaluation replaces eval.json but keeps the earlier one's figures in the history
    assert main(["eval", str(trained), "--n", "20", "--metrics", "unique"]) == 0
    assert "nll" not in json.loads((trained / "eval.json").read_text())
    history = [json.loads(line) for line in (trained / "evals.jsonl").read_text().splitlines()]
    assert history[-2] == saved and history[-1]["n_samples"] == 20 and "nll" not in history[-1]


def test_runs_lists_and_diffs(trained: Path, names_file: Path, capsys) -> None:
    assert main(["train", PRESET, *tiny_overrides(names_file), "train.batch_size=4", "--runs-dir",
                 str(trained.parent), "--name", "r2", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["runs", str(trained.parent)]) == 0
    table = capsys.readouterr().out
    assert "r2" in table and "finished" in table and "6/6" in table
    assert main(["runs", "diff", str(trained), str(trained.parent / "r2")]) == 0
    diff = capsys.readouterr().out
    assert "train.batch_size: 8 → 4" in diff and "train.steps" not in diff


def test_help_for_every_command(capsys) -> None:
    for command in ("train", "sample", "eval", "runs", "config", "sweep-temperature", "report"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        assert "usage: langan " + command in capsys.readouterr().out
    assert main(["config", PRESET, "train.steps=9"]) == 0
    assert "train.steps" in capsys.readouterr().out


@pytest.mark.parametrize("tokenizer", ["word", "bpe"])
def test_word_level_corpus_end_to_end(tokenizer: str, tmp_path: Path, capsys) -> None:
    sentences = [f"the {a} {b} sat on the mat, again." for a in ("cat", "dog", "fox", "owl")
                 for b in ("quietly", "slowly", "happily", "never")] * 3
    (tmp_path / "corpus.txt").write_text("\n".join(sentences) + "\n")
    args = ["train", PRESET, *tiny_overrides(tmp_path / "corpus.txt"), f"data.tokenizer={tokenizer}",
            "data.vocab_size=300", "--runs-dir", str(tmp_path / "runs"), "--name", "w", "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "runs" / "w"), "--n", "5", "--plain"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 5 and "<" not in out
    assert main(["eval", str(tmp_path / "runs" / "w"), "--n", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nll"] > 0
