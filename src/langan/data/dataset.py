"""From `data.*` config to tokenized train/valid/test splits.

A sequence is stored right-padded as `BOS x1..xn EOS PAD...` in a row of `max_length + 1` ids: the
generator reads `row[:-1]` and predicts `row[1:]`. A text whose n tokens plus EOS do not fit in
`max_length` is cut to `max_length` tokens with no EOS (it ends at max length, like every sample that
never emitted EOS) and counted, or rejected (`data.overlong=error`). Oracle sequences have no EOS.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from langan.config import DataConfig
from langan.data.oracle import OracleLSTM
from langan.data.sources import Corpus, read_source
from langan.data.tokenizers import TOKENIZERS, OracleTokenizer, Tokenizer
from langan.errors import LanganError
from langan.tokens import BOS, EOS, PAD, UNK


@dataclass
class Split:
    name: str
    texts: list[str]
    tokens: Tensor  # [N, max_length + 1] int64, right-padded `BOS x EOS PAD...`
    labels: dict[str, list[str | None]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class DataBundle:
    tokenizer: Tokenizer
    train: Split
    valid: Split
    test: Split
    max_length: int
    notes: list[str] = field(default_factory=list)
    oracle: OracleLSTM | None = None

    def __post_init__(self) -> None:
        self.train_set = set(self.train.texts)
        self._held_out_set = set(self.valid.texts) | set(self.test.texts)

    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 over the texts of the three splits: recorded with a run, checked when it loads."""
        h = hashlib.sha256()
        for split in (self.train, self.valid, self.test):
            h.update("\n".join(split.texts).encode("utf-8") + b"\x00")
        return h.hexdigest()[:16]

    def origin(self, text: str) -> str:
        """'train', 'valid/test' or 'new': the memorisation tag of a generated text."""
        if text in self.train_set:
            return "train"
        return "valid/test" if text in self._held_out_set else "new"


def encode_texts(tokenizer: Tokenizer, texts: list[str], max_length: int, overlong: str = "truncate",
                 append_eos: bool = True) -> tuple[Tensor, int]:
    """Encode to a [N, max_length + 1] right-padded id tensor; returns it and the count of cut texts."""
    rows, cut = [], 0
    for number, text in enumerate(texts):
        ids = tokenizer.encode(text)
        if append_eos and len(ids) + 1 <= max_length:
            ids = [*ids, EOS]
        elif len(ids) >= max_length and (append_eos or len(ids) > max_length):
            if overlong == "error":
                raise LanganError(f"example {number + 1} has {len(ids)} tokens, more than data.max_length="
                                  f"{max_length} allows with EOS; raise data.max_length or set "
                                  "data.overlong=truncate")
            ids, cut = ids[:max_length], cut + 1
        rows.append(torch.tensor([BOS, *ids], dtype=torch.long))
    if not rows:
        return torch.full((0, max_length + 1), PAD, dtype=torch.long), 0
    padded = pad_sequence(rows, batch_first=True, padding_value=PAD)
    _check_reserved(padded, torch.tensor([len(r) for r in rows]), texts)
    out = torch.full((len(rows), max_length + 1), PAD, dtype=torch.long)
    out[:, : padded.shape[1]] = padded
    return out, cut


def _check_reserved(padded: Tensor, lengths: Tensor, texts: list[str]) -> None:
    """A tokenizer must never emit PAD/BOS/EOS for text: each row has BOS once, then no PAD before its end and
    at most one EOS, as its last token. Checked on the whole tensor at once."""
    content = padded[:, 1:]
    n_eos = (content == EOS).sum(1)
    last = padded.gather(1, (lengths - 1)[:, None]).squeeze(1)
    ok = ((padded != PAD).sum(1) == lengths) & ((content == BOS).sum(1) == 0) & (
        (n_eos == 0) | ((n_eos == 1) & (last == EOS)))
    if not bool(ok.all()):
        number = int((~ok).nonzero()[0])
        raise LanganError(f"example {number + 1} encodes to a reserved token (PAD/BOS/EOS): {texts[number][:60]!r}")


