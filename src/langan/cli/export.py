"""`langan export`: a trained generator in another framework's format (Hugging Face transformers)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="write a run's generator as a Hugging Face model folder (Llama)",
                              description="Write a run's transformer generator and tokenizer as a LlamaForCausalLM "
                              "folder (config.json, model.safetensors, tokenizer files) that transformers loads "
                              "with from_pretrained, and langan with generator.arch=hf generator.path=OUT_DIR. "
                              "Needs the optional extra: pip install 'langan[hf]'.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. runs/names-mle-1")
    p.add_argument("--to", choices=["hf"], default="hf", help="the format (default hf: transformers' Llama)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="a new (or empty) folder to write")
    p.add_argument("--checkpoint", default="auto", help="auto (default: best valid NLL for MLE runs, else latest), "
                   "latest, best, or step-N")


def run(args: argparse.Namespace) -> int:
    from langan.runs.export import export_hf
    from langan.runs.loading import load_run

    loaded = load_run(args.run_dir, args.checkpoint)
    out = export_hf(loaded, args.out_dir)
    print(f"wrote {out} (LlamaForCausalLM, {loaded.checkpoint.name} of {loaded.run.path}); load it with "
          f"transformers' AutoModelForCausalLM.from_pretrained('{out}') or langan's generator.arch=hf "
          f"generator.path={out}")
    return 0
