"""Tokenizers: character, word, BPE (Hugging Face `tokenizers`), the oracle's integer tokens, and a pretrained
model's own tokenizer (`hf`).

All reserve PAD=0, BOS=1, EOS=2, UNK=3. `decode(encode(x)) == x` for every text whose symbols are in
the vocabulary; `decode` drops PAD/BOS, stops at EOS and shows UNK as U+FFFD, so special tokens never
reach printed text. Each tokenizer serialises to a JSON dict saved with the run (`tokenizer.json`).
"""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from langan.errors import LanganError
from langan.tokens import BOS, EOS, PAD, SPECIALS, UNK, ForeignVocab, load_model_tokenizer

# Inside the HF BPE tokenizer the specials carry a NUL byte: HF splits input text on special-token strings, and
# a corpus may well contain a literal "<unk>", but never NUL (the data readers reject it).
HF_SPECIALS = tuple("\x00" + s for s in SPECIALS)
UNK_TEXT = "\ufffd"


class Tokenizer:
    """Maps text to ids and back; subclasses define `_pieces` and `_join` (or override encode/decode)."""

    kind: ClassVar[str] = ""
    hf_specials: ClassVar[tuple[str, ...]] = SPECIALS  # PAD, BOS, EOS, UNK as written in `to_hf()`

    def __init__(self, symbols: Sequence[str]):
        self.itos: list[str] = list(SPECIALS) + list(symbols)
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def _pieces(self, text: str) -> list[str]:
        raise NotImplementedError

    def _join(self, pieces: list[str]) -> str:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        stoi = self.stoi
        return [stoi.get(p, UNK) for p in self._pieces(text)]

    def content_ids(self, ids: Iterable[int]) -> list[int]:
        """The ids of a sequence up to its first EOS, without PAD or BOS."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(i)
        return out

    def decode(self, ids: Iterable[int]) -> str:
        return self._join([UNK_TEXT if i == UNK else self.itos[i] for i in self.content_ids(ids)])

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "symbols": self.itos[len(SPECIALS):]}

    def to_hf(self) -> Any:
        """The same tokenizer as a Hugging Face `tokenizers.Tokenizer` with the same ids (PAD/BOS/EOS/UNK = 0..3 as
        its special tokens), for `langan export --to hf`."""
        raise LanganError(f"a data.tokenizer={self.kind} vocabulary has no Hugging Face equivalent (its spacing "
                          "marks); export a run with data.tokenizer=char or bpe")

    def _word_level(self, pre_tokenizer: Any, decoder: Any) -> Any:
        """A WordLevel tokenizer over this vocabulary (each piece one id) with the given splitting and joining."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models

        hf = HFTokenizer(models.WordLevel(dict(self.stoi), unk_token=SPECIALS[UNK]))
        hf.pre_tokenizer = pre_tokenizer
        if decoder is not None:
            hf.decoder = decoder
        hf.add_special_tokens(list(SPECIALS))
        return hf

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tokenizer:
        return cls(data["symbols"])

    @classmethod
    def fit(cls, texts: Iterable[str], min_freq: int = 1, **_: Any) -> Tokenizer:
        """Vocabulary = every piece seen at least `min_freq` times, most frequent first (ties by text)."""
        counts = collections.Counter(p for t in texts for p in cls._split(t))
        kept = sorted((s for s, c in counts.items() if c >= min_freq and s not in SPECIALS),
                      key=lambda s: (-counts[s], s))
        return cls(kept)

    @staticmethod
    def _split(text: str) -> list[str]:
        raise NotImplementedError


class CharTokenizer(Tokenizer):
    """One token per Unicode code point."""

    kind = "char"

    @staticmethod
    def _split(text: str) -> list[str]:
        return list(text)

    def _pieces(self, text: str) -> list[str]:
        return list(text)

    def _join(self, pieces: list[str]) -> str:
        return "".join(pieces)

    def to_hf(self) -> Any:
        from tokenizers import Regex, decoders, pre_tokenizers

        # every code point its own piece ((?m): "." matches newlines too in Oniguruma), joined without spaces
        return self._word_level(pre_tokenizers.Split(Regex("(?m)."), behavior="isolated"), decoders.Fuse())


_WORD_PIECE = re.compile(r"\w+|[^\w\s]|\s+")
GLUE = "##"  # prefix of a piece written directly after the previous one (no space between)


class WordTokenizer(Tokenizer):
    """Words and single punctuation marks; spacing is kept exactly.

    One space between two pieces is implicit (no token). A piece written right after the previous one
    is stored as `##piece` ("hello," -> `hello ##,`); any other whitespace (several spaces, tabs, a
    leading space) becomes its own token. So the round trip is exact and the vocabulary stays word-level.
    """

    kind = "word"

    @staticmethod
    def _split(text: str) -> list[str]:
        pieces = _WORD_PIECE.findall(text)
        out: list[str] = []
        for i, piece in enumerate(pieces):
            if piece.isspace():
                between_words = piece == " " and 0 < i < len(pieces) - 1
                if not between_words:
                    out.append(piece)
            elif i > 0 and not pieces[i - 1].isspace():
                out.append(GLUE + piece)
            else:
                out.append(piece)
        return out

    def _pieces(self, text: str) -> list[str]:
        return self._split(text)

    def _join(self, pieces: list[str]) -> str:
        out: list[str] = []
        after_word = False
        for piece in pieces:
            if piece.isspace():
                out.append(piece)
                after_word = False
            elif piece.startswith(GLUE) and len(piece) > len(GLUE):
                out.append(piece[len(GLUE):])
                after_word = True
            else:
                out.append(" " + piece if after_word else piece)
                after_word = True
        return "".join(out)


