"""`generator.*` and `disc.*`: the two networks' shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from langan.config.fields import Check, at_least_one, opt

if TYPE_CHECKING:
    from langan.config import Config


@dataclass
class GeneratorConfig:
    arch: str = opt("transformer", "generator family; rmc: a relational memory core (Santoro et al. 2018, RelGAN's "
                    "generator); hf: a pretrained Hugging Face causal LM from generator.path (its tokenizer becomes "
                    "the run's; the size settings below do not apply)",
                    ("transformer", "lstm", "rmc", "hf"))
    path: str = opt("", "hf: a local folder saved by transformers' save_pretrained (config.json, *.safetensors, "
                    "tokenizer.json); read with safetensors only, never with trust_remote_code")
    hidden_size: int = opt(64, "width of embeddings and residual stream (LSTM: state size; rmc: width of a memory "
                           "slot, num_heads x head size)")
    intermediate_size: int = opt(256, "transformer / rmc MLP width")
    num_layers: int = opt(4, "transformer blocks, stacked LSTM layers or rmc attention blocks per step")
    mem_slots: int = opt(1, "rmc: rows of the relational memory (RelGAN on COCO: 1)")
    num_heads: int = opt(4, "attention heads (hidden_size must divide by it)")
    rope_theta: float = opt(10000.0, "RoPE base; smaller values favour short contexts")
    learned_positions: bool = opt(False, "transformer: also add learned absolute position embeddings (GPT-2, "
                                  "makemore) to the token embeddings")
    tie_word_embeddings: bool = opt(False, "share the input embedding and the output projection")
    embedding_size: int = opt(0, "LSTM / rmc: width of the token embedding fed to the recurrence (0 = hidden_size); "
                              "a narrow input makes each step cheaper (SeqGAN: embedding 32, hidden 32; RelGAN: 32)")
    init_std: float = opt(0.0, "LSTM / rmc: every weight and bias (rmc: but its layer norms') drawn from "
                          "N(0, init_std) (SeqGAN / RelGAN's generators: 0.1); 0 = PyTorch's defaults (embedding "
                          "N(0, 1), LSTM and head uniform +-1/sqrt(hidden_size))")
    activation: str = opt("gelu", "transformer MLP: GELU (nanoGPT/makemore) or SwiGLU (Llama)",
                          ("gelu", "swiglu"))
    dropout: float = opt(0.0, "dropout on embeddings and residual branches")
    attention_dropout: float = opt(0.0, "dropout on attention probabilities")

    def check(self, root: Config) -> list[Check]:
        attention = self.arch in ("transformer", "rmc") and self.num_heads >= 1
        recurrent = self.arch in ("lstm", "rmc")
        return [
            (self.arch != "hf" or bool(self.path), "generator.arch=hf needs generator.path=MODEL_DIR (a folder saved "
             "with save_pretrained)"),
            (self.arch != "hf" or root.algorithm != "ctrlgen",
             "algorithm=ctrlgen feeds a latent code into its generator, which a pretrained model has no input for; "
             "use generator.arch=transformer or lstm"),
            (self.arch != "hf" or root.data.source != "oracle",
             "data.source=oracle has its own integer vocabulary, not a pretrained model's; use a text source"),
            *at_least_one({"generator.hidden_size": self.hidden_size,
                           "generator.intermediate_size": self.intermediate_size,
                           "generator.num_layers": self.num_layers, "generator.num_heads": self.num_heads}),
            (0 <= self.dropout < 1 and 0 <= self.attention_dropout < 1, "generator dropouts must be in [0, 1)"),
            (self.embedding_size >= 0, "generator.embedding_size must be >= 0 (0 = hidden_size)"),
            (self.init_std >= 0, "generator.init_std must be >= 0 (0 = PyTorch's default initialisation)"),
            (self.init_std == 0 or recurrent, "generator.init_std is an LSTM / rmc setting; set it to 0"),
            (self.mem_slots >= 1, "generator.mem_slots must be at least 1"),
            (self.mem_slots == 1 or self.arch == "rmc", "generator.mem_slots is an rmc setting; set it to 1"),
            (not self.tie_word_embeddings or self.arch != "rmc",
             "generator.tie_word_embeddings: an rmc's output reads its whole memory, not one embedding; set it to "
             "false"),
            (self.embedding_size in (0, self.hidden_size) or recurrent,
             "generator.embedding_size is an LSTM / rmc setting (the transformer's embedding is its hidden_size); "
             "set it to 0"),
            (not self.tie_word_embeddings or self.embedding_size in (0, self.hidden_size),
             f"generator.tie_word_embeddings needs generator.embedding_size = hidden_size ({self.hidden_size}) or 0; "
             f"got {self.embedding_size}"),
            (not attention or self.hidden_size % self.num_heads == 0,
             f"generator.hidden_size ({self.hidden_size}) must be divisible by generator.num_heads "
             f"({self.num_heads})"),
            (not attention or self.arch == "rmc" or (self.hidden_size // self.num_heads) % 2 == 0,
             "generator.hidden_size / generator.num_heads must be even (RoPE rotates pairs of dimensions)"),
        ]


@dataclass
class DiscConfig:
    """The discriminator of the GAN algorithms (defaults: the last recorded names experiment; the CNN's: RelGAN)."""

    arch: str = opt("transformer", "transformer: causal, reads left-padded text, per-prefix or sequence logits; cnn: "
                    "SeqGAN's / RelGAN's convolutional discriminator, sequence logits only; hf: a pretrained model "
                    "from disc.path (a causal LM or an encoder) with a new scoring head; it must share the run's "
                    "tokenizer", ("transformer", "cnn", "hf"))
    path: str = opt("", "hf: the discriminator's local model folder (save_pretrained; safetensors only)")
    hidden_size: int = opt(64, "width of the discriminator transformer (recorded: 64)")
    intermediate_size: int = opt(256, "its MLP width (recorded: 256)")
    num_layers: int = opt(3, "its transformer blocks (recorded: 3)")
    num_heads: int = opt(8, "its attention heads (recorded: 8)")
    rope_theta: float = opt(200.0, "its RoPE base (recorded: 200)")
    activation: str = opt("gelu", "its MLP activation", ("gelu", "swiglu"))
    dropout: float = opt(0.0, "dropout on its embeddings and residual branches")
    attention_dropout: float = opt(0.0, "dropout on its attention probabilities (recorded: 0)")
    output: str = opt("per_step", "per_step: causal, one logit per prefix; sequence: one logit per sequence "
                      "(the logit at the last real token, which has seen all of it)", ("per_step", "sequence"))
    loss: str = opt("bce", "bce: cross-entropy on logits; mse: least-squares GAN on the raw outputs", ("bce", "mse"))
    target_real: float = opt(1.0, "target for real text; < 1 is one-sided label smoothing (e.g. 0.9)")
    grad_accumulation: int = opt(1, "one discriminator optimiser step per this many discriminator batches, "
                                 "gradients averaged: an effective batch of N x train.batch_size (recorded: 8)")
    frozen: bool = opt(False, "never train the discriminator (e.g. train G against a random D to check that "
                       "G can exploit it)")
    pretrain_steps: int = opt(0, "discriminator-only steps between MLE pretraining and the adversarial phase")
    embedding_size: int = opt(64, "cnn: token embedding width (SeqGAN: 64; RelGAN: 64)")
    filter_sizes: list[int] = opt([2, 3, 4, 5], "cnn: convolution widths in tokens (RelGAN: 2, 3, 4, 5; SeqGAN: 1-10, "
                                  "15, 20)")
    num_filters: list[int] = opt([300, 300, 300, 300], "cnn: filters of each width (RelGAN: 300 each; SeqGAN: 100, "
                                 "200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)")
    num_representations: int = opt(1, "cnn: the embedding is split into this many slices, each scored on its own "
                                   "(RelGAN: 64; SeqGAN: 1)")
    head_size: int = opt(100, "cnn: hidden width of the scoring head after the highway layer (RelGAN: 100; 0 = a "
                         "linear score, SeqGAN)")
    negatives: int = opt(0, "reinforce: each discriminator round (train.disc_steps_per_gen_step of them per generator "
                         "step) draws this many fresh samples, pairs them with as many random training rows and "
                         "trains disc.epochs epochs over both in batches of train.batch_size, half real, half fake "
                         "(SeqGAN's schedule: 10,000 negatives = its training set, 3 epochs, 5 rounds); 0 = one "
                         "batch per round: the step's real batch against one fresh fake batch")
    epochs: int = opt(1, "reinforce with disc.negatives > 0: epochs over each round's real and fake rows (SeqGAN: 3)")

    def check(self, root: Config) -> list[Check]:
        sizes = min(self.hidden_size, self.intermediate_size, self.num_layers, self.num_heads, self.grad_accumulation)
        return [*self._cnn_checks(root), *self._transformer_checks(sizes)]

    def _cnn_checks(self, root: Config) -> list[Check]:
        cnn = self.arch == "cnn"
        return [
            (self.arch != "hf" or bool(self.path), "disc.arch=hf needs disc.path=MODEL_DIR (a folder saved with "
             "save_pretrained)"),
            (self.arch != "hf" or root.data.tokenizer == "hf",
             "disc.arch=hf reads the tokens of its own tokenizer: the run must use it too (generator.arch=hf with a "
             "model of the same tokenizer, or data.tokenizer=hf data.tokenizer_path=DISC_DIR)"),
            (self.arch != "hf" or root.algorithm != "ctrlgen",
             "algorithm=ctrlgen's attribute classifier is a transformer: set disc.arch=transformer"),
            (not cnn or self.output == "sequence",
             "disc.arch=cnn gives sequence logits only: set disc.output=sequence (and reward.mode final, broadcast "
             "or rollout)"),
            (not cnn or (len(self.filter_sizes) == len(self.num_filters) >= 1 and min(self.filter_sizes) >= 1
                         and min(self.num_filters) >= 1),
             "disc.filter_sizes and disc.num_filters must be lists of the same length with values >= 1"),
            (not cnn or (min(self.embedding_size, self.num_representations, self.head_size + 1) >= 1
                         and self.embedding_size % self.num_representations == 0),
             f"disc.embedding_size ({self.embedding_size}) must be divisible by disc.num_representations "
             f"({self.num_representations}), both at least 1; disc.head_size >= 0"),
            (self.num_representations == 1 or root.algorithm == "gumbel",
             "disc.num_representations > 1 (RelGAN's several verdicts per sequence) is for algorithm=gumbel; set 1"),
            (not cnn or root.algorithm != "ctrlgen",
             "algorithm=ctrlgen's attribute classifier is a transformer: set disc.arch=transformer"),
        ]

    def _transformer_checks(self, sizes: int) -> list[Check]:
        return [
            (sizes >= 1,
             "disc.hidden_size, intermediate_size, num_layers, num_heads and grad_accumulation must be at least 1"),
            (sizes < 1 or (self.hidden_size % self.num_heads == 0 and (self.hidden_size // self.num_heads) % 2 == 0),
             f"disc.hidden_size ({self.hidden_size}) / disc.num_heads ({self.num_heads}) must be a whole, even "
             "number"),
            (0 <= self.dropout < 1 and 0 <= self.attention_dropout < 1, "disc dropouts must be in [0, 1)"),
            (0 < self.target_real <= 1, "disc.target_real must be in (0, 1]"),
            (self.pretrain_steps >= 0, "train.pretrain_steps and disc.pretrain_steps must be >= 0"),
            (self.negatives >= 0 and self.epochs >= 1, "disc.negatives must be >= 0 and disc.epochs >= 1"),
        ]
