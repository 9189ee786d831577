"""The Gumbel-softmax GAN (algorithm=gumbel): relaxed samples of the very draw, D's gradient reaching G through
them, beta mid-anneal restored on resume, every loss training, names of losses and schedules in step with config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, tiny_overrides
from langan.algorithms import relaxed_gan
from langan.cli import main
from langan.config import BETA_SCHEDULES, GAN_LOSSES, load_config
from langan.errors import LanganError
from langan.generation import gumbel_sample, relaxed_probs
from langan.models.discriminator import TransformerDiscriminator
from langan.models.lstm import LSTMLM
from langan.models.relational_memory import RelationalMemoryLM
from langan.models.transformer import TransformerLM
from langan.runs.checkpoint import load_checkpoint, step_checkpoints
from langan.runs.rundir import RunDir
from langan.tokens import EOS, PAD
from langan.train.session import new_session

PRESET = str(REPO / "configs" / "names-reinforce.yaml")  # a transformer G and D; the algorithm is overridden


def gumbel_overrides(source: Path, **extra: object) -> list[str]:
    base = {"algorithm": "gumbel", "reward.kl_mult": 0, "disc.hidden_size": 16, "disc.intermediate_size": 32,
            "disc.num_layers": 1, "disc.num_heads": 2, "disc.grad_accumulation": 1, "train.pretrain_steps": 2,
            "train.steps": 6, "train.disc_steps_per_gen_step": 2, "generator.tie_word_embeddings": False}
    return tiny_overrides(source, **(base | extra))


def tiny_generator(arch: str, dropout: float = 0.0) -> torch.nn.Module:
    if arch == "transformer":
        return TransformerLM(vocab_size=9, max_length=8, hidden_size=16, intermediate_size=32, num_layers=1,
                             num_heads=2, dropout=dropout)
    if arch == "lstm":
        return LSTMLM(vocab_size=9, max_length=8, embedding_size=8, hidden_size=16, num_layers=1, dropout=dropout)
    return RelationalMemoryLM(vocab_size=9, max_length=8, embedding_size=8, hidden_size=16, num_heads=2,
                              intermediate_size=16, dropout=dropout)


def test_config_names_equal_the_implemented_ones() -> None:
    assert set(GAN_LOSSES) == set(relaxed_gan.LOSSES) and BETA_SCHEDULES == relaxed_gan.BETA_SCHEDULES


@pytest.mark.parametrize("arch", ["transformer", "lstm", "rmc"])
def test_relaxed_sample_is_the_drawn_tokens_and_sharpens_with_beta(arch: str) -> None:
    torch.manual_seed(0)
    # dropout on and the model in train mode, as in an adversarial G step: the relaxation must still be this draw's
    gen = tiny_generator(arch, dropout=0.5)
    gen.train()
    drawn = gumbel_sample(gen, 32, 8)
    assert gen.training  # the draw gives the mode back
    ends = drawn.tokens == EOS
    after_end = (ends.cumsum(1) - ends.int()) > 0
    assert not (after_end & (drawn.tokens != PAD)).any()  # nothing but PAD after EOS
    soft = relaxed_probs(gen, drawn, beta=1000.0)
    assert gen.training
    real = torch.arange(drawn.tokens.shape[1])[None] < drawn.lengths[:, None]
    assert torch.equal(soft.argmax(-1)[real], drawn.tokens[real])  # the relaxation of this very draw
    assert soft.amax(-1)[real].mean() > 0.99  # near one-hot at a high beta (an untrained LSTM has near-ties)
    assert relaxed_probs(gen, drawn, beta=1.0).amax(-1)[real].mean() < 0.9
    # a discriminator step reads the same values, without a pass through G
    torch.testing.assert_close(drawn.relaxed_detached(7.0), relaxed_probs(gen, drawn, 7.0).detach())


@pytest.mark.parametrize("arch", ["transformer", "lstm", "rmc"])
def test_relaxed_gradient_is_the_softmax_of_the_teacher_forced_logits(arch: str) -> None:
    # without dropout, d softmax(beta (logits + g)) / d parameters through one teacher-forced pass, written out
    torch.manual_seed(0)
    gen = tiny_generator(arch)
    drawn = gumbel_sample(gen, 16, 8)
    inputs = torch.cat([torch.full_like(drawn.tokens[:, :1], 1), drawn.tokens[:, :-1]], 1)  # BOS = 1
    weights = torch.randn(drawn.perturbed.shape)

    def gradient(probs_of: object) -> list[torch.Tensor]:
        gen.zero_grad()
        (probs_of() * weights).sum().backward()
        return [p.grad.clone() for p in gen.parameters() if p.grad is not None]

    with torch.no_grad():
        noise = drawn.perturbed - gen(inputs)[0].float()  # the draw's Gumbel noise (forbidden tokens: -inf)
    by_hand = gradient(lambda: (3.0 * (gen(inputs)[0].float() + noise)).softmax(-1))
    ours = gradient(lambda: relaxed_probs(gen, drawn, 3.0))
    assert by_hand and len(by_hand) == len(ours)
    for a, b in zip(by_hand, ours, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_discriminator_gradient_reaches_the_generator_through_relaxed_samples() -> None:
    torch.manual_seed(0)
    gen = TransformerLM(vocab_size=9, max_length=8, hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2)
    disc = TransformerDiscriminator(9, 8, hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2)
    drawn = gumbel_sample(gen, 16, 8)
    for name, loss in relaxed_gan.LOSSES.items():
        gen.zero_grad()
        d_fake = disc.forward_probs(relaxed_probs(gen, drawn, beta=2.0), drawn.lengths)
        loss(torch.zeros(16), d_fake)[1].backward()
        grads = [p.grad for p in gen.parameters() if p.grad is not None]
        assert grads and sum(float(g.abs().sum()) for g in grads) > 0, name


def test_a_one_hot_row_reads_as_its_token() -> None:
    torch.manual_seed(0)
    disc = TransformerDiscriminator(9, 8, hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2).eval()
    tokens = torch.tensor([[4, 5, 6, EOS, PAD, PAD], [7, EOS, PAD, PAD, PAD, PAD]])
    lengths = (tokens != PAD).sum(1)
    one_hot = torch.nn.functional.one_hot(tokens, 9).float()
    torch.testing.assert_close(disc.forward_probs(one_hot, lengths), disc(tokens)[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss", GAN_LOSSES)
def test_every_loss_trains_and_logs_beta(names_file: Path, tmp_path: Path, loss: str) -> None:
    cfg = load_config(PRESET, gumbel_overrides(names_file, **{"gumbel.loss": loss, "gumbel.beta_max": 100}))
    s = new_session(cfg, tmp_path / "run", quiet=True)
    assert s.train() == "finished"
    rows = [r for r in s.run.read_metrics() if "gen/beta" in r]
    betas = [r["gen/beta"] for r in rows]
    assert betas == sorted(betas) and betas[-1] == pytest.approx(100.0)
    assert all(torch.isfinite(torch.tensor([r["gen/loss"], r["disc/loss"]])).all() for r in rows)


def test_straight_through_feeds_hard_one_hots_with_the_relaxed_gradient(names_file: Path, tmp_path: Path) -> None:
    cfg = load_config(PRESET, gumbel_overrides(names_file, **{"gumbel.straight_through": "true"}))
    gumbel = new_session(cfg, tmp_path / "st", quiet=True).algorithm
    drawn = gumbel.draw(8)
    weights = torch.randn(drawn.perturbed.shape)
    grads = []
    for through in (False, True):
        gumbel.gen.zero_grad()
        relaxed = relaxed_probs(gumbel.gen, drawn, 2.0)
        fed = gumbel.fake_input(drawn, relaxed) if through else relaxed
        (fed * weights).sum().backward()
        grads.append([p.grad.clone() for p in gumbel.gen.parameters() if p.grad is not None])
        if through:  # the value D reads is the draw's one-hot rows, exactly
            hard = torch.nn.functional.one_hot(drawn.tokens, fed.shape[-1]).float()
            torch.testing.assert_close(fed.detach(), hard, atol=1e-6, rtol=0)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
    assert gumbel.fake_input(drawn, relaxed).requires_grad


def test_beta_horizon_runs_the_schedule_over_its_own_length(names_file: Path, tmp_path: Path) -> None:
    # RelGAN's code anneals over 5,000 steps whatever the run's length: a shorter run ends below beta_max
    def betas(horizon: int) -> list[float]:
        cfg = load_config(PRESET, gumbel_overrides(names_file, **{"gumbel.beta_max": 100, "gumbel.beta_horizon":
                                                                  horizon, "train.steps": 6}))
        gumbel = new_session(cfg, tmp_path / f"h{horizon}", quiet=True).algorithm
        return [gumbel.beta(2 + k) for k in range(6)]  # the 6 adversarial steps after 2 of pretraining

    assert betas(0)[-1] == pytest.approx(100.0)  # 0: the adversarial phase is the horizon
    long = betas(11)
    assert long == pytest.approx([100 ** (k / 10) for k in range(6)])  # 100 ** (5/10) = 10 at the run's end
    assert betas(3) == pytest.approx([1.0, 10.0, 100.0, 100.0, 100.0, 100.0])  # reached, then held
    with pytest.raises(LanganError, match=r"gumbel\.beta_horizon must be >= 0"):
        load_config(PRESET, gumbel_overrides(names_file, **{"gumbel.beta_horizon": -1}))
    with pytest.raises(LanganError, match=r"beta_horizon does nothing with gumbel\.beta_schedule=no"):
        load_config(PRESET, gumbel_overrides(names_file, **{"gumbel.beta_horizon": 50, "gumbel.beta_schedule": "no"}))


def test_resume_in_the_middle_of_the_anneal_is_bit_exact(names_file: Path, tmp_path: Path) -> None:
    args = [PRESET, *gumbel_overrides(names_file, **{"train.steps": 8, "eval.every": 5, "generator.dropout": 0.1}),
            "--runs-dir", str(tmp_path), "--quiet"]
    assert main(["train", *args, "--name", "straight"]) == 0
    assert main(["train", *args, "--name", "split", "--stop-after", "6"]) == 0  # 4 adversarial steps of 8
    state, _ = load_checkpoint(step_checkpoints(RunDir(tmp_path / "split"))[-1], {})
    assert 1.0 < state["algorithm"]["beta"] < 100.0  # stopped mid-anneal
    assert main(["train", "--resume", str(tmp_path / "split"), "--quiet"]) == 0
    for net in ("generator", "discriminator", "pretrained"):
        a, b = (load_file(str(step_checkpoints(RunDir(tmp_path / n))[-1] / f"{net}.safetensors"))
                for n in ("straight", "split"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), net


def test_eval_of_a_gumbel_run_has_disc_acc_and_the_pretrained_column(names_file: Path, tmp_path: Path,
                                                                     capsys) -> None:
    args = [PRESET, *gumbel_overrides(names_file), "--runs-dir", str(tmp_path), "--quiet", "--name", "g"]
    assert main(["train", *args]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "g"), "--n", "40"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["adversarial", "pretrained"] and "disc_acc" in table


def test_cnn_discriminator_reads_one_hots_as_tokens_and_ignores_padding_width() -> None:
    from langan.models.cnn_discriminator import CNNDiscriminator

    torch.manual_seed(0)
    for reps, shape in ((4, (2, 4)), (1, (2,))):
        disc = CNNDiscriminator(9, 8, embedding_size=8, filter_sizes=(2, 3), num_filters=(5, 6),
                                num_representations=reps).eval()
        tokens = torch.tensor([[4, 5, 6, EOS, PAD], [7, EOS, PAD, PAD, PAD]])
        logits = disc(tokens)[1]
        assert logits.shape == shape
        torch.testing.assert_close(disc(tokens[:, :4])[1], logits)  # fewer PAD columns: the same verdict
        one_hot = torch.nn.functional.one_hot(tokens, 9).float()
        one_hot[0, 4] = torch.full((9,), 1 / 9)  # whatever follows the end is read as PAD
        torch.testing.assert_close(disc.forward_probs(one_hot, (tokens != PAD).sum(1)), logits, rtol=1e-5, atol=1e-5)


def test_relgan_cnn_gumbel_and_seqgan_cnn_reinforce_runs_train(names_file: Path, tmp_path: Path) -> None:
    cnn = {"disc.arch": "cnn", "disc.output": "sequence", "disc.embedding_size": 8, "disc.filter_sizes": "[2,3]",
           "disc.num_filters": "[4,4]", "disc.head_size": 8}
    cfg = load_config(PRESET, gumbel_overrides(names_file, **cnn, **{"disc.num_representations": 4}))
    assert new_session(cfg, tmp_path / "relgan", quiet=True).train() == "finished"
    reinforce = tiny_overrides(names_file, **(cnn | {"disc.head_size": 0, "reward.mode": "rollout",
                                                     "reward.rollout_num": 2, "train.pretrain_steps": 2,
                                                     "disc.grad_accumulation": 1}))
    s = new_session(load_config(PRESET, reinforce), tmp_path / "seqgan", quiet=True)
    assert s.train() == "finished"
    assert any("reward/mean" in r for r in s.run.read_metrics())


def test_relational_memory_generator_trains_under_relgan_and_seqgan_rollouts(names_file: Path, tmp_path: Path
                                                                             ) -> None:
    rmc = {"generator.arch": "rmc", "generator.mem_slots": 2, "generator.embedding_size": 8, "train.pretrain_steps": 2,
           "generator.tie_word_embeddings": False}
    relgan = load_config(PRESET, gumbel_overrides(names_file, **rmc))
    rollouts = load_config(PRESET, tiny_overrides(names_file, **(rmc | {"reward.mode": "rollout",
                                                                        "reward.rollout_num": 2,
                                                                        "disc.grad_accumulation": 1})))
    for name, cfg in (("relgan", relgan), ("seqgan", rollouts)):
        session = new_session(cfg, tmp_path / name, quiet=True)
        start = {k: v.clone() for k, v in session.algorithm.generator.state_dict().items()}
        assert session.train() == "finished"
        end = session.algorithm.generator.state_dict()
        assert all(not torch.equal(start[k], end[k]) for k in start if "memory" not in k), name
        assert any("gen/loss" in r for r in session.run.read_metrics()), name


@pytest.mark.parametrize(("override", "message"), [
    ({"disc.arch": "cnn"}, r"disc\.arch=cnn gives sequence logits only"),
    ({"disc.arch": "cnn", "disc.output": "sequence", "disc.num_filters": "[3]"}, "same length"),
    ({"algorithm": "reinforce", "disc.num_representations": 4}, "for algorithm=gumbel")])
def test_cnn_settings_that_cannot_work_are_one_line(names_file: Path, override: dict, message: str) -> None:
    with pytest.raises(LanganError, match=message):
        load_config(PRESET, gumbel_overrides(names_file, **override))