def split_sizes(n: int, valid_size: float, test_size: float) -> tuple[int, int]:
    """Counts from fractions (< 1) or counts (>= 1); fails if nothing would be left to train on."""
    def count(size: float) -> int:
        return round(size * n) if size < 1 else int(size)

    n_valid, n_test = count(valid_size), count(test_size)
    if n_valid + n_test >= n:
        raise LanganError(f"the data has {n} examples but data.valid_size and data.test_size take "
                          f"{n_valid} + {n_test}; lower them (fractions like 0.05 work too)")
    return n_valid, n_test


def _subset(corpus: Corpus, index: list[int]) -> tuple[list[str], dict[str, list[str | None]]]:
    return [corpus.texts[i] for i in index], {k: [v[i] for i in index] for k, v in corpus.labels.items()}


def _oracle_corpus(cfg: DataConfig) -> tuple[Corpus, OracleLSTM]:
    o = cfg.oracle
    oracle = OracleLSTM.load(o.params) if o.params else OracleLSTM.random(
        o.vocab_size, o.embedding_size, o.hidden_size, seed=o.seed)
    seqs = oracle.generate(o.num_samples, o.length, seed=o.sample_seed)
    return Corpus([" ".join(map(str, row)) for row in seqs.tolist()]), oracle


def _split_texts(cfg: DataConfig, corpus: Corpus) -> dict[str, tuple[list[str], dict[str, list[str | None]]]]:
    """(texts, labels) of train / valid / test: carved from `corpus` by `split_seed`, except a split read from
    its own file (data.test_source, data.valid_source), which then takes nothing from `corpus`."""
    fixed = {name: read_source(path, cfg.text_column, cfg.label_columns, cfg.lowercase)
             for name, path in (("test", cfg.test_source), ("valid", cfg.valid_source)) if path}
    n = len(corpus.texts)
    n_valid, n_test = split_sizes(n, 0 if "valid" in fixed else cfg.valid_size, 0 if "test" in fixed else
                                  cfg.test_size)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.split_seed)).tolist()
    parts = {"test": order[:n_test], "valid": order[n_test:n_test + n_valid], "train": order[n_test + n_valid:]}
    if cfg.limit > 0:
        parts["train"] = parts["train"][: cfg.limit]
    texts = {name: _subset(corpus, index) for name, index in parts.items()}
    for name, own in fixed.items():
        texts[name] = _subset(own, list(range(len(own.texts))))
    return texts


def _unk_note(tokenizer: Tokenizer, texts: list[str], source: str) -> str:
    """How many test tokens the training vocabulary lacks (they are UNK in test NLL and BLEU references)."""
    ids = [i for t in texts for i in tokenizer.encode(t)]
    unk = sum(i == UNK for i in ids)
    return (f"data.test_source={source}: {unk} of {len(ids)} test tokens ({100 * unk / max(len(ids), 1):.2f}%) are "
            "not in the training vocabulary and read as UNK")


def load_data(cfg: DataConfig, tokenizer: Tokenizer | None = None) -> DataBundle:
    """Read, split (from `split_seed`), fit the tokenizer on train only (unless given), encode."""
    oracle = None
    if cfg.source == "oracle":
        corpus, oracle = _oracle_corpus(cfg)
        max_length = cfg.oracle.length
    else:
        corpus = read_source(cfg.source, cfg.text_column, cfg.label_columns, cfg.lowercase)
        max_length = cfg.max_length
    texts = _split_texts(cfg, corpus)
    if tokenizer is None:
        if oracle is not None:
            tokenizer = OracleTokenizer.of_size(oracle.vocab_size)
        else:
            tokenizer = TOKENIZERS[cfg.tokenizer].fit(texts["train"][0], min_freq=cfg.min_freq,
                                                      vocab_size=cfg.vocab_size, path=cfg.tokenizer_path)
    notes = list(corpus.notes)
    if cfg.test_source and oracle is None:
        notes.append(_unk_note(tokenizer, texts["test"][0], cfg.test_source))
    splits = {}
    for name, (split_texts, labels) in texts.items():
        tokens, cut = encode_texts(tokenizer, split_texts, max_length, cfg.overlong, append_eos=oracle is None)
        if cut:
            notes.append(f"{cut} of {len(split_texts)} {name} examples were longer than data.max_length="
                         f"{max_length} and were cut (data.overlong=truncate)")
        splits[name] = Split(name, split_texts, tokens, labels)
    return DataBundle(tokenizer, splits["train"], splits["valid"], splits["test"], max_length, notes, oracle)
