"""A trained langan discriminator as a reward for other trainers (TRL's GRPOTrainer / RLOOTrainer, or any loop).

    from langan.reward import DiscriminatorReward
    reward = DiscriminatorReward("runs/names-gan")            # the run's latest discriminator
    reward(prompts=["", ""], completions=["emma", "xqzv"])    # -> [0.71, 0.12]: P(real) of each completion
    reward.token_scores(["emma"])                              # -> [[...5 floats]]: P(real) of every prefix

The call has TRL's reward-function signature, `(prompts, completions, **kwargs) -> list[float]`; completions may
be strings or conversations (lists of {"role", "content"} messages: the last message's content is judged). Texts
are read with the run's tokenizer, ended with EOS and cut at its data.max_length as in training. Rewards are
D's probability that the text is real (`transform="sigmoid"`) or its raw logit (`"logit"`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from langan.data.dataset import encode_texts
from langan.errors import LanganError
from langan.runs.loading import load_run
from langan.tokens import PAD


class DiscriminatorReward:
    """Scores texts with the discriminator of a GAN run (reinforce or gumbel); one batch of `batch_size` at a time,
    without gradients, on the run's device."""

    def __init__(self, run_dir: str | Path, checkpoint: str = "latest", transform: str = "sigmoid",
                 with_prompt: bool = False, batch_size: int = 256):
        if transform not in ("sigmoid", "logit"):
            raise LanganError(f"transform='{transform}' is not one of sigmoid, logit")
        loaded = load_run(run_dir, checkpoint, join_group=False)  # inside TRL / accelerate: their process group
        disc = loaded.algorithm.discriminator()
        if disc is None:
            raise LanganError(f"run '{run_dir}' ({loaded.cfg.algorithm}) has no discriminator; give a run with "
                              "algorithm=reinforce or gumbel")
        self.disc = disc.eval().requires_grad_(False)
        self.tokenizer, self.max_length = loaded.data.tokenizer, loaded.data.max_length
        self.per_step = loaded.cfg.disc.output == "per_step"
        self.transform, self.with_prompt, self.batch_size = transform, with_prompt, batch_size
        self.device = next(self.disc.parameters()).device
        self.__name__ = f"langan_disc_{Path(run_dir).name}"  # TRL logs each reward function under its __name__

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None,
                 **_: Any) -> list[float]:
        if completions is None:
            raise LanganError("DiscriminatorReward needs completions=[...] (TRL passes them by keyword)")
        texts = [_text(c) for c in completions]
        if self.with_prompt and prompts is not None:
            texts = [_text(p) + t for p, t in zip(prompts, texts, strict=True)]
        return torch.cat([self._score(rows)[1] for rows in self._rows(texts)]).tolist()

    def token_scores(self, texts: Sequence[str]) -> list[list[float]]:
        """For each text, the score of every prefix (its tokens and EOS): per-step discriminators only."""
        if not self.per_step:
            raise LanganError("this run's discriminator gives one logit per sequence (disc.output=sequence); "
                              "per-token scores need disc.output=per_step")
        out: list[list[float]] = []
        for rows in self._rows(list(texts)):
            scores = self._score(rows)[0]  # [B, T], right-padded as the rows
            out += [s[r != PAD].tolist() for s, r in zip(scores, rows, strict=True)]
        return out

    def _rows(self, texts: list[str]) -> list[Tensor]:
        """Batches of right-padded token rows without BOS, [b, max_length], as the discriminator reads them."""
        rows, _ = encode_texts(self.tokenizer, texts, self.max_length)
        return [r[:, 1:].to(self.device) for r in rows.split(self.batch_size)]

    @torch.no_grad()
    def _score(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """(per-prefix [B, T], sequence [B]) scores of the rows, transformed."""
        per_step, sequence = self.disc(rows)
        if self.transform == "sigmoid":
            return (None if per_step is None else per_step.float().sigmoid()), sequence.float().sigmoid()
        return (None if per_step is None else per_step.float()), sequence.float()


def _text(item: Any) -> str:
    """A completion or prompt as TRL gives it: a string, or a conversation whose last message is judged."""
    if isinstance(item, str):
        return item
    if isinstance(item, Sequence) and item and isinstance(item[-1], dict) and "content" in item[-1]:
        return str(item[-1]["content"])
    raise LanganError(f"cannot read a completion of type {type(item).__name__}; give strings or lists of "
                      "{'role', 'content'} messages")
