"""Control on census-names: a ctrlgen run against a conditional-MLE baseline trained for the same time.

The baseline is plain MLE on the same split with the label given as a first token ('F' / 'M' before each
lower-case name; the same generator architecture as the ctrlgen run), sampled with that token forced.
Both are judged by one attribute classifier trained separately on the real labelled training names
(langan.eval.attributes.AttributeJudge): attr_acc per gender, and novelty (share not in the training split).

    langan train configs/names-ctrlgen.yaml --name ctrlgen
    python benchmarks/ctrlgen_names.py --run runs/ctrlgen [--baseline-run runs/cond-mle]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from langan.data.dataset import encode_texts
from langan.data.sources import read_source
from langan.eval.attributes import AttributeJudge, balanced_attr_accuracy
from langan.generation import sample
from langan.runs.loading import load_run
from langan.runs.rundir import RunDir

MARKERS = {"female": "F", "male": "M"}


def write_marked_names(path: Path) -> None:
    """census-names in its reading order (so data.split_seed gives the same split), each name after its marker."""
    corpus = read_source("census-names", label_columns=["gender"])
    lines = [MARKERS[g] + t for t, g in zip(corpus.texts, corpus.labels["gender"], strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def train_baseline(run: Path, ctrl_cfg: dict, seconds: float, data_file: Path) -> None:
    """Conditional MLE with the ctrlgen run's generator, its step count set so training takes `seconds`."""
    g = ctrl_cfg["generator"]
    common = [f"data.source={data_file}", f"data.max_length={ctrl_cfg['data']['max_length'] + 1}",
              f"data.valid_size={ctrl_cfg['data']['valid_size']}", f"data.test_size={ctrl_cfg['data']['test_size']}",
              f"generator.arch={g['arch']}", f"generator.hidden_size={g['hidden_size']}",
              f"generator.num_layers={g['num_layers']}", f"train.batch_size={ctrl_cfg['train']['batch_size']}",
              "optim.gen.lr=3e-3", "optim.gen.schedule=cosine", "optim.gen.warmup_steps=100",
              "optim.gen.weight_decay=0.01", "eval.metrics=[]", "train.early_stop=0"]
    probe = run.parent / (run.name + "-probe")
    cmd = [sys.executable, "-m", "langan", "train", "configs/names-mle.yaml", *common, "--runs-dir", str(run.parent),
           "--quiet", "--overwrite"]
    subprocess.run([*cmd, "train.steps=200", "eval.every=200", "--name", probe.name], check=True)
    rate = _steps_per_second(probe)
    steps = max(int(rate * seconds), 100)
    print(f"baseline: {rate:.1f} steps/s -> {steps} steps for {seconds:.0f} s", file=sys.stderr)
    subprocess.run([*cmd, f"train.steps={steps}", f"eval.every={max(steps // 6, 1)}", "--name", run.name], check=True)


def _steps_per_second(run: Path) -> float:
    rates = [r["train/steps_per_s"] for r in RunDir.open(run).read_metrics() if "train/steps_per_s" in r]
    return sum(rates[1:]) / max(len(rates) - 1, 1) if len(rates) > 1 else rates[0]


def training_seconds(run: Path) -> float:
    state = sorted((run / "checkpoints").glob("step-*"), key=lambda p: int(p.name[5:]))[-1] / "trainer.json"
    return float(json.loads(state.read_text())["elapsed_seconds"])


def baseline_samples(run: Path, n: int, seed: int, temperature: float) -> dict[str, list[str]]:
    loaded = load_run(run)
    tok, gen = loaded.data.tokenizer, loaded.algorithm.generator
    out = {}
    for value, marker in MARKERS.items():
        (marker_id,) = tok.encode(marker)
        g = torch.Generator().manual_seed(seed)
        drawn = sample(gen, n, loaded.data.max_length, prefix=torch.full((n, 1), marker_id),
                       prefix_lengths=torch.ones(n, dtype=torch.long), generator=g, temperature=temperature)
        out[value] = [tok.decode(row)[1:] for row in drawn.tokens.tolist()]  # drop the forced marker
    return out


def ctrlgen_samples(loaded: object, n: int, seed: int, temperature: float) -> dict[str, list[str]]:
    alg, data = loaded.algorithm, loaded.data
    out = {}
    for value in alg.codes.values["gender"]:
        g = torch.Generator().manual_seed(seed)
        drawn = sample(alg.generator, n, data.max_length, cond=alg.cond_for(n, seed, {"gender": value}), generator=g,
                       temperature=temperature)
        out[value] = [data.tokenizer.decode(row) for row in drawn.tokens.tolist()]
    return out


def judge_table(judge: AttributeJudge, data: object, by_value: dict[str, list[str]]) -> dict[str, float]:
    """attr_acc (and per gender, `attr_acc/gender=V`) as `langan eval` computes it, plus novelty and unique."""
    values = judge.codes.values["gender"]
    rows = {(0, values.index(v)): encode_texts(data.tokenizer, texts, data.max_length)[0][:, 1:]
            for v, texts in by_value.items()}
    row = balanced_attr_accuracy(judge, rows)
    texts = [t for ts in by_value.values() for t in ts]
    row["novelty"] = sum(t not in data.train_set for t in texts) / len(texts)
    row["unique"] = len(set(texts)) / len(texts)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a finished ctrlgen run on census-names (gender)")
    p.add_argument("--baseline-run", help="the conditional-MLE run (default: trained now beside --run)")
    p.add_argument("--n", type=int, default=1000, help="samples per gender (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--judge-steps", type=int, default=1500)
    p.add_argument("--temperatures", default="1.0,0.7", help="sampling temperatures, comma-separated")
    args = p.parse_args()
    run = Path(args.run)
    loaded = load_run(run)
    seconds = training_seconds(run)
    baseline = Path(args.baseline_run or run.parent / f"{run.name}-cond-mle")
    if not (baseline / "checkpoints").is_dir():
        data_file = run.parent / "census-names-marked.txt"
        write_marked_names(data_file)
        import yaml

        train_baseline(baseline, yaml.safe_load((run / "config.yaml").read_text()), seconds, data_file)
    t0 = time.perf_counter()
    judge = AttributeJudge(loaded.data, loaded.algorithm.codes, args.judge_steps, args.seed)
    print(f"judge: validation accuracy {judge.valid_accuracy:.4f} ({time.perf_counter() - t0:.0f} s)")
    times = {"ctrlgen": seconds, "conditional MLE": training_seconds(baseline)}
    print("| model | train time | T | attr_acc | female | male | novelty | unique |\n|---|---|---|---|---|---|---|---|")
    for t in (float(x) for x in args.temperatures.split(",")):
        rows = {"ctrlgen": judge_table(judge, loaded.data, ctrlgen_samples(loaded, args.n, args.seed, t)),
                "conditional MLE": judge_table(judge, loaded.data, baseline_samples(baseline, args.n, args.seed, t))}
        for name, r in rows.items():
            print(f"| {name} | {times[name]:.0f} s | {t:g} | {r['attr_acc']:.3f} | {r['attr_acc/gender=female']:.3f} | "
                  f"{r['attr_acc/gender=male']:.3f} | {r['novelty']:.3f} | {r['unique']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
