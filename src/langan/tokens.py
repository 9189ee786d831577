"""The token contract every part shares: reserved ids, and the two padding layouts.

Every tokenizer reserves PAD=0, BOS=1, EOS=2, UNK=3. A sequence is `BOS x1..xn EOS PAD...`: generators
read right-padded rows; discriminators and readers read left-padded rows with an attention mask.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from langan.errors import LanganError

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


def left_pad(tokens: Tensor) -> tuple[Tensor, Tensor]:
    """Right-padded [B, T] -> (left-padded [B, T], attention mask [B, T] bool, True on real tokens)."""
    t = tokens.shape[1]
    lengths = (tokens != PAD).sum(1, keepdim=True)  # [B, 1]
    src = torch.arange(t, device=tokens.device) - (t - lengths)  # [B, T] where each slot reads from
    mask = src >= 0
    out = torch.where(mask, tokens.gather(1, src.clamp(min=0)), torch.full_like(tokens, PAD))
    return out, mask


def left_align(values: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """`left_pad` for rows of vectors: right-aligned [B, T, H] whose first lengths[b] rows are real ->
    (left-padded [B, T, H], zeros in front; mask [B, T] bool, True on real rows). Soft inputs enter here."""
    t = values.shape[1]
    src = torch.arange(t, device=values.device) - (t - lengths.to(values.device)[:, None])  # [B, T]
    mask = src >= 0
    gathered = values.gather(1, src.clamp(min=0)[..., None].expand(-1, -1, values.shape[-1]))
    return gathered * mask[..., None].to(values.dtype), mask


def from_left_padded(values: Tensor, mask: Tensor) -> Tensor:
    """Inverse of `left_pad` for per-position values: left-padded [B, T] (mask True on real slots) ->
    right-padded [B, T], 0 where there is no real token."""
    t = values.shape[1]
    lengths = mask.sum(1, keepdim=True)  # [B, 1]
    src = torch.arange(t, device=values.device) + (t - lengths)  # [B, T] slot each position comes from
    valid = src < t
    return torch.where(valid, values.gather(1, src.clamp(max=t - 1)), torch.zeros_like(values))


# ---------------------------------------------------------------- a model's own vocabulary (Hugging Face folders)

MODEL_SPECIALS = ("pad", "bos", "eos", "unk")


@dataclass(frozen=True)
class ForeignVocab:
    """langan's ids over a pretrained model's vocabulary of `model_size` ids whose special tokens are elsewhere.

    langan ids 0..3 are PAD, BOS, EOS, UNK; ids 4.. are the model's other ids in the model's order. The model's
    special ids become langan's: EOS is required; a missing BOS or PAD reads as the model's EOS (GPT-2 has one
    token for all three), a missing UNK likewise (byte-level tokenizers never need one). `to_model[i]` is the model
    id langan id i is fed to the model as; `from_model[j]` the langan id of model id j (a model id serving several
    specials is the first of EOS, UNK, BOS, PAD); `no_logit` are langan ids that are never a target and get no
    probability (PAD, BOS, and UNK when it has no model id of its own), so each model id's logit counts once.
    """

    model_size: int
    specials: dict[str, int | None]

    def __post_init__(self) -> None:
        eos = self.specials.get("eos")
        if eos is None:
            raise LanganError("the model names no EOS token (eos_token_id in config.json); langan needs one to end "
                              "samples")
        used = [i for i in self.specials.values() if i is not None]
        if any(not 0 <= i < self.model_size for i in used):
            raise LanganError(f"a special token id {used} is outside the model's vocabulary of {self.model_size}")

    @classmethod
    def of(cls, model_size: int, specials: dict[str, int | None]) -> ForeignVocab:
        """From a folder's special ids, a PAD / BOS / UNK id outside the vocabulary (configs write pad_token_id -1)
        read as absent; EOS must be inside it."""
        kept = {k: v if k == "eos" or v is None or 0 <= v < model_size else None for k, v in specials.items()}
        return cls(model_size, kept)

    def _model_id(self, name: str) -> int:
        own = self.specials.get(name)
        return own if own is not None else int(self.specials["eos"])  # type: ignore[arg-type]

    @cached_property  # computed once per vocabulary (a frozen dataclass still has a __dict__ for the cache)
    def regular(self) -> list[int]:
        """Model ids that are not special, in order: langan ids 4, 5, ..."""
        taken = {i for i in self.specials.values() if i is not None}
        return [i for i in range(self.model_size) if i not in taken]

    @property
    def size(self) -> int:
        return len(SPECIALS) + len(self.regular)

    @cached_property
    def to_model(self) -> list[int]:
        return [self._model_id(n) for n in MODEL_SPECIALS] + self.regular

    @cached_property
    def from_model(self) -> list[int]:
        out = [0] * self.model_size
        for lid, mid in enumerate(self.regular, start=len(SPECIALS)):
            out[mid] = lid
        for name in reversed(("eos", "unk", "bos", "pad")):  # the first of EOS, UNK, BOS, PAD wins a shared id
            mid = self.specials.get(name)
            if mid is not None:
                out[mid] = MODEL_SPECIALS.index(name)
        return out

    @property
    def no_logit(self) -> list[int]:
        unk = self.specials.get("unk")
        return [PAD, BOS] + ([UNK] if unk is None or unk == self.specials["eos"] else [])


def load_model_tokenizer(folder: str | Path, key: str = "the model folder") -> tuple[Any, ForeignVocab]:
    """A Hugging Face folder's `tokenizer.json` (a `tokenizers.Tokenizer`) and langan's ids over it; one line for a
    missing folder or file or an unreadable one. `key` names the setting in the messages (e.g. disc.path)."""
    from tokenizers import Tokenizer

    folder = Path(folder)
    if not folder.is_dir():
        raise LanganError(f"{key} '{folder}' is not a folder; give a local folder written by save_pretrained")
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise LanganError(f"{key} '{folder}' has no tokenizer.json; a folder saved by transformers' save_pretrained "
                          "of the model and its (fast) tokenizer has one")
    try:
        hf = Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises plain Exception on a bad file
        raise LanganError(f"cannot read {path}: {str(err)[:160]}") from None
    return hf, ForeignVocab.of(hf.get_vocab_size(with_added_tokens=True), read_model_specials(folder, hf))


def read_model_specials(folder: str | Path, tokenizer: Any) -> dict[str, int | None]:
    """The special token ids of a Hugging Face model folder: config.json's `*_token_id` (a list: its first), then
    the tokens named in tokenizer_config.json / special_tokens_map.json (CLS / SEP for BOS / EOS if need be), looked
    up in `tokenizer` (the folder's `tokenizers.Tokenizer`)."""
    folder = Path(folder)
    found: dict[str, int | None] = dict.fromkeys(MODEL_SPECIALS)
    config = _read_json(folder / "config.json")
    for name in MODEL_SPECIALS:
        value = config.get(f"{name}_token_id")
        found[name] = value[0] if isinstance(value, list) and value else value if isinstance(value, int) else None
    for file in ("tokenizer_config.json", "special_tokens_map.json"):
        named = _read_json(folder / file)
        # an encoder (BERT) frames text as [CLS] ... [SEP]: its CLS / SEP serve as BOS / EOS when it names none
        for name, keys in (("pad", ("pad",)), ("bos", ("bos", "cls")), ("eos", ("eos", "sep")), ("unk", ("unk",))):
            for key in keys:
                token = named.get(f"{key}_token")
                token = token.get("content") if isinstance(token, dict) else token
                if found[name] is None and isinstance(token, str):
                    found[name] = tokenizer.token_to_id(token)
    return found


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise LanganError(f"cannot read {path}: {err}") from None
    return data if isinstance(data, dict) else {}
