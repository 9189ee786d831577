"""`langan config`: every config key with its resolved value and meaning."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("config", help="print every config key with its value and meaning")
    p.add_argument("config", nargs="?", metavar="CONFIG.yaml", help="a preset to resolve (default: the defaults)")
    p.add_argument("overrides", nargs="*", metavar="key.sub=value")


def run(args: argparse.Namespace) -> int:
    from langan.config import describe, flatten, load_config, to_dict

    values = flatten(to_dict(load_config(args.config, args.overrides)))
    rows = describe()
    width = max(len(k) for k, _, _ in rows)
    for key, _, doc in rows:
        print(f"{key:<{width}}  {json.dumps(values[key]):<14}  {doc}")
    return 0
