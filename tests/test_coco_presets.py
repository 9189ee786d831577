"""The coco-* presets run unchanged on another one-sentence-per-line corpus (only data.source / test_source and
sizes overridden): nothing in them or in the code is COCO-specific."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import REPO
from langan.cli import main

SUBJECTS = ["a man", "a woman", "two dogs", "a red bus", "the cat", "a small boy"]
VERBS = ["riding", "sitting on", "standing near", "looking at", "next to"]
OBJECTS = ["a horse.", "a bench.", "the street.", "a table with food.", "a white wall.", "the beach."]


def corpus(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    path.write_text("\n".join(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
                              for _ in range(n)) + "\n", encoding="utf-8")
    return path


TINY = {"generator.embedding_size": 8, "generator.hidden_size": 16, "data.valid_size": 8, "train.batch_size": 8,
        "train.steps": 2, "eval.every": 2, "eval.metric_samples": 16, "eval.num_samples": 2}
TINY_GAN = {"train.pretrain_steps": 3, "eval.every_adversarial": 2, "disc.pretrain_steps": 1}


@pytest.mark.parametrize("preset", ["mle", "relgan", "seqgan", "reinforce"])
def test_coco_preset_runs_on_another_corpus(preset: str, tmp_path: Path) -> None:
    train, test = corpus(tmp_path / "train.txt", 120, 0), corpus(tmp_path / "test.txt", 40, 1)
    extra = TINY | (TINY_GAN if preset != "mle" else {})
    if preset == "seqgan":
        extra |= {"disc.negatives": 16, "reward.rollout_num": 2, "disc.filter_sizes": "[1,2]",
                  "disc.num_filters": "[4,4]"}
    overrides = [f"data.source={train}", f"data.test_source={test}", *(f"{k}={v}" for k, v in extra.items())]
    assert main(["train", str(REPO / "configs" / f"coco-{preset}.yaml"), *overrides, "--runs-dir", str(tmp_path),
                 "--name", "r", "--quiet"]) == 0
    assert main(["eval", str(tmp_path / "r"), "--n", "20", "--metrics", "nll,bleu4,self_bleu4", "--json"]) == 0
    results = json.loads((tmp_path / "r" / "eval.json").read_text())
    assert results["test_examples"] == 40 and results["test_unk_rate"] == 0.0  # one grammar: no unseen word
    assert 0 <= results["bleu4"] <= 1 and results["nll"] > 0
