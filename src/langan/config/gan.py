"""`reward.*`, `sampling.*`, `gumbel.*`, `ctrlgen.*`: how the GAN algorithms turn discriminator outputs into
generator updates (REINFORCE rewards, the sampling policy, the Gumbel-softmax GAN) and the controlled-generation VAE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from langan.config.fields import Check, opt

if TYPE_CHECKING:
    from langan.config import Config


ENTROPY_SCHEDULES = ("constant", "linear", "cosine")


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
    normalize_rewards: str = opt("none", "before discounting: none; center: each per-step reward minus the "
                                 "batch's mean reward at its position (a bias of D shifted one way no longer "
                                 "pays for longer or shorter samples); standardize: also divided by the std there",
                                 ("none", "center", "standardize"))
    position_prior: float = opt(0.0, "normalize_rewards=center/standardize and baseline=batch_mean: each "
                                "position's batch mean is shrunk towards the mean over all positions, as if this "
                                "many more samples were alive there; without it a sample that alone reaches a "
                                "position (a long one) has its reward there cancelled by its own mean")
    differences: bool = opt(False, "per_step mode: each token's reward is D's transformed verdict on the prefix "
                            "it ends minus that on the prefix before it (0 before the first token). A token is "
                            "then paid for what it changes, not for the prefix it inherits (a baseline that "
                            "depends only on earlier tokens: no bias); with gamma 1 each token's return is the "
                            "verdict on the whole sample, EOS included, minus that on the prefix before it, so "
                            "a bias shared by all of D's outputs cancels")
    gamma: float = opt(0.5, "discount of future rewards in the returns (recorded: 0.5; ignored by rollout, "
                       "whose Q-values already are expected final rewards)")
    baseline: str = opt("ewma", "subtracted from returns: none; ewma: moving average of the mean return at each "
                        "position; batch_mean: the batch's mean return at each position; leave_one_out: the "
                        "mean of the other samples at each position",
                        ("none", "ewma", "batch_mean", "leave_one_out"))
    baseline_decay: float = opt(0.9, "ewma baseline: b <- decay * b + (1 - decay) * mean return")
    normalize_advantages: bool = opt(False, "scale advantages to zero mean and unit std over the batch")
    entropy_mult: float = opt(0.1, "weight of the entropy bonus in the generator loss (recorded: 0.1); with "
                              "entropy_schedule, its weight at the first adversarial step")
    entropy_schedule: str = opt("constant", "how the entropy weight goes from entropy_mult to entropy_mult_final "
                                "over the adversarial steps (the recorded notes' \"can anneal this?\"): constant, "
                                "linear, cosine", ENTROPY_SCHEDULES)
    entropy_mult_final: float = opt(0.0, "entropy_schedule linear/cosine: the entropy weight at the last step")
    kl_mult: float = opt(0.0, "weight of KL(G || pretrained G), both untempered, in the generator loss")
    unfinished_penalty: float = opt(0.0, "taken from the return of every token of a sample that reaches "
                                    "data.max_length without EOS (a final reward, not discounted): a sample that "
                                    "never ends fails whatever D makes of its prefixes, which it rarely sees")
    rollout_num: int = opt(4, "rollout mode: Monte Carlo completions per prefix (SeqGAN: 16)")
    rollout_decay: float = opt(0.8, "rollout mode: the rollout generator follows G by an exponential moving "
                               "average, rollout <- decay * rollout + (1 - decay) * G (SeqGAN: 0.8)")
    rollout_chunk: int = opt(4096, "rollout mode: rows decoded at once (bounds memory)")
    loss_reduction: str = opt("mean", "the generator's loss over the batch's generated tokens: mean; sum (SeqGAN's "
                              "code sums over batch and positions, so with optim.gen.max_grad_norm every step's "
                              "gradient is clipped to that norm whatever the size of the rewards)",
                              ("mean", "sum"))

    def check(self, root: Config) -> list[Check]:
        return [
            (root.algorithm != "reinforce" or self.mode != "per_step" or root.disc.output == "per_step",
             "reward.mode=per_step needs disc.output=per_step (a sequence discriminator judges only whole "
             "sequences)"),
            (0 <= self.gamma <= 1, "reward.gamma must be in [0, 1]"),
            (not self.differences or self.mode == "per_step",
             "reward.differences needs reward.mode=per_step (it differences D's verdicts on successive prefixes)"),
            (0 <= self.baseline_decay < 1 and 0 <= self.rollout_decay <= 1,
             "reward.baseline_decay must be in [0, 1) and reward.rollout_decay in [0, 1]"),
            (self.rollout_num >= 1 and self.rollout_chunk >= 1,
             "reward.rollout_num and reward.rollout_chunk must be >= 1"),
            (min(self.entropy_mult, self.entropy_mult_final, self.kl_mult, self.unfinished_penalty) >= 0,
             "reward.entropy_mult, reward.entropy_mult_final, reward.kl_mult and reward.unfinished_penalty must be "
             ">= 0"),
            (self.position_prior >= 0, "reward.position_prior must be >= 0"),
            (not self.position_prior or self.normalize_rewards != "none" or self.baseline == "batch_mean",
             "reward.position_prior shrinks the per-position means of normalize_rewards=center/standardize and of "
             "baseline=batch_mean; with neither it does nothing: drop it"),
            (not self.unfinished_penalty or root.sampling.allow_eos,
             "reward.unfinished_penalty needs sampling.allow_eos=true (without EOS every sample is unfinished)"),
        ]


# the names algorithms/relaxed_gan.py implements (a test holds the two lists equal)
GAN_LOSSES = ("standard", "rsgan", "ragan", "hinge", "lsgan", "wgan-gp")
BETA_SCHEDULES = ("no", "lin", "exp", "log", "sigmoid", "quad", "sqrt")


@dataclass
class GumbelConfig:
    """The Gumbel-softmax GAN (RelGAN, Nie et al. 2019): after MLE pretraining, G's samples go to D as relaxed
    one-hots softmax(beta * (logits + g)) with the inverse temperature beta rising from 1 to beta_max; G learns
    from D's gradient through them. Defaults: RelGAN's synthetic-oracle runs."""

    loss: str = opt("rsgan", "GAN loss on D's sequence logits (RelGAN's default: rsgan); wgan-gp adds a gradient "
                    "penalty on the relaxed one-hots", GAN_LOSSES)
    beta_max: float = opt(100.0, "inverse temperature at the end of the schedule: of the adversarial phase, or of "
                          "gumbel.beta_horizon steps (RelGAN: 100; 1000 its other value)")
    beta_schedule: str = opt("exp", "how beta rises from 1 to beta_max over the adversarial steps or the horizon "
                             "(RelGAN's schedules; exp by default; no = beta_max throughout)", BETA_SCHEDULES)
    beta_horizon: int = opt(0, "adversarial steps over which the schedule runs from 1 to beta_max (held there "
                            "after); 0 = the adversarial phase itself, so beta_max is reached at its last step. "
                            "RelGAN's code runs every schedule over 5,000 steps whatever the run's length "
                            "(get_fixed_temperature's N), so its published runs ended at beta_max ** (steps / "
                            "5000): 100 ** 0.4 = 6.3 on COCO (2,000 steps), 100 ** 0.6 = 15.8 on the oracle (3,000)")
    straight_through: bool = opt(False, "D reads the draw's hard one-hots (forward) with the relaxed sample's "
                                 "gradient (backward): the straight-through Gumbel estimator (Jang et al. 2017). "
                                 "Off (RelGAN): D reads the relaxed one-hots themselves and can tell a generated "
                                 "row by how soft it is, which G answers by sharpening its distribution")
    gp_weight: float = opt(10.0, "wgan-gp: weight of the gradient penalty (Gulrajani et al. 2017: 10)")

    def check(self, root: Config) -> list[Check]:
        return [(self.beta_max >= 1, f"gumbel.beta_max must be at least 1 (beta starts at 1), got {self.beta_max}"),
                (self.beta_horizon >= 0, f"gumbel.beta_horizon must be >= 0 steps (0 = the adversarial phase), "
                                         f"got {self.beta_horizon}"),
                (not self.beta_horizon or self.beta_schedule != "no",
                 "gumbel.beta_horizon does nothing with gumbel.beta_schedule=no (beta_max throughout); drop one"),
                (self.gp_weight >= 0, "gumbel.gp_weight must be >= 0")]


@dataclass
class SamplingConfig:
    """How the generator samples during adversarial training."""

    temperature: float = opt(1.0, "softmax temperature; the policy gradient uses the log-probabilities of this "
                             "tempered, filtered distribution (the one actually sampled from), so it is unbiased")
    top_k: int = opt(0, "sample among the k most likely tokens (0 = all)")
    top_p: float = opt(1.0, "nucleus sampling: the smallest set of tokens holding this much mass (recorded: 1.0)")
    allow_eos: bool = opt(True, "may end before data.max_length; false = always max_length tokens. PAD and BOS "
                          "are never sampled")

    def check(self, root: Config) -> list[Check]:
        return [
            (self.temperature > 0, "sampling.temperature must be > 0 (a policy gradient needs a stochastic policy)"),
            (0 < self.top_p <= 1 and self.top_k >= 0, "sampling.top_p must be in (0, 1] and sampling.top_k >= 0"),
        ]


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

    def check(self, root: Config) -> list[Check]:
        chosen = root.algorithm == "ctrlgen"
        return [
            (self.latent_size >= 1 and self.encoder_hidden_size >= 1 and self.encoder_num_layers >= 1,
             "ctrlgen.latent_size, encoder_hidden_size and encoder_num_layers must be at least 1"),
            (0 < self.tau_min <= self.tau0, "ctrlgen.tau_min must be > 0 and at most ctrlgen.tau0"),
            (0 <= self.word_dropout < 1, "ctrlgen.word_dropout must be in [0, 1)"),
            (min(self.lambda_c, self.lambda_z, self.lambda_u, self.beta, self.kl_weight_max, self.free_bits) >= 0,
             "ctrlgen.lambda_c, lambda_z, lambda_u, beta, kl_weight_max and free_bits must be >= 0"),
            (min(self.kl_anneal_steps, self.tau_anneal_steps, self.sample_batch) >= 0,
             "ctrlgen.kl_anneal_steps, tau_anneal_steps and sample_batch must be >= 0"),
            (not chosen or self.encoder_arch == "lstm" or self.encoder_hidden_size % 4 == 0,
             "ctrlgen.encoder_hidden_size must be divisible by 4 (a transformer encoder has 4 heads of even width)"),
            (not chosen or bool(root.data.label_columns),
             "algorithm=ctrlgen needs data.label_columns (e.g. data.label_columns=[gender] for census-names)"),
        ]
