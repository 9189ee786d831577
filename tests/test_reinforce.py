"""REINFORCE GAN: returns, baselines, masking after EOS, reward modes, rollouts, exploitation, exact resume."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from conftest import REPO, tiny_overrides
from langan.algorithms import policy_gradient as pg
from langan.cli import main
from langan.config import load_config
from langan.errors import LanganError
from langan.generation import SampleOutput, sample
from langan.models.discriminator import TransformerDiscriminator
from langan.runs.checkpoint import step_checkpoints
from langan.runs.rundir import RunDir
from langan.tokens import BOS, EOS, PAD, from_left_padded, left_pad
from langan.train.session import new_session

PRESET = str(REPO / "configs" / "names-reinforce.yaml")


def gan_overrides(source: Path, **extra: object) -> list[str]:
    """The REINFORCE preset shrunk to seconds: tiny G and D, a few pretraining and adversarial steps."""
    base = {"generator.hidden_size": 16, "generator.intermediate_size": 32, "generator.num_layers": 1,
            "generator.num_heads": 2, "disc.hidden_size": 16, "disc.intermediate_size": 32, "disc.num_layers": 1,
            "disc.num_heads": 2, "disc.grad_accumulation": 1, "train.pretrain_steps": 2, "train.steps": 4}
    base.update(extra)
    return tiny_overrides(source, **base)


def gan_session(names_file: Path, tmp_path: Path, **extra: object):
    cfg = load_config(PRESET, gan_overrides(names_file, **extra))
    return new_session(cfg, tmp_path / "run", overwrite=True, quiet=True)


# ----------------------------------------------------------------------------- returns and baselines


def test_discounted_returns_by_hand() -> None:
    rewards = torch.tensor([[1.0, 2.0, 3.0, 7.0], [4.0, 5.0, 6.0, 8.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    returns = pg.discounted_returns(rewards, mask, gamma=0.5)
    expected = torch.tensor([[1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0, 0.0],
                             [4 + 2.5 + 1.5 + 1.0, 5 + 3 + 2.0, 6 + 4.0, 8.0]])
    torch.testing.assert_close(returns, expected)
    torch.testing.assert_close(pg.discounted_returns(rewards, mask, 0.0), rewards * mask)
    torch.testing.assert_close(pg.discounted_returns(rewards, mask, 1.0)[0, 0], torch.tensor(6.0))


RETURNS = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
MASK = torch.tensor([[True, True], [True, True], [True, False]])


@pytest.mark.parametrize("kind, expected", [
    ("none", [[0, 0], [0, 0], [0, 0]]),
    ("batch_mean", [[3, 3], [3, 3], [3, 0]]),
    ("leave_one_out", [[4, 4], [3, 2], [2, 0]]),
])
def test_baselines_by_hand(kind: str, expected: list[list[float]]) -> None:
    torch.testing.assert_close(pg.Baseline(kind, 4)(RETURNS, MASK), torch.tensor(expected, dtype=torch.float32))


def test_ewma_baseline_by_hand_and_state() -> None:
    base = pg.Baseline("ewma", 3, decay=0.5)
    torch.testing.assert_close(base(RETURNS, MASK), torch.zeros(3, 2))  # nothing seen yet
    torch.testing.assert_close(base.value, torch.tensor([3.0, 3.0, 0.0]))  # first visit: the batch mean
    second = torch.full((3, 2), 5.0)
    torch.testing.assert_close(base(second, MASK), torch.tensor([[3.0, 3.0], [3.0, 3.0], [3.0, 0.0]]))
    torch.testing.assert_close(base.value, torch.tensor([4.0, 4.0, 0.0]))
    copy = pg.Baseline("ewma", 3, decay=0.5)
    copy.load_state_dict(base.state_dict())
    torch.testing.assert_close(copy(second, MASK), base(second, MASK))


def test_normalized_advantages_are_standard_on_valid_positions() -> None:
    adv = pg.normalize(RETURNS, MASK)
    valid = adv[MASK]
    assert abs(float(valid.mean())) < 1e-6 and abs(float(valid.std(correction=0)) - 1) < 1e-5
    assert float(adv[~MASK].abs().sum()) == 0


def test_position_centred_rewards_ignore_a_discriminator_bias() -> None:
    """center: zero mean over the live samples at each position, and a constant shift of every reward (a bias
    of D) changes nothing; standardize: also unit std there; nothing leaks onto masked positions."""
    rewards = torch.tensor([[0.2, -0.4, 0.9], [0.6, 0.3, 5.0], [-0.1, 0.0, 7.0]])
    mask = torch.tensor([[True, True, True], [True, True, False], [True, False, False]])
    centred = pg.position_normalized(rewards, mask, "center")
    torch.testing.assert_close(centred[:, 0], rewards[:, 0] - rewards[:, 0].mean())
    torch.testing.assert_close(centred[:2, 1], torch.tensor([-0.35, 0.35]))
    assert float(centred[0, 2]) == 0.0 and float(centred[~mask].abs().sum()) == 0.0
    torch.testing.assert_close(pg.position_normalized(rewards + 0.7, mask, "center"), centred)
    standard = pg.position_normalized(rewards, mask, "standardize")
    torch.testing.assert_close(standard[:, 0].std(correction=0), torch.tensor(1.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(pg.position_normalized(rewards, mask, "none"), rewards)


def test_position_prior_by_hand() -> None:
    """reward.position_prior k: each position's mean becomes (sum + k m) / (n + k), m the mean over every valid
    position, so a sample alone at a position keeps k / (1 + k) of its difference from m instead of nothing; k = 0
    is the plain per-position mean; a constant shift of every reward still changes nothing."""
    rewards = torch.tensor([[0.2, -0.4, 0.9], [0.6, 0.3, 5.0], [-0.1, 0.0, 7.0]])
    mask = torch.tensor([[True, True, True], [True, True, False], [True, False, False]])
    m = float(rewards[mask].mean())  # (0.2 + 0.6 - 0.1 - 0.4 + 0.3 + 0.9) / 6 = 0.25
    assert abs(m - 0.25) < 1e-6
    centred = pg.position_normalized(rewards, mask, "center", prior=2.0)
    assert float(pg.position_normalized(rewards, mask, "center")[0, 2]) == 0.0  # alone: cancelled
    torch.testing.assert_close(centred[0, 2], torch.tensor(2 / 3 * (0.9 - m)))  # alone: k / (1 + k) of r - m
    torch.testing.assert_close(centred[0, 1], torch.tensor(-0.4 - (-0.1 + 2 * m) / 4))
    torch.testing.assert_close(pg.position_normalized(rewards + 0.7, mask, "center", prior=2.0), centred)
    base = pg.Baseline("batch_mean", 3, prior=2.0)(rewards, mask)
    torch.testing.assert_close(base, (rewards - centred) * mask)  # the same shrunk means
    torch.testing.assert_close(pg.position_normalized(rewards, mask, "center", prior=0.0),
                               pg.position_normalized(rewards, mask, "center"))


def test_position_prior_config_errors() -> None:
    with pytest.raises(LanganError, match="position_prior must be >= 0"):
        load_config(PRESET, ["reward.position_prior=-1"])
    with pytest.raises(LanganError, match="does nothing"):
        load_config(PRESET, ["reward.position_prior=8", "reward.normalize_rewards=none", "reward.baseline=ewma"])


def test_prefix_differences_by_hand() -> None:
    """reward.differences: r_t - r_{t-1} (r_{-1} = 0), 0 after EOS; with gamma 1 a token's return telescopes to
    the verdict on the whole sample minus that on the prefix before the token, so a shift shared by every verdict
    (D's bias) reaches only the first token's return."""
    rewards = torch.tensor([[0.2, -0.4, 0.9], [0.6, 0.3, 5.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    diffs = pg.prefix_differences(rewards, mask)
    torch.testing.assert_close(diffs, torch.tensor([[0.2, -0.6, 1.3], [0.6, -0.3, 0.0]]))
    returns = pg.discounted_returns(diffs, mask, 1.0)
    torch.testing.assert_close(returns, torch.tensor([[0.9, 0.7, 1.3], [0.3, -0.3, 0.0]]))  # r_end - r_{t-1}
    shifted = pg.discounted_returns(pg.prefix_differences(rewards + 0.5, mask), mask, 1.0)
    torch.testing.assert_close((shifted - returns)[:, 1:], torch.zeros(2, 2))
    torch.testing.assert_close((shifted - returns)[:, 0], torch.tensor([0.5, 0.5]))


def test_differences_reach_the_advantages(names_file: Path, tmp_path: Path, monkeypatch) -> None:
    """Through gen_update (no centering, no baseline, gamma 1): each token's advantage is D's transformed verdict
    on the whole sample minus that on the prefix before the token; without the option, the plain sum."""
    seen = {}
    tokens = torch.tensor([[5, 6, EOS, PAD], [7, 5, 6, 7]])
    fake = SampleOutput(tokens, torch.zeros(2, 4), torch.tensor([3, 4]), torch.tensor([True, True]))
    for differences in (False, True):
        s = gan_session(names_file, tmp_path / str(differences), **{
            "reward.differences": differences, "reward.gamma": 1.0, "reward.normalize_rewards": "none",
            "reward.baseline": "none", "reward.entropy_mult": 0.0, "train.pretrain_steps": 0})
        alg = s.algorithm  # same seed: the same discriminator in both sessions
        original = alg._gen_loss

        def recording(inputs, toks, advantages, mask, entropy_mult, original=original, key=differences):
            seen.setdefault(key, {}).update({int(t[0]): a for t, a in zip(toks, advantages, strict=True)})
            return original(inputs, toks, advantages, mask, entropy_mult)

        monkeypatch.setattr(alg, "_gen_loss", recording)
        mask = pg.valid_mask(fake.lengths, 4)
        raw = alg.rewards(tokens, mask)  # [2, 4]: the verdicts on each prefix, 0 after EOS
        alg.gen_update(fake)
    for row, first in enumerate((5, 7)):
        n = int(fake.lengths[row])
        verdicts = raw[row, :n]
        before = torch.cat([verdicts.new_zeros(1), verdicts[:-1]])
        torch.testing.assert_close(seen[True][first][:n], verdicts[-1] - before)
        torch.testing.assert_close(seen[False][first][:n], verdicts.flip(0).cumsum(0).flip(0))
    with pytest.raises(LanganError, match=r"differences needs reward\.mode=per_step"):
        load_config(PRESET, ["reward.differences=true", "reward.mode=broadcast", "disc.output=sequence"])


def test_unfinished_penalty_by_hand() -> None:
    """Every valid position of a sample without EOS loses the penalty; finished samples and padding keep theirs."""
    returns = torch.tensor([[0.5, 0.2, 0.0], [0.1, -0.3, 0.4]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    ended = torch.tensor([True, False])
    out = pg.penalize_unfinished(returns, ended, mask, 0.5)
    torch.testing.assert_close(out, torch.tensor([[0.5, 0.2, 0.0], [-0.4, -0.8, -0.1]]))
    assert pg.penalize_unfinished(returns, ended, mask, 0.0) is returns


def test_unfinished_penalty_reaches_the_advantages_after_centering(names_file: Path, tmp_path: Path,
                                                                    monkeypatch) -> None:
    """Through gen_update, with the rewards centred per position (which alone would cancel a reward that every
    row at the last positions shares): the unfinished row's advantages drop by exactly the penalty."""
    seen = {}
    for penalty in (0.0, 0.7):
        s = gan_session(names_file, tmp_path / str(penalty), **{"reward.normalize_rewards": "center",
                                                               "reward.baseline": "none",
                                                               "reward.unfinished_penalty": penalty,
                                                               "train.pretrain_steps": 0})
        alg = s.algorithm  # same seed: the same discriminator, so the same rewards, in both sessions
        tokens = torch.tensor([[5, 6, EOS, PAD], [7, 5, 6, 7]])
        fake = SampleOutput(tokens, torch.zeros(2, 4), torch.tensor([3, 4]), torch.tensor([True, False]))
        original = alg._gen_loss

        def recording(inputs, toks, advantages, mask, entropy_mult, original=original, penalty=penalty):
            seen.setdefault(penalty, []).append((toks.clone(), advantages.clone()))
            return original(inputs, toks, advantages, mask, entropy_mult)

        monkeypatch.setattr(alg, "_gen_loss", recording)
        alg.gen_update(fake)

    def by_first_token(calls):  # length groups may split and trim the batch: each row's advantages by its row
        return {int(t[i, 0]): a[i] for t, a in calls for i in range(len(t))}

    base, penalised = by_first_token(seen[0.0]), by_first_token(seen[0.7])
    torch.testing.assert_close(penalised[5], base[5])  # the finished row
    assert base[7].abs().sum() > 0
    torch.testing.assert_close(penalised[7], base[7] - 0.7)


@pytest.mark.parametrize("fresh, draws", [(True, [16, 32]), (False, [16])])
def test_disc_fresh_samples_sets_the_draws_per_step(names_file: Path, tmp_path: Path, monkeypatch,
                                                    fresh: bool, draws: list[int]) -> None:
    """Three D updates per G update: the first sees G's samples; with fresh samples the other two see new ones,
    drawn together in one call of 2 x 16 rows; without, all three see G's."""
    session = gan_session(names_file, tmp_path, **{"train.disc_steps_per_gen_step": 3, "train.pretrain_steps": 0,
                                                  "train.disc_fresh_samples": fresh, "train.batch_size": 16})
    alg, calls, seen = session.algorithm, [], []
    original_draw, original_update = alg.draw, alg.disc_update

    def counting_draw(n: int, *args, **kwargs):
        out = original_draw(n, *args, **kwargs)
        calls.append((n, out.tokens))
        return out

    def recording_update(real, fake):
        seen.append(fake)
        return original_update(real, fake)

    monkeypatch.setattr(alg, "draw", counting_draw)
    monkeypatch.setattr(alg, "disc_update", recording_update)
    session.train(stop_after=1)  # one adversarial step (no pretraining)
    assert [n for n, _ in calls] == draws and len(seen) == 3
    assert seen[0] is calls[0][1], "the first D update sees the generator's own samples"
    if fresh:
        both = calls[1][1]
        for fake, rows in zip(seen[1:], (both[:16], both[16:]), strict=True):
            assert fake.shape[0] == 16 and torch.equal(fake, rows[:, :fake.shape[1]])
            assert (rows[:, fake.shape[1]:] == PAD).all(), "trimmed to its own longest sample, nothing cut"
            assert (fake[:, -1] != PAD).any()
    else:
        assert all(fake is seen[0] for fake in seen)


def test_entropy_weight_schedules_by_hand() -> None:
    assert pg.annealed(0.1, 0.0, 50, 101, "constant") == 0.1
    assert [round(pg.annealed(0.1, 0.0, s, 101, "linear"), 6) for s in (0, 25, 50, 100, 200)] == \
        [0.1, 0.075, 0.05, 0.0, 0.0]
    cosine = [pg.annealed(0.1, 0.0, s, 101, "cosine") for s in (0, 25, 50, 100)]
    assert cosine[0] == 0.1 and abs(cosine[2] - 0.05) < 1e-9 and cosine[1] > 0.075 and abs(cosine[3]) < 1e-12


def test_entropy_schedule_reaches_the_generator_loss(names_file: Path, tmp_path: Path) -> None:
    """The logged weight falls linearly over the adversarial steps, and the run differs from a constant one."""
    runs = {}
    for schedule in ("linear", "constant"):
        args = [PRESET, *gan_overrides(names_file, **{"train.steps": 5, "train.log_every": 1,
                                                      "reward.entropy_mult": 1.0,
                                                      "reward.entropy_schedule": schedule}),
                "--runs-dir", str(tmp_path), "--name", schedule, "--quiet"]
        assert main(["train", *args]) == 0
        rows = [json.loads(line) for line in (tmp_path / schedule / "metrics.jsonl").read_text().splitlines()]
        runs[schedule] = [r["gen/entropy_mult"] for r in rows if "gen/entropy_mult" in r]
    assert runs["linear"] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert runs["constant"] == [1.0] * 5


# ----------------------------------------------------------------------------- the policy gradient


def test_gradient_flows_only_through_log_probs_of_sampled_tokens() -> None:
    """d loss / d logits = -A_t/n (onehot(x_t) - softmax) at valid positions, exactly 0 after EOS."""
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6, requires_grad=True)
    tokens = torch.tensor([[4, 5, EOS, PAD], [5, 4, 4, 5]])
    mask = pg.valid_mask(torch.tensor([3, 4]), 4)
    advantages = torch.randn(2, 4)
    pg.policy_terms(logits, tokens, advantages, mask)["policy_loss"].backward()
    onehot = torch.nn.functional.one_hot(tokens, 6).float()
    expected = -(advantages * mask)[..., None] / mask.sum() * (onehot - logits.detach().softmax(-1))
    torch.testing.assert_close(logits.grad, expected)
    assert float(logits.grad[0, 3].abs().sum()) == 0


