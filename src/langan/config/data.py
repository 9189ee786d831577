"""`data.*`: where the text comes from, how it becomes tokens, how it is split; the synthetic oracle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from langan.config.fields import Check, at_least_one, opt

if TYPE_CHECKING:
    from langan.config import Config

BPE_MIN_VOCAB = 256 + 4  # byte-level BPE starts from all 256 byte symbols, plus the 4 special tokens


@dataclass
class OracleConfig:
    params: str = opt("", "path to an .npz of SeqGAN oracle parameters; empty = random oracle from `seed`")
    seed: int = opt(0, "seed of the random oracle's parameters (SeqGAN initialises them N(0, 1))")
    vocab_size: int = opt(5000, "oracle vocabulary (SeqGAN: 5000)")
    embedding_size: int = opt(32, "oracle embedding width (SeqGAN: 32)")
    hidden_size: int = opt(32, "oracle LSTM width (SeqGAN: 32)")
    length: int = opt(20, "length of every oracle sequence; no EOS (SeqGAN: 20)")
    num_samples: int = opt(10000, "sequences generated as the whole data set (SeqGAN: 10,000)")
    sample_seed: int = opt(1, "seed of the sampling of the data set from the oracle")

    def check(self, root: Config) -> list[Check]:
        return at_least_one({"data.oracle.vocab_size": self.vocab_size, "data.oracle.length": self.length,
                             "data.oracle.num_samples": self.num_samples, "data.oracle.hidden_size": self.hidden_size,
                             "data.oracle.embedding_size": self.embedding_size})


@dataclass
class DataConfig:
    source: str = opt("census-names", "'census-names', 'census-surnames', 'oracle', 'toy-grammar' (3,000 strings of "
                      "([abc][xyz]){1,4}: a check that an algorithm learns at all), or a .txt/.tsv/.csv/.jsonl path")
    tokenizer: str = opt("char", "how text becomes tokens ('oracle' is forced for the oracle source; hf, a "
                         "pretrained model's own tokenizer.json, for generator.arch=hf)", ("char", "word", "bpe", "hf"))
    tokenizer_path: str = opt("", "hf: the model folder whose tokenizer.json is read (empty = generator.path)")
    vocab_size: int = opt(2000, "BPE only: target vocabulary size including the 4 special tokens")
    min_freq: int = opt(1, "char/word: symbols seen fewer times in training data map to UNK")
    lowercase: bool = opt(False, "lower-case every text when reading (the census sources always are)")
    text_column: str = opt("text", "TSV/CSV/JSONL: the column holding the text")
    label_columns: list[str] = opt([], "TSV/CSV/JSONL: label columns to keep (a missing value = unlabelled)")
    max_length: int = opt(32, "context length: most tokens a sequence holds after BOS, EOS included")
    overlong: str = opt("truncate", "a text longer than max_length: cut it (counted in the log) or stop",
                        ("truncate", "error"))
    valid_size: float = opt(0.05, "validation split: a fraction (<1) or a count of examples")
    test_size: float = opt(0.1, "test split: a fraction (<1) or a count of examples (ignored with test_source)")
    test_source: str = opt("", "a fixed test set read from its own file (the published protocols: COCO's test "
                           "captions); data.source then gives training and validation rows only. The vocabulary "
                           "comes from the training rows alone, so test tokens outside it are UNK (counted)")
    valid_source: str = opt("", "a fixed validation set read from its own file (empty: carved from data.source)")
    split_seed: int = opt(0, "seed of the train/valid/test split; separate from train.seed so seeds share a split")
    limit: int = opt(0, "keep only the first N training examples (0 = all); valid/test are unchanged")
    oracle: OracleConfig = opt(OracleConfig(), "the synthetic LSTM oracle (data.source=oracle)")

    def check(self, root: Config) -> list[Check]:
        texts = self.source != "oracle"  # the oracle source has its own length and vocabulary
        return [
            *self.oracle.check(root),
            (self.vocab_size >= 5, f"data.vocab_size must be at least 5, got {self.vocab_size}"),
            (self.tokenizer != "bpe" or not texts or self.vocab_size >= BPE_MIN_VOCAB,
             f"data.vocab_size={self.vocab_size} is too small for data.tokenizer=bpe: byte-level BPE holds the 256 "
             f"byte symbols and the 4 special tokens before any merge; set data.vocab_size to at least "
             f"{BPE_MIN_VOCAB} (that many = no merges; default 2000)"),
            (self.max_length >= 1, "data.max_length must be at least 1"),
            (self.tokenizer != "hf" or bool(self.tokenizer_path) or not texts,
             "data.tokenizer=hf reads a pretrained model's tokenizer.json: set data.tokenizer_path=MODEL_DIR (or use "
             "generator.arch=hf generator.path=MODEL_DIR, which sets it)"),
            (self.max_length >= 2 or not texts,
             f"data.max_length must be at least 2, got {self.max_length}: a text of n tokens needs n + 1 (its EOS), "
             "so with 1 every text is cut to its first token and the model never learns to end"),
            (self.valid_size >= 0 and self.test_size >= 0, "data.valid_size and data.test_size must be >= 0"),
            (texts or not (self.test_source or self.valid_source),
             "data.test_source / data.valid_source are for text sources; the oracle draws its own splits"),
        ]
