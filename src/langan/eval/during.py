"""Evaluation during training (called by the trainer at each `eval.every`): validation NLL, the algorithm's
own figures, samples and the sample metrics of `eval.metrics` against the validation split. It only reads the
model; writing the figures and samples is the trainer's job."""

from __future__ import annotations

from langan.algorithms.base import Algorithm
from langan.config import LEARNED_METRIC_NAMES, Config
from langan.data.batching import trim
from langan.data.dataset import DataBundle
from langan.eval import learned
from langan.eval.metrics import compute_sample_metrics, reference_for
from langan.eval.nll import nll_per_token
from langan.eval.samples import draw_samples, one_line


def evaluate_during_training(cfg: Config, data: DataBundle, algorithm: Algorithm, step: int
                             ) -> tuple[dict[str, float], list[str]]:
    """(`eval/...` figures, the `eval.num_samples` sample lines 'origin<TAB>text') at training step `step`.
    The samples come from a generator seeded by (train.seed, step): a resumed run draws the same ones."""
    ecfg, gen = cfg.eval, algorithm.generator
    results: dict[str, float] = {}
    if len(data.valid):
        own = algorithm.heldout_nll(data.valid, ecfg.batch_size)
        results["eval/nll"] = own if own is not None else nll_per_token(gen, data.valid.tokens, ecfg.batch_size)
    results |= algorithm.eval_metrics()
    n = max(ecfg.num_samples, ecfg.metric_samples if ecfg.metrics else 0)
    samples = draw_samples(gen, data.tokenizer, n, data.max_length, seed=cfg.train.seed * 7919 + step,
                           temperature=ecfg.temperature, cond=algorithm.cond_for(n), allow_eos=data.oracle is None)
    reference = reference_for(data, "valid")  # the test split stays unseen until `langan eval`
    metrics = compute_sample_metrics([m for m in ecfg.metrics if m not in LEARNED_METRIC_NAMES], samples, reference)
    metrics |= learned.learned_metrics(ecfg.metrics, samples.tokens, data.train.tokens, data.valid.tokens,
                                       data.tokenizer.vocab_size, data.max_length + 1, ecfg.lm_steps,
                                       ecfg.c2st_steps, seed=0) if len(data.valid) else {}
    disc_acc = algorithm.disc_accuracy(trim(data.valid.tokens[:, 1:]), samples.tokens) \
        if "disc_acc" in ecfg.metrics and len(data.valid) else None
    if disc_acc is not None:
        metrics["disc_acc"] = disc_acc
    results |= {f"eval/{k}": v for k, v in metrics.items()}
    lines = [f"{data.origin(t)}\t{one_line(t)}" for t in samples.texts[: ecfg.num_samples]]
    return results, lines
