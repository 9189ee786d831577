"""BLEU and self-BLEU equal nltk's sentence_bleu (method1 smoothing) to 1e-9 on random cases."""

from __future__ import annotations

import random

import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from langan.eval.bleu import bleu, self_bleu

SMOOTH = SmoothingFunction().method1


def random_corpus(rng: random.Random, n: int, vocab: int = 6, max_len: int = 9) -> list[list[int]]:
    # small vocabularies and short rows: many shared n-grams, ties in lengths, empty and 1-token rows
    return [[rng.randrange(vocab) for _ in range(rng.randrange(max_len + 1))] for _ in range(n)]


def nltk_bleu(hyps: list[list[int]], refs: list[list[int]], n: int) -> float:
    weights = tuple([1.0 / n] * n)
    return sum(sentence_bleu(refs, h, weights, smoothing_function=SMOOTH) if h else 0.0 for h in hyps) / len(hyps)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_bleu_equals_nltk(seed: int, n: int) -> None:
    rng = random.Random(seed)
    hyps, refs = random_corpus(rng, 25), random_corpus(rng, 30)
    assert abs(bleu(hyps, refs, n) - nltk_bleu(hyps, refs, n)) < 1e-9


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_self_bleu_equals_nltk_against_the_others(seed: int, n: int) -> None:
    rng = random.Random(100 + seed)
    samples = random_corpus(rng, 25)
    samples += [list(samples[0]), list(samples[1])]  # duplicates: another sample may equal this one
    weights = tuple([1.0 / n] * n)
    expected = []
    for i, s in enumerate(samples):
        others = [o for j, o in enumerate(samples) if j != i]
        expected.append(sentence_bleu(others, s, weights, smoothing_function=SMOOTH) if s and others else 0.0)
    assert abs(self_bleu(samples, n) - sum(expected) / len(samples)) < 1e-9


def test_a_sample_is_never_its_own_reference() -> None:
    samples = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]  # nothing shared: self-BLEU must be 0, not 1
    assert self_bleu(samples, 4) == 0.0
    assert self_bleu([[1, 2, 3, 4, 5]] * 2, 4) == pytest.approx(1.0)


def test_bleu_in_training_and_eval(names_file, tmp_path, capsys) -> None:
    import json

    from conftest import REPO, tiny_overrides
    from langan.cli import main

    preset = str(REPO / "configs" / "names-mle.yaml")
    args = ["train", preset, *tiny_overrides(names_file, **{"eval.metrics": "[bleu2,self_bleu2]"}),
            "--runs-dir", str(tmp_path), "--name", "r", "--quiet"]
    assert main(args) == 0
    rows = [r for r in (json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines())
            if "eval/bleu2" in r]
    assert rows and all(0 <= r["eval/bleu2"] <= 1 and 0 <= r["eval/self_bleu2"] <= 1 for r in rows)
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "r"), "--n", "40", "--metrics", "bleu4,self_bleu4", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert 0 <= results["bleu4"] <= 1 and 0 <= results["self_bleu4"] <= 1
