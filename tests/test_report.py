"""`langan report`: training curves of several runs overlaid in one PNG and an HTML page."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO, tiny_overrides
from langan.cli import main


def test_report_overlays_runs_in_a_png_and_html(names_file: Path, tmp_path: Path, capsys) -> None:
    gan = str(REPO / "configs" / "names-reinforce.yaml")
    small_gan = ["disc.hidden_size=16", "disc.intermediate_size=32", "disc.num_layers=1", "disc.num_heads=2",
                 "train.pretrain_steps=3", "train.steps=3", "train.log_every=1"]
    common = ["--runs-dir", str(tmp_path), "--quiet"]
    assert main(["train", gan, *tiny_overrides(names_file), *small_gan, *common, "--name", "gan"]) == 0
    assert main(["train", str(REPO / "configs" / "names-mle.yaml"), *tiny_overrides(names_file), *common,
                 "--name", "mle"]) == 0
    out = tmp_path / "rep" / "curves.png"
    assert main(["report", str(tmp_path / "gan"), str(tmp_path / "mle"), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20000
    page = out.with_suffix(".html").read_text()
    assert "<img src='curves.png'" in page and "gan, mle" in page
    capsys.readouterr()
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "Traceback" not in capsys.readouterr().err
