"""`train.*` and `eval.*`: the training loop and the evaluation during training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from langan.config.fields import Check, at_least_one, opt

if TYPE_CHECKING:
    from langan.config import Config

# the sample metrics `eval.metrics` accepts, in the order of langan.eval.metrics.SAMPLE_METRICS (a test holds the
# two to the same names: config cannot import eval)
SAMPLE_METRIC_NAMES: tuple[str, ...] = ("unique", "novelty", "mean_length", "eos_rate",
                                        *(f"distinct{n}" for n in range(1, 5)), *(f"bleu{n}" for n in range(2, 6)),
                                        *(f"self_bleu{n}" for n in range(2, 6)), "nll_oracle", "fed")
# figures that train a small model (or ask the run's discriminator) on the samples: also during training
LEARNED_METRIC_NAMES: tuple[str, ...] = ("lm_score", "reverse_lm_score", "c2st_acc", "disc_acc")
DURING_METRIC_NAMES: tuple[str, ...] = (*SAMPLE_METRIC_NAMES, *LEARNED_METRIC_NAMES)
ORACLE_ONLY_METRICS: tuple[str, ...] = ("nll_oracle",)  # they score samples with the oracle of data.source=oracle

@dataclass
class TrainConfig:
    steps: int = opt(5000, "optimiser steps (GANs: of the adversarial phase, after pretraining; "
                     "ignored when epochs > 0)")
    pretrain_steps: int = opt(1000, "GAN algorithms: MLE steps of the generator before the adversarial phase")
    gen_steps_per_disc_step: int = opt(1, "GANs: generator updates in each adversarial step (fresh samples each)")
    disc_steps_per_gen_step: int = opt(1, "GANs: discriminator updates in each adversarial step (the first uses "
                                       "the generator's last samples, the others fresh ones; all the step's real "
                                       "batch)")
    disc_fresh_samples: bool = opt(True, "reinforce: each discriminator update after the first draws fresh "
                                   "samples; false = all of a step's updates see the generator's last samples "
                                   "(one draw per step instead of disc_steps_per_gen_step)")
    epochs: float = opt(0.0, "if > 0: train this many passes over the training split instead of `steps`")
    batch_size: int = opt(32, "examples per optimiser step (makemore: 32)")
    seed: int = opt(0, "seeds Python, NumPy and torch; with it a CPU run is repeatable bit for bit")
    length_grouping: int = opt(0, "batch rows of similar length: sort each window of this many batches by "
                               "length, then shuffle the batches (0 = off; fewer PAD positions computed)")
    device: str = opt("auto", "'auto' (cuda if available), 'cpu', 'cuda', 'cuda:N'")
    dtype: str = opt("float32", "autocast dtype of forward passes (bfloat16: on CUDA, and on CPUs with bf16 "
                     "units; weights and optimiser state stay float32)", ("float32", "bfloat16"))
    compile: bool = opt(False, "torch.compile the networks' forward passes (dynamic shapes; the first steps are "
                        "slow while it compiles)")
    compile_backend: str = opt("inductor", "torch.compile backend: inductor (fast kernels; on CPU it needs a C++ "
                               "compiler), aot_eager (no compiler: checks the graphs)", ("inductor", "aot_eager"))
    tf32: bool = opt(True, "CUDA: float32 matmuls and convolutions in TF32 (Ampere and later; about 1e-3 relative "
                     "error, several times faster)")
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")
    checkpoint_every: int = opt(0, "write a checkpoint every N steps (0 = at every evaluation)")
    keep_checkpoints: int = opt(2, "how many recent step-N checkpoints to keep (the best one is kept apart)")
    log_every: int = opt(10, "write training metrics every N steps")
    early_stop: int = opt(0, "stop after this many evaluations without a better valid NLL (0 = never)")
    time_budget: float = opt(0.0, "stop (evaluating and checkpointing as at the last step) once this many seconds "
                             "of training have passed, resumes included; evaluation time not counted (0 = none)")
    init_from: str = opt("", "GANs: a run directory whose generator (its evaluated checkpoint: best for MLE runs) this "
                         "run starts from, e.g. an MLE run on the same data; with train.pretrain_steps=0 that MLE "
                         "run is the pretraining; a group of seed runs (`--seeds`) gives the member of this "
                         "train.seed. Same tokenizer and generator shape needed. Empty = fresh weights")
    init_checkpoint: str = opt("auto", "train.init_from: which of its checkpoints (auto = the one `langan eval` "
                               "judges: best valid NLL for MLE runs; best, latest or step-N)")
    max_skipped_steps: int = opt(10, "a step with a non-finite loss or gradient is skipped and counted; stop after "
                                 "this many in a row for one network")

    def check(self, root: Config) -> list[Check]:
        return [
            *at_least_one({"train.log_every": self.log_every}),
            (self.early_stop >= 0 and self.keep_checkpoints >= 0,
             "eval.num_samples, eval.metric_samples, train.early_stop and train.keep_checkpoints must be >= 0"),
            (self.max_skipped_steps >= 1, "train.max_skipped_steps must be at least 1"),
            (self.time_budget >= 0, "train.time_budget must be >= 0 seconds (0 = none)"),
            (not self.init_from or root.algorithm in ("reinforce", "gumbel"),
             "train.init_from is for the GANs (algorithm=reinforce or gumbel): their pretraining can be an MLE run"),
            (self.batch_size >= 1, "train.batch_size must be at least 1"),
            (self.length_grouping >= 0, "train.length_grouping must be >= 0 (0 = off)"),
            (self.steps >= 1 or self.epochs > 0, "train.steps must be at least 1 (or set train.epochs)"),
            (self.pretrain_steps >= 0, "train.pretrain_steps and disc.pretrain_steps must be >= 0"),
            (self.gen_steps_per_disc_step >= 1 and self.disc_steps_per_gen_step >= 1,
             "train.gen_steps_per_disc_step and train.disc_steps_per_gen_step must be at least 1"),
        ]


@dataclass
class EvalConfig:
    every: int = opt(500, "evaluate (valid NLL, samples) every N steps and at the end")
    every_adversarial: int = opt(0, "GANs: once pretraining is over, evaluate every N steps counted from its end "
                                 "(which is evaluated) instead of every eval.every (0 = eval.every throughout)")
    num_samples: int = opt(20, "samples written to samples/step-N.txt at each evaluation")
    batch_size: int = opt(256, "batch size of NLL evaluation")
    temperature: float = opt(1.0, "temperature of the samples drawn at evaluation")
    metrics: list[str] = opt([], "sample metrics logged at each evaluation (BLEU against the validation split): "
                             "unique, novelty, distinct1..4, bleu2..5, self_bleu2..5, mean_length, eos_rate; and "
                             "lm_score (the LM of the training split is fitted once per process), reverse_lm_score, "
                             "c2st_acc (against the validation split; each fits a small model: eval.lm_steps, "
                             "eval.c2st_steps), disc_acc (the run's discriminator, GANs)", items=DURING_METRIC_NAMES)
    metric_samples: int = opt(500, "samples drawn for eval.metrics at each evaluation")
    lm_steps: int = opt(1000, "training steps of the small LM behind lm_score / reverse_lm_score")
    c2st_steps: int = opt(300, "training steps of the fresh classifier behind c2st_acc")
    attr_steps: int = opt(1500, "langan eval: training steps of the separate attribute classifier behind attr_acc")

    def check(self, root: Config) -> list[Check]:
        unknown = [m for m in self.metrics if m not in DURING_METRIC_NAMES]
        return [
            *at_least_one({"eval.batch_size": self.batch_size}),
            (self.num_samples >= 0 and self.metric_samples >= 0,
             "eval.num_samples, eval.metric_samples, train.early_stop and train.keep_checkpoints must be >= 0"),
            (self.temperature >= 0, "eval.temperature must be >= 0 (0 = greedy)"),
            (self.every >= 1 and self.every_adversarial >= 0,
             "eval.every must be at least 1 and eval.every_adversarial >= 0"),
            (not unknown, f"eval.metrics: unknown metric '{unknown[0] if unknown else ''}'; known: "
                          f"{', '.join(DURING_METRIC_NAMES)}"),
            (root.data.source == "oracle" or not set(self.metrics) & set(ORACLE_ONLY_METRICS),
             "eval.metrics: nll_oracle needs data.source=oracle (it scores samples with the oracle)"),
        ]
