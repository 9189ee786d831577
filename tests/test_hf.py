"""Hugging Face models in and out: id mapping, export to Llama (logits equal), pretrained generators and
discriminators under every algorithm, exact resume, refusals. Tiny models are built here: no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers  # the optional extra `hf`, which `make test` installs
from safetensors.torch import load_file
from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer

from conftest import NAMES, REPO, tiny_overrides
from langan.cli import main
from langan.data.tokenizers import ModelTokenizer
from langan.errors import LanganError
from langan.models.transformer import TransformerLM
from langan.runs.checkpoint import step_checkpoints
from langan.runs.export import llama_config, llama_state_dict
from langan.runs.rundir import RunDir
from langan.tokens import BOS, EOS, PAD, UNK, ForeignVocab

LETTERS = sorted({c for name in NAMES for c in name})


def _save_tokenizer(tok: HFTokenizer, folder: Path, **specials: str) -> None:
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, **specials).save_pretrained(str(folder))


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama whose char tokenizer has <unk> <s> </s> at 0-2 and no PAD, and 5 spare embedding rows."""
    folder = tmp_path_factory.mktemp("llama")
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2} | {c: i + 3 for i, c in enumerate(LETTERS)}
    tok = HFTokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("(?m)."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    _save_tokenizer(tok, folder, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=len(vocab) + 5, hidden_size=16, intermediate_size=32,
                                   num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                   max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=None)
    transformers.LlamaForCausalLM(cfg).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer GPT-2 with a byte-level BPE whose one special token, <|endoftext|>, is its last id (BOS, EOS, UNK
    at once, no PAD), as in GPT-2."""
    folder = tmp_path_factory.mktemp("gpt2")
    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(NAMES, trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.add_special_tokens(["<|endoftext|>"])
    eot = tok.token_to_id("<|endoftext|>")
    _save_tokenizer(tok, folder, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=tok.get_vocab_size(), n_embd=16, n_layer=2, n_head=2, n_positions=64,
                                  bos_token_id=eot, eos_token_id=eot)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT encoder (bidirectional) with a char vocabulary framed by [CLS] / [SEP], no BOS / EOS named."""
    folder = tmp_path_factory.mktemp("bert")
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3} | {c: i + 4 for i, c in enumerate(LETTERS)}
    tok = HFTokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("(?m)."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(list(vocab)[:4])
    _save_tokenizer(tok, folder, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, max_position_embeddings=64, pad_token_id=0)
    transformers.BertModel(cfg).save_pretrained(str(folder))
    return folder


def hf_overrides(source: Path, model: Path, **extra: object) -> list[str]:
    return tiny_overrides(source, **{"generator.arch": "hf", "generator.path": str(model), **extra})


def _train(args: list[str], tmp_path: Path, name: str, *more: str) -> Path:
    assert main(["train", *args, "--runs-dir", str(tmp_path), "--quiet", "--name", name, *more]) == 0
    return tmp_path / name


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- ids


def test_gpt2_style_specials_map_onto_langans_four() -> None:
    """One model id (7) serves BOS, EOS and UNK and there is no PAD: all four langan specials read as it, it comes
    back as EOS, and only EOS gets its logit (PAD, BOS, UNK get none), so no probability is counted twice."""
    v = ForeignVocab(8, {"pad": None, "bos": 7, "eos": 7, "unk": 7})
    assert v.size == 4 + 7 and v.to_model == [7, 7, 7, 7, 0, 1, 2, 3, 4, 5, 6]
    assert v.from_model == [4, 5, 6, 7, 8, 9, 10, EOS] and v.no_logit == [PAD, BOS, UNK]
    llama = ForeignVocab(6, {"pad": None, "bos": 1, "eos": 2, "unk": 0})
    assert llama.to_model[:4] == [2, 1, 2, 0] and llama.from_model[:3] == [UNK, BOS, EOS]
    assert llama.no_logit == [PAD, BOS]
    with pytest.raises(LanganError, match="no EOS"):
        ForeignVocab(6, {"pad": None, "bos": 1, "eos": None, "unk": 0})
    assert ForeignVocab.of(6, {"pad": -1, "bos": 9, "eos": 2, "unk": 0}).specials == {
        "pad": None, "bos": None, "eos": 2, "unk": 0}  # out-of-range PAD / BOS (pad_token_id: -1) read as absent
    with pytest.raises(LanganError, match="outside"):
        ForeignVocab.of(6, {"pad": None, "bos": 1, "eos": 7, "unk": 0})


def test_model_tokenizer_round_trips_and_reads_special_strings_as_text(gpt2_dir: Path, llama_dir: Path) -> None:
    for folder in (gpt2_dir, llama_dir):
        tok = ModelTokenizer.from_folder(folder)
        for name in ("emma", "sebastian"):
            ids = tok.encode(name)
            assert min(ids) > UNK and tok.decode([BOS, *ids, EOS, PAD]) == name
    gpt2 = ModelTokenizer.from_folder(gpt2_dir)
    literal = gpt2.encode("a<|endoftext|>b")
    assert EOS not in literal and gpt2.decode(literal) == "a<|endoftext|>b"
    assert ModelTokenizer.from_json(json.loads(json.dumps(gpt2.to_json()))).encode("mila") == gpt2.encode("mila")


# ----------------------------------------------------------------------------- export


@pytest.mark.parametrize("tied", [False, True])
def test_exported_llama_gives_langans_logits(tied: bool) -> None:
    """Random langan transformer -> LlamaForCausalLM: logits equal to 1e-5 on random batches, full rows, right
    padding (causal: real positions unaffected) and left padding with an attention mask."""
    torch.manual_seed(1)
    lm = TransformerLM(40, 24, hidden_size=32, intermediate_size=48, num_layers=2, num_heads=4, rope_theta=500.0,
                       tie_word_embeddings=tied, activation="swiglu").eval()
    for p in lm.parameters():  # norms away from 1 so a swapped norm weight would show
        torch.nn.init.normal_(p, std=0.3)
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(**llama_config(lm))).eval()
    missing, unexpected = llama.load_state_dict(llama_state_dict(lm), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}
    tokens = torch.randint(4, 40, (5, 20))
    with torch.no_grad():
        assert torch.allclose(llama(tokens).logits, lm(tokens)[0], atol=1e-5)
        lengths = torch.tensor([20, 3, 11, 1, 17])
        mask = torch.arange(20)[None] >= (20 - lengths)[:, None]  # left padding
        left = tokens.masked_fill(~mask, PAD)
        ours = lm(left, attention_mask=mask)[0]
        theirs = llama(left, attention_mask=mask.long(), position_ids=(mask.long().cumsum(1) - 1).clamp(min=0)).logits
        assert torch.allclose(ours[mask], theirs[mask], atol=1e-5)
        right = tokens.masked_fill(torch.arange(20)[None] >= lengths[:, None], PAD)
        real = torch.arange(20)[None] < lengths[:, None]
        assert torch.allclose(llama(right).logits[real], lm(right)[0][real], atol=1e-5)


