import pytest
import torch
from torch import nn

from langan.generation import draw, draw_from_logits, filter_logits, sample
from langan.models.lstm import LSTMLM
from langan.models.relational_memory import RelationalMemoryLM
from langan.models.transformer import TransformerLM
from langan.tokens import BOS, EOS, PAD, UNK


class Biased(nn.Module):
    """A 'model' whose logits strongly prefer the given tokens (to provoke forbidden samples)."""

    def __init__(self, vocab_size: int, favourite: list[int], eos_after: int | None = None):
        super().__init__()
        self.vocab_size, self.max_length = vocab_size, 50
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.favourite, self.eos_after = favourite, eos_after

    def new_cache(self, batch_size: int, max_tokens: int | None = None):
        return None

    def forward(self, tokens, cache=None, cond=None):
        logits = torch.zeros(*tokens.shape, self.vocab_size) + self.bias
        logits[..., self.favourite] = 30.0
        if self.eos_after is not None and tokens.shape[1] > self.eos_after:
            logits[..., EOS] = 60.0
        return logits, cache


def test_pad_bos_unk_never_sampled_even_when_most_likely() -> None:
    out = sample(Biased(8, [PAD, BOS, UNK]), 64, 10, generator=torch.Generator().manual_seed(0), allow_eos=False)
    assert not torch.isin(out.tokens, torch.tensor([PAD, BOS, UNK])).any()  # no EOS, so no PAD either
    out = sample(Biased(8, [PAD, BOS, UNK]), 64, 10, generator=torch.Generator().manual_seed(0))
    for row, length in zip(out.tokens.tolist(), out.lengths.tolist(), strict=True):
        assert not {PAD, BOS, UNK} & set(row[:length]) and set(row[length:]) <= {PAD}


def test_only_pad_after_eos_and_every_sample_ends() -> None:
    torch.manual_seed(0)
    model = TransformerLM(vocab_size=9, max_length=12, hidden_size=16, intermediate_size=16, num_layers=1,
                          num_heads=2)
    with torch.no_grad():
        model.head.weight[EOS] += 0.3  # make EOS frequent
    out = sample(model, 200, 12, generator=torch.Generator().manual_seed(1))
    for row, length, ended in zip(out.tokens.tolist(), out.lengths.tolist(), out.ended.tolist(), strict=True):
        if ended:
            assert row[length - 1] == EOS and EOS not in row[: length - 1]
            assert all(t == PAD for t in row[length:])
        else:
            assert length == 12 and PAD not in row
    assert out.ended.any() and (out.logprobs[out.tokens == PAD] == 0).all()


def test_eos_can_be_disallowed() -> None:
    out = sample(Biased(8, [EOS]), 16, 6, allow_eos=False, generator=torch.Generator().manual_seed(0))
    assert not (out.tokens == EOS).any() and (out.lengths == 6).all()


def test_cached_and_uncached_sampling_agree() -> None:
    torch.manual_seed(0)
    model = TransformerLM(vocab_size=13, max_length=10, hidden_size=16, intermediate_size=16, num_layers=2,
                          num_heads=2)
    a = sample(model, 32, 10, generator=torch.Generator().manual_seed(3), use_cache=True)
    b = sample(model, 32, 10, generator=torch.Generator().manual_seed(3), use_cache=False)
    assert torch.equal(a.tokens, b.tokens)
    torch.testing.assert_close(a.logprobs, b.logprobs, rtol=1e-4, atol=1e-5)


def test_top_k_top_p_and_greedy() -> None:
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0, 3.0, 2.0, 1.0, 0.5]])
    top2 = filter_logits(logits, top_k=2)
    assert torch.isfinite(top2).nonzero()[:, 1].tolist() == [4, 5]
    probs = logits.softmax(-1)[0]
    top_p = filter_logits(logits, top_p=float(probs[4] + 0.01))
    assert torch.isfinite(top_p).nonzero()[:, 1].tolist() == [4, 5]  # smallest set holding the mass
    assert torch.isfinite(filter_logits(logits, top_p=1e-6)).sum() == 1
    greedy = sample(Biased(8, [6]), 4, 3, temperature=0)
    assert (greedy.tokens == 6).all() and torch.allclose(greedy.logprobs, torch.zeros(4, 3), atol=1e-6)


def test_logprobs_are_of_the_tempered_distribution() -> None:
    torch.manual_seed(0)
    model = TransformerLM(vocab_size=9, max_length=6, hidden_size=16, intermediate_size=16, num_layers=1,
                          num_heads=2)
    out = sample(model, 8, 1, temperature=0.5, forbid=(UNK,), generator=torch.Generator().manual_seed(0))
    logits = model(torch.full((8, 1), BOS))[0][:, -1]
    expected = filter_logits(logits, 0.5, forbidden=torch.isin(torch.arange(9), torch.tensor([PAD, BOS, UNK])))
    expected = expected.log_softmax(-1).gather(1, out.tokens[:, :1]).squeeze(1)
    torch.testing.assert_close(out.logprobs[:, 0], expected)


