"""Relational memory core language model (Santoro et al. 2018), RelGAN's generator (Nie et al. 2019), with the
generators' contract (`TokenInputLM`; `new_cache`, its state's `repeat_rows`).

The state is a memory of `mem_slots` rows of width `hidden_size`. At each step the input joins the memory as one
more row; the rows attend to each other (multi-head self-attention, then an MLP, each residual and layer-normed),
the input's row is dropped, and the result enters the memory through LSTM-style input and forget gates computed
from the input and the old memory. The next-token logits read the whole new memory. RelGAN's COCO generator:
1 slot, 2 heads of 256 (hidden_size 512), 1 block, token embedding 32.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from langan.models.token_inputs import TokenInputLM


class MemoryState:
    def __init__(self, memory: Tensor):
        self.memory = memory  # [B, S, D]

    def repeat_rows(self, repeats: int) -> MemoryState:
        """A state of B * repeats rows, row b copied to rows b * repeats ... (b + 1) * repeats - 1."""
        return MemoryState(self.memory.repeat_interleave(repeats, 0))


class AttendBlock(nn.Module):
    """Rows [B, S + 1, D] -> rows: self-attention and an MLP, each added back and layer-normed (post-norm, as in
    the relational memory core)."""

    def __init__(self, width: int, num_heads: int, mlp_width: int, dropout: float):
        super().__init__()
        self.attention = nn.MultiheadAttention(width, num_heads, dropout=dropout, batch_first=True)
        self.norm_attention, self.norm_mlp = nn.LayerNorm(width), nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_width), nn.ReLU(), nn.Linear(mlp_width, width))

    def forward(self, rows: Tensor) -> Tensor:
        rows = self.norm_attention(rows + self.attention(rows, rows, rows, need_weights=False)[0])
        return self.norm_mlp(rows + self.mlp(rows))


class RelationalMemoryLM(TokenInputLM):
    FORGET_BIAS, INPUT_BIAS = 1.0, 0.0  # Santoro et al.: the memory starts by keeping what it holds

    def __init__(self, vocab_size: int, max_length: int, hidden_size: int = 512, num_heads: int = 2,
                 mem_slots: int = 1, num_layers: int = 1, intermediate_size: int = 512, embedding_size: int = 0,
                 init_std: float = 0.0, dropout: float = 0.0, cond_size: int = 0, out_size: int = 0,
                 **_: object):
        super().__init__()
        self.vocab_size, self.max_length, self.mem_slots = vocab_size, max_length, mem_slots
        embedding_size = embedding_size or hidden_size
        self.embed = nn.Embedding(vocab_size, embedding_size)
        self.read_input = nn.Linear(embedding_size + cond_size, hidden_size)
        self.blocks = nn.ModuleList(AttendBlock(hidden_size, num_heads, intermediate_size, dropout)
                                    for _ in range(num_layers))
        self.gates_from_input = nn.Linear(hidden_size, 2 * hidden_size)
        self.gates_from_memory = nn.Linear(hidden_size, 2 * hidden_size, bias=False)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(mem_slots * hidden_size, out_size or vocab_size)
        # the first memory: slot s is the unit vector e_s (zeros past the slots), as in Santoro et al.
        self.register_buffer("initial_memory", torch.eye(mem_slots, hidden_size), persistent=False)
        if init_std > 0:  # RelGAN's generator: weights ~ N(0, 0.1); layer norms keep their unit scale
            for name, p in self.named_parameters():
                if "norm" not in name:
                    nn.init.normal_(p, std=init_std)

    def new_cache(self, batch_size: int, max_tokens: int | None = None, differentiable: bool = False
                  ) -> MemoryState:
        """The first memory [B, S, D]; replaced (never written in place) at each step, so gradients flow."""
        return MemoryState(self.initial_memory.expand(batch_size, -1, -1))

    def forward_embeds(self, x: Tensor, cache: MemoryState | None = None, cond: Tensor | None = None,
                       attention_mask: Tensor | None = None) -> tuple[Tensor, MemoryState]:
        if cond is not None:
            x = torch.cat([x, cond[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
        inputs = self.read_input(self.drop(x))  # [B, T, D]: every step's input at once
        gate_inputs = self.gates_from_input(inputs)  # [B, T, 2D]
        memory = (cache or self.new_cache(len(x))).memory
        outputs = []
        for t in range(x.shape[1]):  # a recurrence: one step at a time
            memory = self._step(inputs[:, t], gate_inputs[:, t], memory)
            outputs.append(memory.flatten(1))
        if cache is not None:
            cache.memory = memory
        logits = self.head(self.drop(torch.stack(outputs, 1)))  # [B, T, S * D] -> [B, T, V]
        return logits, cache if cache is not None else MemoryState(memory)

    def _step(self, x: Tensor, gate_input: Tensor, memory: Tensor) -> Tensor:
        """x [B, D], gate_input [B, 2D], memory [B, S, D] -> the next memory [B, S, D]."""
        rows = torch.cat([memory, x[:, None]], 1)  # [B, S + 1, D]
        for block in self.blocks:
            rows = block(rows)
        candidate = rows[:, :-1]  # the input's row is dropped
        gates = gate_input[:, None] + self.gates_from_memory(torch.tanh(memory))  # [B, S, 2D]
        input_gate, forget_gate = gates.chunk(2, -1)
        return (torch.sigmoid(input_gate + self.INPUT_BIAS) * torch.tanh(candidate)
                + torch.sigmoid(forget_gate + self.FORGET_BIAS) * memory)
