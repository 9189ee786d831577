"""`langan sweep-temperature`: a CSV row per run, generator and temperature, and a real PNG; evaluation leaves
the run, its weights and the global RNG as they were."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import REPO, tiny_overrides
from langan.cli import main
from langan.errors import LanganError
from langan.eval.sweep import parse_temperatures


def test_parse_temperatures() -> None:
    assert parse_temperatures("0.6:1.4:0.2") == [0.6, 0.8, 1.0, 1.2, 1.4]
    assert parse_temperatures("0.7,1.3") == [0.7, 1.3]
    for bad in ("0:1:0.5", "1:0.5:0.1", "a,b", "1:2:0", "-1,2"):
        with pytest.raises(LanganError):
            parse_temperatures(bad)


def test_sweep_of_an_mle_and_a_gan_run(names_file: Path, tmp_path: Path, capsys) -> None:
    mle = str(REPO / "configs" / "names-mle.yaml")
    gan = str(REPO / "configs" / "names-reinforce.yaml")
    small_gan = ["disc.hidden_size=16", "disc.intermediate_size=32", "disc.num_layers=1", "disc.num_heads=2",
                 "train.pretrain_steps=3", "train.steps=3"]
    common = ["--runs-dir", str(tmp_path), "--quiet"]
    trained = tiny_overrides(names_file, **{"train.steps": 150, "eval.every": 150})
    assert main(["train", mle, *trained, *common, "--name", "mle"]) == 0
    assert main(["train", gan, *tiny_overrides(names_file), *small_gan, *common, "--name", "gan"]) == 0
    out = tmp_path / "plots" / "frontier.png"
    assert main(["sweep-temperature", str(tmp_path / "mle"), str(tmp_path / "gan"), "--temperatures", "0.3,1.0,3.0",
                 "--n", "30", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert {r["run"] for r in rows} == {"mle", "gan (adversarial)", "gan (pretrained)"}
    assert len(rows) == 9 and {r["quality_metric"] for r in rows} == {"bleu4"}
    by_t = {r["temperature"]: float(r["diversity"]) for r in rows if r["run"] == "mle"}
    assert by_t["0.3"] > by_t["3.0"], f"colder sampling should repeat itself more (self-BLEU): {by_t}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    assert not (tmp_path / "mle" / "eval.json").exists(), "a sweep must not overwrite a run's eval.json"

    # two GANs started from the same checkpoint: their shared pretrained generator is one curve, not two
    start = [f"train.init_from={tmp_path / 'gan'}", "train.init_checkpoint=latest", "train.pretrain_steps=0"]
    for name in ("gan_a", "gan_b"):
        assert main(["train", gan, *tiny_overrides(names_file), *small_gan, *start, *common, "--name", name]) == 0
    assert main(["sweep-temperature", str(tmp_path / "gan_a"), str(tmp_path / "gan_b"), "--temperatures", "1.0",
                 "--n", "30", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert [r["run"] for r in rows] == ["gan_a (adversarial)", "gan_a (pretrained)", "gan_b (adversarial)"]


def test_lm_pair_and_evaluation_has_no_side_effects(names_file: Path, tmp_path: Path, capsys) -> None:
    import torch
    from safetensors.torch import load_file

    from langan.eval.evaluate import METRICS, evaluate_run

    overrides = tiny_overrides(names_file, **{"eval.lm_steps": 10, "eval.c2st_steps": 10})
    assert main(["train", str(REPO / "configs" / "names-mle.yaml"), *overrides, "--runs-dir", str(tmp_path),
                 "--name", "r", "--quiet"]) == 0
    weights = {p: load_file(str(p)) for p in (tmp_path / "r" / "checkpoints").glob("*/generator.safetensors")}
    rng = torch.get_rng_state()
    evaluate_run(str(tmp_path / "r"), n=20, metrics=[m for m in METRICS if m not in ("fed", "nll_oracle", "attr_acc")])
    assert torch.equal(rng, torch.get_rng_state()), "evaluation consumed the global RNG"
    for path, tensors in weights.items():
        assert all(torch.equal(v, load_file(str(path))[k]) for k, v in tensors.items())
    out = tmp_path / "lm.png"
    assert main(["sweep-temperature", str(tmp_path / "r"), "--temperatures", "0.8,1.2", "--n", "20", "--pair", "lm",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert {r["quality_metric"] for r in rows} == {"lm_score"} and len(rows) == 2
