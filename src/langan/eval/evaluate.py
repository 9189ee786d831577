"""`langan eval`: test-split NLL and sample metrics of one checkpoint, written to RUN_DIR/eval.json.

Evaluation has no side effects on the model: it runs under no_grad in eval mode, samples from a private
seeded generator, and reads only the test split for `nll` (never training data).
"""

from __future__ import annotations

import json
import time
from typing import Any

from torch import Tensor, nn

from langan import __version__, dist
from langan.data.batching import trim
from langan.errors import LanganError
from langan.eval import learned
from langan.eval.attributes import AttributeJudge, balanced_attr_accuracy
from langan.eval.metrics import ORACLE_ONLY, SAMPLE_METRICS, compute_sample_metrics, reference_for
from langan.eval.nll import nll_per_token
from langan.eval.samples import draw_samples
from langan.fileio import atomic_write_text
from langan.runs.loading import LoadedRun, load_run
from langan.runs.rundir import source_fingerprint
from langan.tokens import PAD, UNK

# each trains or loads a model: computed only when named with --metrics
TRAINED_METRICS = ("c2st_acc", "lm_score", "reverse_lm_score", "fed")
ATTRIBUTE_METRICS = ("attr_acc",)  # runs with style codes (ctrlgen)
METRICS = ("nll", "nll_gen", *SAMPLE_METRICS, "disc_acc", *TRAINED_METRICS, *ATTRIBUTE_METRICS)
ORACLE_METRICS = ("nll_gen", *ORACLE_ONLY)


def default_metrics(oracle: bool, coded: bool = False) -> list[str]:
    """Every cheap metric that applies (the oracle ones only for data.source=oracle, attr_acc for runs with
    style codes); the ones that train or load a model (c2st_acc, lm_score, reverse_lm_score, fed) only when
    named with --metrics."""
    return [m for m in METRICS if (oracle or m not in ORACLE_METRICS) and m not in TRAINED_METRICS
            and (coded or m not in ATTRIBUTE_METRICS)]


def evaluate_run(run_dir: str, n: int = 1000, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                 seed: int = 0, which: str = "auto", metrics: list[str] | None = None) -> dict[str, Any]:
    """Metrics of the run's generator, written to RUN_DIR/eval.json; for GANs also of the pretrained generator
    (under "compare"), and `disc_acc`, the balanced accuracy of the run's discriminator on test text vs each
    generator's samples."""
    check_metrics(metrics)
    loaded = load_run(run_dir, which)
    settings = {"n": n, "temperature": temperature, "top_p": top_p, "top_k": top_k, "seed": seed}
    return record_evaluation(loaded, metrics, settings)


