"""Nested dataclass configuration: YAML presets + dotted command-line overrides, validated.

Every field has a default and a one-line doc (`metadata["doc"]`); `langan config` prints them.
A wrong key or type is one `LanganError` line naming the key and the closest valid key.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from langan.errors import LanganError
from langan.fileio import atomic_write_text


def opt(default: Any, doc: str, choices: tuple[str, ...] | None = None) -> Any:
    """A config field with its doc line (and, for strings, the allowed values)."""
    meta = {"doc": doc, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    if dataclasses.is_dataclass(default):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


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


@dataclass
class DataConfig:
    source: str = opt("census-names", "'census-names', 'census-surnames', 'oracle', or a .txt/.tsv/.csv/.jsonl path")
    tokenizer: str = opt("char", "how text becomes tokens ('oracle' is forced for the oracle source)",
                         ("char", "word", "bpe"))
    vocab_size: int = opt(2000, "BPE only: target vocabulary size including the 4 special tokens")
    min_freq: int = opt(1, "char/word: symbols seen fewer times in training data map to UNK")
    lowercase: bool = opt(False, "lower-case every text when reading (the census sources always are)")
    text_column: str = opt("text", "TSV/CSV/JSONL: the column holding the text")
    label_columns: list[str] = opt([], "TSV/CSV/JSONL: label columns to keep (a missing value = unlabelled)")
    max_length: int = opt(32, "context length: most tokens a sequence holds after BOS, EOS included")
    overlong: str = opt("truncate", "a text longer than max_length: cut it (counted in the log) or stop",
                        ("truncate", "error"))
    valid_size: float = opt(0.05, "validation split: a fraction (<1) or a count of examples")
    test_size: float = opt(0.1, "test split: a fraction (<1) or a count of examples")
    split_seed: int = opt(0, "seed of the train/valid/test split; separate from train.seed so seeds share a split")
    limit: int = opt(0, "keep only the first N training examples (0 = all); valid/test are unchanged")
    oracle: OracleConfig = opt(OracleConfig(), "the synthetic LSTM oracle (data.source=oracle)")


@dataclass
class GeneratorConfig:
    arch: str = opt("transformer", "generator family", ("transformer", "lstm"))
    hidden_size: int = opt(64, "width of embeddings and residual stream (LSTM: state size)")
    intermediate_size: int = opt(256, "transformer MLP width")
    num_layers: int = opt(4, "transformer blocks or stacked LSTM layers")
    num_heads: int = opt(4, "attention heads (hidden_size must divide by it)")
    rope_theta: float = opt(10000.0, "RoPE base; smaller values favour short contexts")
    learned_positions: bool = opt(False, "transformer: also add learned absolute position embeddings (GPT-2, "
                                  "makemore) to the token embeddings")
    tie_word_embeddings: bool = opt(False, "share the input embedding and the output projection")
    activation: str = opt("gelu", "transformer MLP: GELU (nanoGPT/makemore) or SwiGLU (Llama)",
                          ("gelu", "swiglu"))
    dropout: float = opt(0.0, "dropout on embeddings and residual branches")
    attention_dropout: float = opt(0.0, "dropout on attention probabilities")


@dataclass
class DiscConfig:
    """The discriminator of the GAN algorithms (defaults: the last recorded names experiment)."""

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


@dataclass
class RewardConfig:
    """How discriminator outputs become policy-gradient rewards (REINFORCE GAN)."""

    mode: str = opt("per_step", "per_step: D judges every generated prefix (recorded: the only mode that learned); "
                    "final: sequence score at the last token, 0 elsewhere; broadcast: sequence score at every "
                    "step; rollout: SeqGAN Monte Carlo completions of each prefix scored by D",
                    ("per_step", "final", "broadcast", "rollout"))
    transform: str = opt("2sigmoid-1", "reward from a D logit: 2sigmoid-1 = 2*sigmoid(D)-1 (ScratchGAN), "
                         "log_sigmoid = log sigmoid(D), logit = D, sigmoid = sigmoid(D)",
                         ("2sigmoid-1", "log_sigmoid", "logit", "sigmoid"))
    gamma: float = opt(0.5, "discount of future rewards in the returns (recorded: 0.5; ignored by rollout, "
                       "whose Q-values already are expected final rewards)")
    baseline: str = opt("ewma", "subtracted from returns: none; ewma: moving average of the mean return at each "
                        "position; batch_mean: the batch's mean return at each position; leave_one_out: the "
                        "mean of the other samples at each position",
                        ("none", "ewma", "batch_mean", "leave_one_out"))
    baseline_decay: float = opt(0.9, "ewma baseline: b <- decay * b + (1 - decay) * mean return")
    normalize_advantages: bool = opt(False, "scale advantages to zero mean and unit std over the batch")
    entropy_mult: float = opt(0.1, "weight of the entropy bonus in the generator loss (recorded: 0.1)")
    kl_mult: float = opt(0.0, "weight of KL(G || pretrained G), both untempered, in the generator loss")
    rollout_num: int = opt(4, "rollout mode: Monte Carlo completions per prefix (SeqGAN: 16)")
    rollout_decay: float = opt(0.8, "rollout mode: the rollout generator follows G by an exponential moving "
                               "average, rollout <- decay * rollout + (1 - decay) * G (SeqGAN: 0.8)")
    rollout_chunk: int = opt(4096, "rollout mode: rows decoded at once (bounds memory)")


@dataclass
class CtrlGenConfig:
    """Controlled generation after Hu et al. 2017 ("Toward Controlled Generation of Text", ICML): a VAE whose
    generator is conditioned on [z, c], made controllable by an attribute classifier (the `disc.*` transformer,
    with one class head per label column) through soft samples. The codes are the label columns
    `data.label_columns`; a row with a missing label is unlabelled data."""

    latent_size: int = opt(32, "size of z (paper: 300 for sentences; names are short, so 32)")
    encoder_arch: str = opt("lstm", "the encoder q(z|x), which reads each row up to its last real token "
                            "(paper: LSTM)", ("lstm", "transformer"))
    encoder_hidden_size: int = opt(128, "encoder width")
    encoder_num_layers: int = opt(1, "encoder LSTM layers or transformer blocks")
    word_dropout: float = opt(0.3, "VAE: decoder input tokens replaced by UNK with this probability, so the "
                              "decoder must use z (Bowman et al. 2016; paper: word dropout)")
    kl_anneal_steps: int = opt(1000, "VAE: the KL weight rises linearly from 0 to kl_weight_max over this many "
                               "pretraining steps (Bowman et al. 2016)")
    kl_weight_max: float = opt(1.0, "the KL weight after annealing (1 = the true ELBO)")
    free_bits: float = opt(0.0, "nats of KL per z dimension (batch mean) that cost nothing (Kingma et al. 2016), "
                           "against posterior collapse; 0 = the plain ELBO")
    tau0: float = opt(1.0, "softmax temperature of the soft samples at the start of joint training (paper: 1)")
    tau_min: float = opt(0.1, "the floor of the annealed temperature; > 0 so logits/tau cannot overflow "
                         "(paper anneals towards 0)")
    tau_schedule: str = opt("exponential", "how tau goes from tau0 to tau_min over tau_anneal_steps",
                            ("exponential", "linear", "tanh"))
    tau_anneal_steps: int = opt(0, "joint-phase steps over which tau anneals (0 = the whole joint phase)")
    gumbel: bool = opt(False, "soft samples by Gumbel-softmax (noise added to the logits) instead of the "
                       "tempered softmax (paper)")
    straight_through: bool = opt(False, "Gumbel/soft samples: feed the hard one-hot forward, the soft "
                                 "gradient backward")
    lambda_c: float = opt(0.1, "weight of L_attr,c: the classifier recovers the code from the soft sample "
                          "(paper: 0.1)")
    lambda_z: float = opt(0.1, "weight of L_attr,z: the encoder recovers z from the soft sample (paper: 0.1)")
    lambda_u: float = opt(0.1, "weight of the unlabelled terms: the classifier's loss on generated samples "
                          "(paper's L_u, 0.1) and the VAE loss of unlabelled real rows, coded by the classifier")
    beta: float = opt(0.1, "weight of the minimum-entropy regulariser of the classifier on generated samples "
                      "(paper: 0.1; 0 disables it, e.g. for multi-label data)")
    sample_batch: int = opt(0, "joint phase: soft samples per step (0 = train.batch_size)")


@dataclass
class SamplingConfig:
    """How the generator samples during adversarial training."""

    temperature: float = opt(1.0, "softmax temperature; the policy gradient uses the log-probabilities of this "
                             "tempered, filtered distribution (the one actually sampled from), so it is unbiased")
    top_k: int = opt(0, "sample among the k most likely tokens (0 = all)")
    top_p: float = opt(1.0, "nucleus sampling: the smallest set of tokens holding this much mass (recorded: 1.0)")
    allow_eos: bool = opt(True, "may end before data.max_length; false = always max_length tokens. PAD and BOS "
                          "are never sampled")


@dataclass
class OptimConfig:
    lr: float = opt(5e-4, "peak learning rate of AdamW (makemore: 5e-4)")
    betas: list[float] = opt([0.9, 0.99], "AdamW (beta1, beta2) (makemore: 0.9, 0.99)")
    eps: float = opt(1e-8, "AdamW epsilon")
    weight_decay: float = opt(0.01, "AdamW decoupled weight decay on matrices (not on norms or biases)")
    max_grad_norm: float = opt(1.0, "clip the global gradient norm to this (0 = no clipping)")
    grad_accumulation: int = opt(1, "split each batch into this many micro-batches (same result, less memory)")
    schedule: str = opt("constant", "learning-rate schedule after warmup", ("constant", "cosine", "onecycle"))
    warmup_steps: int = opt(0, "linear warmup from 0 to lr over this many steps (constant/cosine)")
    min_lr_ratio: float = opt(0.1, "cosine/onecycle: final lr = lr * min_lr_ratio")
    pct_start: float = opt(0.3, "onecycle: fraction of steps spent raising the lr")
    cycle_beta1: list[float] = opt([0.95, 0.85], "onecycle: beta1 goes from the first to the second value "
                                   "while lr rises, and back while it falls (Smith 2018)")
    ema_decay: float = opt(0.0, "keep an exponential moving average of the weights with this decay (e.g. 0.998) "
                           "and evaluate, sample and checkpoint-select with it (0 = off; algorithm=mle)")


@dataclass
class OptimSection:
    gen: OptimConfig = opt(OptimConfig(), "optimiser of the generator (GANs: its adversarial phase)")
    pretrain: OptimConfig = opt(OptimConfig(lr=3e-3, weight_decay=0.1), "GAN algorithms: optimiser of the "
                                "generator's MLE pretraining (train.pretrain_steps); a fresh optim.gen follows")
    disc: OptimConfig = opt(OptimConfig(), "optimiser of the discriminator (GAN algorithms)")


@dataclass
class TrainConfig:
    steps: int = opt(5000, "optimiser steps (GANs: of the adversarial phase, after pretraining; "
                     "ignored when epochs > 0)")
    pretrain_steps: int = opt(1000, "GAN algorithms: MLE steps of the generator before the adversarial phase")
    gen_steps_per_disc_step: int = opt(1, "GANs: generator updates in each adversarial step (fresh samples each)")
    disc_steps_per_gen_step: int = opt(1, "GANs: discriminator updates in each adversarial step (the first uses "
                                       "the generator's last samples, the others fresh ones; all the step's real "
                                       "batch)")
    epochs: float = opt(0.0, "if > 0: train this many passes over the training split instead of `steps`")
    batch_size: int = opt(32, "examples per optimiser step (makemore: 32)")
    seed: int = opt(0, "seeds Python, NumPy and torch; with it a CPU run is repeatable bit for bit")
    length_grouping: int = opt(0, "batch rows of similar length: sort each window of this many batches by "
                               "length, then shuffle the batches (0 = off; fewer PAD positions computed)")
    device: str = opt("auto", "'auto' (cuda if available), 'cpu', 'cuda', 'cuda:N'")
    dtype: str = opt("float32", "autocast dtype for forward passes on CUDA", ("float32", "bfloat16"))
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")
    checkpoint_every: int = opt(0, "write a checkpoint every N steps (0 = at every evaluation)")
    keep_checkpoints: int = opt(2, "how many recent step-N checkpoints to keep (the best one is kept apart)")
    log_every: int = opt(10, "write training metrics every N steps")
    early_stop: int = opt(0, "stop after this many evaluations without a better valid NLL (0 = never)")
    max_skipped_steps: int = opt(10, "a step with a non-finite loss or gradient is skipped and counted; stop after "
                                 "this many in a row for one network")


@dataclass
class EvalConfig:
    every: int = opt(500, "evaluate (valid NLL, samples) every N steps and at the end")
    num_samples: int = opt(20, "samples written to samples/step-N.txt at each evaluation")
    batch_size: int = opt(256, "batch size of NLL evaluation")
    temperature: float = opt(1.0, "temperature of the samples drawn at evaluation")
    metrics: list[str] = opt([], "sample metrics logged at each evaluation (BLEU against the validation split): "
                             "unique, novelty, distinct1..4, bleu2..5, self_bleu2..5, "
                             "mean_length, eos_rate")
    metric_samples: int = opt(500, "samples drawn for eval.metrics at each evaluation")
    lm_steps: int = opt(1000, "langan eval: training steps of the small LM behind lm_score / reverse_lm_score")
    c2st_steps: int = opt(300, "langan eval: training steps of the fresh classifier behind c2st_acc")
    attr_steps: int = opt(1500, "langan eval: training steps of the separate attribute classifier behind attr_acc")


@dataclass
class Config:
    algorithm: str = opt("mle", "training algorithm: maximum likelihood, or a policy-gradient GAN",
                         ("mle", "reinforce", "ctrlgen"))
    data: DataConfig = opt(DataConfig(), "data source, tokenizer, splits")
    generator: GeneratorConfig = opt(GeneratorConfig(), "the generator network")
    disc: DiscConfig = opt(DiscConfig(), "the discriminator (GAN algorithms)")
    reward: RewardConfig = opt(RewardConfig(), "rewards, returns and the generator loss (reinforce)")
    sampling: SamplingConfig = opt(SamplingConfig(), "sampling during adversarial training")
    ctrlgen: CtrlGenConfig = opt(CtrlGenConfig(), "controlled generation: VAE, codes, soft samples (ctrlgen)")
    optim: OptimSection = opt(OptimSection(), "optimisers, one per network")
    train: TrainConfig = opt(TrainConfig(), "training loop")
    eval: EvalConfig = opt(EvalConfig(), "evaluation during training")


# ----------------------------------------------------------------------------- building from dicts


def closest(name: str, options: typing.Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the option nearest to `name`, or '' when none is near."""
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.4)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _number(value: Any, key: str, tp: type) -> float:
    if isinstance(value, bool):
        raise LanganError(f"config key '{key}': expected {tp.__name__}, got {value!r}")
    if isinstance(value, (int, float)):
        return value
    try:
        return float(str(value).strip())
    except ValueError:
        raise LanganError(f"config key '{key}': expected {tp.__name__}, got {value!r}") from None


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML value to the field's type, or raise one clear line."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise LanganError(f"config key '{key}': expected a mapping of sub-keys, got {value!r}")
        return build(tp, value, prefix=key + ".")
    if origin in (list, tuple):
        (item_tp,) = typing.get_args(tp)[:1]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise LanganError(f"config key '{key}': expected a list, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        if not isinstance(value, bool):
            raise LanganError(f"config key '{key}': expected true or false, got {value!r}")
        return value
    if tp is int:
        number = _number(value, key, int)
        if float(number) != int(number):
            raise LanganError(f"config key '{key}': expected a whole number, got {value!r}")
        return int(number)
    if tp is float:
        number = _number(value, key, float)
        # Keep counts as ints (e.g. data.test_size=1000) and fractions as floats.
        return int(number) if isinstance(value, int) else float(number)
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise LanganError(f"config key '{key}': expected a string, got {value!r}")
        return str(value)
    raise LanganError(f"config key '{key}': unsupported type {_type_name(tp)}")


def build(cls: type, raw: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a nested dict, checking every key and value."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in raw.items():
        key = prefix + str(name)
        if name not in fields:
            valid = [prefix + n for n in fields]
            raise LanganError(f"unknown config key '{key}'{closest(key, valid)}")
        value = _coerce(value, hints[name], key)
        choices = fields[name].metadata.get("choices")
        if choices and value not in choices:
            raise LanganError(f"config key '{key}': '{value}' is not one of {', '.join(choices)}"
                              f"{closest(str(value), choices)}")
        kwargs[name] = value
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


# ----------------------------------------------------------------------------- files and overrides


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise LanganError(f"config file '{path}' not found; presets live in configs/ (e.g. configs/names-mle.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise LanganError(f"config file '{path}'{line} is not valid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(raw, dict):
        raise LanganError(f"config file '{path}' must hold a mapping of sections (data:, generator:, ...)")
    return raw


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply `a.b.c=value` (value parsed as YAML) to a nested dict in place."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise LanganError(f"override '{override}' must look like key.sub=value (e.g. train.steps=100)")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise LanganError(f"override '{override}': '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    raw = read_yaml(path) if path else {}
    for override in overrides:
        apply_override(raw, override)
    cfg = build(Config, raw)
    validate(cfg)
    return cfg


def save_config(cfg: Config, path: str | Path) -> None:
    atomic_write_text(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False))


def validate(cfg: Config) -> None:
    """Cross-field checks that a type check cannot make."""
    g, d, t, e, o = cfg.generator, cfg.data, cfg.train, cfg.eval, cfg.data.oracle
    at_least_one = {"generator.hidden_size": g.hidden_size, "generator.intermediate_size": g.intermediate_size,
                    "generator.num_layers": g.num_layers, "generator.num_heads": g.num_heads,
                    "train.log_every": t.log_every, "eval.batch_size": e.batch_size,
                    "data.oracle.vocab_size": o.vocab_size, "data.oracle.length": o.length,
                    "data.oracle.num_samples": o.num_samples, "data.oracle.hidden_size": o.hidden_size,
                    "data.oracle.embedding_size": o.embedding_size, "data.vocab_size": d.vocab_size - 4}
    for key, value in at_least_one.items():
        if value < 1:
            raise LanganError(f"{key} must be at least {5 if key == 'data.vocab_size' else 1}, got "
                              f"{value + 4 if key == 'data.vocab_size' else value}")
    checks = [
        (0 <= g.dropout < 1 and 0 <= g.attention_dropout < 1, "generator dropouts must be in [0, 1)"),
        (e.num_samples >= 0 and e.metric_samples >= 0 and t.early_stop >= 0 and t.keep_checkpoints >= 0,
         "eval.num_samples, eval.metric_samples, train.early_stop and train.keep_checkpoints must be >= 0"),
        (t.max_skipped_steps >= 1, "train.max_skipped_steps must be at least 1"),
        (e.temperature >= 0, "eval.temperature must be >= 0 (0 = greedy)"),
        (g.hidden_size % g.num_heads == 0 or g.arch != "transformer",
         f"generator.hidden_size ({g.hidden_size}) must be divisible by generator.num_heads ({g.num_heads})"),
        (g.arch != "transformer" or (g.hidden_size // g.num_heads) % 2 == 0,
         "generator.hidden_size / generator.num_heads must be even (RoPE rotates pairs of dimensions)"),
        (d.max_length >= 1, "data.max_length must be at least 1"),
        (t.batch_size >= 1, "train.batch_size must be at least 1"),
        (t.length_grouping >= 0, "train.length_grouping must be >= 0 (0 = off)"),
        (t.steps >= 1 or t.epochs > 0, "train.steps must be at least 1 (or set train.epochs)"),
        (cfg.eval.every >= 1, "eval.every must be at least 1"),
        (d.valid_size >= 0 and d.test_size >= 0, "data.valid_size and data.test_size must be >= 0"),
    ]
    checks += _gan_checks(cfg) + _ctrlgen_checks(cfg)
    for name in ("gen", "pretrain", "disc"):
        o = getattr(cfg.optim, name)
        checks += [
            (len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
             f"optim.{name}.betas must be two values in [0, 1)"),
            (len(o.cycle_beta1) == 2 and all(0 <= b < 1 for b in o.cycle_beta1),
             f"optim.{name}.cycle_beta1 must be two values in [0, 1)"),
            (o.eps > 0 and o.weight_decay >= 0 and o.max_grad_norm >= 0 and o.warmup_steps >= 0,
             f"optim.{name}: eps must be > 0; weight_decay, max_grad_norm, warmup_steps >= 0"),
            (0 <= o.min_lr_ratio <= 1 and 0 < o.pct_start < 1,
             f"optim.{name}: min_lr_ratio must be in [0, 1] and pct_start in (0, 1)"),
            (o.grad_accumulation >= 1, f"optim.{name}.grad_accumulation must be at least 1"),
            (o.lr > 0, f"optim.{name}.lr must be positive"),
            (0 <= o.ema_decay < 1, f"optim.{name}.ema_decay must be in [0, 1)"),
            (o.ema_decay == 0 or (name == "gen" and cfg.algorithm == "mle"),
             f"optim.{name}.ema_decay: weight averaging is implemented for optim.gen with algorithm=mle only; "
             f"set it to 0"),
        ]
    for ok, message in checks:
        if not ok:
            raise LanganError(message)


def _gan_checks(cfg: Config) -> list[tuple[bool, str]]:
    d, r, s, t = cfg.disc, cfg.reward, cfg.sampling, cfg.train
    return [
        (min(d.hidden_size, d.intermediate_size, d.num_layers, d.num_heads, d.grad_accumulation) >= 1,
         "disc.hidden_size, intermediate_size, num_layers, num_heads and grad_accumulation must be at least 1"),
        (d.hidden_size % d.num_heads == 0 and (d.hidden_size // d.num_heads) % 2 == 0,
         f"disc.hidden_size ({d.hidden_size}) / disc.num_heads ({d.num_heads}) must be a whole, even number"),
        (0 <= d.dropout < 1 and 0 <= d.attention_dropout < 1, "disc dropouts must be in [0, 1)"),
        (0 < d.target_real <= 1, "disc.target_real must be in (0, 1]"),
        (d.pretrain_steps >= 0 and t.pretrain_steps >= 0, "train.pretrain_steps and disc.pretrain_steps must be >= 0"),
        (t.gen_steps_per_disc_step >= 1 and t.disc_steps_per_gen_step >= 1,
         "train.gen_steps_per_disc_step and train.disc_steps_per_gen_step must be at least 1"),
        (r.mode != "per_step" or d.output == "per_step",
         "reward.mode=per_step needs disc.output=per_step (a sequence discriminator judges only whole sequences)"),
        (0 <= r.gamma <= 1, "reward.gamma must be in [0, 1]"),
        (0 <= r.baseline_decay < 1 and 0 <= r.rollout_decay <= 1,
         "reward.baseline_decay must be in [0, 1) and reward.rollout_decay in [0, 1]"),
        (r.rollout_num >= 1 and r.rollout_chunk >= 1, "reward.rollout_num and reward.rollout_chunk must be >= 1"),
        (r.entropy_mult >= 0 and r.kl_mult >= 0, "reward.entropy_mult and reward.kl_mult must be >= 0"),
        (s.temperature > 0, "sampling.temperature must be > 0 (a policy gradient needs a stochastic policy)"),
        (0 < s.top_p <= 1 and s.top_k >= 0, "sampling.top_p must be in (0, 1] and sampling.top_k >= 0"),
    ]


def _ctrlgen_checks(cfg: Config) -> list[tuple[bool, str]]:
    c = cfg.ctrlgen
    return [
        (c.latent_size >= 1 and c.encoder_hidden_size >= 1 and c.encoder_num_layers >= 1,
         "ctrlgen.latent_size, encoder_hidden_size and encoder_num_layers must be at least 1"),
        (0 < c.tau_min <= c.tau0, "ctrlgen.tau_min must be > 0 and at most ctrlgen.tau0"),
        (0 <= c.word_dropout < 1, "ctrlgen.word_dropout must be in [0, 1)"),
        (min(c.lambda_c, c.lambda_z, c.lambda_u, c.beta, c.kl_weight_max, c.free_bits) >= 0,
         "ctrlgen.lambda_c, lambda_z, lambda_u, beta, kl_weight_max and free_bits must be >= 0"),
        (min(c.kl_anneal_steps, c.tau_anneal_steps, c.sample_batch) >= 0,
         "ctrlgen.kl_anneal_steps, tau_anneal_steps and sample_batch must be >= 0"),
        (cfg.algorithm != "ctrlgen" or c.encoder_arch == "lstm" or c.encoder_hidden_size % 4 == 0,
         "ctrlgen.encoder_hidden_size must be divisible by 4 (a transformer encoder has 4 heads of even width)"),
        (cfg.algorithm != "ctrlgen" or bool(cfg.data.label_columns),
         "algorithm=ctrlgen needs data.label_columns (e.g. data.label_columns=[gender] for census-names)"),
    ]


def describe(cls: type = Config, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, doc) for every leaf field — what `langan config` prints."""
    rows = []
    instance = cls()
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            rows += describe(type(value), prefix + f.name + ".")
        else:
            doc = f.metadata.get("doc", "")
            if f.metadata.get("choices"):
                doc += f" [{' | '.join(f.metadata['choices'])}]"
            rows.append((prefix + f.name, value, doc))
    return rows


def config_changes(old: dict[str, Any], new: dict[str, Any], ignore: typing.Collection[str] = ()
                   ) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) for every dotted key whose value differs between two nested configs
    (a key missing on one side reads as None), sorted by key."""
    a, b = flatten(old), flatten(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if k not in ignore and a.get(k) != b.get(k)]


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1} — used to diff configs."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out

