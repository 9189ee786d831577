"""Imports point one way: a package may import only packages below it in DESIGN.md's order.

Every `import` in src/langan is read from the syntax tree (function-level imports too), so a cycle or an
upward import fails here, naming the file and the line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "langan"

# top to bottom; a module may import its own package and any package in a later layer, nothing else
LAYERS: list[set[str]] = [
    {"__main__"},
    {"cli"},
    {"train", "sweeps", "report"},  # beside each other: they use runs and eval, never one another
    {"eval", "reward"},  # reward: a trained discriminator for other trainers (it loads runs)
    {"runs"},
    {"algorithms"},
    {"models", "data"},
    {"generation", "optim", "losses"},
    {"tokens", "config", "dist"},  # dist: who this process is in a torchrun job, and its few collectives
    {"fileio"},
    {"errors", "__init__"},  # the ground floor; `langan/__init__.py` holds only the version
]
LAYER_OF = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def unit(module: str) -> str:
    """'langan.eval.metrics' -> 'eval'; 'langan' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def own_module(path: Path, src: Path = SRC) -> str:
    return ".".join(("langan", *path.relative_to(src).with_suffix("").parts))


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every langan import in a file, `from langan import x` counted as langan.x."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "langan"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "langan":  # a submodule, or a name of langan/__init__.py such as __version__
                found += [(node.lineno, f"langan.{a.name}" if (SRC / a.name).exists() or
                           (SRC / f"{a.name}.py").exists() else "langan") for a in node.names]
            elif node.module.startswith("langan."):
                found.append((node.lineno, node.module))
    return found


def violations(src: Path = SRC) -> list[str]:
    out = []
    for path in sorted(src.rglob("*.py")):
        here = unit(own_module(path, src))
        for line, module in imported_modules(path):
            there = unit(module)
            if there == here:
                continue
            if there not in LAYER_OF or here not in LAYER_OF:
                out.append(f"{path.relative_to(src)}:{line}: {there if there not in LAYER_OF else here} has no layer")
            elif LAYER_OF[there] <= LAYER_OF[here]:
                out.append(f"{path.relative_to(src)}:{line}: {here} imports {module} (same level or above)")
    return out


def test_every_import_points_down() -> None:
    problems = violations()
    assert not problems, "\n".join(problems)


def test_every_package_has_a_layer() -> None:
    units = {unit(own_module(p)) for p in SRC.rglob("*.py")}
    assert units <= set(LAYER_OF), f"add {sorted(units - set(LAYER_OF))} to LAYERS (and to DESIGN.md's order)"


@pytest.mark.parametrize(("importer", "imported", "bad"), [("eval/evaluate.py", "langan.train.session", True),
                                                            ("train/trainer.py", "langan.eval.nll", False),
                                                            ("models/reader.py", "langan.data.batching", True),
                                                            ("data/dataset.py", "langan.tokens", False)])
def test_the_checker_flags_upward_and_sideways_imports(tmp_path: Path, importer: str, imported: str,
                                                        bad: bool) -> None:
    file = tmp_path / importer
    file.parent.mkdir(parents=True)
    file.write_text(f"from {imported} import something\n")
    assert bool(violations(tmp_path)) == bad
