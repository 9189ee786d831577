import itertools
import json
from pathlib import Path

import pytest
import torch

from conftest import REPO, tiny_overrides
from langan.cli import main
from langan.config import load_config
from langan.models import count_parameters
from langan.optim import clip_gradients, schedule_at
from langan.runs.checkpoint import load_checkpoint, step_checkpoints
from langan.runs.rundir import RunDir
from langan.train.session import new_session

PRESET = str(REPO / "configs" / "names-mle.yaml")


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """Every network of the last checkpoint, keyed network/parameter."""
    from safetensors.torch import load_file

    files = sorted(step_checkpoints(RunDir(run_dir))[-1].glob("*.safetensors"))
    return {f"{f.stem}/{k}": v for f in files for k, v in load_file(str(f)).items()}


def test_every_parameter_changes_after_one_step(tiny_cfg, tmp_path: Path) -> None:
    for arch in ("transformer", "lstm"):
        tiny_cfg.generator.arch = arch
        s = new_session(tiny_cfg, tmp_path / arch, quiet=True)
        gen = s.algorithm.generator
        before = {n: p.detach().clone() for n, p in gen.named_parameters()}
        s.algorithm.step(next(s.trainer.batches))
        unchanged = [n for n, p in gen.named_parameters() if torch.equal(p, before[n])]
        assert not unchanged, f"{arch}: parameters not updated: {unchanged}"
        assert any("embed" in n for n in before)


@pytest.mark.parametrize("extra", [
    ["generator.dropout=0.2", "optim.gen.schedule=cosine", "optim.gen.warmup_steps=2"],
    ["generator.arch=lstm", "generator.dropout=0.1", "optim.gen.schedule=onecycle", "optim.gen.grad_accumulation=2"],
    ["optim.gen.ema_decay=0.9", "train.length_grouping=2", "generator.dropout=0.1"],
])
def test_resume_is_bit_exact(names_file: Path, tmp_path: Path, extra: list[str]) -> None:
    """train 2N == train N, stop, --resume, N more (dropout consumes RNG; schedules depend on the step)."""
    args = [PRESET, *tiny_overrides(names_file, **{"train.steps": 10, "eval.every": 4}), *extra,
            "--runs-dir", str(tmp_path), "--quiet"]
    assert main(["train", *args, "--name", "straight"]) == 0
    assert main(["train", *args, "--name", "split", "--stop-after", "5"]) == 0
    assert RunDir(tmp_path / "split").read_meta()["status"] == "stopped"
    assert main(["train", "--resume", str(tmp_path / "split"), "--quiet"]) == 0
    a, b = final_weights(tmp_path / "straight"), final_weights(tmp_path / "split")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(k.startswith("generator_average/") for k in a) == ("optim.gen.ema_decay=0.9" in extra)
    for name in ("straight", "split"):
        assert RunDir(tmp_path / name).read_meta()["status"] == "finished"
    steps = [r["step"] for r in RunDir(tmp_path / "split").read_metrics() if "gen/loss" in r]
    assert steps == sorted(set(steps)), "metrics.jsonl must not repeat steps after a resume"


def test_resume_with_more_steps_equals_longer_run_on_constant_schedule(names_file: Path, tmp_path: Path) -> None:
    base = [PRESET, *tiny_overrides(names_file, **{"eval.every": 3}), "optim.gen.schedule=constant",
            "--runs-dir", str(tmp_path), "--quiet"]
    assert main(["train", *base, "train.steps=8", "--name", "long"]) == 0
    assert main(["train", *base, "train.steps=4", "--name", "short"]) == 0
    assert main(["train", "--resume", str(tmp_path / "short"), "--steps", "8", "--quiet"]) == 0
    a, b = final_weights(tmp_path / "long"), final_weights(tmp_path / "short")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_restores_optimizer_and_counters(tiny_cfg, tmp_path: Path) -> None:
    s = new_session(tiny_cfg, tmp_path / "r", quiet=True)
    s.trainer.fit(stop_after=3)
    other = new_session(tiny_cfg, tmp_path / "other", quiet=True)
    state, trainer_state = load_checkpoint(step_checkpoints(s.run)[-1], other.algorithm.networks())
    other.algorithm.load_state_dict(state["algorithm"])
    assert trainer_state["step"] == 3 and other.algorithm.step_count == 3
    assert trainer_state["data"] == s.trainer.batches.state_dict()
    opt_a, opt_b = s.algorithm.opt.state_dict()["state"], other.algorithm.opt.state_dict()["state"]
    assert all(torch.equal(opt_a[i]["exp_avg"], opt_b[i]["exp_avg"]) for i in opt_a)
    assert set(state["rng"]) >= {"python", "numpy", "torch"}


