"""Pretrained Hugging Face models behind langan's contracts: a causal LM as the generator, a causal LM or an
encoder with a new scoring head as the discriminator.

Both read langan ids (`langan.tokens.ForeignVocab`: PAD/BOS/EOS/UNK = 0..3 are the model's special tokens) and
map them to the model's ids with one gather; a generator's logits come back in langan's order, each model id
once, with -1e9 (probability 0) for the ids that are never a target (PAD, BOS, an UNK the model lacks).
Sampling uses the model's own KV cache (`transformers.DynamicCache`, which concatenates, so gradients pass
through it for soft samples).
Weights are read from safetensors only and a folder's own code is never run (`trust_remote_code` stays off).
`transformers` is the optional extra `hf`, imported only when a model is built.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from langan.errors import LanganError
from langan.tokens import from_left_padded, left_align, left_pad, load_model_tokenizer

PICKLED = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
# the logit of a langan id with no model id of its own: probability exactly 0 after softmax, yet finite, so a KL
# or entropy between two such distributions stays finite (-inf - -inf would be NaN)
NO_LOGIT = -1e9


def import_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise LanganError("a Hugging Face model needs the optional extra: pip install 'langan[hf]' (transformers)"
                          ) from None
    transformers.logging.set_verbosity_error()  # no "some weights were not initialised" chatter for a new head
    transformers.logging.disable_progress_bar()
    return transformers


def check_model_folder(path: str | Path, key: str) -> dict[str, Any]:
    """The folder's config.json, after refusing what langan will not load: no folder, no config, weights only
    as pickles (they can run code when unpickled), or a model whose code lives in the folder (auto_map)."""
    folder = Path(path)
    if not folder.is_dir():
        raise LanganError(f"{key}='{path}' is not a folder; give a local folder written by save_pretrained")
    if not (folder / "config.json").is_file():
        raise LanganError(f"{key}='{path}' has no config.json; give a folder written by save_pretrained")
    if not any(folder.glob("*.safetensors")):
        pickles = sorted(p.name for pattern in PICKLED for p in folder.glob(pattern))
        if pickles:
            raise LanganError(f"{key}='{path}' holds its weights only as pickles ({', '.join(pickles)}), which can "
                              "run code when loaded; langan reads safetensors only: re-save the model with "
                              "save_pretrained(DIR) (safetensors is its default)")
        raise LanganError(f"{key}='{path}' has no *.safetensors weights")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise LanganError(f"cannot read {folder / 'config.json'}: {err}") from None
    if config.get("auto_map"):
        raise LanganError(f"{key}='{path}' needs its own Python code (auto_map in config.json); langan never runs "
                          "a model folder's code (trust_remote_code); use an architecture transformers ships")
    return config


def _load(path: str | Path, key: str, causal_lm: bool) -> nn.Module:
    check_model_folder(path, key)
    tf = import_transformers()
    auto = tf.AutoModelForCausalLM if causal_lm else tf.AutoModel
    try:
        return auto.from_pretrained(str(path), use_safetensors=True, trust_remote_code=False, local_files_only=True,
                                    dtype=torch.float32)
    except (ValueError, OSError, KeyError, RuntimeError, ImportError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LanganError(f"{key}='{path}' cannot be loaded by transformers: {first}") from None


def _positions(attention_mask: Tensor) -> Tensor:
    """[B, T] bool, True on real tokens (left padding) -> position ids counted from each row's first real token."""
    return (attention_mask.long().cumsum(1) - 1).clamp(min=0)


class HFCache:
    """langan's cache contract (`pos`, `repeat_rows`) over a transformers cache, created by the first call."""

    def __init__(self) -> None:
        self.past: Any = None
        self.pos = 0

    def repeat_rows(self, repeats: int) -> HFCache:
        """B * repeats rows, row b copied to rows b * repeats ... (b + 1) * repeats - 1 (in place: the cache
        of B rows is consumed)."""
        if self.past is not None:
            self.past.batch_repeat_interleave(repeats)
        return self


class _ModelIds(nn.Module):
    """The langan -> model id table of a folder's vocabulary, as buffers (not saved: the folder defines them)."""

    def __init__(self, path: str | Path, vocab_size: int, model_rows: int, key: str):
        super().__init__()
        _, vocab = load_model_tokenizer(path, key)  # the same reading as the run's ModelTokenizer
        size = vocab.model_size
        if vocab.size != vocab_size:
            raise LanganError(f"{key}='{path}': its tokenizer gives {vocab.size} langan ids but the run's tokenizer "
                              f"{vocab_size}; the run must read text with this model's tokenizer")
        if size > model_rows:
            raise LanganError(f"{key}='{path}': its tokenizer has {size} tokens but the model only {model_rows} "
                              "embedding rows")
        self.register_buffer("to_model", torch.tensor(vocab.to_model), persistent=False)
        bias = torch.zeros(vocab.size)
        bias[vocab.no_logit] = NO_LOGIT
        self.register_buffer("logit_bias", bias, persistent=False)


