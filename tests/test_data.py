import itertools
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import NAMES
from langan.config import load_config
from langan.data.batching import BatchIterator, in_length_groups, length_groups, loss_mask, trim
from langan.data.dataset import encode_texts, load_data, split_sizes
from langan.data.sources import census_names, census_surnames, read_source
from langan.data.tokenizers import CharTokenizer
from langan.errors import LanganError
from langan.models.discriminator import TransformerDiscriminator
from langan.models.transformer import TransformerLM
from langan.tokens import BOS, EOS, PAD, UNK, left_pad


def data_cfg(source: Path | str, *extra: str):
    return load_config(None, [f"data.source={source}", "data.valid_size=4", "data.test_size=4", *extra]).data


def test_census_lists_are_lowercased_and_labelled() -> None:
    names = census_names()
    assert len(names.texts) == len(set(names.texts)) > 5000
    assert all(t == t.lower() and t.isalpha() for t in names.texts)
    genders = dict(zip(names.texts, names.labels["gender"], strict=True))
    assert genders["mary"] == "female" and genders["james"] == "male"
    surnames = census_surnames()
    assert len(surnames.texts) == 88799 and surnames.texts[0] == "smith"


def test_splits_are_deterministic_disjoint_and_sized(names_file: Path) -> None:
    a, b = load_data(data_cfg(names_file)), load_data(data_cfg(names_file))
    assert a.test.texts == b.test.texts and a.train.texts == b.train.texts
    assert (len(a.train), len(a.valid), len(a.test)) == (32, 4, 4)
    assert sorted(a.train.texts + a.valid.texts + a.test.texts) == sorted(NAMES)
    c = load_data(data_cfg(names_file, "data.split_seed=1"))
    assert c.test.texts != a.test.texts
    frac = load_data(data_cfg(names_file, "data.valid_size=0.1", "data.test_size=0.25"))
    assert (len(frac.valid), len(frac.test)) == (4, 10)


def test_limit_keeps_n_training_examples_only(names_file: Path) -> None:
    full, small = load_data(data_cfg(names_file)), load_data(data_cfg(names_file, "data.limit=5"))
    assert len(small.train) == 5 and small.test.texts == full.test.texts
    assert small.train.texts == full.train.texts[:5]


