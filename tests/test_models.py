import pytest
import torch
import torch.nn.functional as F

from conftest import REPO
from langan.config import load_config
from langan.errors import LanganError
from langan.models import build_generator, count_parameters
from langan.models.cnn_discriminator import CNNDiscriminator
from langan.models.lstm import LSTMLM
from langan.models.relational_memory import RelationalMemoryLM
from langan.models.transformer import TransformerLM
from langan.tokens import EOS, PAD, left_pad


def tiny_transformer(**kw) -> TransformerLM:
    torch.manual_seed(0)
    args = dict(vocab_size=11, max_length=12, hidden_size=16, intermediate_size=24, num_layers=2, num_heads=2)
    return TransformerLM(**(args | kw)).eval()


@pytest.mark.parametrize(("activation", "learned_positions"), [("gelu", False), ("swiglu", False), ("gelu", True)])
def test_kv_cache_decoding_equals_full_forward(activation: str, learned_positions: bool) -> None:
    model = tiny_transformer(activation=activation, rope_theta=200.0, learned_positions=learned_positions)
    tokens = torch.randint(1, 11, (3, 9))
    full, _ = model(tokens)
    cache = model.new_cache(3)
    steps = [model(tokens[:, t:t + 1], cache=cache)[0] for t in range(9)]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)
    # a prefix of several tokens, then single tokens
    cache = model.new_cache(3)
    chunked = torch.cat([model(tokens[:, :4], cache=cache)[0], model(tokens[:, 4:6], cache=cache)[0],
                         model(tokens[:, 6:], cache=cache)[0]], 1)
    torch.testing.assert_close(chunked, full, rtol=1e-5, atol=1e-5)


def test_lstm_state_cache_equals_full_forward() -> None:
    torch.manual_seed(0)
    model = LSTMLM(vocab_size=11, max_length=12, hidden_size=16, num_layers=2, cond_size=3).eval()
    tokens, cond = torch.randint(1, 11, (3, 7)), torch.randn(3, 3)
    full, _ = model(tokens, cond=cond)
    cache = model.new_cache(3)
    steps = torch.cat([model(tokens[:, t:t + 1], cache=cache, cond=cond)[0] for t in range(7)], 1)
    torch.testing.assert_close(steps, full, rtol=1e-5, atol=1e-5)


def test_relational_memory_state_cache_equals_full_forward() -> None:
    torch.manual_seed(0)
    model = RelationalMemoryLM(vocab_size=11, max_length=12, hidden_size=16, num_heads=2, mem_slots=3, num_layers=2,
                               intermediate_size=24, embedding_size=8, cond_size=3).eval()
    tokens, cond = torch.randint(1, 11, (3, 7)), torch.randn(3, 3)
    full, state = model(tokens, cond=cond)
    assert full.shape == (3, 7, 11) and state.memory.shape == (3, 3, 16)
    cache = model.new_cache(3)
    steps = torch.cat([model(tokens[:, t:t + 1], cache=cache, cond=cond)[0] for t in range(7)], 1)
    torch.testing.assert_close(steps, full, rtol=1e-5, atol=1e-5)
    cache = model.new_cache(3)
    chunked = torch.cat([model(tokens[:, :4], cache=cache, cond=cond)[0],
                         model(tokens[:, 4:], cache=cache, cond=cond)[0]], 1)
    torch.testing.assert_close(chunked, full, rtol=1e-5, atol=1e-5)
    # each output depends on earlier tokens only, and on every earlier one (the memory carries them)
    changed = tokens.clone()
    changed[:, 4] = (changed[:, 4] % 10) + 1
    out = model(changed, cond=cond)[0]
    torch.testing.assert_close(out[:, :4], full[:, :4])
    assert not torch.allclose(out[:, 5:], full[:, 5:])


def test_relational_memory_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = RelationalMemoryLM(vocab_size=11, max_length=12, hidden_size=16, num_heads=2, mem_slots=2,
                               intermediate_size=16, embedding_size=8)
    F.cross_entropy(model(torch.randint(1, 11, (4, 6)))[0].flatten(0, 1), torch.randint(1, 11, (24,))).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize(("overrides", "message"), [
    (["generator.mem_slots=2"], "generator.mem_slots is an rmc setting"),
    (["generator.arch=rmc", "generator.tie_word_embeddings=true"], "an rmc's output reads its whole memory"),
    (["generator.arch=rmc", "generator.hidden_size=30", "generator.num_heads=4"], "must be divisible"),
])
def test_relational_memory_settings_are_checked(overrides: list[str], message: str) -> None:
    with pytest.raises(LanganError, match=message):
        load_config(None, overrides)


