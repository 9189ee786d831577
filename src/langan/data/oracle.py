"""The synthetic-data oracle of SeqGAN (Yu et al. 2017): a fixed LSTM that defines the true distribution.

Gates `i,f,o = sigmoid(x W + h U + b)`, `c~ = tanh(x W_c + h U_c + b_c)`, `c = f*c_prev + i*c~`,
`h = o*tanh(c)`, logits `= h W_out + b_out`. Token 0 is fed as the first input (start token); every
sequence has exactly `length` tokens, no EOS. Built from a seed (parameters ~ N(0, 1), as SeqGAN's
TARGET_LSTM) or loaded from an `.npz` with the arrays named below.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from langan.errors import LanganError
from langan.generation import inverse_cdf

GATES = ("i", "f", "o", "c")
ARRAYS = ("embedding", *[f"{p}_{g}" for g in GATES for p in ("W", "U", "b")], "W_out", "b_out")


class OracleLSTM(nn.Module):
    def __init__(self, params: dict[str, Tensor]):
        super().__init__()
        for name in ARRAYS:
            self.register_buffer(name, params[name].float())
        self.vocab_size, self.embedding_size = self.embedding.shape
        self.hidden_size = self.W_out.shape[0]

    @classmethod
    def random(cls, vocab_size: int = 5000, embedding_size: int = 32, hidden_size: int = 32,
               seed: int = 0) -> OracleLSTM:
        g = torch.Generator().manual_seed(seed)
        shapes = {"embedding": (vocab_size, embedding_size), "W_out": (hidden_size, vocab_size),
                  "b_out": (vocab_size,)}
        for gate in GATES:
            shapes |= {f"W_{gate}": (embedding_size, hidden_size), f"U_{gate}": (hidden_size, hidden_size),
                       f"b_{gate}": (hidden_size,)}
        return cls({name: torch.randn(shapes[name], generator=g) for name in ARRAYS})

    @classmethod
    def load(cls, path: str | Path) -> OracleLSTM:
        path = Path(path)
        if not path.is_file():
            raise LanganError(f"oracle parameter file '{path}' not found (data.oracle.params)")
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = [a for a in ARRAYS if a not in npz.files]
                if missing:
                    raise LanganError(f"oracle file '{path}' lacks arrays {', '.join(missing)}")
                return cls({a: torch.from_numpy(np.asarray(npz[a], dtype=np.float32)) for a in ARRAYS})
        except (ValueError, OSError, AttributeError) as err:
            raise LanganError(f"oracle file '{path}' is not a readable .npz of parameters ({err})") from None

    def step(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One LSTM step. x: [B, E] embeddings; h, c: [B, H]. Returns logits [B, V], h, c."""
        def gate(g: str) -> Tensor:
            return x @ getattr(self, f"W_{g}") + h @ getattr(self, f"U_{g}") + getattr(self, f"b_{g}")

        i, f, o = torch.sigmoid(gate("i")), torch.sigmoid(gate("f")), torch.sigmoid(gate("o"))
        c = f * c + i * torch.tanh(gate("c"))
        h = o * torch.tanh(c)
        return torch.addmm(self.b_out, h, self.W_out), h, c

    def _inputs(self, tokens: Tensor) -> Tensor:
        # [B, L] -> [B, L] inputs: start token 0, then tokens[:, :-1]
        start = torch.zeros_like(tokens[:, :1])
        return torch.cat([start, tokens[:, :-1]], dim=1)

    @torch.no_grad()
    def log_prob(self, tokens: Tensor, rows: int = 256) -> Tensor:
        """Per-token log-probabilities [B, L] of oracle-vocabulary sequences [B, L], `rows` sequences at a time:
        a [rows, V] logits block then stays in cache for its logsumexp's passes (at 10,000 rows x 5,000 words
        each pass streamed 200 MB from memory; blocks of 256 halve NLL_oracle's time on 2 CPU cores)."""
        return torch.cat([self._log_prob(part) for part in tokens.split(rows)])

    def _log_prob(self, tokens: Tensor) -> Tensor:
        b, length = tokens.shape
        emb = self.embedding[self._inputs(tokens)]  # [B, L, E]
        h = c = emb.new_zeros(b, self.hidden_size)
        out = []
        for t in range(length):
            logits, h, c = self.step(emb[:, t], h, c)
            # log p = logit - logsumexp: one pass over the vocabulary, no [B, V] log_softmax written
            out.append(logits.gather(1, tokens[:, t:t + 1]) - logits.logsumexp(-1, keepdim=True))
        return torch.cat(out, dim=1)

    @torch.no_grad()
    def generate(self, n: int, length: int, seed: int, batch_size: int = 2000) -> Tensor:
        """n sequences [n, length] of oracle token ids, reproducible from `seed`.

        Computed in float64: in float32 the matmuls' last bit varies with memory alignment from one process to the
        next, and an inverse-CDF draw within that bit of a bin edge flipped about one token in 240,000 in 1 of 25
        loads (a run's data fingerprint then no longer matched). In float64 such a draw is ~1e9 times rarer."""
        g = torch.Generator().manual_seed(seed)
        oracle = copy.deepcopy(self).double()
        chunks = []
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            token = torch.zeros(b, dtype=torch.long)
            h = c = torch.zeros(b, self.hidden_size, dtype=torch.float64)
            seq = []
            for _ in range(length):
                logits, h, c = oracle.step(oracle.embedding[token], h, c)
                # one level, as every recorded run's data were drawn (generation.draw's blocks would draw others)
                token = inverse_cdf(torch.softmax(logits, -1), generator=g)
                seq.append(token)
            chunks.append(torch.stack(seq, dim=1))
        return torch.cat(chunks)
