"""`langan sweep` (Optuna studies): a grid of tiny runs that survives SIGKILL, two workers sharing one SQLite study, the
scaling-curve plot, the trials table, and one clear line for a bad sweep file."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import NAMES, REPO, tiny_overrides
from langan.cli import main
from langan.errors import LanganError
from langan.runs.rundir import RunDir
from langan.sweeps import study as studies
from langan.sweeps.spec import load_spec, point_key
from langan.sweeps.trial import STRIDE, SeedRun, new_values, report_new_values

pytest.importorskip("optuna")
PRESET = str(REPO / "configs" / "names-mle.yaml")


def write_sweep(folder: Path, name: str, space: dict, seeds: list[int], **extra: object) -> Path:
    names = folder / "names.txt"
    names.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    overrides = tiny_overrides(names, **{"train.threads": 1, **extra})
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "base": PRESET, "overrides": overrides, "space": space,
                                    "metric": "eval/nll", "seeds": seeds}), encoding="utf-8")
    return path


def sweep_command(path: Path, runs: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "langan", "sweep", str(path), "--runs-dir", str(runs), *extra]


def seed_runs(root: Path) -> dict[Path, dict]:
    return {p: RunDir(p).read_meta() for p in sorted(root.glob("*/seed-*")) if (p / "meta.json").is_file()}


def trials_of(runs: Path, name: str) -> list:
    return studies.load_study(name, studies.storage_url(None, runs, name)).get_trials(deepcopy=False)


# ----------------------------------------------------------------------------- 2 × 2 grid, 2 seeds, SIGKILL


@pytest.fixture(scope="module")
def killed_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 2 × 2 grid with 2 seeds per trial, killed (whole process group, SIGKILL) in the middle of a trial
    after the first trial finished, then started again until done."""
    folder = tmp_path_factory.mktemp("sweep")
    path = write_sweep(folder, "grid", {"optim.gen.lr": {"grid": [1e-3, 3e-3]}, "data.max_length": {"grid": [12, 16]}},
                       [0, 1], **{"train.steps": 100, "eval.every": 25})
    runs, root = folder / "runs", folder / "runs" / "sweeps" / "grid"
    proc = subprocess.Popen(sweep_command(path, runs, "--jobs", "2"), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait for a finished trial and a run of the next one under way
        found = seed_runs(root)
        done = [p for p, m in found.items() if m.get("status") == "finished"]
        cut = [p for p, m in found.items() if m.get("status") != "finished"]
        if len(done) >= 2 and any(any(p.glob("checkpoints/step-*")) for p in cut):
            break
        assert proc.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = seed_runs(root)
    finished = {p: m for p, m in before.items() if m.get("status") == "finished"}
    resumable = [p for p, m in before.items() if m.get("status") != "finished" and any(p.glob("checkpoints/step-*"))]
    again = subprocess.run(sweep_command(path, runs, "--jobs", "2"), capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stderr
    return {"path": path, "runs": runs, "root": root, "finished": finished, "resumable": resumable,
            "out": again.stdout, "err": again.stderr}


@pytest.mark.slow
def test_killed_grid_sweep_completes_without_repeating_work(killed_sweep: dict) -> None:
    trials = trials_of(killed_sweep["runs"], "grid")
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    points = {point_key(t.params) for t in complete}
    assert len(complete) == 4 and len(points) == 4  # every grid point once, none twice
    assert {(t.params["optim.gen.lr"], t.params["data.max_length"]) for t in complete} == \
        {(1e-3, 12), (1e-3, 16), (3e-3, 12), (3e-3, 16)}
    lost = [t for t in trials if studies.is_lost(t)]
    assert len(lost) == 1 and "died" in lost[0].user_attrs["lost"]  # the killed trial, re-run by the restart
    assert "its worker is gone" in killed_sweep["err"]
    after = seed_runs(killed_sweep["root"])
    assert len(after) == 8 and all(m["status"] == "finished" for m in after.values())
    assert killed_sweep["finished"]
    for path, meta in killed_sweep["finished"].items():  # finished before the kill: untouched
        assert after[path]["started"] == meta["started"] and after[path]["resumes"] == []
    for path in killed_sweep["resumable"]:  # cut off after a checkpoint: resumed, not started again
        assert after[path]["resumes"], path
    for t in complete:
        assert sorted(t.user_attrs["values"]) == ["0", "1"]
        assert t.value == pytest.approx(sum(t.user_attrs["values"].values()) / 2)
    assert "4/4 trials done" in killed_sweep["out"]


@pytest.mark.slow
def test_sweep_plot_writes_png_and_csv_series(killed_sweep: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "curve.png"
    assert main(["sweep", "plot", "grid", "--x", "optim.gen.lr", "--y", "eval/nll", "--hue", "data.max_length",
                 "--out", str(out), "--runs-dir", str(killed_sweep["runs"])]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert {(r["data.max_length"], float(r["optim.gen.lr"])) for r in rows} == \
        {("12", 1e-3), ("12", 3e-3), ("16", 1e-3), ("16", 3e-3)}
    assert all(r["n"] == "2" and len(r["values"].split()) == 2 for r in rows)
    seeds = {(str(t.params["data.max_length"]), t.params["optim.gen.lr"]): list(t.user_attrs["values"].values())
             for t in trials_of(killed_sweep["runs"], "grid") if t.state.name == "COMPLETE"}
    for r in rows:  # mean and sample std of the point's two seed runs
        values = seeds[(r["data.max_length"], float(r["optim.gen.lr"]))]
        assert float(r["mean"]) == pytest.approx(statistics.mean(values), rel=1e-9)
        assert float(r["std"]) == pytest.approx(statistics.stdev(values), rel=1e-9) and float(r["std"]) > 0
    assert capsys.readouterr().out.startswith("wrote ")
    assert main(["sweep", "show", "grid", "--runs-dir", str(killed_sweep["runs"])]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("sweep grid: 4 complete, 0 pruned, 0 running, 1 failed of 4")
    means = [float(line.split()[4]) for line in table[2:] if " complete " in line]
    assert len(means) == 4 and means == sorted(means)  # best (lowest NLL) first
    assert main(["sweep", "plot", "grid", "--x", "optim.gen.lr", "--y", "bleu9", "--runs-dir",
                 str(killed_sweep["runs"])]) == 2
    assert "no complete trial has a final 'bleu9'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- two workers, one SQLite study


@pytest.mark.slow
def test_two_workers_share_one_sqlite_sweep(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, "shared", {"optim.gen.lr": {"grid": [1e-3, 3e-3]},
                                            "data.max_length": {"grid": [12, 16]}}, [0])
    runs = tmp_path / "runs"
    workers = [subprocess.Popen(sweep_command(path, runs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outs = [w.communicate(timeout=400) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err for _, err in outs]
    complete = [t for t in trials_of(runs, "shared") if t.state.name == "COMPLETE"]
    assert len(complete) == 4 and len({point_key(t.params) for t in complete}) == 4
    ran = [int(out.split("(")[1].split()[0]) for out, _ in outs]  # "... (N run by this worker)"
    assert sum(ran) == 4
    logs = sorted((runs / "sweeps" / "shared").glob("*/seed-0.log"))
    starts = [sum(line.startswith("$ ") for line in log.read_text().splitlines()) for log in logs]
    assert starts == [1] * 4  # every run was started by one worker, once


# ----------------------------------------------------------------------------- claiming, in one process


def test_claims_never_hand_out_a_point_twice_and_retry_a_dead_workers_point(tmp_path: Path) -> None:
    spec = load_spec(write_sweep(tmp_path, "claims", {"optim.gen.lr": {"grid": [1e-3, 3e-3]}}, [0]))
    runs = tmp_path / "runs"
    root, rng = studies.sweep_dir(runs, "claims"), random.Random(0)
    root.mkdir(parents=True)
    url = studies.storage_url(None, runs, "claims")
    study, storage, sampler = studies.open_study(spec, url)
    first = studies.claim(study, storage, spec, sampler, root, set(), rng)
    second = studies.claim(study, storage, spec, sampler, root, set(), rng)
    assert first and second and point_key(first.params) != point_key(second.params)
    assert studies.claim(study, storage, spec, sampler, root, set(), rng) is None  # both points held
    study.tell(second.trial, 1.0)
    second.lock.release()
    first.lock.release()
    first.trial.set_user_attr("pid", 2**22 + 12345)  # its worker "died"
    assert studies.reap(study) == [first.trial.number]
    retry = studies.claim(study, storage, spec, sampler, root, set(), rng)
    assert retry is not None and retry.params == first.params and retry.retry
    retry.lock.release()
    study.tell(retry.trial, 2.0)
    assert studies.claim(study, storage, spec, sampler, root, set(), rng) is None  # grid done
    spec.seeds = [0, 1]
    with pytest.raises(LanganError, match=r"different setup \(seeds: \[0\] → \[0, 1\]\)"):
        studies.open_study(spec, url)


def test_intermediate_evaluations_reach_the_pruner(tmp_path: Path) -> None:
    spec = load_spec(write_sweep(tmp_path, "prune", {"optim.gen.lr": {"grid": [1e-3, 2e-3, 3e-3]}}, [0, 1]))
    spec.pruner = {"type": "median", "startup_trials": 1, "warmup_steps": 0}
    root, rng = studies.sweep_dir(tmp_path / "runs", "prune"), random.Random(0)
    root.mkdir(parents=True)
    study, storage, sampler = studies.open_study(spec, studies.storage_url(None, tmp_path / "runs", "prune"))
    first = studies.claim(study, storage, spec, sampler, root, set(), rng)
    for step in (3, 6):
        first.trial.report(2.0, STRIDE + step)  # seed 1 (position 1) at steps 3 and 6
    study.tell(first.trial, 2.0)
    first.lock.release()
    second = studies.claim(study, storage, spec, sampler, root, set(), rng)
    run = RunDir(second.folder / "seed-1")
    run.path.mkdir(parents=True)
    rows = [{"step": 2, "gen/loss": 1.0}, {"step": 3, "eval/nll": 2.5}, {"step": 6, "eval/nll": 2.7}]
    run.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert new_values(SeedRun(1, 1, run), "best_valid_nll") == [(STRIDE + 3, 2.5), (STRIDE + 6, 2.5)]
    watched = SeedRun(1, 1, run)
    assert report_new_values(second.trial, [watched], spec) == (1, 6)  # 2.5 > the other trial's 2.0 at the same step
    assert report_new_values(second.trial, [watched], spec) is None  # nothing new to report
    second.lock.release()


# ----------------------------------------------------------------------------- mistakes: one line each


@pytest.mark.parametrize(("change", "message"), [
    ({"space": {"optim.gen.lrr": {"grid": [1]}}}, "unknown config key 'optim.gen.lrr' (did you mean 'optim.gen.lr'?)"),
    ({"space": {"optim.gen.lr": {"grid": []}}}, "grid must be a non-empty list"),
    ({"space": {"optim.gen.lr": {"low": 1e-4, "high": 1e-2}}}, "sampler grid needs a list of values"),
    ({"space": {"generator.num_heads": {"grid": [2, 3]}}}, "space point generator.num_heads=3"),
    ({"samplr": "tpe"}, "unknown sweep key 'samplr' (did you mean 'sampler'?)"),
    ({"metric": "eval/bleu4"}, "add it to the base config's eval.metrics"),
    ({"metric": "best_valid_nll", "direction": "up"}, "direction must be minimize or maximize"),
    ({"sampler": "random"}, "n_trials: say how many trials"),
    ({"seeds": [0, 0]}, "seeds: give distinct whole numbers"),
    ({"base": "nope.yaml"}, "base preset 'nope.yaml' not found"),
])
def test_bad_sweep_file_is_one_clear_line(tmp_path: Path, capsys, change: dict, message: str) -> None:
    path = write_sweep(tmp_path, "bad", {"optim.gen.lr": {"grid": [1e-3]}}, [0])
    raw = yaml.safe_load(path.read_text()) | change
    if change.get("sampler") == "random":
        raw["space"] = {"optim.gen.lr": {"low": 1e-4, "high": 1e-2, "log": True}}
    path.write_text(yaml.safe_dump(raw))
    assert main(["sweep", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("langan sweep: error:") and message in err, err
    assert not (tmp_path / "runs").exists()


def test_sweep_usage_errors(tmp_path: Path, capsys) -> None:
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    assert "sweep file" in capsys.readouterr().err
    assert main(["sweep", "show", "nothing", "--runs-dir", str(tmp_path)]) == 2
    assert "no sweep 'nothing'" in capsys.readouterr().err
    assert main(["sweep", "plot", "nothing", "--x", "reward.gamma"]) == 2
    assert "usage: langan sweep" in capsys.readouterr().err