@pytest.mark.parametrize("learned_positions", [False, True])
def test_left_padding_with_mask_changes_nothing(learned_positions: bool) -> None:
    model = tiny_transformer(learned_positions=learned_positions)
    short = torch.tensor([[1, 5, 6, 2]])
    padded = torch.tensor([[1, 5, 6, 2, PAD, PAD, PAD]])
    left, mask = left_pad(padded)
    out_short, _ = model(short)
    out_left, _ = model(left, attention_mask=mask)
    torch.testing.assert_close(out_left[:, -4:], out_short, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(out_left).all()


@pytest.mark.parametrize("arch", ["transformer", "lstm", "rmc"])
def test_conditioning_changes_the_output(arch: str) -> None:
    cfg = load_config(None, [f"generator.arch={arch}", "generator.hidden_size=16", "generator.num_layers=1"])
    model = build_generator(cfg.generator, 9, 8, cond_size=4).eval()
    tokens = torch.randint(1, 9, (2, 5))
    a, _ = model(tokens, cond=torch.zeros(2, 4))
    b, _ = model(tokens, cond=torch.ones(2, 4))
    assert not torch.allclose(a, b)


def test_tied_embeddings_share_one_tensor() -> None:
    model = tiny_transformer(tie_word_embeddings=True)
    assert model.head.weight is model.embed.weight
    untied = tiny_transformer()
    assert count_parameters(untied) - count_parameters(model) == 11 * 16


@pytest.mark.parametrize("preset", ["names-mle.yaml", "names-mle-lstm.yaml"])
def test_names_preset_is_about_200k_parameters(preset: str) -> None:
    cfg = load_config(REPO / "configs" / preset)
    n = count_parameters(build_generator(cfg.generator, 30, cfg.data.max_length))
    assert 180_000 <= n <= 220_000, n


def test_rope_theta_matters() -> None:
    tokens = torch.randint(1, 11, (2, 8))
    a, _ = tiny_transformer(rope_theta=10.0)(tokens)
    b, _ = tiny_transformer(rope_theta=10000.0)(tokens)
    assert not torch.allclose(a, b)


def test_cache_with_left_padding_is_refused() -> None:
    model = tiny_transformer()
    with pytest.raises(ValueError, match="full forward passes"):
        model(torch.tensor([[0, 1, 5]]), cache=model.new_cache(1), attention_mask=torch.tensor([[False, True, True]]))


def test_lstm_embedding_width_apart_from_its_state() -> None:
    cfg = load_config(None, ["generator.arch=lstm", "generator.hidden_size=32", "generator.embedding_size=8",
                             "generator.num_layers=1"])
    model = build_generator(cfg.generator, vocab_size=11, max_length=12, cond_size=3)
    assert model.embed.weight.shape == (11, 8) and model.lstm.weight_ih_l0.shape == (4 * 32, 8 + 3)
    logits, _ = model(torch.randint(1, 11, (2, 5)), cond=torch.randn(2, 3))
    assert logits.shape == (2, 5, 11)
    same = build_generator(load_config(None, ["generator.arch=lstm", "generator.hidden_size=32"]).generator, 11, 12)
    assert same.embed.weight.shape == (11, 32)  # 0 = the state width, as before the setting existed


def test_lstm_init_std_draws_every_parameter_from_one_normal() -> None:
    def build(*extra: str) -> torch.nn.Module:
        torch.manual_seed(0)
        cfg = load_config(None, ["generator.arch=lstm", "generator.hidden_size=32", "generator.num_layers=1", *extra])
        return build_generator(cfg.generator, vocab_size=500, max_length=12)

    seqgan, default = build("generator.init_std=0.1"), build()
    for name, p in ((n, q.detach()) for n, q in seqgan.named_parameters()):
        assert float(p.std()) == pytest.approx(0.1, rel=0.25), name
        assert abs(float(p.mean())) < 0.05, name
    assert float(default.embed.weight.detach().std()) == pytest.approx(1.0, rel=0.1)  # PyTorch's N(0, 1) when 0
    with pytest.raises(LanganError, match="init_std is an LSTM / rmc setting"):
        load_config(None, ["generator.arch=transformer", "generator.init_std=0.1"])


@pytest.mark.parametrize("override", ["generator.tie_word_embeddings=true", "generator.arch=transformer"])
def test_embedding_size_refused_where_it_cannot_apply(override: str) -> None:
    from langan.errors import LanganError

    with pytest.raises(LanganError, match="embedding_size"):
        load_config(None, ["generator.arch=lstm", "generator.hidden_size=32", "generator.embedding_size=8",
                           "generator.num_heads=2", override])


@pytest.mark.parametrize("shape", [((1, 2, 5, 20), (3, 4, 2, 5), 1), ((2, 3), (6, 4), 4)])
def test_cnn_discriminator_windows_equal_conv2d(shape: tuple) -> None:
    # the unfold-and-matmul convolution is the Conv2d it keeps the weights of (SeqGAN shape R = 1; RelGAN R > 1)
    filter_sizes, num_filters, reps = shape
    torch.manual_seed(0)
    disc = CNNDiscriminator(30, 20, 8, filter_sizes, num_filters, reps, 0.0, 0)
    x = torch.randn(5, 20, 8)
    for conv in disc.convs:
        expected = conv(x[:, None]).permute(0, 2, 3, 1)  # [B, T', R, n]
        torch.testing.assert_close(disc.convolve(x, conv), expected, rtol=1e-5, atol=1e-5)


def test_cnn_discriminator_convolves_by_one_matrix_product_under_bf16() -> None:
    # the windows go into the product as 2-D rows. Left 4-D, bf16 autocast's copy of them carries a stride on the
    # size-1 representation axis that stops matmul from folding it: it broadcast the weight to every window
    # (a [B T', f S, n] copy) and took a batched product, ~180x slower (rollout rewards of oracle-seqgan with
    # train.dtype=bfloat16 took 131 s instead of 6 s). 2-D products only, and still Conv2d's values
    from torch.profiler import profile

    torch.manual_seed(0)
    disc = CNNDiscriminator(30, 20, 8, (1, 2, 5), (3, 4, 2), 1, 0.0, 0)
    x = torch.randn(5, 20, 8)
    for conv in disc.convs:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), profile() as prof:  # as in rewards
            got = disc.convolve(x, conv)
        products = {e.name for e in prof.events() if e.name in ("aten::mm", "aten::addmm", "aten::bmm")}
        assert products and "aten::bmm" not in products, (conv, products)
        expected = conv(x[:, None]).permute(0, 2, 3, 1)
        torch.testing.assert_close(got.float(), expected, rtol=0.05, atol=0.05)