def test_summed_policy_loss_scales_the_gradient_by_the_token_count(names_file: Path, tmp_path: Path,
                                                                   monkeypatch) -> None:
    """reward.loss_reduction=sum (SeqGAN's code): on the same samples from the same start, the generator's
    gradient is the mean's times the number of valid tokens, so max_grad_norm then bounds every step; in
    micro-batches too, and times the world size under torchrun (where the ranks' gradients are averaged)."""
    from langan import dist

    norms, fake = {}, None
    for name, reduction, accumulation, world in (("mean", "mean", 1, 1), ("sum", "sum", 1, 1),
                                                  ("sum-accumulated", "sum", 3, 1), ("sum-2-ranks", "sum", 1, 2)):
        monkeypatch.setattr(dist, "world_size", lambda w=world: w)
        alg = gan_session(names_file, tmp_path / name, **{"reward.loss_reduction": reduction,
                                                          "optim.gen.grad_accumulation": accumulation,
                                                          "train.pretrain_steps": 0}).algorithm
        fake = alg.draw(16) if fake is None else fake
        norms[name] = float(alg.gen_update(fake)["gen/grad_norm"])
    n_valid = int(pg.valid_mask(fake.lengths, fake.tokens.shape[1]).sum())
    assert n_valid > 16 and norms["mean"] > 0
    assert norms["sum"] == pytest.approx(norms["mean"] * n_valid, rel=1e-4)
    assert norms["sum-accumulated"] == pytest.approx(norms["sum"], rel=1e-4)
    assert norms["sum-2-ranks"] == pytest.approx(2 * norms["sum"], rel=1e-4)


