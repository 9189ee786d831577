"""`langan eval`: test-split NLL and sample metrics of one checkpoint, written to RUN_DIR/eval.json.

Evaluation has no side effects on the model: it runs under no_grad in eval mode, samples from a private
seeded generator, and reads only the test split for `nll` (never training data).
"""

from __future__ import annotations

import json
import time
from typing import Any

from langan.errors import LanganError
from langan.eval.metrics import SAMPLE_METRICS, compute_sample_metrics
from langan.eval.nll import nll_per_token
from langan.eval.samples import draw_samples
from langan.train.rundir import atomic_write_text
from langan.train.session import load_trained

METRICS = ("nll", *SAMPLE_METRICS)


def evaluate_run(run_dir: str, n: int = 1000, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                 seed: int = 0, which: str = "auto", metrics: list[str] | None = None) -> dict[str, Any]:
    names = list(metrics or METRICS)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise LanganError(f"unknown metric '{unknown[0]}'; available: {', '.join(METRICS)}")
    loaded = load_trained(run_dir, which)
    gen, data = loaded.algorithm.generator, loaded.data
    results: dict[str, Any] = {}
    if "nll" in names:
        results["nll"] = nll_per_token(gen, data.test.tokens, loaded.cfg.eval.batch_size)
    sample_names = [m for m in names if m in SAMPLE_METRICS]
    if sample_names:
        samples = draw_samples(gen, data.tokenizer, n, data.max_length, seed=seed, temperature=temperature,
                               top_p=top_p, top_k=top_k, cond=loaded.algorithm.cond_for(n),
                               allow_eos=data.oracle is None)
        results |= compute_sample_metrics(sample_names, samples, data.train_set)
    results |= {"n_samples": n, "temperature": temperature, "top_p": top_p, "top_k": top_k, "seed": seed,
                "checkpoint": loaded.checkpoint.name, "step": loaded.trainer_state.get("step"),
                "test_examples": len(data.test), "evaluated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_text(loaded.run.eval_path, json.dumps(results, indent=2) + "\n")
    return results


def format_table(results: dict[str, Any]) -> str:
    width = max(len(k) for k in results)
    lines = []
    for key, value in results.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {shown}")
    return "\n".join(lines)
