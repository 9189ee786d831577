import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from langan.config import (
    SAMPLE_METRIC_NAMES,
    Config,
    EvalConfig,
    describe,
    flatten,
    load_config,
    read_yaml,
    save_config,
    to_dict,
)
from langan.errors import LanganError


def test_defaults_have_docs_for_every_key() -> None:
    rows = describe()
    assert len(rows) > 40
    assert all(doc for _, _, doc in rows), [k for k, _, d in rows if not d]


def test_override_sets_nested_values_with_types() -> None:
    cfg = load_config(None, ["train.steps=12", "optim.gen.lr=3e-4", "optim.gen.betas=[0.5, 0.95]",
                             "data.test_size=1000", "data.valid_size=0.05", "generator.tie_word_embeddings=true"])
    assert cfg.train.steps == 12 and isinstance(cfg.train.steps, int)
    assert cfg.optim.gen.lr == pytest.approx(3e-4)
    assert cfg.optim.gen.betas == [0.5, 0.95]
    assert cfg.data.test_size == 1000 and isinstance(cfg.data.test_size, int)
    assert cfg.data.valid_size == 0.05
    assert cfg.generator.tie_word_embeddings is True


def test_yes_no_on_off_stay_strings_for_string_keys(tmp_path: Path) -> None:
    # YAML 1.1 reads `no` as False: the RelGAN schedule named "no" must reach its string key as "no"
    assert load_config(None, ["gumbel.beta_schedule=no"]).gumbel.beta_schedule == "no"
    (tmp_path / "c.yaml").write_text("gumbel:\n  beta_schedule: no\n", encoding="utf-8")
    assert load_config(tmp_path / "c.yaml").gumbel.beta_schedule == "no"
    # boolean keys still take yes/no/on/off
    flags = load_config(None, ["generator.tie_word_embeddings=yes", "train.disc_fresh_samples=off"])
    assert flags.generator.tie_word_embeddings is True and flags.train.disc_fresh_samples is False


@pytest.mark.parametrize(("override", "expected"), [
    ("train.step=5", "unknown config key 'train.step' (did you mean 'train.steps'?)"),
    ("genrator.hidden_size=5", "unknown config key 'genrator' (did you mean 'generator'?)"),
    ("train.steps=abc", "config key 'train.steps': expected int, got 'abc'"),
    ("train.steps=1.5", "config key 'train.steps': expected a whole number, got 1.5"),
    ("generator.arch=lsmt",
     "config key 'generator.arch': 'lsmt' is not one of transformer, lstm, rmc, hf (did you mean 'lstm'?)"),
    ("generator.tie_word_embeddings=3", "config key 'generator.tie_word_embeddings': expected true or false, got 3"),
    ("train", "override 'train' must look like key.sub=value"),
])
def test_bad_keys_and_types_are_one_clear_line(override: str, expected: str) -> None:
    with pytest.raises(LanganError) as err:
        load_config(None, [override])
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


def test_cross_field_validation() -> None:
    with pytest.raises(LanganError, match=r"divisible by generator\.num_heads"):
        load_config(None, ["generator.hidden_size=30", "generator.num_heads=4"])


def test_unknown_key_in_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  batchsize: 3\n")
    expected = r"unknown config key 'train\.batchsize' \(did you mean 'train\.batch_size'\?\)"
    with pytest.raises(LanganError, match=expected):
        load_config(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 3\n bad: [\n")
    with pytest.raises(LanganError, match=r"c.yaml' line \d+ is not valid YAML"):
        load_config(path)


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(REPO / "configs" / "names-mle.yaml", ["train.steps=77", "data.test_size=123"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert to_dict(again) == to_dict(cfg)
    saved = flatten(yaml.safe_load((tmp_path / "config.yaml").read_text()))
    assert saved["train.steps"] == 77 and saved["data.test_size"] == 123
    # every key is written, so the file alone repeats the run
    assert set(saved) == {k for k, _, _ in describe()}


@pytest.mark.parametrize("preset", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_preset_loads_as_written_and_round_trips(preset: Path, tmp_path: Path) -> None:
    cfg = load_config(preset)
    written, resolved = flatten(read_yaml(preset)), flatten(to_dict(cfg))
    assert written and set(written) <= set(resolved)
    assert {k: resolved[k] for k in written} == written  # every value the YAML sets is the value the run uses
    assert cfg != Config()
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_presets_exist() -> None:
    assert len(list((REPO / "configs").glob("*.yaml"))) >= 4


def test_eval_metrics_accepts_exactly_evals_sample_metrics() -> None:
    """The config keeps the names (it cannot import eval); eval keeps the functions: the two must agree."""
    from langan.eval.metrics import ORACLE_ONLY, SAMPLE_METRICS

    assert tuple(SAMPLE_METRICS) == SAMPLE_METRIC_NAMES
    assert set(ORACLE_ONLY) <= set(SAMPLE_METRIC_NAMES)
    from langan.config import DURING_METRIC_NAMES, LEARNED_METRIC_NAMES
    from langan.eval.evaluate import METRICS

    items = next(f.metadata["items"] for f in dataclasses.fields(EvalConfig) if f.name == "metrics")
    assert items == DURING_METRIC_NAMES == (*SAMPLE_METRIC_NAMES, *LEARNED_METRIC_NAMES)
    assert set(LEARNED_METRIC_NAMES) <= set(METRICS)  # the learned ones are langan eval's too
    for name in [*SAMPLE_METRIC_NAMES[:-2], *LEARNED_METRIC_NAMES]:  # nll_oracle needs the oracle, fed an extra
        assert load_config(None, [f"eval.metrics=[{name}]"]).eval.metrics == [name]
    with pytest.raises(LanganError, match="unknown metric 'lm_scor'"):
        load_config(None, ["eval.metrics=[lm_scor]"])


@pytest.mark.parametrize(("overrides", "expected"), [
    (["algorithm=reinforce", "reward.mode=per_step", "disc.output=sequence"],
     "reward.mode=per_step needs disc.output=per_step"),
    (["algorithm=ctrlgen"], "algorithm=ctrlgen needs data.label_columns"),
    (["algorithm=gumbel", "optim.gen.ema_decay=0.9"], "optim.gen.ema_decay: weight averaging is implemented"),
    (["optim.disc.ema_decay=0.9"], "optim.disc.ema_decay: weight averaging is implemented"),
    (["eval.metrics=[nll_oracle]"], "eval.metrics: nll_oracle needs data.source=oracle"),
])
def test_checks_across_sections(overrides: list[str], expected: str) -> None:
    with pytest.raises(LanganError, match=re.escape(expected)):
        load_config(None, overrides)


def test_checks_across_sections_pass_when_met() -> None:
    load_config(None, ["reward.mode=final", "disc.output=sequence", "algorithm=ctrlgen", "data.label_columns=[g]",
                       "optim.gen.ema_decay=0", "data.source=oracle", "eval.metrics=[nll_oracle]"])
    load_config(None, ["algorithm=mle", "optim.gen.ema_decay=0.9"])
