import math

import pytest
import torch

from conftest import SHARED_DATA
from langan.config import load_config
from langan.data.dataset import load_data
from langan.data.oracle import OracleLSTM


def test_random_oracle_is_reproducible_and_fixed_length() -> None:
    a, b = OracleLSTM.random(50, 8, 8, seed=3), OracleLSTM.random(50, 8, 8, seed=3)
    x, y = a.generate(20, 7, seed=1), b.generate(20, 7, seed=1)
    assert torch.equal(x, y) and x.shape == (20, 7) and int(x.max()) < 50
    lp = a.log_prob(x)
    assert lp.shape == (20, 7) and (lp <= 0).all()
    # scored in blocks of rows (to stay in cache): the same values as all rows at once, the last block short
    torch.testing.assert_close(a.log_prob(x, rows=3), a.log_prob(x, rows=1000), rtol=0, atol=1e-6)


def test_oracle_source_gives_fixed_length_rows_without_eos() -> None:
    cfg = load_config(None, ["data.source=oracle", "data.oracle.vocab_size=40", "data.oracle.num_samples=200",
                             "data.oracle.length=6", "data.valid_size=20", "data.test_size=20"]).data
    data = load_data(cfg)
    assert data.max_length == 6 and data.train.tokens.shape[1] == 7
    assert (data.train.tokens[:, 1:] >= 4).all()  # 6 oracle tokens, no EOS, no PAD
    assert data.tokenizer.vocab_size == 44


def test_seqgan_oracle_entropy_matches_the_published_figure() -> None:
    """NLL_oracle of the SeqGAN oracle's own samples is its entropy rate: published 5.75 nats/token."""
    path = SHARED_DATA / "seqgan_oracle_len20.npz"
    assert path.is_file(), f"reference data missing: {path}"
    oracle = OracleLSTM.load(path)
    assert (oracle.vocab_size, oracle.hidden_size) == (5000, 32)
    samples = oracle.generate(2000, 20, seed=0)
    nll = -oracle.log_prob(samples).mean().item()
    assert nll == pytest.approx(5.75, abs=0.1)
    uniform = torch.randint(0, 5000, (500, 20), generator=torch.Generator().manual_seed(0))
    assert -oracle.log_prob(uniform).mean().item() > math.log(5000) - 0.5


def test_samples_of_an_oracle_run_never_end_early(tmp_path) -> None:
    from langan.cli import main
    from langan.eval.evaluate import evaluate_run

    assert main(["train", "data.source=oracle", "data.oracle.vocab_size=30", "data.oracle.num_samples=64",
                 "data.oracle.length=6", "data.valid_size=8", "data.test_size=8", "generator.hidden_size=16",
                 "generator.num_layers=1", "generator.num_heads=2", "train.steps=2", "eval.every=2",
                 "--runs-dir", str(tmp_path), "--name", "o", "--quiet"]) == 0
    results = evaluate_run(str(tmp_path / "o"), n=40, metrics=["eos_rate", "mean_length"])
    assert results["eos_rate"] == 0 and results["mean_length"] == 6


def test_nll_oracle_metric_reference_points() -> None:
    """Through the metric path (vocabulary ids -> oracle ids): own samples ~5.75, uniform tokens ~11.44."""
    from langan.config import load_config
    from langan.data.dataset import load_data
    from langan.eval.metrics import nll_oracle, reference_for
    from langan.eval.samples import Samples

    path = SHARED_DATA / "seqgan_oracle_len20.npz"
    cfg = load_config(None, ["data.source=oracle", f"data.oracle.params={path}", "data.oracle.num_samples=2000",
                             "data.valid_size=100", "data.test_size=500"]).data
    data = load_data(cfg)
    ref = reference_for(data, "test")
    own = data.test.tokens[:, 1:-1]  # the oracle's held-out samples, BOS and EOS dropped
    as_samples = Samples([], own, torch.full((len(own),), 20), torch.zeros(len(own), dtype=torch.bool))
    assert nll_oracle(as_samples, ref) == pytest.approx(5.75, abs=0.15)
    g = torch.Generator().manual_seed(0)
    uniform = torch.randint(4, data.tokenizer.vocab_size, (1000, 20), generator=g)
    assert nll_oracle(Samples([], uniform, own.new_full((1000,), 20), own.new_zeros(1000).bool()),
                      ref) == pytest.approx(11.44, abs=0.15)


def test_oracle_run_reports_nll_oracle_and_nll_gen(tmp_path) -> None:
    from langan.cli import main
    from langan.eval.evaluate import evaluate_run

    assert main(["train", "data.source=oracle", "data.oracle.vocab_size=30", "data.oracle.num_samples=64",
                 "data.oracle.length=6", "data.valid_size=8", "data.test_size=8", "generator.hidden_size=16",
                 "generator.num_layers=1", "generator.num_heads=2", "train.steps=2", "eval.every=2",
                 "eval.metrics=[nll_oracle]", "--runs-dir", str(tmp_path), "--name", "o", "--quiet"]) == 0
    results = evaluate_run(str(tmp_path / "o"), n=40)
    assert {"nll", "nll_gen", "nll_oracle", "bleu4", "self_bleu4"} <= results.keys()
    assert results["nll_gen"] == pytest.approx(results["nll"])  # oracle rows hold no EOS; at T=1 the two agree
    hot = evaluate_run(str(tmp_path / "o"), n=40, temperature=2.0, metrics=["nll_gen"])
    assert hot["nll_gen"] != results["nll_gen"]


def test_oracle_data_is_drawn_in_float64(monkeypatch) -> None:
    # float32 matmuls differ in their last bit between processes; a draw near a bin edge then flipped a token
    import langan.data.oracle as oracle_module

    # and in one level (inverse_cdf), as every recorded run's data were: the sampler's block draw would give others
    seen = []
    real_draw = oracle_module.inverse_cdf
    monkeypatch.setattr(oracle_module, "inverse_cdf", lambda probs, generator=None: seen.append(probs.dtype)
                        or real_draw(probs, generator))
    tokens = OracleLSTM.random(50, 8, 8, seed=3).generate(10, 5, seed=1)
    assert seen == [torch.float64] * 5 and tokens.dtype == torch.long