def test_cnn_discriminator_pools_as_relu_then_max_over_time() -> None:
    # the score pools max-then-ReLU; values and gradients must equal the textbook ReLU-then-max of Conv2d maps
    torch.manual_seed(0)
    disc = CNNDiscriminator(30, 12, 8, (2, 3, 12), (4, 5, 3), 1, 0.0, 0)
    x = torch.randn(6, 12, 8, requires_grad=True)
    got = disc.score(x)
    (grad_got,) = torch.autograd.grad(got.sum(), x)
    pooled = torch.cat([F.relu(conv(x[:, None])).squeeze(-1).amax(-1) for conv in disc.convs], -1)  # [B, F]
    gate = disc.highway(pooled)
    h = torch.sigmoid(gate) * F.relu(gate) + (1 - torch.sigmoid(gate)) * pooled
    expected = disc.head(h).squeeze(-1)
    (grad_expected,) = torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_got, grad_expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reps", [1, 2])
def test_cnn_discriminator_scores_rollouts_as_whole_rows(reps: int) -> None:
    # forward_rollouts convolves each group's shared prefix once; it must give forward's logits for every prefix
    # length, with rows shorter than max_length (PAD-filled) and PAD after an EOS inside a completion
    torch.manual_seed(0)
    disc = CNNDiscriminator(30, 12, 8, (1, 2, 3, 5, 12), (3, 4, 2, 3, 2), reps, 0.0, 0).eval()
    n, k, width = 3, 4, 9
    for t in range(1, width):
        prefixes = torch.randint(4, 30, (n, t))
        tails = torch.randint(4, 30, (n * k, width - t))
        tails[1, 1:] = PAD  # an early end (EOS, then PAD) in one completion
        tails[1, 0] = EOS
        tokens = torch.cat([prefixes.repeat_interleave(k, 0), tails], 1)  # [n k, width]
        with torch.no_grad():
            torch.testing.assert_close(disc.forward_rollouts(tokens, t, k), disc(tokens)[1], rtol=1e-5, atol=1e-5)