class OracleTokenizer(Tokenizer):
    """The oracle's integer tokens 0..V-1, written as space-separated numbers."""

    kind = "oracle"

    @classmethod
    def of_size(cls, vocab_size: int) -> OracleTokenizer:
        return cls([str(i) for i in range(vocab_size)])

    @staticmethod
    def _split(text: str) -> list[str]:
        return text.split()

    def _pieces(self, text: str) -> list[str]:
        return text.split()

    def _join(self, pieces: list[str]) -> str:
        return " ".join(pieces)

    def to_hf(self) -> Any:
        from tokenizers import pre_tokenizers

        return self._word_level(pre_tokenizers.WhitespaceSplit(), None)  # decoding joins with spaces


class BPETokenizer(Tokenizer):
    """Byte-level BPE trained with Hugging Face `tokenizers`: any Unicode text round-trips exactly."""

    kind = "bpe"
    hf_specials = HF_SPECIALS

    def __init__(self, hf_tokenizer: Any):
        self.hf = hf_tokenizer
        vocab = hf_tokenizer.get_vocab()
        itos = [""] * len(vocab)
        for s, i in vocab.items():
            itos[i] = s
        if tuple(itos[: len(SPECIALS)]) != HF_SPECIALS:
            raise LanganError("BPE tokenizer file does not reserve <pad>, <bos>, <eos>, <unk> as ids 0-3")
        self.itos = list(SPECIALS) + itos[len(SPECIALS):]
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    @classmethod
    def fit(cls, texts: Iterable[str], min_freq: int = 1, vocab_size: int = 2000, **_: Any) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=max(min_freq, 1), special_tokens=list(HF_SPECIALS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        hf.train_from_iterator(list(texts), trainer=trainer)
        return cls(hf)

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.hf.decode(self.content_ids(ids), skip_special_tokens=True)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "hf": json.loads(self.hf.to_str())}

    def to_hf(self) -> Any:
        return self.hf

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        return cls(HFTokenizer.from_str(json.dumps(data["hf"])))


class ModelTokenizer(Tokenizer):
    """A pretrained model's own tokenizer (`tokenizer.json` of a Hugging Face folder, read with `tokenizers`),
    its ids mapped onto langan's: PAD/BOS/EOS/UNK = 0..3 are the model's special tokens, ids 4.. its other tokens
    in order (`langan.tokens.ForeignVocab` says how a model without PAD, BOS or UNK is mapped). Text is encoded
    with special-token strings read as text, so a corpus holding a literal "<|endoftext|>" never ends early."""

    kind = "hf"

    def __init__(self, hf_tokenizer: Any, specials: dict[str, int | None]):
        self.hf = hf_tokenizer
        self.hf.encode_special_tokens = True  # "<|endoftext|>" in the data is text, not EOS
        self.vocab = ForeignVocab.of(hf_tokenizer.get_vocab_size(with_added_tokens=True), dict(specials))
        self.to_model, self.from_model = self.vocab.to_model, self.vocab.from_model  # plain lists: fast lookups
        pieces = {i: s for s, i in hf_tokenizer.get_vocab(with_added_tokens=True).items()}
        self.itos = list(SPECIALS) + [pieces.get(i, "") for i in self.vocab.regular]
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    @classmethod
    def from_folder(cls, folder: str | Path) -> ModelTokenizer:
        hf, vocab = load_model_tokenizer(folder, "the model folder (data.tokenizer_path)")
        return cls(hf, vocab.specials)

    @classmethod
    def fit(cls, texts: Iterable[str], min_freq: int = 1, path: str = "", **_: Any) -> ModelTokenizer:
        """A pretrained tokenizer is not fitted: it is read from `path` (data.tokenizer_path)."""
        return cls.from_folder(path)

    def to_hf(self) -> Any:
        raise LanganError("this run reads text with a pretrained model's tokenizer (data.tokenizer=hf), whose ids "
                          "langan remaps; export a run with data.tokenizer=char or bpe")

    def encode(self, text: str) -> list[int]:
        from_model = self.from_model
        return [from_model[i] for i in self.hf.encode(text, add_special_tokens=False).ids]

    def decode(self, ids: Iterable[int]) -> str:
        to_model = self.to_model
        return self.hf.decode([to_model[i] for i in self.content_ids(ids)], skip_special_tokens=True)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "hf": json.loads(self.hf.to_str()), "specials": self.vocab.specials}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelTokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        return cls(HFTokenizer.from_str(json.dumps(data["hf"])), data["specials"])


TOKENIZERS: dict[str, type[Tokenizer]] = {
    t.kind: t for t in (CharTokenizer, WordTokenizer, BPETokenizer, OracleTokenizer, ModelTokenizer)}


def tokenizer_from_json(data: dict[str, Any]) -> Tokenizer:
    kind = data.get("kind")
    if kind not in TOKENIZERS:
        raise LanganError(f"tokenizer file names unknown kind '{kind}'; known: {', '.join(TOKENIZERS)}")
    return TOKENIZERS[kind].from_json(data)