def test_tokenizer_fitted_on_training_split_only(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("\n".join(["ab"] * 30 + ["zq"]))
    seed = next(s for s in range(100)  # a split seed that puts the only 'zq' in the test split
                if "zq" in load_data(data_cfg(path, "data.valid_size=0", "data.test_size=10",
                                              f"data.split_seed={s}")).test.texts)
    data = load_data(data_cfg(path, "data.valid_size=0", "data.test_size=10", f"data.split_seed={seed}"))
    assert "z" not in data.tokenizer.stoi and "a" in data.tokenizer.stoi
    assert data.test.tokens[data.test.texts.index("zq"), 1].item() == 3  # UNK: the tokenizer never saw z


def test_split_too_large_is_one_line() -> None:
    with pytest.raises(LanganError, match=r"has 10 examples but data\.valid_size and data\.test_size take 5 \+ 5"):
        split_sizes(10, 5, 5)


def test_row_layout_bos_text_eos_pad() -> None:
    tok = CharTokenizer.fit(["abc"])
    rows, cut = encode_texts(tok, ["abc", "a", "abcabc"], max_length=5)
    a, b, c = (tok.stoi[x] for x in "abc")
    assert rows.tolist() == [[BOS, a, b, c, EOS, PAD], [BOS, a, EOS, PAD, PAD, PAD], [BOS, a, b, c, a, b]]
    assert cut == 1  # the 6-token text was cut to max_length without EOS
    with pytest.raises(LanganError, match=r"example 3 has 6 tokens, more than data\.max_length=5"):
        encode_texts(tok, ["abc", "a", "abcabc"], max_length=5, overlong="error")


def test_overlong_lines_are_counted_in_notes(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("\n".join(["ab"] * 20 + ["x" * 50]))
    data = load_data(data_cfg(path, "data.max_length=8", "data.valid_size=0", "data.test_size=10",
                              "data.split_seed=0"))
    assert any("longer than data.max_length=8" in note for note in data.notes)


lengths = st.lists(st.integers(0, 9), min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(lengths)
def test_padding_invariants_for_random_lengths(ns: list[int]) -> None:
    tok = CharTokenizer.fit(["x"])
    rows, _ = encode_texts(tok, ["x" * n for n in ns], max_length=10)
    targets = rows[:, 1:]
    for row, n in zip(rows.tolist(), ns, strict=True):
        eos = row.index(EOS)
        assert row[0] == BOS and eos == n + 1
        assert all(t == PAD for t in row[eos + 1:])  # nothing but PAD after EOS
    mask = loss_mask(targets)
    assert mask.sum(1).tolist() == [n + 1 for n in ns]  # content + EOS, no PAD
    assert (targets[mask] != PAD).all() and (targets[~mask] == PAD).all()
    left, attn = left_pad(rows)
    for r, lrow, arow in zip(rows.tolist(), left.tolist(), attn.tolist(), strict=True):
        real = [t for t in r if t != PAD]
        assert lrow[len(lrow) - len(real):] == real and all(t == PAD for t in lrow[: len(lrow) - len(real)])
        assert arow == [False] * (len(lrow) - len(real)) + [True] * len(real)
    trimmed = trim(rows)
    assert trimmed.shape[1] == max(ns) + 2 and torch.equal(trimmed, rows[:, : max(ns) + 2])


def test_batch_iterator_state_resumes_the_same_stream() -> None:
    tokens = torch.arange(50).repeat(3, 1).T.contiguous()
    it = BatchIterator(tokens, batch_size=8, seed=5)
    for _ in range(9):  # crosses an epoch boundary (6 batches per epoch)
        next(it)
    state = it.state_dict()
    expected = [next(it).index.tolist() for _ in range(5)]
    again = BatchIterator(tokens, batch_size=8, seed=5)
    again.load_state_dict(state)
    assert [next(again).index.tolist() for _ in range(5)] == expected
    fresh = BatchIterator(tokens, 8, 5)
    epoch0 = torch.cat([next(fresh).index for _ in range(6)])
    assert len(set(epoch0.tolist())) == 48  # one epoch never repeats an example


def test_length_grouping_batches_similar_lengths_and_still_covers_the_epoch() -> None:
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, 16, (200,), generator=gen)
    tokens = (torch.arange(16)[None, :] < lengths[:, None]).long() * 5  # [200, 16]: rows of 2..15 non-PAD tokens

    def padded_width(it: BatchIterator, n: int) -> tuple[int, list[int]]:
        batches = [next(it) for _ in range(n)]
        return sum(b.tokens.numel() for b in batches), torch.cat([b.index for b in batches]).tolist()

    plain_cells, _ = padded_width(BatchIterator(tokens, 16, seed=3), 12)
    grouped_cells, grouped_rows = padded_width(BatchIterator(tokens, 16, seed=3, length_grouping=4), 12)
    assert len(set(grouped_rows)) == 192  # one epoch (12 full batches) never repeats a row
    assert grouped_cells < 0.8 * plain_cells  # far fewer PAD positions computed
    again = BatchIterator(tokens, 16, seed=3, length_grouping=4)
    assert padded_width(again, 12)[1] == grouped_rows  # deterministic from (seed, epoch)
    second_epoch = padded_width(again, 12)[1]
    assert second_epoch != grouped_rows and len(set(second_epoch)) == 192
    fresh = BatchIterator(tokens, 16, seed=3, length_grouping=4)
    widths = [next(fresh).tokens.shape[1] for _ in range(12)]
    assert widths != sorted(widths)  # batches are shuffled, not served short to long


def test_length_grouped_losses_weigh_every_token_alike() -> None:
    """Grouped batches divide by the split's mean target count x B, not their own count: an epoch's
    summed loss is then the per-token loss of the whole split (own counts would upweight short rows)."""
    lengths = torch.tensor([3, 4, 12, 14] * 8)  # 32 rows, very different lengths
    tokens = (torch.arange(16)[None, :] < lengths[:, None]).long() * 5
    it = BatchIterator(tokens, 4, seed=0, length_grouping=8)
    batches = [next(it) for _ in range(8)]  # one epoch, every row once
    assert sum(b.loss_norm for b in batches) == pytest.approx(float((lengths - 1).sum()))
    own = [int((b.targets != PAD).sum()) for b in batches]
    assert max(own) > 2 * min(own)  # grouping made the batches' own counts very unequal
    assert BatchIterator(tokens, 4, seed=0).__next__().loss_norm is None  # ungrouped: own count


def test_tables_and_jsonl_with_partial_labels(tmp_path: Path) -> None:
    tsv = tmp_path / "d.tsv"
    tsv.write_text("text\tsentiment\ngood film\tpos\nbad film\t\nok film\tneg\n")
    corpus = read_source(str(tsv), label_columns=["sentiment"])
    assert corpus.texts == ["good film", "bad film", "ok film"]
    assert corpus.labels["sentiment"] == ["pos", None, "neg"]
    csv = tmp_path / "d.csv"
    csv.write_text('body,y\n"hello, there",a\nbye,\n')
    assert read_source(str(csv), text_column="body", label_columns=["y"]).labels["y"] == ["a", None]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "a b", "y": 1}\n{"text": "c"}\n\n')
    corpus = read_source(str(jsonl), label_columns=["y"])
    assert corpus.texts == ["a b", "c"] and corpus.labels["y"] == ["1", None]


def test_text_file_policy_bom_crlf_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_bytes(b"\xef\xbb\xbfanna\r\n\r\n  bob  \r\ncarl")
    assert read_source(str(path)).texts == ["anna", "bob", "carl"]


def test_tsv_fields_are_literal_and_csv_errors_are_one_line(tmp_path: Path) -> None:
    tsv = tmp_path / "d.tsv"
    tsv.write_text('text\tlabel\n"quoted start\tpos\nsecond line\tneg\n')
    corpus = read_source(str(tsv), label_columns=["label"])
    assert corpus.texts == ['"quoted start', "second line"] and corpus.labels["label"] == ["pos", "neg"]
    bad = tmp_path / "d.csv"
    bad.write_text('text\n"unterminated\n')
    with pytest.raises(LanganError, match=r"d\.csv' line \d+"):
        read_source(str(bad))


def test_literal_special_token_text_stays_text(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("\n".join(["x <eos> y <pad> z <unk>"] * 20))
    data = load_data(data_cfg(path, "data.tokenizer=bpe", "data.vocab_size=280"))
    row = data.train.tokens[0].tolist()
    assert row.count(EOS) == 1 and PAD not in row[: row.index(EOS)]
    assert data.tokenizer.decode(row) == "x <eos> y <pad> z <unk>"


def test_labels_reach_the_splits(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("text\tg\n" + "".join(f"n{i}\t{'a' if i % 2 else ''}\n" for i in range(30)))
    data = load_data(data_cfg(path, "data.label_columns=[g]"))
    for split in (data.train, data.valid, data.test):
        for text, label in zip(split.texts, split.labels["g"], strict=True):
            assert label == ("a" if int(text[1:]) % 2 else None)


def test_fixed_test_and_valid_files_never_reach_training_and_the_vocabulary_is_trainings(tmp_path: Path) -> None:
    """data.test_source / data.valid_source: those rows are the whole test / validation splits, none of them is in a
    training batch, and a symbol only they contain is UNK (counted in the notes), not in the vocabulary."""
    train, test, valid = tmp_path / "train.txt", tmp_path / "test.txt", tmp_path / "valid.txt"
    train.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    test.write_text("Zoe\nQuinn\nXavier\n", encoding="utf-8")  # capitals: never in NAMES
    valid.write_text("emma\nava\n", encoding="utf-8")
    cfg = load_config(None, [f"data.source={train}", f"data.test_source={test}", f"data.valid_source={valid}",
                             "data.test_size=0.5", "data.valid_size=0.5"])  # sizes ignored for fixed files
    data = load_data(cfg.data)
    assert data.test.texts == ["Zoe", "Quinn", "Xavier"] and data.valid.texts == ["emma", "ava"]
    assert sorted(data.train.texts) == sorted(NAMES)  # every training row kept: nothing carved out
    assert not {"Z", "Q", "X"} & set(data.tokenizer.stoi)
    assert int((data.test.tokens == UNK).sum()) == 3
    assert any("3 of 14 test tokens (21.43%)" in note for note in data.notes)
    seen = set()
    batches = BatchIterator(data.train.tokens, 8, seed=0)
    for _ in range(20):
        seen |= {data.train.texts[i] for i in next(batches).index.tolist()}
    assert seen <= set(NAMES) and len(seen) > 20
    only_test = load_data(load_config(None, [f"data.source={train}", f"data.test_source={test}",
                                             "data.valid_size=4"]).data)
    assert len(only_test.valid) == 4 and len(only_test.train) == len(NAMES) - 4 and len(only_test.test) == 3


def _split_cost(lengths: list[int], sizes: tuple[int, ...], overhead: float) -> float:
    """Cost of splitting sorted `lengths` into consecutive groups of these sizes: overhead + rows x longest each."""
    cost, start = 0.0, 0
    for size in sizes:
        cost += overhead + size * lengths[start + size - 1]
        start += size
    return cost


@pytest.mark.parametrize("overhead", [0.0, 3.0, 10.0, 40.0])
def test_length_groups_are_a_partition_at_the_least_modelled_cost(overhead: float) -> None:
    """Every row once, groups shortest first, and no split into consecutive groups of the sorted rows is cheaper
    (brute force over all compositions of 9 rows)."""
    lengths = torch.tensor([3, 9, 1, 3, 4, 12, 4, 2, 3])
    groups = length_groups(lengths, overhead)
    assert sorted(torch.cat(groups).tolist()) == list(range(9))
    longest = [int(lengths[g].max()) for g in groups]
    assert longest == sorted(longest)
    assert all(int(lengths[b].min()) >= a for a, b in zip(longest[:-1], groups[1:], strict=True))
    ordered = sorted(lengths.tolist())
    found = _split_cost(ordered, tuple(len(g) for g in groups), overhead)
    best = min(_split_cost(ordered, tuple(b - a for a, b in itertools.pairwise((0, *cuts, 9))), overhead)
               for k in range(9) for cuts in itertools.combinations(range(1, 9), k))
    assert found == pytest.approx(best)
    if overhead == 0.0:
        assert len(groups) == len(set(lengths.tolist()))


def test_length_groups_set_a_runaway_row_apart_and_inf_keeps_one_group() -> None:
    lengths = torch.cat([torch.randint(3, 9, (255,), generator=torch.Generator().manual_seed(0)), torch.tensor([32])])
    groups = length_groups(lengths, 256.0)
    assert groups[-1].tolist() == [255] and len(groups) >= 2
    assert [g.tolist() for g in length_groups(lengths, float("inf"))] == [list(range(256))]
    assert length_groups(torch.zeros(0, dtype=torch.long), 256.0) == []


def test_in_length_groups_equals_one_pass_of_a_discriminator_and_an_lm() -> None:
    """A per-step discriminator and a causal LM give the same outputs ([N], [N, T], [N, T, V]) by groups of rows
    trimmed to their longest as in one pass over the padded batch, in the input's row order."""
    torch.manual_seed(0)
    lengths = torch.tensor([2, 7, 1, 5, 7, 3, 12])
    tokens = torch.randint(4, 20, (7, 12)).masked_fill(torch.arange(12) >= lengths[:, None], PAD)
    tokens[torch.arange(7), lengths - 1] = EOS
    groups = length_groups(lengths, 0.0)
    assert len(groups) == 6
    disc = TransformerDiscriminator(20, 12, hidden_size=16, intermediate_size=32, num_layers=2, num_heads=2).eval()
    per_step, seq = in_length_groups(disc, tokens, groups)
    whole_per_step, whole_seq = disc(tokens)
    torch.testing.assert_close(seq, whole_seq, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(per_step, whole_per_step, atol=1e-5, rtol=1e-5)
    lm = TransformerLM(20, 13, hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2).eval()
    logits = in_length_groups(lambda rows: lm(rows)[0], tokens, groups)  # [N, T, V]
    valid = tokens != PAD
    torch.testing.assert_close(logits[valid], lm(tokens)[0][valid], atol=1e-5, rtol=1e-5)
    assert float(logits[~valid].detach().abs().sum()) == 0


def test_trim_keeps_one_column_of_an_all_pad_or_empty_batch() -> None:
    assert trim(torch.full((3, 5), PAD)).shape == (3, 1)
    assert trim(torch.zeros(0, 5, dtype=torch.long)).shape == (0, 1)
    rows = torch.tensor([[4, EOS, PAD, PAD], [EOS, PAD, PAD, PAD]])
    assert torch.equal(trim(rows), rows[:, :2])