class HFGenerator(nn.Module):
    """A causal LM with the generator contract: `forward(tokens, cache, cond) -> (logits [B, T, V], cache)` in
    langan ids; `forward_embeds` takes input embeddings (relaxed one-hots @ E enter there)."""

    def __init__(self, path: str | Path, vocab_size: int, max_length: int, **_: object):
        super().__init__()
        self.model = _load(path, "generator.path", causal_lm=True)
        self.vocab_size, self.max_length = vocab_size, max_length
        rows = self.model.get_input_embeddings().num_embeddings
        self.ids = _ModelIds(path, vocab_size, rows, "generator.path")
        limit = getattr(self.model.config, "max_position_embeddings", None) or getattr(
            self.model.config, "n_positions", None)
        if limit is not None and max_length + 1 > limit:
            raise LanganError(f"data.max_length={max_length} needs {max_length + 1} positions but the model at "
                              f"generator.path has {limit}; lower data.max_length")

    def new_cache(self, batch_size: int, max_tokens: int | None = None, differentiable: bool = False) -> HFCache:
        return HFCache()

    def embed_tokens(self, tokens: Tensor) -> Tensor:
        return self.model.get_input_embeddings()(self.ids.to_model[tokens])

    def embed_probs(self, probs: Tensor) -> Tensor:
        """[B, T, V] relaxed one-hots over langan ids -> their expected input embedding [B, T, H]."""
        return probs @ self.model.get_input_embeddings().weight[self.ids.to_model]

    def forward(self, tokens: Tensor, cache: HFCache | None = None, cond: Tensor | None = None,
                attention_mask: Tensor | None = None) -> tuple[Tensor, HFCache | None]:
        """tokens [B, T] langan ids -> logits [B, T, V]; attention_mask [B, T] bool for left-padded rows."""
        return self._run({"input_ids": self.ids.to_model[tokens]}, tokens.shape[1], cache, cond, attention_mask)

    def forward_embeds(self, x: Tensor, cache: HFCache | None = None, cond: Tensor | None = None,
                       attention_mask: Tensor | None = None) -> tuple[Tensor, HFCache | None]:
        return self._run({"inputs_embeds": x}, x.shape[1], cache, cond, attention_mask)

    def _run(self, inputs: dict[str, Tensor], t: int, cache: HFCache | None, cond: Tensor | None,
             attention_mask: Tensor | None) -> tuple[Tensor, HFCache | None]:
        if cond is not None and cond.shape[-1]:
            raise ValueError("a Hugging Face generator takes no conditioning vector")
        if attention_mask is not None:
            inputs |= {"attention_mask": attention_mask.long(), "position_ids": _positions(attention_mask)}
        out = self.model(**inputs, past_key_values=None if cache is None else cache.past, use_cache=cache is not None)
        if cache is not None:
            cache.past, cache.pos = out.past_key_values, cache.pos + t
        logits = out.logits.index_select(-1, self.ids.to_model) + self.ids.logit_bias  # [B, T, V] langan order
        return logits, cache


def _is_causal(model: nn.Module) -> bool:
    names = getattr(model.config, "architectures", None) or []
    return any(str(n).endswith(CAUSAL_SUFFIXES) for n in names)


class HFDiscriminator(nn.Module):
    """A pretrained body (the base model of a causal LM or an encoder) with a new linear scoring head, with the
    discriminator contract of `TransformerDiscriminator`: left-padded reading, per-prefix logits (causal bodies
    only) or a sequence logit at the last real token, and relaxed one-hots through its embedding."""

    def __init__(self, path: str | Path, vocab_size: int, max_length: int, output: str = "sequence",
                 dropout: float = 0.0):
        super().__init__()
        self.body = _load(path, "disc.path", causal_lm=False)
        if output == "per_step" and not _is_causal(self.body):
            raise LanganError(f"disc.path='{path}' is a bidirectional encoder: its logit at t has seen later "
                              "tokens, so it cannot judge prefixes; set disc.output=sequence")
        rows = self.body.get_input_embeddings().num_embeddings
        self.ids = _ModelIds(path, vocab_size, rows, "disc.path")
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.body.config.hidden_size, 1)
        self.takes_positions = "position_ids" in inspect.signature(self.body.forward).parameters

    def _score(self, inputs: dict[str, Tensor], mask: Tensor) -> Tensor:
        if self.takes_positions:  # left padding: count positions from each row's first real token
            inputs = inputs | {"position_ids": _positions(mask)}
        out = self.body(**inputs, attention_mask=mask.long())
        return self.head(self.drop(out.last_hidden_state)).squeeze(-1).float()  # [B, T]

    def forward_left_padded(self, tokens: Tensor, attention_mask: Tensor) -> Tensor:
        return self._score({"input_ids": self.ids.to_model[tokens]}, attention_mask)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Right-padded tokens [B, T] (no BOS) -> (per-prefix logits [B, T], sequence logits [B])."""
        padded, mask = left_pad(tokens)
        logits = self.forward_left_padded(padded, mask)
        return from_left_padded(logits, mask), logits[:, -1]

    def forward_probs(self, probs: Tensor, lengths: Tensor) -> Tensor:
        embedding = self.body.get_input_embeddings().weight[self.ids.to_model]  # [V, H] in langan order
        x, mask = left_align(probs @ embedding, lengths)
        return self._score({"inputs_embeds": x}, mask)[:, -1]
