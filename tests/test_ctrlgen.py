"""Controlled generation (Hu et al. 2017): encoder, soft samples, tau schedule, classifier entropy, resume,
tiny-data reconstruction, and the command line (--attr, --z-interpolate, attr_acc)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import safetensors.torch
import torch

from conftest import NAMES, REPO
from langan.algorithms.ctrlgen import CtrlGen, tau_at
from langan.cli import main
from langan.config import CtrlGenConfig, load_config
from langan.data.dataset import load_data
from langan.generation import soft_sample
from langan.models.reader import SequenceReader
from langan.runs.checkpoint import load_checkpoint, step_checkpoints
from langan.runs.rundir import RunDir
from langan.tokens import PAD
from langan.train.session import new_session

PRESET = REPO / "configs" / "names-ctrlgen.yaml"
FEMALE = set(NAMES[:20])


@pytest.fixture
def labelled_file(tmp_path: Path) -> Path:
    """The test names with a gender column; every fifth row unlabelled (semi-supervised)."""
    rows = ["text\tgender\tsize"] + [
        f"{n}\t{'' if i % 5 == 4 else ('female' if n in FEMALE else 'male')}\t{'long' if len(n) > 5 else 'short'}"
        for i, n in enumerate(NAMES)]
    path = tmp_path / "names.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def tiny(source: Path, **extra: object) -> list[str]:
    base = {"data.source": str(source), "data.valid_size": 4, "data.test_size": 4, "data.max_length": 12,
            "generator.hidden_size": 16, "ctrlgen.latent_size": 4, "ctrlgen.encoder_hidden_size": 16,
            "disc.hidden_size": 16, "disc.intermediate_size": 32, "disc.num_layers": 1, "disc.num_heads": 2,
            "train.pretrain_steps": 4, "train.steps": 4, "train.batch_size": 8, "eval.every": 4,
            "eval.num_samples": 4, "eval.metrics": "[]", "ctrlgen.kl_anneal_steps": 4, "eval.attr_steps": 20}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_readers_ignore_padding_hard_and_soft(arch: str) -> None:
    torch.manual_seed(0)
    reader = SequenceReader(arch, 12, 16, out_size=3, hidden_size=16, num_layers=2, num_heads=2).eval()
    rows = torch.tensor([[5, 6, 2, PAD], [7, 2, PAD, PAD]])  # x EOS PAD...
    padded = torch.cat([rows, torch.full((2, 5), PAD)], 1)
    assert torch.allclose(reader(rows), reader(padded), atol=1e-6)
    # garbage after the end instead of PAD changes nothing either (the reader stops at the last real token)
    lengths = (rows != PAD).sum(1)
    noisy = torch.randint(4, 12, padded.shape).masked_scatter(padded != PAD, padded[padded != PAD])
    assert torch.allclose(reader(rows), reader(noisy, lengths=lengths), atol=1e-6)
    soft = torch.nn.functional.one_hot(noisy, 12).float()
    assert torch.allclose(reader(rows), reader(probs=soft, lengths=lengths), atol=1e-5)


@pytest.mark.parametrize("schedule", ["exponential", "linear", "tanh"])
def test_tau_schedule_is_monotone_and_floored(schedule: str) -> None:
    cfg = CtrlGenConfig(tau0=2.0, tau_min=0.05, tau_schedule=schedule)
    taus = [tau_at(cfg, s, 100) for s in range(-5, 300)]
    assert all(a >= b for a, b in itertools.pairwise(taus))
    assert min(taus) >= 0.05 and taus[0] == pytest.approx(2.0) and taus[-1] == pytest.approx(0.05)


def _algorithm(source: Path, **extra: object) -> CtrlGen:
    cfg = load_config(PRESET, tiny(source, **extra))
    torch.manual_seed(0)
    return CtrlGen(cfg, load_data(cfg.data), torch.device("cpu"), 8)


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_attribute_loss_reaches_generator_through_soft_samples(labelled_file: Path, arch: str) -> None:
    alg = _algorithm(labelled_file, **{"generator.arch": arch, "generator.num_heads": 2, "generator.num_layers": 1})
    ids = torch.tensor([[0], [1], [0], [1]])
    cond = torch.cat([torch.randn(4, 4), alg.codes.vectors(ids)], -1)
    soft = soft_sample(alg.gen, cond, 8, tau=0.5)
    assert soft.probs.requires_grad
    loss = alg.codes.cross_entropy(alg.classifier(probs=soft.probs, lengths=soft.lengths), ids)
    loss.backward()
    grads = {n: p.grad for n, p in alg.gen.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "embed" in n or "lstm" in n
               or "blocks" in n), [n for n, g in grads.items() if g is None]
    assert soft.tokens.shape == (*soft.lengths.shape, soft.probs.shape[1])


def test_entropy_term_lowers_classifier_entropy(labelled_file: Path) -> None:
    """With only the entropy term active (every label unknown), classifier updates lower the entropy of its
    predictions on generated samples: the regulariser has the right sign."""
    alg = _algorithm(labelled_file, **{"ctrlgen.beta": 5.0, "ctrlgen.lambda_u": 1.0, "optim.disc.lr": 3e-3,
                                       "disc.dropout": 0.0})
    with torch.no_grad():
        soft = soft_sample(alg.gen, torch.randn(16, alg.codes.size + 4), 8, tau=1.0)
    unknown = torch.full((16, 1), -1)
    rows = alg.data.train.tokens[:16, 1:]

    def entropy() -> float:
        alg.classifier.eval()
        with torch.no_grad():
            return float(alg.codes.entropy(alg.classifier(probs=soft.probs, lengths=soft.lengths)))

    before = entropy()
    for _ in range(15):
        alg.classifier_update(rows, unknown, soft.probs, soft.lengths, unknown)
    assert entropy() < 0.7 * before


def test_tiny_data_vae_reconstructs(tmp_path: Path) -> None:
    """data.limit=10: after VAE pretraining, greedy decoding from the posterior mean reconstructs >= 9 of 10."""
    cfg = load_config(PRESET, ["data.limit=10", "train.pretrain_steps=400", "ctrlgen.kl_anneal_steps=200",
                               "train.steps=1", "eval.every=1000", "eval.metrics=[]", "train.batch_size=10"])
    s = new_session(cfg, tmp_path / "tiny", quiet=True)
    s.trainer.total_steps = 400  # stop at the end of pretraining
    s.trainer.fit()
    alg, data = s.algorithm, s.data
    assert alg.kl_weight == 1.0
    decoded = [data.tokenizer.decode(r) for r in alg.reconstruct(data.train.tokens, alg.codes.ids(data.train)).tolist()]
    assert sum(a == b for a, b in zip(decoded, data.train.texts, strict=True)) >= 9, decoded


def _latest(run: Path) -> tuple[dict[str, torch.Tensor], dict]:
    folder = step_checkpoints(RunDir.open(run))[-1]
    weights = {f"{n}.{k}": v for n in ("generator", "encoder", "classifier")
               for k, v in safetensors.torch.load_file(folder / f"{n}.safetensors").items()}
    return weights, load_checkpoint(folder, {})[0]["algorithm"]  # no networks: verified, state only


def test_resume_restores_tau_kl_weight_and_phase(labelled_file: Path, tmp_path: Path) -> None:
    """train 8 = train 6 (stopped in the joint phase, tau mid-anneal, KL weight mid-ramp) + resume 2, bit for bit."""
    extra = {"train.pretrain_steps": 3, "train.steps": 5, "ctrlgen.kl_anneal_steps": 7, "eval.every": 2}
    base = ["train", str(PRESET), *tiny(labelled_file, **extra), "--runs-dir", str(tmp_path), "--quiet"]
    assert main([*base, "--name", "whole"]) == 0
    assert main([*base, "--name", "part", "--stop-after", "6"]) == 0
    _, state = _latest(tmp_path / "part")
    assert state["phase"] == "joint" and 0.1 < state["tau"] < 1.0 and 0 < state["kl_weight"] < 1.0
    assert main(["train", "--resume", str(tmp_path / "part"), "--quiet"]) == 0
    (a, state_a), (b, state_b) = _latest(tmp_path / "whole"), _latest(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (state_a["tau"], state_a["kl_weight"], state_a["phase"]) == (state_b["tau"], state_b["kl_weight"], "joint")


def test_cli_attr_interpolate_and_attr_acc(labelled_file: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    assert main(["train", str(PRESET), *tiny(labelled_file), "--runs-dir", str(runs), "--name", "cg", "--quiet"]) == 0
    run = str(runs / "cg")
    capsys.readouterr()
    assert main(["sample", run, "--n", "3", "--attr", "gender=female", "--plain"]) == 0
    assert len(capsys.readouterr().out.split("\n")) == 4  # 3 lines (a sample may be empty) + the final newline
    assert main(["sample", run, "--attr", "gender=other"]) == 2
    assert "'gender' takes female, male" in capsys.readouterr().err
    assert main(["sample", run, "--attr", "genre=male"]) == 2
    assert main(["sample", run, "--attr", "gender"]) == 2
    two = ["train", str(PRESET), *tiny(labelled_file), "data.label_columns=[gender,size]", "--runs-dir", str(runs),
           "--name", "two", "--quiet"]
    assert main(two) == 0
    assert main(["sample", str(runs / "two"), "--n", "2", "--attr", "gender=male", "--attr", "size=long"]) == 0
    capsys.readouterr()
    assert main(["sample", run, "--n", "4", "--z-interpolate", "emma", "liam"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("0.00") and lines[-1].startswith("1.00")
    assert main(["eval", run, "--n", "20", "--json"]) == 0
    import json

    results = json.loads(capsys.readouterr().out)
    per_value = [results["attr_acc/gender=female"], results["attr_acc/gender=male"]]
    assert {"attr_acc", "attr_clf_acc", "attr_novelty"} <= set(results)
    assert results["attr_acc"] == pytest.approx(sum(per_value) / 2)


def test_ctrlgen_needs_labels_and_mle_refuses_attr(names_file: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(PRESET), *tiny(names_file), "data.label_columns=[]", "--runs-dir", str(tmp_path)]) == 2
    assert "needs data.label_columns" in capsys.readouterr().err
    runs = tmp_path / "runs"
    mle = REPO / "configs" / "names-mle.yaml"
    assert main(["train", str(mle), f"data.source={names_file}", "data.valid_size=4", "data.test_size=4",
                 "generator.hidden_size=16", "generator.num_layers=1", "generator.num_heads=2", "train.steps=2",
                 "eval.every=2", "--runs-dir", str(runs), "--name", "m", "--quiet"]) == 0
    assert main(["sample", str(runs / "m"), "--attr", "gender=male"]) == 2
    assert "no style codes" in capsys.readouterr().err
    assert main(["sample", str(runs / "m"), "--z-interpolate", "a", "b"]) == 2


def test_gumbel_straight_through_is_one_hot_forward_with_soft_gradient() -> None:
    from langan.generation import relax

    logits = torch.randn(64, 7, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    hard = relax(logits, tau=0.5, gumbel=True, straight_through=True, generator=g)
    one_hot = torch.nn.functional.one_hot(hard.detach().argmax(-1), 7).float()
    assert torch.allclose(hard.detach(), one_hot, atol=1e-6)  # forward: the hard one-hot (up to rounding)
    (hard * torch.randn(64, 7)).sum().backward()
    assert logits.grad.abs().sum() > 0
    # Gumbel noise makes the argmax a sample: over many draws every token of a flat distribution is chosen
    picks = relax(torch.zeros(4000, 5), 1.0, gumbel=True, generator=g).argmax(-1)
    assert torch.bincount(picks, minlength=5).min() > 600