def test_samples_print_as_one_line_each() -> None:
    from langan.eval.samples import one_line

    assert one_line("ab\ncd\r\x00e\tf") == "ab\\ncd\\r\\x00e\tf"
    assert one_line("plain name") == "plain name"


def test_draw_follows_the_weights_and_never_draws_a_zero_weight_token() -> None:
    weights = torch.tensor([0.0, 1.0, 0.0, 3.0, 0.0, 0.0]).expand(200_000, -1)  # unnormalised, zeros at both ends
    picks = draw(weights, torch.Generator().manual_seed(0))
    counts = torch.bincount(picks, minlength=6).double() / len(picks)
    assert counts[[0, 2, 4, 5]].sum() == 0
    assert abs(float(counts[3]) - 0.75) < 0.005  # 5 standard errors of 200k draws
    one_hot = torch.eye(6)[[5, 0, 2]]  # all the mass on one token, including the first and the last
    assert draw(one_hot).tolist() == [5, 0, 2]


def test_two_level_draw_follows_the_weights_across_blocks() -> None:
    # a vocabulary of several blocks with a shorter last one (1,000 = 15 x 64 + 40): mass in the first token, at a
    # block's edges and in the last token; every other weight 0 and never drawn
    weights = torch.zeros(1000)
    weights[[0, 63, 64, 999]] = torch.tensor([1.0, 1.0, 2.0, 4.0])
    picks = draw(weights.expand(40_000, -1), torch.Generator().manual_seed(0))
    counts = torch.bincount(picks, minlength=1000).double() / len(picks)
    assert counts.sum() == counts[[0, 63, 64, 999]].sum()
    torch.testing.assert_close(counts[[0, 63, 64, 999]], torch.tensor([0.125, 0.125, 0.25, 0.5], dtype=torch.double),
                               atol=0.01, rtol=0)  # 4 standard errors of 40k draws
    one_hot = torch.eye(1000)[[999, 0, 64, 500]]
    assert draw(one_hot).tolist() == [999, 0, 64, 500]
    assert draw(torch.rand(0, 1000)).shape == (0,)  # an empty batch, as the one-level draw allowed


def test_draw_from_logits_follows_softmax_and_returns_its_log_probabilities() -> None:
    # logits as the sampler passes them (a forbidden token at -inf, large values): draws follow softmax(logits),
    # the log-probabilities are log_softmax's at the drawn tokens, and a -inf token is never drawn
    logits = torch.tensor([[float("-inf"), 40.0, 41.0, 35.0, 42.0]]).expand(100_000, -1)
    token, logp = draw_from_logits(logits, torch.Generator().manual_seed(0))
    probs = logits[0].softmax(-1)
    counts = torch.bincount(token, minlength=5).double() / len(token)
    assert counts[0] == 0 and torch.allclose(counts, probs.double(), atol=0.005)
    torch.testing.assert_close(logp, logits.log_softmax(-1).gather(1, token[:, None]).squeeze(1))


def test_draw_is_reproducible_from_its_generator() -> None:
    probs = torch.rand(64, 50)
    a, b = (draw(probs, torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(a, b) and not torch.equal(a, draw(probs, torch.Generator().manual_seed(4)))


@pytest.mark.parametrize("arch", ["transformer", "lstm", "rmc"])
def test_prefix_repeats_read_once_equal_decoding_every_row(arch: str) -> None:
    # the prefix read once per row and its cache copied to the repeats samples the same as a full recompute
    torch.manual_seed(0)
    model = {"transformer": lambda: TransformerLM(vocab_size=11, max_length=9, hidden_size=16, intermediate_size=16,
                                                  num_layers=2, num_heads=2),
             "lstm": lambda: LSTMLM(11, 9, hidden_size=16),
             "rmc": lambda: RelationalMemoryLM(11, 9, hidden_size=16, num_heads=2, mem_slots=2,
                                               intermediate_size=16)}[arch]()
    prefix = torch.randint(4, 11, (5, 3))
    outs = [sample(model, 15, 9, prefix=prefix, repeats=3, use_cache=cached,
                   generator=torch.Generator().manual_seed(1)) for cached in (True, False)]
    assert torch.equal(outs[0].tokens, outs[1].tokens)
    torch.testing.assert_close(outs[0].logprobs, outs[1].logprobs)
    assert torch.equal(outs[0].tokens[:, :3], prefix.repeat_interleave(3, 0))
    assert len({tuple(r) for r in outs[0].tokens.tolist()}) > 5  # the repeats are different completions