def test_entropy_bonus_is_finite_with_forbidden_tokens() -> None:
    logits = torch.randn(1, 2, 5, requires_grad=True)
    masked = logits.masked_fill(torch.tensor([True, False, False, False, False]), float("-inf"))
    terms = pg.policy_terms(masked, torch.tensor([[3, EOS]]), torch.ones(1, 2), torch.ones(1, 2, dtype=torch.bool))
    (-terms["entropy"]).backward()
    assert torch.isfinite(logits.grad).all() and float(logits.grad[..., 0].abs().sum()) == 0


def test_no_reward_return_or_gradient_after_eos(names_file: Path, tmp_path: Path) -> None:
    s = gan_session(names_file, tmp_path)
    alg = s.algorithm
    tokens = torch.tensor([[5, 6, EOS, PAD, PAD], [7, EOS, PAD, PAD, PAD], [5, 5, 5, 5, 5]])
    mask = pg.valid_mask(torch.tensor([3, 2, 5]), 5)
    for mode in ("per_step", "final", "broadcast"):
        alg.cfg.reward.mode = mode
        rewards = alg.rewards(tokens, mask)
        assert float(rewards[~mask].abs().sum()) == 0, mode
        assert float(pg.discounted_returns(rewards, mask, 0.9)[~mask].abs().sum()) == 0
    alg.cfg.reward.mode = "final"
    rewards = alg.rewards(tokens, mask)
    assert (rewards[0, :2] == 0).all() and rewards[0, 2] != 0 and rewards[2, 4] != 0
    alg.cfg.reward.mode = "broadcast"
    rewards = alg.rewards(tokens, mask)
    assert torch.allclose(rewards[0, :3], rewards[0, 0].expand(3))


