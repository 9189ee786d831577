"""The built-in toy grammar (`data.source=toy-grammar`): strings of one to four pairs, each a letter of "abc"
followed by one of "xyz" ("ax", "cybz", ...): 9 + 81 + 729 + 6,561 possible strings, a fixed draw of 3,000.
An algorithm-level check: a generator that has learned the language writes only such strings (`is_grammatical`),
in all four lengths, without collapsing onto a few; the from-scratch GAN test and benchmarks/toy_grammar.py use it."""

from __future__ import annotations

import random
import re

GRAMMAR = re.compile(r"(?:[abc][xyz]){1,4}")
NUM_ROWS = 3000
# A from-scratch preset (configs/names-scratch.yaml) shrunk to the grammar's size, as `langan train` overrides: the
# settings the test and the benchmark share. The preset's entropy floor (reward.entropy_mult_final) is sized for the
# names' spread; on this grammar a floor of 0.05 kept ~6% of samples invalid (0.940 valid), so the bonus anneals to
# 0, as in the grammar's probes (benchmarks/README.md).
SCRATCH_OVERRIDES: dict[str, object] = {
    "data.source": "toy-grammar", "data.max_length": 12, "data.valid_size": 200, "data.test_size": 200,
    "generator.hidden_size": 32, "generator.intermediate_size": 64, "generator.num_layers": 2,
    "generator.num_heads": 2, "disc.hidden_size": 32, "disc.intermediate_size": 64, "disc.num_layers": 2,
    "disc.num_heads": 2, "train.steps": 400, "eval.metrics": "[]", "reward.entropy_mult_final": 0.0}


def toy_grammar_rows(n: int = NUM_ROWS, seed: int = 0) -> list[str]:
    """n strings of the grammar, each length (1-4 pairs) equally likely, letters uniform; fixed by the seed."""
    rng = random.Random(seed)
    return ["".join(rng.choice("abc") + rng.choice("xyz") for _ in range(rng.randint(1, 4))) for _ in range(n)]


def is_grammatical(text: str) -> bool:
    return GRAMMAR.fullmatch(text) is not None


def grammar_report(texts: list[str]) -> dict[str, float]:
    """The fraction of texts in the grammar, the fraction that are distinct, and how many of its four lengths the
    grammatical ones cover."""
    valid = [t for t in texts if is_grammatical(t)]
    n = max(len(texts), 1)
    return {"valid": len(valid) / n, "unique": len(set(texts)) / n, "lengths": len({len(t) for t in valid})}
