import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langan.config import BPE_MIN_VOCAB
from langan.data.tokenizers import BPETokenizer, CharTokenizer, OracleTokenizer, WordTokenizer, tokenizer_from_json
from langan.tokens import BOS, EOS, PAD, UNK

TEXTS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=5))
def test_char_round_trip(texts: list[str]) -> None:
    tok = CharTokenizer.fit(texts)
    for text in texts:
        ids = tok.encode(text)
        assert all(i > UNK for i in ids)
        assert tok.decode(ids) == text


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=5))
def test_word_round_trip_keeps_spacing_exactly(texts: list[str]) -> None:
    tok = WordTokenizer.fit(texts)
    for text in texts:
        assert tok.decode(tok.encode(text)) == text


def test_word_tokens_are_words_and_punctuation() -> None:
    tok = WordTokenizer.fit(["Hello, world!  Bye."])
    pieces = [tok.itos[i] for i in tok.encode("Hello, world!  Bye.")]
    assert pieces == ["Hello", "##,", "world", "##!", "  ", "Bye", "##."]


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    corpus = ["the quick brown fox jumps over the lazy dog", "naïve café, 東京 and emoji 🙂"] * 20
    return BPETokenizer.fit(corpus, vocab_size=300)


def test_bpe_vocabulary_starts_at_the_byte_alphabet() -> None:
    """What data.vocab_size's check says: `tokenizers` keeps all 256 byte symbols and the 4 specials whatever
    vocab_size asks for, so fewer than BPE_MIN_VOCAB ids cannot be had; from there each id is one merge."""
    corpus = ["the quick brown fox jumps over the lazy dog"] * 20
    assert BPETokenizer.fit(corpus, vocab_size=5).vocab_size == BPE_MIN_VOCAB == 260
    assert BPETokenizer.fit(corpus, vocab_size=BPE_MIN_VOCAB).vocab_size == BPE_MIN_VOCAB
    assert BPETokenizer.fit(corpus, vocab_size=BPE_MIN_VOCAB + 3).vocab_size == BPE_MIN_VOCAB + 3


@settings(max_examples=150, deadline=None)
@given(TEXTS)
def test_bpe_round_trip_any_text(bpe: BPETokenizer, text: str) -> None:
    assert bpe.decode(bpe.encode(text)) == text


def test_specials_are_reserved_everywhere(bpe: BPETokenizer) -> None:
    for tok in (CharTokenizer.fit(["ab"]), WordTokenizer.fit(["a b"]), bpe, OracleTokenizer.of_size(7)):
        assert tok.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
        assert not {PAD, BOS, EOS} & set(tok.encode("<pad><bos><eos> ab a b"))


def test_decode_hides_specials_and_stops_at_eos() -> None:
    tok = CharTokenizer.fit(["abc"])
    a, b = tok.stoi["a"], tok.stoi["b"]
    assert tok.decode([BOS, a, b, EOS, a, PAD]) == "ab"
    assert tok.decode([a, UNK, b]) == "a\ufffdb"  # UNK shown as the replacement character, never '<unk>'
    assert tok.encode("az") == [a, UNK]


def test_min_freq_maps_rare_symbols_to_unk() -> None:
    tok = CharTokenizer.fit(["aaab"], min_freq=2)
    assert "b" not in tok.stoi and tok.encode("b") == [UNK]


def test_serialisation_round_trip(bpe: BPETokenizer) -> None:
    for tok in (CharTokenizer.fit(["hello"]), WordTokenizer.fit(["a, b"]), bpe, OracleTokenizer.of_size(5)):
        again = tokenizer_from_json(json.loads(json.dumps(tok.to_json())))
        assert type(again) is type(tok) and again.itos == tok.itos
        assert again.encode("hello a, b") == tok.encode("hello a, b")


def test_oracle_tokens_are_offset_integers() -> None:
    tok = OracleTokenizer.of_size(10)
    assert tok.encode("0 9 3") == [4, 13, 7]
    assert tok.decode([BOS, 4, 13, 7, EOS]) == "0 9 3"
