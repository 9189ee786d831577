"""One run in two processes (torchrun, gloo on CPU): the same step as one process, exact resume, a killed rank."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_ctrlgen import labelled_file, tiny  # noqa: F401  (a fixture and the ctrlgen overrides)
from test_reinforce import gan_overrides

from conftest import REPO, tiny_overrides
from langan.cli import main
from langan.runs.checkpoint import step_checkpoints, verify
from langan.runs.rundir import RunDir

TIMEOUT = 240  # seconds for one torchrun job of these tiny runs (about 10 s each on 2 cores)


def langan(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "langan", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]


def latest(run: Path, network: str) -> dict[str, torch.Tensor]:
    return load_file(str(step_checkpoints(RunDir(run))[-1] / f"{network}.safetensors"))


def load_state(checkpoint: Path) -> dict:
    return torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=True)


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_ranks_take_the_step_of_one_process_with_the_global_batch(names_file: Path, tmp_path: Path) -> None:
    """MLE, global batch 8: 20 steps on 2 ranks (4 rows each) = 20 steps in one process, to float rounding (the
    two halves' gradients are summed in another order): parameters allclose at atol 1e-5."""
    args = [str(REPO / "configs" / "names-mle.yaml"),
            *tiny_overrides(names_file, **{"train.steps": 20, "generator.dropout": 0.0, "eval.every": 10}),
            "--runs-dir", str(tmp_path), "--quiet"]
    assert main(["train", *args, "--name", "one"]) == 0
    ok(langan("train", *args, "--name", "two", "--nproc", "2"))
    a, b = latest(tmp_path / "one", "generator"), latest(tmp_path / "two", "generator")
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5, worst
    state = load_state(step_checkpoints(RunDir(tmp_path / "two"))[-1])
    assert state["world_size"] == 2 and len(state["ranks"]) == 2
    assert not torch.equal(state["ranks"][0]["rng"]["torch"], state["ranks"][1]["rng"]["torch"])  # own streams
    logged = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len([line for line in logged if '"gen/loss"' in line]) == 2  # rank 0 alone writes, once per log step


@pytest.mark.parametrize("algorithm", ["reinforce", "rollout", "gumbel", "ctrlgen"])
def test_two_rank_resume_is_bit_exact(algorithm: str, names_file: Path, labelled_file: Path,  # noqa: F811
                                      tmp_path: Path) -> None:
    """2 ranks, N steps straight = 2 ranks stopped mid-way + resumed on 2 ranks, every network bit for bit: each
    rank's RNG, its own baseline and its partly accumulated discriminator gradients come back."""
    if algorithm in ("reinforce", "rollout", "gumbel"):
        preset = REPO / "configs" / "names-reinforce.yaml"
        extra = {"train.steps": 8, "eval.every": 5, "disc.grad_accumulation": 3, "reward.baseline": "ewma",
                 "generator.dropout": 0.1}
        if algorithm == "rollout":
            extra |= {"reward.mode": "rollout", "disc.output": "sequence", "reward.rollout_num": 2,
                      "disc.grad_accumulation": 1}
        if algorithm == "gumbel":
            extra |= {"algorithm": "gumbel", "disc.output": "sequence", "reward.mode": "final",
                      "disc.grad_accumulation": 1, "train.disc_steps_per_gen_step": 2}
        over = gan_overrides(names_file, **extra)
        stop, nets = "7", ("generator", "discriminator", "pretrained")
    else:
        preset = REPO / "configs" / "names-ctrlgen.yaml"
        over = tiny(labelled_file, **{"train.pretrain_steps": 3, "train.steps": 5, "ctrlgen.kl_anneal_steps": 7,
                                      "eval.every": 2})
        stop, nets = "6", ("generator",)
    args = [str(preset), *over, "--runs-dir", str(tmp_path), "--quiet", "--nproc", "2"]
    ok(langan("train", *args, "--name", "straight"))
    ok(langan("train", *args, "--name", "split", "--stop-after", stop))
    ok(langan("train", "--resume", str(tmp_path / "split"), "--quiet", "--nproc", "2"))
    for net in nets:
        assert same(latest(tmp_path / "straight", net), latest(tmp_path / "split", net)), net


def _workers(launcher: int) -> dict[int, int]:
    """LOCAL_RANK -> pid of the training processes below the `langan train --nproc` launcher."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        children.setdefault(int(fields["PPid"]), []).append(int(fields["Pid"]))
    found, stack = {}, list(children.get(launcher, []))
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        try:
            raw = Path(f"/proc/{pid}/environ").read_text().split("\0")
            env = dict(item.split("=", 1) for item in raw if "=" in item)
        except OSError:
            continue
        if "LOCAL_RANK" in env and "TORCHELASTIC_RUN_ID" in env:
            found[int(env["LOCAL_RANK"])] = pid
    return found


def test_a_killed_rank_stops_the_run_with_its_checkpoint_intact(names_file: Path, tmp_path: Path) -> None:
    args = [str(REPO / "configs" / "names-mle.yaml"),
            *tiny_overrides(names_file, **{"train.steps": 100_000, "train.checkpoint_every": 5, "eval.every": 1000}),
            "--runs-dir", str(tmp_path), "--name", "victim", "--quiet", "--nproc", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "langan", "train", *args], cwd=REPO, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    run = RunDir(tmp_path / "victim")
    try:
        deadline = time.time() + TIMEOUT
        while len(step_checkpoints(run)) < 2 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert step_checkpoints(run), "the run never wrote a checkpoint"
        workers = _workers(proc.pid)
        assert set(workers) == {0, 1}, workers
        killed_at = time.time()
        os.kill(workers[1], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        stopped_in = time.time() - killed_at
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and stopped_in < 30, stopped_in
    assert f"Resume with: langan train --resume {run.path} --nproc 2" in err
    last = step_checkpoints(run)[-1]
    assert verify(last) is None and load_state(last)["world_size"] == 2  # whole: every checksum matches
    ok(langan("train", "--resume", str(run.path), "--steps", str(int(last.name[5:]) + 2), "--quiet", "--nproc", "2"))


def test_resuming_on_another_world_size_continues_and_says_so(names_file: Path, tmp_path: Path) -> None:
    args = [str(REPO / "configs" / "names-mle.yaml"), *tiny_overrides(names_file, **{"train.steps": 4}),
            "--runs-dir", str(tmp_path), "--quiet"]
    ok(langan("train", *args, "--name", "r", "--nproc", "2", "--stop-after", "2"))
    proc = langan("train", "--resume", str(tmp_path / "r"), "--quiet")
    ok(proc)
    assert "saved by 2 process(es) and resumes on 1" in proc.stderr
    assert step_checkpoints(RunDir(tmp_path / "r"))[-1].name == "step-4"


def test_eval_splits_its_samples_across_ranks(names_file: Path, tmp_path: Path) -> None:
    args = [str(REPO / "configs" / "names-mle.yaml"), *tiny_overrides(names_file), "--runs-dir", str(tmp_path),
            "--quiet", "--name", "m"]
    assert main(["train", *args]) == 0
    proc = langan("eval", str(tmp_path / "m"), "--n", "50", "--metrics", "unique,mean_length", "--nproc", "2",
                  "--json")
    ok(proc)
    two = json.loads((tmp_path / "m" / "eval.json").read_text())
    assert two["n_samples"] == 50 and 0 < two["unique"] <= 1 and json.loads(proc.stdout)["unique"] == two["unique"]
    assert main(["eval", str(tmp_path / "m"), "--n", "50", "--metrics", "unique,mean_length"]) == 0
    one = json.loads((tmp_path / "m" / "eval.json").read_text())
    assert one["mean_length"] != two["mean_length"]  # the ranks drew their halves from their own seeds
    figure = tmp_path / "sweep.png"
    ok(langan("sweep-temperature", str(tmp_path / "m"), "--temperatures", "0.8,1.2", "--n", "40", "--out",
              str(figure), "--nproc", "2"))
    rows = figure.with_suffix(".csv").read_text().splitlines()
    assert figure.is_file() and len(rows) == 3  # header + 2 temperatures, written once (rank 0)


# ----------------------------------------------------------------------------- the GPU path, on CPU


def test_compiled_networks_train_as_eager_ones(names_file: Path, tmp_path: Path) -> None:
    """train.compile (aot_eager: the graphs dynamo captures, without a C++ compiler) gives the eager parameters."""
    args = [str(REPO / "configs" / "names-mle.yaml"), *tiny_overrides(names_file, **{"train.steps": 4}),
            "--runs-dir", str(tmp_path), "--quiet"]
    assert main(["train", *args, "--name", "eager"]) == 0
    assert main(["train", *args, "train.compile=true", "train.compile_backend=aot_eager", "--name", "compiled"]) == 0
    a, b = latest(tmp_path / "eager", "generator"), latest(tmp_path / "compiled", "generator")
    assert a.keys() == b.keys() and max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_bfloat16_autocast_trains_on_cpu(names_file: Path, tmp_path: Path) -> None:
    args = [str(REPO / "configs" / "names-mle.yaml"),
            *tiny_overrides(names_file, **{"train.steps": 30, "train.dtype": "bfloat16", "optim.gen.lr": 1e-2,
                                           "train.log_every": 1, "eval.every": 30}),
            "--runs-dir", str(tmp_path), "--quiet", "--name", "bf16"]
    assert main(["train", *args]) == 0
    losses = [json.loads(line)["gen/loss"] for line in (tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()
              if '"gen/loss"' in line]
    assert all(x == x for x in losses) and sum(losses[-5:]) < sum(losses[:5]) - 1.0, losses
    weights = latest(tmp_path / "bf16", "generator")
    assert all(w.dtype == torch.float32 for w in weights.values())  # autocast: float32 weights, bf16 matmuls


def test_a_global_batch_smaller_than_the_world_is_one_line(names_file: Path, tmp_path: Path) -> None:
    proc = langan("train", str(REPO / "configs" / "names-mle.yaml"), *tiny_overrides(names_file),
                  "train.batch_size=1", "--runs-dir", str(tmp_path), "--name", "b", "--nproc", "2")
    assert proc.returncode != 0 and "train.batch_size=1 (global, at most the" in proc.stderr
    assert "Traceback" not in proc.stderr and "Resume with" not in proc.stderr
    assert not (tmp_path / "b").exists()