def record_evaluation(loaded: LoadedRun, metrics: list[str] | None, settings: dict[str, Any], others: bool = True
                      ) -> dict[str, Any]:
    """evaluate_loaded (with `others`: a GAN's pretrained generator too) plus the settings, checkpoint and test
    split it was made with, written to eval.json and appended to evals.jsonl."""
    coded = loaded.algorithm.codes is not None
    if metrics and "attr_acc" in metrics and not coded:
        raise LanganError(f"attr_acc needs a run with style codes (algorithm=ctrlgen); {loaded.run.path} has none")
    results = evaluate_loaded(loaded, metrics or default_metrics(loaded.data.oracle is not None, coded), settings,
                              others)
    results |= {"n_samples": settings["n"], **{k: settings[k] for k in ("temperature", "top_p", "top_k", "seed")},
                "checkpoint": loaded.checkpoint.name, "step": loaded.trainer_state.get("step"),
                "test_examples": len(loaded.data.test), "test_unk_rate": _unk_rate(loaded.data.test.tokens),
                "evaluated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "code": code_version()}
    if dist.is_main():
        atomic_write_text(loaded.run.eval_path, json.dumps(results, indent=2) + "\n")
        with open(loaded.run.eval_history_path, "a", encoding="utf-8") as history:  # eval.json is replaced
            history.write(json.dumps(results) + "\n")
    return results


def code_version() -> str:
    """langan's version and a fingerprint of its source: an evaluation made by other code is not reused, one made
    before a commit that changed only docs or benchmarks is."""
    return f"{__version__} {source_fingerprint()}"


def recorded_evaluation(loaded: LoadedRun, metrics: list[str], settings: dict[str, Any], others: bool = True
                        ) -> dict[str, Any] | None:
    """The run's eval.json if it was made of this checkpoint (name and step) by this code with these settings
    and holds every one of `metrics` (for each generator it compares); else None."""
    try:
        recorded = json.loads(loaded.run.eval_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    same = (recorded.get("n_samples") == settings["n"] and recorded.get("code") == code_version()
            and all(recorded.get(k) == settings[k] for k in ("temperature", "top_p", "top_k", "seed"))
            and recorded.get("checkpoint") == loaded.checkpoint.name
            and recorded.get("step") == loaded.trainer_state.get("step"))
    if others and loaded.algorithm.generators_to_compare() and "compare" not in recorded:
        return None  # made without the pretrained generator's column
    generators = [recorded, *(recorded.get("compare", {}).values() if others else ())]
    return recorded if same and all(m in g for g in generators for m in metrics) else None


def _unk_rate(tokens: Tensor) -> float:
    """The share of the test split's tokens (after BOS, EOS included) that the training vocabulary lacks."""
    targets = tokens[:, 1:]
    real = targets != PAD
    return float((targets == UNK).sum()) / max(int(real.sum()), 1)


def check_metrics(metrics: list[str] | None) -> None:
    unknown = [m for m in metrics or [] if m not in METRICS]
    if unknown:
        raise LanganError(f"unknown metric '{unknown[0]}'; available: {', '.join(METRICS)}")


def evaluate_loaded(loaded: LoadedRun, names: list[str], settings: dict[str, Any], others: bool = True
                    ) -> dict[str, Any]:
    """`names` of the run's generator and, with `others`, under "compare" of the algorithm's other generators."""
    results: dict[str, Any] = _evaluate_generator(loaded, loaded.algorithm.generator, names, settings)
    others = loaded.algorithm.generators_to_compare() if others else {}
    if others:
        results["generator"] = loaded.algorithm.generator_label
        results["compare"] = {name: _evaluate_generator(loaded, gen, names, settings) for name, gen in others.items()}
    return results


def _evaluate_generator(loaded: LoadedRun, gen: nn.Module, names: list[str], settings: dict[str, Any]
                        ) -> dict[str, float]:
    data, algorithm = loaded.data, loaded.algorithm
    results: dict[str, float] = {}
    wants_nll = gen is algorithm.generator and ("nll" in names or "nll_gen" in names)
    own = algorithm.heldout_nll(data.test, loaded.cfg.eval.batch_size) if wants_nll else None
    if "nll" in names:
        results["nll"] = own if own is not None else nll_per_token(gen, data.test.tokens, loaded.cfg.eval.batch_size)
    if "nll_gen" in names and own is None:  # Caccia et al. 2020: held-out NLL under the tempered model, EOS not counted
        results["nll_gen"] = nll_per_token(gen, data.test.tokens, loaded.cfg.eval.batch_size,
                                           temperature=settings["temperature"], count_eos=False)
    if "attr_acc" in names and gen is algorithm.generator:
        results |= attribute_metrics(loaded, settings)
    sample_names = [m for m in names if m in SAMPLE_METRICS]
    if not sample_names and not set(names) & {*TRAINED_METRICS, "disc_acc"}:
        return results
    n = settings["n"]
    samples = draw_samples(gen, data.tokenizer, n, data.max_length, seed=settings["seed"],
                           temperature=settings["temperature"], top_p=settings["top_p"], top_k=settings["top_k"],
                           cond=algorithm.cond_for(n), allow_eos=data.oracle is None, across_ranks=True)
    reference = reference_for(data, "test")
    results |= compute_sample_metrics(sample_names, samples, reference)
    disc_acc = algorithm.disc_accuracy(trim(data.test.tokens[:, 1:]), samples.tokens) \
        if "disc_acc" in names and len(data.test) and n else None  # (a sweep asks for its pair only)
    if disc_acc is not None:
        results["disc_acc"] = disc_acc
    return results | _trained_metrics(loaded, names, samples.tokens, settings["seed"])


def attribute_metrics(loaded: LoadedRun, settings: dict[str, Any]) -> dict[str, float]:
    """attr_acc: n samples per value of each attribute, drawn with that code (the others from the training
    label distribution), judged by a classifier trained separately on real labelled rows; attr_clf_acc is
    that judge's validation accuracy, attr_novelty the share of those samples not in the training split."""
    data, algorithm, n = loaded.data, loaded.algorithm, settings["n"]
    codes = algorithm.codes
    judge = AttributeJudge(data, codes, loaded.cfg.eval.attr_steps, settings["seed"])
    by_value, texts = {}, []
    for a, column in enumerate(codes.columns):
        for v, value in enumerate(codes.values[column]):
            seed = settings["seed"] + 1000 * (a + 1) + v
            drawn = draw_samples(algorithm.generator, data.tokenizer, n, data.max_length, seed=seed,
                                 temperature=settings["temperature"], top_p=settings["top_p"],
                                 top_k=settings["top_k"], cond=algorithm.cond_for(n, seed, {column: value}),
                                 across_ranks=True)
            by_value[(a, v)] = drawn.tokens
            texts += drawn.texts
    novelty = sum(t not in data.train_set for t in texts) / max(len(texts), 1)
    return balanced_attr_accuracy(judge, by_value) | {"attr_clf_acc": judge.valid_accuracy, "attr_novelty": novelty}


def _trained_metrics(loaded: LoadedRun, names: list[str], samples: Tensor, seed: int) -> dict[str, float]:
    data, ecfg = loaded.data, loaded.cfg.eval
    return learned.learned_metrics(names, samples, data.train.tokens, data.test.tokens, data.tokenizer.vocab_size,
                                   data.max_length + 1, ecfg.lm_steps, ecfg.c2st_steps, seed)


def format_table(results: dict[str, Any]) -> str:
    """One metric per line; with "compare", one column per generator (the run's own first)."""
    compare = results.get("compare", {})
    columns = {results.get("generator", "trained"): results} | compare
    keys = [k for k in results if k not in ("compare", "generator")]
    keys += [k for c in compare.values() for k in c if k not in results]
    width = max(len(k) for k in keys)
    lines = [f"{'':<{width}}  " + "  ".join(f"{c:>12}" for c in columns)] if compare else []
    for key in keys:
        cells = [_cell(col.get(key, "")) for col in columns.values()]
        lines.append(f"{key:<{width}}  " + "  ".join(f"{c:>12}" for c in cells) if compare
                     else f"{key:<{width}}  {cells[0]}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