def test_pad_and_bos_never_sampled_even_when_most_likely(names_file: Path, tmp_path: Path) -> None:
    alg = gan_session(names_file, tmp_path).algorithm
    with torch.no_grad():  # make PAD and BOS by far the likeliest next tokens
        alg.gen.head.weight[PAD] = alg.gen.norm.weight.sign() * 50
        alg.gen.head.weight[BOS] = alg.gen.norm.weight.sign() * 50
    out = alg.draw(64)
    body = out.tokens[pg.valid_mask(out.lengths, out.tokens.shape[1])]
    assert not ((body == PAD) | (body == BOS)).any()


# ----------------------------------------------------------------------------- discriminator


def test_left_pad_round_trip_and_discriminator_ignores_padding() -> None:
    torch.manual_seed(0)
    rows = torch.tensor([[5, 6, 7, EOS, PAD, PAD], [8, EOS, PAD, PAD, PAD, PAD], [5, 5, 5, 5, 5, EOS]])
    padded, mask = left_pad(rows)
    assert torch.equal(from_left_padded(padded, mask), rows)
    disc = TransformerDiscriminator(12, 8, hidden_size=16, intermediate_size=32, num_layers=2, num_heads=2).eval()
    with torch.no_grad():
        per_step, seq = disc(rows)
    for i, n in enumerate((4, 2, 6)):  # each row alone, without any padding
        alone_steps, alone_seq = disc(rows[i:i + 1, :n])
        torch.testing.assert_close(per_step[i, :n], alone_steps[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(seq[i], alone_seq[0], atol=1e-5, rtol=1e-5)
        assert float(per_step[i, n:].abs().sum()) == 0


# ----------------------------------------------------------------------------- reward modes and rollouts


@pytest.mark.parametrize("mode", ["per_step", "final", "broadcast", "rollout"])
def test_every_reward_mode_trains(names_file: Path, tmp_path: Path, mode: str) -> None:
    extra = {"reward.mode": mode, "disc.output": "per_step" if mode == "per_step" else "sequence",
             "reward.rollout_num": 2, "reward.baseline": "leave_one_out", "reward.kl_mult": 0.1}
    s = gan_session(names_file, tmp_path, **extra)
    before = {n: p.detach().clone() for n, p in s.algorithm.gen.named_parameters()}
    s.algorithm.step_count = s.cfg.train.pretrain_steps
    metrics = {k: float(v) for k, v in s.algorithm.step(next(s.trainer.batches)).items()}
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values()), metrics
    assert {"reward/mean", "disc/loss", "gen/entropy", "gen/kl", "disc/acc_real"} <= metrics.keys()
    assert any(not torch.equal(p, before[n]) for n, p in s.algorithm.gen.named_parameters())


def test_rollout_keeps_prefixes_fixed(names_file: Path, tmp_path: Path) -> None:
    alg = gan_session(names_file, tmp_path, **{"reward.mode": "rollout", "disc.output": "sequence"}).algorithm
    prefix = torch.tensor([[5, 6, 7], [11, EOS, PAD]])
    out = sample(alg.gen, 8, 16, prefix=prefix, repeats=4)
    for i in range(8):  # rows 0-3 continue prefix 0, rows 4-7 prefix 1
        assert torch.equal(out.tokens[i, :3], prefix[i // 4])
        assert float(out.logprobs[i, :3].abs().sum()) == 0  # forced tokens are not actions
    assert (out.tokens[:4, 3] != PAD).all() and (out.logprobs[:4, 3] < 0).all()  # sampled from P on
    assert (out.tokens[4:, 2:] == PAD).all() and out.ended[4:].all()  # a prefix that holds EOS stays ended
    with pytest.raises(ValueError, match="does not fit"):
        sample(alg.gen, 7, 16, prefix=prefix, repeats=4)
    tokens = torch.tensor([[5, 6, 7, EOS], [5, EOS, PAD, PAD]])
    mask = pg.valid_mask(torch.tensor([4, 2]), 4)
    q = alg.rollout_rewards(tokens, mask)
    final = pg.transform_logits(alg.disc(tokens)[1], alg.cfg.reward.transform)
    torch.testing.assert_close(q[[0, 1], [3, 1]], final)
    assert float(q[~mask].abs().sum()) == 0


class FirstTokenJudge(torch.nn.Module):
    """A discriminator whose sequence logit is the row's first token id: a rollout's score names its sample."""

    def forward(self, tokens: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, tokens[:, 0].float()


@pytest.mark.parametrize("chunk", [4096, 8])
def test_rollout_rewards_stay_on_their_own_sequence(names_file: Path, tmp_path: Path, chunk: int) -> None:
    extra = {"reward.mode": "rollout", "disc.output": "sequence", "reward.transform": "logit",
             "reward.rollout_num": 4, "reward.rollout_chunk": chunk}
    alg = gan_session(names_file, tmp_path, **extra).algorithm
    alg.disc = FirstTokenJudge()
    n = min(24, alg.data.tokenizer.vocab_size - 5)
    assert n >= 8
    tokens = alg.draw(n).tokens
    tokens[:, 0] = torch.arange(5, 5 + n)  # every sample starts with its own (non-special) token
    lengths = torch.where(tokens == EOS, 1, 0).argmax(1) + 1
    lengths = torch.where((tokens == EOS).any(1), lengths, tokens.shape[1])
    mask = pg.valid_mask(lengths, tokens.shape[1])
    q = alg.rollout_rewards(tokens, mask)
    # every completion of a prefix of sample b keeps b's first token: each Q of b is exactly that token's id
    torch.testing.assert_close(q, tokens[:, :1].float().expand_as(q) * mask)


def test_rollout_rewards_of_a_cnn_equal_those_of_whole_rows(names_file: Path, tmp_path: Path) -> None:
    # the reward code reads each prefix once through the CNN's forward_rollouts: the same Q-values, completion for
    # completion (same seed), as scoring every completed row whole
    extra = {"reward.mode": "rollout", "disc.output": "sequence", "reward.rollout_num": 3, "disc.arch": "cnn",
             "disc.filter_sizes": [1, 2, 3], "disc.num_filters": [4, 4, 4], "disc.embedding_size": 8,
             "disc.num_representations": 1, "disc.head_size": 0}
    alg = gan_session(names_file, tmp_path, **extra).algorithm
    fake = alg.draw(6)
    mask = pg.valid_mask(fake.lengths, fake.tokens.shape[1])
    torch.manual_seed(1)
    shared = alg.rollout_rewards(fake.tokens, mask)
    cnn = type(alg.disc)
    alg.disc.__class__ = type("WholeRows", (cnn,), {"forward_rollouts": None})  # no shared-prefix path
    assert alg.disc.forward_rollouts is None
    torch.manual_seed(1)
    whole = alg.rollout_rewards(fake.tokens, mask)
    assert bool((shared[:, :-1] != 0).any())
    torch.testing.assert_close(shared, whole, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- exploitation and resume


def _frozen_disc_run(names_file: Path, tmp_path: Path, entropy_mult: float) -> tuple[list[float], list[float]]:
    extra = {"disc.frozen": "true", "train.pretrain_steps": 0, "reward.entropy_mult": entropy_mult, "reward.kl_mult": 0,
             "optim.gen.lr": 3e-3, "train.batch_size": 32, "reward.baseline": "batch_mean"}
    s = gan_session(names_file, tmp_path / f"e{entropy_mult}", **extra)
    disc_before = {n: p.detach().clone() for n, p in s.algorithm.disc.named_parameters()}
    rewards, entropies = [], []
    for _ in range(80):
        m = s.algorithm.step(next(s.trainer.batches))
        rewards.append(float(m["reward/mean"]))
        entropies.append(float(m["gen/entropy"]))
    assert all(torch.equal(p, disc_before[n]) for n, p in s.algorithm.disc.named_parameters())
    return rewards, entropies


def test_generator_exploits_a_frozen_random_discriminator(names_file: Path, tmp_path: Path) -> None:
    """Against a fixed random D the smoothed reward rises steadily (measured: 0.034 -> 0.095 over 80 steps,
    1.35 initial standard deviations); the entropy bonus keeps the policy's entropy near its start, while
    without it the entropy collapses (3.2 -> 1.1)."""
    rewards, entropies = _frozen_disc_run(names_file, tmp_path, entropy_mult=0.0)
    blocks = [sum(rewards[i:i + 20]) / 20 for i in range(0, 80, 20)]
    assert blocks == sorted(blocks) and len(set(blocks)) == 4, f"reward did not rise steadily: {blocks}"
    first, last = sum(rewards[:10]) / 10, sum(rewards[-10:]) / 10
    assert last - first > 0.03, f"mean reward {first:.3f} -> {last:.3f}: the generator did not exploit D"
    _, with_bonus = _frozen_disc_run(names_file, tmp_path, entropy_mult=0.1)
    floor = 0.9 * with_bonus[0]
    assert min(with_bonus) > floor, f"entropy fell to {min(with_bonus):.2f} despite the bonus"
    assert entropies[-1] < floor, "without the bonus the entropy should have fallen (the test would be vacuous)"


@pytest.mark.parametrize("extra", [[], ["optim.gen.ema_decay=0.9"]])
def test_adversarial_resume_is_bit_exact(names_file: Path, tmp_path: Path, extra: list[str]) -> None:
    """train 2N == train N + resume N in the adversarial phase: G, D, both optimisers, D's partly
    accumulated gradients, the ewma baseline, every RNG and the generator's weight average with its count."""
    args = [PRESET, *gan_overrides(names_file, **{"train.steps": 8, "eval.every": 5, "disc.grad_accumulation": 3,
                                                  "generator.dropout": 0.1}), *extra,
            "--runs-dir", str(tmp_path), "--quiet"]
    assert main(["train", *args, "--name", "straight"]) == 0
    assert main(["train", *args, "--name", "split", "--stop-after", "7"]) == 0  # 5 adversarial: 2 D grads pending
    assert main(["train", "--resume", str(tmp_path / "split"), "--quiet"]) == 0
    from safetensors.torch import load_file

    for net in ("generator", "discriminator", "pretrained", *(["generator_average"] if extra else [])):
        a, b = (load_file(str(step_checkpoints(RunDir(tmp_path / n))[-1] / f"{net}.safetensors"))
                for n in ("straight", "split"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), net


def test_bad_gan_config_is_one_line(names_file: Path) -> None:
    with pytest.raises(LanganError, match=r"disc\.output=per_step"):
        load_config(PRESET, gan_overrides(names_file, **{"disc.output": "sequence"}))
    with pytest.raises(LanganError, match=r"reward\.transform"):
        load_config(PRESET, gan_overrides(names_file, **{"reward.transform": "tanh"}))
    with pytest.raises(LanganError, match=r"reward\.unfinished_penalty needs sampling\.allow_eos"):
        load_config(PRESET, gan_overrides(names_file, **{"reward.unfinished_penalty": 1.0,
                                                         "sampling.allow_eos": False}))
    with pytest.raises(LanganError, match=r"reward\.unfinished_penalty must be >= 0"):
        load_config(PRESET, gan_overrides(names_file, **{"reward.unfinished_penalty": -1.0}))


def test_eval_compares_adversarial_with_pretrained_generator(names_file: Path, tmp_path: Path, capsys) -> None:
    args = [PRESET, *gan_overrides(names_file), "--runs-dir", str(tmp_path), "--quiet", "--name", "gan"]
    assert main(["train", *args]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "gan"), "--n", "50"]) == 0
    table = capsys.readouterr().out
    header = table.splitlines()[0].split()
    assert header == ["adversarial", "pretrained"]
    assert any(line.split()[0] == "disc_acc" and len(line.split()) == 3 for line in table.splitlines())
    results = json.loads((tmp_path / "gan" / "eval.json").read_text())
    assert {"nll", "unique", "novelty", "disc_acc"} <= results.keys()
    assert {"nll", "unique", "novelty", "disc_acc"} <= results["compare"]["pretrained"].keys()
    assert 0 <= results["disc_acc"] <= 1
    # the pretrained copy is the generator at the end of MLE pretraining, not the final one
    assert results["compare"]["pretrained"]["nll"] != results["nll"]


def test_a_gan_from_scratch_has_no_pretrained_generator_to_compare(names_file: Path, tmp_path: Path) -> None:
    # its copy at the start of the adversarial phase is a random network: not a baseline worth a column
    assert set(gan_session(names_file, tmp_path / "a").algorithm.generators_to_compare()) == {"pretrained"}
    scratch = gan_session(names_file, tmp_path / "b", **{"train.pretrain_steps": 0})
    assert scratch.algorithm.generators_to_compare() == {}
    gumbel = gan_session(names_file, tmp_path / "c", **{"train.pretrain_steps": 0, "algorithm": "gumbel"})
    assert gumbel.algorithm.generators_to_compare() == {}


def test_gan_weight_average_follows_only_the_generator_steps(names_file: Path, tmp_path: Path) -> None:
    """optim.gen.ema_decay on a GAN: the average moves after every step that changed G (pretraining, adversarial)
    and not during D-only steps; it is what evaluation samples, while G keeps training from its own weights."""
    s = gan_session(names_file, tmp_path, **{"optim.gen.ema_decay": 0.5, "disc.pretrain_steps": 2,
                                             "train.pretrain_steps": 1})
    algo = s.algorithm
    assert algo.generator is algo.average.model and algo.generator is not algo.gen
    assert set(algo.generators_to_compare()) == {"pretrained", "unaveraged"}
    counts = []
    for _ in range(5):  # 1 pretraining step, 2 D-only steps, 2 adversarial steps
        algo.step(next(s.trainer.batches))
        counts.append(algo.average.updates)
    assert counts == [1, 1, 1, 2, 3]
    trained = dict(algo.gen.named_parameters())
    assert all(not torch.equal(p, trained[n]) for n, p in algo.generator.named_parameters() if "weight" in n)
    assert algo.state_dict()["average_updates"] == 3


def test_eval_reports_a_gan_average_beside_its_unaveraged_weights(names_file: Path, tmp_path: Path,
                                                                   capsys) -> None:
    args = [PRESET, *gan_overrides(names_file, **{"train.pretrain_steps": 0, "optim.gen.ema_decay": 0.5}),
            "--runs-dir", str(tmp_path), "--quiet", "--name", "gan"]
    assert main(["train", *args]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "gan"), "--n", "50"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["adversarial", "unaveraged"]
    results = json.loads((tmp_path / "gan" / "eval.json").read_text())
    assert results["compare"]["unaveraged"]["nll"] != results["nll"]


def test_disc_grad_accumulation_steps_once_per_n_batches(names_file: Path, tmp_path: Path) -> None:
    s = gan_session(names_file, tmp_path, **{"disc.grad_accumulation": 3, "train.pretrain_steps": 0})
    disc = s.algorithm.disc
    snapshots = []
    for _ in range(6):
        s.algorithm.step(next(s.trainer.batches))
        snapshots.append([p.detach().clone() for p in disc.parameters()])
    changed = [not all(torch.equal(a, b) for a, b in zip(x, y, strict=True))
               for x, y in itertools.pairwise(snapshots)]
    assert changed == [False, True, False, False, True]  # D steps after batches 3 and 6 only


def test_allow_eos_false_gives_full_length_samples(names_file: Path, tmp_path: Path) -> None:
    s = gan_session(names_file, tmp_path, **{"sampling.allow_eos": "false"})
    out = s.algorithm.draw(16)
    assert not out.ended.any() and (out.lengths == s.data.max_length).all()
    assert not (out.tokens == EOS).any()


def test_masked_std_and_unique_fraction_match_their_direct_definitions() -> None:
    torch.manual_seed(0)
    values, mask = torch.randn(4, 6), torch.rand(4, 6) > 0.3
    torch.testing.assert_close(pg.masked_std(values, mask), values[mask].std(correction=0))
    rows = torch.tensor([[5, 6, EOS], [5, 6, EOS], [7, EOS, PAD], [5, 7, EOS]])
    assert float(pg.unique_fraction(rows)) == torch.unique(rows, dim=0).shape[0] / len(rows) == 0.75


def test_seqgan_discriminator_schedule_trains_on_fresh_negatives(names_file: Path, tmp_path: Path) -> None:
    extra = {"reward.mode": "rollout", "disc.output": "sequence", "reward.rollout_num": 2, "train.batch_size": 16,
             "disc.negatives": 44, "disc.epochs": 2, "train.disc_steps_per_gen_step": 3}
    s = gan_session(names_file, tmp_path, **extra)
    alg, calls, drawn = s.algorithm, [], []
    update, draw = alg.disc_update, alg.draw
    alg.disc_update = lambda real, fake: calls.append((len(real), len(fake), fake)) or update(real, fake)
    alg.draw = lambda n, model=None, **kw: drawn.append((n, model)) or draw(n, model, **kw)
    alg.step_count = s.cfg.train.pretrain_steps + s.cfg.disc.pretrain_steps
    before = {n: p.detach().clone() for n, p in alg.disc.named_parameters()}
    alg.step(next(s.trainer.batches))
    # 3 rounds x 2 epochs x 5 whole batches of 44 rows (8 per half-batch; 4 left over, as SeqGAN's loader),
    # each 8 real against 8 generated rows
    assert [(r, f) for r, f, _ in calls] == [(8, 8)] * 30
    negatives = [n for n, model in drawn if model is None and n == 44]
    assert len(negatives) == 3  # a fresh set of negatives each round, drawn by G itself
    first_round = torch.cat([f for _, _, f in calls[:5]])
    assert len({tuple(r) for r in first_round.tolist()}) > 20  # the round's rows, not one batch repeated
    assert any(not torch.equal(p, before[n]) for n, p in alg.disc.named_parameters())


def test_adversarial_phase_has_its_own_evaluation_cadence(names_file: Path, tmp_path: Path) -> None:
    extra = {"train.pretrain_steps": 6, "train.steps": 5, "eval.every": 4, "eval.every_adversarial": 2}
    s = gan_session(names_file, tmp_path, **extra)
    s.train()
    # every 4 steps in pretraining, then from its end (step 6) every 2 steps, and the last step
    assert [r["step"] for r in s.run.read_metrics() if "eval/nll" in r] == [4, 6, 8, 10, 11]
    assert {p.name for p in s.run.checkpoints_dir.iterdir() if p.name.startswith("step-")} >= {"step-10", "step-11"}
    # a GAN started from an MLE run has no pretraining: its cadence runs from step 0
    s = gan_session(names_file, tmp_path / "no-pre", **(extra | {"train.pretrain_steps": 0}))
    s.train()
    assert [r["step"] for r in s.run.read_metrics() if "eval/nll" in r] == [2, 4, 5]


def test_a_gan_can_start_from_an_mle_run(names_file: Path, tmp_path: Path) -> None:
    mle_cfg = load_config(PRESET, gan_overrides(names_file, algorithm="mle"))  # the same generator, by MLE
    mle = new_session(mle_cfg, tmp_path / "mle", quiet=True)
    mle.train()
    trained = {k: v.clone() for k, v in mle.algorithm.generator.state_dict().items()}
    s = gan_session(names_file, tmp_path, **{"train.init_from": tmp_path / "mle", "train.pretrain_steps": 0,
                                             "optim.gen.ema_decay": 0.9})
    assert all(torch.equal(v, trained[k]) for k, v in s.algorithm.gen.state_dict().items())
    # a weight average starts from the loaded weights, not from the random ones they replaced
    assert all(torch.equal(v, trained[k]) for k, v in s.algorithm.generator.state_dict().items())
    assert s.run.read_meta()["init_from"].startswith(str(tmp_path / "mle"))
    s.algorithm.step(next(s.trainer.batches))  # step 0 = end of pretraining: the pretrained copy is the MLE run's
    assert all(torch.equal(v, trained[k]) for k, v in s.algorithm.reference.state_dict().items())
    first = gan_session(names_file, tmp_path / "first", **{"train.init_from": tmp_path / "mle",
                                                           "train.init_checkpoint": "step-3"})
    assert first.run.read_meta()["init_from"].endswith("step-3")
    with pytest.raises(LanganError, match="another shape"):
        gan_session(names_file, tmp_path / "wide", **{"train.init_from": tmp_path / "mle", "generator.hidden_size": 32})
    with pytest.raises(LanganError, match=r"train.init_from: .*no-such-run"):
        gan_session(names_file, tmp_path / "none", **{"train.init_from": tmp_path / "no-such-run"})


@pytest.mark.parametrize("algorithm", ["reinforce", "gumbel"])
def test_disc_accuracy_records_no_autograd_graph(algorithm: str, names_file: Path, tmp_path: Path) -> None:
    extra = {"algorithm": algorithm} | ({"disc.output": "sequence", "reward.mode": "final"}
                                        if algorithm == "gumbel" else {})
    s = gan_session(names_file, tmp_path, **extra)
    disc, grad_enabled = s.algorithm.disc, []
    forward = disc.forward
    disc.forward = lambda tokens: (grad_enabled.append(torch.is_grad_enabled()), forward(tokens))[1]
    rows = s.data.test.tokens[:, 1:]
    assert 0 <= s.algorithm.disc_accuracy(rows, rows) <= 1
    assert grad_enabled and not any(grad_enabled)


def test_learned_metrics_during_training_leave_the_run_as_it_was(names_file: Path, tmp_path: Path) -> None:
    """lm_score, reverse_lm_score, c2st_acc and disc_acc at each evaluation (against the validation split) are
    logged, and training with them ends at the same weights as training without them (they fit their own models
    on private RNGs and only read the GAN)."""
    learned = {"eval.metrics": "[lm_score,reverse_lm_score,c2st_acc,disc_acc,unique]", "eval.lm_steps": 5,
               "eval.c2st_steps": 5, "eval.metric_samples": 16, "eval.every": 2, "data.valid_size": 8}
    plain = gan_session(names_file, tmp_path / "plain", **(learned | {"eval.metrics": "[unique]"}))
    plain.train()
    s = gan_session(names_file, tmp_path / "learned", **learned)
    s.train()
    rows = [r for r in s.run.read_metrics() if "eval/unique" in r]
    assert len(rows) >= 3
    for row in rows:
        assert row["eval/lm_score"] > 0 and row["eval/reverse_lm_score"] > 0
        assert 0 <= row["eval/c2st_acc"] <= 1 and 0 <= row["eval/disc_acc"] <= 1
    assert all(torch.equal(v, plain.algorithm.gen.state_dict()[k]) for k, v in s.algorithm.gen.state_dict().items())
    assert all(torch.equal(v, plain.algorithm.disc.state_dict()[k]) for k, v in s.algorithm.disc.state_dict().items())


def test_disc_scores_of_the_same_real_rows_are_reused_within_a_step(names_file: Path, tmp_path: Path) -> None:
    s = gan_session(names_file, tmp_path)
    algo = s.algorithm
    calls = []
    algo.disc.register_forward_hook(lambda *_: calls.append(1))
    real, fake = s.data.train.tokens[:8, 1:], s.data.train.tokens[8:16, 1:]
    first = algo.disc_accuracy(real, fake)
    assert algo.disc_accuracy(real, fake[:4]) is not None and len(calls) == 3, "the real rows were scored twice"
    algo.step_count += 1  # a training step: the discriminator may have changed
    assert algo.disc_accuracy(real, fake) == first and len(calls) == 5


def test_passes_by_length_groups_give_the_one_pass_gradients(names_file: Path, tmp_path: Path) -> None:
    """The discriminator's and the generator's updates over groups of rows of similar length (each pass trimmed to
    its group's longest row) give the loss, rewards and gradients of one pass over the padded batch."""
    results = {}
    for overhead in (0.0, float("inf")):
        alg = gan_session(names_file, tmp_path / str(overhead), **{
            "train.pretrain_steps": 0, "disc.dropout": 0.0, "disc.grad_accumulation": 2}).algorithm
        alg.group_overhead = overhead
        torch.manual_seed(3)
        fake = alg.draw(24)
        real = alg.data.train.tokens[:24, 1:]
        groups = alg.length_groups(pg.valid_mask(fake.lengths, fake.tokens.shape[1]).sum(1), alg.gen)
        assert (len(groups) > 2) == (overhead == 0.0)
        disc_loss = alg.disc_update(real, fake.tokens)["disc/loss"]  # accumulates: no optimiser step yet
        disc_grads = [p.grad.clone() for p in alg.disc.parameters()]
        gen_grads = []

        def record(opt, net, label, max_norm, grads=gen_grads):
            grads.extend(p.grad.clone() for p in net.parameters() if p.grad is not None)
            return 0.0

        alg.optimizer_step = record
        rewards = alg.rewards(fake.tokens, pg.valid_mask(fake.lengths, fake.tokens.shape[1]))
        alg.gen_update(fake)
        results[overhead] = (disc_loss, disc_grads, rewards, gen_grads)
    (loss_a, disc_a, rewards_a, gen_a), (loss_b, disc_b, rewards_b, gen_b) = results.values()
    torch.testing.assert_close(loss_a, loss_b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rewards_a, rewards_b, atol=1e-5, rtol=1e-5)
    assert len(gen_a) == len(gen_b) > 0 and any(float(g.abs().sum()) > 0 for g in disc_a)
    for a, b in zip(disc_a + gen_a, disc_b + gen_b, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
