"""c2st_acc, lm_score and reverse_lm_score: each against a case whose answer is known."""

from __future__ import annotations

import random

import pytest
import torch

from langan.data.sources import census_names
from langan.data.tokenizers import CharTokenizer
from langan.eval import learned
from langan.tokens import BOS, EOS, PAD


@pytest.fixture(scope="module")
def names() -> tuple[CharTokenizer, list[str]]:
    texts = list(census_names().texts)
    random.Random(0).shuffle(texts)
    return CharTokenizer.fit(texts), texts


def rows(tok: CharTokenizer, texts: list[str], width: int = 16) -> torch.Tensor:
    """Right-padded `x EOS PAD...` rows without BOS, like sampled ids."""
    out = torch.full((len(texts), width), PAD)
    for i, t in enumerate(texts):
        ids = [*tok.encode(t)[:width - 1], EOS]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def gibberish(texts: list[str], seed: int, letters: str = "abcdefghijklmnopqrstuvwxyz") -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(letters) for _ in t) for t in texts]  # same lengths, random letters


def test_c2st_same_distribution_is_near_chance_and_different_is_near_one(names) -> None:
    tok, texts = names
    a, b = rows(tok, texts[:600]), rows(tok, texts[600:1200])
    same = learned.c2st_accuracy(a, b, tok.vocab_size, 16, steps=150, seed=0)
    # uniform random letters are only ~92% separable from short names even by a bag of characters,
    # so "clearly different" text uses rare letters only
    junk = rows(tok, gibberish(texts[600:1200], 1, letters="qxzjkvw"))
    different = learned.c2st_accuracy(a, junk, tok.vocab_size, 16, steps=150)
    assert abs(same - 0.5) < 0.1, same
    assert different > 0.95, different


def test_lm_scores_rank_real_text_above_gibberish(names) -> None:
    tok, texts = names
    with_bos = lambda r: torch.cat([torch.full_like(r[:, :1], BOS), r], 1)
    train, test = with_bos(rows(tok, texts[:1000])), with_bos(rows(tok, texts[2000:2500]))
    real_samples, junk = rows(tok, texts[2500:3000]), rows(tok, gibberish(texts[2500:3000], 2))
    kw = {"vocab_size": tok.vocab_size, "max_length": 17, "steps": 120, "seed": 0}
    good, bad = learned.lm_score(real_samples, train, **kw), learned.lm_score(junk, train, **kw)
    assert good < bad - 0.5, (good, bad)  # real names are likelier under an LM of real names
    good_r, bad_r = learned.reverse_lm_score(real_samples, test, **kw), learned.reverse_lm_score(junk, test, **kw)
    assert good_r < bad_r - 0.3, (good_r, bad_r)  # an LM of gibberish explains real names worse
    before = torch.get_rng_state()
    learned.fit_lm(train[:50], tok.vocab_size, 17, steps=2, seed=3)
    assert torch.equal(before, torch.get_rng_state()), "metrics must not consume the global RNG"


def test_trained_metrics_through_langan_eval(names_file, tmp_path, capsys) -> None:
    import json

    from conftest import REPO, tiny_overrides
    from langan.cli import main

    overrides = tiny_overrides(names_file, **{"eval.lm_steps": 20, "eval.c2st_steps": 20})
    assert main(["train", str(REPO / "configs" / "names-mle.yaml"), *overrides, "--runs-dir", str(tmp_path),
                 "--name", "r", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "r"), "--n", "30", "--json"]) == 0
    assert "lm_score" not in json.loads(capsys.readouterr().out)  # trained metrics only on request
    assert main(["eval", str(tmp_path / "r"), "--n", "30", "--json", "--metrics",
                 "c2st_acc,lm_score,reverse_lm_score"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert 0 <= results["c2st_acc"] <= 1 and results["lm_score"] > 0 and results["reverse_lm_score"] > 0


def test_lm_score_fits_the_real_data_lm_once(names, monkeypatch) -> None:
    """The LM behind lm_score depends only on the training rows: later scores reuse it, other rows refit."""
    tok, texts = names
    train = torch.cat([torch.full((300, 1), BOS), rows(tok, texts[:300])], 1)
    samples = rows(tok, texts[400:450])
    fits = []
    real_fit = learned.fit_lm
    monkeypatch.setattr(learned, "_REAL_DATA_LMS", {})  # what an earlier test fitted does not count
    monkeypatch.setattr(learned, "fit_lm", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    kw = {"vocab_size": tok.vocab_size, "max_length": 17, "steps": 5, "seed": 0}
    first = learned.lm_score(samples, train, **kw)
    assert learned.lm_score(samples, train, **kw) == first and len(fits) == 1
    learned.lm_score(samples[:10], train, **kw)
    assert len(fits) == 1, "another set of samples needs no new LM"
    learned.lm_score(samples, train[:200], **kw)
    learned.lm_score(samples, train, **{**kw, "steps": 6})
    assert len(fits) == 3, "other training rows or settings need their own LM"
