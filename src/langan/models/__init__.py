"""Networks. Models import nothing from training, config files or the CLI."""

from __future__ import annotations

from typing import Any

from torch import nn

from langan.models.lstm import LSTMLM
from langan.models.relational_memory import RelationalMemoryLM
from langan.models.transformer import TransformerLM

GENERATORS: dict[str, type[nn.Module]] = {"transformer": TransformerLM, "lstm": LSTMLM, "rmc": RelationalMemoryLM}
_GENERATOR_ARGS = ("hidden_size", "intermediate_size", "num_layers", "num_heads", "rope_theta",
                   "tie_word_embeddings", "activation", "dropout", "attention_dropout", "learned_positions")
# settings one family has and the others lack
_ONLY = {"lstm": ("embedding_size", "init_std"), "rmc": ("embedding_size", "init_std", "mem_slots")}


def build_generator(cfg: Any, vocab_size: int, max_length: int, cond_size: int = 0) -> nn.Module:
    """A generator from a `generator.*` config section (any object with those attributes); `arch=hf` loads the
    pretrained causal LM at `cfg.path`."""
    if cfg.arch == "hf":
        from langan.models.hf import HFGenerator  # transformers is an optional extra

        return HFGenerator(cfg.path, vocab_size, max_length)
    kwargs = {name: getattr(cfg, name) for name in (*_GENERATOR_ARGS, *_ONLY.get(cfg.arch, ()))}
    return GENERATORS[cfg.arch](vocab_size=vocab_size, max_length=max_length, cond_size=cond_size, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """The model's size: its parameters, each shared (tied) tensor once, frozen ones included (a frozen
    weight average has the size of the network it averages)."""
    return sum(p.numel() for p in model.parameters())  # parameters() already skips repeated tensors