def test_export_cli_writes_a_folder_transformers_samples_from(names_file: Path, tmp_path: Path) -> None:
    llama_shaped = {"generator.activation": "swiglu", "generator.learned_positions": "false"}
    args = [str(REPO / "configs" / "names-mle.yaml"), *tiny_overrides(names_file, **llama_shaped)]
    run = _train(args, tmp_path, "mle")
    out = tmp_path / "hf"
    assert main(["export", str(run), "--to", "hf", str(out)]) == 0
    model = transformers.AutoModelForCausalLM.from_pretrained(str(out)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(out))
    assert type(model).__name__ == "LlamaForCausalLM" and tok.convert_ids_to_tokens(EOS) == "<eos>"
    ids = tok("emma")["input_ids"]
    assert ids[0] == BOS and tok.decode(ids, skip_special_tokens=True) == "emma"
    assert tok("")["input_ids"] == [BOS]  # an empty prompt starts a sample, as in langan
    out_ids = model.generate(torch.tensor([[BOS]]), max_new_tokens=10, do_sample=True, pad_token_id=PAD)
    assert out_ids.shape[1] >= 2
    # the folder as langan's generator: same logits as the run's own (PAD / BOS logits aside: never targets)
    from langan.runs.loading import load_run

    ours = load_run(run).algorithm.generator.eval()
    hf_run = _train([*args, "generator.arch=hf", f"generator.path={out}", "train.steps=1"], tmp_path, "back")
    assert json.loads((hf_run / "tokenizer.json").read_text())["kind"] == "hf"
    back = load_run(hf_run, "step-1").algorithm.generator  # noqa: F841  (the run loads)
    from langan.models.hf import HFGenerator

    fresh = HFGenerator(out, ours.vocab_size, ours.max_length).eval()
    x = torch.randint(4, ours.vocab_size, (3, 9))
    with torch.no_grad():
        assert torch.allclose(fresh(x)[0][..., EOS:], ours(x)[0][..., EOS:], atol=1e-5)