def test_gradient_accumulation_gives_the_same_update(tiny_cfg, tmp_path: Path) -> None:
    tiny_cfg.generator.dropout = 0.0  # micro-batches draw other dropout masks than one whole batch
    weights = []
    for accumulation in (1, 4):
        tiny_cfg.optim.gen.grad_accumulation = accumulation
        s = new_session(tiny_cfg, tmp_path / f"acc{accumulation}", quiet=True)
        s.algorithm.step(next(s.trainer.batches))
        weights.append({n: p.detach().clone() for n, p in s.algorithm.generator.named_parameters()})
    for name, value in weights[0].items():
        # a sum over micro-batches rounds differently from one batch: 1.3e-6 seen on one CPU, so 1e-5
        torch.testing.assert_close(weights[1][name], value, rtol=1e-5, atol=1e-5)


def test_schedules() -> None:
    cfg = load_config(None, ["optim.gen.lr=1.0", "optim.gen.min_lr_ratio=0.1"]).optim.gen
    cfg.schedule, cfg.warmup_steps = "cosine", 10
    assert schedule_at(cfg, 0, 110)[0] == pytest.approx(0.1)
    assert schedule_at(cfg, 9, 110)[0] == pytest.approx(1.0)
    assert schedule_at(cfg, 110, 110)[0] == pytest.approx(0.1)
    lrs = [schedule_at(cfg, s, 110)[0] for s in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(lrs))
    cfg.schedule, cfg.pct_start, cfg.cycle_beta1 = "onecycle", 0.3, [0.95, 0.85]
    lr_peak, beta_peak = schedule_at(cfg, 30, 100)
    lr0, beta0 = schedule_at(cfg, 0, 100)
    lr_end, beta_end = schedule_at(cfg, 100, 100)
    assert lr_peak == pytest.approx(1.0) and beta_peak == pytest.approx(0.85)  # momentum low at peak lr
    assert lr0 == pytest.approx(0.1) and beta0 == pytest.approx(0.95)
    assert lr_end == pytest.approx(0.1) and beta_end == pytest.approx(0.95)
    cfg.schedule = "constant"
    assert schedule_at(cfg, 50, 100) == (1.0, 0.9)
    # a step before the phase (a GAN update called during pretraining) reads as step 0, without warmup too
    cfg.warmup_steps = 0
    assert schedule_at(cfg, -3, 100) == (1.0, 0.9)
    cfg.schedule = "cosine"
    assert schedule_at(cfg, -3, 100) == schedule_at(cfg, 0, 100) == (1.0, 0.9)


def test_eval_writes_samples_metrics_and_best_checkpoint(tiny_cfg, tmp_path: Path) -> None:
    tiny_cfg.eval.metrics = ["unique", "novelty"]
    tiny_cfg.eval.metric_samples = 16
    s = new_session(tiny_cfg, tmp_path / "r", quiet=True)
    assert s.trainer.fit() == "finished"
    evals = [r for r in s.run.read_metrics() if "eval/nll" in r]
    assert [r["step"] for r in evals] == [3, 6]
    assert all(0 <= r["eval/unique"] <= 1 and 0 <= r["eval/novelty"] <= 1 for r in evals)
    lines = (s.run.samples_dir / "step-6.txt").read_text().splitlines()
    assert len(lines) == 4 and all(line.split("\t")[0] in ("train", "valid/test", "new") for line in lines)
    best = json.loads((s.run.checkpoints_dir / "best" / "trainer.json").read_text())
    assert best["best_valid_nll"] == pytest.approx(min(r["eval/nll"] for r in evals))
    assert any(s.run.tensorboard_dir.glob("events.out.tfevents.*"))


def test_early_stop_after_evaluations_without_improvement(tiny_cfg, tmp_path: Path, monkeypatch) -> None:
    import langan.eval.during as during  # the trainer's evaluations score validation NLL there

    worse = iter([2.0, 2.1, 2.2, 2.3, 2.4, 2.5])
    monkeypatch.setattr(during, "nll_per_token", lambda *a, **k: next(worse))
    tiny_cfg.train.steps, tiny_cfg.eval.every, tiny_cfg.train.early_stop = 30, 2, 2
    s = new_session(tiny_cfg, tmp_path / "r", quiet=True)
    assert s.trainer.fit() == "finished"
    assert s.trainer.step == 6  # best at step 2, no better at 4 and 6
    assert s.trainer.best_valid_nll == 2.0
    assert step_checkpoints(s.run)[-1].name == "step-6"


def test_no_validation_split_never_early_stops(tiny_cfg, tmp_path: Path) -> None:
    tiny_cfg.data.valid_size, tiny_cfg.train.steps, tiny_cfg.eval.every, tiny_cfg.train.early_stop = 0, 8, 1, 2
    s = new_session(tiny_cfg, tmp_path / "r", quiet=True)
    assert s.trainer.fit() == "finished" and s.trainer.step == 8
    s.run.update_meta(best_valid_nll=s.trainer.best_valid_nll)
    assert json.loads(s.run.meta_path.read_text())["best_valid_nll"] is None  # strict JSON, no Infinity


