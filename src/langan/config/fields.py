"""The machinery under every config section: fields with doc lines, building and type-checking sections from
nested dicts, YAML files and dotted overrides, and the flat views that `langan config` and run diffs read.

Nothing here knows a section; the sections (data, networks, gan, optim, training) import from here."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import typing
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml

from langan.errors import LanganError

Check = tuple[bool, str]  # (condition that must hold, the one-line error when it does not)


class _Loader(yaml.SafeLoader):
    """YAML as in 1.2: only true/false are booleans. YAML 1.1 (PyYAML's default) also reads yes/no/on/off as
    booleans, so `gumbel.beta_schedule=no` or `beta_schedule: no` would reach a string key as False; boolean
    keys still accept yes/no/on/off (`_coerce`)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


def opt(default: Any, doc: str, choices: tuple[str, ...] | None = None, items: tuple[str, ...] | None = None) -> Any:
    """A config field with its doc line and, for strings, the allowed values (`choices`, checked while building
    and listed by `langan config`); `items` are the allowed values of a list's items, checked by its section."""
    meta = {"doc": doc, "choices": choices, "items": items}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    if dataclasses.is_dataclass(default):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def at_least_one(values: dict[str, int]) -> list[Check]:
    """'KEY must be at least 1, got V' for each dotted key whose value is below 1."""
    return [(value >= 1, f"{key} must be at least 1, got {value}") for key, value in values.items()]


def first_failure(checks: typing.Iterable[Check]) -> None:
    """Raise the message of the first check that does not hold."""
    for ok, message in checks:
        if not ok:
            raise LanganError(message)


# ----------------------------------------------------------------------------- building from dicts


def closest(name: str, options: typing.Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the option nearest to `name`, or '' when none is near."""
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.4)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _number(value: Any, key: str, tp: type) -> float:
    if isinstance(value, bool):
        raise LanganError(f"config key '{key}': expected {tp.__name__}, got {value!r}")
    if isinstance(value, (int, float)):
        return value
    try:
        return float(str(value).strip())
    except ValueError:
        raise LanganError(f"config key '{key}': expected {tp.__name__}, got {value!r}") from None


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML value to the field's type, or raise one clear line."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise LanganError(f"config key '{key}': expected a mapping of sub-keys, got {value!r}")
        return build(tp, value, prefix=key + ".")
    if origin in (list, tuple):
        (item_tp,) = typing.get_args(tp)[:1]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise LanganError(f"config key '{key}': expected a list, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        if not isinstance(value, bool):
            raise LanganError(f"config key '{key}': expected true or false, got {value!r}")
        return value
    if tp is int:
        number = _number(value, key, int)
        if float(number) != int(number):
            raise LanganError(f"config key '{key}': expected a whole number, got {value!r}")
        return int(number)
    if tp is float:
        number = _number(value, key, float)
        # Keep counts as ints (e.g. data.test_size=1000) and fractions as floats.
        return int(number) if isinstance(value, int) else float(number)
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise LanganError(f"config key '{key}': expected a string, got {value!r}")
        return str(value)
    raise LanganError(f"config key '{key}': unsupported type {_type_name(tp)}")


def build(cls: type, raw: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a nested dict, checking every key and value."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in raw.items():
        key = prefix + str(name)
        if name not in fields:
            valid = [prefix + n for n in fields]
            raise LanganError(f"unknown config key '{key}'{closest(key, valid)}")
        value = _coerce(value, hints[name], key)
        choices = fields[name].metadata.get("choices")
        if choices and value not in choices:
            raise LanganError(f"config key '{key}': '{value}' is not one of {', '.join(choices)}"
                              f"{closest(str(value), choices)}")
        kwargs[name] = value
    return cls(**kwargs)


# ----------------------------------------------------------------------------- files and overrides


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise LanganError(f"config file '{path}' not found; presets live in configs/ (e.g. configs/names-mle.yaml)")
    try:
        raw = _load_yaml(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise LanganError(f"config file '{path}'{line} is not valid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(raw, dict):
        raise LanganError(f"config file '{path}' must hold a mapping of sections (data:, generator:, ...)")
    return raw


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply `a.b.c=value` (value parsed as YAML) to a nested dict in place."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise LanganError(f"override '{override}' must look like key.sub=value (e.g. train.steps=100)")
    try:
        value = _load_yaml(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise LanganError(f"override '{override}': '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


# ----------------------------------------------------------------------------- flat views


def describe(cls: type, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, doc) for every leaf field of section `cls` — what `langan config` prints."""
    rows = []
    instance = cls()
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            rows += describe(type(value), prefix + f.name + ".")
        else:
            doc = f.metadata.get("doc", "")
            if f.metadata.get("choices"):
                doc += f" [{' | '.join(f.metadata['choices'])}]"
            rows.append((prefix + f.name, value, doc))
    return rows


def config_changes(old: dict[str, Any], new: dict[str, Any], ignore: typing.Collection[str] = ()
                   ) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) for every dotted key whose value differs between two nested configs
    (a key missing on one side reads as None), sorted by key."""
    a, b = flatten(old), flatten(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if k not in ignore and a.get(k) != b.get(k)]


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1} — used to diff configs."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out