@pytest.mark.parametrize(("setting", "fix"), [("generator.learned_positions=true", "learned_positions=false"),
                                              ("generator.learned_positions=false", "generator.activation=swiglu")])
def test_export_refuses_what_llama_lacks(setting: str, fix: str, names_file: Path, tmp_path: Path, capsys) -> None:
    run = _train([str(REPO / "configs" / "names-mle.yaml"), *tiny_overrides(names_file), setting], tmp_path, "gelu")
    capsys.readouterr()
    assert main(["export", str(run), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fix in err, err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- pretrained generators


def test_hf_generator_mle_lowers_the_loss(names_file: Path, llama_dir: Path, gpt2_dir: Path, tmp_path: Path) -> None:
    for folder in (llama_dir, gpt2_dir):
        extra = {"train.steps": 20, "optim.gen.lr": 1e-2, "eval.every": 20, "train.log_every": 1}
        args = [str(REPO / "configs" / "names-mle.yaml"), *hf_overrides(names_file, folder, **extra)]
        run = _train(args, tmp_path, folder.name)
        losses = [m["gen/loss"] for m in _metrics(run) if "gen/loss" in m]
        assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3, losses
        samples = (run / "samples").iterdir()
        assert any(p.read_text().strip() for p in samples)


def test_hf_generator_exploits_a_frozen_random_discriminator(names_file: Path, llama_dir: Path,
                                                             tmp_path: Path) -> None:
    extra = {"disc.frozen": "true", "train.pretrain_steps": 0, "reward.entropy_mult": 0.0, "reward.kl_mult": 0,
             "optim.gen.lr": 1e-2, "train.batch_size": 32, "reward.baseline": "batch_mean", "train.steps": 20,
             "disc.hidden_size": 16, "disc.intermediate_size": 32, "disc.num_layers": 1, "disc.num_heads": 2,
             "disc.grad_accumulation": 1, "eval.every": 20, "train.log_every": 1}
    run = _train([str(REPO / "configs" / "names-reinforce.yaml"), *hf_overrides(names_file, llama_dir, **extra)],
                 tmp_path, "exploit")
    rewards = [m["reward/mean"] for m in _metrics(run) if "reward/mean" in m]
    assert len(rewards) == 20 and sum(rewards[-5:]) / 5 > sum(rewards[:5]) / 5 + 0.02, rewards


def test_hf_sampling_through_its_kv_cache_equals_full_recompute(gpt2_dir: Path) -> None:
    """The transformers cache (prefix read once, rows repeated in place) samples what full passes sample."""
    from langan.generation import sample
    from langan.models.hf import HFGenerator

    gen = HFGenerator(gpt2_dir, ModelTokenizer.from_folder(gpt2_dir).vocab_size, 12)
    plain = [sample(gen, 8, 12, use_cache=c, generator=torch.Generator().manual_seed(0)) for c in (True, False)]
    assert torch.equal(plain[0].tokens, plain[1].tokens)
    torch.testing.assert_close(plain[0].logprobs, plain[1].logprobs, rtol=1e-4, atol=1e-5)
    prefix = torch.randint(4, gen.vocab_size, (3, 4))
    rolled = [sample(gen, 12, 12, prefix=prefix, repeats=4, use_cache=c, generator=torch.Generator().manual_seed(1))
              for c in (True, False)]
    assert torch.equal(rolled[0].tokens, rolled[1].tokens)
    assert torch.equal(rolled[0].tokens[:, :4], prefix.repeat_interleave(4, 0))
    assert not (plain[0].tokens[:, :, None] == torch.tensor([BOS, UNK])).any()  # never a special but EOS


def test_soft_samples_backpropagate_through_inputs_embeds(llama_dir: Path) -> None:
    from langan.generation import soft_sample
    from langan.models.hf import HFGenerator

    gen = HFGenerator(llama_dir, ModelTokenizer.from_folder(llama_dir).vocab_size, 8)
    out = soft_sample(gen, torch.zeros(4, 0), 8, tau=0.5, gumbel=True)
    (out.probs[..., 5:9].sum()).backward()
    grads = [p.grad for p in gen.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert torch.allclose(out.probs[..., [PAD, BOS]], torch.zeros(())), "PAD/BOS got probability"


@pytest.mark.parametrize("mode", ["reinforce", "rollout", "gumbel"])
def test_hf_generator_resume_is_bit_exact(mode: str, names_file: Path, gpt2_dir: Path, tmp_path: Path) -> None:
    """Pretraining, then the adversarial phase with the KL to the pretrained copy (reinforce), SeqGAN rollouts, or
    Gumbel-softmax against a GPT-2 discriminator that reads the relaxed one-hots through inputs_embeds."""
    extra = {"algorithm": "gumbel" if mode == "gumbel" else "reinforce", "train.pretrain_steps": 2,
             "train.steps": 4, "eval.every": 3, "disc.hidden_size": 16, "disc.intermediate_size": 32,
             "disc.num_layers": 1, "disc.num_heads": 2, "disc.grad_accumulation": 1}
    if mode == "rollout":
        extra |= {"reward.mode": "rollout", "disc.output": "sequence", "reward.rollout_num": 2}
    if mode == "gumbel":
        extra |= {"disc.output": "sequence", "reward.mode": "final", "disc.arch": "hf", "disc.path": str(gpt2_dir)}
    args = [str(REPO / "configs" / "names-reinforce.yaml"), *hf_overrides(names_file, gpt2_dir, **extra)]
    _train(args, tmp_path, "straight")
    _train(args, tmp_path, "split", "--stop-after", "4")
    assert main(["train", "--resume", str(tmp_path / "split"), "--quiet"]) == 0
    for net in ("generator", "discriminator"):
        a, b = (load_file(str(step_checkpoints(RunDir(tmp_path / n))[-1] / f"{net}.safetensors"))
                for n in ("straight", "split"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), net


def test_hf_discriminator_judges_prefixes_of_its_own_tokens(names_file: Path, gpt2_dir: Path, tmp_path: Path) -> None:
    """GPT-2 as G and, with a new head, as D (per-prefix logits: a causal body); D learns and its body changes."""
    extra = {"disc.arch": "hf", "disc.path": str(gpt2_dir), "train.pretrain_steps": 0, "train.steps": 3,
             "eval.every": 3}
    run = _train([str(REPO / "configs" / "names-reinforce.yaml"), *hf_overrides(names_file, gpt2_dir, **extra)],
                 tmp_path, "hfdisc")
    d = load_file(str(step_checkpoints(RunDir(run))[-1] / "discriminator.safetensors"))
    assert "head.weight" in d and any(k.startswith("body.") for k in d)
    assert all(m.get("disc/loss", 0) == m.get("disc/loss", 0) for m in _metrics(run))  # no NaN


def test_an_encoder_discriminator_judges_whole_sequences_only(names_file: Path, bert_dir: Path, tmp_path: Path,
                                                               capsys) -> None:
    """langan's own generator on BERT's tokenizer ([CLS] / [SEP] as BOS / EOS) against BERT with a new head; per-prefix
    logits from a bidirectional body are refused with one line."""
    base = [str(REPO / "configs" / "names-reinforce.yaml"), *tiny_overrides(names_file, **{
        "data.tokenizer": "hf", "data.tokenizer_path": str(bert_dir), "disc.arch": "hf", "disc.path": str(bert_dir),
        "train.pretrain_steps": 2, "train.steps": 3, "eval.every": 5})]
    run = _train([*base, "disc.output=sequence", "reward.mode=final"], tmp_path, "bert")
    d = load_file(str(step_checkpoints(RunDir(run))[-1] / "discriminator.safetensors"))
    assert any(k.startswith("body.encoder.") for k in d)
    tok = ModelTokenizer.from_folder(bert_dir)
    assert tok.to_model[:4] == [0, 2, 3, 1] and tok.decode([BOS, *tok.encode("mila"), EOS]) == "mila"
    capsys.readouterr()
    assert main(["train", *base, "--runs-dir", str(tmp_path), "--name", "per-step"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "disc.output=sequence" in err, err


# ----------------------------------------------------------------------------- refusals


def test_pickled_weights_and_remote_code_are_refused(names_file: Path, llama_dir: Path, tmp_path: Path,
                                                     capsys) -> None:
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (pickled / f).write_bytes((llama_dir / f).read_bytes())
    torch.save(load_file(str(llama_dir / "model.safetensors")), pickled / "pytorch_model.bin")
    remote = tmp_path / "remote"
    remote.mkdir()
    for f in llama_dir.iterdir():
        (remote / f.name).write_bytes(f.read_bytes())
    config = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps(config | {"auto_map": {"AutoModelForCausalLM": "m.M"}}))
    preset = str(REPO / "configs" / "names-mle.yaml")
    for folder, words in ((pickled, "pytorch_model.bin"), (remote, "trust_remote_code"),
                          (tmp_path / "missing", "not a folder")):
        capsys.readouterr()
        assert main(["train", preset, *hf_overrides(names_file, folder), "--runs-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, err


# ----------------------------------------------------------------------------- the discriminator as a reward


def test_discriminator_reward_has_trls_signature_and_scores_what_d_scores(names_file: Path, tmp_path: Path) -> None:
    from langan.reward import DiscriminatorReward
    from langan.runs.loading import load_run

    args = [str(REPO / "configs" / "names-reinforce.yaml"),
            *tiny_overrides(names_file, **{"disc.hidden_size": 16, "disc.intermediate_size": 32, "disc.num_layers": 1,
                                           "disc.num_heads": 2, "train.pretrain_steps": 2, "train.steps": 3})]
    run = _train(args, tmp_path, "gan")
    reward = DiscriminatorReward(run)
    texts = ["emma", "xqzvxq", "sebastian"]
    got = reward(prompts=["", "", ""], completions=texts)
    chat = reward(prompts=None, completions=[[{"role": "assistant", "content": t}] for t in texts])
    loaded = load_run(run, "latest")
    rows = torch.stack([torch.tensor([*loaded.data.tokenizer.encode(t), EOS] + [PAD] * (16 - len(t) - 1))
                        for t in texts])
    with torch.no_grad():
        per_step, seq = loaded.algorithm.discriminator()(rows)
    assert got == chat and len(got) == 3
    assert torch.allclose(torch.tensor(got), seq.sigmoid(), atol=1e-6)
    scores = reward.token_scores(texts)
    assert [len(s) for s in scores] == [len(t) + 1 for t in texts]  # every prefix, EOS included
    assert torch.allclose(torch.tensor(scores[2]), per_step[2, : len(texts[2]) + 1].sigmoid(), atol=1e-6)
    assert scores[0][-1] == pytest.approx(got[0], abs=1e-6)  # the last prefix is the whole text
    mle = _train([str(REPO / "configs" / "names-mle.yaml"), *tiny_overrides(names_file)], tmp_path, "mle")
    with pytest.raises(LanganError, match="no discriminator"):
        DiscriminatorReward(mle)
