"""`langan sample`: samples of a trained run tagged train / valid/test / new; ctrlgen codes and z interpolation."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from langan.cli.arguments import sampling_args
from langan.errors import LanganError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sample", help="print samples of a trained run, tagged train / valid/test / new")
    sampling_args(p, 20)
    p.add_argument("--plain", action="store_true", help="print the texts only, without tags")
    p.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE",
                   help="ctrlgen runs: the style code to sample with, e.g. --attr gender=female (repeat for several "
                   "attributes; without it codes follow the training label distribution)")
    p.add_argument("--z-interpolate", nargs=2, metavar=("A", "B"),
                   help="ctrlgen runs: decode (greedily) --n points on the line in z between the encodings of "
                   "texts A and B")


def run(args: argparse.Namespace) -> int:
    from langan.eval.samples import draw_samples, one_line
    from langan.runs.loading import load_run

    attrs = _parse_attrs(args.attr)
    loaded = load_run(args.run_dir, args.checkpoint)
    if args.z_interpolate:
        return _interpolate(loaded, args.z_interpolate, args.n, attrs)
    gen, data = loaded.algorithm.generator, loaded.data
    samples = draw_samples(gen, data.tokenizer, args.n, data.max_length, seed=args.seed,
                           temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                           cond=loaded.algorithm.cond_for(args.n, args.seed, attrs),
                           allow_eos=data.oracle is None)
    tags = [data.origin(t) for t in samples.texts]
    for tag, text in zip(tags, samples.texts, strict=True):
        print(one_line(text) if args.plain else f"{tag:<10}  {one_line(text)}")
    if not args.plain:
        counts = {t: tags.count(t) for t in ("new", "train", "valid/test")}
        print(f"# {args.n} samples from {loaded.checkpoint.name}: {counts['new']} new, {counts['train']} in train, "
              f"{counts['valid/test']} in valid/test", file=sys.stderr)
    return 0


def _parse_attrs(items: list[str]) -> dict[str, str]:
    attrs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise LanganError(f"--attr '{item}' must look like KEY=VALUE, e.g. --attr gender=female")
        attrs[key.strip()] = value.strip()
    return attrs


def _interpolate(loaded: Any, texts: list[str], n: int, attrs: dict[str, str]) -> int:
    """Greedy decodes along z between two encoded texts (codes: --attr, else interpolated guesses)."""
    from langan.data.dataset import encode_texts
    from langan.eval.samples import one_line
    from langan.generation import sample

    algorithm, data = loaded.algorithm, loaded.data
    rows, _ = encode_texts(data.tokenizer, list(texts), data.max_length)
    cond = algorithm.interpolation_cond(rows[:, 1:], n, attrs)  # [n, Z + C]
    out = sample(algorithm.generator, len(cond), data.max_length, temperature=0.0, cond=cond)
    for i, row in enumerate(out.tokens.tolist()):
        text = data.tokenizer.decode(row)
        print(f"{i / (len(cond) - 1):4.2f}  {data.origin(text):<10}  {one_line(text)}")
    return 0
