"""`langan export RUN --to hf DIR`: a trained transformer generator as a Llama folder that transformers loads.

langan's transformer is a Llama when its MLP is SwiGLU and it has no learned absolute positions: pre-norm RMSNorm
(eps 1e-6), RoPE rotating the halves (x[:D/2], x[D/2:]) of each head as Llama's `rotate_half` does, attention
without biases, `down(silu(gate(x)) * up(x))`. The fused projections are split: qkv rows [0:H) are q, [H:2H) k,
[2H:3H) v (head-major, as Llama's q/k/v_proj); the MLP's `up` rows [0:I) are the gate and [I:2I) the up
projection. The tokenizer is written with the same ids, PAD/BOS/EOS/UNK = 0..3 as its special tokens, and
prepends BOS to an encoded text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from langan.data.tokenizers import Tokenizer
from langan.errors import LanganError
from langan.models.transformer import TransformerLM
from langan.runs.loading import LoadedRun
from langan.tokens import BOS, EOS, PAD, UNK


def check_exportable(model: object) -> TransformerLM:
    """The generator if it maps onto Llama exactly, else one line naming the config key that prevents it."""
    if not isinstance(model, TransformerLM):
        raise LanganError(f"only a transformer generator maps onto Llama; this run's is {type(model).__name__} "
                          "(generator.arch)")
    if model.positions is not None:
        raise LanganError("Llama has no learned absolute positions: train with generator.learned_positions=false")
    if not model.blocks[0].mlp.swiglu:
        raise LanganError("Llama's MLP is gated (SwiGLU); a GELU MLP has no Llama equivalent: train with "
                          "generator.activation=swiglu")
    if model.cond_proj is not None:
        raise LanganError("a conditional generator (algorithm=ctrlgen) reads a code Llama has no input for")
    return model


def llama_state_dict(model: TransformerLM) -> dict[str, Tensor]:
    """langan TransformerLM parameters under LlamaForCausalLM's names (tensors copied)."""
    h = model.embed.weight.shape[1]
    out = {"model.embed_tokens.weight": model.embed.weight, "model.norm.weight": model.norm.weight,
           "lm_head.weight": model.head.weight}
    for i, block in enumerate(model.blocks):
        p = f"model.layers.{i}."
        qkv, up = block.attn.qkv.weight, block.mlp.up.weight
        inter = up.shape[0] // 2
        out |= {p + "self_attn.q_proj.weight": qkv[:h], p + "self_attn.k_proj.weight": qkv[h:2 * h],
                p + "self_attn.v_proj.weight": qkv[2 * h:], p + "self_attn.o_proj.weight": block.attn.proj.weight,
                p + "mlp.gate_proj.weight": up[:inter], p + "mlp.up_proj.weight": up[inter:],
                p + "mlp.down_proj.weight": block.mlp.down.weight,
                p + "input_layernorm.weight": block.norm1.weight,
                p + "post_attention_layernorm.weight": block.norm2.weight}
    return {k: v.detach().clone().float().cpu() for k, v in out.items()}


def llama_config(model: TransformerLM) -> dict[str, object]:
    h, heads = model.embed.weight.shape[1], model.num_heads
    return dict(
        vocab_size=model.vocab_size, hidden_size=h, intermediate_size=model.blocks[0].mlp.down.weight.shape[1],
        num_hidden_layers=len(model.blocks), num_attention_heads=heads, num_key_value_heads=heads,
        head_dim=h // heads, max_position_embeddings=model.max_length + 1, rms_norm_eps=1e-6,
        rope_theta=model.rope_theta, rope_parameters={"rope_type": "default", "rope_theta": model.rope_theta},
        tie_word_embeddings=model.head.weight is model.embed.weight, hidden_act="silu",
        attention_bias=False, mlp_bias=False, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)


def export_hf(loaded: LoadedRun, out_dir: str | Path) -> Path:
    """Write the run's generator (the checkpoint `loaded` holds) and tokenizer as a LlamaForCausalLM folder."""
    from langan.models.hf import import_transformers

    tf = import_transformers()
    model = check_exportable(loaded.algorithm.generator)
    hf_tokenizer = loaded.data.tokenizer.to_hf()  # before writing anything: it may refuse
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LanganError(f"'{out}' is a file; give a new (or empty) folder to write the model into")
    if out.exists() and any(out.iterdir()):
        raise LanganError(f"'{out}' exists and is not empty; choose a new folder")
    config = tf.LlamaConfig(**llama_config(model))
    with torch.device("cpu"):
        llama = tf.LlamaForCausalLM(config)
    missing, unexpected = llama.load_state_dict(llama_state_dict(model), strict=False)
    if unexpected or [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]:
        raise LanganError(f"internal: Llama weights do not match ({missing[:3]}, {unexpected[:3]})")
    if config.tie_word_embeddings:
        llama.tie_weights()
    llama.save_pretrained(str(out))
    _save_tokenizer(tf, hf_tokenizer, loaded.data.tokenizer, out)
    return out


def _save_tokenizer(tf: object, hf_tokenizer: Any, tokenizer: Tokenizer, out: Path) -> None:
    """tokenizer.json and tokenizer_config.json; encoding a text prepends BOS, as langan's generator was trained
    (Llama's tokenizers do the same), so transformers' generate and TRL can start from a prompt, even an empty one."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers.processors import TemplateProcessing

    pad, bos, eos, unk = (tokenizer.hf_specials[i] for i in (PAD, BOS, EOS, UNK))
    hf_tokenizer = HFTokenizer.from_str(hf_tokenizer.to_str())  # a copy: the run's own tokenizer stays as it is
    hf_tokenizer.post_processor = TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, BOS)])
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=hf_tokenizer, pad_token=pad, bos_token=bos,  # type: ignore[attr-defined]
                                      eos_token=eos, unk_token=unk)
    fast.save_pretrained(str(out))