def test_weight_average_is_what_gets_evaluated(tiny_cfg, tmp_path: Path) -> None:
    """optim.gen.ema_decay: the average follows decay_t = min(decay, (1+t)/(10+t)) and is the generator
    that evaluation, sampling and the best checkpoint use; the trained weights keep training."""
    tiny_cfg.optim.gen.ema_decay = 0.5
    s = new_session(tiny_cfg, tmp_path / "ema", quiet=True)
    algo = s.algorithm
    trained, averaged = algo.gen, algo.generator
    assert averaged is not trained and not any(p.requires_grad for p in averaged.parameters())
    expected = {n: p.detach().clone() for n, p in trained.named_parameters()}
    for t in range(1, 4):
        algo.step(next(s.trainer.batches))
        w = 1 - min(0.5, (1 + t) / (10 + t))
        for n, p in trained.named_parameters():
            expected[n] += w * (p.detach() - expected[n])
    for n, p in averaged.named_parameters():
        torch.testing.assert_close(p, expected[n])
        assert not torch.equal(p, dict(trained.named_parameters())[n])
    assert set(algo.networks()) == {"generator", "generator_average"}
    # the model size, also when the generator is a frozen average
    assert s.run.read_meta()["num_parameters"] == count_parameters(trained) > 0


def test_weight_average_only_where_implemented() -> None:
    with pytest.raises(Exception, match="ema_decay"):
        load_config(PRESET, ["algorithm=ctrlgen", "data.label_columns=[g]", "optim.gen.ema_decay=0.99"])
    with pytest.raises(Exception, match="ema_decay"):
        load_config(PRESET, ["optim.gen.ema_decay=1.0"])


def test_time_budget_stops_with_an_evaluation_and_a_checkpoint(tiny_cfg, tmp_path: Path) -> None:
    tiny_cfg.train.steps, tiny_cfg.eval.every, tiny_cfg.train.time_budget = 50, 100, 1e-9  # out of time at step 1
    s = new_session(tiny_cfg, tmp_path / "r", quiet=True)
    assert s.train() == "finished" and s.trainer.step == 1 and s.trainer.out_of_time
    assert [r["step"] for r in s.run.read_metrics() if "eval/nll" in r] == [1]
    assert [p.name for p in step_checkpoints(s.run)] == ["step-1"]
    tiny_cfg.train.time_budget = 0.0  # no budget: every step
    s = new_session(tiny_cfg, tmp_path / "r2", quiet=True)
    assert s.train() == "finished" and s.trainer.step == 50


def test_denormal_floats_are_flushed_once_torch_is_set_up() -> None:
    # relaxed one-hots at a high inverse temperature are full of denormals, which CPUs compute slowly
    from langan.runs.loading import setup_torch

    torch.set_flush_denormal(False)
    tiny = torch.tensor([1e-39])
    assert float(tiny * 1.0) > 0  # a denormal float32 survives arithmetic by default
    setup_torch(load_config(None, []))
    assert float(tiny * 1.0) == 0.0


def test_large_tensors_reuse_freed_memory_once_torch_is_set_up() -> None:
    # without it every step's large tensors (logits [B, T, V]) are mmap'ed afresh and fault in their pages again
    import resource
    import sys

    from langan.runs.loading import setup_torch

    def page_faults_of_allocations(n: int = 10) -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(n):
            torch.ones(8 << 20)  # 32 MiB, freed at once
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    setup_torch(load_config(None, []))
    page_faults_of_allocations()  # the heap grows to hold them
    pages = (32 << 20) // resource.getpagesize()
    assert sys.platform.startswith("linux")  # CI's machine; glibc's mallopt is what this checks
    assert page_faults_of_allocations() < pages // 4, "the 32 MiB tensors faulted their pages in again"


@pytest.mark.parametrize("max_norm", [0.5, 50.0, 0.0])
def test_clip_gradients_matches_clip_grad_norm_and_leaves_small_gradients_unwritten(max_norm: float) -> None:
    # the same norm and clipped values as torch's clip_grad_norm_; within the bound (or with no bound) the gradients
    # are not rewritten at all (clip_grad_norm_ multiplies them by 1.0: a pass over every gradient each step)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Linear(5, 3))
    net(torch.randn(4, 6)).pow(2).sum().backward()
    reference = [torch.nn.Parameter(p.detach().clone()) for p in net.parameters()]
    for ref, p in zip(reference, net.parameters(), strict=True):
        ref.grad = p.grad.clone()
    versions = [p.grad._version for p in net.parameters()]
    norm = clip_gradients(net, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(reference, max_norm if max_norm > 0 else float("inf"))
    assert float(norm) == pytest.approx(float(expected), rel=1e-6) and float(norm) > 1.0
    for p, ref in zip(net.parameters(), reference, strict=True):
        torch.testing.assert_close(p.grad, ref.grad, rtol=0, atol=0)
    rewritten = [p.grad._version != v for p, v in zip(net.parameters(), versions, strict=True)]
    assert all(rewritten) if max_norm == 0.5 else not any(rewritten)
